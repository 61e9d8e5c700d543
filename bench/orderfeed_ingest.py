"""Order-feed ingest: synthetic trade updates through the real consumer into Postgres.

Each run (`--runs`, default 3; figures are reported per run and as min / median / max):
1. Throughput. N trade updates (new → partial_fill → fill for N/3 orders whose executions exist,
   each order's three updates produced together, keyed by symbol) go to a fresh 6-partition topic
   (6 splits evenly over 1, 2 or 3 consumers), then are read:
   - raw: a bare confluent-kafka consumer (the ceiling: librdkafka delivery, no parsing);
   - ingest: real `manage.py run_orderfeed_consumer` processes with the default settings
     (TRADING_ORDER_FEED_BATCH_SIZE, _POLL_MS), one, then two in one group, each on a topic of
     its own with a quarter more records of the same kind. They join the group first; the
     records are produced once every process owns partitions, so a group rebalance is not in
     the figure. Each one: parse, fingerprint, dedupe against the stored events, link, apply to
     executions and decisions, TCA, one commit per batch, offsets stored. Events/s over the
     first N events stored (a backlog behind them on every partition: sustained ingest, not the
     drain of a finite topic), not counting the first batch; and the CPU µs per event of the
     consumer processes, the Postgres server and the broker while it ran (the three share the
     machine's cores).
2. Latency. A separate producer process sends 1,000 updates/s for 10 s while the consumer runs
   (default settings, the command's process tuning); for every update: time of its batch's
   database commit minus the record's CreateTime. Figures: p50 / p99 / max in ms.
Each topic is deleted once its phase is done.

Kafka: a noida-db broker started here with a fresh data dir (`PrivateBroker`: not the test
services' shared one, whose state snapshots would take a core). noida-db answers an empty fetch at
once instead of long-polling (`fetch.wait.max.ms`), so an idle consumer and the broker spin
between them; a Kafka broker would not take that CPU. Postgres: a scratch database on the local
server (`--database`), emptied before each run and vacuumed before each phase (the local server
runs without autovacuum).
    .venv/bin/python bench/orderfeed_ingest.py [--runs 3] [--events 60000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import ROOT, django_setup, percentile, scratch_database, spread, write_result

LATENCY_RATE = 1_000
LATENCY_SECONDS = 10
PARTITIONS = 6
SYMBOLS = [f"S{i:03d}" for i in range(50)]

PRODUCER = r"""
import json, sys, time
from confluent_kafka import Producer
bootstrap, topic, rate, seconds, first = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 1})
p.list_topics(timeout=10)
time.sleep(2.0)  # connections and the idempotent producer id are set up outside the measured window
start = time.perf_counter()
total = rate * seconds
for i in range(total):
    due = start + i / rate
    delay = due - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    n = first + i // 3
    step = i % 3
    event, status, filled = [("new", "new", "0"), ("partial_fill", "partially_filled", "4"), ("fill", "filled", "10")][step]
    value = {"channel": "trade_updates", "payload": {"event": event, "timestamp": f"2026-03-03T14:{30 + step}:00Z",
             "order": {"id": f"bench-{n}", "client_order_id": f"tg-bench-{n}", "symbol": f"S{n % 50:03d}",
                       "qty": "10", "filled_qty": filled, "filled_avg_price": "100.5", "status": status}}}
    p.produce(topic, key=f"S{n % 50:03d}".encode(), value=json.dumps(value).encode())
    p.poll(0)
p.flush(30)
"""


class PrivateBroker:
    """A noida-db Kafka broker of this benchmark's own (fresh data dir, free port).

    Not the test services' shared broker: noida-db snapshots its whole state to disk about once a
    second after a change, so a broker holding the test suite's topics (hundreds of MB) spends a
    core on that while the benchmark runs. Its CPU is measured (`cpu_seconds`) because it shares
    the machine's two cores with the consumers and Postgres.
    """

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.data_dir = tempfile.mkdtemp(prefix="bench-noida-")
        self.noida = str(Path(sys.executable).parent / "noida-db")
        self.bootstrap = f"127.0.0.1:{self.port}"

    def __enter__(self) -> PrivateBroker:
        subprocess.run(
            [self.noida, "up", "--only", "kafka", "--kafka-port", str(self.port),
             "--data-dir", self.data_dir],
            check=True,
            capture_output=True,
        )  # fmt: skip
        return self

    def __exit__(self, *_: object) -> None:
        """`noida-db down`, then whatever of the broker is still running is killed and its data
        dir removed: with `down` alone, the brokers of 26 earlier runs were found still running
        (idle, but each snapshotting what it held) under the later ones."""
        pids = self.pids()
        subprocess.run(
            [self.noida, "down", "--data-dir", self.data_dir], capture_output=True, timeout=60
        )
        deadline = time.monotonic() + 10
        while (left := [pid for pid in pids if _running(pid)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def pids(self) -> list[int]:
        """The broker's processes (the wrapper and the binary it runs)."""
        return [pid for pid, cmd in _processes() if "noida" in cmd and self.data_dir in cmd]


