"""Replaying stored reviews from their stored answers (`manage.py llm_review_replay`).

Nothing is asked again and nothing is written: the stored raw answer is checked against its
sha256, parsed with the same schema, and the deterministic policy is applied with the recorded
configuration, effective fail mode and shadow flag to the recorded deterministic order
(trading/llm/replay.py). The result must equal the stored verdict, effect, reasons, final
quantity, order type and limit price exactly. A review with no stored answer (no call was made,
the provider gave none, or it expired) cannot be replayed and says so.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from torghut_site.hashing import sha256_hex
from trading.llm.config import ReviewConfig
from trading.llm.dspy.runtime import DspyReviewError, dspy_review
from trading.llm.provider import LLMProviderError, chat_complete
from trading.llm.replay import config_from_json, order_from_json, recorded_posture, reevaluate
from trading.llm.request import review_messages
from trading.llm.schema import ReviewSchemaError, parse_review_response
from trading.models import LLMDecisionReview
from trading.models.llm import ReviewStatus
from trading.services.review_committee import committee_replay
from trading.services.review_context import review_snapshot
from trading.services.reviews import answer_hash, outcome_fields

COMPARED = (
    "verdict",
    "error_kind",
    "effect",
    "reasons",
    "final_qty",
    "adjusted_order_type",
    "limit_price",
)


@dataclass(frozen=True)
class StoredReplay:
    review_id: int
    result: str  # equal | different | unreplayable
    detail: str = ""  # why different (response_sha256_mismatch, fields) or unreplayable
    differences: dict[str, dict[str, str]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "review_id": self.review_id,
            "result": self.result,
            "detail": self.detail,
            "differences": self.differences,
        }


def _stored(review: LLMDecisionReview) -> dict[str, Any]:
    return {
        "verdict": review.verdict,
        "error_kind": review.error.split(":", 1)[0] if review.error else "",
        "effect": review.effect,
        "reasons": list(review.reasons),
        "final_qty": review.final_qty,
        "adjusted_order_type": review.adjusted_order_type,
        "limit_price": review.limit_price,
    }


def _unreplayable(review: LLMDecisionReview) -> str:
    if review.status != ReviewStatus.COMPLETED:
        return f"status_{review.status}"
    if not review.response_sha256:
        return "no_stored_answer"
    if "deterministic_order" not in review.config_json:
        return "no_recorded_order"
    return ""


def _committee_error_kind(review: LLMDecisionReview) -> str:
    """A committee review whose body (the aggregate) parses is still `committee_role_error` when
    a role's vote was its fail-closed error vote (trading/llm/engine.py `_committee`)."""
    committee = (review.response_json or {}).get("committee")
    votes = committee.get("votes", []) if isinstance(committee, dict) else []
    failed = any(isinstance(vote, dict) and vote.get("error_kind") for vote in votes)
    return "committee_role_error" if failed else ""


def review_replay_stored(review: LLMDecisionReview) -> StoredReplay:
    """Re-evaluate one review from its stored answer and compare (see the module doc)."""
    reason = _unreplayable(review)
    if reason:
        return StoredReplay(review.pk, "unreplayable", reason)
    if not hmac.compare_digest(sha256_hex(review.response_body), review.response_sha256):
        return StoredReplay(review.pk, "different", "response_sha256_mismatch")
    recorded = review.config_json
    config = config_from_json(recorded, fallback=ReviewConfig.current())
    order = order_from_json(recorded["deterministic_order"])
    posture = recorded_posture(
        config, fail_mode=str(recorded["fail_mode_effective"]), shadow=review.shadow
    )
    again = reevaluate(
        review.response_body,
        dspy=review.runtime == "dspy_active",
        snapshot=review_snapshot(review),
        order=order,
        config=config,
        posture=posture,
    )
    replayed = {
        "verdict": again.verdict,
        "error_kind": again.error_kind or _committee_error_kind(review),
        **outcome_fields(
            again.outcome,
            shadow=review.shadow,
            deterministic_qty=review.deterministic_qty,
            deterministic_order_type=order.order_type,
            adjusted_order_type=again.adjusted_order_type,
        ),
    }
    stored = _stored(review)
    differences = {
        key: {"stored": str(stored[key]), "replayed": str(replayed[key])}
        for key in COMPARED
        if stored[key] != replayed[key]
    }
    if differences:
        return StoredReplay(review.pk, "different", ",".join(differences), differences)
    return StoredReplay(review.pk, "equal")


@dataclass(frozen=True)
class ReplaySummary:
    replayed: int
    equal: int
    different: int
    unreplayable: int
    not_equal: list[StoredReplay]

    def as_json(self) -> dict[str, Any]:
        return {
            "replayed": self.replayed,
            "equal": self.equal,
            "different": self.different,
            "unreplayable": self.unreplayable,
            "different_reviews": [r.as_json() for r in self.not_equal if r.result == "different"],
        }


def reviews_replay_stored(*, since: datetime | None = None) -> ReplaySummary:
    """Replay every stored review (created at or after `since`) from its stored answer."""
    rows = LLMDecisionReview.objects.order_by("pk")
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    results: Iterable[StoredReplay] = (review_replay_stored(r) for r in rows.iterator())
    counts = {"equal": 0, "different": 0, "unreplayable": 0}
    not_equal: list[StoredReplay] = []
    for result in results:
        counts[result.result] += 1
        if result.result != "equal":
            not_equal.append(result)
    return ReplaySummary(
        replayed=counts["equal"] + counts["different"],
        equal=counts["equal"],
        different=counts["different"],
        unreplayable=counts["unreplayable"],
        not_equal=not_equal,
    )


# -- asking again (`--ask-again`): the model, not the stored answer


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


def review_ask_again(*, review_id: int) -> ReplayResult:
    """Ask the same question again (`llm_review_replay --ask-again`): the stored snapshot, with
    the stored model, prompt version, temperature, seed and token limit (or the same DSPy
    artifact), through the configured provider. Nothing is written; the decision is not
    touched."""
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
        committee = committee_replay(review, config=config, snapshot=review_snapshot(review))
        if committee is not None:
            verdict, answer = committee
        elif review.runtime == "dspy_active":
            output = dspy_review(review_snapshot(review), config=config).output
            verdict, answer = output.verdict, {"dspy": {"output": output.as_contract()}}
        else:
            result = chat_complete(
                messages=review_messages(
                    review_snapshot(review), prompt_version=config.prompt_version
                ),
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
