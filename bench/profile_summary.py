"""Where the time goes, from py-spy's collapsed stacks (``--format raw``, as ``--profile`` writes).

    .venv/bin/python bench/profile_summary.py prof.txt [--top 30] [--focus services.timeline]

Prints the functions with the most samples on top of the stack (self) and anywhere in it
(inclusive), as a share of all samples, and the inclusive share of the project's own functions.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append(([_name(f) for f in stack.split(";")], int(count)))
    return stacks


def _name(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match['func']} ({file})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--focus", default="services/|shared/", help="regex over file paths")
    args = parser.parse_args()
    stacks = load(args.file)
    total = sum(c for _, c in stacks) or 1
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    print(f"{total} samples")
    print(f"\n-- self (top of stack), top {args.top}")
    for name, count in own.most_common(args.top):
        print(f"{100 * count / total:5.1f}%  {name}")
    focus = re.compile(args.focus)
    print(f"\n-- inclusive, frames matching {args.focus!r}")
    for name, count in inclusive.most_common():
        if focus.search(name) and count / total >= 0.005:
            print(f"{100 * count / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
