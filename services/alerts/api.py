"""The operator API: the alert feed, its lifecycle, counts, carrier health, rules and a live stream.

Every endpoint needs a key with the ``operator`` scope (a merchant-only key gets 403) and sees the
key's tenant only: its shipment alerts and its own rules; another tenant's alert answers 404.
Carrier health is about the carriers' APIs, not about any tenant, and is the same for everyone:
so are carrier-wide alerts (``kind`` carrier, ``carrier_wide`` true), which every tenant's feed,
counts and stream include. They carry no tenant's data, and a tenant's key cannot acknowledge,
snooze or resolve them (403): they are every tenant's at once, and the scan resolves them when the
carrier recovers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import State

from services.alerts import queries, repository
from services.alerts.models import CARRIER, CRITICAL, STATES, UNRESOLVED, Alert, CarrierHealth
from services.alerts.rules import RuleSet, base_rules
from services.alerts.schemas import (
    MAX_SNOOZE_S,
    AlertOut,
    AlertPage,
    CarrierHealthList,
    CarrierHealthOut,
    CountOut,
    CountsOut,
    ResolveIn,
    RuleOut,
    RulesOut,
    SnoozeIn,
    StreamTokenOut,
)
from services.alerts.stream import AlertStream, Change, Cursor, FetchChanges, StreamConfig
from services.alerts.tokens import issue_token, verify_token
from shared.auth import ApiKey, Principal
from shared.db import utcnow
from shared.errors import InvalidInput, Unauthorized
from shared.http import SessionDep, require_scope
from shared.schema import TOPIC_ALERTS
from shared.settings import Settings

SCOPE = "operator"
Operator = Annotated[Principal, Depends(require_scope(SCOPE))]
router = APIRouter(prefix="/v1", tags=["alerts (operators)"])
_ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "missing, invalid or revoked key"},
    403: {"description": "the key lacks the operator scope"},
}
_CHANGE_ERRORS: dict[int | str, dict[str, str]] = {
    **_ERRORS,
    403: {
        "description": "the key lacks the operator scope, or the alert is carrier-wide "
        "(managed by the platform; it resolves when the carrier recovers)"
    },
    404: {"description": "no such alert for this tenant"},
    409: {"description": "the alert is already resolved"},
}


def _by(principal: Principal) -> str:
    return f"api key {principal.key_id}"


def _topic(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return settings.topic(TOPIC_ALERTS)


def _out(alerts: Sequence[Alert]) -> list[AlertOut]:
    return [AlertOut.of(a) for a in alerts]


def _states(state: list[str] | None) -> tuple[str, ...]:
    if not state:
        return UNRESOLVED
    bad = [s for s in state if s not in STATES]
    if bad:
        raise InvalidInput(f"state: {bad[0]!r} is not one of {', '.join(STATES)}")
    return tuple(state)


@router.get("/alerts", response_model=AlertPage, responses=_ERRORS)
async def list_alerts(
    principal: Operator,
    session: SessionDep,
    state: Annotated[
        list[str] | None,
        Query(
            description="repeatable: open, acknowledged, snoozed, resolved (default: unresolved)"
        ),
    ] = None,
    kind: Annotated[
        Literal["shipment", "carrier"] | None,
        Query(description="shipment (the tenant's parcels) or carrier (carrier-wide outages)"),
    ] = None,
    rule: Annotated[str | None, Query(max_length=64)] = None,
    carrier: Annotated[str | None, Query(max_length=40)] = None,
    lane: Annotated[str | None, Query(max_length=8, description="e.g. CN-US")] = None,
    module: Annotated[str | None, Query(description="origin, international or destination")] = None,
    severity: Annotated[str | None, Query(description="info, warning or critical")] = None,
    shipment_id: uuid.UUID | None = None,
    min_age_s: Annotated[
        float | None,
        Query(
            ge=0,
            le=10 * 365 * 86400,
            description="quiet for at least this many seconds (at most ten years)",
        ),
    ] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AlertPage:
    """The tenant's alerts and the carrier-wide ones, newest opened first, with a cursor that
    stays stable as alerts open."""
    f = repository.AlertFilter(
        states=_states(state),
        kind=kind,
        rule=rule,
        carrier=carrier.lower() if carrier else None,
        lane=lane.upper() if lane else None,
        module=module,
        severity=severity,
        shipment_id=shipment_id,
        min_age_s=min_age_s,
    )
    latest = await queries.latest_change(session, principal.tenant_id)
    page = await repository.list_alerts(
        session, principal.tenant_id, f, now=utcnow(), cursor=cursor, limit=limit
    )
    return AlertPage(
        data=_out(page.items),
        next_cursor=page.next_cursor,
        stream_cursor=latest.encode() if latest else None,
    )


@router.get("/alerts/counts", response_model=CountsOut, responses=_ERRORS)
async def alert_counts(
    principal: Operator,
    session: SessionDep,
    state: Annotated[list[str] | None, Query(description="repeatable; default: unresolved")] = None,
) -> CountsOut:
    """How many alerts the tenant sees (its own and the carrier-wide ones) by rule, carrier and
    lane, largest first; ``carrier_wide`` says how many of ``total`` are carrier-wide."""
    c = await repository.counts(session, principal.tenant_id, states=_states(state))

    def ranked(d: dict[str, int]) -> list[CountOut]:
        return [
            CountOut(key=k, count=n) for k, n in sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))
        ]

    return CountsOut(
        total=c.total,
        carrier_wide=c.carrier_wide,
        by_rule=ranked(c.by_rule),
        by_carrier=ranked(c.by_carrier),
        by_lane=ranked(c.by_lane),
    )


@router.get("/alerts/rules", response_model=RulesOut, responses=_ERRORS)
async def get_rules(principal: Operator, session: SessionDep, request: Request) -> RulesOut:
    """The stale rules the scan applies to this tenant, and the tenant's own overrides."""
    return await _rules(session, request.app.state.settings, principal.tenant_id)


