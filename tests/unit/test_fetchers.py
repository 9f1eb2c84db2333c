"""``open_fetchers``: one open poll client per polled carrier, all closed on the way out."""

from __future__ import annotations

import httpx

from services.carriers.adapters import ADAPTERS
from services.carriers.fetchers import BASE_URL_SETTINGS, POLL_CLIENTS, PUSH_ONLY, open_fetchers
from shared.settings import Settings


async def test_every_polled_carrier_gets_an_open_client_closed_on_exit() -> None:
    async with open_fetchers(Settings()) as fetchers:
        assert set(fetchers) == set(ADAPTERS) - PUSH_ONLY
        pools = [client._http for client in fetchers.values()]  # type: ignore[attr-defined]
        assert all(not pool.is_closed for pool in pools)
    assert all(pool.is_closed for pool in pools)


async def test_a_lent_http_client_is_shared_and_left_open() -> None:
    async with httpx.AsyncClient() as http:
        async with open_fetchers(Settings(), http=http) as fetchers:
            assert all(client._http is http for client in fetchers.values())  # type: ignore[attr-defined]
        assert not http.is_closed


def test_every_client_reads_a_declared_base_url_setting() -> None:
    assert set(BASE_URL_SETTINGS) == set(POLL_CLIENTS)
    for carrier, name in BASE_URL_SETTINGS.items():
        assert name in Settings.model_fields, carrier
        assert Settings().model_dump()[name] == "http://127.0.0.1:8100"
