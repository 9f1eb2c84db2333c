"""The live alert stream (Server-Sent Events) over a real socket, on both stacks: new alerts arrive,
a reconnection resumes from Last-Event-ID, late commits are not lost, tokens are checked, and a
stream ends when its client goes away or the server stops."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from services.alerts.models import CARRIER
from services.alerts.stream import StreamConfig
from services.alerts.tokens import issue_token
from services.cli.app import create_api_app
from services.cli.runtime import Runtime, serve
from shared.auth import ApiKey
from shared.db import transaction, utcnow
from tests.integration.alerting import Tenant, bearer, new_alert, new_tenant, touch


@dataclass
class Server:
    base: str
    app: FastAPI
    stop: asyncio.Event
    task: asyncio.Task[None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def server(stack: Runtime) -> AsyncIterator[Server]:
    app = create_api_app(stack)
    app.state.alert_stream_config = StreamConfig(poll_s=0.05, heartbeat_s=0.3, overlap_s=5.0)
    port, stop = _free_port(), asyncio.Event()
    task = asyncio.create_task(serve(app, "127.0.0.1", port, stop))
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as c:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                if (await c.get(f"{base}/healthz")).status_code == 200:
                    break
            await asyncio.sleep(0.05)
    yield Server(base, app, stop, task)
    stop.set()
    await asyncio.wait_for(task, 10)


@dataclass
class Event:
    id: str | None = None
    event: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)


class Reader:
    """Frames of one open text/event-stream response, read in the background as they come."""

    def __init__(self, response: httpx.Response):
        self.heartbeats = 0
        self.retry: int | None = None
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._read(response))

    async def next(self, timeout: float = 10.0) -> Event:
        ev = await asyncio.wait_for(self._events.get(), timeout)
        if ev is None:
            raise EOFError("the stream ended")
        return ev

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _read(self, response: httpx.Response) -> None:
        ev = Event()
        try:
            async for line in response.aiter_lines():
                if line == "":
                    if ev.event or ev.data:
                        await self._events.put(ev)
                    ev = Event()
                elif line.startswith(":"):
                    self.heartbeats += line.strip() == ": heartbeat"
                elif line.startswith("retry: "):
                    self.retry = int(line[7:])
                else:
                    name, _, value = line.partition(": ")
                    if name == "data":
                        ev.data += value
                    else:
                        setattr(ev, name, value)
        except httpx.HTTPError:
            pass
        await self._events.put(None)


@contextlib.asynccontextmanager
async def sse(
    c: httpx.AsyncClient, url: str, **kwargs: Any
) -> AsyncIterator[tuple[httpx.Response, Reader]]:
    async with c.stream("GET", url, **kwargs) as resp:
        reader = Reader(resp)
        try:
            yield resp, reader
        finally:
            await reader.close()


async def _token(c: httpx.AsyncClient, base: str, t: Tenant) -> str:
    r = await c.post(f"{base}/v1/alerts/stream-token", headers=t.headers)
    assert r.status_code == 200, r.text
    assert r.json()["stream_url"].startswith(f"{base}/v1/alerts/stream?token=")
    token: str = r.json()["token"]
    return token


async def _open_streams(app: FastAPI) -> int:
    n: int = getattr(app.state, "open_alert_streams", 0)
    return n


async def _until_closed(app: FastAPI) -> None:
    for _ in range(200):
        if await _open_streams(app) == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the stream kept running after its client went away")


async def test_new_alerts_arrive_live_and_a_reconnection_resumes(
    stack: Runtime, server: Server
) -> None:
    a, b = await new_tenant(stack, "A"), await new_tenant(stack, "B")
    before = await new_alert(stack, a.id, rule_key="no_pickup")
    async with httpx.AsyncClient(timeout=30) as c:
        token = await _token(c, server.base, a)
        url = f"{server.base}/v1/alerts/stream"
        async with sse(c, url, params={"token": token}) as (resp, reader):
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            opened = await new_alert(
                stack, a.id, rule_key="handoff_black_hole", severity="critical"
            )
            await new_alert(stack, b.id, rule_key="handoff_black_hole")  # another tenant's
            ev = await reader.next()
            assert ev.event == "alert" and ev.id
            alert = orjson.loads(ev.data)
            assert alert["id"] == str(opened.id) and alert["state"] == "open"
            assert alert["rule"] == "handoff_black_hole" and alert["severity"] == "critical"
            assert reader.retry == 3000
            first_id = ev.id
            # Nothing else is news: not the alert from before the connection, not tenant B's.
            with pytest.raises(TimeoutError):
                await reader.next(timeout=0.8)
            assert reader.heartbeats >= 1
            assert await _open_streams(server.app) == 1
        await _until_closed(server.app)  # the client left: its stream stopped polling

        # While disconnected: the alert is acknowledged, another opens, an old one changes.
        r = await c.post(f"{server.base}/v1/alerts/{opened.id}/acknowledge", headers=a.headers)
        assert r.status_code == 200
        second = await new_alert(stack, a.id, rule_key="exception", opened_at=utcnow())
        await touch(stack, before.id, severity="critical")

        token = await _token(c, server.base, a)
        headers = {"Last-Event-ID": first_id}
        async with sse(c, url, params={"token": token}, headers=headers) as (resp, reader):
            got: dict[str, dict[str, object]] = {}
            while len(got) < 3:
                ev = await reader.next()
                data = orjson.loads(ev.data)
                got[data["id"]] = data
                assert ev.id and ev.id > first_id
        assert got[str(opened.id)]["state"] == "acknowledged"
        assert got[str(second.id)]["rule"] == "exception"
        assert got[str(before.id)]["severity"] == "critical"
        await _until_closed(server.app)


async def test_a_late_commit_is_not_lost(stack: Runtime, server: Server) -> None:
    """A row whose updated_at is older than one already sent (its transaction committed later)."""
    t = await new_tenant(stack, "A")
    async with httpx.AsyncClient(timeout=30) as c:
        token = await _token(c, server.base, t)
        url = f"{server.base}/v1/alerts/stream?token={token}"
        async with sse(c, url) as (resp, reader):
            now = utcnow()
            newer = await new_alert(stack, t.id, updated_at=now)
            assert orjson.loads((await reader.next()).data)["id"] == str(newer.id)
            late = await new_alert(stack, t.id, updated_at=now - timedelta(seconds=2))
            ev = await reader.next()
            assert orjson.loads(ev.data)["id"] == str(late.id)
            with pytest.raises(TimeoutError):  # and nothing is sent twice
                await reader.next(timeout=0.6)


async def test_carrier_wide_alerts_stream_to_every_tenant(stack: Runtime, server: Server) -> None:
    a, b = await new_tenant(stack, "A"), await new_tenant(stack, "B")
    async with httpx.AsyncClient(timeout=30) as c:
        url = f"{server.base}/v1/alerts/stream"
        tokens = [await _token(c, server.base, a), await _token(c, server.base, b)]
        async with (
            sse(c, url, params={"token": tokens[0]}) as (_, reader_a),
            sse(c, url, params={"token": tokens[1]}) as (_, reader_b),
        ):
            outage = await new_alert(
                stack, None, kind=CARRIER, rule_key="carrier_silent", severity="critical",
                shipment_id=None, carrier="ups", lane=None, module=None, status=None,
            )  # fmt: skip
            for reader in (reader_a, reader_b):
                got = orjson.loads((await reader.next()).data)
                assert got["id"] == str(outage.id)
                assert got["carrier_wide"] is True and got["kind"] == "carrier"
                assert got["tracking_number"] is None and got["shipment_id"] is None
            # The scan resolves it: that change reaches both as well.
            await touch(stack, outage.id, state="resolved", resolved_at=utcnow())
            for reader in (reader_a, reader_b):
                got = orjson.loads((await reader.next()).data)
                assert got["id"] == str(outage.id) and got["state"] == "resolved"


async def test_stream_tokens_and_keys(stack: Runtime, server: Server) -> None:
    t, other = await new_tenant(stack, "A"), await new_tenant(stack, "B")
    url = f"{server.base}/v1/alerts/stream"
    async with httpx.AsyncClient(timeout=30) as c:
        token = await _token(c, server.base, t)
        # A token opens the stream and nothing else; it is no API key.
        r = await c.get(f"{server.base}/v1/alerts", headers=bearer(token))
        assert r.status_code == 401
        r = await c.get(f"{server.base}/v1/alerts", params={"token": token})
        assert r.status_code == 401
        for bad in (
            "nonsense",
            token[:-2] + "xx",
            token.replace(token.split(".")[1], "9999999999"),
        ):
            r = await c.get(url, params={"token": bad})
            assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        async with transaction(stack.sessions) as s:
            from sqlalchemy import select

            key = (await s.scalars(select(ApiKey).where(ApiKey.tenant_id == t.id))).first()
            assert key is not None
            expired, _ = issue_token(key, utcnow() - timedelta(minutes=10))
        r = await c.get(url, params={"token": expired})
        assert r.status_code == 401 and "expired" in r.json()["detail"]
        r = await c.get(url, params={"token": token, "last_event_id": "garbage"})
        assert r.status_code == 422 and "Last-Event-ID" in r.json()["detail"]
        r = await c.post(f"{server.base}/v1/alerts/stream-token", headers=bearer(t.merchant))
        assert r.status_code == 403

        # A key in a bearer header opens it too (curl, servers); it sees its own tenant only.
        async with sse(c, url, headers=other.headers) as (resp, reader):
            assert resp.status_code == 200
            await new_alert(stack, t.id)
            mine = await new_alert(stack, other.id)
            assert orjson.loads((await reader.next()).data)["id"] == str(mine.id)

        # Revoking the key ends its open streams and refuses its tokens.
        async with sse(c, url, params={"token": token}) as (resp, reader):
            async with transaction(stack.sessions) as s:
                row = await s.get(ApiKey, key.id)
                assert row is not None
                row.revoked_at = utcnow()
            with pytest.raises(EOFError):
                await reader.next(timeout=5)
        r = await c.get(url, params={"token": token})
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
    await _until_closed(server.app)


async def test_an_open_stream_does_not_hold_up_shutdown(stack: Runtime, server: Server) -> None:
    t = await new_tenant(stack, "A")
    async with httpx.AsyncClient(timeout=30) as c:
        async with sse(c, f"{server.base}/v1/alerts/stream", headers=t.headers) as (resp, reader):
            await new_alert(stack, t.id)
            await reader.next()
            server.stop.set()
            await asyncio.wait_for(server.task, 5)
            with pytest.raises((EOFError, httpx.RemoteProtocolError)):
                await reader.next(timeout=5)
    assert await _open_streams(server.app) == 0


async def test_a_token_stream_ends_with_its_token_and_resumes_with_a_new_one(
    stack: Runtime, server: Server
) -> None:
    server.app.state.alert_stream_config = StreamConfig(poll_s=0.05, heartbeat_s=0.3, token_ttl_s=1)
    t = await new_tenant(stack, "A")
    url = f"{server.base}/v1/alerts/stream"
    async with httpx.AsyncClient(timeout=30) as c:
        token = await _token(c, server.base, t)
        async with sse(c, url, params={"token": token}) as (_, reader):
            first = await new_alert(stack, t.id)
            ev = await reader.next()
            assert orjson.loads(ev.data)["id"] == str(first.id)
            with pytest.raises(EOFError):
                await reader.next(timeout=5)
        assert (await c.get(url, params={"token": token})).status_code == 401
        missed = await new_alert(stack, t.id, rule_key="exception")
        fresh = await _token(c, server.base, t)
        async with sse(c, url, params={"token": fresh, "last_event_id": ev.id}) as (_, reader):
            # At least once: the change just before the resume point may come again first.
            seen = [orjson.loads((await reader.next()).data)["id"] for _ in range(2)]
            assert str(missed.id) in seen and set(seen) <= {str(first.id), str(missed.id)}
        # A key in a header opens a stream with no end of its own.
        async with sse(c, url, headers=t.headers) as (_, reader):
            with pytest.raises(TimeoutError):
                await reader.next(timeout=2)
            assert reader.heartbeats >= 2
    await _until_closed(server.app)