@router.put(
    "/alerts/rules",
    response_model=RulesOut,
    responses={**_ERRORS, 422: {"description": "a rule that does not validate"}},
)
async def put_rules(
    body: RuleSet, principal: Operator, session: SessionDep, request: Request
) -> RulesOut:
    """Replace the tenant's own rules (an empty list goes back to the defaults).

    A rule with the key of a default rule replaces it for this tenant only."""
    settings: Settings = request.app.state.settings
    base = base_rules(settings.alert_rules_file)
    await repository.put_rules(session, base, principal.tenant_id, body.rules, now=utcnow())
    return await _rules(session, settings, principal.tenant_id)


async def _rules(session: AsyncSession, settings: Settings, tenant_id: uuid.UUID) -> RulesOut:
    base = base_rules(settings.alert_rules_file)
    effective = await repository.effective_rules(session, base, tenant_id)
    return RulesOut(
        effective=[RuleOut(rule=r.spec, source=r.source) for r in effective],
        tenant=await repository.stored_rules(session, tenant_id),
    )


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut, responses=_CHANGE_ERRORS)
async def acknowledge(
    alert_id: uuid.UUID, principal: Operator, session: SessionDep, request: Request
) -> AlertOut:
    """Someone is on it: open or snoozed → acknowledged (acknowledging twice changes nothing)."""
    alert = await repository.acknowledge(
        session,
        alert_id,
        tenant_id=principal.tenant_id,
        by=_by(principal),
        now=utcnow(),
        topic=_topic(request),
    )
    return await _after_change(session, request, alert)


@router.post("/alerts/{alert_id}/snooze", response_model=AlertOut, responses=_CHANGE_ERRORS)
async def snooze(
    alert_id: uuid.UUID, body: SnoozeIn, principal: Operator, session: SessionDep, request: Request
) -> AlertOut:
    """Quiet an alert until a time (or for a duration), at most 30 days; the scan reopens it then
    if the shipment is still quiet."""
    now = utcnow()
    until = body.until if body.until is not None else now + timedelta(seconds=body.duration_s or 0)
    if until - now > timedelta(seconds=MAX_SNOOZE_S):
        raise InvalidInput("until: at most 30 days ahead")
    alert = await repository.snooze(
        session,
        alert_id,
        tenant_id=principal.tenant_id,
        until=until,
        by=_by(principal),
        now=now,
        topic=_topic(request),
    )
    return await _after_change(session, request, alert)


