"""Settings, read from the environment (prefix ``THROUGHLINE_``) or a ``.env`` file.

Built once in ``main()`` and passed down; never a module-level instance.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SIMULATOR_URL = "http://127.0.0.1:8100"  # where the carrier sandboxes listen by default


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

    dhl_base_url: str = SIMULATOR_URL
    dhl_api_key: str = "demo-dhl-key"

    # Every other carrier API the poller calls: base URL (the simulator by default) and the
    # sandboxes' demo credentials; the simulator checks the same credentials.
    upu_base_url: str = SIMULATOR_URL
    upu_token: str = "00000000-0000-4000-8000-0000000000a1"
    china_post_base_url: str = SIMULATOR_URL
    china_post_token: str = "demo-china-post-token"
    usps_base_url: str = SIMULATOR_URL
    usps_client_id: str = "demo-usps-client"
    usps_client_secret: str = "demo-usps-secret"
    royal_mail_base_url: str = SIMULATOR_URL
    royal_mail_client_id: str = "demo-royal-mail-client"
    royal_mail_client_secret: str = "demo-royal-mail-secret"
    la_poste_base_url: str = SIMULATOR_URL
    la_poste_api_key: str = "demo-la-poste-okapi-key"
    australia_post_base_url: str = SIMULATOR_URL
    australia_post_account_number: str = "0001234567"
    australia_post_api_key: str = "demo-auspost-key"
    australia_post_password: str = "demo-auspost-password"
    canada_post_base_url: str = SIMULATOR_URL
    canada_post_user: str = "demo-canada-post-user"
    canada_post_password: str = "demo-canada-post-password"
    ups_base_url: str = SIMULATOR_URL
    ups_client_id: str = "demo-ups-client"
    ups_client_secret: str = "demo-ups-secret"
    fedex_base_url: str = SIMULATOR_URL
    fedex_client_id: str = "demo-fedex-client"
    fedex_client_secret: str = "demo-fedex-secret"
    fourpx_base_url: str = SIMULATOR_URL
    fourpx_app_key: str = "demo-4px-app-key"
    fourpx_app_secret: str = "demo-4px-app-secret"
    yanwen_base_url: str = SIMULATOR_URL
    yanwen_api_key: str = "demo-yanwen-key"
    yunexpress_base_url: str = SIMULATOR_URL
    yunexpress_customer_code: str = "C00001"
    yunexpress_api_secret: str = "demo-yunexpress-secret"
    cainiao_base_url: str = SIMULATOR_URL
    sf_express_base_url: str = SIMULATOR_URL
    sf_express_partner_id: str = "DEMO_SF_PARTNER"
    sf_express_checkword: str = "demo-sf-checkword"
    # Aggregator pushes (POST /v1/carrier-webhooks/{carrier}) are refused with 503 until the
    # secret the aggregator signs with is set: there is no safe demo value for a receiver.
    track17_webhook_secret: str = Field(default="", description="17TRACK API key (signs pushes)")
    aftership_webhook_secret: str = Field(default="", description="AfterShip webhook secret")
    easypost_webhook_secret: str = Field(default="", description="EasyPost webhook secret")

    poll_interval_s: float = Field(default=3600.0, description="base interval between polls")
    poll_min_interval_s: float = 1.0
    poll_tick_s: float = Field(default=1.0, description="how often the poller looks for due work")
    poll_batch: int = 50
    poll_delivered_grace_s: float = 3 * 86400.0
    poll_lease_s: float = Field(
        default=300.0, description="a claimed number is not handed to another poller this long"
    )
    poll_rate_per_s: float = Field(
        default=10.0, description="requests per second to one carrier, across all pollers"
    )
    poll_burst: float = Field(default=20.0, description="requests one carrier may get at once")
    poll_carrier_rates: str = Field(
        default="", description="per-carrier rate overrides, requests per second: 'dhl=0.2,ups=5'"
    )
    poll_carrier_batches: str = Field(
        default="", description="per-carrier overrides of poll_batch: 'dhl=5,usps=35'"
    )
    poll_redetect_after: int = Field(
        default=5, description="'not found' answers before trying the next candidate carrier"
    )

    consumer_batch: int = 500
    timeline_batch: int = Field(
        default=2000,
        description="records per batch of the timeline consumer: its statements are set-based, so "
        "larger batches cost less per event (BENCHMARKS.md)",
    )
    consumer_wait_ms: int = 200

    max_body_bytes: int = 1_000_000
    public_rate_per_minute: int = 120
    merchant_rate_per_minute: int = Field(
        default=600, description="requests per minute per API key on merchant endpoints"
    )
    merchant_rate_burst: int = Field(default=60, description="requests a key may send at once")

    webhook_timeout_s: float = Field(default=15.0, description="one delivery attempt, end to end")
    webhook_retry_scale: float = Field(
        default=1.0, description="multiplies the retry schedule (tests compress it)"
    )
    webhook_secret_overlap_s: float = Field(
        default=86400.0, description="after a rotation, the old secret signs too for this long"
    )
    webhook_disable_after_s: float = Field(
        default=5 * 86400.0,
        description="an endpoint failing this long without a success is disabled",
    )
    webhook_allow_loopback: bool = Field(
        default=False, description="development only: allow endpoints on 127.0.0.0/8 and ::1"
    )
    webhook_max_in_flight: int = Field(default=200, description="concurrent sends per sender")
    webhook_endpoint_concurrency: int = Field(
        default=4, description="concurrent sends to one endpoint per sender"
    )
    webhook_poll_interval_s: float = Field(
        default=0.5, description="how often the sender looks for due deliveries"
    )
    webhook_lease_s: float = Field(
        default=120.0, description="a claimed delivery is re-sent if not settled within this"
    )
    webhook_max_response_bytes: int = Field(
        default=65536, description="most of a receiver's answer read (2 KB of it is kept)"
    )

    alert_rules_file: str = Field(
        default="", description="JSON or TOML file of stale rules laid over the defaults (by key)"
    )
    alert_scan_interval_s: float = Field(default=60.0, description="how often the scanner runs")
    alert_learned_min_samples: int = Field(
        default=50, description="dwells a lane needs before its p90 replaces a rule's default"
    )
    alert_learn_interval_s: float = Field(
        default=3600.0, description="how often learned thresholds are recomputed"
    )
    alert_learn_window_s: float = Field(
        default=30 * 86400.0, description="events this recent make the learned thresholds"
    )
    alert_carrier_window_s: float = Field(
        default=900.0, description="poll outcomes this recent make a carrier's error rate"
    )
    alert_carrier_min_polls: int = Field(
        default=10, description="polls in the window before an error rate can alert"
    )
    alert_carrier_error_rate: float = Field(
        default=0.5, description="share of failed polls that opens a carrier alert"
    )
    alert_carrier_silent_s: float = Field(
        default=86400.0, description="no event for any active parcel of a carrier this long alerts"
    )
    alert_carrier_min_active: int = Field(
        default=20, description="active parcels a carrier needs before its silence can alert"
    )
    alert_carrier_recovery_s: float = Field(
        default=900.0,
        description="after a carrier alert resolves, its parcels get this long to catch up",
    )

    log_level: str = "INFO"
    log_json: bool = True

    metrics_host: str = Field(default="127.0.0.1", description="where /metrics listens")
    metrics_port: int = Field(
        default=0,
        description="serve Prometheus /metrics on this port in any role (0: off; the api role "
        "serves /metrics on its own port too)",
    )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"
