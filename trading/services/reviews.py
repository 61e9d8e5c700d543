"""LLM reviews of decisions: opened in the cycle, run in a task, expired by the sweep, and the
decision carried on through the remaining gates and the firewall once the review is in.

Lifecycle of a review row: `pending` → `completed` (the task) or `expired` (the sweep, when the
deadline passes first). Both moves are compare-and-set on `status='pending'`, so a late answer
never overrides an expiry and the decision moves once. A decision that waits for its review is in
`pending_review`; it leaves it by `pending_review → rejected` (veto, fail mode, a later gate) or
`pending_review → submitting` (then the order firewall), again by compare-and-set.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from torghut_site.hashing import canonical_text_hash, sha256_hex
from torghut_site.queueing import task_after_commit
from trading.firewall import OrderFirewall
from trading.gates import (
    Candidate,
    CycleContext,
    GateVerdict,
    gate_allocator,
    gate_execution_policy,
    gate_portfolio,
    gate_risk,
    qty_step,
)
from trading.lanes import UnknownLaneError, lane_config
from trading.llm.committee import committee_budget_messages
from trading.llm.config import ReviewConfig
from trading.llm.engine import ReviewRun, review_execute
from trading.llm.evidence import PREFIX as EVIDENCE_PREFIX
from trading.llm.policy import (
    DeterministicOrder,
    PolicyOutcome,
    Posture,
    fail_outcome,
    review_posture,
)
from trading.llm.request import review_messages
from trading.metrics import (
    DECISION_REJECTS,
    LLM_DSPY_FALLBACK,
    LLM_ERRORS,
    LLM_EVIDENCE_REJECTIONS,
    LLM_POLICY_FALLBACK,
    LLM_REQUESTS,
    LLM_REVIEW_EXPIRED,
    LLM_REVIEW_LATENCY,
    LLM_SHADOW,
    LLM_TOKENS_COMPLETION,
    LLM_TOKENS_PROMPT,
    LLM_VERDICTS,
    ORDERS_REJECTED,
)
from trading.models import LLMDecisionReview, TradeDecision
from trading.models.decisions import DecisionStatus
from trading.models.llm import ReviewEffect, ReviewStatus
from trading.services.execution import decision_submit
from trading.services.llm_budget import (
    BudgetDecision,
    budget_reserve,
    budget_settle,
    calls_cost_usd,
)
from trading.services.review_committee import committee_votes_store, review_metrics_record
from trading.services.review_context import market_context_for
from trading.services.stability import stability_probe_enqueue
from trading.statemachine import decision_transition

logger = logging.getLogger(__name__)


def _is_live(account_label: str) -> bool:
    """A lane no longer configured is treated as live: the strictest fail mode applies."""
    try:
        return lane_config(account_label).is_live
    except UnknownLaneError:
        return True


def deterministic_order(decision: TradeDecision) -> DeterministicOrder:
    return DeterministicOrder(
        side=decision.action,
        qty=decision.qty,
        order_type=decision.order_type,
        limit_price=decision.limit_price,
        price=decision.price,
        qty_step=qty_step(decision.symbol),
    )


def recent_decisions_summary(
    *, account_label: str, strategy_id: int, symbol: str, limit: int
) -> list[dict[str, Any]]:
    if limit <= 0:
        return []
    rows = (
        TradeDecision.objects.filter(
            account_label=account_label, strategy_id=strategy_id, symbol=symbol
        )
        .order_by("-created_at")
        .values("id", "action", "qty", "status", "created_at", "price", "reject_reason")[:limit]
    )
    return [
        {
            "decision_id": row["id"],
            "action": row["action"],
            "qty": str(row["qty"]),
            "status": row["status"],
            "created_at": row["created_at"].isoformat(),
            "price": None if row["price"] is None else str(row["price"]),
            "reject_reason": row["reject_reason"],
        }
        for row in rows
    ]


def review_open(
    *,
    decision: TradeDecision,
    snapshot: dict[str, Any],
    shadow: bool,
    shadow_reasons: list[str],
    deadline: datetime,
) -> LLMDecisionReview:
    """Record the review a decision asks for (inside the decision's transaction)."""
    return LLMDecisionReview.objects.create(
        decision=decision,
        account_label=decision.account_label,
        shadow=shadow,
        shadow_reasons=shadow_reasons,
        deadline=deadline,
        input_json=snapshot,
        input_hash=canonical_text_hash(snapshot),
        deterministic_qty=decision.qty,
    )


def answer_hash(response_json: dict[str, Any] | None) -> str:
    """sha256 of the reviewer's answer alone (not the provider's ids and usage), so the same
    answer to the same question hashes the same."""
    if response_json is None:
        return ""
    if isinstance(response_json.get("dspy"), dict) and "output" in response_json["dspy"]:
        return canonical_text_hash(response_json["dspy"]["output"])
    skip = {"provider", "provider_errors", "dspy", "dspy_shadow", "late_answer", "late_verdict"}
    answer = {k: v for k, v in response_json.items() if k not in skip}
    if isinstance(answer.get("committee"), dict):
        # a committee's answer: the aggregate and each role's vote, without its usage
        usage = {"provider", "model", "tokens_prompt", "tokens_completion", "latency_ms"}
        votes = answer["committee"].get("votes", [])
        answer["committee"] = [{k: v for k, v in vote.items() if k not in usage} for vote in votes]
    return canonical_text_hash(answer)


def _count(run: ReviewRun, *, shadow: bool) -> None:
    LLM_REQUESTS.labels(runtime=run.runtime).inc()
    LLM_VERDICTS[run.verdict].inc()
    if run.error_kind in LLM_ERRORS:
        LLM_ERRORS[run.error_kind].inc()
    if shadow:
        LLM_SHADOW.inc()
    if run.runtime == "dspy_fallback":
        LLM_DSPY_FALLBACK.inc()
    for reason in run.evidence_reasons:
        LLM_EVIDENCE_REJECTIONS.labels(reason=reason.removeprefix(EVIDENCE_PREFIX)).inc()
    LLM_TOKENS_PROMPT.inc(run.tokens_prompt)
    LLM_TOKENS_COMPLETION.inc(run.tokens_completion)
    LLM_REVIEW_LATENCY.observe(run.latency_ms / 1000)


def _reserve(
    review: LLMDecisionReview,
    snapshot: dict[str, Any],
    *,
    config: ReviewConfig,
    now: datetime,
    call: str,
) -> BudgetDecision:
    """One reservation for `call`: the review's own (one call, or one per committee role) or a
    further single call (`dspy_shadow`)."""
    calls = (
        committee_budget_messages(snapshot, config=config)
        if call == "review"
        else [review_messages(snapshot, prompt_version=config.prompt_version)]
    )
    return budget_reserve(
        review=review,
        strategy_id=review.decision.strategy_id,
        model=config.model,
        messages=[message for messages in calls for message in messages],
        max_tokens=config.max_tokens,
        now=now,
        call=call,
        calls=len(calls),
    )


def _settle(review_id: int, run: ReviewRun, *, shadow_reserved: bool) -> Decimal:
    """Settle the review's reservations from its calls (the DSPy shadow call under its own);
    returns the review's cost: the sum over every call it made."""
    called = run.error_kind not in ("guardrail_block", "circuit_open")
    own = [c for c in run.calls if c.name != "dspy_shadow"]
    shadow = [c for c in run.calls if c.name == "dspy_shadow"]
    cost = budget_settle(review_id=review_id, called=called, calls=own)
    if cost is None:
        cost = calls_cost_usd(own)
    if shadow_reserved:
        shadow_cost = budget_settle(
            review_id=review_id, called=bool(shadow), call="dspy_shadow", calls=shadow
        )
        cost += calls_cost_usd(shadow) if shadow_cost is None else shadow_cost
    return cost


def _budgeted_execute(
    review: LLMDecisionReview,
    *,
    config: ReviewConfig,
    posture: Posture,
    now: datetime,
    dspy_lm: Any | None,
    snapshot: dict[str, Any] | None = None,
) -> tuple[ReviewRun, Decimal]:
    """Reserve the estimated cost of every call the review will make (one, or one per
    committee role) under the spend caps, run the review, settle the reservation from the summed
    usage; returns the run and its cost. Over a cap the call is skipped and the fail mode
    decides, as on every other error path: the deterministic order or a veto, never a larger
    position. The DSPy shadow call is reserved apart: refused, it is skipped alone. `snapshot` is
    what the model is asked about (default: the stored decision snapshot)."""
    snapshot = review.input_json if snapshot is None else snapshot
    order = deterministic_order(review.decision)
    shadow_reserved = False
    if not posture.blocked:
        budget = _reserve(review, snapshot, config=config, now=now, call="review")
        if not budget.allowed:
            run = ReviewRun(
                verdict="error",
                outcome=fail_outcome(order, fail_mode=posture.fail_mode, reason=budget.reason),
                error_kind="budget_exceeded",
                error=f"estimated {budget.estimated_usd} USD",
                model=config.model,
            )
            return run, Decimal(0)
        if config.dspy_runtime_mode == "shadow":
            shadow_reserved = _reserve(
                review, snapshot, config=config, now=now, call="dspy_shadow"
            ).allowed
    run = review_execute(
        snapshot=snapshot,
        order=order,
        config=config,
        posture=posture,
        now=now,
        deadline_at=review.deadline,
        dspy_lm=dspy_lm,
        dspy_shadow_allowed=shadow_reserved,
    )
    return run, _settle(review.pk, run, shadow_reserved=shadow_reserved)


@dataclass(frozen=True)
class ReviewTaskResult:
    review_id: int
    # completed | not_pending | already_started | past_deadline | lost_to_expiry | not_found
    result: str
    effect: str = ""


def outcome_fields(
    outcome: PolicyOutcome,
    *,
    shadow: bool,
    deterministic_qty: Decimal,
    deterministic_order_type: str,
    adjusted_order_type: str,
) -> dict[str, Any]:
    """What a policy outcome stores on the review row (the review task and the replay)."""
    return {
        "effect": ReviewEffect.SHADOW if shadow else outcome.effect,
        "reasons": list(outcome.reasons),
        "final_qty": min(outcome.final_qty, deterministic_qty),
        "adjusted_order_type": (
            outcome.order_type
            if outcome.order_type != deterministic_order_type
            else adjusted_order_type
        ),
        "limit_price": outcome.limit_price if outcome.order_type == "limit" else None,
    }


def order_json(order: DeterministicOrder) -> dict[str, str | None]:
    """The deterministic order the policy judged, as recorded in `config_json` (the decision's
    own row moves on after the review: a shrink or a limit price rewrites it)."""
    return {
        key: None if value is None else str(value)
        for key, value in asdict(order).items()  # side, qty, order_type, limit_price, ...
    }


def _review_fields(
    review: LLMDecisionReview,
    run: ReviewRun,
    *,
    config: ReviewConfig,
    posture: Posture,
    cost: Decimal,
) -> dict[str, Any]:
    order = deterministic_order(review.decision)
    body = run.response_body
    return {
        "runtime": run.runtime,
        "provider": run.provider,
        "model": run.model,
        "prompt_version": run.prompt_version,
        "program_name": run.program_name,
        "signature_version": run.signature_version,
        "artifact_hash": run.artifact_hash,
        "rollout_stage": config.rollout_stage,
        "prompt_json": run.prompt_json,
        "prompt_sha256": canonical_text_hash(run.prompt_json) if run.prompt_json else "",
        "temperature": config.temperature,
        "seed": config.seed,
        "config_json": {
            **config.as_json(),
            "fail_mode_effective": posture.fail_mode,
            "deterministic_order": order_json(order),
        },
        "response_json": run.response_json,
        "response_hash": answer_hash(run.response_json),
        "response_body": body,
        "response_sha256": sha256_hex(body) if body else "",
        "system_fingerprint": run.system_fingerprint,
        "verdict": run.verdict,
        "confidence": run.confidence,
        "rationale": run.rationale[:280],
        "risk_flags": run.risk_flags,
        "adjusted_qty": run.adjusted_qty,
        **outcome_fields(
            run.outcome,
            shadow=review.shadow,
            deterministic_qty=review.deterministic_qty,
            deterministic_order_type=order.order_type,
            adjusted_order_type=run.adjusted_order_type,
        ),
        "error": (f"{run.error_kind}: {run.error}" if run.error_kind else "")[:500],
        "tokens_prompt": run.tokens_prompt,
        "tokens_completion": run.tokens_completion,
        "cost_usd": cost,
        "latency_ms": run.latency_ms,
    }


def review_run(*, review_id: int, dspy_lm: Any | None = None) -> ReviewTaskResult:
    """The review task: claim the row, run the review, store it (each step compare-and-set)."""
    now = timezone.now()
    claimed = LLMDecisionReview.objects.filter(
        pk=review_id, status=ReviewStatus.PENDING, started_at__isnull=True
    ).update(started_at=now)
    review = LLMDecisionReview.objects.select_related("decision").filter(pk=review_id).first()
    if review is None:
        return ReviewTaskResult(review_id, "not_found")  # its decision was deleted
    if not claimed:
        result = "not_pending" if review.status != ReviewStatus.PENDING else "already_started"
        return ReviewTaskResult(review_id, result)
    if review.deadline <= now:
        return ReviewTaskResult(review_id, "past_deadline")  # the sweep applies the fail mode
    config = ReviewConfig.current()
    is_live = _is_live(review.decision.account_label)
    posture = review_posture(config, is_live=is_live)
    # the Jangar market context (trading/services/review_context.py): may stop the call
    context = market_context_for(
        review, order=deterministic_order(review.decision), posture=posture, now=now
    )
    if context.blocked_run is not None:
        run, cost = context.blocked_run, Decimal(0)
    else:
        run, cost = _budgeted_execute(
            review,
            config=config,
            posture=posture,
            now=now,
            dspy_lm=dspy_lm,
            snapshot=context.snapshot,
        )
    _count(run, shadow=review.shadow)
    review_metrics_record(
        run, config=config, posture=posture, is_live=is_live, shadow_reasons=review.shadow_reasons
    )
    fields = {
        **_review_fields(review, run, config=config, posture=posture, cost=cost),
        **context.fields(),
    }
    done = timezone.now()
    with transaction.atomic():
        won = LLMDecisionReview.objects.filter(pk=review_id, status=ReviewStatus.PENDING).update(
            status=ReviewStatus.COMPLETED, completed_at=done, updated_at=done, **fields
        )
        if won and run.committee_votes:
            committee_votes_store(review_id=review_id, votes=run.committee_votes)
    if not won:
        # the sweep expired it first; keep the late answer for the audit, change nothing else
        LLMDecisionReview.objects.filter(pk=review_id).update(
            response_json={"late_answer": fields["response_json"], "late_verdict": run.verdict}
        )
        return ReviewTaskResult(review_id, "lost_to_expiry")
    if run.verdict != "error":
        stability_probe_enqueue(review_id)
    return ReviewTaskResult(review_id, "completed", fields["effect"])


def reviews_expire(*, now: datetime | None = None) -> list[int]:
    """Apply the fail mode to every pending review past its deadline; returns their ids."""
    now = now or timezone.now()
    config = ReviewConfig.current()
    expired: list[int] = []
    overdue = LLMDecisionReview.objects.filter(
        status=ReviewStatus.PENDING, deadline__lte=now
    ).select_related("decision")
    for review in overdue.order_by("deadline")[:500]:
        posture = review_posture(config, is_live=_is_live(review.account_label))
        order = deterministic_order(review.decision)
        outcome = fail_outcome(order, fail_mode=posture.fail_mode, reason="llm_review_expired")
        won = LLMDecisionReview.objects.filter(pk=review.pk, status=ReviewStatus.PENDING).update(
            status=ReviewStatus.EXPIRED,
            completed_at=now,
            updated_at=now,
            verdict="error",
            effect=ReviewEffect.SHADOW if review.shadow else outcome.effect,
            reasons=list(outcome.reasons),
            final_qty=min(outcome.final_qty, review.deterministic_qty),
            error=f"deadline_expired: no answer by {review.deadline.isoformat()}",
            config_json={**config.as_json(), "fail_mode_effective": posture.fail_mode},
        )
        if won:
            LLM_REVIEW_EXPIRED.inc()
            LLM_POLICY_FALLBACK.inc()
            expired.append(review.pk)
    return expired


def ready_reviews(*, account_label: str) -> list[LLMDecisionReview]:
    """Reviews in, whose decisions still wait in `pending_review` (oldest first)."""
    return list(
        LLMDecisionReview.objects.filter(
            decision__account_label=account_label,
            decision__status=DecisionStatus.PENDING_REVIEW,
            shadow=False,
        )
        .exclude(status=ReviewStatus.PENDING)
        .select_related("decision", "decision__strategy")
        .order_by("decision__created_at", "pk")
    )


def _review_verdict(review: LLMDecisionReview) -> GateVerdict:
    effect = review.effect
    return GateVerdict(
        "llm_review",
        effect != ReviewEffect.VETO,
        tuple(review.reasons) if effect == ReviewEffect.VETO else (),
        {
            "mode": "enforced",
            "reviewed": review.status == ReviewStatus.COMPLETED,
            "review_id": review.pk,
            "verdict": review.verdict,
            "effect": effect,
            "reasons": list(review.reasons),
            "deterministic_qty": str(review.deterministic_qty),
            "final_qty": str(review.final_qty),
        },
    )


@dataclass(frozen=True)
class ContinueOutcome:
    result: str  # rejected | submitted | adopted | deferred | blocked | moved_elsewhere
    reason: str = ""
    execution_id: int | None = None


def _reject(decision: TradeDecision, reasons: list[str], verdicts: list[dict[str, Any]]) -> bool:
    reason = reasons[0] if reasons else "llm_veto"
    moved = decision_transition(
        decision=decision,
        to_status=DecisionStatus.REJECTED,
        reason=reason,
        fields={
            "reject_reason": reason[:80],
            "risk_reasons": [*decision.risk_reasons, *reasons],
            "gate_verdicts": verdicts,
        },
    )
    if moved:
        for item in reasons:
            DECISION_REJECTS.labels(reason=item).inc()
        ORDERS_REJECTED.labels(account=decision.account_label).inc()
    return moved


def review_continue(
    *,
    review: LLMDecisionReview,
    candidate: Candidate,
    ctx: CycleContext,
    firewall: OrderFirewall,
) -> ContinueOutcome:
    """Carry a reviewed decision on: veto → rejected; otherwise allocator, portfolio caps, risk
    engine and execution policy on the current books with the reviewed (never larger) quantity,
    then the order firewall. `candidate` is the decision rebuilt by the caller."""
    decision = review.decision
    verdicts = [v for v in decision.gate_verdicts if v.get("gate") != "llm_review"]
    review_verdict = _review_verdict(review)
    verdicts.append(review_verdict.as_json())
    if not review_verdict.passed:
        moved = _reject(decision, list(review.reasons) or ["llm_veto"], verdicts)
        return ContinueOutcome(
            "rejected" if moved else "moved_elsewhere",
            review.reasons[0] if review.reasons else "llm_veto",
        )
    assert review.final_qty is not None and review.final_qty <= decision.qty
    candidate.qty = review.final_qty
    if review.adjusted_order_type == "limit" and review.limit_price is not None:
        candidate.order_type, candidate.limit_price = "limit", review.limit_price
    for gate in (gate_allocator, gate_portfolio, gate_risk, gate_execution_policy):
        verdict = gate(candidate, ctx)
        verdicts.append(verdict.as_json())
        if not verdict.passed:
            moved = _reject(decision, list(verdict.reasons), verdicts)
            return ContinueOutcome("rejected" if moved else "moved_elsewhere", verdict.reasons[0])
    if not decision_transition(
        decision=decision,
        to_status=DecisionStatus.SUBMITTING,
        reason="llm_review_passed",
        fields={
            "qty": candidate.qty,
            "order_type": candidate.order_type,
            "limit_price": candidate.limit_price,
            "gate_verdicts": verdicts,
        },
    ):
        return ContinueOutcome("moved_elsewhere")
    outcome = decision_submit(decision=decision, firewall=firewall)
    if outcome.execution_id is not None:
        LLMDecisionReview.objects.filter(pk=review.pk).update(execution_id=outcome.execution_id)
    if outcome.result in ("submitted", "adopted"):
        ctx.record_order(
            symbol=decision.symbol,
            side=decision.action,
            qty=candidate.qty,
            price=decision.price or Decimal(0),
            at=ctx.now,
            strategy=decision.strategy.name,
        )
    return ContinueOutcome(outcome.result, outcome.reason, outcome.execution_id)


def review_link_execution(*, decision_id: int, execution_id: int) -> None:
    """A shadow review's decision went on at once; point its review at the order."""
    LLMDecisionReview.objects.filter(decision_id=decision_id).update(execution_id=execution_id)


def review_deadline(*, now: datetime, config: ReviewConfig) -> datetime:
    return now + timedelta(seconds=config.deadline_seconds)


def review_enqueue(review_id: int) -> None:
    """Queue the review task once the opening transaction commits."""
    task_after_commit("trading.tasks.llm_review_run", review_id)