@router.post("/alerts/{alert_id}/resolve", response_model=AlertOut, responses=_CHANGE_ERRORS)
async def resolve(
    alert_id: uuid.UUID,
    principal: Operator,
    session: SessionDep,
    request: Request,
    body: ResolveIn | None = None,
) -> AlertOut:
    """Close the alert; the shipment's next quiet spell opens a new one."""
    alert = await repository.resolve(
        session,
        alert_id,
        tenant_id=principal.tenant_id,
        by=_by(principal),
        now=utcnow(),
        topic=_topic(request),
        reason=(body.reason if body and body.reason else "resolved by hand"),
    )
    return await _after_change(session, request, alert)


async def _after_change(session: AsyncSession, request: Request, alert: Alert) -> AlertOut:
    out = AlertOut.of(alert)
    await session.commit()
    await request.app.state.relay.flush()  # publish after commit; a failure is swept up later
    return out


@router.get("/carriers/health", response_model=CarrierHealthList, responses=_ERRORS)
async def carriers_health(_: Operator, session: SessionDep, request: Request) -> CarrierHealthList:
    """Each carrier's API as the last scan saw it, and its open outage alerts.

    ``health``: ``idle`` when it was not polled in the window; ``down`` with a critical open
    outage alert, or with at least ``alert_carrier_min_polls`` polls of which at least
    ``alert_carrier_error_rate`` failed; ``degraded`` with any open outage alert or a fifth of that
    error rate (over any number of polls); else ``ok``. The same for every tenant: it is about the carriers' APIs."""
    settings: Settings = request.app.state.settings
    rows = await repository.carrier_health(session)
    page = await repository.list_alerts(
        session,
        None,
        repository.AlertFilter(kind=CARRIER),
        now=utcnow(),
        limit=repository.MAX_PAGE,
    )
    open_by: dict[str, list[Alert]] = {}
    for a in page.items:
        open_by.setdefault(a.carrier or "", []).append(a)
    window = int(rows[0].window_s) if rows else int(settings.alert_carrier_window_s)
    return CarrierHealthList(
        window_s=window, data=[_health(r, open_by.get(r.carrier, []), settings) for r in rows]
    )


def _health(row: CarrierHealth, alerts: list[Alert], settings: Settings) -> CarrierHealthOut:
    rate = row.error_rate or 0.0
    judged = row.polls >= settings.alert_carrier_min_polls
    limit = settings.alert_carrier_error_rate
    if row.polls == 0 and not alerts:
        health = "idle"
    elif any(a.severity == CRITICAL for a in alerts) or (judged and rate >= limit):
        health = "down"
    elif alerts or rate >= limit / 5:
        health = "degraded"
    else:
        health = "ok"
    return CarrierHealthOut(
        carrier=row.carrier,
        health=health,
        polls=row.polls,
        errors=row.errors,
        error_rate=rate,
        mean_latency_ms=row.latency_ms_avg,
        max_latency_ms=row.latency_ms_max,
        last_ok_at=row.last_ok_at,
        last_error=row.last_error,
        open_alerts=sorted({a.rule_key for a in alerts}),
    )


# --- the live stream --------------------------------------------------------------------------


@router.post("/alerts/stream-token", response_model=StreamTokenOut, responses=_ERRORS)
async def stream_token(
    principal: Operator, session: SessionDep, request: Request
) -> StreamTokenOut:
    """A token that opens ``GET /v1/alerts/stream?token=...`` for five minutes, for clients that
    cannot send headers (a browser's EventSource). The stream it opens ends when it expires (ask
    for a new one and resume with ``last_event_id``); it opens nothing else; revoking the key
    invalidates it."""
    key = await session.get(ApiKey, principal.key_id)
    if key is None:  # revoked and deleted between authentication and here
        raise Unauthorized("invalid or revoked API key")
    config = _config(request)
    token, expires = issue_token(key, utcnow(), config.token_ttl_s)
    url = request.url_for("alert_stream").include_query_params(token=token)
    return StreamTokenOut(
        token=token,
        expires_at=datetime.fromtimestamp(expires, tz=UTC),
        stream_url=str(url),
    )


