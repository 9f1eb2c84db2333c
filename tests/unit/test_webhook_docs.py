"""The receiver example in docs/webhooks.md verifies what our sender signs, and nothing else."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from services.webhooks import signing

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def _example() -> dict[str, Any]:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1, "docs/webhooks.md should hold one Python example"
    namespace: dict[str, Any] = {"__name__": "docs_example"}  # not __main__: do not serve
    exec(compile(blocks[0], str(DOC), "exec"), namespace)  # noqa: S102 - our own document
    return namespace


def test_the_documented_receiver_verifies_our_signatures() -> None:
    example = _example()
    secret, verify = example["SECRET"], example["verify"]
    body = b'{"type":"shipment.delivered","timestamp":"2024-03-01T08:00:00Z","data":{}}'
    assert verify(signing.headers([secret], "evt-1", body), body)
    rotated = signing.headers([signing.generate_secret(), secret], "evt-1", body)
    assert verify(rotated, body)  # the second signature is the one that matches
    assert not verify(signing.headers([secret], "evt-1", body), body + b" ")
    assert not verify(signing.headers([signing.generate_secret()], "evt-1", body), body)
    old = signing.headers([secret], "evt-1", body, timestamp=int(time.time()) - 600)
    assert not verify(old, body)
    assert not verify({}, body)
