"""Private servers for fault tests: a PostgreSQL cluster and a single-node KRaft Kafka broker that
the tests may crash and restart, on free ports and in temporary folders.

The shared servers (deploy/local: 55432 and 19092) serve the rest of the suite and other runs;
these tests never touch them. Binaries come from where deploy/local finds them:

- PostgreSQL: ``THROUGHLINE_TEST_PG_BIN`` (deploy/local/test.sh exports it), else the newest
  ``/usr/lib/postgresql/*/bin`` holding ``postgres``, ``initdb`` and ``pg_ctl``, as postgres.sh
  does. As root, the server runs as the ``postgres`` user (``runuser``), as postgres.sh does.
- Kafka: the jars in ``THROUGHLINE_TEST_KAFKA_LIBS`` (deploy/local/test.sh exports
  ``.local/kafka/libs``), else ``.local/kafka/libs`` of this checkout or of /work/main.
"""

from __future__ import annotations

import asyncio
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _missing(what: str) -> None:
    reason = f"{what}; run the tests with deploy/local/test.sh"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: fault tests may not skip)", pytrace=False)
    pytest.skip(reason)


# --- PostgreSQL -----------------------------------------------------------------------------------


def pg_bindir() -> Path | None:
    env = os.environ.get("THROUGHLINE_TEST_PG_BIN", "").strip()
    candidates = [env] if env else []

    def version(path: str) -> tuple[int, ...]:
        m = re.search(r"/postgresql/([\d.]+)/bin", path)
        return tuple(int(x) for x in m.group(1).split(".")) if m else (0,)

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    for d in candidates:
        if all(os.access(Path(d) / tool, os.X_OK) for tool in ("postgres", "initdb", "pg_ctl")):
            return Path(d)
    return None


class PrivatePostgres:
    """``start`` / ``crash`` (``pg_ctl stop -m immediate``) / ``stop`` / ``remove``."""

    def __init__(self) -> None:
        bindir = pg_bindir()
        if bindir is None:
            _missing("no PostgreSQL server binaries (THROUGHLINE_TEST_PG_BIN)")
        assert bindir is not None
        self.bin = bindir
        self.port = free_port()
        # Not under pytest's tmp_path: the postgres user must be able to reach the folder.
        self.base = Path(tempfile.mkdtemp(prefix="throughline-pg-"))
        self.base.chmod(0o755)
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.admin_url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, *argv: str | Path) -> list[str]:
        cmd = [str(a) for a in argv]
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *cmd]
        return cmd

    def _run(self, *argv: str | Path, timeout: float = 120) -> None:
        result = subprocess.run(
            self._as_owner(*argv), capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{argv[0]} failed ({result.returncode}): {result.stderr[-2000:]}\n{self.tail()}"
            )

    def init(self) -> None:
        self.data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres")
            self.log.touch()
            shutil.chown(self.log, "postgres")
        self.data.chmod(0o700)
        self._run(
            self.bin / "initdb", "-D", self.data, "-U", "postgres", "-E", "UTF8",
            "--locale=C", "--auth=trust", "--no-instructions",
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                "unix_socket_directories = ''\nmax_connections = 100\n"
                "shared_buffers = 64MB\n"
                # Durability as in production: a crash must not lose a committed row.
                "fsync = on\nsynchronous_commit = on\nfull_page_writes = on\n"
                "log_min_messages = warning\n"
            )

    def start(self) -> None:
        self._run(self.bin / "pg_ctl", "start", "-D", self.data, "-l", self.log, "-w", "-t", "90")

    def crash(self) -> None:
        """Stop at once, without a checkpoint: the next start replays the WAL."""
        self._run(self.bin / "pg_ctl", "stop", "-D", self.data, "-m", "immediate", "-w")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(self.bin / "pg_ctl", "stop", "-D", self.data, "-m", "fast", "-w", "-t", "60")

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no postgres log)"

    async def create_database(self, name: str) -> str:
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"


