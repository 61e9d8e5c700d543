"""Drift detection (docs/compatibility.md#drift-governance), pure: reason codes from a run's
evidence against thresholds, and the action they call for.

Codes (10): data — `data_required_null_rate_exceeded`, `data_staleness_p95_exceeded`,
`data_duplicate_ratio_exceeded`, `data_schema_mismatch`; model — `model_calibration_error_exceeded`,
`model_llm_error_ratio_exceeded`; performance — `performance_net_pnl_below_min`,
`performance_drawdown_exceeded`, `performance_cost_bps_exceeded`,
`performance_execution_fallback_ratio_exceeded`. By default data and model codes call for
`retrain`, performance codes for `reselection` (reselection wins when both are present).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DATA_CODES = (
    "data_required_null_rate_exceeded",
    "data_staleness_p95_exceeded",
    "data_duplicate_ratio_exceeded",
    "data_schema_mismatch",
)
MODEL_CODES = ("model_calibration_error_exceeded", "model_llm_error_ratio_exceeded")
PERFORMANCE_CODES = (
    "performance_net_pnl_below_min",
    "performance_drawdown_exceeded",
    "performance_cost_bps_exceeded",
    "performance_execution_fallback_ratio_exceeded",
)
ALL_CODES = DATA_CODES + MODEL_CODES + PERFORMANCE_CODES


@dataclass(frozen=True)
class DriftThresholds:
    max_required_null_rate: float = 0.02
    max_staleness_ms_p95: float = 180_000
    max_duplicate_ratio: float = 0.05
    max_schema_mismatch_total: int = 0
    max_model_calibration_error: float = 0.45
    max_model_llm_error_ratio: float = 0.1
    min_performance_net_pnl: float = 0.0
    max_performance_drawdown: float = 0.08
    max_performance_cost_bps: float = 35.0
    max_execution_fallback_ratio: float = 0.25
    retrain_codes: tuple[str, ...] = DATA_CODES + MODEL_CODES
    reselection_codes: tuple[str, ...] = PERFORMANCE_CODES


@dataclass(frozen=True)
class DriftObservation:
    null_rate: float
    staleness_ms_p95: float | None
    duplicate_ratio: float
    schema_mismatch_total: int
    calibration_error: float | None
    llm_error_ratio: float | None
    net_pnl: float
    drawdown_pct: float
    cost_bps: float
    execution_fallback_ratio: float | None


def detect(obs: DriftObservation, t: DriftThresholds) -> list[str]:
    checks = [
        ("data_required_null_rate_exceeded", obs.null_rate > t.max_required_null_rate),
        (
            "data_staleness_p95_exceeded",
            obs.staleness_ms_p95 is not None and obs.staleness_ms_p95 > t.max_staleness_ms_p95,
        ),
        ("data_duplicate_ratio_exceeded", obs.duplicate_ratio > t.max_duplicate_ratio),
        ("data_schema_mismatch", obs.schema_mismatch_total > t.max_schema_mismatch_total),
        (
            "model_calibration_error_exceeded",
            obs.calibration_error is not None
            and obs.calibration_error > t.max_model_calibration_error,
        ),
        (
            "model_llm_error_ratio_exceeded",
            obs.llm_error_ratio is not None and obs.llm_error_ratio > t.max_model_llm_error_ratio,
        ),
        ("performance_net_pnl_below_min", obs.net_pnl < t.min_performance_net_pnl),
        ("performance_drawdown_exceeded", obs.drawdown_pct > t.max_performance_drawdown),
        ("performance_cost_bps_exceeded", obs.cost_bps > t.max_performance_cost_bps),
        (
            "performance_execution_fallback_ratio_exceeded",
            obs.execution_fallback_ratio is not None
            and obs.execution_fallback_ratio > t.max_execution_fallback_ratio,
        ),
    ]
    return [code for code, hit in checks if hit]


def action_for(codes: list[str], t: DriftThresholds) -> str:
    """`reselection`, `retrain` or `none`."""
    if any(c in t.reselection_codes for c in codes):
        return "reselection"
    if any(c in t.retrain_codes for c in codes):
        return "retrain"
    return "none"


def drift_report(obs: DriftObservation, t: DriftThresholds) -> dict[str, Any]:
    codes = detect(obs, t)
    return {
        "observation": {k: getattr(obs, k) for k in obs.__dataclass_fields__},
        "reason_codes": codes,
        "action": action_for(codes, t),
        "live_promotion_eligible": not codes,
    }


def observation_from_evidence(
    *,
    data: Any,
    net_pnl: float,
    drawdown_pct: float,
    cost_bps: float,
    evidence: Mapping[str, Any],
) -> DriftObservation:
    return DriftObservation(
        null_rate=data.null_rate,
        staleness_ms_p95=data.staleness_ms_p95,
        duplicate_ratio=data.duplicate_rate,
        schema_mismatch_total=max(0, len(data.schema_versions) - 1),
        calibration_error=evidence.get("confidence_calibration", {}).get("error"),
        llm_error_ratio=None,  # the lane's bounded LLM is off: no reviews to count
        net_pnl=net_pnl,
        drawdown_pct=drawdown_pct,
        cost_bps=cost_bps,
        execution_fallback_ratio=None,  # a backtest has no execution fallbacks
    )
