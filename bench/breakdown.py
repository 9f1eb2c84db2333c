"""Wall-clock time per step of the consumer loop, by wrapping the functions it calls (bench only).

py-spy shows CPU, but SQLAlchemy's async layer runs queries on greenlets whose stacks py-spy cannot
join to their callers, and waiting on a round trip is no CPU at all. These timers answer the other
question: of the seconds the ingest took, how many went to polling, decoding, each repository
call, status derivation, the outbox relay and the offset commit. Nested timed calls count in both.
"""

from __future__ import annotations

import functools
import gc
import importlib
import inspect
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import services.timeline.handlers as handlers
import services.timeline.repository as repository
import shared.bus.kafka as kafka
import shared.bus.runner as runner
import shared.bus.sql as sql
import shared.outbox as outbox


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


class Breakdown:
    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._undo: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        self._watch_gc()
        self._wrap(kafka._KafkaConsumer, "poll", "bus: poll")
        self._wrap(kafka._KafkaConsumer, "commit", "bus: offset commit")
        self._wrap(sql._SqlConsumer, "poll", "bus: poll")
        self._wrap(sql._SqlConsumer, "commit", "bus: offset commit")
        self._wrap(runner, "decode", "runner: decode (pydantic)")
        self._wrap(runner.ConsumerLoop, "_handle", "handler: total (transaction + relay)")
        self._wrap(outbox.OutboxRelay, "flush", "outbox relay: flush (select, publish, delete)",
                   when=lambda args, kwargs: kwargs.get("older_than") is None)  # fmt: skip
        self._wrap(outbox.OutboxRelay, "flush", "outbox sweeper (concurrent; waits for locks)",
                   when=lambda args, kwargs: kwargs.get("older_than") is not None)  # fmt: skip
        self._wrap(outbox.OutboxRelay, "_publish", "outbox relay: publish")
        self._wrap(outbox, "_delete", "outbox relay: delete")
        self._wrap(outbox, "add_to_outbox", "outbox: add rows")
        for name, fn in list(vars(repository).items()):
            if inspect.iscoroutinefunction(fn) and fn.__module__ == repository.__name__:
                self._wrap(repository, name, f"repository.{name}")
        # The timeline's own steps, wherever they live at the moment (the module is evolving).
        steps = ("derive", "_rederive", "link_events", "adopt_number", "follow_new_legs")
        for module in (handlers, _optional("services.timeline.legs")):
            for name in steps + tuple(f"_{s}" for s in steps):
                if module is not None and inspect.isfunction(getattr(module, name, None)):
                    self._wrap(module, name, f"{module.__name__.rsplit('.', 1)[-1]}.{name}")

    def _watch_gc(self) -> None:
        """Time the cyclic garbage collector: it runs inside whatever call allocates."""
        started: list[float] = []

        def callback(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started.append(time.perf_counter())
            elif started:
                label = f"python: cyclic GC, generation {info['generation']}"
                self.seconds[label] += time.perf_counter() - started.pop()
                self.calls[label] += 1

        gc.callbacks.append(callback)
        self._undo.append((None, "", lambda: gc.callbacks.remove(callback)))

    def watch_sql(self, engine: Any) -> None:
        """Time every statement at the driver, by kind (``sql: INSERT INTO tracking_event`` ...)."""
        from sqlalchemy import event

        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            conn.info.setdefault("bench_started", []).append(time.perf_counter())

        def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            label = "sql: " + " ".join(statement.split()[:4])[:60]
            self.seconds[label] += time.perf_counter() - conn.info["bench_started"].pop()
            self.calls[label] += 1

        event.listen(engine.sync_engine, "before_cursor_execute", before)
        event.listen(engine.sync_engine, "after_cursor_execute", after)
        self._undo.append((None, "", lambda: (
            event.remove(engine.sync_engine, "before_cursor_execute", before),
            event.remove(engine.sync_engine, "after_cursor_execute", after),
        )))  # fmt: skip

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._undo):
            if owner is None:
                original()
            else:
                setattr(owner, name, original)
        self._undo.clear()

    def report(self, wall: float) -> str:
        lines = [f"    wall-clock breakdown of (c) ({wall:.1f} s; nested calls count twice):"]
        for name, seconds in self.seconds.most_common():
            lines.append(
                f"      {100 * seconds / wall:5.1f}%  {seconds:7.2f} s  {self.calls[name]:>8} calls"
                f"  {name}"
            )
        return "\n".join(lines)

    def _wrap(
        self, owner: Any, name: str, label: str, when: Callable[..., bool] | None = None
    ) -> None:
        original = getattr(owner, name)
        self._undo.append((owner, name, original))
        setattr(owner, name, self._timed(original, label, when))

    def _timed(
        self, fn: Callable[..., Any], label: str, when: Callable[..., bool] | None
    ) -> Callable[..., Any]:
        seconds, calls = self.seconds, self.calls
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                if when is not None and not when(args, kwargs):
                    return await fn(*args, **kwargs)
                started = time.perf_counter()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    seconds[label] += time.perf_counter() - started
                    calls[label] += 1

            return timed_async

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[label] += time.perf_counter() - started
                calls[label] += 1

        return timed
