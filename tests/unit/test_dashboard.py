"""The Grafana dashboard reads only metrics the services export, under their exported names."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import shared.metrics  # noqa: F401 - registers the metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "throughline.json"


def _exported() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("throughline_"):
            names.update(s.name for s in family.samples)
            names.add(family.name)
            names.update(f"{family.name}{suffix}" for suffix in ("_total", "_bucket", "_count"))
    return names


def test_every_dashboard_query_uses_exported_metrics() -> None:
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    used = {m for e in exprs for m in re.findall(r"\bthroughline_[a-z_]+", e)}
    assert len(exprs) >= 15 and used
    assert not used - _exported(), f"unknown metrics in the dashboard: {used - _exported()}"
    # Every family the services export is on the dashboard.
    families = {f.name for f in REGISTRY.collect() if f.name.startswith("throughline_")}
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", m) for m in used}
    assert not families - shown, f"not on the dashboard: {families - shown}"
