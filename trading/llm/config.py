"""The configuration one review sees, read once (settings and Flipt flags) and recorded."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings

from torghut_site.flags import flag_enabled

ALLOWED_REQUIRED_CHECKS = frozenset(
    {
        "execution_policy",
        "risk_engine",
        "order_firewall",
        "portfolio_sizing",
        "market_context",
        "autonomy_policy_checks",
    }
)
ALLOWED_ORDER_TYPES = ("market", "limit")


@dataclass(frozen=True)
class ReviewConfig:
    enabled: bool
    provider: str
    model: str
    prompt_version: str
    temperature: float
    seed: int
    max_tokens: int
    token_budget_max: int
    timeout_seconds: float
    deadline_seconds: int
    fail_mode: str
    fail_mode_enforcement: str
    fail_open_live_approved: bool
    abstain_fail_mode: str
    escalate_fail_mode: str
    quality_fail_mode: str
    min_confidence: float
    min_calibrated_top_probability: float
    min_probability_margin: float
    max_uncertainty: float
    max_uncertainty_band: str
    min_calibration_quality_score: float
    adjustment_allowed: bool
    adjustment_approved: bool
    min_qty_multiplier: Decimal
    max_qty_multiplier: Decimal
    evidence_price_band_bps: Decimal
    shadow_mode: bool
    rollout_stage: str
    recent_decisions: int
    allowed_prompt_versions: tuple[str, ...]
    allowed_models: tuple[str, ...]
    evaluation_report: str
    effective_challenge_id: str
    shadow_completed_at: str
    model_version_lock: str
    committee_roles: tuple[str, ...]
    committee_mandatory_roles: tuple[str, ...]
    dspy_runtime_mode: str
    dspy_artifact_hash: str
    dspy_program_name: str
    dspy_signature_version: str
    dspy_timeout_seconds: float
    committee_enabled: bool = False
    committee_fail_closed_verdict: str = "veto"

    @classmethod
    def current(cls) -> ReviewConfig:
        s = settings
        return cls(
            enabled=flag_enabled("LLM_ENABLED"),
            provider=s.LLM_PROVIDER,
            model=s.LLM_SELF_HOSTED_MODEL if s.LLM_PROVIDER == "self_hosted" else s.LLM_MODEL,
            prompt_version=s.LLM_PROMPT_VERSION,
            temperature=s.LLM_TEMPERATURE,
            seed=s.LLM_SEED,
            max_tokens=s.LLM_MAX_TOKENS,
            token_budget_max=s.LLM_TOKEN_BUDGET_MAX,
            timeout_seconds=s.LLM_TIMEOUT_SECONDS,
            deadline_seconds=s.LLM_REVIEW_DEADLINE_SECONDS,
            fail_mode=s.LLM_FAIL_MODE,
            fail_mode_enforcement=s.LLM_FAIL_MODE_ENFORCEMENT,
            fail_open_live_approved=flag_enabled("LLM_FAIL_OPEN_LIVE_APPROVED"),
            abstain_fail_mode=s.LLM_ABSTAIN_FAIL_MODE,
            escalate_fail_mode=s.LLM_ESCALATE_FAIL_MODE,
            quality_fail_mode=s.LLM_QUALITY_FAIL_MODE,
            min_confidence=s.LLM_MIN_CONFIDENCE,
            min_calibrated_top_probability=s.LLM_MIN_CALIBRATED_TOP_PROBABILITY,
            min_probability_margin=s.LLM_MIN_PROBABILITY_MARGIN,
            max_uncertainty=s.LLM_MAX_UNCERTAINTY,
            max_uncertainty_band=s.LLM_MAX_UNCERTAINTY_BAND,
            min_calibration_quality_score=s.LLM_MIN_CALIBRATION_QUALITY_SCORE,
            adjustment_allowed=flag_enabled("LLM_ADJUSTMENT_ALLOWED"),
            adjustment_approved=flag_enabled("LLM_ADJUSTMENT_APPROVED"),
            min_qty_multiplier=s.LLM_MIN_QTY_MULTIPLIER,
            max_qty_multiplier=s.LLM_MAX_QTY_MULTIPLIER,
            evidence_price_band_bps=s.LLM_EVIDENCE_PRICE_BAND_BPS,
            shadow_mode=flag_enabled("LLM_SHADOW_MODE"),
            rollout_stage=s.LLM_ROLLOUT_STAGE,
            recent_decisions=s.LLM_RECENT_DECISIONS,
            allowed_prompt_versions=tuple(s.LLM_ALLOWED_PROMPT_VERSIONS),
            allowed_models=tuple(s.LLM_ALLOWED_MODELS),
            evaluation_report=s.LLM_EVALUATION_REPORT,
            effective_challenge_id=s.LLM_EFFECTIVE_CHALLENGE_ID,
            shadow_completed_at=s.LLM_SHADOW_COMPLETED_AT,
            model_version_lock=s.LLM_MODEL_VERSION_LOCK,
            committee_roles=tuple(s.LLM_COMMITTEE_ROLES),
            committee_mandatory_roles=tuple(s.LLM_COMMITTEE_MANDATORY_ROLES),
            dspy_runtime_mode=s.LLM_DSPY_RUNTIME_MODE,
            dspy_artifact_hash=s.LLM_DSPY_ARTIFACT_HASH,
            dspy_program_name=s.LLM_DSPY_PROGRAM_NAME,
            dspy_signature_version=s.LLM_DSPY_SIGNATURE_VERSION,
            dspy_timeout_seconds=s.LLM_DSPY_TIMEOUT_SECONDS,
            committee_enabled=flag_enabled("LLM_COMMITTEE_ENABLED"),
            committee_fail_closed_verdict=s.LLM_COMMITTEE_FAIL_CLOSED_VERDICT,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            key: (str(value) if isinstance(value, Decimal) else value)
            for key, value in asdict(self).items()
        }

    @property
    def stage_number(self) -> int:
        return int(self.rollout_stage[len("stage")])
