"""The production topology of `make run-services` as a test fixture.

`Topology` runs scripts/run_services.sh itself (the same bring-up an operator runs: migrate,
collectstatic, bootstrap_demo, kafka_topics ensure, then web, the trading and research workers,
beat and the order-feed consumers, each under scripts/supervise.sh) in a session of its own,
against the test services: the test database (so the test reads what the processes wrote), a Redis
of the test's own, the shared Kafka broker or a private one with this test's own topics and group,
and an RGW bucket of its own. Everything is tuned for seconds, not minutes: heartbeats every
second, short polls, a fast replay, a supervisor that restarts after 0.2 s.

Helpers: `health()` (GET /trading/health), `kill9(name)` (SIGKILL of the process a supervisor
runs; the supervisor restarts it with the same command line, so the same `--name`),
`wait_restarted(name, old_pid)`, `start_consumer(name)` and `start_worker(name)` (one more process
in the same environment, through `run_services.sh exec`), `stop()` (SIGTERM to the whole session,
SIGKILL after a grace period).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests.conftest import ROOT, free_port, subprocess_db_dsn
from tests.faults.conftest import signals_csv, trading_env, wait_for

SCRIPT = str(ROOT / "scripts/run_services.sh")
PYTHON = sys.executable
CELERY = str(Path(sys.executable).parent / "celery")


def consumer_command(name: str) -> list[str]:
    return [PYTHON, "manage.py", "run_orderfeed_consumer", "--name", name]


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class Topology:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.web_url = f"http://127.0.0.1:{env['WEB_PORT']}"
        self.run_dir = Path(env["TORGHUT_VAR_DIR"]) / "run"
        self.log_path = workdir / "run-services.log"
        self._log: IO[str] | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.extra: list[subprocess.Popen[str]] = []

    # -- the bring-up ---------------------------------------------------------------------------
    def start(self, timeout: float = 180.0) -> None:
        """Run the bring-up and wait until /healthz answers (the processes are then starting)."""
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen(
            [SCRIPT], cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        self.proc = proc
        up = wait_for(lambda: self._get("/healthz")[0] == 200 or proc.poll() is not None,
                      timeout=timeout)  # fmt: skip
        assert up and proc.poll() is None, self.log()

    def wait_healthy(self, timeout: float = 30.0) -> dict[str, Any]:
        assert wait_for(lambda: self.health()[0] == 200, timeout=timeout), self.health()
        return self.health()[1]

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def admin_password(self) -> str:
        return (Path(self.env["TORGHUT_VAR_DIR"]) / "admin-password.txt").read_text().strip()

    # -- probes ---------------------------------------------------------------------------------
    def _get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.web_url + path, timeout=5) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    def health(self) -> tuple[int, dict[str, Any]]:
        status, body = self._get("/trading/health")
        try:
            return status, json.loads(body) if body else {}
        except ValueError:
            return status, {"raw": body.decode(errors="replace")}

    # -- processes ------------------------------------------------------------------------------
    def supervisor_pid(self, name: str) -> int:
        return int((self.run_dir / f"{name}.pid").read_text())

    def pid(self, name: str) -> int | None:
        """The pid of the process `name`'s supervisor runs now (None between restarts)."""
        children = _children(self.supervisor_pid(name))
        return children[0] if children else None

    def kill9(self, name: str) -> int:
        """SIGKILL the process; its supervisor restarts it with the same command line."""
        assert wait_for(lambda: self.pid(name) is not None, timeout=20), name
        pid = self.pid(name)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_restarted(self, name: str, old_pid: int, timeout: float = 20.0) -> int:
        assert wait_for(lambda: self.pid(name) not in (None, old_pid), timeout=timeout), name
        pid = self.pid(name)
        assert pid is not None
        return pid

    def exec(self, name: str, *command: str) -> subprocess.Popen[str]:
        """One more process `name` in the topology's environment, under scripts/supervise.sh."""
        assert self._log is not None
        proc = subprocess.Popen(
            [SCRIPT, "exec", str(ROOT / "scripts/supervise.sh"), name, *command],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        self.extra.append(proc)
        (self.run_dir / f"{name}.pid").write_text(str(proc.pid))
        return proc

    def start_consumer(self, name: str) -> subprocess.Popen[str]:
        return self.exec(name, *consumer_command(name))

    def start_worker(self, name: str, queues: str = "torghut") -> subprocess.Popen[str]:
        return self.exec(
            name, CELERY, "-A", "torghut_site", "worker", "--loglevel", "INFO",
            "--concurrency", "1", "-Q", queues, "-n", f"{name}@%h",
            "--without-mingle", "--without-gossip",
        )  # fmt: skip

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to every session; what still runs after `grace` seconds (all together, not
        each: a Celery worker's warm shutdown alone takes 20 s) is killed."""
        procs = [*self.extra, *([self.proc] if self.proc else [])]
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        wait_for(lambda: all(proc.poll() is not None for proc in procs), timeout=grace)
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the session's stragglers too
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()


def topology_env(
    workdir: Path, *, broker_url: str, kafka_bootstrap: str, **extra: str
) -> dict[str, str]:
    """The environment of a Topology: the faults' trading environment (the test database, a
    replay of three signals) with this test's own topics, group, bucket, port and var dir."""
    suffix = uuid.uuid4().hex[:10]
    env = trading_env(signals_csv(workdir / "signals.csv"), workdir / "var", broker_url)
    env.update(
        {
            "RUN_SERVICES_SKIP_SERVICES": "1",
            "WEB_PORT": str(free_port()),
            "DB_DSN": subprocess_db_dsn(),
            "REDIS_URL": broker_url,
            "CELERY_RESULT_BACKEND": broker_url,
            "LOG_LEVEL": "info",
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "var" / "prometheus"),
            "TRADING_ORDER_FEED_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "TRADING_ORDER_FEED_TOPIC": f"topology.{suffix}",
            "TRADING_ORDER_FEED_DLQ_TOPIC": f"topology.dlq.{suffix}",
            "TRADING_ORDER_FEED_GROUP_ID": f"topology-{suffix}",
            "TRADING_ORDER_FEED_POLL_MS": "100",
            "TRADING_SIGNAL_KAFKA_TOPIC": f"topology.signals.{suffix}",
            "TRADING_SIGNAL_KAFKA_DLQ_TOPIC": f"topology.signals.dlq.{suffix}",
            "WHITEPAPER_KAFKA_TOPIC": f"topology.whitepapers.{suffix}",
            "WHITEPAPER_KAFKA_DLQ_TOPIC": f"topology.whitepapers.dlq.{suffix}",
            "WHITEPAPER_CEPH_ENDPOINT": os.environ.get("TEST_S3_ENDPOINT", "http://127.0.0.1:7480"),
            "WHITEPAPER_CEPH_BUCKET": f"topology-{suffix}",
            "TRADING_POLL_MS": "1000",
            "TRADING_RECONCILE_MS": "2000",
            "CELERY_WORKER_HEARTBEAT_SECONDS": "1",
            "KAFKA_CONSUMER_HEARTBEAT_SECONDS": "1",
            "KAFKA_CONSUMER_LAG_INTERVAL_SECONDS": "1",
            "SUPERVISE_BACKOFF_INITIAL": "0.2",
            "SUPERVISE_BACKOFF_MAX": "1",
        }
    )
    env.update(extra)
    return env


@pytest.fixture
def topology(
    tmp_path: Path,
    private_redis: Any,
    kafka_bootstrap: str,
) -> Iterator[Callable[..., Topology]]:
    """topology(**env) -> a started Topology on the shared Kafka broker and a private Redis
    (pass TRADING_ORDER_FEED_BOOTSTRAP_SERVERS=private_kafka.bootstrap for broker faults).
    Needs `pytest.mark.django_db(transaction=True)`: the processes share the test database. A test
    module imports this fixture and `orderfeed.tests.conftest.kafka_bootstrap`."""
    started: list[Topology] = []

    def start(**extra: str) -> Topology:
        env = topology_env(
            tmp_path, broker_url=private_redis.url, kafka_bootstrap=kafka_bootstrap, **extra
        )
        topo = Topology(tmp_path, env)
        started.append(topo)
        topo.start()
        return topo

    try:
        yield start
    finally:
        for topo in started:
            topo.stop()
