"""Order-feed ingest: synthetic trade updates through the real consumer into Postgres.

Each run (`--runs`, default 3; figures are reported per run and as min / median / max):
1. Throughput. N trade updates (new → partial_fill → fill for N/3 orders whose executions exist,
   each order's three updates produced together, keyed by symbol) go to a fresh 6-partition topic
   (6 splits evenly over 1, 2 or 3 consumers), then are read:
   - raw: a bare confluent-kafka consumer (the ceiling: librdkafka delivery, no parsing);
   - ingest: real `manage.py run_orderfeed_consumer` processes with the default settings
     (TRADING_ORDER_FEED_BATCH_SIZE, _POLL_MS), one, then two in one group (a second topic of N):
     parse, fingerprint, dedupe against the stored events, link, apply to executions and
     decisions, TCA, one commit per batch, offsets stored. events/s between the first and the
     last batch's write (`received_at`), not counting the first batch.
2. Latency. A separate producer process sends 1,000 updates/s for 10 s while the consumer runs
   (default settings, the command's process tuning); for every update: time of its batch's
   database commit minus the record's CreateTime. Figures: p50 / p99 / max in ms.
The topics are deleted afterwards (the broker keeps records in memory).

Kafka: TEST_KAFKA_BOOTSTRAP (set by `make test`'s services) or a noida-db started here.
Postgres: a scratch database on the local server (`--database`), or DB_DSN.
    .venv/bin/python bench/orderfeed_ingest.py [--runs 3] [--events 60000]
"""

from __future__ import annotations

import argparse
import json
import os
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

from _common import ROOT, django_setup, percentile, scratch_database, write_result

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


def kafka_bootstrap() -> tuple[str, str | None]:
    existing = os.environ.get("TEST_KAFKA_BOOTSTRAP") or os.environ.get("KAFKA_BOOTSTRAP")
    if existing:
        return existing, None
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
    return f"127.0.0.1:{port}", data_dir


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


def ingest_processes(topic: str, processes: int, expected: int) -> float:
    """Real `manage.py run_orderfeed_consumer` processes in one group, default settings; events/s
    between the first and the last batch's write, without the first batch."""
    from django.db.models import Count, Max, Min

    from orderfeed.models import OrderEvent

    group = f"bench-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "torghut_site.settings",
        "TRADING_ORDER_FEED_ENABLED": "true",
        "TRADING_ORDER_FEED_TOPIC": topic,
        "TRADING_ORDER_FEED_GROUP_ID": group,
        "TRADING_ORDER_FEED_AUTO_OFFSET_RESET": "earliest",
        "TRADING_ORDER_FEED_DLQ_TOPIC": "",
        "LOG_LEVEL": "warning",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "run_orderfeed_consumer", "--idle-exit-seconds", "3"],
            cwd=ROOT,
            env={**env, "TRADING_ORDER_FEED_GROUP_INSTANCE_ID": f"{group}-{i}"},
            stdout=subprocess.DEVNULL,
        )
        for i in range(processes)
    ]
    for proc in procs:
        proc.wait(timeout=900)
        assert proc.returncode == 0, f"consumer exited with {proc.returncode}"
    events = OrderEvent.objects.filter(source_topic=topic)
    span = events.aggregate(first=Min("received_at"), last=Max("received_at"), n=Count("pk"))
    assert span["n"] == expected, f"{span['n']} events stored, expected {expected}"
    first_batch = events.filter(received_at=span["first"]).count()
    seconds: float = (span["last"] - span["first"]).total_seconds()
    return (expected - first_batch) / seconds


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


def latency(bootstrap: str, topic: str, first: int) -> list[float]:
    """End-to-end ms per record at LATENCY_RATE/s through the consumer (default settings)."""
    from django.conf import settings

    from orderfeed import metrics
    from orderfeed.consumer import consumer_process_tune, order_feed_consumer_settings
    from torghut_site.kafka import BatchConsumer, ConsumerMetrics

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


