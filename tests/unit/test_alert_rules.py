"""Stale rules: precedence, layering by key, thresholds (default or learned), the rules file."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.alerts.health import CarrierLimits, failing
from services.alerts.health import Facts as CarrierFacts
from services.alerts.rules import (
    DEFAULT_RULES,
    Facts,
    Rule,
    RuleSet,
    RuleSpec,
    base_rules,
    layered,
    load_rules_file,
    rank,
    select_rule,
    threshold,
)
from shared.errors import InvalidInput
from shared.taxonomy import Status

TENANT = uuid.UUID(int=7)
HOLE = Facts("in_transit", "arrived_destination_country", "international", "usps", "CN", "US")


def spec(key: str, **kw: object) -> RuleSpec:
    return RuleSpec.model_validate({"key": key, "max_silence_s": 3600, **kw})


def test_defaults_cover_the_issue_s_examples() -> None:
    keys = {s.key: s for s in DEFAULT_RULES}
    assert keys["no_pickup"].max_silence_s == 3 * 86400
    assert keys["import_customs"].max_silence_s == 48 * 3600
    assert keys["out_for_delivery"].max_silence_s == 24 * 3600
    assert keys["handoff_black_hole"].max_silence_s == 2 * 86400
    assert keys["linehaul"].substatus == "departed_origin_country"
    assert len(keys) == len(DEFAULT_RULES)


def test_specific_beats_general_carrier_lane_over_lane_over_carrier() -> None:
    general = spec("general", substatus="arrived_destination_country")
    carrier = spec("carrier", substatus="arrived_destination_country", carrier="usps")
    lane = spec("lane", substatus="arrived_destination_country", lane_destination="US")
    both = spec("both", status="in_transit", carrier="usps", lane_origin="CN")
    rules = [Rule(s, "default") for s in (general, carrier, lane, both)]
    assert rank(both) > rank(lane) > rank(carrier) > rank(general)
    assert select_rule(rules, HOLE).key == "both"  # type: ignore[union-attr]
    assert select_rule(rules[:3], HOLE).key == "lane"  # type: ignore[union-attr]
    assert select_rule(rules[:2], HOLE).key == "carrier"  # type: ignore[union-attr]
    other_lane = Facts("in_transit", "arrived_destination_country", None, "dhl", "CN", "GB")
    assert select_rule(rules, other_lane).key == "general"  # type: ignore[union-attr]


def test_finer_condition_wins_at_the_same_scope_and_disabled_rules_do_not_match() -> None:
    rules = base_rules()
    chosen = select_rule(rules, HOLE)
    assert chosen is not None and chosen.key == "handoff_black_hole"  # not plain in_transit
    held = Facts("exception", "import_customs_held")
    assert select_rule(rules, held).key == "import_customs_held"  # type: ignore[union-attr]
    off = layered(rules, [spec("handoff_black_hole", substatus="arrived_destination_country",
                               enabled=False)])  # fmt: skip
    assert select_rule(off, HOLE).key == "in_transit"  # type: ignore[union-attr]
    assert select_rule(rules, Facts("delivered")) is None


def test_layers_replace_by_key_and_say_where_a_rule_came_from() -> None:
    base = base_rules()
    mine = spec("out_for_delivery", status="out_for_delivery", max_silence_s=7200)
    ops = spec("out_for_delivery", status="out_for_delivery", max_silence_s=10800)
    extra = spec("cn_us_linehaul", substatus="departed_origin_country", lane_origin="CN")
    everyone = {r.key: r for r in layered(base, [ops, extra])}
    assert (
        everyone["out_for_delivery"].source,
        everyone["out_for_delivery"].spec.max_silence_s,
    ) == (
        "operator",
        10800,
    )
    assert everyone["cn_us_linehaul"].source == "operator"
    assert everyone["no_pickup"].source == "default"
    tenant = {r.key: r for r in layered(base, [ops], [mine], TENANT)}
    assert tenant["out_for_delivery"].source == "tenant"
    assert tenant["out_for_delivery"].tenant_id == TENANT
    assert tenant["out_for_delivery"].spec.max_silence_s == 7200


def test_threshold_uses_the_learned_p90_with_its_floor_once_enough_samples() -> None:
    learning = Rule(spec("linehaul", substatus="departed_origin_country", learned=True,
                         max_silence_s=5 * 86400, floor_s=86400), "default")  # fmt: skip
    assert threshold(learning, None, 50) == (5 * 86400, "default")
    assert threshold(learning, (3 * 86400, 49), 50) == (5 * 86400, "default")  # too few
    assert threshold(learning, (3 * 86400, 120), 50) == (3 * 86400, "learned p90 over 120")
    assert threshold(learning, (3600, 120), 50) == (86400, "learned p90 over 120")  # the floor
    fixed = Rule(spec("x", status="in_transit", max_silence_s=100), "config")
    assert threshold(fixed, (5, 500), 50) == (100, "config")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"key": "x", "max_silence_s": 10}, "at least one of module, status, substatus"),
        ({"key": "x", "status": "delivered", "max_silence_s": 10}, "cannot go stale"),
        ({"key": "x", "status": "in_transit", "max_silence_s": 0}, "greater than 0"),
        ({"key": "Bad Key", "status": "in_transit", "max_silence_s": 10}, "pattern"),
        ({"key": "x", "status": "nope", "max_silence_s": 10}, "Input should be"),
        (
            {"key": "x", "status": "in_transit", "lane_origin": "CHN", "max_silence_s": 10},
            "pattern",
        ),
        ({"key": "x", "status": "in_transit", "max_silence_s": 10, "colour": 1}, "Extra inputs"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RuleSpec.model_validate(body)


def test_a_rule_set_refuses_duplicate_keys() -> None:
    rule = {"key": "x", "status": "in_transit", "max_silence_s": 10}
    with pytest.raises(ValueError, match="duplicate rule keys: x"):
        RuleSet.model_validate({"rules": [rule, rule]})


def test_rules_file_in_json_and_toml_lays_over_the_defaults(tmp_path: Path) -> None:
    as_json = tmp_path / "rules.json"
    as_json.write_text(json.dumps({"rules": [{"key": "linehaul", "max_silence_s": 86400,
                                              "substatus": "departed_origin_country"}]}))  # fmt: skip
    as_toml = tmp_path / "rules.toml"
    as_toml.write_text(
        '[[rules]]\nkey = "cn_gb_customs"\nsubstatus = "import_customs_presented"\n'
        'lane_origin = "cn"\nlane_destination = "GB"\nmax_silence_s = 7200\nseverity = "critical"\n'
    )
    assert [s.key for s in load_rules_file(as_json)] == ["linehaul"]
    [toml_rule] = load_rules_file(as_toml)
    assert (toml_rule.lane_origin, toml_rule.severity) == ("CN", "critical")
    merged = {r.key: r for r in base_rules(str(as_json))}
    assert merged["linehaul"].source == "config"
    assert merged["linehaul"].spec.max_silence_s == 86400 and not merged["linehaul"].spec.learned
    assert merged["no_pickup"].source == "default"


def test_a_broken_rules_file_says_where(tmp_path: Path) -> None:
    broken = tmp_path / "rules.toml"
    broken.write_text('[[rules]]\nkey = "x"\nstatus = "in_transit"\nmax_silence_s = -1\n')
    with pytest.raises(InvalidInput, match=r"rules\.toml: rules\.0\.max_silence_s"):
        load_rules_file(broken)
    with pytest.raises(InvalidInput, match="No such file"):
        load_rules_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InvalidInput, match="bad.json"):
        load_rules_file(tmp_path / "bad.json")


def test_carrier_health_limits() -> None:
    limits = CarrierLimits(min_polls=10, error_rate=0.5, silent_s=3600, min_active=5)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    down = CarrierFacts("fedex", polls=10, errors=5)
    assert set(failing(down, limits, now)) == {"carrier_errors"}
    assert failing(CarrierFacts("fedex", polls=9, errors=9), limits, now) == {}  # too few polls
    assert failing(CarrierFacts("fedex", polls=10, errors=4), limits, now) == {}
    quiet = CarrierFacts("usps", active=5, last_event_at=now - timedelta(hours=2))
    assert set(failing(quiet, limits, now)) == {"carrier_silent"}
    assert failing(CarrierFacts("usps", active=4, last_event_at=None), limits, now) == {}
    recent = CarrierFacts("usps", active=5, last_event_at=now - timedelta(minutes=5))
    assert failing(recent, limits, now) == {}


# --- the scan's cuts: which candidates some rule able to win could call stale --------------------


def _cut_s(cuts: list[tuple[uuid.UUID, str, str, datetime]], now: datetime) -> dict[Any, float]:
    return {(scope, st, sub): (now - cut).total_seconds() for scope, st, sub, cut in cuts}


def test_cuts_follow_the_rules_able_to_win() -> None:
    from services.alerts.scan import _GLOBAL_SCOPE, _cuts

    now = datetime(2026, 1, 1, tzinfo=UTC)
    base = base_rules()
    cut = _cut_s(_cuts(base, {}, now), now)
    g = _GLOBAL_SCOPE
    # The substatus rule outranks the status rule: 2 days, not in_transit's 7.
    assert cut[(g, "in_transit", "arrived_destination_country")] == 2 * 86400
    assert cut[(g, "in_transit", "departed_hub")] == 7 * 86400
    assert cut[(g, "pending", "")] == 3 * 86400
    assert (g, "delivered", "") not in cut  # no rule: never stale
    # A rule that matches but cannot win (same rank, later key) does not lower the cut.
    loser = Rule(RuleSpec(key="in_transit_z", status=Status.IN_TRANSIT, max_silence_s=3600), "x")
    cut = _cut_s(_cuts([*base, loser], {}, now), now)
    assert cut[(g, "in_transit", "departed_hub")] == 7 * 86400

    # A lane rule that outranks the default lowers the cut where it could apply, not elsewhere.
    lane = Rule(
        RuleSpec(key="cn_us", status=Status.IN_TRANSIT, lane_origin="CN", max_silence_s=86400),
        "operator",
    )
    cut = _cut_s(_cuts([*base, lane], {}, now), now)
    assert cut[(g, "in_transit", "departed_hub")] == 86400
    # (a lane outranks any rule without carrier or lane, however fine)
    assert cut[(g, "in_transit", "arrived_destination_country")] == 86400
    assert cut[(g, "exception", "import_customs_held")] == 48 * 3600
    assert cut[(g, "info_received", "")] == 3 * 86400  # nothing learned: no_pickup's limit
    # A longer lane limit cannot hide the default where the default may still win (other lanes).
    long_lane = Rule(
        RuleSpec(key="cn_us", status=Status.IN_TRANSIT, lane_origin="CN", max_silence_s=30 * 86400),
        "operator",
    )
    cut = _cut_s(_cuts([*base, long_lane], {}, now), now)
    assert cut[(g, "in_transit", "departed_hub")] == 7 * 86400

    # Learned: the lowest p90 of that state, never below the rule's floor, never above its limit.
    lows = {("in_transit", "departed_hub"): 4 * 86400.0, ("in_transit", "picked_up"): 3600.0}
    cut = _cut_s(_cuts(base, lows, now), now)
    assert cut[(g, "in_transit", "departed_hub")] == 4 * 86400
    assert cut[(g, "in_transit", "picked_up")] == 3 * 86400  # the floor
    assert cut[(g, "in_transit", "departed_origin_country")] == 5 * 86400  # nothing learned

    # A tenant with rules of its own gets cuts of its own.
    tenant = uuid.uuid4()
    own = [Rule(r.spec, r.source, tenant) for r in base]
    cut = _cut_s(_cuts([*base, *own], {}, now), now)
    assert cut[(tenant, "in_transit", "departed_hub")] == cut[(g, "in_transit", "departed_hub")]
