"""Fault-injection fixtures: private service processes (a Redis of the test's own) and real
Celery workers and consumers on the test database."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from celery import Celery
from django.utils import timezone

from tests.conftest import ROOT, free_port, subprocess_db_dsn
from trading.brokers.simulated import SimulatedBroker
from trading.models import Execution, Strategy, TradeCursor, TradeDecision

CELERY = str(Path(sys.executable).parent / "celery")
SIGNAL_HEADER = "event_ts,symbol,seq,timeframe,price,macd,macd_signal,macd_hist,rsi14,spread\n"
# two buys (MACD above signal, RSI < 35) and one sell, one minute apart: three decisions per lane
SIGNALS = [
    ("2026-03-03T14:31:00Z", "AAPL", 1, "100.00", "1.2", "0.5", "20"),
    ("2026-03-03T14:32:00Z", "MSFT", 2, "50.00", "0.8", "0.1", "30"),
    ("2026-03-03T14:33:00Z", "AAPL", 3, "101.00", "-0.2", "0.1", "75"),
]
OPEN = ("planned", "submitting", "pending_review")


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class RedisServer:
    """A redis-server of this test's own on a free port (never the shared one on 6379)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: run the suite through `make test`")
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        client = redis.Redis.from_url(self.url)
        assert wait_for(lambda: _pings(client), timeout=10), "private redis did not start"

    def kill(self) -> None:
        """SIGKILL, no persistence: whatever the queue held is gone with it."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url)


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - not up yet
        return False


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


class KafkaBroker:
    """A noida-db Kafka-protocol broker of this test's own: a free port and its own data dir
    (never the shared one on 19092). `kill()` is a SIGKILL of the broker binary; `start()` again
    brings it back on the same port and data dir.

    noida-db keeps records, topics and committed offsets in memory and writes them to
    `<data dir>/kafka.json` about once a second: a SIGKILL loses whatever changed since the last
    write (`sync()` waits for one)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.data_dir = workdir / "noida"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.binary = str(Path(sys.executable).parent / "noida-db")
        self.pid: int | None = None

    def start(self) -> None:
        result = subprocess.run(
            [self.binary, "up", "--only", "kafka", "--kafka-port", str(self.port),
             "--data-dir", str(self.data_dir)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        control = json.loads((self.data_dir / "noida.control.json").read_text())
        self.pid = int(control["pid"])
        assert wait_for(lambda: _port_open(self.port), timeout=20), "private noida-db did not start"

    def kill(self) -> None:
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        assert wait_for(lambda: not _port_open(self.port), timeout=10, step=0.01)
        self.pid = None

    def persisted_at(self) -> float:
        """When the broker last wrote its state to disk (0 before the first write)."""
        path = self.data_dir / "kafka.json"
        return path.stat().st_mtime if path.exists() else 0.0

    def sync(self, timeout: float = 10.0) -> bool:
        """Wait until everything the broker acknowledged so far is on its disk.

        It writes only when something changed: make a change (a throw-away topic) and wait
        for the write that follows it, which holds all state up to then."""
        from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

        moment = time.time()
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        name = f"sync-{uuid.uuid4().hex[:12]}"
        admin.create_topics([NewTopic(name, num_partitions=1)])[name].result(timeout=10)
        return wait_for(lambda: self.persisted_at() > moment, timeout=timeout, step=0.02)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


class TcpProxy:
    """A TCP forwarder on a free port in front of `target` (host, port), in threads of the test
    process. `start()` listens; `stop()` closes the listener AND every open connection (pooled
    keep-alive connections die too), so clients see the endpoint go away: connection refused
    until `start()` again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.connections = 0

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # stopped
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile
                    client.close()
                    upstream.close()
                    return
                self._open.update((client, upstream))
                self.connections += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):  # the other direction ends too
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self._lock:
                self._open.discard(source)
            source.close()  # each socket is the source of exactly one pipe


def signals_csv(path: Path) -> Path:
    lines = [SIGNAL_HEADER]
    for ts, symbol, seq, price, macd, sig, rsi in SIGNALS:
        hist = f"{float(macd) - float(sig):.6f}"
        lines.append(f"{ts},{symbol},{seq},1Min,{price},{macd},{sig},{hist},{rsi},0.02\n")
    path.write_text("".join(lines))
    return path


def lanes_ready(labels: list[str]) -> None:
    """The MACD strategy and, per lane, a replay cursor whose three signals have all "played"."""
    Strategy.objects.create(
        name="macd",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        base_timeframe="1Min",
        max_notional_per_trade=1000,
        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 65},
    )
    # at 1000x the file's three minutes play in 0.18 s: 30 s ago means every row has been played
    anchor = timezone.now() - timedelta(seconds=30)
    for label in labels:
        TradeCursor.objects.create(
            source="replay", account_label=label, state={"anchor": anchor.isoformat()}
        )


def trading_env(signals_file: Path, var_dir: Path, broker_url: str, **extra: str) -> dict[str, str]:
    """The environment of a worker/consumer process on the test database."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TRADING_", "LLM_"))},
        "DJANGO_SETTINGS_MODULE": "torghut_site.settings",
        "TORGHUT_ENV_FILE": "/nonexistent",
        "TORGHUT_VAR_DIR": str(var_dir),
        "DB_DSN": subprocess_db_dsn(),
        "CELERY_BROKER_URL": broker_url,
        "LOG_LEVEL": "warning",
        "TRADING_ENABLED": "true",
        "TRADING_KILL_SWITCH_ENABLED": "false",
        "TRADING_SIGNAL_SOURCE": "replay",
        "TRADING_SIGNAL_REPLAY_PATH": str(signals_file),
        "TRADING_SIGNAL_REPLAY_LOOP": "false",
        "TRADING_SIGNAL_REPLAY_SPEED": "1000",
        "TRADING_EXECUTION_PREFER_LIMIT": "false",
        "TRADING_FEATURE_QUALITY_ENABLED": "false",
        "TRADING_LANE_LEASE_SECONDS": "10",
    }
    env.pop("TORGHUT_FAULT_INJECT", None)
    env.update(extra)
    return env


