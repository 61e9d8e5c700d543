"""The order-feed consumer against a real Kafka-protocol broker and Postgres."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import REGISTRY

from orderfeed.consumer import order_feed_consumer, order_feed_consumer_settings
from orderfeed.models import EventOutcome, OrderEvent
from orderfeed.services import OrderFeedHandler, ParsedBatch
from orderfeed.tests.conftest import make_decision, make_order, trade_update
from torghut_site.kafka.consumer import BatchConsumer, ConsumerStats
from torghut_site.kafka.messages import DeadLetter, RawMessage
from torghut_site.models import DeadLetterMessage, ProcessHeartbeat
from trading.models import (
    Execution,
    ExecutionTcaMetric,
    ExecutionTransition,
    Incident,
    TradeDecision,
    TradeDecisionTransition,
)

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(f"torghut_trading_order_feed_{name}_total") or 0.0


def consume(**overrides: Any) -> tuple[BatchConsumer, ConsumerStats]:
    consumer = order_feed_consumer(idle_exit_seconds=0.6, **overrides)
    stats = consumer.run()
    return consumer, stats


def test_every_shape_moves_execution_decision_and_tca(feed):
    decision, execution = make_order()
    before = {n: metric(n) for n in ("messages", "events_persisted", "apply_updates")}
    feed.produce(
        trade_update(execution, "new", status="new", ts="2026-03-03T14:30:01Z"),
        trade_update(
            execution,
            "partial_fill",
            status="partially_filled",
            ts="2026-03-03T14:30:02Z",
            filled="4",
            avg="100.10",
            shape="stream",
        ),
        trade_update(
            execution,
            "fill",
            status="filled",
            ts="2026-03-03T14:30:03Z",
            filled="10",
            avg="100.20",
            shape="bare",
        ),
    )
    _, stats = consume()

    assert stats.messages == 3
    execution.refresh_from_db()
    assert execution.status == "filled"
    assert execution.filled_qty == Decimal("10")
    assert execution.avg_fill_price == Decimal("100.20")
    assert execution.order_feed_last_event_ts == datetime(2026, 3, 3, 14, 30, 3, tzinfo=UTC)
    assert list(
        ExecutionTransition.objects.filter(execution=execution, source="order_feed").values_list(
            "from_status", "to_status", "filled_qty"
        )
    ) == [
        ("accepted", "new", Decimal("0")),
        ("new", "partially_filled", Decimal("4")),
        ("partially_filled", "filled", Decimal("10")),
    ]
    decision.refresh_from_db()
    assert decision.status == "filled"
    assert decision.executed_at is not None
    assert list(
        TradeDecisionTransition.objects.filter(decision=decision).values_list(
            "from_status", "to_status", "reason"
        )
    ) == [("submitted", "filled", "order_feed")]
    tca = ExecutionTcaMetric.objects.get(execution=execution)
    assert tca.slippage_bps == Decimal("20.0000")  # bought at 100.20 against 100.00
    assert tca.shortfall_notional == Decimal("2.000000")
    events = list(OrderEvent.objects.order_by("source_offset"))
    assert [e.outcome for e in events] == [EventOutcome.APPLIED] * 3
    assert {e.execution_id for e in events} == {execution.pk}
    assert {e.decision_id for e in events} == {decision.pk}
    assert metric("messages") - before["messages"] == 3
    assert metric("events_persisted") - before["events_persisted"] == 3
    assert metric("apply_updates") - before["apply_updates"] == 3
    beat = ProcessHeartbeat.objects.get(kind="orderfeed_consumer")
    assert beat.details["state"] == "stopped"
    assert beat.details["messages"] == 3


def test_duplicates_and_a_redelivered_batch_change_nothing(feed, settings):
    _, execution = make_order()
    fill = trade_update(
        execution, "fill", status="filled", ts="2026-03-03T14:30:03Z", filled="10", avg="100.5"
    )
    feed.produce(fill, fill)  # the same update produced twice (a retried producer)
    duplicates = metric("duplicates")
    consume()
    assert OrderEvent.objects.count() == 1
    assert metric("duplicates") - duplicates == 1
    transitions = ExecutionTransition.objects.filter(execution=execution).count()

    # the whole batch again: a consumer that crashed before its offsets were stored (a new
    # group from the beginning, not where the stored events say: that would skip the batch)
    settings.TRADING_ORDER_FEED_GROUP_ID = feed.group + "-replay"
    _, stats = consume(start_from_own_state=False)
    assert stats.messages == 2
    assert metric("duplicates") - duplicates == 3
    assert OrderEvent.objects.count() == 1
    assert ExecutionTransition.objects.filter(execution=execution).count() == transitions
    assert TradeDecisionTransition.objects.count() == 1


def test_offsets_are_committed_so_a_restart_resumes_after_the_batch(feed):
    _, execution = make_order()
    feed.produce(trade_update(execution, "new", status="new", ts="2026-03-03T14:30:01Z"))
    consume()
    feed.produce(
        trade_update(
            execution, "fill", status="filled", ts="2026-03-03T14:30:03Z", filled="10", avg="1"
        )
    )
    _, stats = consume()
    assert stats.messages == 1  # only the new record: the first was committed
    execution.refresh_from_db()
    assert execution.status == "filled"


def test_out_of_order_event_is_stored_not_applied(feed):
    _, execution = make_order()
    out_of_order = metric("out_of_order")
    feed.produce(
        trade_update(
            execution,
            "fill",
            status="filled",
            ts="2026-03-03T14:30:03Z",
            filled="10",
            avg="100.5",
            seq=3,
        ),
        # older by seq although its timestamp is later
        trade_update(
            execution,
            "partial_fill",
            status="partially_filled",
            ts="2026-03-03T14:30:09Z",
            filled="4",
            avg="100",
            seq=2,
        ),
        # older by event time
        trade_update(execution, "new", status="new", ts="2026-03-03T14:30:01Z", seq=4),
    )
    consume()
    execution.refresh_from_db()
    assert execution.status == "filled"
    assert execution.filled_qty == Decimal("10")
    assert execution.order_feed_last_seq == 3
    outcomes = list(OrderEvent.objects.order_by("source_offset").values_list("outcome", flat=True))
    assert outcomes == ["applied", "out_of_order", "out_of_order"]
    assert metric("out_of_order") - out_of_order == 2


def test_invalid_messages_are_dead_lettered_and_the_partition_moves_on(feed):
    _, execution = make_order()
    missing = metric("missing_fields")
    feed.produce(
        b"{this is not json",
        json.dumps({"channel": "trade_updates", "payload": {"event": "new", "order": {}}}).encode(),
        trade_update(
            execution, "fill", status="filled", ts="2026-03-03T14:30:03Z", filled="10", avg="1"
        ),
        partition=0,
    )
    _, stats = consume()

    assert stats.dead_letters == 2
    assert metric("missing_fields") - missing == 2
    letters = list(DeadLetterMessage.objects.order_by("offset"))
    assert [(d.consumer, d.topic, d.partition, d.offset, d.reason) for d in letters] == [
        ("orderfeed", feed.topic, 0, 0, "invalid_json"),
        ("orderfeed", feed.topic, 0, 1, "missing_fields"),
    ]
    assert letters[0].value_preview == "{this is not json"
    assert all(d.published_at is not None for d in letters)
    dlq = feed.read_all(feed.dlq, expect=2)
    assert [m.value() for m in dlq] == [d.value_preview.encode() for d in letters]
    headers = dict(dlq[1].headers())
    assert headers["x-dlq-reason"] == b"missing_fields"
    assert headers["x-dlq-source-topic"] == feed.topic.encode()
    assert headers["x-dlq-source-offset"] == b"1"
    assert headers["x-dlq-error"] == b"neither order id nor client order id"
    execution.refresh_from_db()
    assert execution.status == "filled"  # the valid record behind them was applied


def test_a_message_that_keeps_failing_is_isolated_and_dead_lettered(feed):
    _, execution = make_order()
    errors = metric("consumer_errors")
    poison = {
        "order": {"id": "poison-1", "client_order_id": "x", "qty": "1e17", "status": "new"},
        "timestamp": "2026-03-03T14:30:00Z",
    }
    feed.produce(
        trade_update(execution, "new", status="new", ts="2026-03-03T14:30:01Z"),
        poison,
        trade_update(
            execution, "fill", status="filled", ts="2026-03-03T14:30:03Z", filled="10", avg="1"
        ),
        partition=1,
    )
    _, stats = consume()

    letter = DeadLetterMessage.objects.get()
    assert (letter.reason, letter.offset) == ("handler_error", 1)
    assert letter.error.startswith("DataError")
    # the batch failed twice; then by halves: [new] applied, [poison, fill] failed once, [poison]
    # alone failed twice more (dead-lettered), [fill] applied
    assert stats.handler_retries == 5
    assert metric("consumer_errors") - errors == 5
    assert OrderEvent.objects.count() == 2
    execution.refresh_from_db()
    assert execution.status == "filled"


def test_v2_topic_is_consumed_first_and_carries_the_lane(feed, settings):
    settings.TRADING_ORDER_FEED_TOPIC_V2 = feed.topic_v2
    _, paper = make_order(n=1)
    _, lane_b = make_order(n=2, account_label="lane-b")
    # same broker ids in both lanes would be legal; the lane label decides
    lane_b.client_order_id = paper.client_order_id
    lane_b.broker_order_id = paper.broker_order_id
    lane_b.save()
    feed.produce(
        trade_update(
            lane_b,
            "fill",
            status="filled",
            ts="2026-03-03T14:30:03Z",
            filled="10",
            avg="1",
            account="lane-b",
        ),
        topic=feed.topic_v2,
    )
    consumer, _ = consume()
    assert consumer.settings.topics == (feed.topic_v2, feed.topic)
    lane_b.refresh_from_db()
    paper.refresh_from_db()
    assert (lane_b.status, paper.status) == ("filled", "accepted")
    assert OrderEvent.objects.get().account_label == "lane-b"


def test_unknown_order_is_stored_flagged_and_raised_once(feed):
    unknown = metric("unknown_orders")
    order = {"id": "foreign-1", "client_order_id": "manual-1", "symbol": "TSLA", "qty": "3"}
    feed.produce(
        {"order": {**order, "status": "new"}, "event": "new", "timestamp": "2026-03-03T14:30:00Z"},
        {
            "order": {**order, "status": "filled"},
            "event": "fill",
            "timestamp": "2026-03-03T14:30:05Z",
        },
        key=b"TSLA",
    )
    consume()
    assert list(OrderEvent.objects.values_list("outcome", flat=True)) == ["unknown_order"] * 2
    incident = Incident.objects.get()
    assert incident.incident_key == "unknown-order:paper:foreign-1"
    assert incident.kind == "unknown_order"
    assert incident.snapshot["symbol"] == "TSLA"
    assert metric("unknown_orders") - unknown == 2
    assert Execution.objects.count() == 0


def test_event_for_our_decision_before_its_execution_records_the_execution(feed):
    decision = make_decision(status="submitting")
    feed.produce(
        trade_update(
            decision,
            "fill",
            status="filled",
            ts="2026-03-03T14:30:03Z",
            filled="10",
            avg="100.00",
            order_id="broker-77",
        )
    )
    consume()
    execution = Execution.objects.get()
    assert (execution.broker_order_id, execution.client_order_id) == (
        "broker-77",
        decision.client_order_id,
    )
    assert (execution.status, execution.filled_qty, execution.adopted) == (
        "filled",
        Decimal("10"),
        True,
    )
    decision.refresh_from_db()
    assert decision.status == "filled"
    assert TradeDecision.objects.count() == 1


def test_consumer_lag_is_reported_per_partition(feed, settings):
    settings.TRADING_ORDER_FEED_BATCH_SIZE = 1
    _, execution = make_order()
    feed.produce(
        *[
            trade_update(execution, "new", status="new", ts=f"2026-03-03T14:30:0{i}Z")
            for i in range(4)
        ],
        partition=2,
    )
    consumer = order_feed_consumer(max_messages=1)
    consumer.run()
    lag = f"{feed.topic}[2]"
    assert ProcessHeartbeat.objects.get(kind="orderfeed_consumer").details["lag"][lag] == 3
    # the partition went back to the group on close: this process no longer reports its lag
    assert (
        REGISTRY.get_sample_value(
            "torghut_trading_order_feed_consumer_lag", {"topic": feed.topic, "partition": "2"}
        )
        == 0
    )


class FlakyDatabase:
    """The real handler behind a database that is down for the first two attempts."""

    def __init__(self) -> None:
        from orderfeed.services import OrderFeedHandler

        self.inner = OrderFeedHandler()
        self.calls = 0

    def handle_batch(self, messages):
        from django.db import OperationalError

        self.calls += 1
        if self.calls <= 2:
            raise OperationalError("connection to server was lost")
        return self.inner.handle_batch(messages)


@pytest.mark.django_db(transaction=True)  # the consumer closes the broken connection: no outer
def test_database_outage_is_waited_out_not_dead_lettered(feed):  # test transaction to lose
    _, execution = make_order()
    feed.produce(
        trade_update(execution, "fill", status="filled", ts="2026-03-03T14:30:03Z", filled="10")
    )
    consumer = order_feed_consumer(idle_exit_seconds=0.6)
    consumer.handler = FlakyDatabase()
    stats = consumer.run()
    assert (stats.transient_retries, stats.handler_retries, stats.dead_letters) == (2, 0, 0)
    assert DeadLetterMessage.objects.count() == 0
    execution.refresh_from_db()
    assert execution.status == "filled"


def test_the_next_batch_is_parsed_while_one_is_in_the_database(feed):
    """Pipelining (`PreparingHandler`): while a batch is in the database the helper thread parses
    the next one; each batch's offsets are stored after its own handling and before the next
    batch is handled; every update is applied once."""
    executions = [make_order(n=n, symbol=f"S{n}")[1] for n in range(8)]
    feed.produce(
        *[
            trade_update(e, "fill", status="filled", ts="2026-03-03T14:30:03Z", filled="10")
            for e in executions
        ]
    )
    consumer = order_feed_consumer(idle_exit_seconds=0.6, batch_size=2)
    handler = consumer.handler
    assert isinstance(handler, OrderFeedHandler)
    log: list[tuple[str, tuple[int, ...]]] = []
    prepared = threading.Semaphore(0)
    overlaps = 0
    prepare, handle, store = handler.prepare_batch, handler.handle_prepared, consumer._store_offsets

    def offsets(messages: Sequence[RawMessage]) -> tuple[int, ...]:
        return tuple(sorted((m.partition * 1000 + m.offset) for m in messages))

    def prepare_batch(messages: Sequence[RawMessage]) -> ParsedBatch:
        assert threading.current_thread() is not threading.main_thread()
        log.append(("prepare", offsets(messages)))
        prepared.release()
        return prepare(messages)

    def handle_prepared(messages: Sequence[RawMessage], parsed: ParsedBatch) -> list[DeadLetter]:
        nonlocal overlaps
        assert threading.current_thread() is threading.main_thread()
        log.append(("handle", offsets(messages)))
        # this batch's own preparation released once; a second release: the next batch is
        # being prepared while this one is handled
        if prepared.acquire(timeout=2) and prepared.acquire(timeout=2):
            overlaps += 1
            prepared.release()
        return handle(messages, parsed)

    def store_offsets(messages: list[RawMessage]) -> None:
        log.append(("stored", offsets(messages)))
        store(messages)

    handler.prepare_batch = prepare_batch  # type: ignore[method-assign]
    handler.handle_prepared = handle_prepared  # type: ignore[method-assign,assignment]
    consumer._store_offsets = store_offsets  # type: ignore[method-assign,assignment]
    stats = consumer.run()

    assert stats.messages == 8
    assert overlaps >= 1, log
    handled = [batch for step, batch in log if step == "handle"]
    assert sorted(o for batch in handled for o in batch) == sorted(
        o for step, batch in log if step == "prepare" for o in batch
    )
    for batch in handled:
        assert log.index(("prepare", batch)) < log.index(("handle", batch))
    # each batch's offsets are stored after it was handled and before the next one is
    assert [entry for entry in log if entry[0] != "prepare"] == [
        (step, batch) for batch in handled for step in ("handle", "stored")
    ]
    assert OrderEvent.objects.count() == 8
    assert Execution.objects.filter(status="filled").count() == 8
    assert ExecutionTransition.objects.filter(source="order_feed").count() == 8


def test_prefetch_is_bounded_per_partition_and_in_total_unless_configured(feed, settings):
    settings.TRADING_ORDER_FEED_BATCH_SIZE = 2000
    config = order_feed_consumer_settings().consumer_config()
    assert (config["queued.min.messages"], config["queued.max.messages.kbytes"]) == (2000, 4096)
    # a full queue is looked at again after 10 ms, not librdkafka's 1 s
    assert config["fetch.queue.backoff.ms"] == 10
    settings.TRADING_ORDER_FEED_BATCH_SIZE = 200
    assert order_feed_consumer_settings().consumer_config()["queued.min.messages"] == 1000
    settings.TRADING_ORDER_FEED_KAFKA = {"queued.min.messages": 50, "fetch.queue.backoff.ms": 100}
    config = order_feed_consumer_settings().consumer_config()  # an operator's values win
    assert (config["queued.min.messages"], config["fetch.queue.backoff.ms"]) == (50, 100)
