"""`trade-review-committee-v1`, signature `v1`: the trade review as a DSPy program.

One `dspy.Predict` over a typed signature: the DSPy input contract
(docs/compatibility.md#dspy-contract) in, the committee's verdict out (overall verdict, confidence,
rationale, required checks, risk flags, adjusted quantity and order type, limit price, escalation
reason, uncertainty band, one entry per committee role, calibration metadata). Compilation (few-shot
demos, instructions) is what an optimizer changes; the stored state of a compiled program is its
artifact.

`dspy` is imported lazily by the callers of this module's builders: the web process and the trade
cycle never import it (about a second of import time and the LiteLLM stack).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import dspy
from pydantic import BaseModel, Field

from trading.llm.schema import DspyReviewInput, DspyReviewOutput, validate_dspy_output

PROGRAM_NAME = "trade-review-committee-v1"
SIGNATURE_VERSION = "v1"
INPUT_SCHEMA_VERSION = "torghut.dspy.trade-review-input.v1"
INPUT_FIELDS = (
    "schema_version",
    "request_json",
    "advisory_only",
    "program_name",
    "signature_version",
    "artifact_hash",
    "market_session",
)
OUTPUT_FIELDS = (
    "verdict",
    "confidence",
    "rationale",
    "rationale_short",
    "required_checks",
    "risk_flags",
    "adjusted_qty",
    "adjusted_order_type",
    "limit_price",
    "escalate_reason",
    "uncertainty_band",
    "committee",
    "calibration_metadata",
)

VerdictName = Literal["approve", "veto", "adjust", "abstain", "escalate"]
BandName = Literal["low", "medium", "high"]


class CommitteeMemberOpinion(BaseModel):
    """One committee role's opinion, as the LM writes it."""

    role: Literal["researcher", "risk_critic", "execution_critic", "policy_judge"]
    verdict: VerdictName
    confidence: float = Field(ge=0.0, le=1.0)
    uncertainty_band: BandName
    rationale_short: str = Field(description="at most 280 characters")
    required_checks: list[str] = Field(default_factory=list)
    risk_flags: list[str] = Field(default_factory=list)


class TradeReviewCommitteeSignatureV1(dspy.Signature):  # type: ignore[misc]  # dspy is untyped
    """Review one trade decision that deterministic sizing and risk checks already approved, as a
    committee of four roles: researcher (thesis quality and expected edge), risk_critic
    (downside and policy violations), execution_critic (feasibility under microstructure and
    execution), policy_judge (schema, calibration, deterministic checks). The review is advisory:
    it may approve, veto, shrink (adjust), abstain or escalate, and can never enlarge the trade."""

    schema_version: str = dspy.InputField(desc="input contract version")
    request_json: str = dspy.InputField(
        desc="the decision, portfolio, market snapshot, recent decisions and policy, as JSON"
    )
    advisory_only: bool = dspy.InputField(desc="always true: deterministic risk stays final")
    program_name: str = dspy.InputField()
    signature_version: str = dspy.InputField()
    artifact_hash: str = dspy.InputField(desc="the compiled artifact answering")
    market_session: str = dspy.InputField(desc="regular, pre, post or closed")

    verdict: VerdictName = dspy.OutputField(desc="the committee's overall verdict")
    confidence: float = dspy.OutputField(desc="in [0, 1]")
    rationale: str = dspy.OutputField(desc="at most 280 characters")
    rationale_short: str = dspy.OutputField(desc="one line")
    required_checks: list[str] = dspy.OutputField(
        desc="subset of execution_policy, risk_engine, order_firewall, portfolio_sizing, "
        "market_context, autonomy_policy_checks"
    )
    risk_flags: list[str] = dspy.OutputField()
    adjusted_qty: str = dspy.OutputField(
        desc="smaller quantity for adjust, at most the decision's qty; 'none' otherwise"
    )
    adjusted_order_type: str = dspy.OutputField(desc="market, limit or 'none'")
    limit_price: str = dspy.OutputField(desc="required for a limit order; 'none' otherwise")
    escalate_reason: str = dspy.OutputField(desc="required for escalate; 'none' otherwise")
    uncertainty_band: BandName = dspy.OutputField()
    committee: list[CommitteeMemberOpinion] = dspy.OutputField(desc="one entry per role")
    calibration_metadata: dict[str, Any] = dspy.OutputField()


