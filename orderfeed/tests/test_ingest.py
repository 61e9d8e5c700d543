"""Ingest of one batch, without Kafka, through both stores: the set-based Postgres statements the
consumer uses and the portable ORM store of the embedded default. Every case asserts the exact
rows both leave behind."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import DataError, IntegrityError
from django.utils import timezone

from orderfeed.ingest import postgres
from orderfeed.ingest.rules import DecisionState, ExecutionState, tca_row
from orderfeed.models import OrderEvent
from orderfeed.services import (
    PORTABLE_STORE,
    POSTGRES_STORE,
    IngestResult,
    IngestStore,
    order_events_ingest,
)
from orderfeed.tests.conftest import make_decision, make_order, trade_update
from torghut_site.kafka.messages import RawMessage
from trading.models import (
    Execution,
    ExecutionTcaMetric,
    ExecutionTransition,
    Incident,
    TradeDecision,
    TradeDecisionTransition,
)
from trading.services.execution import tca_metric_for

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["postgres", "postgres_copy", "portable"])
def store(request, monkeypatch) -> IngestStore:
    """Each case runs through the Postgres store (events in its one write statement), the same
    with the events COPYed first (a large batch's path), and the portable ORM store."""
    if request.param == "postgres_copy":
        monkeypatch.setattr(postgres, "EVENTS_COPY_MIN", 0)
    return PORTABLE_STORE if request.param == "portable" else POSTGRES_STORE


V1 = "feed.v1"
V2 = "feed.v2"
PRODUCED_MS = 1772548200123  # 2026-03-03T14:30:00.123Z


def rec(offset: int, value: dict[str, Any] | bytes, *, topic: str = V1, partition: int = 0):
    body = value if isinstance(value, bytes) else json.dumps(value).encode()
    return RawMessage(topic, partition, offset, b"AAPL", body, PRODUCED_MS)


def ingest(store: IngestStore, *records: RawMessage, **kwargs: Any) -> IngestResult:
    return order_events_ingest(list(records), store=store, **kwargs)


def counts(result: IngestResult) -> dict[str, int]:
    return {k: v for k, v in result.as_json().items() if v}


def events() -> list[tuple[Any, ...]]:
    return list(
        OrderEvent.objects.order_by(
            "source_topic", "source_partition", "source_offset"
        ).values_list("source_topic", "source_partition", "source_offset", "event_type", "outcome")
    )


def path(execution: Execution) -> list[tuple[str, str, Decimal]]:
    return list(
        ExecutionTransition.objects.filter(execution=execution, source="order_feed")
        .order_by("pk")
        .values_list("from_status", "to_status", "filled_qty")
    )


def decision_path(decision: TradeDecision) -> list[tuple[str, str, str]]:
    return list(
        TradeDecisionTransition.objects.filter(decision=decision)
        .order_by("pk")
        .values_list("from_status", "to_status", "reason")
    )


def new(execution, ts="2026-03-03T14:30:01Z", **kw):
    return trade_update(execution, "new", status="new", ts=ts, **kw)


def partial(execution, ts="2026-03-03T14:30:02Z", **kw):
    return trade_update(
        execution, "partial_fill", status="partially_filled", ts=ts, filled="4", avg="100.10", **kw
    )


def fill(execution, ts="2026-03-03T14:30:03Z", **kw):
    return trade_update(execution, "fill", status="filled", ts=ts, filled="10", avg="100.20", **kw)


def test_one_order_new_partial_fill_writes_every_row_exactly(store):
    decision, execution = make_order()
    updates = [new(execution), partial(execution), fill(execution)]
    result = ingest(store, *(rec(i, u) for i, u in enumerate(updates)))

    assert counts(result) == {
        "messages": 3,
        "persisted": 3,
        "applied": 3,
        "executions_changed": 1,
        "decisions_changed": 1,
    }
    assert events() == [
        (V1, 0, 0, "new", "applied"),
        (V1, 0, 1, "partial_fill", "applied"),
        (V1, 0, 2, "fill", "applied"),
    ]
    stored = OrderEvent.objects.get(source_offset=1)
    assert (stored.execution_id, stored.decision_id, stored.account_label, stored.symbol) == (
        execution.pk,
        decision.pk,
        "paper",
        "AAPL",
    )
    assert (stored.qty, stored.filled_qty, stored.avg_fill_price) == (
        Decimal("10.00000000"),
        Decimal("4.00000000"),
        Decimal("100.100000"),
    )
    assert stored.event_ts == datetime(2026, 3, 3, 14, 30, 2, tzinfo=UTC)
    assert stored.produced_at == datetime(2026, 3, 3, 14, 30, 0, 123000, tzinfo=UTC)
    assert stored.raw_event == updates[1]

    execution.refresh_from_db()
    assert (execution.status, execution.filled_qty, execution.avg_fill_price) == (
        "filled",
        Decimal("10.00000000"),
        Decimal("100.200000"),
    )
    assert execution.order_feed_last_event_ts == datetime(2026, 3, 3, 14, 30, 3, tzinfo=UTC)
    assert execution.order_feed_last_seq is None
    assert execution.raw_order == updates[2]["payload"]["order"]
    assert execution.last_update_at == execution.updated_at == stored.received_at
    assert path(execution) == [
        ("accepted", "new", Decimal("0")),
        ("new", "partially_filled", Decimal("4")),
        ("partially_filled", "filled", Decimal("10")),
    ]
    decision.refresh_from_db()
    assert decision.status == "filled"
    assert decision.executed_at == stored.received_at
    assert decision_path(decision) == [("submitted", "filled", "order_feed")]
    tca = ExecutionTcaMetric.objects.get(execution=execution)
    assert (tca.decision_id, tca.strategy_id, tca.account_label, tca.symbol, tca.side) == (
        decision.pk,
        decision.strategy_id,
        "paper",
        "AAPL",
        "buy",
    )
    assert (tca.arrival_price, tca.avg_fill_price, tca.filled_qty, tca.signed_qty) == (
        Decimal("100.000000"),
        Decimal("100.200000"),
        Decimal("10.00000000"),
        Decimal("10.00000000"),
    )
    assert (tca.slippage_bps, tca.shortfall_notional) == (Decimal("20.0000"), Decimal("2.000000"))


def test_duplicates_inside_one_batch_are_counted_and_skipped(store):
    _, execution = make_order()
    result = ingest(
        store,
        rec(0, new(execution)),
        rec(1, new(execution)),  # the same update produced twice: same fingerprint
        rec(2, fill(execution)),
        rec(2, partial(execution)),  # the same log position twice
    )
    assert counts(result) == {
        "messages": 4,
        "persisted": 2,
        "duplicates": 2,
        "applied": 2,
        "executions_changed": 1,
        "decisions_changed": 1,
    }
    assert events() == [(V1, 0, 0, "new", "applied"), (V1, 0, 2, "fill", "applied")]
    assert path(execution) == [
        ("accepted", "new", Decimal("0")),
        ("new", "filled", Decimal("10")),
    ]


def test_duplicates_across_batches_and_a_redelivered_batch_change_nothing(store):
    decision, execution = make_order()
    ingest(store, rec(0, new(execution)), rec(1, partial(execution)))
    second = [
        rec(2, new(execution)),  # stored content at a new offset
        rec(1, partial(execution)),  # a stored log position
        rec(3, fill(execution)),
    ]
    assert counts(ingest(store, *second)) == {
        "messages": 3,
        "persisted": 1,
        "duplicates": 2,
        "applied": 1,
        "executions_changed": 1,
        "decisions_changed": 1,
    }
    before = (
        path(execution),
        decision_path(decision),
        ExecutionTcaMetric.objects.get().computed_at,
    )

    # the whole batch again, as after a crash between the commit and the offsets
    assert counts(ingest(store, *second)) == {"messages": 3, "duplicates": 3}
    assert events() == [
        (V1, 0, 0, "new", "applied"),
        (V1, 0, 1, "partial_fill", "applied"),
        (V1, 0, 3, "fill", "applied"),
    ]
    assert (
        path(execution),
        decision_path(decision),
        ExecutionTcaMetric.objects.get().computed_at,
    ) == before
    assert decision_path(decision) == [
        ("submitted", "partially_filled", "order_feed"),
        ("partially_filled", "filled", "order_feed"),
    ]


def test_a_reused_log_position_with_other_content_is_dead_lettered_not_dropped(store):
    """A topic recreated (or a broker that lost acknowledged records) hands an offset we stored
    to a new record: it is not a duplicate. Kept as a dead letter, never applied over the stored
    event; the same content at that position is still a plain duplicate."""
    decision, execution = make_order()
    ingest(store, rec(0, new(execution)), rec(1, partial(execution)))
    before = (path(execution), decision_path(decision))

    reused = rec(1, fill(execution))  # other content at the stored position 1
    again = rec(0, new(execution))  # the stored record itself, redelivered
    result = ingest(store, again, reused)

    assert counts(result) == {"messages": 2, "duplicates": 1, "offsets_reused": 1}
    [letter] = result.dead_letters
    assert (letter.message, letter.reason) == (reused, "offset_reused")
    assert letter.error == (
        f"{V1}[0]@1 holds a stored event with other content: the log reused the offset"
    )
    assert events() == [(V1, 0, 0, "new", "applied"), (V1, 0, 1, "partial_fill", "applied")]
    execution.refresh_from_db()
    assert execution.status == "partially_filled"
    assert (path(execution), decision_path(decision)) == before


def test_out_of_order_within_one_batch_is_decided_in_log_order(store):
    _, execution = make_order()
    result = ingest(
        store,
        # handed over out of log order: applied in (topic, partition, offset) order all the same
        rec(12, new(execution, ts="2026-03-03T14:30:01Z", seq=4)),  # newer seq, older time
        rec(10, fill(execution, seq=3)),
        rec(11, partial(execution, ts="2026-03-03T14:30:09Z", seq=2)),  # older seq, newer time
        rec(13, fill(execution, ts="2026-03-03T14:30:05Z", seq=5)),  # newer both: unchanged
    )
    assert counts(result) == {
        "messages": 4,
        "persisted": 4,
        "out_of_order": 2,
        "applied": 1,
        "executions_changed": 1,
        "decisions_changed": 1,
    }
    assert events() == [
        (V1, 0, 10, "fill", "applied"),
        (V1, 0, 11, "partial_fill", "out_of_order"),
        (V1, 0, 12, "new", "out_of_order"),
        (V1, 0, 13, "fill", "unchanged"),
    ]
    execution.refresh_from_db()
    assert (execution.status, execution.filled_qty) == ("filled", Decimal("10.00000000"))
    # an unchanged newer event still moves the execution's last seq and time
    assert execution.order_feed_last_seq == 5
    assert execution.order_feed_last_event_ts == datetime(2026, 3, 3, 14, 30, 5, tzinfo=UTC)
    assert path(execution) == [("accepted", "filled", Decimal("10"))]

    # a later batch is judged against what the execution applied
    late = ingest(store, rec(14, partial(execution, ts="2026-03-03T14:30:06Z", seq=4)))
    assert (late.out_of_order, late.applied) == (1, 0)


def test_unknown_orders_are_stored_flagged_and_raised_once_per_order(store):
    foreign = {"id": "foreign-1", "client_order_id": "manual-1", "symbol": "TSLA", "qty": "3"}
    result = ingest(
        store,
        rec(0, {"order": {**foreign, "status": "new"}, "event": "new"}),
        rec(1, {"order": {**foreign, "status": "filled", "filled_qty": "3"}, "event": "fill"}),
        rec(2, {"order": {"client_order_id": "manual-2", "status": "new"}, "event": "new"}),
    )
    assert counts(result) == {"messages": 3, "persisted": 3, "unknown_orders": 3}
    stored = OrderEvent.objects.order_by("source_offset")
    assert [(e.outcome, e.execution_id, e.decision_id) for e in stored] == [
        ("unknown_order", None, None)
    ] * 3
    assert sorted(Incident.objects.values_list("incident_key", "kind")) == [
        ("unknown-order:paper:foreign-1", "unknown_order"),
        ("unknown-order:paper:manual-2", "unknown_order"),
    ]
    assert Incident.objects.get(incident_key__endswith="foreign-1").snapshot["first_event"] == "new"
    assert Execution.objects.count() == 0

    assert counts(ingest(store, rec(3, {"order": {**foreign, "status": "canceled"}}))) == {
        "messages": 1,
        "persisted": 1,
        "unknown_orders": 1,
    }
    assert Incident.objects.count() == 2


def test_mixed_v1_and_v2_records_in_one_batch_reach_their_own_lanes(store):
    _, paper = make_order(n=1)
    _, lane_b = make_order(n=2, account_label="lane-b")
    # the same broker ids in two lanes are legal: the lane label decides
    lane_b.client_order_id = paper.client_order_id
    lane_b.broker_order_id = paper.broker_order_id
    lane_b.save()
    result = ingest(
        store,
        rec(0, fill(lane_b, account="lane-b"), topic=V2),  # v2 carries the lane
        rec(0, new(paper)),  # v1: the default lane
        rec(1, {"stream": "trade_updates", "data": partial(paper)["payload"]}),
        rec(1, partial(lane_b, account="lane-b", ts="2026-03-03T14:30:04Z"), topic=V2),
    )
    assert counts(result) == {
        "messages": 4,
        "persisted": 4,
        "applied": 3,
        "executions_changed": 2,
        "decisions_changed": 2,
    }
    assert list(
        OrderEvent.objects.order_by("source_topic", "source_offset").values_list(
            "source_topic", "account_label", "execution_id", "outcome"
        )
    ) == [
        (V1, "paper", paper.pk, "applied"),
        (V1, "paper", paper.pk, "applied"),
        (V2, "lane-b", lane_b.pk, "applied"),
        (V2, "lane-b", lane_b.pk, "unchanged"),  # newer, but moves neither status nor fill
    ]
    paper.refresh_from_db()
    lane_b.refresh_from_db()
    assert (paper.status, paper.filled_qty) == ("partially_filled", Decimal("4.00000000"))
    assert (lane_b.status, lane_b.filled_qty) == ("filled", Decimal("10.00000000"))
    assert lane_b.order_feed_last_event_ts == datetime(2026, 3, 3, 14, 30, 4, tzinfo=UTC)


def test_our_order_reported_before_its_execution_is_recorded_from_the_feed(store):
    decision = make_decision(status="submitting")
    sideless = make_decision(n=2, status="submitting")
    without_side = fill(sideless, order_id="broker-78")
    del without_side["payload"]["order"]["side"]
    result = ingest(
        store,
        rec(0, fill(decision, order_id="broker-77")),
        rec(1, without_side),  # not enough to describe the order: reconciliation will fetch it
    )
    assert counts(result) == {
        "messages": 2,
        "persisted": 2,
        "applied": 1,
        "awaiting_execution": 1,
        "executions_changed": 1,
        "decisions_changed": 1,
    }
    execution = Execution.objects.get()
    assert (execution.broker_order_id, execution.client_order_id, execution.decision_id) == (
        "broker-77",
        decision.client_order_id,
        decision.pk,
    )
    assert (execution.status, execution.filled_qty, execution.adopted) == (
        "filled",
        Decimal("10.00000000"),
        True,
    )
    assert list(
        ExecutionTransition.objects.order_by("pk").values_list("from_status", "to_status")
    ) == [("", "pending_new"), ("pending_new", "filled")]
    assert list(
        OrderEvent.objects.order_by("source_offset").values_list(
            "outcome", "execution_id", "decision_id"
        )
    ) == [("applied", execution.pk, decision.pk), ("awaiting_execution", None, sideless.pk)]
    decision.refresh_from_db()
    sideless.refresh_from_db()
    assert (decision.status, sideless.status) == ("filled", "submitting")
    assert ExecutionTcaMetric.objects.get().execution_id == execution.pk


def test_decisions_follow_rejections_cancels_and_stay_final(store):
    rejected_decision, rejected = make_order(n=1)
    canceled_decision, canceled = make_order(n=2, symbol="MSFT", side="sell", price="50")
    final_decision, final = make_order(n=3, execution_status="filled")
    TradeDecision.objects.filter(pk=final_decision.pk).update(status="filled")
    result = ingest(
        store,
        rec(0, trade_update(rejected, "rejected", status="rejected", ts="2026-03-03T14:30:01Z")),
        rec(
            1,
            trade_update(
                canceled,
                "partial_fill",
                status="partially_filled",
                ts="2026-03-03T14:30:01Z",
                filled="2.5",
                avg="49.123456789",
            ),
        ),
        rec(2, trade_update(canceled, "canceled", status="canceled", ts="2026-03-03T14:30:02Z")),
        rec(3, trade_update(final, "canceled", status="canceled", ts="2026-03-03T14:30:02Z")),
    )
    assert counts(result) == {
        "messages": 4,
        "persisted": 4,
        "applied": 3,
        "executions_changed": 3,
        "decisions_changed": 2,
    }
    assert events()[3][-1] == "unchanged"  # a final execution does not move
    rejected_decision.refresh_from_db()
    canceled_decision.refresh_from_db()
    final_decision.refresh_from_db()
    assert (rejected_decision.status, rejected_decision.reject_reason) == (
        "rejected",
        "broker_rejected",
    )
    assert rejected_decision.executed_at is None
    assert (canceled_decision.status, final_decision.status) == ("canceled", "filled")
    # the decision follows the execution's status after the batch (submitted -> canceled here)
    # and records that it executed: the order had a partial fill before the cancel
    assert canceled_decision.executed_at is not None
    assert decision_path(canceled_decision) == [("submitted", "canceled", "order_feed")]
    canceled.refresh_from_db()
    assert (canceled.status, canceled.filled_qty, canceled.avg_fill_price) == (
        "canceled",
        Decimal("2.50000000"),
        Decimal("49.123457"),
    )
    # TCA from the update's own price (before the column rounds it), one row per filled order
    tca = ExecutionTcaMetric.objects.get()
    assert (tca.execution_id, tca.side, tca.signed_qty) == (
        canceled.pk,
        "sell",
        Decimal("-2.50000000"),
    )
    assert (tca.slippage_bps, tca.shortfall_notional) == (Decimal("175.3086"), Decimal("2.191358"))


@pytest.mark.parametrize(("copy_min", "copies"), [(100, 0), (3, 1), (0, 1)])
def test_a_small_batch_writes_its_events_in_the_write_statement_a_large_one_copies_them(
    monkeypatch, copy_min, copies
):
    original = postgres.events_copy
    calls: list[int] = []

    def spy(rows):
        calls.append(len(rows))
        original(rows)

    monkeypatch.setattr(postgres, "EVENTS_COPY_MIN", copy_min)
    monkeypatch.setattr(postgres, "events_copy", spy)
    _, execution = make_order()
    updates = [new(execution), partial(execution), fill(execution)]
    ingest(POSTGRES_STORE, *(rec(i, u) for i, u in enumerate(updates)))
    assert calls == [3] * copies
    assert events() == [
        (V1, 0, 0, "new", "applied"),
        (V1, 0, 1, "partial_fill", "applied"),
        (V1, 0, 2, "fill", "applied"),
    ]
    assert [e.raw_event for e in OrderEvent.objects.order_by("source_offset")] == updates


def test_a_value_beyond_the_columns_fails_the_batch_as_a_data_error(store):
    """The consumer retries, then isolates and dead-letters such a record (test_consumer)."""
    _, execution = make_order()
    with pytest.raises(DataError):
        ingest(store, rec(0, new(execution)), rec(1, fill(execution, seq=2**64)))
    assert OrderEvent.objects.count() == 0
    execution.refresh_from_db()
    assert execution.status == "accepted"


def test_a_duplicate_committed_by_another_consumer_meanwhile_fails_the_batch():
    """Two consumers of one partition during a rebalance: both saw the event as new. The unique
    constraints refuse the second insert, so its batch rolls back whole (and is retried, then
    deduped) instead of applying the update twice."""
    _, execution = make_order()
    ingest(POSTGRES_STORE, rec(0, new(execution)))
    blind = dataclasses.replace(
        POSTGRES_STORE, read=lambda candidates: POSTGRES_STORE.read(candidates)._replace(stored=[])
    )
    with pytest.raises(IntegrityError):
        ingest(blind, rec(1, new(execution)), rec(2, fill(execution)))
    execution.refresh_from_db()
    assert execution.status == "new"
    assert OrderEvent.objects.count() == 1
    assert path(execution) == [("accepted", "new", Decimal("0"))]


@pytest.mark.parametrize(
    ("side", "arrival", "fill_price", "filled"),
    [
        ("buy", "100.00", "100.20", "10"),
        ("sell", "50", "49.123456789", "2.5"),
        ("buy", "99.999999", "100.0000005", "0.33333333"),
        ("sell", "0.000001", "123456.123456", "7"),
        ("buy", None, "100", "1"),
        ("buy", "0", "100", "1"),
        ("sell", "100", None, "1"),
        ("buy", "3", "1", "0.00000001"),
    ],
)
def test_tca_row_is_trading_tca_metric_for_on_plain_values(side, arrival, fill_price, filled):
    decision, execution = make_order(side=side, price=arrival or "1")
    decision.price = Decimal(arrival) if arrival is not None else None
    execution.avg_fill_price = Decimal(fill_price) if fill_price is not None else None
    execution.filled_qty = Decimal(filled)
    now = timezone.now() - timedelta(seconds=5)
    expected = tca_metric_for(execution=execution, decision=decision)
    state = ExecutionState(
        execution.pk,
        decision.pk,
        "paper",
        execution.broker_order_id,
        execution.client_order_id,
        "AAPL",
        side,
        execution.submitted_qty,
        execution.filled_qty,
        execution.avg_fill_price,
        "filled",
        None,
        None,
    )
    plain = DecisionState(decision.pk, decision.strategy_id, "filled", decision.price, None, "")
    row = tca_row(state, plain, now=now)
    assert row == (
        expected.execution_id,
        expected.decision_id,
        expected.strategy_id,
        expected.account_label,
        expected.symbol,
        expected.side,
        expected.arrival_price,
        expected.avg_fill_price,
        expected.filled_qty,
        expected.signed_qty,
        expected.slippage_bps,
        expected.shortfall_notional,
        now,
    )
    assert [repr(v) for v in row[6:12]] == [
        repr(v)
        for v in (
            expected.arrival_price,
            expected.avg_fill_price,
            expected.filled_qty,
            expected.signed_qty,
            expected.slippage_bps,
            expected.shortfall_notional,
        )
    ]
