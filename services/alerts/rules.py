"""Stale rules: the default set, the rules file, validation, precedence and thresholds.

A rule says how long a shipment may stay quiet in a state: its conditions (module, status,
substatus, carrier, lane = origin→destination country; each None matches anything) and
``max_silence_s``. Layers, each replacing the one before by ``key``:

1. ``DEFAULT_RULES`` (code), 2. the rules file (setting ``alert_rules_file``, JSON or TOML),
3. global rules stored through the API (operators), 4. a tenant's own rules (that tenant only).

Among the rules whose conditions match a shipment the most specific wins: carrier and lane, then
lane, then carrier, then neither; ties go to the finer condition (substatus, then status, then
module), then to the key. The winner alone decides whether the shipment is stale: a lane rule with
a longer limit is not overruled by a stricter default.

A rule with ``learned`` uses the observed p90 dwell of the shipment's (lane, carrier, status,
substatus) once at least ``alert_learned_min_samples`` dwells exist, never below ``floor_s``.
"""

from __future__ import annotations

import json
import tomllib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from services.alerts.models import (
    SOURCE_CONFIG,
    SOURCE_DEFAULT,
    SOURCE_OPERATOR,
    SOURCE_TENANT,
)
from shared.errors import InvalidInput
from shared.taxonomy import Module, Status, Substatus

HOUR = 3600.0
DAY = 86400.0
MAX_SILENCE_S = 365 * DAY

RuleKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$", to_upper=True)]
Carrier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
Severity = Literal["info", "warning", "critical"]

# Carrier-level alerts (kind='carrier'); their limits are settings (alert_carrier_*).
CARRIER_ERRORS = "carrier_errors"
CARRIER_SILENT = "carrier_silent"


class RuleSpec(BaseModel):
    """One rule as given to the API or written in the rules file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: RuleKey
    name: str = Field(default="", max_length=200)
    module: Module | None = None
    status: Status | None = None
    substatus: Substatus | None = None
    carrier: Carrier | None = None
    lane_origin: Country | None = None
    lane_destination: Country | None = None
    max_silence_s: float = Field(gt=0, le=MAX_SILENCE_S)
    severity: Severity = "warning"
    learned: bool = Field(default=False, description="use the lane's p90 dwell once known")
    floor_s: float | None = Field(default=None, ge=0, le=MAX_SILENCE_S)
    enabled: bool = True

    @model_validator(mode="after")
    def _meaningful(self) -> RuleSpec:
        if self.status in (Status.DELIVERED, Status.RETURNED):
            raise ValueError("a delivered or returned shipment is finished: it cannot go stale")
        if self.module is None and self.status is None and self.substatus is None:
            raise ValueError("a rule needs at least one of module, status, substatus")
        return self


class RuleSet(BaseModel):
    """The body of ``PUT /v1/alerts/rules``: the whole stored set of the caller's scope."""

    model_config = ConfigDict(extra="forbid")

    rules: list[RuleSpec] = Field(max_length=200)

    @model_validator(mode="after")
    def _unique_keys(self) -> RuleSet:
        keys = [r.key for r in self.rules]
        duplicated = sorted({k for k in keys if keys.count(k) > 1})
        if duplicated:
            raise ValueError(f"duplicate rule keys: {', '.join(duplicated)}")
        return self


@dataclass(frozen=True)
class Rule:
    """An effective rule: its spec, which layer it came from, and its rank among matches."""

    spec: RuleSpec
    source: str
    tenant_id: uuid.UUID | None = None

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def rank(self) -> int:
        return rank(self.spec)


def rank(spec: RuleSpec) -> int:
    """Higher wins: scope first (carrier and lane 3, lane 2, carrier 1), then the finer condition."""
    lane = spec.lane_origin is not None or spec.lane_destination is not None
    carrier = spec.carrier is not None
    scope = 3 if (lane and carrier) else 2 if lane else 1 if carrier else 0
    fine = (
        4 * (spec.substatus is not None) + 2 * (spec.status is not None) + (spec.module is not None)
    )
    return scope * 8 + fine


def _r(
    key: str, name: str, silence_s: float, severity: Severity = "warning", **cond: Any
) -> RuleSpec:
    return RuleSpec(key=key, name=name, max_silence_s=silence_s, severity=severity, **cond)


