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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from torghut_site.hashing import canonical_text_hash
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
from trading.llm.dspy.runtime import DspyReviewError, dspy_review
from trading.llm.engine import ReviewRun, review_execute
from trading.llm.policy import DeterministicOrder, Posture, fail_outcome, review_posture
from trading.llm.provider import LLMProviderError, chat_complete
from trading.llm.request import review_messages
from trading.llm.schema import ReviewSchemaError, parse_review_response
from trading.metrics import (
    DECISION_REJECTS,
    LLM_DSPY_FALLBACK,
    LLM_ERRORS,
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
from trading.services.llm_budget import budget_reserve, budget_settle
from trading.services.review_committee import (
    committee_replay,
    committee_votes_store,
    review_metrics_record,
)
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
    LLM_TOKENS_PROMPT.inc(run.tokens_prompt)
    LLM_TOKENS_COMPLETION.inc(run.tokens_completion)
    LLM_REVIEW_LATENCY.observe(run.latency_ms / 1000)


def _budgeted_execute(
    review: LLMDecisionReview,
    *,
    config: ReviewConfig,
    posture: Posture,
    now: datetime,
    dspy_lm: Any | None,
) -> ReviewRun:
    """Reserve the estimated cost of every call the review will make (one, or one per
    committee role) under the spend caps, run the review, settle the reservation from the summed
    usage. Over a cap no call is made and the fail mode decides, as on every other error path:
    the deterministic order or a veto, never a larger position."""
    decision = review.decision
    order = deterministic_order(decision)
    if not posture.blocked:
        calls = committee_budget_messages(review.input_json, config=config)
        budget = budget_reserve(
            review=review,
            strategy_id=decision.strategy_id,
            model=config.model,
            messages=[message for messages in calls for message in messages],
            max_tokens=config.max_tokens,
            now=now,
            calls=len(calls),
        )
        if not budget.allowed:
            return ReviewRun(
                verdict="error",
                outcome=fail_outcome(order, fail_mode=posture.fail_mode, reason=budget.reason),
                error_kind="budget_exceeded",
                error=f"estimated {budget.estimated_usd} USD",
                model=config.model,
            )
    run = review_execute(
        snapshot=review.input_json,
        order=order,
        config=config,
        posture=posture,
        now=now,
        deadline_at=review.deadline,
        dspy_lm=dspy_lm,
    )
    budget_settle(
        review_id=review.pk,
        model=run.model if run.runtime == "legacy" and run.model else config.model,
        tokens_prompt=run.tokens_prompt,
        tokens_completion=run.tokens_completion,
        called=run.error_kind not in ("guardrail_block", "circuit_open"),
    )
    return run


@dataclass(frozen=True)
class ReviewTaskResult:
    review_id: int
    result: str  # completed | not_pending | already_started | past_deadline | lost_to_expiry
    effect: str = ""


def review_run(*, review_id: int, dspy_lm: Any | None = None) -> ReviewTaskResult:
    """The review task: claim the row, run the review, store it (each step compare-and-set)."""
    now = timezone.now()
    claimed = LLMDecisionReview.objects.filter(
        pk=review_id, status=ReviewStatus.PENDING, started_at__isnull=True
    ).update(started_at=now)
    review = LLMDecisionReview.objects.select_related("decision").get(pk=review_id)
    if not claimed:
        result = "not_pending" if review.status != ReviewStatus.PENDING else "already_started"
        return ReviewTaskResult(review_id, result)
    if review.deadline <= now:
        return ReviewTaskResult(review_id, "past_deadline")  # the sweep applies the fail mode
    decision = review.decision
    config = ReviewConfig.current()
    is_live = _is_live(decision.account_label)
    posture = review_posture(config, is_live=is_live)
    run = _budgeted_execute(review, config=config, posture=posture, now=now, dspy_lm=dspy_lm)
    _count(run, shadow=review.shadow)
    review_metrics_record(
        run, config=config, posture=posture, is_live=is_live, shadow_reasons=review.shadow_reasons
    )
    outcome = run.outcome
    response_json = run.response_json
    fields: dict[str, Any] = {
        "runtime": run.runtime,
        "provider": run.provider,
        "model": run.model,
        "prompt_version": run.prompt_version,
        "program_name": run.program_name,
        "signature_version": run.signature_version,
        "artifact_hash": run.artifact_hash,
        "rollout_stage": config.rollout_stage,
        "prompt_json": run.prompt_json,
        "config_json": {**config.as_json(), "fail_mode_effective": posture.fail_mode},
        "response_json": response_json,
        "response_hash": answer_hash(response_json),
        "verdict": run.verdict,
        "effect": ReviewEffect.SHADOW if review.shadow else outcome.effect,
        "reasons": list(outcome.reasons),
        "confidence": run.confidence,
        "rationale": run.rationale[:280],
        "risk_flags": run.risk_flags,
        "adjusted_qty": run.adjusted_qty,
        "final_qty": min(outcome.final_qty, review.deterministic_qty),
        "adjusted_order_type": run.adjusted_order_type,
        "limit_price": outcome.limit_price if outcome.order_type == "limit" else None,
        "error": (f"{run.error_kind}: {run.error}" if run.error_kind else "")[:500],
        "tokens_prompt": run.tokens_prompt,
        "tokens_completion": run.tokens_completion,
        "latency_ms": run.latency_ms,
    }
    if outcome.order_type != decision.order_type:
        fields["adjusted_order_type"] = outcome.order_type
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


@dataclass(frozen=True)
class ReplayResult:
    review_id: int
    runtime: str
    original_verdict: str
    replay_verdict: str
    original_answer_hash: str
    replay_answer_hash: str
    error: str = ""

    @property
    def same_answer(self) -> bool:
        return (
            bool(self.original_answer_hash) and self.original_answer_hash == self.replay_answer_hash
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "review_id": self.review_id,
            "runtime": self.runtime,
            "original_verdict": self.original_verdict,
            "replay_verdict": self.replay_verdict,
            "same_verdict": self.original_verdict == self.replay_verdict,
            "original_answer_hash": self.original_answer_hash,
            "replay_answer_hash": self.replay_answer_hash,
            "same_answer": self.same_answer,
            "error": self.error,
        }


def review_replay(*, review_id: int) -> ReplayResult:
    """Ask the same question again: the stored snapshot, with the stored model, prompt version,
    temperature, seed and token limit (or the same DSPy artifact), through the configured
    provider. Nothing is written; the decision is not touched."""
    review = LLMDecisionReview.objects.get(pk=review_id)
    recorded = review.config_json
    config = replace(
        ReviewConfig.current(),
        model=str(recorded.get("model", review.model)),
        prompt_version=str(recorded.get("prompt_version", review.prompt_version)),
        temperature=float(recorded.get("temperature", 0.0)),
        seed=int(recorded.get("seed", 0)),
        max_tokens=int(recorded.get("max_tokens", 300)),
        dspy_artifact_hash=review.artifact_hash,
        dspy_program_name=review.program_name or ReviewConfig.current().dspy_program_name,
        dspy_signature_version=review.signature_version
        or ReviewConfig.current().dspy_signature_version,
    )
    verdict, answer, error = "error", None, ""
    try:
        committee = committee_replay(review, config=config)
        if committee is not None:
            verdict, answer = committee
        elif review.runtime == "dspy_active":
            output = dspy_review(review.input_json, config=config).output
            verdict, answer = output.verdict, {"dspy": {"output": output.as_contract()}}
        else:
            result = chat_complete(
                messages=review_messages(review.input_json, prompt_version=config.prompt_version),
                provider=config.provider,
                model=config.model,
                temperature=config.temperature,
                max_tokens=config.max_tokens,
                seed=config.seed,
                timeout_seconds=config.timeout_seconds,
            )
            response, answer = parse_review_response(result.content)
            verdict = response.verdict
    except (LLMProviderError, ReviewSchemaError, DspyReviewError) as exc:
        error = str(exc)[:500]
    return ReplayResult(
        review_id=review.pk,
        runtime=review.runtime,
        original_verdict=review.verdict,
        replay_verdict=verdict,
        original_answer_hash=review.response_hash,
        replay_answer_hash=answer_hash(answer),
        error=error,
    )
