"""Decision and execution lifecycles as explicit state machines.

Every transition is a conditional UPDATE (`WHERE status = <expected>`) whose row count says
whether we won, plus an append-only transition row in the same transaction. The lifecycle
tables (allowed decision moves, execution status ranks) and the rule that applies a broker order
update to an execution and its decision are pure, in `trading.orderstate`.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from trading.models import Execution, ExecutionTransition, TradeDecision, TradeDecisionTransition
from trading.models.decisions import DecisionStatus as D
from trading.orderstate import decision_can_move


class IllegalTransitionError(Exception):
    pass


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


def execution_record_transition(*, execution: Execution, from_status: str, source: str) -> None:
    ExecutionTransition.objects.create(
        execution=execution,
        from_status=from_status,
        to_status=execution.status,
        filled_qty=execution.filled_qty,
        source=source,
    )