DEFAULT_RULES: tuple[RuleSpec, ...] = (
    _r("no_carrier_data", "registered, nothing from any carrier", 3 * DAY, status=Status.PENDING),
    _r(
        "no_pickup",
        "label created, not picked up",
        3 * DAY,
        status=Status.INFO_RECEIVED,
        learned=True,
        floor_s=2 * DAY,
    ),
    _r(
        "export_customs_held",
        "held in export customs",
        48 * HOUR,
        "critical",
        substatus=Substatus.EXPORT_CUSTOMS_HELD,
    ),
    _r(
        "export_customs",
        "in export customs",
        72 * HOUR,
        substatus=Substatus.EXPORT_CUSTOMS_PRESENTED,
        learned=True,
        floor_s=24 * HOUR,
    ),
    _r(
        "linehaul",
        "in linehaul, departed the origin country",
        5 * DAY,
        substatus=Substatus.DEPARTED_ORIGIN_COUNTRY,
        learned=True,
        floor_s=3 * DAY,
    ),
    _r(
        "handoff_black_hole",
        "arrived in the destination country, no destination-carrier event",
        2 * DAY,
        "critical",
        substatus=Substatus.ARRIVED_DESTINATION_COUNTRY,
        learned=True,
        floor_s=DAY,
    ),
    _r(
        "import_customs",
        "in import customs",
        48 * HOUR,
        substatus=Substatus.IMPORT_CUSTOMS_PRESENTED,
        learned=True,
        floor_s=24 * HOUR,
    ),
    _r(
        "import_customs_held",
        "held in import customs",
        48 * HOUR,
        "critical",
        substatus=Substatus.IMPORT_CUSTOMS_HELD,
    ),
    _r("duties_unpaid", "duties payable, not paid", 5 * DAY, substatus=Substatus.DUTIES_PAYABLE),
    _r(
        "in_transit",
        "in transit, no scan",
        7 * DAY,
        status=Status.IN_TRANSIT,
        learned=True,
        floor_s=3 * DAY,
    ),
    _r(
        "out_for_delivery",
        "out for delivery, not delivered",
        24 * HOUR,
        "critical",
        status=Status.OUT_FOR_DELIVERY,
    ),
    _r(
        "failed_attempt",
        "failed delivery attempt, nothing since",
        3 * DAY,
        status=Status.FAILED_ATTEMPT,
    ),
    _r(
        "awaiting_pickup", "at a pickup point", 10 * DAY, "info", status=Status.AVAILABLE_FOR_PICKUP
    ),
    _r("exception", "exception, nothing since", 2 * DAY, "critical", status=Status.EXCEPTION),
)


# --- the rules file -------------------------------------------------------------------------


def parse_rules(data: Any, where: str) -> list[RuleSpec]:
    """``{"rules": [...]}`` (or TOML ``[[rules]]`` tables) → validated specs, or ``InvalidInput``."""
    try:
        return RuleSet.model_validate(data).rules
    except ValidationError as exc:
        first = exc.errors()[0]
        at = ".".join(str(p) for p in first["loc"]) or "rules"
        raise InvalidInput(f"{where}: {at}: {first['msg']}") from exc


def load_rules_file(path: str | Path) -> list[RuleSpec]:
    """Read a JSON (``.json``) or TOML (anything else) rules file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"alert rules file {p}: {exc.strerror}") from exc
    try:
        data = json.loads(raw) if p.suffix == ".json" else tomllib.loads(raw.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"alert rules file {p}: {exc}") from exc
    return parse_rules(data, f"alert rules file {p}")


def base_rules(rules_file: str = "") -> list[Rule]:
    """Code defaults with the rules file laid over them (by key)."""
    merged = {s.key: Rule(s, SOURCE_DEFAULT) for s in DEFAULT_RULES}
    if rules_file:
        merged.update({s.key: Rule(s, SOURCE_CONFIG) for s in load_rules_file(rules_file)})
    return list(merged.values())


def layered(
    base: Iterable[Rule],
    stored_global: Iterable[RuleSpec],
    stored_tenant: Iterable[RuleSpec] = (),
    tenant_id: uuid.UUID | None = None,
) -> list[Rule]:
    """The effective rules of a tenant (or the global set when ``tenant_id`` is None)."""
    merged = {r.key: r for r in base}
    merged.update({s.key: Rule(s, SOURCE_OPERATOR) for s in stored_global})
    merged.update({s.key: Rule(s, SOURCE_TENANT, tenant_id) for s in stored_tenant})
    return sorted(merged.values(), key=lambda r: (-r.rank, r.key))


# --- selection and threshold (the scan does the same in SQL) --------------------------------


@dataclass(frozen=True)
class Facts:
    """What a rule is matched against."""

    status: str
    substatus: str | None = None
    module: str | None = None
    carrier: str | None = None
    origin: str | None = None
    destination: str | None = None


def matches(spec: RuleSpec, f: Facts) -> bool:
    checks = (
        (spec.status, f.status),
        (spec.substatus, f.substatus),
        (spec.module, f.module),
        (spec.carrier, f.carrier),
        (spec.lane_origin, f.origin),
        (spec.lane_destination, f.destination),
    )
    return all(want is None or want == have for want, have in checks)


def select_rule(rules: Sequence[Rule], facts: Facts) -> Rule | None:
    """The most specific enabled rule matching ``facts``; None when none does."""
    candidates = [r for r in rules if r.spec.enabled and matches(r.spec, facts)]
    if not candidates:
        return None
    return min(candidates, key=lambda r: (-r.rank, r.key))


def learned_source(samples: int) -> str:
    return f"learned p90 over {samples}"


def threshold(rule: Rule, learned: tuple[float, int] | None, min_samples: int) -> tuple[float, str]:
    """Seconds of silence allowed, and where that figure came from."""
    spec = rule.spec
    if spec.learned and learned is not None and learned[1] >= min_samples:
        p90, samples = learned
        return max(p90, spec.floor_s or 0.0), learned_source(samples)
    return spec.max_silence_s, rule.source


def spec_of(row: Any) -> RuleSpec:
    """A stored ``alert_rule`` row as a spec."""
    return RuleSpec(
        key=row.key,
        name=row.name,
        module=row.module,
        status=row.status,
        substatus=row.substatus,
        carrier=row.carrier,
        lane_origin=row.lane_origin,
        lane_destination=row.lane_destination,
        max_silence_s=row.max_silence_s,
        severity=row.severity,
        learned=row.learned,
        floor_s=row.floor_s,
        enabled=row.enabled,
    )
