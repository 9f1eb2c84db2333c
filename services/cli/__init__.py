"""``throughline``: the one composition root. Every command builds its settings in ``main()``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from shared.errors import InvalidInput
from shared.log import configure_logging
from shared.settings import Settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json and args.command not in ("demo",))
    result: int = args.func(settings, args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="throughline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run everything in one process on SQLite with the simulator")
    demo.add_argument("--db", default="throughline-demo.db", help="SQLite file (kept across runs)")
    demo.add_argument("--port", type=int, default=8000, help="API port")
    demo.add_argument("--simulator-port", type=int, default=8100)
    demo.add_argument("--exit-after", type=float, default=None, help=argparse.SUPPRESS)
    demo.set_defaults(func=_demo)

    migrate = sub.add_parser("migrate", help="apply database migrations (or --downgrade REV)")
    migrate.add_argument("--downgrade", metavar="REV", default=None)
    migrate.set_defaults(func=_migrate)

    from services.cli.roles import ROLES

    run = sub.add_parser("run", help="run one service role against the configured bus and database")
    run.add_argument("role", choices=sorted(ROLES))
    run.set_defaults(func=_run)

    parse = sub.add_parser("parse", help="print the canonical events of a saved carrier response")
    parse.add_argument("carrier")
    parse.add_argument("file", type=Path)
    parse.add_argument("--tracking-number", default=None, help="the number that was asked for")
    parse.set_defaults(func=_parse)

    carriers = sub.add_parser("carriers", help="list the supported carrier ids")
    carriers.set_defaults(func=_carriers)

    renorm = sub.add_parser(
        "renormalise", help="re-parse stored carrier answers and publish the corrected events"
    )
    renorm.add_argument("--carrier", default=None, help="only this carrier's payloads")
    renorm.add_argument(
        "--since",
        default=None,
        type=_instant,
        help="only payloads received from this ISO 8601 time (UTC when no offset)",
    )
    renorm.set_defaults(func=_renormalise)

    tenants = sub.add_parser("tenants", help="manage tenants").add_subparsers(
        dest="action", required=True
    )
    create = tenants.add_parser("create", help="create a tenant and print its first API key")
    create.add_argument("name")
    create.add_argument("--scopes", default="merchant", help="comma-separated: merchant,operator")
    create.set_defaults(func=_tenants_create)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    key = keys.add_parser("create", help="create another API key for a tenant")
    key.add_argument("tenant_id", type=uuid.UUID)
    key.add_argument("--scopes", default="merchant")
    key.set_defaults(func=_keys_create)
    listed = keys.add_parser("list", help="a tenant's keys (prefixes, scopes, revocation)")
    listed.add_argument("tenant_id", type=uuid.UUID)
    listed.set_defaults(func=_keys_list)
    revoke = keys.add_parser("revoke", help="revoke an API key at once")
    revoke.add_argument("key_id", type=uuid.UUID)
    revoke.set_defaults(func=_keys_revoke)

    imp = sub.add_parser(
        "import", help="register the shipments of a CSV file through the bulk API, with a key"
    )
    imp.add_argument("file", type=Path, help="CSV with a header: tracking_number[,carrier,...]")
    imp.add_argument(
        "--api-url", default=None, help="API base URL (default: public_base_url or api_host:port)"
    )
    imp.add_argument(
        "--api-key", default=None, help="a merchant key (default: $THROUGHLINE_API_KEY)"
    )
    imp.add_argument("--batch", type=int, default=500, help="rows per request (at most 1000)")
    imp.set_defaults(func=_import)
    return parser


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from services.cli.demo import run_demo

    return asyncio.run(run_demo(settings, args))


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from shared.migrate import downgrade, upgrade

    if args.downgrade:
        downgrade(settings.database_url, args.downgrade)
    else:
        upgrade(settings.database_url)
    print("migrations applied" if not args.downgrade else f"downgraded to {args.downgrade}")
    return 0


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from services.cli.roles import ROLES
    from services.cli.runtime import runtime, stop_on_signals
    from shared.metrics import metrics_server

    async def go() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        if args.role == "simulator":  # the carriers' side: no database, no bus
            from services.cli.roles import serve_simulator

            await serve_simulator(settings, stop)
            return
        with metrics_server(settings.metrics_host, settings.metrics_port):
            async with runtime(settings) as rt:
                await ROLES[args.role](rt, stop)

    _run_loop(go())
    return 0


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop when installed (uvicorn[standard] brings it): the API serves several times more
    requests a second on it (BENCHMARKS.md, public tracking query); plain asyncio otherwise."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def _parse(settings: Settings, args: argparse.Namespace) -> int:
    from services.carriers.adapters import ADAPTERS

    adapter = ADAPTERS.get(args.carrier)
    if adapter is None:
        print(
            f"unknown carrier {args.carrier!r}; supported: {', '.join(sorted(ADAPTERS))}",
            file=sys.stderr,
        )
        return 2
    try:
        payload = args.file.read_bytes()
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    result = adapter.parse(payload, requested=args.tracking_number)
    for event in result.events:
        sys.stdout.write(orjson.dumps(event.model_dump(mode="json")).decode() + "\n")
    for error in result.errors:
        line = {
            "error": error.code,
            "tracking_number": error.tracking_number,
            "message": error.message,
        }
        sys.stdout.write(orjson.dumps(line).decode() + "\n")
    return 1 if result.errors and not result.events else 0


def _carriers(settings: Settings, args: argparse.Namespace) -> int:
    from services.carriers.adapters import ADAPTERS

    for carrier_id in sorted(ADAPTERS):
        print(f"{carrier_id}\t{ADAPTERS[carrier_id].name}")
    return 0


def _instant(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from exc
    return when if when.utcoffset() is not None else when.replace(tzinfo=UTC)


def _renormalise(settings: Settings, args: argparse.Namespace) -> int:
    from services.carriers.renormalise import renormalise
    from services.cli.runtime import runtime

    async def go() -> int:
        async with runtime(settings) as rt:
            stats = await renormalise(
                rt.settings, rt.bus, rt.sessions, carrier=args.carrier, since=args.since
            )
        print(
            f"payloads {stats.payloads}  events {stats.events}  parse errors {stats.errors}"
            f"  skipped {stats.skipped}"
        )
        return 0

    try:
        return asyncio.run(go())
    except InvalidInput as exc:
        print(str(exc), file=sys.stderr)
        return 2


def _scopes(value: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in value.split(",") if s.strip())


def _tenants_create(settings: Settings, args: argparse.Namespace) -> int:
    from services.cli.accounts import new_tenant

    tenant_id, key = asyncio.run(new_tenant(settings, args.name, _scopes(args.scopes)))
    print(f"tenant  {tenant_id}\napi key {key}\n(the key is shown once; it is stored hashed)")
    return 0


def _keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from services.cli.accounts import new_key

    key = asyncio.run(new_key(settings, args.tenant_id, _scopes(args.scopes)))
    print(f"api key {key}\n(the key is shown once; it is stored hashed)")
    return 0


def _keys_list(settings: Settings, args: argparse.Namespace) -> int:
    from services.cli.accounts import list_keys
    from shared.db import utcnow

    now = utcnow()
    for key in asyncio.run(list_keys(settings, args.tenant_id)):
        state = "active" if key.revoked_at is None or key.revoked_at > now else "revoked"
        print(f"{key.id}\ttl_{key.prefix}_…\t{','.join(key.scopes)}\t{state}")
    return 0


def _keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from services.cli.accounts import revoke_key

    if not asyncio.run(revoke_key(settings, args.key_id)):
        print(f"no API key {args.key_id}", file=sys.stderr)
        return 2
    print(f"revoked {args.key_id}")
    return 0


def _import(settings: Settings, args: argparse.Namespace) -> int:
    import os

    from services.merchants.importer import ImportFailed, import_csv

    key = args.api_key or os.environ.get("THROUGHLINE_API_KEY", "")
    if not key:
        print("pass --api-key or set THROUGHLINE_API_KEY (a merchant key)", file=sys.stderr)
        return 2
    url = (
        args.api_url
        or settings.public_base_url
        or f"http://{settings.api_host}:{settings.api_port}"
    )
    try:
        summary = asyncio.run(
            import_csv(args.file, url, key, out=sys.stdout, progress=sys.stderr, batch=args.batch)
        )
    except ImportFailed as exc:
        print(f"import failed: {exc}", file=sys.stderr)
        return 2
    print(
        f"{summary.rows} rows: {summary.created} created, {summary.existing} existing, "
        f"{summary.errors} errors",
        file=sys.stderr,
    )
    return 1 if summary.errors else 0
