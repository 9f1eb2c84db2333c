"""Checks every carrier adapter's tests share: fixtures, privacy, and the never-raises fuzzing."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from services.carriers.adapters.base import ParseResult
from shared.schema import TrackingEvent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def fixture(carrier_dir: str, name: str) -> bytes:
    return (FIXTURES / carrier_dir / name).read_bytes()


def fixture_json(carrier_dir: str, name: str) -> Any:
    return json.loads(fixture(carrier_dir, name))


def dumped(result: ParseResult) -> str:
    """Everything the adapter emitted, as one lowercase string (events and error messages)."""
    events = "\n".join(e.model_dump_json() for e in result.events)
    errors = "\n".join(f"{e.tracking_number} {e.code} {e.message}" for e in result.errors)
    return f"{events}\n{errors}".lower()


def assert_well_formed(result: ParseResult) -> None:
    assert isinstance(result, ParseResult)
    # every failure is reported by a specific check, not by the catch-all at the boundary
    assert not [e for e in result.errors if e.message.startswith("unexpected payload")], (
        result.errors
    )
    ids = [e.event_id for e in result.events]
    assert len(ids) == len(set(ids)), "duplicate event ids"
    for event in result.events:
        assert isinstance(event, TrackingEvent)
        TrackingEvent.model_validate_json(event.model_dump_json())


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in items:
        found.extend(_paths(child, (*prefix, key)))
    return found


def _mutate(doc: Any, path: tuple[Any, ...], delete: bool, value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def mutated_payloads(docs: list[Any]) -> st.SearchStrategy[bytes]:
    """Real payloads with 1-5 nodes deleted or replaced by arbitrary JSON."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        doc = copy.deepcopy(draw(st.sampled_from(docs)))
        for _ in range(draw(st.integers(1, 5))):
            path = draw(st.sampled_from(_paths(doc)))
            doc = _mutate(doc, path, draw(st.booleans()), draw(JSON_VALUES))
        return json.dumps(doc).encode()

    return build()


def corrupted_bytes(raw: list[bytes]) -> st.SearchStrategy[bytes]:
    """Real payloads with a few byte ranges overwritten, plus plain random bytes."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(raw)))
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, len(data) - 1))
            data[position : position + draw(st.integers(0, 4))] = draw(st.binary(max_size=4))
        return bytes(data)

    return st.one_of(st.binary(max_size=200), build())


HOSTILE_PAYLOADS = (
    b"[" * 100_000,
    b"{" * 50_000,
    b"null",
    b'"just a string"',
    b"1e999",
    "\ufeff{}".encode(),
    b"\xff\xfe\x00",
)


def check_hostile(parse: Callable[[bytes], ParseResult]) -> None:
    for payload in HOSTILE_PAYLOADS:
        assert_well_formed(parse(payload))