class TradeReviewCommitteeV1(dspy.Module):  # type: ignore[misc]  # dspy is untyped
    program_name = PROGRAM_NAME
    signature_version = SIGNATURE_VERSION

    def __init__(self) -> None:
        super().__init__()
        self.review = dspy.Predict(TradeReviewCommitteeSignatureV1)

    def forward(self, **inputs: Any) -> Any:
        return self.review(**inputs)


PROGRAMS: dict[tuple[str, str], type[TradeReviewCommitteeV1]] = {
    (PROGRAM_NAME, SIGNATURE_VERSION): TradeReviewCommitteeV1,
}


def program_for(program_name: str, signature_version: str) -> TradeReviewCommitteeV1:
    try:
        return PROGRAMS[(program_name, signature_version)]()
    except KeyError as exc:
        raise LookupError(
            f"no DSPy program {program_name!r} signature {signature_version!r}"
        ) from exc


def program_inputs(review_input: DspyReviewInput) -> dict[str, Any]:
    """The signature's keyword inputs for a contract input."""
    return {
        "schema_version": review_input.schema_version,
        "request_json": json.dumps(
            review_input.request_json, sort_keys=True, separators=(",", ":")
        ),
        "advisory_only": True,
        "program_name": review_input.program_name,
        "signature_version": review_input.signature_version,
        "artifact_hash": review_input.artifact_hash,
        "market_session": review_input.market_session or "unknown",
    }


def _optional(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in ("", "none", "null", "n/a"):
        return None
    return value


def _member_numbers(member: dict[str, Any]) -> dict[str, Any]:
    """The numbers a committee member states, if any (checked by trading/llm/evidence.py)."""
    names = {
        "adjusted_qty": "adjustedQty",
        "qty_multiplier": "qtyMultiplier",
        "limit_price": "limitPrice",
        "stop_price": "stopPrice",
    }
    return {
        alias: value
        for name, alias in names.items()
        if (value := _optional(member.get(name))) is not None
    }


def prediction_output(prediction: Any) -> DspyReviewOutput:
    """The prediction as the DSPy output contract (docs/compatibility.md#dspy-contract) (camelCase),
    validated."""
    committee = [
        (m.model_dump() if isinstance(m, BaseModel) else dict(m))
        for m in (getattr(prediction, "committee", None) or [])
    ]
    return validate_dspy_output(
        {
            "verdict": prediction.verdict,
            "confidence": prediction.confidence,
            "rationale": prediction.rationale,
            "rationaleShort": _optional(getattr(prediction, "rationale_short", None)),
            "requiredChecks": list(getattr(prediction, "required_checks", None) or []),
            "riskFlags": list(getattr(prediction, "risk_flags", None) or []),
            "adjustedQty": _optional(getattr(prediction, "adjusted_qty", None)),
            "adjustedOrderType": _optional(getattr(prediction, "adjusted_order_type", None)),
            "limitPrice": _optional(getattr(prediction, "limit_price", None)),
            # not output fields of signature v1; a later signature may state them
            "qtyMultiplier": _optional(getattr(prediction, "qty_multiplier", None)),
            "stopPrice": _optional(getattr(prediction, "stop_price", None)),
            "escalateReason": _optional(getattr(prediction, "escalate_reason", None)),
            "uncertaintyBand": getattr(prediction, "uncertainty_band", None) or "medium",
            "committee": [
                {
                    "role": m.get("role"),
                    "verdict": m.get("verdict"),
                    "confidence": m.get("confidence"),
                    "uncertaintyBand": m.get("uncertainty_band"),
                    "rationaleShort": m.get("rationale_short"),
                    "requiredChecks": m.get("required_checks") or [],
                    "riskFlags": m.get("risk_flags") or [],
                    **_member_numbers(m),
                }
                for m in committee
            ],
            "calibrationMetadata": dict(getattr(prediction, "calibration_metadata", None) or {}),
        }
    )
