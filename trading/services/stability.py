"""Stability probes: a deterministic share of completed reviews asked again once.

LLM_STABILITY_PROBE_SHARE (0 = off) chooses reviews by hashing their id, so the same reviews are
chosen on every run and by every worker. A chosen review, once completed with a verdict, is
queued to `trading.tasks.llm_stability_probe_run` after its commit; the probe sends the same
question with the recorded model, temperature and seed: the stored legacy messages, or the
review's DSPy artifact when the review ran one (active) or shadowed one. The probe's call is
reserved and settled under the spend budgets as its own call (`probe`). A probe is claimed by
inserting its row (one per review, a unique constraint), so a redelivered task asks nothing.

The flip rate of an artifact's probes (verdict different from the review's) gates its
promotion beyond shadow (trading/services/dspy_lanes/promote.py, LLM_STABILITY_MAX_FLIP_RATE).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, Q

from torghut_site.hashing import sha256_hex
from torghut_site.queueing import task_after_commit
from trading.llm.config import ReviewConfig
from trading.llm.dspy.runtime import DspyReviewError, dspy_review
from trading.llm.engine import dspy_body
from trading.llm.provider import LLMProviderError, chat_complete
from trading.llm.replay import config_from_json
from trading.llm.request import review_messages
from trading.llm.schema import ReviewSchemaError, parse_review_response
from trading.llm.usage import CallUsage
from trading.metrics import LLM_STABILITY_PROBES
from trading.models import LLMDecisionReview, LLMStabilityProbe
from trading.models.llm import ProbeStatus, ReviewStatus
from trading.services.llm_budget import budget_reserve, budget_settle, calls_cost_usd
from trading.services.review_context import review_snapshot

PROBE_TASK = "trading.tasks.llm_stability_probe_run"


def probe_selected(review_id: int, share: float) -> bool:
    """Whether the review is in the probed share: the first 8 bytes of sha256 of its id, as a
    fraction of 2**64, below `share` (same answer on every run)."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"llm-stability-probe:{review_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def stability_probe_enqueue(review_id: int) -> None:
    """Queue the probe of a review that completed with a verdict, if the review is chosen."""
    if probe_selected(review_id, settings.LLM_STABILITY_PROBE_SHARE):
        task_after_commit(PROBE_TASK, review_id)


@dataclass(frozen=True)
class ProbeResult:
    review_id: int
    result: str  # probed | not_selected | not_probeable | already_probed | budget_exceeded | error
    verdict: str = ""
    flipped: bool = False


@dataclass(frozen=True)
class _Answer:
    verdict: str  # "" when no answer came (not a measurement)
    body: str = ""
    calls: tuple[CallUsage, ...] = ()
    error: str = ""


def _target(review: LLMDecisionReview) -> tuple[str, str]:
    """What the probe asks again and the verdict it compares with: the DSPy artifact the
    review ran or shadowed, else the legacy messages."""
    if review.runtime == "dspy_active":
        return "dspy", review.verdict
    shadow = (review.response_json or {}).get("dspy_shadow")
    if review.artifact_hash and isinstance(shadow, dict) and "output" in shadow:
        return "dspy", str(shadow["output"]["verdict"])
    return "legacy", review.verdict


def _ask_legacy(review: LLMDecisionReview, config: ReviewConfig) -> _Answer:
    try:
        result = chat_complete(
            messages=review.prompt_json,
            provider=config.provider,
            model=config.model,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
            seed=config.seed,
            timeout_seconds=config.timeout_seconds,
        )
    except LLMProviderError as exc:
        return _Answer("", error=str(exc)[:500])
    calls = (CallUsage("probe", result.model, result.tokens_prompt, result.tokens_completion),)
    verdict: str
    try:
        verdict = parse_review_response(result.content)[0].verdict
    except ReviewSchemaError:
        verdict = "error"  # an answer outside the contract: a different answer
    return _Answer(verdict, result.content, calls)


def _ask_dspy(review: LLMDecisionReview, config: ReviewConfig, lm: Any | None) -> _Answer:
    try:
        result = dspy_review(review_snapshot(review), config=config, lm=lm)
    except DspyReviewError as exc:
        used = (CallUsage("probe", config.model, exc.tokens_prompt, exc.tokens_completion),)
        if exc.kind == "schema_error":
            return _Answer("error", calls=used)
        return _Answer("", calls=used, error=str(exc)[:500])
    used = (CallUsage("probe", config.model, result.tokens_prompt, result.tokens_completion),)
    return _Answer(result.output.verdict, dspy_body(result.output), used)


def _probeable(review: LLMDecisionReview) -> bool:
    """A completed review with a verdict and a stored answer. A committee review is not probed:
    its question is one call per role (trading/llm/committee.py), which the probe does not ask
    yet, and its stored messages are every role's at once."""
    committee = (review.response_json or {}).get("committee")
    return (
        review.status == ReviewStatus.COMPLETED
        and review.verdict not in ("", "error")
        and bool(review.response_sha256)
        and not (review.runtime != "dspy_active" and isinstance(committee, dict))
    )


def stability_probe_run(*, review_id: int, dspy_lm: Any | None = None) -> ProbeResult:
    """Ask a chosen review again once and record whether its verdict flipped (idempotent)."""
    review = LLMDecisionReview.objects.select_related("decision").get(pk=review_id)
    if not probe_selected(review_id, settings.LLM_STABILITY_PROBE_SHARE):
        return ProbeResult(review_id, "not_selected")
    if not _probeable(review):
        return ProbeResult(review_id, "not_probeable")
    kind, original = _target(review)
    probe, created = LLMStabilityProbe.objects.get_or_create(
        review=review,
        defaults={
            "kind": kind,
            "artifact_hash": review.artifact_hash,
            "original_verdict": original,
        },
    )
    if not created:
        return ProbeResult(review_id, "already_probed", probe.verdict, probe.flipped)
    config = config_from_json(review.config_json, fallback=ReviewConfig.current())
    budget = budget_reserve(
        review=review,
        strategy_id=review.decision.strategy_id,
        model=config.model,
        messages=review.prompt_json
        or review_messages(review_snapshot(review), prompt_version=config.prompt_version),
        max_tokens=config.max_tokens,
        call="probe",
    )
    if not budget.allowed:
        _record(probe, _Answer("", error=budget.reason), cost=Decimal(0))
        return ProbeResult(review_id, "budget_exceeded")
    answer = _ask_dspy(review, config, dspy_lm) if kind == "dspy" else _ask_legacy(review, config)
    settled = budget_settle(review_id=review_id, called=True, call="probe", calls=answer.calls)
    _record(probe, answer, cost=calls_cost_usd(answer.calls) if settled is None else settled)
    if not answer.verdict:
        return ProbeResult(review_id, "error")
    return ProbeResult(review_id, "probed", answer.verdict, probe.flipped)


def _record(probe: LLMStabilityProbe, answer: _Answer, *, cost: Decimal) -> None:
    probe.status = ProbeStatus.DONE
    probe.verdict = answer.verdict
    probe.flipped = bool(answer.verdict) and answer.verdict != probe.original_verdict
    probe.response_sha256 = sha256_hex(answer.body) if answer.body else ""
    probe.tokens_prompt = sum(c.tokens_prompt for c in answer.calls)
    probe.tokens_completion = sum(c.tokens_completion for c in answer.calls)
    probe.cost_usd = cost
    probe.error = answer.error
    probe.save()
    if answer.verdict:
        LLM_STABILITY_PROBES.labels(flipped=str(probe.flipped).lower()).inc()


@dataclass(frozen=True)
class FlipRate:
    probes: int
    flips: int

    @property
    def rate(self) -> float:
        return self.flips / self.probes if self.probes else 0.0


def artifact_flip_rate(artifact_hash: str) -> FlipRate:
    """The measured DSPy probes of reviews run (or shadowed) with `artifact_hash`."""
    counts = LLMStabilityProbe.objects.filter(
        artifact_hash=artifact_hash, kind="dspy", status=ProbeStatus.DONE, error=""
    ).aggregate(probes=Count("pk"), flips=Count("pk", filter=Q(flipped=True)))
    return FlipRate(probes=counts["probes"], flips=counts["flips"])
