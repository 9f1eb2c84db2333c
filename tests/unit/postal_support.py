"""Helpers shared by the postal adapters' tests: fixtures, well-formedness, fuzz strategies."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from services.carriers.adapters.base import ParseResult
from shared.schema import TrackingEvent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def load(carrier: str, name: str) -> bytes:
    return (FIXTURES / carrier / name).read_bytes()


def load_json(carrier: str, name: str) -> Any:
    return json.loads(load(carrier, name))


def dumped(result: ParseResult) -> str:
    """Everything the events would publish, lower-cased: for personal-data checks."""
    return "\n".join(e.model_dump_json() for e in result.events).lower()


def assert_well_formed(result: ParseResult) -> None:
    assert isinstance(result, ParseResult)
    # every failure is reported by a specific check, not by the catch-all at the boundary
    assert not [e for e in result.errors if e.message.startswith("unexpected payload")], result
    for event in result.events:
        assert isinstance(event, TrackingEvent)
        TrackingEvent.model_validate_json(event.model_dump_json())
    by_number: dict[str, list[int]] = {}
    for event in result.events:
        by_number.setdefault(event.tracking_number, []).append(event.sequence)
    for sequences in by_number.values():
        assert sorted(sequences) == list(range(len(sequences)))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        items = ()
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


@st.composite
def mutated_json(draw: st.DrawFn, docs: list[Any]) -> bytes:
    """A real payload with one to five values replaced or deleted anywhere in it."""
    doc = copy.deepcopy(draw(st.sampled_from(docs)))
    for _ in range(draw(st.integers(1, 5))):
        path = draw(st.sampled_from(_paths(doc)))
        doc = _mutate(doc, path, draw(st.booleans()), draw(JSON_VALUES))
    return json.dumps(doc).encode()


@st.composite
def corrupted_bytes(draw: st.DrawFn, payloads: list[bytes]) -> bytes:
    """A real payload with a few byte ranges overwritten (broken UTF-8, tags, quotes...)."""
    data = bytearray(draw(st.sampled_from(payloads)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position : position + draw(st.integers(0, 4))] = draw(st.binary(max_size=4))
    return bytes(data)


XML_TOKENS = st.sampled_from(
    [b"<", b">", b"</", b"&", b"&amp;", b"]]>", b"<![CDATA[", b"\x00", b"\xff", b"", b"2025",
     b"-", b":", b"+0800", b"pm", b"<code>", b"</trace>", b"<occurrence>", b"EST", b"0174"]
)  # fmt: skip


@st.composite
def spliced_xml(draw: st.DrawFn, payloads: list[bytes]) -> bytes:
    """A real XML payload with markup-ish tokens spliced in at random places."""
    data = bytearray(draw(st.sampled_from(payloads)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        data[position:position] = draw(XML_TOKENS)
    return bytes(data)
