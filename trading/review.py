"""The LLM review hook of the decision chain (after the risk engine, before execution policy).

With LLM review off (LLM_ENABLED, the default) it is an explicit pass-through, recorded as a
verdict so every decision shows that no review took place. With it on, it never calls a model: it
decides whether the decision waits for a review (`pending`: the chain stops here and resumes in
`trading.services.reviews.review_continue` once the review is in or its deadline passed) or goes
on at once with the review recorded beside it (`shadow`: shadow mode, rollout stage 0/1, missing
governance evidence). The contract it keeps: a review may veto or shrink a trade (qty ≤ the
deterministic size), never enlarge it.
"""

from __future__ import annotations

from torghut_site.flags import flag_enabled
from trading.gates import Candidate, CycleContext, GateVerdict
from trading.llm.config import ReviewConfig
from trading.llm.policy import review_posture


def review_candidate(candidate: Candidate, ctx: CycleContext) -> GateVerdict:
    if not flag_enabled("LLM_ENABLED"):
        return GateVerdict("llm_review", True, (), {"mode": "pass_through", "reviewed": False})
    config = ReviewConfig.current()
    posture = review_posture(config, is_live=ctx.is_live)
    candidate.review_shadow = posture.shadow
    details = {
        "mode": "shadow" if posture.shadow else "pending",
        "reviewed": False,
        "shadow_reasons": list(posture.shadow_reasons),
        "deadline_seconds": config.deadline_seconds,
    }
    return GateVerdict("llm_review", True, (), details)
