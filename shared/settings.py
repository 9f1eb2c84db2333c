"""Settings, read from the environment (prefix ``THROUGHLINE_``) or a ``.env`` file.

Built once in ``main()`` and passed down; never a module-level instance.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="THROUGHLINE_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./throughline.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///file.db or postgresql+asyncpg://...",
    )
    bus: Literal["sql", "kafka"] = "sql"
    kafka_bootstrap: str = "127.0.0.1:19092"
    topic_prefix: str = Field(default="", description="prepended to every topic name (tests)")
    topic_partitions: int = 4

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_base_url: str = ""

    simulator_host: str = "127.0.0.1"
    simulator_port: int = 8100
    simulator_speed: float = Field(
        default=3600.0, description="journey seconds per real second (3600: an hour a second)"
    )

    dhl_base_url: str = "http://127.0.0.1:8100"
    dhl_api_key: str = "demo-dhl-key"

    poll_interval_s: float = Field(default=3600.0, description="base interval between polls")
    poll_min_interval_s: float = 1.0
    poll_tick_s: float = Field(default=1.0, description="how often the poller looks for due work")
    poll_batch: int = 50
    poll_delivered_grace_s: float = 3 * 86400.0

    consumer_batch: int = 500
    consumer_wait_ms: int = 200

    max_body_bytes: int = 1_000_000
    public_rate_per_minute: int = 120

    log_level: str = "INFO"
    log_json: bool = True

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"