def one_run(bootstrap: str, events: int, run: int) -> dict[str, float]:
    from orderfeed.models import OrderEvent
    from trading.models import Execution

    load_average = os.getloadavg()[0]  # what else runs on the machine (figures are CPU-bound)
    orders = events // 3
    base = run * (orders * 2 + LATENCY_RATE * LATENCY_SECONDS)
    create_orders(base, orders * 2)
    suffix = uuid.uuid4().hex[:8]
    topics = [f"bench.trade-updates.{suffix}", f"bench.trade-updates.b.{suffix}"]
    lat_topic = f"bench.trade-updates.lat.{suffix}"
    try:
        for topic in topics:
            create_topic(bootstrap, topic)
        produce_orders(bootstrap, topics[0], base, orders)
        raw_rate = raw_consume(bootstrap, topics[0], events)
        one = ingest_processes(topics[0], 1, events)
        filled = Execution.objects.filter(
            status="filled",
            client_order_id__in=[f"tg-bench-{n}" for n in range(base, base + orders)],
        ).count()
        assert filled == orders, f"{filled}/{orders} executions filled"
        produce_orders(bootstrap, topics[1], base + orders, orders)
        two = ingest_processes(topics[1], 2, events)
        print(f"run {run + 1}: load average {load_average:.2f} at its start")
        print(f"run {run + 1}: raw consume {raw_rate:,.0f} records/s")
        print(f"run {run + 1}: ingest, 1 consumer process  {one:,.0f} events/s")
        print(f"run {run + 1}: ingest, 2 consumer processes {two:,.0f} events/s")

        first = base + orders * 2
        create_orders(first, LATENCY_RATE * LATENCY_SECONDS // 3 + 1)
        create_topic(bootstrap, lat_topic, partitions=3)
        lat = latency(bootstrap, lat_topic, first)
        p50, p99 = percentile(lat, 0.50), percentile(lat, 0.99)
        print(
            f"run {run + 1}: end-to-end at {LATENCY_RATE}/s: p50 {p50:.1f} ms  p99 {p99:.1f} ms  "
            f"max {lat[-1]:.1f} ms"
        )
        assert OrderEvent.objects.filter(source_topic=lat_topic).count() == len(lat)
    finally:
        delete_topics(bootstrap, [*topics, lat_topic])
    return {
        "load_average_1min_at_start": load_average,
        "raw": raw_rate,
        "one": one,
        "two": two,
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

    bootstrap, noida_dir = kafka_bootstrap()
    os.environ["DB_DSN"] = scratch_database(args.database)
    os.environ["TRADING_ORDER_FEED_BOOTSTRAP_SERVERS"] = bootstrap
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        check=True,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "torghut_site.settings"},
    )
    django_setup()
    from django.conf import settings

    try:
        runs = [one_run(bootstrap, args.events, run) for run in range(args.runs)]
    finally:
        if noida_dir:
            noida = str(Path(sys.executable).parent / "noida-db")
            subprocess.run([noida, "down", "--data-dir", noida_dir], check=False)

    def spread(key: str, digits: int = 0) -> dict[str, float]:
        values = [r[key] for r in runs]
        return {
            "min": round(min(values), digits),
            "median": round(statistics.median(values), digits),
            "max": round(max(values), digits),
        }

    figures: dict[str, Any] = {
        "runs": args.runs,
        "events_per_run": args.events,
        "topic_partitions": PARTITIONS,
        "batch_size": settings.TRADING_ORDER_FEED_BATCH_SIZE,
        "poll_ms": settings.TRADING_ORDER_FEED_POLL_MS,
        "raw_consume_records_per_second": spread("raw"),
        "ingest_events_per_second_1_process": spread("one"),
        "ingest_events_per_second_2_processes": spread("two"),
        "ingest_target_events_per_second": 20000,
        "latency_rate_per_second": LATENCY_RATE,
        "latency_p50_ms": spread("p50", 1),
        "latency_p99_ms": spread("p99", 1),
        "latency_max_ms": spread("max", 1),
        "latency_target_p99_ms": 100,
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
