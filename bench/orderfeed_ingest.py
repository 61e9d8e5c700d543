"""Order-feed ingest: synthetic trade updates through the real consumer into Postgres.

1. Throughput. N trade updates (new → partial_fill → fill for N/3 orders whose executions exist,
   each order's three updates produced together) go to a fresh 3-partition topic, then are read:
   - raw: a bare confluent-kafka consumer (the ceiling: librdkafka delivery, no parsing);
   - ingest: real `manage.py run_orderfeed_consumer` processes (batch 2000), one and then two in
     one group (a second topic of N): parse, fingerprint, dedupe against the stored events, link,
     apply to executions and decisions, TCA, one commit per batch, offsets stored. events/s from
     the first to the last stored event.
2. Latency. A separate producer process sends 1,000 updates/s for 10 s while the consumer runs;
   for every update: time of its batch's database commit minus the record's CreateTime.
   Figures: p50 / p99 / max in ms.

Kafka: TEST_KAFKA_BOOTSTRAP (set by `make test`'s services) or a noida-db started here.
Postgres: a scratch database on the local server (or DB_DSN).
    .venv/bin/python bench/orderfeed_ingest.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from _common import ROOT, django_setup, percentile, scratch_database, write_result

N = 60_000
LATENCY_RATE = 1_000
LATENCY_SECONDS = 10
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


def kafka_bootstrap() -> tuple[str, subprocess.Popen[bytes] | None, str | None]:
    existing = os.environ.get("TEST_KAFKA_BOOTSTRAP") or os.environ.get("KAFKA_BOOTSTRAP")
    if existing:
        return existing, None, None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data_dir = tempfile.mkdtemp(prefix="bench-noida-")
    noida = str(Path(sys.executable).parent / "noida-db")
    subprocess.run(
        [noida, "up", "--only", "kafka", "--kafka-port", str(port), "--data-dir", data_dir],
        check=True,
        capture_output=True,
    )
    return f"127.0.0.1:{port}", None, data_dir


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


def create_topic(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=3)]).values():
        future.result(timeout=10)


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
    """The order-feed handler, timed: active span, and per-record commit latency."""

    def __init__(self) -> None:
        from orderfeed.services import OrderFeedHandler

        self.inner = OrderFeedHandler()
        self.first_start = 0.0
        self.last_end = 0.0
        self.latencies_ms: list[float] = []
        self.persisted = 0
        self.duplicates = 0

    def handle_batch(self, messages: Sequence[object]) -> list[object]:
        if not self.first_start:
            self.first_start = time.perf_counter()
        letters = self.inner.handle_batch(messages)  # type: ignore[arg-type]
        self.last_end = time.perf_counter()
        now_ms = time.time() * 1000
        self.latencies_ms.extend(now_ms - m.timestamp_ms for m in messages if m.timestamp_ms)  # type: ignore[attr-defined]
        result = self.inner.last_result
        if result is not None:
            self.persisted += result.persisted
            self.duplicates += result.duplicates
        return letters  # type: ignore[return-value]


def build_consumer(bootstrap: str, topic: str, total: int, batch_size: int):  # type: ignore[no-untyped-def]
    from orderfeed import metrics
    from torghut_site.kafka import BatchConsumer, ConsumerMetrics, ConsumerSettings

    handler = TimedHandler()
    consumer = BatchConsumer(
        ConsumerSettings(
            name="orderfeed",
            heartbeat_kind="orderfeed_consumer",
            bootstrap_servers=bootstrap,
            topics=(topic,),
            group_id=f"bench-{uuid.uuid4().hex}",
            client_id="bench",
            auto_offset_reset="earliest",
            poll_ms=250,
            batch_size=batch_size,
        ),
        handler,  # type: ignore[arg-type]
        ConsumerMetrics(messages=metrics.MESSAGES, errors=metrics.CONSUMER_ERRORS),
        max_messages=total,
    )
    return consumer, handler


def ingest_processes(bootstrap: str, topic: str, processes: int) -> float:
    """Real `manage.py run_orderfeed_consumer` processes in one group; events/s from the first
    to the last stored event."""
    from django.db.models import Max, Min

    from orderfeed.models import OrderEvent

    group = f"bench-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "torghut_site.settings",
        "TRADING_ORDER_FEED_ENABLED": "true",
        "TRADING_ORDER_FEED_TOPIC": topic,
        "TRADING_ORDER_FEED_GROUP_ID": group,
        "TRADING_ORDER_FEED_AUTO_OFFSET_RESET": "earliest",
        "TRADING_ORDER_FEED_BATCH_SIZE": "2000",
        "TRADING_ORDER_FEED_DLQ_TOPIC": "",
        "LOG_LEVEL": "warning",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "run_orderfeed_consumer", "--idle-exit-seconds", "3"],
            cwd=ROOT,
            env={**env, "TRADING_ORDER_FEED_GROUP_INSTANCE_ID": f"bench-{i}"},
            stdout=subprocess.DEVNULL,
        )
        for i in range(processes)
    ]
    for proc in procs:
        proc.wait(timeout=600)
    span = OrderEvent.objects.filter(source_topic=topic).aggregate(
        first=Min("received_at"), last=Max("received_at")
    )
    count = OrderEvent.objects.filter(source_topic=topic).count()
    assert count == N, f"{count} events stored, expected {N}"
    seconds: float = (span["last"] - span["first"]).total_seconds()
    return N / seconds


def produce_orders(bootstrap: str, topic: str, first: int, orders: int) -> None:
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )
    for n in range(first, first + orders):  # an order's updates close together, as sent
        for step in range(3):
            producer.produce(topic, key=SYMBOLS[n % 50].encode(), value=update(n, step))
            producer.poll(0)
    producer.flush(60)


def main() -> None:
    bootstrap, _, noida_dir = kafka_bootstrap()
    dsn = scratch_database("torghut_bench_feed")
    os.environ["DB_DSN"] = dsn
    os.environ["TRADING_ORDER_FEED_BOOTSTRAP_SERVERS"] = bootstrap
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        check=True,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "torghut_site.settings"},
    )
    django_setup()
    from orderfeed.models import OrderEvent
    from trading.models import Execution

    try:
        # -- 1. throughput ------------------------------------------------------------------
        orders = N // 3
        create_orders(0, orders * 2)
        topic = f"bench.trade-updates.{uuid.uuid4().hex[:8]}"
        create_topic(bootstrap, topic)
        produce_orders(bootstrap, topic, 0, orders)
        raw_rate = raw_consume(bootstrap, topic, N)
        one = ingest_processes(bootstrap, topic, 1)
        filled = Execution.objects.filter(status="filled").count()
        topic_b = f"bench.trade-updates.b.{uuid.uuid4().hex[:8]}"
        create_topic(bootstrap, topic_b)
        produce_orders(bootstrap, topic_b, orders, orders)
        two = ingest_processes(bootstrap, topic_b, 2)
        stored = OrderEvent.objects.count()
        print(f"raw consume             {raw_rate:,.0f} records/s")
        print(f"ingest, 1 consumer      {one:,.0f} events/s")
        print(f"ingest, 2 consumers     {two:,.0f} events/s")
        print(f"  stored {stored}, executions filled {filled}/{orders} after the first run")

        # -- 2. latency at a steady rate -----------------------------------------------------
        total = LATENCY_RATE * LATENCY_SECONDS
        first = orders * 2
        create_orders(first, total // 3 + 1)
        topic2 = f"bench.trade-updates.lat.{uuid.uuid4().hex[:8]}"
        create_topic(bootstrap, topic2)
        consumer, handler = build_consumer(bootstrap, topic2, total, batch_size=200)
        thread = threading.Thread(target=consumer.run)
        thread.start()
        while not consumer._assigned:  # produce once the consumer owns the partitions
            time.sleep(0.05)
        producer_proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                PRODUCER,
                bootstrap,
                topic2,
                str(LATENCY_RATE),
                str(LATENCY_SECONDS),
                str(first),
            ]
        )
        producer_proc.wait(timeout=60)
        thread.join(timeout=60)
        lat = sorted(handler.latencies_ms)
        p50, p99 = percentile(lat, 0.50), percentile(lat, 0.99)
        print(
            f"end-to-end at {LATENCY_RATE}/s: p50 {p50:.1f} ms  p99 {p99:.1f} ms  max {lat[-1]:.1f} ms"
        )
        figures = {
            "events": N,
            "raw_consume_records_per_second": round(raw_rate),
            "ingest_events_per_second_1_consumer": round(one),
            "ingest_events_per_second_2_consumers": round(two),
            "ingest_vs_raw_ratio_1_consumer": round(one / raw_rate, 4),
            "ingest_target_events_per_second": 20000,
            "events_stored": stored,
            "executions_filled_first_run": filled,
            "latency_rate_per_second": LATENCY_RATE,
            "latency_events": len(lat),
            "latency_p50_ms": round(p50, 1),
            "latency_p99_ms": round(p99, 1),
            "latency_max_ms": round(lat[-1], 1),
            "latency_target_p99_ms": 100,
        }
        print(write_result("orderfeed_ingest", figures))
    finally:
        if noida_dir:
            noida = str(Path(sys.executable).parent / "noida-db")
            subprocess.run([noida, "down", "--data-dir", noida_dir], check=False)


if __name__ == "__main__":
    main()
