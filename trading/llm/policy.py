"""Deterministic rules around the reviewer: posture before the call, policy after it.

Pure functions, no I/O. The reviewer can make a trade smaller or stop it; nothing here can make
it larger than the deterministic gates sized it: an adjusted quantity is clamped to
[LLM_MIN_QTY_MULTIPLIER, min(LLM_MAX_QTY_MULTIPLIER, 1)] × the deterministic quantity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from trading.llm.config import ALLOWED_ORDER_TYPES, ALLOWED_REQUIRED_CHECKS, ReviewConfig
from trading.llm.schema import BAND_RANK, DspyCommitteeMember, ReviewResponse

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
ONE = Decimal(1)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Posture:
    """How a review may act on this lane, decided before any call."""

    shadow: bool
    shadow_reasons: tuple[str, ...]
    adjustments_allowed: bool
    fail_mode: str  # veto | pass_through: what an error, a timeout or an expiry does
    blocked: tuple[str, ...]  # guardrail blocks: no call is made, the fail mode applies


@dataclass(frozen=True)
class DeterministicOrder:
    side: str
    qty: Decimal
    order_type: str
    limit_price: Decimal | None
    price: Decimal | None
    qty_step: Decimal


@dataclass(frozen=True)
class PolicyOutcome:
    effect: str  # pass | shrink | veto (shadow is decided by the posture, see `shadowed`)
    final_qty: Decimal
    order_type: str
    limit_price: Decimal | None
    reasons: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def vetoed(self) -> bool:
        return self.effect == "veto"


def effective_fail_mode(config: ReviewConfig, *, is_live: bool) -> str:
    """strict_veto enforcement always vetoes; a configured pass_through is honoured on a live
    lane only with LLM_FAIL_OPEN_LIVE_APPROVED."""
    if config.fail_mode_enforcement == "strict_veto":
        return "veto"
    if config.fail_mode == "pass_through" and is_live and not config.fail_open_live_approved:
        return "veto"
    return config.fail_mode


def governance_gaps(config: ReviewConfig) -> list[str]:
    gaps = []
    if not config.evaluation_report:
        gaps.append("evaluation_report_missing")
    if not config.effective_challenge_id:
        gaps.append("effective_challenge_missing")
    if not config.shadow_completed_at:
        gaps.append("shadow_completion_missing")
    if not config.model_version_lock:
        gaps.append("model_version_lock_missing")
    elif config.model_version_lock != config.model:
        gaps.append("model_version_lock_mismatch")
    return gaps


def review_posture(config: ReviewConfig, *, is_live: bool) -> Posture:
    """Rollout stage, shadow mode, model-risk guardrails and the fail mode for one lane."""
    shadow: list[str] = []
    if config.shadow_mode:
        shadow.append("shadow_mode")
    stage = config.stage_number
    if stage <= 1:
        shadow.append(f"rollout_stage{stage}")
    else:
        shadow.extend(governance_gaps(config))
        if stage == 2 and is_live:
            shadow.append("rollout_stage2_paper_only")
    blocked: list[str] = []
    if config.max_tokens > config.token_budget_max:
        blocked.append("token_budget_exceeded")
    if (
        config.allowed_prompt_versions
        and config.prompt_version not in config.allowed_prompt_versions
    ):
        blocked.append("prompt_version_not_allowed")
    if not (PROMPTS_DIR / f"system_{config.prompt_version}.txt").is_file():
        blocked.append("prompt_template_missing")
    if config.allowed_models and config.model not in config.allowed_models:
        blocked.append("model_not_allowed")
    if set(config.committee_mandatory_roles) - set(config.committee_roles):
        blocked.append("committee_roles_invalid")
    return Posture(
        shadow=bool(shadow),
        shadow_reasons=tuple(shadow),
        adjustments_allowed=(
            config.adjustment_allowed and config.adjustment_approved and stage >= 2
        ),
        fail_mode=effective_fail_mode(config, is_live=is_live),
        blocked=tuple(blocked),
    )


def fail_outcome(order: DeterministicOrder, *, fail_mode: str, reason: str) -> PolicyOutcome:
    """What an error path (provider, schema, circuit, guardrail, deadline) does to the order."""
    if fail_mode == "pass_through":
        return PolicyOutcome(
            "pass", order.qty, order.order_type, order.limit_price, (f"{reason}_pass_through",)
        )
    return PolicyOutcome("veto", ZERO, order.order_type, order.limit_price, (reason,))


def _mode(mode: str, order: DeterministicOrder, reasons: list[str]) -> PolicyOutcome:
    if mode == "pass_through":
        return PolicyOutcome("pass", order.qty, order.order_type, order.limit_price, tuple(reasons))
    return PolicyOutcome("veto", ZERO, order.order_type, order.limit_price, tuple(reasons))


def _quality_reasons(response: ReviewResponse, config: ReviewConfig) -> list[str]:
    reasons = []
    if response.confidence < config.min_confidence:
        reasons.append("llm_confidence_below_minimum")
    probabilities = sorted(response.calibrated_probabilities.values(), reverse=True)
    if probabilities[0] < config.min_calibrated_top_probability:
        reasons.append("llm_top_probability_below_minimum")
    if probabilities[0] - probabilities[1] < config.min_probability_margin:
        reasons.append("llm_probability_margin_below_minimum")
    if response.uncertainty.score > config.max_uncertainty:
        reasons.append("llm_uncertainty_above_maximum")
    if BAND_RANK[response.uncertainty.band] > BAND_RANK[config.max_uncertainty_band]:
        reasons.append("llm_uncertainty_band_above_maximum")
    quality = response.calibration_metadata.get("quality_score")
    if isinstance(quality, int | float) and not isinstance(quality, bool):
        if quality < config.min_calibration_quality_score:
            reasons.append("llm_calibration_quality_below_minimum")
    return reasons


def clamp_qty(adjusted: Decimal, order: DeterministicOrder, config: ReviewConfig) -> Decimal:
    """Clamp to [min, min(max, 1)] × deterministic qty, floored to the symbol's step."""
    low = order.qty * config.min_qty_multiplier
    high = order.qty * min(config.max_qty_multiplier, ONE)
    clamped = min(max(adjusted, low), high, order.qty)
    if clamped <= 0:
        return ZERO
    return (clamped / order.qty_step).to_integral_value(rounding=ROUND_DOWN) * order.qty_step


