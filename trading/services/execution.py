"""Submitting decisions through the firewall, adopting orders, and applying broker order state.

Idempotency, in order of defence:
1. the decision row is unique per (lane, decision_hash), and its `client_order_id` derives from
   that hash, so a retried cycle or a second worker never creates a second decision;
2. the move `planned -> submitting` is a compare-and-set: exactly one process wins the right to
   call the broker for a decision;
3. a decision found in `submitting` (a crash between the broker's answer and our commit) is never
   resubmitted blindly: the broker is asked for the client order id first and the order adopted;
4. the broker enforces client order id uniqueness; a duplicate rejection means "adopt".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from torghut_site.db import bulk_upsert_rows
from torghut_site.faults import fault_point
from trading.brokers.base import (
    AmbiguousBrokerError,
    BrokerError,
    BrokerOrder,
    DuplicateClientOrderIdError,
    OrderNotFoundError,
    OrderRequest,
    RetryableBrokerError,
    TerminalBrokerError,
)
from trading.firewall import OrderFirewall, OrderFirewallBlocked
from trading.metrics import ORDERS_ADOPTED, ORDERS_FAILED, ORDERS_SUBMITTED
from trading.models import Execution, ExecutionTcaMetric, TradeDecision
from trading.models.decisions import DecisionStatus, SubmitAnswer
from trading.orderstate import (
    DecisionValues,
    ExecutionValues,
    OrderStep,
    OrderUpdate,
    order_update_apply,
)
from trading.statemachine import decision_transition, execution_record_transition
from trading.tca import tca_numbers

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubmitOutcome:
    result: str  # submitted | adopted | rejected | deferred | blocked
    reason: str = ""
    execution_id: int | None = None


def order_request_for(decision: TradeDecision) -> OrderRequest:
    return OrderRequest(
        symbol=decision.symbol,
        side=decision.action,
        qty=decision.qty,
        client_order_id=decision.client_order_id,
        order_type=decision.order_type,
        time_in_force=decision.time_in_force,
        limit_price=decision.limit_price,
        stop_price=decision.stop_price,
    )


def decision_submit(*, decision: TradeDecision, firewall: OrderFirewall) -> SubmitOutcome:
    """Send a decision that this process just moved to `submitting` (it won the CAS)."""
    assert decision.status == DecisionStatus.SUBMITTING
    lane = decision.account_label
    try:
        order = firewall.submit(order_request_for(decision))
    except OrderFirewallBlocked as exc:
        decision_transition(
            decision=decision,
            to_status=DecisionStatus.REJECTED,
            reason=exc.reason,
            fields={
                "reject_reason": exc.reason,
                "risk_reasons": [*decision.risk_reasons, exc.reason],
            },
        )
        return SubmitOutcome("blocked", exc.reason)
    except DuplicateClientOrderIdError:
        ORDERS_FAILED.labels(account=lane, reason="duplicate_client_order_id").inc()
        decision_answer_record(decision_id=decision.pk, answer=SubmitAnswer.DUPLICATE)
        return decision_adopt_or_defer(decision=decision, firewall=firewall, source="duplicate")
    except AmbiguousBrokerError as exc:
        ORDERS_FAILED.labels(account=lane, reason="ambiguous").inc()
        decision_answer_record(decision_id=decision.pk, answer=SubmitAnswer.AMBIGUOUS)
        logger.warning(
            "ambiguous submit; looking the order up",
            extra={"client_order_id": decision.client_order_id, "error": str(exc)},
        )
        return decision_adopt_or_defer(decision=decision, firewall=firewall, source="ambiguous")
    except RetryableBrokerError as exc:
        # the request certainly did not take effect: the decision is closed with the reason, not
        # retried later with a stale signal
        return _broker_refused(decision, exc, kind="retryable", reject_reason="broker_unavailable")
    except TerminalBrokerError as exc:
        return _broker_refused(decision, exc, kind="terminal", reject_reason="broker_rejected")
    fault_point("after_broker_submit")
    ORDERS_SUBMITTED.labels(account=lane).inc()
    decision_answer_record(decision_id=decision.pk, answer=SubmitAnswer.ACCEPTED)
    execution = execution_record(
        decision=decision, order=order, broker=firewall.lane.broker, adopted=False
    )
    return SubmitOutcome("submitted", execution_id=execution.pk)


def decision_answer_record(*, decision_id: int, answer: SubmitAnswer) -> bool:
    """Record how the broker answered a decision's submit; the first answer stays (a later
    adoption of an ambiguous submit does not turn it into a clean one)."""
    won = TradeDecision.objects.filter(pk=decision_id, submit_answer=SubmitAnswer.NONE).update(
        submit_answer=answer, submit_answered_at=timezone.now()
    )
    return won == 1


def _broker_refused(
    decision: TradeDecision, exc: BrokerError, *, kind: str, reject_reason: str
) -> SubmitOutcome:
    ORDERS_FAILED.labels(account=decision.account_label, reason=kind).inc()
    decision_answer_record(decision_id=decision.pk, answer=SubmitAnswer.REFUSED)
    reason = f"{reject_reason}:{exc.code or exc.status_code or 'error'}"
    decision_transition(
        decision=decision,
        to_status=DecisionStatus.REJECTED,
        reason=reason,
        fields={"reject_reason": reject_reason},
    )
    return SubmitOutcome("rejected", reason)


def decision_adopt_or_defer(
    *, decision: TradeDecision, firewall: OrderFirewall, source: str
) -> SubmitOutcome:
    """Look the decision's order up at the broker; adopt it if it exists, else leave the decision
    in `submitting` for reconciliation (which never resubmits)."""
    try:
        order = firewall.lookup(decision.client_order_id)
    except OrderNotFoundError:
        return SubmitOutcome("deferred", "not_found_at_broker")
    except BrokerError as exc:
        return SubmitOutcome("deferred", f"lookup_failed:{type(exc).__name__}")
    ORDERS_ADOPTED.labels(account=decision.account_label, source=source).inc()
    execution = execution_record(
        decision=decision, order=order, broker=firewall.lane.broker, adopted=True
    )
    return SubmitOutcome("adopted", source, execution.pk)


def execution_record(
    *,
    decision: TradeDecision | None,
    order: BrokerOrder,
    broker: str,
    adopted: bool,
    account_label: str | None = None,
    unknown: bool = False,
) -> Execution:
    """Insert the execution for a broker order exactly once, then apply its state."""
    lane = decision.account_label if decision is not None else (account_label or "")
    now = timezone.now()
    try:
        with transaction.atomic():
            execution = Execution.objects.create(
                decision=decision,
                account_label=lane,
                broker=broker,
                broker_order_id=order.id,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side,
                order_type=order.order_type,
                time_in_force=order.time_in_force,
                submitted_qty=order.qty,
                filled_qty=Decimal(0),
                limit_price=order.limit_price,
                status="pending_new",
                adopted=adopted,
                unknown_order=unknown,
                raw_order=order.raw,
                submitted_at=order.submitted_at or now,
                last_update_at=now,
            )
            execution_record_transition(
                execution=execution, from_status="", source="submit" if not adopted else "adopt"
            )
    except IntegrityError:
        execution = Execution.objects.get(account_label=lane, client_order_id=order.client_order_id)
    execution_apply_order(
        execution=execution, order=order, source="submit" if not adopted else "adopt"
    )
    return Execution.objects.get(pk=execution.pk)


def execution_apply_order(*, execution: Execution, order: BrokerOrder, source: str) -> bool:
    """Apply a broker order snapshot to an execution and its decision (`trading.orderstate`):
    never moves backwards; the decision follows its order even when the execution is already
    current. Returns whether the execution changed (status or filled qty)."""
    now = timezone.now()
    with transaction.atomic():
        # locked execution first, then its decision: the order the order feed's ingest locks in
        locked = Execution.objects.select_for_update(of=("self",)).get(pk=execution.pk)
        decision = (
            TradeDecision.objects.select_for_update(of=("self",)).get(pk=locked.decision_id)
            if locked.decision_id is not None
            else None
        )
        step = order_update_apply(
            execution=ExecutionValues(
                locked.status, locked.submitted_qty, locked.filled_qty, locked.avg_fill_price
            ),
            decision=None
            if decision is None
            else DecisionValues(decision.status, decision.executed_at, decision.reject_reason),
            # a snapshot: no feed sequence or event time, so never stale (rules 2-4 guard it)
            update=OrderUpdate(order.status, order.filled_qty, order.filled_avg_price),
            now=now,
        )
        if step.execution_moved:
            from_status = locked.status
            locked.status = step.execution.status
            locked.filled_qty = step.execution.filled_qty
            locked.avg_fill_price = step.execution.avg_fill_price
            locked.raw_order = order.raw
            locked.last_update_at = now
            locked.save(
                update_fields=[
                    "status",
                    "filled_qty",
                    "avg_fill_price",
                    "raw_order",
                    "last_update_at",
                    "updated_at",
                ]
            )
            execution_record_transition(execution=locked, from_status=from_status, source=source)
        if decision is not None and step.decision_changed:
            _decision_write(decision=decision, step=step, reason=f"order_{source}", now=now)
        if step.execution_moved and locked.filled_qty > 0:
            tca_upsert(execution=locked)
    return step.execution_moved


def _decision_write(
    *, decision: TradeDecision, step: OrderStep, reason: str, now: datetime
) -> None:
    """Write what `order_update_apply` changed of a decision (locked by the caller)."""
    assert step.decision is not None
    fields: dict[str, object] = {}
    if step.executed_at_set:
        fields["executed_at"] = step.decision.executed_at
    if step.reject_reason_set:
        fields["reject_reason"] = step.decision.reject_reason
    if step.decision_move is not None:
        decision_transition(
            decision=decision, to_status=step.decision_move.to_status, reason=reason, fields=fields
        )
        return
    TradeDecision.objects.filter(pk=decision.pk).update(**fields, updated_at=now)
    for name, value in fields.items():
        setattr(decision, name, value)


def tca_metric_for(*, execution: Execution, decision: TradeDecision | None) -> ExecutionTcaMetric:
    """The (unsaved) TCA row of an execution: fill versus the decision's arrival price."""
    arrival = decision.price if decision is not None else None
    fill = execution.avg_fill_price
    numbers = tca_numbers(
        side=execution.side, arrival=arrival, fill=fill, filled_qty=execution.filled_qty
    )
    return ExecutionTcaMetric(
        execution=execution,
        decision=decision,
        strategy_id=decision.strategy_id if decision is not None else None,
        account_label=execution.account_label,
        symbol=execution.symbol,
        side=execution.side,
        arrival_price=arrival,
        avg_fill_price=fill,
        filled_qty=execution.filled_qty,
        signed_qty=numbers.signed_qty,
        slippage_bps=numbers.slippage_bps,
        shortfall_notional=numbers.shortfall_notional,
        computed_at=timezone.now(),
    )


TCA_UPDATE_FIELDS = [
    "decision",
    "strategy",
    "account_label",
    "symbol",
    "side",
    "arrival_price",
    "avg_fill_price",
    "filled_qty",
    "signed_qty",
    "slippage_bps",
    "shortfall_notional",
    "computed_at",
]


def tca_upsert_many(*, metrics: list[ExecutionTcaMetric]) -> None:
    """Insert or refresh TCA rows in one statement (one row per execution)."""
    by_name = {f.name: f.attname for f in ExecutionTcaMetric._meta.concrete_fields}
    columns = ["execution_id", *(by_name[f] for f in TCA_UPDATE_FIELDS)]
    bulk_upsert_rows(
        ExecutionTcaMetric,
        columns,
        [tuple(getattr(m, c) for c in columns) for m in metrics],
        unique_columns=["execution_id"],
        update_columns=columns[1:],
    )


def tca_upsert(*, execution: Execution) -> ExecutionTcaMetric:
    metric = tca_metric_for(execution=execution, decision=execution.decision)
    tca_upsert_many(metrics=[metric])
    return ExecutionTcaMetric.objects.get(execution=execution)
