"""The committee's votes stored with their review, and the review's policy, guardrail and
committee metrics (the original's `torghut_trading_llm_*` names, docs/compatibility.md#metrics).
Called by `trading.services.reviews.review_run`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from trading.llm.committee import RoleVote, committee_run
from trading.llm.config import ReviewConfig
from trading.llm.engine import ReviewRun
from trading.llm.policy import Posture
from trading.llm.resolution import policy_resolution
from trading.metrics import (
    LLM_COMMITTEE_LATENCY,
    LLM_COMMITTEE_LATENCY_MS,
    LLM_COMMITTEE_REQUESTS,
    LLM_COMMITTEE_SCHEMA_ERROR,
    LLM_COMMITTEE_VERDICT,
    LLM_COMMITTEE_VETO,
    LLM_COMMITTEE_VETO_ALIGNMENT,
    LLM_ERRORS,
    LLM_FAIL_MODE_EXCEPTION,
    LLM_FAIL_MODE_OVERRIDE,
    LLM_GUARDRAIL_SHADOW,
    LLM_POLICY_FALLBACK,
    LLM_POLICY_RESOLUTION,
    LLM_STAGE_POLICY_VIOLATION,
)
from trading.models import LLMCommitteeVote, LLMDecisionReview


def committee_votes_store(*, review_id: int, votes: Sequence[RoleVote]) -> int:
    """Insert the votes (inside the caller's transaction, after its compare-and-set won)."""
    rows = [
        LLMCommitteeVote(
            review_id=review_id,
            role=vote.role,
            verdict=vote.verdict,
            confidence=vote.confidence,
            uncertainty_band=vote.uncertainty_band,
            rationale_short=vote.rationale_short[:280],
            required_checks=list(vote.required_checks),
            risk_flags=list(vote.risk_flags),
            adjusted_qty=vote.adjusted_qty,
            adjusted_order_type=vote.adjusted_order_type,
            limit_price=vote.limit_price,
            error=(f"{vote.error_kind}: {vote.error}" if vote.error_kind else "")[:500],
            tokens_prompt=vote.tokens_prompt,
            tokens_completion=vote.tokens_completion,
            latency_ms=vote.latency_ms,
            response_sha256=vote.response_sha256,
        )
        for vote in votes
    ]
    return len(LLMCommitteeVote.objects.bulk_create(rows))


def _count_committee(run: ReviewRun, config: ReviewConfig) -> None:
    mandatory_veto = False
    for vote in run.committee_votes:
        if vote.called:
            LLM_COMMITTEE_REQUESTS.labels(role=vote.role).inc()
            LLM_COMMITTEE_LATENCY_MS.labels(role=vote.role).set(vote.latency_ms)
            LLM_COMMITTEE_LATENCY.labels(role=vote.role).observe(vote.latency_ms / 1000)
        LLM_COMMITTEE_VERDICT.labels(role=vote.role, verdict=vote.verdict).inc()
        if vote.schema_error:
            LLM_COMMITTEE_SCHEMA_ERROR.labels(role=vote.role).inc()
            LLM_ERRORS[vote.error_kind].inc()
        if vote.verdict == "veto":
            LLM_COMMITTEE_VETO.labels(role=vote.role).inc()
            mandatory_veto = mandatory_veto or vote.role in config.committee_mandatory_roles
    if mandatory_veto and run.outcome.vetoed:
        LLM_COMMITTEE_VETO_ALIGNMENT.inc()


def review_metrics_record(
    run: ReviewRun,
    *,
    config: ReviewConfig,
    posture: Posture,
    is_live: bool,
    shadow_reasons: Sequence[str],
) -> None:
    """The counters the single-call metrics (`reviews._count`) do not cover."""
    resolution = policy_resolution(config, posture, is_live=is_live, shadow_reasons=shadow_reasons)
    LLM_POLICY_RESOLUTION.labels(classification=resolution.classification).inc()
    if resolution.fail_mode_override:
        LLM_FAIL_MODE_OVERRIDE.inc()
    if resolution.fail_mode_exception:
        LLM_FAIL_MODE_EXCEPTION.inc()
    if resolution.stage_policy_violation:
        LLM_STAGE_POLICY_VIOLATION.inc()
    if resolution.guardrail_shadow:
        LLM_GUARDRAIL_SHADOW.inc()
    if run.verdict == "error":
        LLM_POLICY_FALLBACK.inc()
    _count_committee(run, config)


def committee_replay(
    review: LLMDecisionReview, *, config: ReviewConfig, snapshot: dict[str, Any]
) -> tuple[str, dict[str, Any]] | None:
    """Ask a stored committee review's roles again (the recorded roles, mandatory roles and
    fail-closed verdict); None when the review was not a committee's. Returns the aggregate
    verdict and the answer in the stored shape (for `reviews.answer_hash`)."""
    stored = (review.response_json or {}).get("committee")
    if review.runtime == "dspy_active" or not isinstance(stored, dict):
        return None
    recorded = review.config_json
    roles = tuple(v["role"] for v in stored.get("votes", []))
    config = replace(
        config,
        committee_roles=roles,
        committee_mandatory_roles=tuple(stored.get("mandatory_roles", ())),
        committee_fail_closed_verdict=str(stored.get("fail_closed_verdict", "veto")),
        committee_enabled=True,
    )
    budget = float(recorded.get("timeout_seconds", config.timeout_seconds)) * max(len(roles), 1)
    result = committee_run(snapshot, config=config, deadline=time.monotonic() + budget)
    votes = [vote.as_json() for vote in result.votes]
    return result.response.verdict, {**result.answer, "committee": {"votes": votes}}
