"""The gate policy (docs/compatibility.md#inputs-and-gate-policy): thresholds of gates 0-8 and the
promotion/rollback rules, from JSON.

The file is flat (`gate2_max_drawdown`, `promotion_required_artifacts`, ...). Keys left out take
the code defaults below, which are the original's (its sample policy leaves gate 6 and gate 7 out;
gate 6 then runs on its code defaults and gate 7 is `not_configured`, so only a policy that sets
gate-7 thresholds, like the shipped production policy, calibrates uncertainty).

Parsing is strict: an unknown key, a wrong type or an impossible value is a `GatePolicyError`
naming the key, never a silently ignored threshold.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

POLICY_DIR = Path(__file__).resolve().parent.parent / "config"
SAMPLE_POLICY_PATH = POLICY_DIR / "autonomous-gate-policy.json"
PRODUCTION_POLICY_PATH = POLICY_DIR / "autonomy-gates-v4.json"

ROLLBACK_CHECKS = (
    "killSwitchDryRunPassed",
    "gitopsRevertDryRunPassed",
    "strategyDisableDryRunPassed",
)


class GatePolicyError(ValueError):
    pass


@dataclass(frozen=True)
class GatePolicy:
    policy_version: str
    required_feature_schema_version: str = "3.0.0"
    # gate 0: data integrity
    gate0_max_null_rate: float = 0.01
    gate0_max_staleness_ms: float = 120_000
    gate0_min_symbol_coverage: int = 1
    # gate 1: statistical robustness
    gate1_min_decision_count: int = 1
    gate1_min_trade_count: int = 1
    gate1_min_net_pnl: float = 0.0
    gate1_max_negative_fold_ratio: float = 0.5
    gate1_max_net_pnl_cv: float = 2.0
    # gate 2: risk and capacity
    gate2_max_drawdown: float = 250.0
    gate2_max_turnover_ratio: float = 8.0
    gate2_max_cost_bps: float = 35.0
    gate2_max_fragility_score: float = 0.85
    gate2_max_fragility_state_rank: int = 2
    gate2_require_stability_mode_under_stress: bool = True
    gate2_max_tca_slippage_bps: float = 25.0
    gate2_max_tca_shortfall_notional: float = 25.0
    gate2_max_tca_churn_ratio: float = 0.75
    # gate 3: shadow/paper quality
    gate3_max_llm_error_ratio: float = 0.10
    gate3_max_forecast_fallback_rate: float = 0.05
    gate3_max_forecast_latency_ms_p95: float = 200.0
    gate3_min_forecast_calibration_score: float = 0.85
    # gate 5: live ramp
    gate5_live_enabled: bool = False
    gate5_require_approval_token: bool = True
    # gate 6: profitability evidence
    gate6_require_evidence: bool = True
    gate6_min_market_net_pnl_delta: float = 0.0
    gate6_min_regime_slice_pass_ratio: float = 0.50
    gate6_min_return_over_drawdown: float = 0.0
    gate6_max_cost_bps: float = 35.0
    gate6_min_reproducibility_hashes: int = 5
    gate6_max_calibration_error: float | None = None
    # gate 7: uncertainty calibration (None: not configured)
    gate7_target_coverage: float | None = None
    gate7_coverage_error_pass: float = 0.03
    gate7_coverage_error_degrade: float = 0.05
    gate7_coverage_error_abstain: float = 0.08
    gate7_shift_score_degrade: float = 0.60
    gate7_shift_score_abstain: float = 0.80
    gate7_shift_score_fail: float = 0.95
    gate7_interval_width_pass: float = 1.25
    gate7_interval_width_degrade: float = 1.75
    gate7_min_samples: int = 20
    # gate 8: overfitting (None: that check is not configured; none configured: gate 8 is
    # `not_configured`). Statistics of `autonomy.trials.overfitting_evidence`.
    gate8_min_deflated_sharpe_ratio: float | None = None
    gate8_min_probabilistic_sharpe_ratio: float | None = None
    gate8_max_probability_of_backtest_overfitting: float | None = None
    # promotion and rollback
    promotion_required_artifacts: tuple[str, ...] = (
        "research/candidate-spec.json",
        "backtest/evaluation-report.json",
        "gates/gate-evaluation.json",
    )
    promotion_require_patch_targets: tuple[str, ...] = ("paper", "live")
    promotion_uncertainty_max_coverage_error: float | None = None
    # read at a live promotion (`autonomy.services.promotion`), recorded in gate 5's details: the
    # nightly live-versus-replay sessions without an unexplained mismatch the strategy needs, and
    # the most its paper fills' realism haircut may cost (bps of traded notional; None: no limit)
    promotion_live_min_clean_replay_sessions: int = 0
    promotion_live_max_fill_haircut_bps: float | None = None
    promotion_profitability_required_artifacts: tuple[str, ...] = ()
    rollback_required_checks: tuple[str, ...] = ROLLBACK_CHECKS
    rollback_dry_run_max_age_hours: float = 72.0
    rollback_require_human_approval: bool = True
    source: str = field(default="<policy>", compare=False)

    @property
    def gate7_configured(self) -> bool:
        return self.gate7_target_coverage is not None

    @property
    def gate8_configured(self) -> bool:
        return (
            self.gate8_min_deflated_sharpe_ratio is not None
            or self.gate8_min_probabilistic_sharpe_ratio is not None
            or self.gate8_max_probability_of_backtest_overfitting is not None
        )

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "source"}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


_FIELDS = {f.name: f for f in fields(GatePolicy) if f.name != "source"}


def _coerce(key: str, value: Any, default: Any, source: str) -> Any:
    def bad(expected: str) -> GatePolicyError:
        return GatePolicyError(f"{source}: {key} must be {expected}, got {value!r}")

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise bad("a list of non-empty strings")
        return tuple(value)
    if isinstance(default, str):
        if not isinstance(value, str) or not value:
            raise bad("a non-empty string")
        return value
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad("a finite number")
    if value < 0:
        raise bad("a number >= 0")
    if isinstance(default, int) and not isinstance(default, bool):
        if value != int(value):
            raise bad("a whole number")
        return int(value)
    return float(value)


def parse_gate_policy(data: object, *, source: str = "<policy>") -> GatePolicy:
    if not isinstance(data, dict):
        raise GatePolicyError(f"{source}: a gate policy is a JSON object")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise GatePolicyError(f"{source}: unknown key(s) {', '.join(unknown)}")
    version = data.get("policy_version")
    if not isinstance(version, str) or not version:
        raise GatePolicyError(f"{source}: policy_version must be a non-empty string")
    values: dict[str, Any] = {"policy_version": version, "source": source}
    for key, value in data.items():
        if key == "policy_version":
            continue
        default = _FIELDS[key].default
        values[key] = _coerce(key, value, default, source)
    bad_checks = sorted(set(values.get("rollback_required_checks", ())) - set(ROLLBACK_CHECKS))
    if bad_checks:
        raise GatePolicyError(
            f"{source}: rollback_required_checks has unknown check(s) {', '.join(bad_checks)}"
            f" (known: {', '.join(ROLLBACK_CHECKS)})"
        )
    bad_targets = sorted(
        set(values.get("promotion_require_patch_targets", ())) - {"shadow", "paper", "live"}
    )
    if bad_targets:
        raise GatePolicyError(
            f"{source}: promotion_require_patch_targets has unknown target(s) "
            f"{', '.join(bad_targets)}"
        )
    for key in (
        "gate8_min_deflated_sharpe_ratio",
        "gate8_min_probabilistic_sharpe_ratio",
        "gate8_max_probability_of_backtest_overfitting",
    ):
        if values.get(key) is not None and values[key] > 1:
            raise GatePolicyError(f"{source}: {key} is a probability, at most 1, got {values[key]}")
    return GatePolicy(**values)


def load_gate_policy(path: Path | str) -> tuple[GatePolicy, bytes]:
    """(policy, the file's bytes: they go into the run id)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise GatePolicyError(f"{p}: cannot read the gate policy ({exc.strerror})") from exc
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GatePolicyError(f"{p}: not valid JSON ({exc})") from exc
    return parse_gate_policy(data, source=str(p)), raw
