"""How a review's posture resolved against its configuration (the original service's
`policy_resolution` classification), for the metrics of trading/services/review_committee.py.
Pure, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trading.llm.config import ReviewConfig
from trading.llm.policy import Posture


@dataclass(frozen=True)
class PolicyResolution:
    classification: str  # compliant | intentional_exception | violation
    fail_mode_override: bool  # the effective fail mode differs from LLM_FAIL_MODE
    fail_mode_exception: bool  # pass_through honoured on live by LLM_FAIL_OPEN_LIVE_APPROVED
    stage_policy_violation: bool  # a stage/guardrail rule forced shadow or blocked the review
    guardrail_shadow: bool  # shadow forced by a stage/governance rule, not by LLM_SHADOW_MODE


def policy_resolution(
    config: ReviewConfig, posture: Posture, *, is_live: bool, shadow_reasons: Sequence[str]
) -> PolicyResolution:
    forced_shadow = any(reason != "shadow_mode" for reason in shadow_reasons)
    override = posture.fail_mode != config.fail_mode
    exception = (
        is_live
        and posture.fail_mode == "pass_through"
        and config.fail_mode == "pass_through"
        and config.fail_open_live_approved
    )
    violation = bool(posture.blocked) or forced_shadow
    if override or violation:
        classification = "violation"
    elif exception:
        classification = "intentional_exception"
    else:
        classification = "compliant"
    return PolicyResolution(classification, override, exception, violation, forced_shadow)