def apply_policy(
    response: ReviewResponse,
    *,
    order: DeterministicOrder,
    config: ReviewConfig,
    posture: Posture,
    committee: list[DspyCommitteeMember] | None = None,
) -> PolicyOutcome:
    verdict = response.verdict
    if verdict == "veto":
        return _mode("veto", order, ["llm_veto"])
    if verdict == "escalate":
        return _mode(config.escalate_fail_mode, order, ["llm_escalate"])
    if verdict == "abstain":
        return _mode(config.abstain_fail_mode, order, ["llm_abstain"])
    quality = _quality_reasons(response, config)
    if quality:
        return _mode(config.quality_fail_mode, order, quality)
    unknown = sorted(set(response.required_checks) - ALLOWED_REQUIRED_CHECKS)
    if unknown:
        return _mode("veto", order, ["llm_required_checks_unknown"])
    if committee is not None:
        by_role: dict[str, DspyCommitteeMember] = {m.role: m for m in committee}
        for role in config.committee_mandatory_roles:
            member = by_role.get(role)
            if member is None:
                return _mode("veto", order, [f"llm_committee_role_missing:{role}"])
            if member.verdict == "veto":
                return _mode("veto", order, [f"llm_committee_veto:{role}"])
    if verdict == "approve":
        return PolicyOutcome("pass", order.qty, order.order_type, order.limit_price)
    return _adjust(response, order=order, config=config, posture=posture)


def _adjust(
    response: ReviewResponse, *, order: DeterministicOrder, config: ReviewConfig, posture: Posture
) -> PolicyOutcome:
    if not posture.adjustments_allowed:
        # the reviewer would not take the order as sized, and may not resize it
        return _mode("veto", order, ["llm_adjustment_not_allowed"])
    assert response.adjusted_qty is not None  # the schema requires it for adjust
    qty = clamp_qty(response.adjusted_qty, order, config)
    details: dict[str, Any] = {"requested_qty": str(response.adjusted_qty), "clamped_qty": str(qty)}
    if qty <= 0:
        return PolicyOutcome(
            "veto", ZERO, order.order_type, order.limit_price, ("llm_adjusted_qty_zero",), details
        )
    order_type, limit_price = order.order_type, order.limit_price
    new_type = response.adjusted_order_type
    if new_type is not None and new_type != order.order_type:
        # only market -> limit (less aggressive), at a price no worse than the arrival price
        if new_type not in ALLOWED_ORDER_TYPES or order.order_type != "market":
            return _mode("veto", order, ["llm_order_type_not_allowed"])
        price, reference = response.limit_price, order.price
        assert price is not None  # the schema requires a price for limit orders
        if reference is None or (price > reference if order.side == "buy" else price < reference):
            return _mode("veto", order, ["llm_limit_price_out_of_bounds"])
        order_type, limit_price = new_type, price
    reasons = ["llm_adjust"]
    if qty != response.adjusted_qty:
        reasons.append("llm_qty_clamped")
    effect = "shrink" if qty < order.qty else "pass"
    return PolicyOutcome(effect, qty, order_type, limit_price, tuple(reasons), details)
