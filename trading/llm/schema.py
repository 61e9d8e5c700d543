"""The review response contract (docs/compatibility.md#review-contract) and the DSPy program's
input/output contract (docs/compatibility.md#dspy-contract).

A response that is not JSON, or does not satisfy the contract, is an error (`ReviewSchemaError`)
and goes down the fail-mode path; nothing from it reaches an order.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Verdict = Literal["approve", "veto", "adjust", "abstain", "escalate"]
Band = Literal["low", "medium", "high"]
OrderTypeName = Literal["market", "limit", "stop", "stop_limit"]
CommitteeRole = Literal["researcher", "risk_critic", "execution_critic", "policy_judge"]

RATIONALE_MAX = 280
PROBABILITY_TOLERANCE = 0.02
BAND_RANK = {"low": 0, "medium": 1, "high": 2}


class ReviewSchemaError(Exception):
    """`kind`: parse_error (not JSON) or validation_error (JSON outside the contract)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def _rationale(value: str, *, required: bool = True) -> str:
    trimmed = value.strip()
    if required and not trimmed:
        raise ValueError("rationale_required")
    if len(trimmed) > RATIONALE_MAX:
        raise ValueError("rationale_too_long")
    return trimmed


class CalibratedProbabilities(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: float = Field(ge=0.0, le=1.0)
    veto: float = Field(ge=0.0, le=1.0)
    adjust: float = Field(ge=0.0, le=1.0)
    abstain: float = Field(ge=0.0, le=1.0)
    escalate: float = Field(ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _sum_to_one(self) -> CalibratedProbabilities:
        if abs(sum(self.values()) - 1.0) > PROBABILITY_TOLERANCE:
            raise ValueError("calibrated_probabilities_must_sum_to_one")
        return self

    def values(self) -> list[float]:
        return [self.approve, self.veto, self.adjust, self.abstain, self.escalate]


class Uncertainty(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: float = Field(ge=0.0, le=1.0)
    band: Band
    confidence_interval_low: float | None = Field(default=None, ge=0.0, le=1.0)
    confidence_interval_high: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _interval(self) -> Uncertainty:
        low, high = self.confidence_interval_low, self.confidence_interval_high
        if (low is None) != (high is None):
            raise ValueError("uncertainty_confidence_interval_incomplete")
        if low is not None and high is not None and low > high:
            raise ValueError("uncertainty_confidence_interval_invalid")
        return self


class ReviewResponse(BaseModel):
    """What the reviewer must answer. Unknown keys are ignored (gateways add metadata)."""

    model_config = ConfigDict(extra="ignore")

    verdict: Verdict
    confidence: float = Field(ge=0.0, le=1.0)
    confidence_band: Band
    calibrated_probabilities: CalibratedProbabilities
    uncertainty: Uncertainty
    calibration_metadata: dict[str, Any] = Field(default_factory=dict)
    adjusted_qty: Decimal | None = Field(default=None, gt=0)
    adjusted_order_type: OrderTypeName | None = None
    limit_price: Decimal | None = Field(default=None, gt=0)
    # numbers checked against the snapshot before the policy sees them (trading/llm/evidence.py)
    qty_multiplier: Decimal | None = Field(default=None, gt=0)
    stop_price: Decimal | None = Field(default=None, gt=0)
    escalate_reason: str | None = None
    rationale: str
    required_checks: list[str] = Field(default_factory=list)
    risk_flags: list[str] = Field(default_factory=list)

    @field_validator("rationale")
    @classmethod
    def _check_rationale(cls, value: str) -> str:
        return _rationale(value)

    @model_validator(mode="after")
    def _requirements(self) -> ReviewResponse:
        if self.verdict == "adjust" and self.adjusted_qty is None:
            raise ValueError("adjusted_qty_required_for_adjust_verdict")
        if self.verdict == "escalate" and not (self.escalate_reason or "").strip():
            raise ValueError("escalate_reason_required_for_escalate_verdict")
        if self.adjusted_order_type in ("limit", "stop_limit") and self.limit_price is None:
            raise ValueError("limit_price_required_for_limit_orders")
        return self


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def _json_object(content: str) -> dict[str, Any]:
    """The answer's JSON object (a ```json fence allowed), else `parse_error`."""
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ReviewSchemaError("parse_error", f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ReviewSchemaError("parse_error", "not a JSON object")
    return data


def parse_review_response(content: str) -> tuple[ReviewResponse, dict[str, Any]]:
    """The validated response and the JSON it came from."""
    data = _json_object(content)
    try:
        return ReviewResponse.model_validate(data), data
    except ValidationError as exc:
        raise ReviewSchemaError("validation_error", _errors(exc)) from exc


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
    )[:480]


# -- DSPy program contract (docs/compatibility.md#dspy-contract)
# ----------------------------------------------------------------


class DspyCommitteeMember(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    role: CommitteeRole
    verdict: Verdict
    confidence: float = Field(ge=0.0, le=1.0)
    uncertainty_band: Band = Field(alias="uncertaintyBand")
    rationale_short: str = Field(alias="rationaleShort")
    required_checks: list[str] = Field(default_factory=list, alias="requiredChecks")
    risk_flags: list[str] = Field(default_factory=list, alias="riskFlags")
    # a member may state numbers too; they are checked like the overall answer's
    adjusted_qty: Decimal | None = Field(default=None, gt=0, alias="adjustedQty")
    qty_multiplier: Decimal | None = Field(default=None, gt=0, alias="qtyMultiplier")
    limit_price: Decimal | None = Field(default=None, gt=0, alias="limitPrice")
    stop_price: Decimal | None = Field(default=None, gt=0, alias="stopPrice")

    @field_validator("rationale_short")
    @classmethod
    def _check_rationale(cls, value: str) -> str:
        return _rationale(value)


class DspyReviewInput(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_version: str = Field(alias="schemaVersion")
    request_json: dict[str, Any] = Field(alias="requestJson")
    advisory_only: Literal[True] = Field(default=True, alias="advisoryOnly")
    program_name: str = Field(alias="programName")
    signature_version: str = Field(alias="signatureVersion")
    artifact_hash: str = Field(alias="artifactHash")
    market_session: str | None = Field(default=None, alias="marketSession")


class DspyReviewOutput(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    verdict: Verdict
    confidence: float = Field(ge=0.0, le=1.0)
    rationale: str
    rationale_short: str | None = Field(default=None, alias="rationaleShort")
    required_checks: list[str] = Field(default_factory=list, alias="requiredChecks")
    risk_flags: list[str] = Field(default_factory=list, alias="riskFlags")
    adjusted_qty: Decimal | None = Field(default=None, gt=0, alias="adjustedQty")
    adjusted_order_type: OrderTypeName | None = Field(default=None, alias="adjustedOrderType")
    limit_price: Decimal | None = Field(default=None, gt=0, alias="limitPrice")
    qty_multiplier: Decimal | None = Field(default=None, gt=0, alias="qtyMultiplier")
    stop_price: Decimal | None = Field(default=None, gt=0, alias="stopPrice")
    escalate_reason: str | None = Field(default=None, alias="escalateReason")
    uncertainty_band: Band = Field(default="medium", alias="uncertaintyBand")
    committee: list[DspyCommitteeMember] = Field(default_factory=list)
    calibration_metadata: dict[str, Any] = Field(default_factory=dict, alias="calibrationMetadata")

    @field_validator("rationale")
    @classmethod
    def _check_rationale(cls, value: str) -> str:
        return _rationale(value)

    @field_validator("rationale_short")
    @classmethod
    def _check_short(cls, value: str | None) -> str | None:
        return _rationale(value, required=False) or None if value is not None else None

    @model_validator(mode="after")
    def _requirements(self) -> DspyReviewOutput:
        if self.verdict == "adjust" and self.adjusted_qty is None:
            raise ValueError("adjusted_qty_required_for_adjust_verdict")
        if self.verdict == "escalate" and not (self.escalate_reason or "").strip():
            raise ValueError("escalate_reason_required_for_escalate_verdict")
        if self.adjusted_order_type in ("limit", "stop_limit") and self.limit_price is None:
            raise ValueError("limit_price_required_for_limit_orders")
        return self

    def as_contract(self) -> dict[str, Any]:
        """The contract JSON; the numbers added for the evidence check appear only when stated,
        so an answer without them keeps the shape (and the hash) it had before."""
        data = self.model_dump(mode="json", by_alias=True)
        for key in ("qtyMultiplier", "stopPrice"):
            if data[key] is None:
                del data[key]
        for member in data["committee"]:
            for key in ("adjustedQty", "qtyMultiplier", "limitPrice", "stopPrice"):
                if member[key] is None:
                    del member[key]
        return data

    def to_review_response(self) -> ReviewResponse:
        """The DSPy answer in the review contract, so one policy judges both paths.

        The program states no per-verdict probabilities: its confidence goes to its verdict and
        the rest is spread evenly, which is what the quality guardrails then see.
        """
        others = (1.0 - self.confidence) / 4
        probabilities = {
            name: (self.confidence if name == self.verdict else others)
            for name in ("approve", "veto", "adjust", "abstain", "escalate")
        }
        score = {"low": 0.2, "medium": 0.5, "high": 0.8}[self.uncertainty_band]
        return ReviewResponse.model_validate(
            {
                "verdict": self.verdict,
                "confidence": self.confidence,
                "confidence_band": self.uncertainty_band,
                "calibrated_probabilities": probabilities,
                "uncertainty": {"score": score, "band": self.uncertainty_band},
                "calibration_metadata": self.calibration_metadata,
                "adjusted_qty": self.adjusted_qty,
                "adjusted_order_type": self.adjusted_order_type,
                "limit_price": self.limit_price,
                "qty_multiplier": self.qty_multiplier,
                "stop_price": self.stop_price,
                "escalate_reason": self.escalate_reason,
                "rationale": self.rationale,
                "required_checks": self.required_checks,
                "risk_flags": self.risk_flags,
            }
        )


def validate_dspy_output(data: dict[str, Any]) -> DspyReviewOutput:
    try:
        return DspyReviewOutput.model_validate(data)
    except ValidationError as exc:
        raise ReviewSchemaError("validation_error", _errors(exc)) from exc


# -- committee vote contract (docs/compatibility.md#review-contract, trading/llm/committee.py)
# ----------------------------------------------------------------------------------------------


class CommitteeVote(BaseModel):
    """One committee role's answer. Unknown keys are ignored, as in the review contract; an
    adjust without a quantity is not a schema error here: the aggregation makes it the
    fail-closed verdict."""

    model_config = ConfigDict(extra="ignore")

    verdict: Verdict
    confidence: float = Field(ge=0.0, le=1.0)
    uncertainty: Band
    rationale_short: str
    required_checks: list[str] = Field(default_factory=list)
    risk_flags: list[str] = Field(default_factory=list)
    adjusted_qty: Decimal | None = Field(default=None, gt=0)
    adjusted_order_type: OrderTypeName | None = None
    limit_price: Decimal | None = Field(default=None, gt=0)
    escalate_reason: str | None = None

    @field_validator("rationale_short")
    @classmethod
    def _check_rationale(cls, value: str) -> str:
        return _rationale(value)


def parse_committee_vote(content: str) -> tuple[CommitteeVote, dict[str, Any]]:
    """The validated vote and the JSON it came from (errors as `parse_review_response`)."""
    data = _json_object(content)
    try:
        return CommitteeVote.model_validate(data), data
    except ValidationError as exc:
        raise ReviewSchemaError("validation_error", _errors(exc)) from exc