# --- Kafka ----------------------------------------------------------------------------------------


def kafka_libs() -> Path | None:
    env = os.environ.get("THROUGHLINE_TEST_KAFKA_LIBS", "").strip()
    candidates = [Path(env)] if env else []
    candidates += [ROOT / ".local/kafka/libs", Path("/work/main/.local/kafka/libs")]
    for d in candidates:
        if glob.glob(str(d / "kafka_2.13-*.jar")):
            return d
    return None


class PrivateKafka:
    """A KRaft broker+controller with two client listeners on 127.0.0.1:

    - ``DIRECT`` on ``direct_port``, advertised as itself;
    - ``PLAINTEXT`` on ``port``, advertised as ``advertised_port``, so that a proxy listening there
      carries every connection of the clients that bootstrap through it.
    """

    def __init__(self, advertised_port: int | None = None) -> None:
        libs = kafka_libs()
        if libs is None or shutil.which("java") is None:
            _missing("no Kafka jars (THROUGHLINE_TEST_KAFKA_LIBS) or no java")
        assert libs is not None
        self.libs = libs
        self.port = free_port()
        self.direct_port = free_port()
        self.controller_port = free_port()
        self.advertised_port = advertised_port or self.port
        self.base = Path(tempfile.mkdtemp(prefix="throughline-kafka-"))
        self.data = self.base / "data"
        self.conf = self.base / "server.properties"
        self.out = self.base / "kafka.out"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def direct(self) -> str:
        return f"127.0.0.1:{self.direct_port}"

    @property
    def proxied(self) -> str:
        return f"127.0.0.1:{self.advertised_port}"

    def _java(self, heap: str) -> list[str]:
        log4j = self.base / "log4j.properties"
        return [
            "java", f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{log4j}", f"-Dkafka.logs.dir={self.base}",
            "-cp", f"{self.libs}/*",
        ]  # fmt: skip

    def init(self) -> None:
        (self.base / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        )
        self.conf.write_text(
            "process.roles=broker,controller\nnode.id=1\n"
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}\n"
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},DIRECT://127.0.0.1:{self.direct_port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}\n"
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.advertised_port},"
            f"DIRECT://127.0.0.1:{self.direct_port}\n"
            "controller.listener.names=CONTROLLER\ninter.broker.listener.name=DIRECT\n"
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
            "DIRECT:PLAINTEXT\n"
            f"log.dirs={self.data}\nnum.partitions=4\nauto.create.topics.enable=false\n"
            "offsets.topic.replication.factor=1\noffsets.topic.num.partitions=4\n"
            "transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n"
            "group.initial.rebalance.delay.ms=0\nnum.network.threads=2\nnum.io.threads=2\n"
            "log.cleaner.enable=false\n"
        )
        tool = [*self._java("256m"), "kafka.tools.StorageTool"]
        cluster_id = subprocess.run(
            [*tool, "random-uuid"], capture_output=True, text=True, check=True, timeout=120
        ).stdout.split()[-1]
        subprocess.run(
            [*tool, "format", "-t", cluster_id, "-c", str(self.conf)],
            capture_output=True, check=True, timeout=120,
        )  # fmt: skip

    def start(self) -> None:
        with self.out.open("ab") as out:
            self.proc = subprocess.Popen(
                [*self._java("512m"), "kafka.Kafka", str(self.conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    async def wait_ready(self, timeout_s: float = 120) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the broker exited with {self.proc.returncode}:\n{self.tail()}")
            admin = AIOKafkaAdminClient(bootstrap_servers=self.direct, request_timeout_ms=3000)
            try:
                await admin.start()
                cluster = await admin.describe_cluster()
                if cluster.get("brokers"):
                    return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            finally:
                await admin.close()
            await asyncio.sleep(0.5)
        raise RuntimeError(f"the broker did not answer within {timeout_s:.0f} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush beyond what the OS already has."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.out.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no broker output)"
