"""The market context of one review: fetched by the review task before the model call, added to
the snapshot the model sees, and stored on the review row (`market_context`,
`market_context_reasons`) so the question can be asked again from the row alone.

Rules, in order:
1. no TRADING_MARKET_CONTEXT_URL and not required: nothing is fetched, the snapshot is unchanged;
2. a guardrail blocks the review: nothing is fetched (no call will be made anyway);
3. a usable context: the snapshot gains `market_context`;
4. an unusable one (missing, stale, low quality, fetch error; required with no URL is missing)
   with TRADING_MARKET_CONTEXT_REQUIRED (a Flipt flag) or TRADING_MARKET_CONTEXT_FAIL_MODE=
   fail_closed: no model call, verdict `error`, error kind = the reason, and the posture's fail
   outcome (a veto, or the deterministic order under pass_through: never a larger position);
5. otherwise (shadow_only, not required): the review goes on without the context, the reason is
   recorded on the row and counted as shadow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from torghut_site.hashing import canonical_text_hash
from trading.llm.engine import ReviewRun
from trading.llm.policy import DeterministicOrder, Posture, fail_outcome
from trading.market_context import ERROR, MarketContextPolicy, market_context_fetch
from trading.metrics import (
    LLM_MARKET_CONTEXT_BLOCK,
    LLM_MARKET_CONTEXT_ERROR,
    LLM_MARKET_CONTEXT_REASON,
    LLM_MARKET_CONTEXT_SHADOW,
)
from trading.models import LLMDecisionReview


@dataclass(frozen=True)
class ReviewContext:
    snapshot: dict[str, Any]  # what the model is asked about
    record: dict[str, Any] | None = None  # stored in LLMDecisionReview.market_context
    reasons: list[str] = field(default_factory=list)
    blocked_run: ReviewRun | None = None  # set: no model call, this is the review

    def fields(self) -> dict[str, Any]:
        return {"market_context": self.record, "market_context_reasons": self.reasons}


def review_snapshot(review: LLMDecisionReview) -> dict[str, Any]:
    """The snapshot the model saw: the decision's, plus the market context when it was used."""
    record = review.market_context or {}
    if record.get("status") == "ok" and isinstance(record.get("context"), dict):
        return {**review.input_json, "market_context": record["context"]}
    snapshot: dict[str, Any] = review.input_json
    return snapshot


def market_context_for(
    review: LLMDecisionReview, *, order: DeterministicOrder, posture: Posture, now: datetime
) -> ReviewContext:
    """Fetch the context for the review's symbol and apply the rules above."""
    policy = MarketContextPolicy.current()
    if (not policy.configured and not policy.required) or posture.blocked:
        return ReviewContext(snapshot=review.input_json)
    context = market_context_fetch(symbol=review.decision.symbol, now=now)
    record = {**context.as_json(), "required": policy.required, "fail_mode": policy.fail_mode}
    if context.usable:
        model_view = context.for_model()
        record["context_hash"] = canonical_text_hash(model_view)
        return ReviewContext(
            snapshot={**review.input_json, "market_context": model_view}, record=record
        )
    LLM_MARKET_CONTEXT_REASON.labels(reason=context.reason).inc()
    if context.reason == ERROR:
        LLM_MARKET_CONTEXT_ERROR.inc()
    if policy.required or policy.fail_mode == "fail_closed":
        LLM_MARKET_CONTEXT_BLOCK.inc()
        run = ReviewRun(
            verdict="error",
            outcome=fail_outcome(order, fail_mode=posture.fail_mode, reason=context.reason),
            error_kind=context.reason,
            error=context.detail[:500],
        )
        return ReviewContext(review.input_json, record, [context.reason], run)
    LLM_MARKET_CONTEXT_SHADOW.inc()
    return ReviewContext(review.input_json, record, [context.reason])