def _running(pid: int) -> bool:
    """Whether the process exists and is not a zombie (a stopped broker whose parent is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _processes() -> list[tuple[int, str]]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    found.append(
                        (int(entry), f.read().replace(b"\0", b" ").decode(errors="replace"))
                    )
            except OSError:
                continue
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds the processes have used (all their threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def postgres_pids() -> list[int]:
    """Every process of the local Postgres server (backends, WAL writer, checkpointer...)."""
    pids = []
    for pid, _ in _processes():
        try:
            with open(f"/proc/{pid}/comm", encoding="ascii") as f:
                if f.read().startswith("postgres"):
                    pids.append(pid)
        except OSError:
            continue
    return pids


def update(n: int, step: int) -> bytes:
    event, status, filled = [
        ("new", "new", "0"),
        ("partial_fill", "partially_filled", "4"),
        ("fill", "filled", "10"),
    ][step]
    return json.dumps(
        {
            "channel": "trade_updates",
            "payload": {
                "event": event,
                "timestamp": f"2026-03-03T14:{30 + step}:00Z",
                "order": {
                    "id": f"bench-{n}",
                    "client_order_id": f"tg-bench-{n}",
                    "symbol": SYMBOLS[n % 50],
                    "qty": "10",
                    "filled_qty": filled,
                    "filled_avg_price": "100.5",
                    "status": status,
                },
            },
        }
    ).encode()


def create_orders(first: int, count: int) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from trading.models import Execution, Strategy, TradeDecision

    strategy, _ = Strategy.objects.get_or_create(
        name="bench", defaults={"strategy_type": "legacy_macd_rsi"}
    )
    for start in range(first, first + count, 2000):
        numbers = range(start, min(start + 2000, first + count))
        decisions = TradeDecision.objects.bulk_create(
            [
                TradeDecision(
                    strategy=strategy,
                    account_label="paper",
                    symbol=SYMBOLS[n % 50],
                    timeframe="1Min",
                    event_ts=datetime(2026, 3, 3, 14, 30, tzinfo=UTC),
                    action="buy",
                    qty=Decimal(10),
                    price=Decimal(100),
                    decision_hash=f"{n:064x}",
                    client_order_id=f"tg-bench-{n}",
                    status="submitted",
                )
                for n in numbers
            ]
        )
        Execution.objects.bulk_create(
            [
                Execution(
                    decision=d,
                    account_label="paper",
                    broker="simulated",
                    broker_order_id=f"bench-{n}",
                    client_order_id=f"tg-bench-{n}",
                    symbol=SYMBOLS[n % 50],
                    side="buy",
                    order_type="market",
                    time_in_force="day",
                    submitted_qty=Decimal(10),
                    status="accepted",
                )
                for n, d in zip(numbers, decisions, strict=True)
            ]
        )


def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions)]).values():
        future.result(timeout=10)


def delete_topics(bootstrap: str, topics: Sequence[str]) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(list(topics)).values():
        try:
            future.result(timeout=10)
        except Exception as exc:  # noqa: BLE001 - best effort: a leftover topic is not a failure
            print(f"  could not delete a topic: {exc}")


def raw_consume(bootstrap: str, topic: str, total: int) -> float:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    first_at = 0.0
    while seen < total:
        batch = consumer.consume(num_messages=2000, timeout=1.0)
        if batch and not first_at:
            first_at = time.perf_counter()
        seen += sum(1 for m in batch if m.error() is None)
    elapsed = time.perf_counter() - first_at
    consumer.close()
    return total / elapsed


class TimedHandler:
    """The order-feed handler, timed: per-record latency to its batch's commit."""

    def __init__(self) -> None:
        from orderfeed.services import OrderFeedHandler

        self.inner = OrderFeedHandler()
        self.latencies_ms: list[float] = []

    def handle_batch(self, messages: Sequence[Any]) -> list[Any]:
        letters = self.inner.handle_batch(messages)
        now_ms = time.time() * 1000
        self.latencies_ms.extend(now_ms - m.timestamp_ms for m in messages if m.timestamp_ms)
        return letters


