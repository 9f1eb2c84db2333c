"""docker-compose.yml, deploy/Dockerfile and deploy/env.example agree with the CLI and Settings.

Docker does not run where the tests run, so these checks stand in for ``docker compose up``: every
command a container runs must parse with the real CLI parser, every role must have a container,
and every ``THROUGHLINE_*`` variable must be a real setting.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from services.cli import _parser
from services.cli.roles import ROLES
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
PREFIX = "THROUGHLINE_"
ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _app_services() -> dict[str, dict[str, Any]]:
    """The services built from deploy/Dockerfile, i.e. the ones running our CLI."""
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return {
        name: svc
        for name, svc in services.items()
        if isinstance(svc.get("build"), dict)
        and svc["build"].get("dockerfile") == "deploy/Dockerfile"
    }


def _parse_cli(argv: list[str]) -> argparse.Namespace:
    try:
        return _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on an unknown command or choice
        pytest.fail(f"throughline rejects {argv!r} (exit {exc.code})", pytrace=False)


def _environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):  # the `- KEY=value` form
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _env_example() -> dict[str, str]:
    pairs: dict[str, str] = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = ASSIGNMENT.match(line)
        assert match, f"env.example line {number} is neither a comment nor KEY=value: {line!r}"
        assert match[1] not in pairs, f"env.example sets {match[1]} twice"
        pairs[match[1]] = match[2]
    return pairs


def _unknown_settings(keys: list[str]) -> list[str]:
    fields = set(Settings.model_fields)
    ours = [k for k in keys if k.startswith(PREFIX)]
    return sorted(k for k in ours if k.removeprefix(PREFIX).lower() not in fields)


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for parts in (line.split(None, 1) for line in lines if line and not line.startswith("#"))
    ]


def _exec_form(instruction: str) -> list[str]:
    values = [args for name, args in _dockerfile_instructions() if name == instruction]
    assert values, f"deploy/Dockerfile has no {instruction}"
    form = json.loads(values[-1])  # the last one wins, as in Docker
    assert isinstance(form, list) and all(isinstance(a, str) for a in form), (
        f"{instruction} must be in exec (JSON list) form, got {values[-1]!r}"
    )
    return form


def test_app_services_exist() -> None:
    assert _app_services(), "no service in docker-compose.yml builds deploy/Dockerfile"
    assert (ROOT / "deploy" / "Dockerfile").is_file()


@pytest.mark.parametrize("name", sorted(_app_services()))
def test_compose_command_is_a_valid_cli_invocation(name: str) -> None:
    command = _app_services()[name].get("command")
    assert isinstance(command, list) and all(isinstance(a, str) for a in command), (
        f"service {name}: command must be a list of strings, got {command!r}"
    )
    args = _parse_cli(command)
    if args.command == "run":
        assert args.role in ROLES, f"service {name}: unknown role {args.role!r}"


def test_every_role_has_a_compose_service() -> None:
    running: set[str] = set()
    for svc in _app_services().values():
        args = _parse_cli(svc["command"])
        if args.command == "run":
            running.add(args.role)
    missing = sorted(set(ROLES) - {"all"} - running)
    assert not missing, f"roles without a docker-compose service: {missing}"


def test_compose_runs_migrate_once_before_the_roles() -> None:
    services = _app_services()
    migrate = [n for n, s in services.items() if _parse_cli(s["command"]).command == "migrate"]
    assert len(migrate) == 1, f"expected one migrate service, found {migrate}"
    for name, svc in services.items():
        args = _parse_cli(svc["command"])
        if args.command == "run" and args.role not in ("simulator",):
            condition = (svc.get("depends_on") or {}).get(migrate[0], {}).get("condition")
            assert condition == "service_completed_successfully", (
                f"service {name} must wait for {migrate[0]} to complete"
            )


def test_compose_environment_uses_real_settings() -> None:
    keys = [key for svc in _compose()["services"].values() for key in _environment(svc)]
    assert any(k.startswith(PREFIX) for k in keys), "compose sets no THROUGHLINE_* variable"
    unknown = _unknown_settings(keys)
    assert not unknown, f"docker-compose.yml sets variables Settings does not read: {unknown}"


def test_compose_environment_values_validate() -> None:
    for name, svc in _app_services().items():
        for key, value in _environment(svc).items():
            field = Settings.model_fields.get(key.removeprefix(PREFIX).lower())
            if not key.startswith(PREFIX) or field is None:
                continue
            try:
                TypeAdapter(field.annotation).validate_python(value)
            except ValidationError as exc:
                pytest.fail(f"service {name}: {key}={value!r} is invalid: {exc}", pytrace=False)


def test_env_example_lists_every_setting_with_its_default() -> None:
    pairs = _env_example()
    unknown = _unknown_settings(list(pairs))
    assert not unknown, f"deploy/env.example lists variables Settings does not read: {unknown}"
    assert all(k.startswith(PREFIX) for k in pairs), "env.example sets a non-THROUGHLINE_ variable"
    expected = {PREFIX + name.upper() for name in Settings.model_fields}
    missing = sorted(expected - set(pairs))
    assert not missing, f"deploy/env.example does not list: {missing}"
    for key, value in pairs.items():
        field = Settings.model_fields[key.removeprefix(PREFIX).lower()]
        parsed = TypeAdapter(field.annotation).validate_python(value)
        assert parsed == field.default, (
            f"{key}: env.example says {value!r}, default is {field.default!r}"
        )


def test_dockerfile_entrypoint_and_default_command() -> None:
    assert _exec_form("ENTRYPOINT") == ["throughline"]
    args = _parse_cli(_exec_form("CMD"))
    assert args.command == "run" and args.role in ROLES


def test_dockerfile_copies_files_that_exist() -> None:
    for name, args in _dockerfile_instructions():
        if name != "COPY" or "--from=" in args:
            continue
        *sources, _dest = [a for a in args.split() if not a.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"deploy/Dockerfile copies {source}, which is missing"


def test_console_script_points_at_a_callable() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    target = scripts["throughline"]
    module_name, _, attribute = target.partition(":")
    assert attribute, f"[project.scripts] throughline = {target!r} names no callable"
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    assert callable(obj), f"{target} is not callable"
