"""Decision and execution lifecycles as explicit state machines.

Every transition is a conditional UPDATE (`WHERE status = <expected>`) whose row count says
whether we won, plus an append-only transition row in the same transaction.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from trading.brokers.base import FINAL_ORDER_STATUSES
from trading.models import Execution, ExecutionTransition, TradeDecision, TradeDecisionTransition
from trading.models.decisions import DecisionStatus as D

DECISION_TRANSITIONS: dict[str, frozenset[str]] = {
    D.PLANNED: frozenset({D.REJECTED, D.PENDING_REVIEW, D.SUBMITTING}),
    D.PENDING_REVIEW: frozenset({D.REJECTED, D.SUBMITTING}),
    D.SUBMITTING: frozenset(
        {D.SUBMITTED, D.PARTIALLY_FILLED, D.FILLED, D.CANCELED, D.EXPIRED, D.REJECTED}
    ),
    D.SUBMITTED: frozenset({D.PARTIALLY_FILLED, D.FILLED, D.CANCELED, D.EXPIRED, D.REJECTED}),
    D.PARTIALLY_FILLED: frozenset({D.FILLED, D.CANCELED, D.EXPIRED}),
    D.FILLED: frozenset(),
    D.CANCELED: frozenset(),
    D.EXPIRED: frozenset(),
    D.REJECTED: frozenset(),
}
DECISION_FINAL = frozenset(s for s, nxt in DECISION_TRANSITIONS.items() if not nxt)

# broker order status -> the decision status it implies
ORDER_TO_DECISION: dict[str, str] = {
    "new": D.SUBMITTED,
    "accepted": D.SUBMITTED,
    "pending_new": D.SUBMITTED,
    "accepted_for_bidding": D.SUBMITTED,
    "calculated": D.SUBMITTED,
    "pending_cancel": D.SUBMITTED,
    "pending_replace": D.SUBMITTED,
    "suspended": D.SUBMITTED,
    "stopped": D.SUBMITTED,
    "partially_filled": D.PARTIALLY_FILLED,
    "filled": D.FILLED,
    "done_for_day": D.EXPIRED,
    "canceled": D.CANCELED,
    "expired": D.EXPIRED,
    "replaced": D.CANCELED,
    "rejected": D.REJECTED,
}

# execution status ranks: an update never moves an order backwards
_EXECUTION_RANK = {
    "pending_new": 0,
    "new": 1,
    "accepted": 1,
    "accepted_for_bidding": 1,
    "calculated": 1,
    "suspended": 1,
    "stopped": 1,
    "pending_replace": 2,
    "pending_cancel": 2,
    "partially_filled": 3,
    "done_for_day": 4,
    "filled": 5,
    "canceled": 5,
    "expired": 5,
    "replaced": 5,
    "rejected": 5,
}


class IllegalTransitionError(Exception):
    pass


def decision_can_move(from_status: str, to_status: str) -> bool:
    return to_status in DECISION_TRANSITIONS.get(from_status, frozenset())


def decision_transition(
    *,
    decision: TradeDecision,
    to_status: str,
    reason: str = "",
    fields: dict[str, object] | None = None,
) -> bool:
    """Move a decision from its current status to `to_status`.

    Returns False (and changes nothing) when another process moved it first; raises
    IllegalTransitionError when the move is not allowed from the status we hold.
    """
    from_status = decision.status
    if from_status == to_status:
        return False
    if not decision_can_move(from_status, to_status):
        raise IllegalTransitionError(f"decision {decision.pk}: {from_status} -> {to_status}")
    updates: dict[str, object] = {
        "status": to_status,
        "updated_at": timezone.now(),
        **(fields or {}),
    }
    if to_status == D.REJECTED and not updates.get("reject_reason") and not decision.reject_reason:
        updates["reject_reason"] = reason or "rejected"
    with transaction.atomic():
        won = TradeDecision.objects.filter(pk=decision.pk, status=from_status).update(**updates)
        if not won:
            return False
        TradeDecisionTransition.objects.create(
            decision=decision, from_status=from_status, to_status=to_status, reason=reason[:120]
        )
    for key, value in updates.items():
        setattr(decision, key, value)
    return True


def decision_follow_order(*, decision: TradeDecision, order_status: str, reason: str) -> bool:
    """Copy a broker order status onto the decision where the lifecycle allows it."""
    target = ORDER_TO_DECISION.get(order_status)
    if (
        target is None
        or target == decision.status
        or not decision_can_move(decision.status, target)
    ):
        return False
    fields: dict[str, object] = {}
    if target in (D.PARTIALLY_FILLED, D.FILLED) and decision.executed_at is None:
        fields["executed_at"] = timezone.now()
    if target == D.REJECTED:
        fields["reject_reason"] = "broker_rejected"
    return decision_transition(decision=decision, to_status=target, reason=reason, fields=fields)


def execution_is_final(status: str) -> bool:
    return status in FINAL_ORDER_STATUSES


def execution_may_advance(from_status: str, to_status: str) -> bool:
    if from_status == to_status or execution_is_final(from_status):
        return False
    return _EXECUTION_RANK.get(to_status, -1) >= _EXECUTION_RANK.get(from_status, 0)


def execution_record_transition(*, execution: Execution, from_status: str, source: str) -> None:
    ExecutionTransition.objects.create(
        execution=execution,
        from_status=from_status,
        to_status=execution.status,
        filled_qty=execution.filled_qty,
        source=source,
    )
