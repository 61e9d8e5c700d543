"""Order-feed fixtures: a real Kafka-protocol broker (noida-db, started by `make test`)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from trading.identity import client_order_id_for
from trading.models import Execution, Strategy, TradeDecision


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    value = os.environ.get("TEST_KAFKA_BOOTSTRAP", "")
    if not value:
        pytest.fail("TEST_KAFKA_BOOTSTRAP is not set: run the suite through `make test`")
    return value


def create_topics(bootstrap: str, *specs: tuple[str, int]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in specs]
    )
    for future in futures.values():
        future.result(timeout=10)


@dataclass
class Feed:
    bootstrap: str
    topic: str
    topic_v2: str
    dlq: str
    group: str

    def produce(
        self,
        *values: dict[str, Any] | bytes,
        topic: str | None = None,
        key: bytes = b"AAPL",
        partition: int | None = None,
    ) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True})
        for value in values:
            body = value if isinstance(value, bytes) else json.dumps(value).encode()
            if partition is None:
                producer.produce(topic or self.topic, key=key, value=body)
            else:
                producer.produce(topic or self.topic, key=key, value=body, partition=partition)
        assert producer.flush(10) == 0

    def read_all(self, topic: str, *, expect: int, timeout: float = 10.0) -> list[Any]:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"reader-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic])
        records: list[Any] = []
        deadline = datetime.now(UTC).timestamp() + timeout
        while len(records) < expect and datetime.now(UTC).timestamp() < deadline:
            for message in consumer.consume(num_messages=100, timeout=0.2):
                if message.error() is None:
                    records.append(message)
        consumer.close()
        return records


@pytest.fixture
def feed(settings, kafka_bootstrap) -> Iterator[Feed]:
    """Fresh topics (3 partitions, as in production) and group, and settings pointing at them."""
    suffix = uuid.uuid4().hex[:12]
    feed = Feed(
        bootstrap=kafka_bootstrap,
        topic=f"test.trade-updates.v1.{suffix}",
        topic_v2=f"test.trade-updates.v2.{suffix}",
        dlq=f"test.trade-updates.dlq.{suffix}",
        group=f"test-order-feed-{suffix}",
    )
    create_topics(kafka_bootstrap, (feed.topic, 3), (feed.topic_v2, 3), (feed.dlq, 1))
    settings.TRADING_ORDER_FEED_ENABLED = True
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = kafka_bootstrap
    settings.TRADING_ORDER_FEED_TOPIC = feed.topic
    settings.TRADING_ORDER_FEED_TOPIC_V2 = ""
    settings.TRADING_ORDER_FEED_GROUP_ID = feed.group
    settings.TRADING_ORDER_FEED_AUTO_OFFSET_RESET = "earliest"
    settings.TRADING_ORDER_FEED_POLL_MS = 100
    settings.TRADING_ORDER_FEED_DLQ_TOPIC = feed.dlq
    settings.TRADING_ORDER_FEED_MAX_HANDLER_ATTEMPTS = 2
    settings.TRADING_ORDER_FEED_KAFKA = {}
    yield feed


def make_decision(
    *,
    account_label: str = "paper",
    symbol: str = "AAPL",
    n: int = 1,
    qty: str = "10",
    price: str = "100.00",
    side: str = "buy",
    status: str = "submitted",
) -> TradeDecision:
    strategy, _ = Strategy.objects.get_or_create(
        name="feed-test", defaults={"strategy_type": "legacy_macd_rsi", "base_timeframe": "1Min"}
    )
    decision_hash = hashlib.sha256(f"{account_label}:{n}".encode()).hexdigest()
    return TradeDecision.objects.create(
        strategy=strategy,
        account_label=account_label,
        symbol=symbol,
        timeframe="1Min",
        event_ts=datetime(2026, 3, 3, 14, 30, tzinfo=UTC),
        action=side,
        qty=Decimal(qty),
        price=Decimal(price),
        decision_hash=decision_hash,
        client_order_id=client_order_id_for(decision_hash),
        status=status,
    )


def make_order(
    *,
    account_label: str = "paper",
    symbol: str = "AAPL",
    n: int = 1,
    qty: str = "10",
    price: str = "100.00",
    side: str = "buy",
    execution_status: str = "accepted",
) -> tuple[TradeDecision, Execution]:
    """A submitted decision and its execution at the broker."""
    decision = make_decision(
        account_label=account_label, symbol=symbol, n=n, qty=qty, price=price, side=side
    )
    execution = Execution.objects.create(
        decision=decision,
        account_label=account_label,
        broker="simulated",
        broker_order_id=f"order-{account_label}-{n}",
        client_order_id=decision.client_order_id,
        symbol=symbol,
        side=side,
        order_type="market",
        time_in_force="day",
        submitted_qty=Decimal(qty),
        status=execution_status,
    )
    return decision, execution


def trade_update(
    execution: Execution | TradeDecision,
    event: str,
    *,
    status: str,
    ts: str | None,
    filled: str = "0",
    avg: str | None = None,
    seq: int | None = None,
    shape: str = "channel",
    account: str | None = None,
    order_id: str | None = None,
) -> dict[str, Any]:
    """An Alpaca-shaped trade update for an execution (or a decision's future order); `ts`
    None: an update without an event time."""
    client_order_id = execution.client_order_id
    order: dict[str, Any] = {
        "id": order_id
        or (execution.broker_order_id if isinstance(execution, Execution) else "order-new"),
        "client_order_id": client_order_id,
        "symbol": execution.symbol,
        "side": execution.side if isinstance(execution, Execution) else execution.action,
        "type": "market",
        "time_in_force": "day",
        "qty": str(execution.submitted_qty if isinstance(execution, Execution) else execution.qty),
        "filled_qty": filled,
        "filled_avg_price": avg,
        "status": status,
        "updated_at": ts,
    }
    data = {"event": event, "timestamp": ts, "order": order}
    if shape == "stream":
        return {"stream": "trade_updates", "data": data}
    if shape == "bare":
        return {**data}
    envelope: dict[str, Any] = {"channel": "trade_updates", "payload": data}
    if seq is not None:
        envelope["seq"] = seq
    if account is not None:
        envelope["accountLabel"] = account
    return envelope


def fill_updates(execution: Execution, **options: Any) -> list[dict[str, Any]]:
    """An order's fill as three trade updates a second apart: new, partial_fill (4 filled at
    100.5), fill (10 at 100.5); what `assert_executions_filled_once` expects applied. `options`
    go to each `trade_update` (shape, account...)."""
    return [
        trade_update(
            execution,
            event,
            status=status,
            ts=f"2026-03-03T14:30:0{step}Z",
            filled=filled,
            avg="100.5" if filled != "0" else None,
            **options,
        )
        for step, (event, status, filled) in enumerate(
            [
                ("new", "new", "0"),
                ("partial_fill", "partially_filled", "4"),
                ("fill", "filled", "10"),
            ]
        )
    ]


def assert_executions_filled_once(executions: list[Execution]) -> None:
    """Each execution went new → partially filled → filled through the feed, once each (10 of
    10 filled): what a run of new, partial_fill and fill updates per order must leave, whatever
    crashed or was redelivered on the way."""
    from trading.models import ExecutionTransition

    for execution in executions:
        execution.refresh_from_db()
        assert (execution.status, execution.filled_qty) == ("filled", Decimal("10"))
        assert list(
            ExecutionTransition.objects.filter(execution=execution, source="order_feed")
            .order_by("pk")
            .values_list("to_status", flat=True)
        ) == ["new", "partially_filled", "filled"]
