"""The order-state rule on plain values: each rule with exact values, then any delivery of an
order's updates (permuted, duplicated, stamped or not) folds to what its true order gives."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings

from trading.brokers.base import ORDER_STATUSES
from trading.models.decisions import DecisionStatus
from trading.orderstate import (
    DECISION_TRANSITIONS,
    EXECUTION_RANK,
    ORDER_TO_DECISION,
    DecisionMove,
    DecisionValues,
    ExecutionValues,
    OrderStep,
    OrderUpdate,
    order_update_apply,
    order_updates_fold,
)
from trading.tests.orderstate_cases import QTY, Case, cases

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
EARLIER = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 3, 14, 30, 1, tzinfo=UTC)
T2 = datetime(2026, 3, 3, 14, 30, 2, tzinfo=UTC)
T3 = datetime(2026, 3, 3, 14, 30, 3, tzinfo=UTC)


def execution(status="accepted", filled="0", avg=None, ts=None, seq=None) -> ExecutionValues:
    return ExecutionValues(
        status, QTY, Decimal(filled), Decimal(avg) if avg is not None else None, ts, seq
    )


def decision(status="submitted", executed_at=None, reason="") -> DecisionValues:
    return DecisionValues(status, executed_at, reason)


def update(status, filled="0", avg=None, ts=None, seq=None) -> OrderUpdate:
    return OrderUpdate(
        status,
        Decimal(filled) if filled is not None else None,
        Decimal(avg) if avg is not None else None,
        ts,
        seq,
    )


def apply(e: ExecutionValues, d: DecisionValues | None, u: OrderUpdate) -> OrderStep:
    return order_update_apply(execution=e, decision=d, update=u, now=NOW)


def test_the_tables_cover_every_order_and_decision_status():
    assert set(ORDER_TO_DECISION) == set(EXECUTION_RANK) == set(ORDER_STATUSES)
    assert set(DECISION_TRANSITIONS) == set(DecisionStatus.values)
    assert set(ORDER_TO_DECISION.values()) <= set(DecisionStatus.values)


# -- 1. stale --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ts", "seq", "stale"),
    [
        (T1, 5, True),  # older time, newer seq
        (T3, 3, True),  # newer time, older seq
        (T1, None, True),  # older time, no seq
        (None, 3, True),  # older seq, no time
        (T2, 4, False),  # the same time and seq: not older
        (T3, 5, False),
        (None, None, False),  # a snapshot: never stale
    ],
)
def test_an_update_older_by_seq_or_by_time_is_stale_and_changes_nothing(ts, seq, stale):
    before = execution("new", ts=T2, seq=4)
    d = decision()
    step = apply(before, d, update("filled", "10", "100.5", ts=ts, seq=seq))
    assert step.stale is stale
    if stale:
        assert step == OrderStep(before, d, stale=True)
    else:
        assert (step.execution.status, step.execution.filled_qty) == ("filled", Decimal(10))
        assert (step.execution.last_event_ts, step.execution.last_seq) == (
            ts or T2,
            seq if seq is not None else 4,
        )


# -- 2-5. the execution ----------------------------------------------------------------------
def test_a_final_execution_never_moves_but_its_last_seq_and_time_advance():
    before = execution("canceled", filled="4", avg="100.1", ts=T1, seq=1)
    step = apply(before, None, update("filled", "10", "100.5", ts=T2, seq=2))
    assert step == OrderStep(
        execution("canceled", filled="4", avg="100.1", ts=T2, seq=2), None, execution_moved=False
    )


@pytest.mark.parametrize(
    ("start", "status", "end"),
    [
        ("accepted", "new", "new"),  # the same rank moves (as before)
        ("new", "partially_filled", "partially_filled"),
        ("partially_filled", "new", "partially_filled"),  # lower: ignored
        ("partially_filled", "pending_cancel", "partially_filled"),
        ("pending_new", "done_for_day", "done_for_day"),
        ("done_for_day", "canceled", "canceled"),
        ("new", "no_such_status", "new"),
        ("new", None, "new"),
    ],
)
def test_the_status_moves_only_up_its_ranks(start, status, end):
    step = apply(execution(start), None, update(status, None))
    assert (step.execution.status, step.execution_moved) == (end, end != start)


@pytest.mark.parametrize(
    ("filled", "avg", "expected_filled", "expected_avg", "moved"),
    [
        ("6", "100.3", "6", "100.3", True),  # more: taken with its price
        ("6", None, "6", "100.1", True),  # more without a price: the last price stays
        ("2", "99", "4", "100.1", False),  # less: the filled qty never decreases
        ("4", "101", "4", "100.1", False),  # the same qty: the price does not move either
        ("12", "100.4", "10", "100.4", True),  # capped at the order's qty
        (None, "101", "4", "100.1", False),  # not reported
    ],
)
def test_the_filled_qty_only_grows_and_brings_its_price(
    filled, avg, expected_filled, expected_avg, moved
):
    before = execution("partially_filled", filled="4", avg="100.1")
    step = apply(before, None, update("partially_filled", filled, avg))
    assert step.execution == execution("partially_filled", filled=expected_filled, avg=expected_avg)
    assert step.execution_moved is moved


def test_a_snapshot_that_repeats_the_execution_returns_it_unchanged():
    before = execution("partially_filled", filled="4", avg="100.1", ts=T1, seq=1)
    step = apply(before, None, update("partially_filled", "4", "100.1"))
    assert step == OrderStep(before, None)
    assert step.execution is before


def test_a_capped_fill_already_at_the_order_qty_moves_nothing():
    before = execution("partially_filled", filled="10", avg="100")
    step = apply(before, None, update("partially_filled", "12", "101"))
    assert (step.execution, step.execution_moved) == (before, False)


# -- 6-8. the decision -----------------------------------------------------------------------
def test_a_partial_fill_moves_the_decision_and_sets_executed_at():
    step = apply(execution("new"), decision(), update("partially_filled", "4", "100.1"))
    assert step.decision == decision("partially_filled", NOW)
    assert step.decision_move == DecisionMove("submitted", "partially_filled")
    assert (step.executed_at_set, step.reject_reason_set, step.decision_changed) == (
        True,
        False,
        True,
    )


def test_executed_at_is_set_once_and_kept():
    step = apply(
        execution("partially_filled", "4", "100.1"),
        decision("partially_filled", EARLIER),
        update("filled", "10", "100.2"),
    )
    assert step.decision == decision("filled", EARLIER)
    assert step.executed_at_set is False


def test_a_partial_fill_then_cancel_in_one_snapshot_cancels_the_decision_as_executed():
    step = apply(execution("accepted"), decision(), update("canceled", "4", "100.1"))
    assert step.execution == execution("canceled", "4", "100.1")
    assert step.decision == decision("canceled", NOW)
    assert step.decision_move == DecisionMove("submitted", "canceled")


def test_a_fill_the_decision_cannot_follow_still_sets_executed_at():
    """The decision was closed (its submit unconfirmed) but its order filled after all: it
    executed, whatever its status says."""
    closed = decision("rejected", reason="submit_unconfirmed")
    step = apply(execution("new"), closed, update("filled", "10", "100.2"))
    assert step.decision == decision("rejected", NOW, "submit_unconfirmed")
    assert (step.decision_move, step.executed_at_set) == (None, True)


def test_an_order_without_a_fill_leaves_executed_at_empty():
    step = apply(execution("accepted"), decision(), update("canceled", "0"))
    assert step.decision == decision("canceled", None)
    assert step.executed_at_set is False


def test_a_filled_status_without_a_fill_qty_still_sets_executed_at():
    step = apply(execution("new"), decision(), update("filled", None))
    assert step.decision == decision("filled", NOW)


def test_a_rejection_writes_broker_rejected():
    step = apply(execution("new"), decision(), update("rejected", "0"))
    assert step.decision == decision("rejected", None, "broker_rejected")
    assert (step.decision_move, step.reject_reason_set) == (
        DecisionMove("submitted", "rejected"),
        True,
    )


def test_a_rejection_keeps_an_earlier_reason():
    step = apply(execution("new"), decision(reason="risk_note"), update("rejected", "0"))
    assert step.decision == decision("rejected", None, "risk_note")
    assert step.reject_reason_set is False


def test_the_reject_reason_is_written_on_no_other_move():
    step = apply(execution("new"), decision(reason="risk_note"), update("canceled", "0"))
    assert step.decision == decision("canceled", None, "risk_note")
    assert step.reject_reason_set is False


def test_an_order_rejected_after_a_fill_cancels_its_decision_as_executed():
    for start in ("submitted", "partially_filled"):
        step = apply(
            execution("partially_filled", "4", "100.1"),
            decision(start, EARLIER if start == "partially_filled" else None),
            update("rejected", "4", "100.1"),
        )
        assert step.execution.status == "rejected"
        assert step.decision == decision("canceled", EARLIER if start != "submitted" else NOW)


def test_an_open_order_with_a_fill_makes_its_decision_partially_filled():
    step = apply(execution("accepted"), decision(), update("pending_cancel", "4", "100.1"))
    assert step.execution.status == "pending_cancel"
    assert step.decision == decision("partially_filled", NOW)


def test_the_decision_follows_an_execution_that_is_already_current():
    """A decision left behind its order catches up on the next report, though it moves nothing
    of the execution."""
    step = apply(execution("filled", "10", "100.2"), decision("submitting"), update("filled", "10"))
    assert step.execution_moved is False
    assert step.decision == decision("filled", NOW)
    assert step.decision_move == DecisionMove("submitting", "filled")


@pytest.mark.parametrize("final", ["filled", "canceled", "expired", "rejected"])
def test_a_final_decision_stays(final):
    d = decision(final, EARLIER if final == "filled" else None, "x" if final == "rejected" else "")
    step = apply(execution("new"), d, update("partially_filled", "0"))
    assert (step.decision, step.decision_changed) == (d, False)


def test_a_decision_that_cannot_move_there_stays():
    d = decision("pending_review")
    step = apply(execution("accepted"), d, update("new"))
    assert step.execution.status == "new"
    assert (step.decision, step.decision_changed) == (d, False)


def test_a_rejection_reported_without_the_fill_keeps_the_fill():
    step = apply(
        execution("partially_filled", "4", "100.1"),
        decision("partially_filled", EARLIER),
        update("rejected", "0"),
    )
    assert step.execution == execution("rejected", "4", "100.1")
    assert step.decision == decision("canceled", EARLIER)


def test_an_execution_without_a_decision():
    step = apply(execution("new"), None, update("filled", "10", "100.2"))
    assert (step.decision, step.decision_move, step.decision_changed) == (None, None, False)


def test_fold_applies_in_the_order_given():
    updates = [
        update("new", ts=T1, seq=1),
        update("filled", "10", "100.2", ts=T3, seq=3),
        update("partially_filled", "4", "100.1", ts=T2, seq=2),  # stale
    ]
    assert order_updates_fold(
        execution=execution(), decision=decision(), updates=updates, now=NOW
    ) == (execution("filled", "10", "100.2", ts=T3, seq=3), decision("filled", NOW))


# -- any delivery ----------------------------------------------------------------------------
def _final(updates, status):
    e, d = order_updates_fold(
        execution=execution(), decision=decision(status), updates=updates, now=NOW
    )
    assert d is not None
    return (e.status, e.filled_qty, e.avg_fill_price), (
        d.status,
        d.executed_at is not None,
        d.reject_reason,
    )


@settings(max_examples=300, deadline=None, database=None)
@given(case=cases(orders=1))
def test_any_delivery_folds_to_what_the_true_order_gives(case: Case):
    [life] = case.lives
    [stamps] = case.stamps
    truth = _final([r.update() for r in life], case.decision_status)
    delivered = [r.update(stamps) for _, r in case.delivery]
    assert _final(delivered, case.decision_status) == truth
    # and the true end is the broker's last report
    last = life[-1]
    assert truth[0] == (last.status, last.filled, last.avg or None)
