"""``throughline``: the one composition root. Every command builds its settings in ``main()``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path

import orjson

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

    async def go() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        if args.role == "simulator":  # the carriers' side: no database, no bus
            from services.cli.roles import serve_simulator

            await serve_simulator(settings, stop)
            return
        async with runtime(settings) as rt:
            await ROLES[args.role](rt, stop)

    asyncio.run(go())
    return 0


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
