"""What the benchmarks ran on, and how much CPU each party (us, PostgreSQL, Kafka) spent on a phase."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_TICK = os.sysconf("SC_CLK_TCK")


def describe() -> str:
    cpus = len(os.sched_getaffinity(0))
    model = _cpuinfo_field("model name") or platform.processor() or "unknown CPU"
    mem_gib = _meminfo_kib("MemTotal") / 1024**2
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: nproc={cpus}, CPU={model}, memory={mem_gib:.1f} GiB, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}, "
        f"load average {load}"
    )


def rss_mib(pid: int) -> float:
    """Resident set size from /proc/<pid>/status (VmRSS), in MiB; 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (threads included), in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _pids_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _kafka_pid() -> int | None:
    try:
        return int((ROOT / ".local/kafka/kafka.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class CpuMeter:
    """CPU seconds spent during a phase by the given client processes, PostgreSQL and Kafka.

    PostgreSQL is every process named ``postgres`` (backends come and go, so a backend that exits
    during the phase is missed: keep connections open across a phase). On a shared machine other
    people's queries count too; the figures are for seeing where time goes, not for accounting.
    """

    clients: list[int] = field(default_factory=lambda: [os.getpid()])
    _start: dict[str, float] = field(default_factory=dict)
    _started_at: float = 0.0
    result: dict[str, float] = field(default_factory=dict)

    def _sample(self) -> dict[str, float]:
        kafka = _kafka_pid()
        return {
            "client": sum(cpu_seconds(p) for p in self.clients),
            "postgres": sum(cpu_seconds(p) for p in _pids_named("postgres")),
            "kafka": cpu_seconds(kafka) if kafka else 0.0,
        }

    def start(self) -> None:
        self._start = self._sample()
        self._started_at = time.perf_counter()

    def stop(self) -> dict[str, float]:
        end = self._sample()
        wall = time.perf_counter() - self._started_at
        self.result = {k: end[k] - self._start.get(k, 0.0) for k in end}
        self.result["wall"] = wall
        return self.result

    def line(self) -> str:
        r = self.result
        wall = r.get("wall", 0.0) or 1e-9
        return ", ".join(
            f"{name} {r[name]:.1f} s ({r[name] / wall:.2f} cores)"
            for name in ("client", "postgres", "kafka")
        )


def _cpuinfo_field(name: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _meminfo_kib(name: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def start_profiler(out: Path | None, pid: int | None = None) -> subprocess.Popen[bytes] | None:
    """py-spy sampling ``pid`` (default: this process) into collapsed stacks at ``out``."""
    if out is None:
        return None
    spy = Path(sys.executable).parent / "py-spy"
    proc = subprocess.Popen(
        [str(spy), "record", "--pid", str(pid or os.getpid()), "--rate", "200", "--format", "raw",
         "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(1.0)  # let it attach before the clock starts
    return proc


def stop_profiler(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        if proc.returncode:
            print(f"profile: py-spy failed: {err.decode(errors='replace').strip()[-500:]}")
