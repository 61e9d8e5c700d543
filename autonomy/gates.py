"""The gate matrix (docs/compatibility.md#gate-matrix): gates 0-7 over a candidate's evidence, and
the recommended mode; gate 8 (overfitting: deflated Sharpe ratio, probabilistic Sharpe ratio,
probability of backtest overfitting against the strategy family's trials) is this system's own.

Pure: `evaluate_gate_matrix(inputs, policy, target)` returns a `GateReport`. Each gate is `pass`,
`fail`, `skipped` (gate 5 below live, gates 6 and 8 for shadow) or `not_configured` (gates 7
and 8 without thresholds in the policy); skipped and not-configured gates do not block. Each
failing check adds a reason `<gate>:<check>` with its value and threshold in `details`.

Outcome: the required gates are 0, 1, 2, 3, 4, 6, 7 and 8 (6 and 8 skipped for shadow). All passing:
target shadow ⇒ shadow, paper ⇒ paper, live ⇒ live when gate 5 passes too, else paper. Any
failing ⇒ recommended `shadow` and not allowed. An uncertainty action of abstain or fail never
promotes (gate 7 fails); degrade passes only with a queued recalibration run.

Where the original read numbers that this system does not produce, the rule is explicit rather
than invented:
- gate 3: the LLM and forecast checks apply when the candidate uses them. A candidate that calls
  neither (the lane's bounded LLM is off and no strategy plugin uses a forecaster) gets
  `not_applicable` for those checks; one that uses them without evidence fails (`missing`).
- gate 4: the readiness flags come from real dry runs against the database (`readiness`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from autonomy.evidence import UncertaintyEstimate
from autonomy.policy import GatePolicy

PASS, FAIL, SKIPPED, NOT_CONFIGURED = "pass", "fail", "skipped", "not_configured"
NOT_APPLICABLE = "not_applicable"
UNCERTAINTY_ACTIONS = ("pass", "degrade", "abstain", "fail")
REQUIRED_GATES = ("gate0", "gate1", "gate2", "gate3", "gate4", "gate6", "gate7", "gate8")
# gate 8's checks: (policy field, evidence key, the threshold is a minimum)
OVERFITTING_CHECKS = (
    ("gate8_min_deflated_sharpe_ratio", "deflated_sharpe_ratio", True),
    ("gate8_min_probabilistic_sharpe_ratio", "probabilistic_sharpe_ratio", True),
    ("gate8_max_probability_of_backtest_overfitting", "probability_of_backtest_overfitting", False),
)


@dataclass(frozen=True)
class DataIntegrity:
    schema_versions: tuple[str, ...]
    null_rate: float
    staleness_ms_p95: float | None  # None: recorded signals without ingest times
    symbol_count: int
    duplicate_rate: float = 0.0


@dataclass(frozen=True)
class PerformanceSummary:
    decision_count: int
    trade_count: int
    net_pnl: float
    negative_fold_ratio: float
    net_pnl_cv: float | None
    max_drawdown: float
    turnover_ratio: float
    cost_bps: float
    fold_count: int


@dataclass(frozen=True)
class StressSummary:
    case_count: int
    fragility_score: float
    fragility_state: str
    fragility_state_rank: int
    stressed_max_drawdown: float


@dataclass(frozen=True)
class QualityEvidence:
    """Gate 3. `llm_used`/`forecast_used`: does the candidate call them at all."""

    llm_used: bool = False
    llm_reviews: int = 0
    llm_errors: int = 0
    forecast_used: bool = False
    forecast_fallback_rate: float | None = None
    forecast_latency_ms_p95: float | None = None
    forecast_calibration_score: float | None = None


@dataclass(frozen=True)
class Readiness:
    operational_ready: bool
    runbook_validated: bool
    kill_switch_dry_run: bool
    rollback_dry_run: bool
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TcaSummary:
    order_count: int
    avg_slippage_bps: float
    avg_shortfall_notional: float
    churn_ratio: float


@dataclass(frozen=True)
class GateInputs:
    data: DataIntegrity
    performance: PerformanceSummary
    stress: StressSummary
    quality: QualityEvidence
    readiness: Readiness
    benchmark: Mapping[str, Any]
    evidence: Mapping[str, Any]
    validation: Mapping[str, Any]
    uncertainty: UncertaintyEstimate | None
    recalibration_run_id: str = ""
    recalibration_artifact: str = ""
    approval_token_ok: bool = False
    tca: TcaSummary | None = None
    overfitting: Mapping[str, Any] | None = None  # autonomy.trials.overfitting_evidence


@dataclass
class GateResult:
    gate: str
    name: str
    status: str = PASS
    reasons: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, ok: bool, value: Any, threshold: Any) -> None:
        self.details[name] = {"value": value, "threshold": threshold, "passed": ok}
        if not ok:
            self.status = FAIL
            self.reasons.append(f"{self.gate}:{name}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "name": self.name,
            "status": self.status,
            "reasons": self.reasons,
            "details": self.details,
        }


@dataclass(frozen=True)
class GateReport:
    policy_version: str
    promotion_target: str
    gates: list[GateResult]
    allowed: bool
    recommended_mode: str
    uncertainty_action: str
    reasons: list[str]

    def gate(self, name: str) -> GateResult:
        return next(g for g in self.gates if g.gate == name)

    def passed(self, name: str) -> bool:
        return self.gate(name).status in (PASS, SKIPPED, NOT_CONFIGURED)

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy_version": self.policy_version,
            "promotion_target": self.promotion_target,
            "gates": [g.as_dict() for g in self.gates],
            "allowed": self.allowed,
            "recommended_mode": self.recommended_mode,
            "uncertainty_action": self.uncertainty_action,
            "reasons": self.reasons,
        }


def _le(value: float | None, limit: float) -> bool:
    return value is not None and value <= limit


def gate0(i: GateInputs, p: GatePolicy) -> GateResult:
    g, d = GateResult("gate0", "data_integrity"), i.data
    versions = sorted(set(d.schema_versions))
    g.check(
        "feature_schema_version",
        versions == [p.required_feature_schema_version],
        versions,
        p.required_feature_schema_version,
    )
    g.check("null_rate", d.null_rate <= p.gate0_max_null_rate, d.null_rate, p.gate0_max_null_rate)
    if d.staleness_ms_p95 is None:
        g.details["staleness_ms_p95"] = {"value": None, "passed": True, "note": "not_measured"}
    else:
        g.check(
            "staleness_ms_p95",
            d.staleness_ms_p95 <= p.gate0_max_staleness_ms,
            d.staleness_ms_p95,
            p.gate0_max_staleness_ms,
        )
    g.check(
        "symbol_coverage",
        d.symbol_count >= p.gate0_min_symbol_coverage,
        d.symbol_count,
        p.gate0_min_symbol_coverage,
    )
    return g


def gate1(i: GateInputs, p: GatePolicy) -> GateResult:
    g, m = GateResult("gate1", "statistical_robustness"), i.performance
    g.check(
        "decision_count",
        m.decision_count >= p.gate1_min_decision_count,
        m.decision_count,
        p.gate1_min_decision_count,
    )
    g.check(
        "trade_count",
        m.trade_count >= p.gate1_min_trade_count,
        m.trade_count,
        p.gate1_min_trade_count,
    )
    g.check("net_pnl", m.net_pnl >= p.gate1_min_net_pnl, m.net_pnl, p.gate1_min_net_pnl)
    g.check(
        "negative_fold_ratio",
        m.negative_fold_ratio <= p.gate1_max_negative_fold_ratio,
        m.negative_fold_ratio,
        p.gate1_max_negative_fold_ratio,
    )
    # a CV needs a non-zero mean: an undefined CV (mean 0) fails
    g.check(
        "net_pnl_cv",
        _le(m.net_pnl_cv, p.gate1_max_net_pnl_cv),
        m.net_pnl_cv,
        p.gate1_max_net_pnl_cv,
    )
    return g


def gate2(i: GateInputs, p: GatePolicy) -> GateResult:
    g, m, s = GateResult("gate2", "risk_capacity"), i.performance, i.stress
    g.check(
        "max_drawdown", m.max_drawdown <= p.gate2_max_drawdown, m.max_drawdown, p.gate2_max_drawdown
    )
    g.check(
        "turnover_ratio",
        m.turnover_ratio <= p.gate2_max_turnover_ratio,
        m.turnover_ratio,
        p.gate2_max_turnover_ratio,
    )
    g.check("cost_bps", m.cost_bps <= p.gate2_max_cost_bps, m.cost_bps, p.gate2_max_cost_bps)
    g.check(
        "fragility_score",
        s.fragility_score <= p.gate2_max_fragility_score,
        s.fragility_score,
        p.gate2_max_fragility_score,
    )
    g.check(
        "fragility_state_rank",
        s.fragility_state_rank <= p.gate2_max_fragility_state_rank,
        s.fragility_state,
        p.gate2_max_fragility_state_rank,
    )
    if p.gate2_require_stability_mode_under_stress:
        # stable under stress: every stress case keeps its drawdown within the risk limit
        g.check(
            "stability_under_stress",
            s.case_count > 0 and s.stressed_max_drawdown <= p.gate2_max_drawdown,
            s.stressed_max_drawdown,
            p.gate2_max_drawdown,
        )
    if i.tca is not None and i.tca.order_count > 0:
        t = i.tca
        g.check(
            "tca_slippage_bps",
            t.avg_slippage_bps <= p.gate2_max_tca_slippage_bps,
            t.avg_slippage_bps,
            p.gate2_max_tca_slippage_bps,
        )
        g.check(
            "tca_shortfall_notional",
            t.avg_shortfall_notional <= p.gate2_max_tca_shortfall_notional,
            t.avg_shortfall_notional,
            p.gate2_max_tca_shortfall_notional,
        )
        g.check(
            "tca_churn_ratio",
            t.churn_ratio <= p.gate2_max_tca_churn_ratio,
            t.churn_ratio,
            p.gate2_max_tca_churn_ratio,
        )
    return g


def gate3(i: GateInputs, p: GatePolicy) -> GateResult:
    g, q = GateResult("gate3", "shadow_paper_quality"), i.quality
    if not q.llm_used:
        g.details["llm_error_ratio"] = {"value": None, "passed": True, "note": NOT_APPLICABLE}
    else:
        ratio = q.llm_errors / q.llm_reviews if q.llm_reviews else None
        g.check(
            "llm_error_ratio",
            _le(ratio, p.gate3_max_llm_error_ratio),
            ratio,
            p.gate3_max_llm_error_ratio,
        )
    if not q.forecast_used:
        for name in (
            "forecast_fallback_rate",
            "forecast_latency_ms_p95",
            "forecast_calibration_score",
        ):
            g.details[name] = {"value": None, "passed": True, "note": NOT_APPLICABLE}
        return g
    g.check(
        "forecast_fallback_rate",
        _le(q.forecast_fallback_rate, p.gate3_max_forecast_fallback_rate),
        q.forecast_fallback_rate,
        p.gate3_max_forecast_fallback_rate,
    )
    g.check(
        "forecast_latency_ms_p95",
        _le(q.forecast_latency_ms_p95, p.gate3_max_forecast_latency_ms_p95),
        q.forecast_latency_ms_p95,
        p.gate3_max_forecast_latency_ms_p95,
    )
    score = q.forecast_calibration_score
    g.check(
        "forecast_calibration_score",
        score is not None and score >= p.gate3_min_forecast_calibration_score,
        score,
        p.gate3_min_forecast_calibration_score,
    )
    return g


def gate4(i: GateInputs, p: GatePolicy) -> GateResult:
    g, r = GateResult("gate4", "operational_readiness"), i.readiness
    g.check("operational_ready", r.operational_ready, r.operational_ready, True)
    g.check("runbook_validated", r.runbook_validated, r.runbook_validated, True)
    g.check("kill_switch_dry_run", r.kill_switch_dry_run, r.kill_switch_dry_run, True)
    g.check("rollback_dry_run", r.rollback_dry_run, r.rollback_dry_run, True)
    return g


def gate5(i: GateInputs, p: GatePolicy, target: str) -> GateResult:
    g = GateResult("gate5", "live_ramp")
    if target != "live":
        g.status = SKIPPED
        return g
    g.check("live_enabled", p.gate5_live_enabled, p.gate5_live_enabled, True)
    if p.gate5_require_approval_token:
        g.check("approval_token", i.approval_token_ok, i.approval_token_ok, True)
    # what only the live record can show, checked when a human promotes to live
    g.details["at_promotion"] = {
        "clean_replay_sessions_required": p.promotion_live_min_clean_replay_sessions,
        "max_fill_haircut_bps": p.promotion_live_max_fill_haircut_bps,
    }
    return g


def gate6(i: GateInputs, p: GatePolicy, target: str) -> GateResult:
    g = GateResult("gate6", "profitability_evidence")
    if target == "shadow":
        g.status = SKIPPED
        return g
    b, e, v = i.benchmark, i.evidence, i.validation
    if p.gate6_require_evidence:
        g.check(
            "evidence_schema",
            e.get("schema_version") == "profitability-evidence-v4",
            e.get("schema_version"),
            "profitability-evidence-v4",
        )
        g.check(
            "benchmark_schema",
            b.get("schema_version") == "profitability-benchmark-v4",
            b.get("schema_version"),
            "profitability-benchmark-v4",
        )
        g.check("validation_passed", bool(v.get("passed")), v.get("reasons", []), True)
    delta = b.get("market_net_pnl_delta")
    g.check(
        "market_net_pnl_delta",
        delta is not None and delta >= p.gate6_min_market_net_pnl_delta,
        delta,
        p.gate6_min_market_net_pnl_delta,
    )
    ratio = b.get("regime_slice_pass_ratio", 0.0)
    g.check(
        "regime_slice_pass_ratio",
        ratio >= p.gate6_min_regime_slice_pass_ratio,
        ratio,
        p.gate6_min_regime_slice_pass_ratio,
    )
    risk = e.get("risk_adjusted", {})
    rod = risk.get("return_over_drawdown")
    rod_ok = (
        rod >= p.gate6_min_return_over_drawdown if rod is not None else risk.get("net_pnl", -1) >= 0
    )
    g.check("return_over_drawdown", rod_ok, rod, p.gate6_min_return_over_drawdown)
    cost = e.get("cost_fill_realism", {}).get("cost_bps")
    g.check("cost_bps", _le(cost, p.gate6_max_cost_bps), cost, p.gate6_max_cost_bps)
    hashes = len(e.get("reproducibility", {}).get("hashes", {}))
    g.check(
        "reproducibility_hashes",
        hashes >= p.gate6_min_reproducibility_hashes,
        hashes,
        p.gate6_min_reproducibility_hashes,
    )
    if p.gate6_max_calibration_error is not None:
        err = e.get("confidence_calibration", {}).get("error")
        g.check(
            "calibration_error",
            _le(err, p.gate6_max_calibration_error),
            err,
            p.gate6_max_calibration_error,
        )
    return g


def uncertainty_action(u: UncertaintyEstimate | None, p: GatePolicy) -> tuple[str, list[str]]:
    """(action, reasons) of gate 7's ladder (docs/compatibility.md#gate-matrix); `pass` when gate 7
    is not configured."""
    if not p.gate7_configured:
        return "pass", []
    if u is None or u.reason or u.coverage_error is None or u.shift_score is None:
        return "abstain", [f"uncertainty_inputs:{(u.reason if u else '') or 'missing'}"]
    cov, shift, width = u.coverage_error, u.shift_score, u.interval_width_ratio or 0.0
    if shift >= p.gate7_shift_score_fail:
        return "fail", ["shift_score_fail"]
    if (
        cov > p.gate7_coverage_error_abstain
        or shift >= p.gate7_shift_score_abstain
        or (width > p.gate7_interval_width_degrade)
    ):
        return "abstain", ["uncertainty_abstain"]
    if (
        cov > p.gate7_coverage_error_degrade
        or shift >= p.gate7_shift_score_degrade
        or (width > p.gate7_interval_width_pass)
    ):
        return "degrade", ["uncertainty_degrade"]
    if cov > p.gate7_coverage_error_pass:
        return "degrade", ["coverage_error_above_pass"]
    return "pass", []


def gate7(i: GateInputs, p: GatePolicy) -> tuple[GateResult, str]:
    g = GateResult("gate7", "uncertainty_calibration")
    action, reasons = uncertainty_action(i.uncertainty, p)
    g.details["action"] = action
    g.details["estimate"] = i.uncertainty.as_dict() if i.uncertainty else None
    if not p.gate7_configured:
        g.status = NOT_CONFIGURED
        return g, action
    if action in ("abstain", "fail"):
        g.status = FAIL
        g.reasons.extend(f"gate7:{r}" for r in reasons)
    elif action == "degrade":
        g.check(
            "recalibration_queued",
            bool(i.recalibration_run_id and i.recalibration_artifact),
            i.recalibration_run_id or None,
            "run id and artifact",
        )
    return g, action


def gate8(i: GateInputs, p: GatePolicy, target: str) -> GateResult:
    """Overfitting: the deflated and probabilistic Sharpe ratios and the CSCV probability of
    backtest overfitting against the policy's thresholds. A configured statistic that could not
    be computed fails (`missing`), except the PBO when only one setting was ever evaluated on the
    candidate's window (nothing was selected there: `not_applicable`)."""
    g = GateResult("gate8", "overfitting")
    o = i.overfitting or {}
    g.details["trial_count"] = o.get("trial_count")
    if not p.gate8_configured:
        g.status = NOT_CONFIGURED
        return g
    if target == "shadow":
        g.status = SKIPPED
        return g
    for field_name, key, is_min in OVERFITTING_CHECKS:
        limit = getattr(p, field_name)
        if limit is None:
            continue
        value = o.get(key)
        if value is None and key == "probability_of_backtest_overfitting":
            if o.get("window_trial_count", 0) < 2 and "trial_count" in o:
                g.details[key] = {"value": None, "passed": True, "note": NOT_APPLICABLE}
                continue
        ok = value is not None and (value >= limit if is_min else value <= limit)
        g.check(key, ok, value, limit)
        if value is None:
            g.reasons[-1] = f"gate8:{key}_missing"
    return g


def evaluate_gate_matrix(inputs: GateInputs, policy: GatePolicy, target: str) -> GateReport:
    if target not in ("shadow", "paper", "live"):
        raise ValueError(f"promotion target must be shadow, paper or live, not {target!r}")
    g7, action = gate7(inputs, policy)
    gates = [
        gate0(inputs, policy),
        gate1(inputs, policy),
        gate2(inputs, policy),
        gate3(inputs, policy),
        gate4(inputs, policy),
        gate5(inputs, policy, target),
        gate6(inputs, policy, target),
        g7,
        gate8(inputs, policy, target),
    ]
    by_name = {g.gate: g for g in gates}
    required_ok = all(by_name[name].status != FAIL for name in REQUIRED_GATES)
    reasons = [r for g in gates for r in g.reasons]
    if not required_ok:
        recommended, allowed = "shadow", False
    elif target == "live":
        recommended = "live" if by_name["gate5"].status == PASS else "paper"
        allowed = True
    else:
        recommended, allowed = target, True
    return GateReport(
        policy_version=policy.policy_version,
        promotion_target=target,
        gates=gates,
        allowed=allowed,
        recommended_mode=recommended,
        uncertainty_action=action,
        reasons=reasons,
    )
