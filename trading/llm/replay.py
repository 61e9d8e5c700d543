"""Re-evaluating a stored review from its stored answer: pure functions, no I/O.

The review row keeps the raw answer (`response_body`), the configuration the review saw
(`config_json`, with the effective fail mode and the deterministic order the policy judged) and
the posture's shadow flag. From those alone the same parse and the same policy must give the
same verdict, effect, reasons and order (trading/services/review_replay.py compares them).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from trading.llm.config import ReviewConfig
from trading.llm.evidence import check_numbers, evidence_outcome
from trading.llm.policy import (
    DeterministicOrder,
    PolicyOutcome,
    Posture,
    apply_policy,
    fail_outcome,
    review_posture,
)
from trading.llm.schema import ReviewSchemaError, parse_review_response, validate_dspy_output

# keys of `config_json` that are not ReviewConfig fields
RECORD_ONLY_KEYS = ("fail_mode_effective", "deterministic_order")


def config_from_json(data: dict[str, Any], *, fallback: ReviewConfig) -> ReviewConfig:
    """The ReviewConfig a review recorded; a field it did not record (added since) is taken
    from `fallback`."""
    values: dict[str, Any] = {}
    for item in dataclasses.fields(ReviewConfig):
        if item.name not in data:
            continue
        value = data[item.name]
        if item.type == "Decimal":
            value = Decimal(str(value))
        elif str(item.type).startswith("tuple"):
            value = tuple(value)
        values[item.name] = value
    return replace(fallback, **values)


def order_from_json(data: dict[str, Any]) -> DeterministicOrder:
    def number(key: str) -> Decimal | None:
        return None if data.get(key) is None else Decimal(str(data[key]))

    qty, step = number("qty"), number("qty_step")
    assert qty is not None and step is not None
    return DeterministicOrder(
        side=str(data["side"]),
        qty=qty,
        order_type=str(data["order_type"]),
        limit_price=number("limit_price"),
        price=number("price"),
        qty_step=step,
    )


def recorded_posture(config: ReviewConfig, *, fail_mode: str, shadow: bool) -> Posture:
    """The posture as the review had it: the recorded effective fail mode and shadow flag; the
    adjustment permission follows from the recorded configuration."""
    posture = review_posture(config, is_live=True)
    return replace(posture, fail_mode=fail_mode, shadow=shadow, blocked=())


@dataclass(frozen=True)
class Reevaluation:
    verdict: str
    outcome: PolicyOutcome
    adjusted_order_type: str  # as the answer asked ("" when it did not)
    error_kind: str = ""


def reevaluate(
    body: str,
    *,
    dspy: bool,
    snapshot: dict[str, Any],
    order: DeterministicOrder,
    config: ReviewConfig,
    posture: Posture,
) -> Reevaluation:
    """Parse the stored answer with the review's schema (the legacy contract, or the DSPy
    output contract for a DSPy answer), apply the policy to the deterministic order, and check
    the answer's numbers against the snapshot the model saw (trading/llm/engine.py's
    `evidence_check`)."""
    committee = None
    numbers: Any
    try:
        if dspy:
            output = validate_dspy_output(dict(_json(body)))
            response, committee, numbers = output.to_review_response(), output.committee, output
        else:
            response, _ = parse_review_response(body)
            numbers = response
    except ReviewSchemaError as exc:
        reason = f"llm_review_error:{exc.kind}"
        outcome = fail_outcome(order, fail_mode=posture.fail_mode, reason=reason)
        return Reevaluation("error", outcome, "", exc.kind)
    outcome = apply_policy(
        response, order=order, config=config, posture=posture, committee=committee
    )
    reasons = check_numbers(numbers, order, snapshot, config.evidence_price_band_bps)
    if reasons:
        fail_mode = "veto" if outcome.vetoed else posture.fail_mode
        rejected = evidence_outcome(order, fail_mode=fail_mode, reasons=reasons)
        return Reevaluation("error", rejected, "", "evidence_mismatch")
    return Reevaluation(response.verdict, outcome, response.adjusted_order_type or "")


def _json(body: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ReviewSchemaError("parse_error", f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ReviewSchemaError("parse_error", "not a JSON object")
    return data