def _config(request: Request) -> StreamConfig:
    config: StreamConfig | None = getattr(request.app.state, "alert_stream_config", None)
    return config or StreamConfig()


async def _stream_principal(
    request: Request, token: str | None, authorization: str | None, x_api_key: str | None
) -> tuple[Principal, datetime | None]:
    """A stream token (and when it expires), or an operator key as a bearer header. The session
    is closed before the stream starts: an open stream holds no connection between its polls."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        if token:
            principal, expires = await verify_token(session, token, utcnow())
            principal.require(SCOPE)
            return principal, expires
        check = require_scope(SCOPE)
        scheme, _, credentials = (authorization or "").partition(" ")
        bearer = (
            HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials)
            if scheme.lower() == "bearer" and credentials.strip()
            else None
        )
        return await check(request, session, bearer, x_api_key), None


def _fetch() -> FetchChanges:
    async def fetch(
        session: AsyncSession, tenant_id: uuid.UUID, after: Cursor, limit: int
    ) -> list[Change]:
        anchor = (after.at, uuid.UUID(after.id)) if after.id else (after.at, uuid.UUID(int=0))
        alerts = await repository.changes_since(session, tenant_id, anchor, limit=limit)
        outs = _out(alerts)
        return [
            Change(Cursor(a.updated_at, str(a.id)), o.model_dump_json().encode())
            for a, o in zip(alerts, outs, strict=True)
        ]

    return fetch


@router.get(
    "/alerts/stream",
    name="alert_stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-Sent Events: `event: alert` with the alert as JSON (the shape "
            "of GET /v1/alerts items) whenever one of the tenant's alerts opens or changes; "
            "`id:` is the resume point; a `: heartbeat` comment every 15 s.",
        },
        **_ERRORS,
        422: {"description": "a Last-Event-ID this stream did not send"},
    },
)
async def alert_stream(
    request: Request,
    token: Annotated[
        str | None, Query(description="from POST /v1/alerts/stream-token (instead of a key)")
    ] = None,
    last_event_id: Annotated[
        str | None, Query(description="resume after this event id (the Last-Event-ID header wins)")
    ] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """New and changed alerts of the tenant, live, as Server-Sent Events.

    Without a resume point the stream starts now; with one (``Last-Event-ID``, which browsers send
    on their own when they reconnect, or ``?last_event_id=`` such as ``stream_cursor`` from
    ``GET /v1/alerts``) it sends every change after it, at least once: a change from just before
    the resume point may come again, so keep the newest ``updated_at`` per alert id."""
    principal, ends_at = await _stream_principal(request, token, authorization, x_api_key)
    raw = last_event_id_header or last_event_id
    resume = Cursor.decode(raw) if raw else None
    state = request.app.state
    shutdown: asyncio.Event = getattr(state, "shutdown", None) or asyncio.Event()
    stream = AlertStream(state.sessions, principal, _fetch(), _config(request), shutdown, ends_at)
    await stream.start(resume, queries.latest_change)
    return StreamingResponse(
        _counted(state, stream.events()),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _counted(state: State, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Keep ``app.state.open_alert_streams`` true to the streams still running."""
    state.open_alert_streams = getattr(state, "open_alert_streams", 0) + 1
    try:
        async for chunk in events:
            yield chunk
    finally:
        state.open_alert_streams -= 1


# Last: /alerts/{alert_id} would otherwise shadow /alerts/stream.
@router.get(
    "/alerts/{alert_id}",
    response_model=AlertOut,
    responses={**_ERRORS, 404: {"description": "no such alert for this tenant"}},
)
async def get_alert(alert_id: uuid.UUID, principal: Operator, session: SessionDep) -> AlertOut:
    alert = await repository.get_alert(session, alert_id, tenant_id=principal.tenant_id)
    return AlertOut.of(alert)