def ingest_processes(
    broker: PrivateBroker, topic: str, processes: int, first: int, orders: int
) -> tuple[float, dict[str, float]]:
    """Real `manage.py run_orderfeed_consumer` processes in one group, default settings: the
    events/s they store with a backlog, and the CPU µs per event of the consumers, Postgres and
    the broker.

    The processes start on the empty topic; once the group is stable (every process has
    partitions: their heartbeats say so), the updates of `1.25 × orders` orders are produced, and
    the measured window is the first `3 × orders` events stored: every partition still has
    records behind them on the broker, as for a consumer that is behind or offered more than it
    takes. Events/s from the first batch's write (`received_at`) to the write that completes the
    window, without the first batch; so neither a group rebalance nor the drain of a finite
    topic is in the figure (in a drain, partitions run dry one by one and noida-db's empty-fetch
    spinning takes the cores from the last batches). CPU from the first record produced to the
    window stored. Then the processes are stopped (SIGTERM: each finishes the batches in hand,
    stores their offsets and exits 0); every event stored must have been applied.
    """
    from django.db.models import Count

    from orderfeed.models import EventOutcome, OrderEvent
    from torghut_site.models import ProcessHeartbeat

    vacuum()
    group = f"bench-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "torghut_site.settings",
        "TRADING_ORDER_FEED_ENABLED": "true",
        "TRADING_ORDER_FEED_TOPIC": topic,
        "TRADING_ORDER_FEED_GROUP_ID": group,
        "TRADING_ORDER_FEED_AUTO_OFFSET_RESET": "earliest",
        "TRADING_ORDER_FEED_DLQ_TOPIC": "",
        "KAFKA_CONSUMER_HEARTBEAT_SECONDS": "0.5",
        "LOG_LEVEL": "warning",
    }
    records = order_records(first, phase_orders(orders))
    window = orders * 3
    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "run_orderfeed_consumer"],
            cwd=ROOT,
            env={**env, "TRADING_ORDER_FEED_GROUP_INSTANCE_ID": f"{group}-{i}"},
            stdout=subprocess.DEVNULL,
        )
        for i in range(processes)
    ]

    def stable() -> bool:
        owned = [
            len(h.details.get("assigned", []))
            for h in ProcessHeartbeat.objects.filter(details__group=group)
        ]
        return len(owned) == processes and min(owned) > 0 and sum(owned) == PARTITIONS

    try:
        deadline = time.monotonic() + 120
        while not stable():
            assert time.monotonic() < deadline, "the consumer group did not settle in 120 s"
            assert all(p.poll() is None for p in procs), "a consumer exited before settling"
            time.sleep(0.1)
        who = {
            "consumers": [p.pid for p in procs],
            "postgres": postgres_pids(),
            "broker": broker.pids(),
        }
        before = {name: cpu_seconds(pids) for name, pids in who.items()}
        produce(broker.bootstrap, topic, records)
        deadline = time.monotonic() + 900
        while (stored := _stored(topic)) < window:
            assert time.monotonic() < deadline, f"{stored} of {window} events stored in 900 s"
            time.sleep(0.2)
        cpu = {
            name: round((cpu_seconds(pids) - before[name]) * 1e6 / stored, 1)
            for name, pids in who.items()
        }
    finally:
        for proc in procs:
            proc.terminate()
    for proc in procs:
        proc.wait(timeout=120)
        assert proc.returncode == 0, f"consumer exited with {proc.returncode}"
    events = OrderEvent.objects.filter(source_topic=topic)
    not_applied = events.exclude(outcome=EventOutcome.APPLIED).count()
    assert not_applied == 0, f"{not_applied} events stored but not applied"
    batches = events.values("received_at").annotate(n=Count("pk")).order_by("received_at")
    total = 0
    for batch in batches:
        total += batch["n"]
        if total >= window:
            break
    start = batches[0]
    seconds: float = (batch["received_at"] - start["received_at"]).total_seconds()
    return (total - start["n"]) / seconds, cpu


def phase_orders(orders: int) -> int:
    """The orders whose updates an ingest phase produces: its window's, and a quarter more as the
    backlog behind it (enough that no partition runs dry in the window; a larger one only makes
    noida-db's once-a-second snapshot of what it holds dearer)."""
    return orders + orders // 4


