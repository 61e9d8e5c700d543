"""From a strategy intent to a stored decision with every gate's verdict, then to the firewall."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from trading.firewall import OrderFirewall
from trading.gates import (
    Candidate,
    CycleContext,
    GateVerdict,
    StrategySpec,
    gate_allocator,
    gate_execution_policy,
    gate_participation,
    gate_portfolio,
    gate_risk,
    gate_sizing,
    gate_uncertainty,
    gate_universe,
)
from trading.identity import client_order_id_for, decision_hash
from trading.llm.config import ReviewConfig
from trading.llm.policy import review_posture
from trading.llm.request import review_request_snapshot
from trading.metrics import (
    DECISION_REJECTS,
    DECISIONS,
    DUPLICATE_DECISIONS,
    ORDERS_REJECTED,
    STRATEGY_ERRORS,
)
from trading.models import Strategy, TradeDecision, TradeDecisionTransition
from trading.models.decisions import DecisionStatus
from trading.netting import candidate_for
from trading.review import review_candidate
from trading.services.execution import SubmitOutcome, decision_submit
from trading.services.reviews import (
    recent_decisions_summary,
    review_deadline,
    review_enqueue,
    review_link_execution,
    review_open,
)
from trading.signals.types import SignalEnvelope
from trading.statemachine import decision_transition
from trading.strategies.base import Intent

logger = logging.getLogger(__name__)

GATES = (
    gate_universe,
    gate_sizing,
    gate_uncertainty,
    gate_participation,
    gate_allocator,
    gate_portfolio,
    gate_risk,
)


def strategy_spec(strategy: Strategy) -> StrategySpec:
    return StrategySpec(
        id=strategy.pk,
        name=strategy.name,
        version=strategy.version,
        strategy_type=strategy.strategy_type,
        enabled=strategy.enabled,
        universe_symbols=frozenset(s.upper() for s in strategy.universe_symbols or []),
        max_notional_per_trade=strategy.max_notional_per_trade,
        max_position_pct_equity=strategy.max_position_pct_equity,
        params=dict(strategy.params or {}),
        base_timeframe=strategy.base_timeframe,
        uncertainty_action=strategy.uncertainty_action,
    )


def decision_candidate(decision: TradeDecision) -> Candidate:
    """A stored decision as a gate candidate again (the deterministic size, before any review)."""
    signal = decision.decision_json.get("signal", {})
    return Candidate(
        strategy=strategy_spec(decision.strategy),
        symbol=decision.symbol,
        side=decision.action,
        price=decision.price,
        features={k: float(v) for k, v in (signal.get("features") or {}).items()},
        event_ts=decision.event_ts,
        qty=decision.qty,
        order_type=decision.order_type,
        time_in_force=decision.time_in_force,
        limit_price=decision.limit_price,
    )


def candidate_evaluate(
    candidate: Candidate, ctx: CycleContext, *, netting: GateVerdict | None = None
) -> Candidate:
    """Run the gate chain in order; stop at the first failing gate (its reasons are recorded).
    `netting`: the cycle's netting verdict of an intent another side outweighed (the chain does
    not run for it)."""
    if netting is not None:
        candidate.verdicts.append(netting)
        if not netting.passed:
            return candidate
    for gate in GATES:
        verdict = gate(candidate, ctx)
        candidate.verdicts.append(verdict)
        if not verdict.passed:
            return candidate
    candidate.verdicts.append(review_candidate(candidate, ctx))
    if not candidate.verdicts[-1].passed or candidate.review_shadow is False:
        return candidate  # a pending review: execution policy runs when the review is in
    candidate.verdicts.append(gate_execution_policy(candidate, ctx))
    return candidate


@dataclass(frozen=True)
class DecisionOutcome:
    result: str  # duplicate | rejected | submitted | adopted | deferred | blocked | pending_review
    decision_id: int | None = None
    reason: str = ""


def _signal_json(signal: SignalEnvelope) -> dict[str, Any]:
    return {
        "event_ts": signal.event_ts.isoformat(),
        "symbol": signal.symbol,
        "seq": signal.seq,
        "timeframe": signal.timeframe,
        "source": signal.source,
        "price": str(signal.price) if signal.price is not None else None,
        "features": dict(signal.features),
        "feature_schema_version": signal.feature_schema_version,
    }


def decision_process(
    *,
    strategy: Strategy,
    spec: StrategySpec,
    signal: SignalEnvelope,
    intent: Intent,
    ctx: CycleContext,
    firewall: OrderFirewall,
    netting: GateVerdict | None = None,
) -> DecisionOutcome:
    """One intent through the gates: record the decision (once, by its hash), then wait for its
    review, reject it, or submit it through the firewall."""
    dhash = decision_hash(
        account_label=ctx.account_label,
        strategy_name=spec.name,
        strategy_version=spec.version,
        symbol=signal.symbol,
        timeframe=signal.timeframe,
        event_ts=signal.event_ts,
        signal_seq=signal.seq,
        action=intent.action,
    )
    candidate = candidate_for(spec=spec, signal=signal, intent=intent)
    candidate_evaluate(candidate, ctx, netting=netting)
    reasons = candidate.rejected_reasons
    recorded = _decision_record(
        strategy=strategy,
        spec=spec,
        signal=signal,
        intent=intent,
        candidate=candidate,
        ctx=ctx,
        dhash=dhash,
        reasons=reasons,
    )
    if recorded is None:
        DUPLICATE_DECISIONS.inc()
        return DecisionOutcome("duplicate")
    decision, review_id = recorded
    if review_id is not None and candidate.review_shadow is False:
        DECISIONS.labels(strategy=spec.name, outcome="pending_review").inc()
        return DecisionOutcome("pending_review", decision.pk)
    if reasons:
        return _decision_reject(
            decision=decision, reasons=reasons, candidate=candidate, firewall=firewall, spec=spec
        )
    return _decision_send(
        decision=decision,
        candidate=candidate,
        review_id=review_id,
        spec=spec,
        signal=signal,
        intent=intent,
        ctx=ctx,
        firewall=firewall,
    )


def _decision_json(
    *, spec: StrategySpec, signal: SignalEnvelope, intent: Intent, candidate: Candidate
) -> dict[str, Any]:
    return {
        "signal": _signal_json(signal),
        "intent": {
            "action": intent.action,
            "confidence": intent.confidence,
            "rationale": intent.rationale,
        },
        "strategy": {
            "name": spec.name,
            "type": spec.strategy_type,
            "version": spec.version,
            "params": spec.params,
        },
        "sizing": next(
            (v.as_json()["details"] for v in candidate.verdicts if v.gate == "sizing"), {}
        ),
    }


def _decision_record(
    *,
    strategy: Strategy,
    spec: StrategySpec,
    signal: SignalEnvelope,
    intent: Intent,
    candidate: Candidate,
    ctx: CycleContext,
    dhash: str,
    reasons: list[str],
) -> tuple[TradeDecision, int | None] | None:
    """The `planned` decision and, for a gated-through candidate under review, its review's id;
    None if a decision with this hash exists already."""
    review_id: int | None = None
    try:
        with transaction.atomic():
            decision = TradeDecision.objects.create(
                strategy=strategy,
                # provenance from the same row the decision was computed with (`spec`)
                strategy_version=spec.version,
                promotion_ref=strategy.promotion_ref,
                account_label=ctx.account_label,
                symbol=signal.symbol,
                timeframe=signal.timeframe,
                event_ts=signal.event_ts,
                signal_seq=signal.seq,
                action=intent.action,
                qty=candidate.qty,
                order_type=candidate.order_type,
                time_in_force=candidate.time_in_force,
                limit_price=candidate.limit_price,
                price=signal.price,
                decision_hash=dhash,
                client_order_id=client_order_id_for(dhash),
                status=DecisionStatus.PLANNED,
                rationale=intent.rationale,
                decision_json=_decision_json(
                    spec=spec, signal=signal, intent=intent, candidate=candidate
                ),
                gate_verdicts=[v.as_json() for v in candidate.verdicts],
                risk_reasons=reasons,
            )
            TradeDecisionTransition.objects.create(
                decision=decision, from_status="", to_status="planned"
            )
            if candidate.review_shadow is not None and not reasons:
                review_id = _review_open(decision=decision, candidate=candidate, ctx=ctx)
    except IntegrityError:
        return None
    return decision, review_id


def _decision_reject(
    *,
    decision: TradeDecision,
    reasons: list[str],
    candidate: Candidate,
    firewall: OrderFirewall,
    spec: StrategySpec,
) -> DecisionOutcome:
    decision_transition(
        decision=decision,
        to_status=DecisionStatus.REJECTED,
        reason=reasons[0],
        fields={"reject_reason": reasons[0]},
    )
    for reason in reasons:
        DECISION_REJECTS.labels(reason=reason).inc()
    ORDERS_REJECTED.labels(account=decision.account_label).inc()
    DECISIONS.labels(strategy=spec.name, outcome="rejected").inc()
    _cancel_conflicting(candidate, firewall)
    return DecisionOutcome("rejected", decision.pk, reasons[0])


def _decision_send(
    *,
    decision: TradeDecision,
    candidate: Candidate,
    review_id: int | None,
    spec: StrategySpec,
    signal: SignalEnvelope,
    intent: Intent,
    ctx: CycleContext,
    firewall: OrderFirewall,
) -> DecisionOutcome:
    """A decision that passed its gates: `submitting`, then submitted through the firewall."""
    if not decision_transition(
        decision=decision, to_status=DecisionStatus.SUBMITTING, reason="gates_passed"
    ):
        return DecisionOutcome("duplicate", decision.pk)
    outcome: SubmitOutcome = decision_submit(decision=decision, firewall=firewall)
    DECISIONS.labels(strategy=spec.name, outcome=outcome.result).inc()
    if review_id is not None and outcome.execution_id is not None:
        review_link_execution(decision_id=decision.pk, execution_id=outcome.execution_id)
    if outcome.result in ("submitted", "adopted"):
        ctx.record_order(
            symbol=signal.symbol,
            side=intent.action,
            qty=candidate.qty,
            price=signal.price or Decimal(0),
            at=ctx.now,
            strategy=spec.name,
        )
    return DecisionOutcome(outcome.result, decision.pk, outcome.reason)


def _review_open(*, decision: TradeDecision, candidate: Candidate, ctx: CycleContext) -> int:
    """Inside the decision's transaction: snapshot the request, open the review, and for a
    review the decision waits for, move it to `pending_review` with the deadline. The task is
    queued when the transaction commits."""
    config = ReviewConfig.current()
    posture = review_posture(config, is_live=ctx.is_live)
    snapshot = review_request_snapshot(
        candidate=candidate,
        ctx=ctx,
        config=config,
        recent_decisions=recent_decisions_summary(
            account_label=decision.account_label,
            strategy_id=decision.strategy_id,
            symbol=decision.symbol,
            limit=config.recent_decisions,
        ),
        adjustments_allowed=posture.adjustments_allowed,
    )
    deadline = review_deadline(now=timezone.now(), config=config)
    shadow = bool(candidate.review_shadow)
    hook = next(v for v in candidate.verdicts if v.gate == "llm_review")
    review = review_open(
        decision=decision,
        snapshot=snapshot,
        shadow=shadow,
        shadow_reasons=list(hook.details.get("shadow_reasons", [])),
        deadline=deadline,
    )
    if not shadow:
        decision_transition(
            decision=decision,
            to_status=DecisionStatus.PENDING_REVIEW,
            reason="llm_review_requested",
            fields={"review_deadline": deadline},
        )
    review_enqueue(review.pk)
    return review.pk


def _cancel_conflicting(candidate: Candidate, firewall: OrderFirewall) -> None:
    for verdict in candidate.verdicts:
        for order_id in (
            verdict.details.get("conflicting_order_ids", []) if not verdict.passed else []
        ):
            try:
                firewall.cancel(order_id)
            except Exception:  # the reconcile loop will see the order's true state
                logger.exception("could not cancel conflicting order", extra={"order_id": order_id})


def strategy_record_error(*, strategy: Strategy, error: BaseException) -> None:
    """Per-strategy circuit breaker, persisted: N consecutive errors degrade it for a cooldown."""
    STRATEGY_ERRORS.labels(strategy=strategy.name).inc()
    Strategy.objects.filter(pk=strategy.pk).update(
        consecutive_errors=F("consecutive_errors") + 1,
        last_error=f"{type(error).__name__}: {error}"[:2000],
    )
    strategy.refresh_from_db(fields=["consecutive_errors"])
    if strategy.consecutive_errors >= settings.TRADING_STRATEGY_RUNTIME_CIRCUIT_ERRORS:
        until = timezone.now() + timedelta(
            seconds=settings.TRADING_STRATEGY_RUNTIME_CIRCUIT_COOLDOWN_SECONDS
        )
        Strategy.objects.filter(pk=strategy.pk).update(degraded_until=until, consecutive_errors=0)
        strategy.degraded_until = until
        logger.error("strategy degraded by its circuit breaker", extra={"strategy": strategy.name})


def strategy_record_success(*, strategy: Strategy) -> None:
    if strategy.consecutive_errors:
        Strategy.objects.filter(pk=strategy.pk).update(consecutive_errors=0)
        strategy.consecutive_errors = 0
