"""``throughline import FILE``: register a CSV of shipments through ``POST /v1/shipments/bulk``.

It goes through the HTTP API with a merchant key (the same tenancy, validation and rate limits as
any client), in batches, and honours ``429 Retry-After``. Per-row results go to ``out`` as CSV
(``line,status,shipment_id,carrier,tracking_number,error``; ``line`` is the file's line number) and
a progress bar goes to ``progress`` (a line per batch when it is not a terminal).
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from services.merchants.schemas import MAX_BULK_ROWS

COLUMNS = (
    "tracking_number",
    "carrier",
    "merchant_reference",
    "origin_country",
    "destination_country",
)
RESULT_COLUMNS = ("line", "status", "shipment_id", "carrier", "tracking_number", "error")


class ImportFailed(Exception):
    """The import cannot go on (unreadable file, refused key, API unreachable)."""


@dataclass
class ImportSummary:
    rows: int = 0
    created: int = 0
    existing: int = 0
    errors: int = 0

    def count(self, status: str) -> None:
        if status == "created":
            self.created += 1
        elif status == "existing":
            self.existing += 1
        else:
            self.errors += 1


def read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; blank cells are left out, blank lines skipped."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in reader.fieldnames or []]
            if "tracking_number" not in header:
                raise ImportFailed(
                    f"{path}: the first line must name the columns, with at least "
                    f"tracking_number (known: {', '.join(COLUMNS)})"
                )
            unknown = sorted(set(header) - set(COLUMNS))
            if unknown:
                raise ImportFailed(
                    f"{path}: unknown columns {unknown}; known: {', '.join(COLUMNS)}"
                )
            reader.fieldnames = header
            rows = []
            for row in reader:
                cells = {k: v.strip() for k, v in row.items() if k and isinstance(v, str)}
                cells = {k: v for k, v in cells.items() if v}
                if cells:
                    rows.append((reader.line_num, cells))
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ImportFailed(f"cannot read {path}: {exc}") from None


def _batches(rows: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class Progress:
    def __init__(self, stream: IO[str], total: int, width: int = 30):
        self._stream, self._total, self._width = stream, total, width
        self._tty = stream.isatty()

    def update(self, done: int, s: ImportSummary) -> None:
        share = done / self._total if self._total else 1.0
        bar = "#" * int(share * self._width)
        line = (
            f"[{bar:<{self._width}}] {done}/{self._total} {share:4.0%}  created {s.created}  "
            f"existing {s.existing}  errors {s.errors}"
        )
        self._stream.write(("\r" + line) if self._tty else line + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()


async def _post(client: httpx.AsyncClient, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    for attempt in range(8):
        try:
            resp = await client.post("/v1/shipments/bulk", json={"shipments": rows})
        except httpx.TransportError as exc:
            if attempt == 7:
                raise ImportFailed(f"cannot reach the API at {client.base_url}: {exc}") from None
            await asyncio.sleep(min(30.0, 0.5 * 2**attempt))
            continue
        if resp.status_code == 429 or resp.status_code >= 500:
            wait = resp.headers.get("Retry-After", "")
            await asyncio.sleep(float(wait) if wait.isdigit() else min(30.0, 0.5 * 2**attempt))
            continue
        if resp.status_code != 200:
            raise ImportFailed(f"the API answered {resp.status_code}: {_detail(resp)}")
        results: list[dict[str, Any]] = resp.json()["results"]
        return results
    raise ImportFailed("the API kept refusing the batch (rate limited or failing); try again later")


def _detail(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("detail", resp.text))[:500]
    except ValueError:
        return resp.text[:500]


async def import_csv(
    path: Path,
    api_url: str,
    api_key: str,
    *,
    out: IO[str],
    progress: IO[str],
    batch: int = 500,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ImportSummary:
    rows = read_rows(path)
    summary = ImportSummary(rows=len(rows))
    writer = csv.writer(out)
    writer.writerow(RESULT_COLUMNS)
    bar = Progress(progress, len(rows))
    headers = {"Authorization": f"Bearer {api_key}"}
    size = max(1, min(batch, MAX_BULK_ROWS))
    async with httpx.AsyncClient(
        base_url=api_url, headers=headers, timeout=120, transport=transport
    ) as client:
        done = 0
        for chunk in _batches(rows, size):
            results = await _post(client, [cells for _, cells in chunk])
            for (line, _), r in zip(chunk, results, strict=True):
                writer.writerow(
                    [line, r["status"], r.get("shipment_id") or "", r.get("carrier") or "",
                     r.get("tracking_number") or "", r.get("error") or ""]
                )  # fmt: skip
                summary.count(r["status"])
            done += len(chunk)
            bar.update(done, summary)
    bar.close()
    return summary
