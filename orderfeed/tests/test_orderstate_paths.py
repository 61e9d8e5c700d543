"""Every path that applies broker order updates ends in the same state, whatever the delivery.

Two orders' true lives (`trading.tests.orderstate_cases`) are delivered permuted, duplicated and
interleaved, and fed through:
(a) `trading.orderstate` folding the updates;
(b) order-feed ingest with the Postgres store, in batches;
(c) the same with the portable ORM store;
(d) `execution_record` (submit) for the first, `execution_apply_order` (reconcile) for the
    rest, as broker snapshots without sequence or event time.
Each must leave every execution (status, filled qty, average price) and decision (status,
`executed_at` set or not, `reject_reason`) as folding its updates in their true order does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings

from orderfeed.services import PORTABLE_STORE, POSTGRES_STORE, IngestStore, order_events_ingest
from orderfeed.tests.conftest import make_decision, make_order, trade_update
from torghut_site.kafka.messages import RawMessage
from trading.brokers.base import BrokerOrder
from trading.models import Execution, TradeDecision, TradeDecisionTransition
from trading.orderstate import DecisionValues, ExecutionValues, order_updates_fold
from trading.services.execution import execution_apply_order, execution_record
from trading.tests.orderstate_cases import QTY, Case, Report, cases

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
SYMBOLS = ("AAPL", "MSFT")
Final = tuple[tuple[str, Decimal, Decimal | None], tuple[str, bool, str]]


def _final(execution: Execution, decision: TradeDecision) -> Final:
    execution.refresh_from_db()
    decision.refresh_from_db()
    return (
        (execution.status, execution.filled_qty, execution.avg_fill_price),
        (decision.status, decision.executed_at is not None, decision.reject_reason),
    )


def _fold(case: Case, order: int, updates: list[Any]) -> Final:
    e, d = order_updates_fold(
        execution=ExecutionValues("accepted", QTY, Decimal(0), None),
        decision=DecisionValues(case.decision_status),
        updates=updates,
        now=NOW,
    )
    assert d is not None
    return (
        (e.status, e.filled_qty, e.avg_fill_price),
        (d.status, d.executed_at is not None, d.reject_reason),
    )


def _feed_message(case: Case, offset: int, order: int, report: Report, execution: Execution):
    stamps = case.stamps[order]
    body = trade_update(
        execution,
        report.event,
        status=report.status,
        ts=report.ts.isoformat() if stamps in ("seq_and_time", "time") else None,
        filled=str(report.filled),
        avg=str(report.avg) if report.avg is not None else None,
        seq=report.step + 1 if stamps in ("seq_and_time", "seq") else None,
    )
    return RawMessage("orderstate.feed", 0, offset, b"", json.dumps(body).encode())


def _orders(case: Case) -> list[tuple[TradeDecision, Execution]]:
    orders = [make_order(n=n + 1, symbol=SYMBOLS[n], qty=str(QTY)) for n in range(len(case.lives))]
    TradeDecision.objects.filter(pk__in=[d.pk for d, _ in orders]).update(
        status=case.decision_status
    )
    return orders


def _through_feed(store: IngestStore) -> Callable[[Case], list[Final]]:
    def run(case: Case) -> list[Final]:
        orders = _orders(case)
        for batch in case.batches():
            order_events_ingest(
                [_feed_message(case, off, o, r, orders[o][1]) for off, o, r in batch],
                store=store,
            )
        return [_final(e, d) for d, e in orders]

    return run


def _broker_order(execution_of: TradeDecision, n: int, report: Report) -> BrokerOrder:
    return BrokerOrder(
        id=f"order-paper-{n + 1}",
        client_order_id=execution_of.client_order_id,
        symbol=execution_of.symbol,
        side="buy",
        order_type="market",
        time_in_force="day",
        qty=QTY,
        filled_qty=report.filled,
        filled_avg_price=report.avg,
        status=report.status,
        submitted_at=None,
        updated_at=None,
        raw={"status": report.status, "filled_qty": str(report.filled)},
    )


def _through_apply_order(case: Case) -> list[Final]:
    decisions = [
        make_decision(n=n + 1, symbol=SYMBOLS[n], qty=str(QTY), status=case.decision_status)
        for n in range(len(case.lives))
    ]
    executions: dict[int, Execution] = {}
    for n, report in case.delivery:
        order = _broker_order(decisions[n], n, report)
        if n not in executions:  # the submit that recorded the order
            executions[n] = execution_record(
                decision=decisions[n], order=order, broker="simulated", adopted=False
            )
        else:  # reconciliation's refresh
            execution_apply_order(execution=executions[n], order=order, source="reconcile")
    return [_final(executions[n], decisions[n]) for n in range(len(case.lives))]


PATHS: dict[str, Callable[[Case], list[Final]]] = {
    "postgres": _through_feed(POSTGRES_STORE),
    "portable": _through_feed(PORTABLE_STORE),
    "apply_order": _through_apply_order,
}


def _rolled_back(run: Callable[[Case], list[Final]], case: Case) -> list[Final]:
    with transaction.atomic():
        result = run(case)
        transaction.set_rollback(True)
    return result


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],  # a shared, loaded test machine
)
@given(case=cases())
def test_every_path_ends_where_the_true_order_ends(case: Case):
    truth = [_fold(case, n, [r.update() for r in life]) for n, life in enumerate(case.lives)]
    folded = [
        _fold(
            case,
            n,
            [r.update(case.stamps[n]) for o, r in case.delivery if o == n],
        )
        for n in range(len(case.lives))
    ]
    assert folded == truth, "(a) trading.orderstate folding the delivery"
    for name, run in PATHS.items():
        assert _rolled_back(run, case) == truth, name


# -- the feed's behaviours that changed, exactly ---------------------------------------------
@pytest.fixture(params=["postgres", "portable"])
def store(request) -> IngestStore:
    return POSTGRES_STORE if request.param == "postgres" else PORTABLE_STORE


def _ingest(store: IngestStore, *updates: dict[str, Any], first: int = 0):
    return order_events_ingest(
        [
            RawMessage("orderstate.feed", 0, first + i, b"", json.dumps(u).encode())
            for i, u in enumerate(updates)
        ],
        store=store,
    )


def _decision_path(decision: TradeDecision) -> list[tuple[str, str, str]]:
    return list(
        TradeDecisionTransition.objects.filter(decision=decision)
        .order_by("pk")
        .values_list("from_status", "to_status", "reason")
    )


def _partial(execution: Execution) -> dict[str, Any]:
    return trade_update(
        execution,
        "partial_fill",
        status="partially_filled",
        ts="2026-03-03T14:30:01Z",
        filled="4",
        avg="100.1",
    )


def _rejected(execution: Execution, filled: str = "4") -> dict[str, Any]:
    return trade_update(
        execution,
        "rejected",
        status="rejected",
        ts="2026-03-03T14:30:02Z",
        filled=filled,
        avg="100.1",
    )


@pytest.mark.parametrize("batches", [1, 2])
def test_an_order_rejected_after_a_fill_cancels_its_decision_in_any_batching(store, batches):
    """Before: one batch rejected the decision (`broker_rejected`), two batches left it
    `partially_filled` under a final order."""
    decision, execution = make_order()
    if batches == 1:
        _ingest(store, _partial(execution), _rejected(execution))
    else:
        _ingest(store, _partial(execution))
        _ingest(store, _rejected(execution), first=1)
    execution.refresh_from_db()
    decision.refresh_from_db()
    assert (execution.status, execution.filled_qty) == ("rejected", Decimal("4"))
    assert (decision.status, decision.reject_reason) == ("canceled", "")
    assert decision.executed_at is not None
    assert _decision_path(decision) == (
        [("submitted", "canceled", "order_feed")]
        if batches == 1
        else [
            ("submitted", "partially_filled", "order_feed"),
            ("partially_filled", "canceled", "order_feed"),
        ]
    )


def test_a_fill_for_a_closed_decision_records_executed_at_only(store):
    decision, execution = make_order()
    TradeDecision.objects.filter(pk=decision.pk).update(
        status="rejected", reject_reason="submit_unconfirmed"
    )
    result = _ingest(
        store,
        trade_update(
            execution, "fill", status="filled", ts="2026-03-03T14:30:01Z", filled="10", avg="100"
        ),
    )
    assert (result.applied, result.decisions_changed) == (1, 1)
    decision.refresh_from_db()
    assert (decision.status, decision.reject_reason) == ("rejected", "submit_unconfirmed")
    assert decision.executed_at is not None
    assert _decision_path(decision) == []


def test_a_final_execution_keeps_its_fill_when_a_newer_event_reports_more(store):
    """Before: the filled qty of a canceled order still rose to the event's."""
    decision, execution = make_order(execution_status="canceled")
    Execution.objects.filter(pk=execution.pk).update(
        filled_qty=Decimal(4), avg_fill_price=Decimal("100.1")
    )
    result = _ingest(
        store,
        trade_update(
            execution, "canceled", status="canceled", ts="2026-03-03T14:30:05Z", filled="6"
        ),
    )
    assert (result.applied, result.executions_changed) == (0, 1)
    execution.refresh_from_db()
    assert (execution.status, execution.filled_qty, execution.avg_fill_price) == (
        "canceled",
        Decimal("4"),
        Decimal("100.1"),
    )
    assert execution.order_feed_last_event_ts == datetime(2026, 3, 3, 14, 30, 5, tzinfo=UTC)