def _stored(topic: str) -> int:
    """The topic's events stored so far: per partition its highest stored offset + 1 (a
    partition's records are stored in order, from offset 0). One index probe per partition; a
    count read every stored event's index entry, ~17 ms of Postgres CPU at 60,000 events five
    times a second, taken from what is measured."""
    from django.db.models import Max

    from orderfeed.models import OrderEvent

    tops = [
        OrderEvent.objects.filter(source_topic=topic, source_partition=p).aggregate(
            top=Max("source_offset")
        )["top"]
        for p in range(PARTITIONS)
    ]
    return sum(top + 1 for top in tops if top is not None)


def vacuum() -> None:
    """VACUUM ANALYZE the scratch database before a phase. This machine's Postgres runs with
    autovacuum off: without it every run inherited the dead row versions of the runs before
    (each order's execution and decision are rewritten), and Postgres's CPU per event grew by a
    quarter from the first run to the third."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")


def order_records(first: int, orders: int) -> list[tuple[bytes, bytes, int]]:
    """(key, value, partition) of the orders' updates: an order's three updates together, keyed
    by symbol; a symbol's partition is its number modulo the partitions (as keying would keep a
    symbol in one partition, but spread evenly: hashing 50 keys onto 6 partitions gave them
    4,800 to 12,000 of 60,000 records, and the consumer with less waited on the other)."""
    return [
        (SYMBOLS[n % 50].encode(), update(n, step), (n % 50) % PARTITIONS)
        for n in range(first, first + orders)
        for step in range(3)
    ]


def produce(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes, int]]) -> None:
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )
    for key, value, partition in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value, partition=partition)
                break
            except BufferError:  # its local queue (100,000 records) is full: let it deliver
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)


def produce_orders(bootstrap: str, topic: str, first: int, orders: int) -> None:
    produce(bootstrap, topic, order_records(first, orders))


def latency(bootstrap: str, topic: str, first: int) -> list[float]:
    """End-to-end ms per record at LATENCY_RATE/s through the consumer (default settings)."""
    from django.conf import settings

    from orderfeed import metrics
    from orderfeed.consumer import consumer_process_tune, order_feed_consumer_settings
    from torghut_site.kafka.consumer import BatchConsumer, ConsumerMetrics

    total = LATENCY_RATE * LATENCY_SECONDS
    handler = TimedHandler()
    settings.TRADING_ORDER_FEED_TOPIC = topic
    settings.TRADING_ORDER_FEED_TOPIC_V2 = ""
    settings.TRADING_ORDER_FEED_GROUP_ID = f"bench-{uuid.uuid4().hex}"
    settings.TRADING_ORDER_FEED_AUTO_OFFSET_RESET = "earliest"
    settings.TRADING_ORDER_FEED_DLQ_TOPIC = ""
    consumer = BatchConsumer(
        order_feed_consumer_settings(),
        handler,
        ConsumerMetrics(messages=metrics.MESSAGES, errors=metrics.CONSUMER_ERRORS),
        max_messages=total,
    )
    consumer_process_tune()
    thread = threading.Thread(target=consumer.run)
    thread.start()
    while not consumer._assigned:  # produce once the consumer owns the partitions
        time.sleep(0.05)
    producer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            PRODUCER,
            bootstrap,
            topic,
            str(LATENCY_RATE),
            str(LATENCY_SECONDS),
            str(first),
        ]
    )
    producer.wait(timeout=60)
    thread.join(timeout=60)
    return sorted(handler.latencies_ms)


def empty_tables() -> None:
    """Empty what a run fills (events, executions, decisions and what hangs off them), so every
    run starts from the state the first had. This server's 128 MB of shared buffers, kept run
    after run, measured its configuration instead of the consumer: by the third run the tables
    no longer fitted, backends evicted dirty pages themselves, and Postgres's CPU per event rose
    from ~48 to ~57 µs. (The events' fingerprint index takes random keys: in production its
    working set is the whole index, which shared_buffers must be sized for.)"""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE orderfeed_orderevent, trading_execution, trading_tradedecision CASCADE"
        )


def one_run(broker: PrivateBroker, events: int, run: int) -> dict[str, Any]:
    from orderfeed.models import OrderEvent

    empty_tables()
    load_average = os.getloadavg()[0]  # what else runs on the machine (figures are CPU-bound)
    orders = events // 3
    base = run * (phase_orders(orders) * 2 + LATENCY_RATE * LATENCY_SECONDS)
    create_orders(base, phase_orders(orders) * 2)
    suffix = uuid.uuid4().hex[:8]
    topics = [
        f"bench.raw.{suffix}",
        f"bench.trade-updates.{suffix}",
        f"bench.trade-updates.b.{suffix}",
    ]
    lat_topic = f"bench.trade-updates.lat.{suffix}"
    bootstrap = broker.bootstrap
    try:
        for topic in topics:
            create_topic(bootstrap, topic)
        produce_orders(bootstrap, topics[0], base, orders)  # same records, other topic
        raw_rate = raw_consume(bootstrap, topics[0], events)
        # each phase's records leave the broker with it: its once-a-second snapshot of its whole
        # state costs CPU in proportion to what it holds
        delete_topics(bootstrap, topics[:1])
        one, one_cpu = ingest_processes(broker, topics[1], 1, base, orders)
        delete_topics(bootstrap, topics[1:2])
        two, two_cpu = ingest_processes(broker, topics[2], 2, base + phase_orders(orders), orders)
        delete_topics(bootstrap, topics[2:])
        print(f"run {run + 1}: load average {load_average:.2f} at its start")
        print(f"run {run + 1}: raw consume {raw_rate:,.0f} records/s")
        for label, rate, cpu in (
            ("1 consumer process ", one, one_cpu),
            ("2 consumer processes", two, two_cpu),
        ):
            print(
                f"run {run + 1}: ingest, {label} {rate:,.0f} events/s; CPU µs/event: "
                + ", ".join(f"{k} {v}" for k, v in cpu.items())
            )

        first = base + phase_orders(orders) * 2
        create_orders(first, LATENCY_RATE * LATENCY_SECONDS // 3 + 1)
        create_topic(bootstrap, lat_topic, partitions=3)
        vacuum()
        lat = latency(bootstrap, lat_topic, first)
        p50, p99 = percentile(lat, 0.50), percentile(lat, 0.99)
        print(
            f"run {run + 1}: end-to-end at {LATENCY_RATE}/s: p50 {p50:.1f} ms  p99 {p99:.1f} ms  "
            f"max {lat[-1]:.1f} ms"
        )
        assert OrderEvent.objects.filter(source_topic=lat_topic).count() == len(lat)
    finally:
        delete_topics(bootstrap, [lat_topic])
    return {
        "load_average_1min_at_start": load_average,
        "raw": raw_rate,
        "one": one,
        "two": two,
        "cpu_us_per_event_1_process": one_cpu,
        "cpu_us_per_event_2_processes": two_cpu,
        "p50": p50,
        "p99": p99,
        "max": lat[-1],
        "latency_events": len(lat),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--database", default="torghut_bench_feed")
    args = parser.parse_args()

    os.environ["DB_DSN"] = scratch_database(args.database)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        check=True,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "torghut_site.settings"},
    )
    with PrivateBroker() as broker:
        os.environ["TRADING_ORDER_FEED_BOOTSTRAP_SERVERS"] = broker.bootstrap
        django_setup()
        from django.conf import settings

        runs = [one_run(broker, args.events, run) for run in range(args.runs)]

    def over_runs(key: str, digits: int = 0) -> dict[str, float]:
        return spread([r[key] for r in runs], digits)

    figures: dict[str, Any] = {
        "runs": args.runs,
        "events_per_run": args.events,
        "topic_partitions": PARTITIONS,
        "batch_size": settings.TRADING_ORDER_FEED_BATCH_SIZE,
        "poll_ms": settings.TRADING_ORDER_FEED_POLL_MS,
        "raw_consume_records_per_second": over_runs("raw"),
        "ingest_events_per_second_1_process": over_runs("one"),
        "ingest_events_per_second_2_processes": over_runs("two"),
        "ingest_target_events_per_second": 20000,
        "latency_rate_per_second": LATENCY_RATE,
        "latency_p50_ms": over_runs("p50", 1),
        "latency_p99_ms": over_runs("p99", 1),
        "latency_max_ms": over_runs("max", 1),
        "latency_target_p99_ms": 100,
        **{
            figure: {
                k: statistics.median(r[figure][k] for r in runs)
                for k in ("consumers", "postgres", "broker")
            }
            for figure in ("cpu_us_per_event_1_process", "cpu_us_per_event_2_processes")
        },
        "per_run": [
            {k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()} for r in runs
        ],
    }
    for key in ("ingest_events_per_second_1_process", "ingest_events_per_second_2_processes"):
        print(f"{key}: {figures[key]}")
    for key in ("raw_consume_records_per_second", "latency_p50_ms", "latency_p99_ms"):
        print(f"{key}: {figures[key]}")
    print(write_result("orderfeed_ingest", figures))


if __name__ == "__main__":
    main()