class Worker:
    """A real `celery worker` process (solo pool: a kill -9 takes the whole worker down)."""

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        log_dir: Path,
        extra_args: tuple[str, ...] = (),
        queues: str = "torghut",
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"worker-{name}.log"
        self._log: IO[str] = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [CELERY, "-A", "torghut_site", "worker", "--pool=solo", "-Q", queues,
             "-n", f"{name}@faults", "--without-gossip", "--without-mingle",
             "--without-heartbeat", *extra_args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=self._log,
            text=True,
        )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=20)
        self._log.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(name: str, env: dict[str, str], *extra_args: str, queues: str = "torghut") -> Worker:
        """A worker consuming `queues` (whitepaper tasks are routed to `whitepapers`)."""
        worker = Worker(name, env, tmp_path, extra_args, queues)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


def beat(broker_url: str) -> Celery:
    """A client app that sends to the workers' queue, as beat does (own pools, nothing shared
    with the suite's app)."""
    return Celery(
        f"faults-{uuid.uuid4().hex[:6]}",
        broker=broker_url,
        set_as_current=False,
        config_source={
            "task_serializer": "json",
            "accept_content": ["json"],
            "task_default_queue": "torghut",
            "broker_connection_retry_on_startup": True,
        },
    )


def tick(client: Celery, lane: str) -> None:
    """One beat tick of the lane's trade cycle."""
    client.send_task("trading.tasks.run_trade_cycle", args=[lane], queue="torghut")


def lane_settled(lane: str, decisions: int) -> bool:
    rows = TradeDecision.objects.filter(account_label=lane)
    return rows.count() == decisions and not rows.filter(status__in=OPEN).exists()


def assert_one_order_per_decision(lane: str) -> list[str]:
    """Every sent decision has exactly one order at the broker and one execution; nothing else."""
    orders = SimulatedBroker(lane).list_orders(status="all")
    client_ids = [o.client_order_id for o in orders]
    assert len(set(client_ids)) == len(client_ids), client_ids
    sent = list(
        TradeDecision.objects.filter(account_label=lane)
        .exclude(status="rejected")
        .values_list("client_order_id", flat=True)
    )
    assert sorted(client_ids) == sorted(sent)
    executions = list(
        Execution.objects.filter(account_label=lane).values_list("client_order_id", flat=True)
    )
    assert sorted(executions) == sorted(sent)
    return client_ids


def assert_lane_decisions(lane: str) -> None:
    """The three signals' decisions: the two buys sent; the sell sent too, or refused by the gate
    chain when the simulated broker had not filled the AAPL buy yet (it fills on later prices),
    or netted against that buy when both came in one batch."""
    rows = sorted(
        TradeDecision.objects.filter(account_label=lane).values_list(
            "symbol", "action", "status", "reject_reason"
        )
    )
    assert len(rows) == 3, rows
    buys = [r for r in rows if r[1] == "buy"]
    [sell] = [r for r in rows if r[1] == "sell"]
    assert [(r[0], r[2]) for r in buys] == [("AAPL", "submitted"), ("MSFT", "submitted")], rows
    assert sell[2:] in (
        ("submitted", ""),
        ("rejected", "shorts_not_allowed"),
        ("rejected", "intent_netted_conflict"),  # in the same batch as the AAPL buy: netted
    ), rows
