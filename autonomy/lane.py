"""The autonomous lane (§8.2): signals → walk-forward → reports → gates → promotion checks →
paper ConfigMap patch, as a pure computation over its inputs.

`run_lane(inputs, readiness=...)` returns a `LaneOutcome`: every artifact of §8.2 (path → JSON
object, or text for the YAML patch), the gate report, the recommendation, and what the research
ledger records. It touches no database and no file: `autonomy.services.lane` persists the run
and writes the artifacts; the one database-dependent input, operational readiness (dry runs), is
a callback.

Determinism: the run id covers every input that can change an artifact (`autonomy.run_inputs`:
the signals, strategy config and gate policy, target, approval, fold plan, costs, stress and drift
settings, code commit and `ENGINE_VERSION`); artifacts carry no wall-clock time, floats are
rounded by `canonical_json`, so the same inputs and code give byte-identical artifacts (the
readiness dry runs report pass/fail only; their timestamps go to the ledger, not into the
artifacts). `autonomy.services.artifacts` stores them write-once under the run id.

The lane evaluates one candidate: the strategy config must enable exactly one strategy (the
original listed several "runtime strategies" but scored them as one candidate). Its baseline is
`legacy_macd_rsi@1.0.0` with default parameters on the same data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import yaml

from autonomy.drift import DriftThresholds, drift_report, observation_from_evidence
from autonomy.engine.artifacts import canonical, sha256_hex
from autonomy.engine.backtest import (
    BacktestConfig,
    BacktestResult,
    CostModel,
    Sizing,
    simulate,
    strategy_actions,
)
from autonomy.engine.data import BarFrame, frame_from_rows, ns_to_datetime
from autonomy.engine.progress import Progress, no_progress
from autonomy.engine.stress import StressReport, StressSettings, run_stress
from autonomy.engine.walkforward import Fold, WalkForwardResult, make_folds, walk_forward
from autonomy.evidence import (
    confidence_calibration,
    profitability_benchmark,
    profitability_evidence,
    regime_labels,
    row_pnl,
    uncertainty_estimate,
    validate_evidence,
)
from autonomy.gates import (
    DataIntegrity,
    GateInputs,
    GateReport,
    PerformanceSummary,
    QualityEvidence,
    Readiness,
    StressSummary,
    evaluate_gate_matrix,
)
from autonomy.policy import GatePolicy
from autonomy.run_inputs import RunInputs, run_id_for, run_inputs
from trading.services.catalog import CatalogError, parse_catalog
from trading.signals.types import SignalEnvelope
from trading.strategies.registry import get_strategy

BASELINE_TYPE = "legacy_macd_rsi"
BASELINE = f"{BASELINE_TYPE}@1.0.0"
SINGLE_FOLD = "autonomous_lane"
PATCH_MAX_NOTIONAL = 250
PATCH_MAX_POSITION_PCT = 0.025
CONFIGMAP_NAME = "torghut-strategy-config"
CONFIGMAP_NAMESPACE = "torghut"
ANNOTATION_PREFIX = "torghut.proompteng.ai"

WALKFORWARD = "backtest/walkforward-results.json"
EVALUATION = "backtest/evaluation-report.json"
BASELINE_REPORT = "backtest/baseline-evaluation-report.json"
BENCHMARK = "gates/profitability-benchmark-v4.json"
EVIDENCE = "gates/profitability-evidence-v4.json"
VALIDATION = "gates/profitability-evidence-validation.json"
RECALIBRATION = "gates/recalibration-report.json"
GATE_EVALUATION = "gates/gate-evaluation.json"
CANDIDATE_SPEC = "research/candidate-spec.json"
PREREQUISITES = "gates/promotion-prerequisites.json"
ROLLBACK_READINESS = "gates/rollback-readiness.json"
PROMOTION_GATE = "gates/promotion-evidence-gate.json"
PAPER_PATCH = "paper-candidate/strategy-configmap-patch.yaml"
NO_SIGNAL = "research/no-signal-window.json"


class LaneInputError(ValueError):
    """The lane's inputs cannot be evaluated (bad strategy config, unknown strategy type...)."""


@dataclass(frozen=True)
class LaneInputs:
    signal_rows: Sequence[Mapping[str, Any]]
    signals_bytes: bytes
    strategy_config_bytes: bytes
    gate_policy: GatePolicy
    gate_policy_bytes: bytes
    promotion_target: str = "paper"
    approval_token_ok: bool = False
    folds: int = 1
    costs: CostModel = field(default_factory=CostModel)
    starting_cash: float = 100_000.0
    default_qty: float = 1.0
    stress: StressSettings = field(default_factory=StressSettings)
    code_commit: str = ""
    signal_source: str = "file"
    drift: DriftThresholds = field(default_factory=DriftThresholds)


@dataclass(frozen=True)
class CandidateSpec:
    """The one strategy the lane evaluates (a strategy-catalog entry)."""

    name: str
    strategy_type: str
    version: str
    base_timeframe: str
    params: Mapping[str, Any]
    universe_symbols: tuple[str, ...]
    priority: int
    max_notional_per_trade: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "strategy_type": self.strategy_type,
            "version": self.version,
            "base_timeframe": self.base_timeframe,
            "params": dict(self.params),
            "universe_symbols": list(self.universe_symbols),
            "priority": self.priority,
            "max_notional_per_trade": self.max_notional_per_trade,
        }


@dataclass(frozen=True)
class FoldRecord:
    name: str
    order: int
    test_from: str
    test_to: str
    train_from: str | None
    train_to: str | None
    metrics: Mapping[str, Any]


@dataclass
class LaneOutcome:
    run_id: str
    candidate_id: str
    status: str  # passed | failed | skipped
    promotion_target: str
    recommended_mode: str
    candidate: CandidateSpec | None
    candidate_hash: str
    artifacts: dict[str, Any]  # path -> JSON-ready object, or str (YAML)
    gate_report: GateReport | None = None
    recommendation: dict[str, Any] = field(default_factory=dict)
    folds: list[FoldRecord] = field(default_factory=list)
    stress: StressReport | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    equity_curve: list[list[Any]] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    dataset_from: str | None = None
    dataset_to: str | None = None
    gate_trace_id: str = ""
    recommendation_trace_id: str = ""

    @property
    def eligible(self) -> bool:
        return bool(self.recommendation.get("eligible"))


ReadinessProbe = Callable[[CandidateSpec], Readiness]


def lane_run_inputs(inputs: LaneInputs) -> RunInputs:
    """Everything in `inputs` that can change an artifact, as the run id's record."""
    return run_inputs(
        code_commit=inputs.code_commit,
        signals_bytes=inputs.signals_bytes,
        signal_rows=inputs.signal_rows,
        signal_source=inputs.signal_source,
        strategy_config_bytes=inputs.strategy_config_bytes,
        gate_policy_bytes=inputs.gate_policy_bytes,
        promotion_target=inputs.promotion_target,
        approval_valid=inputs.approval_token_ok,
        folds=inputs.folds,
        costs=inputs.costs,
        starting_cash=inputs.starting_cash,
        default_qty=inputs.default_qty,
        stress=inputs.stress,
        drift=inputs.drift,
    )


def lane_run_id(inputs: LaneInputs) -> str:
    return run_id_for(lane_run_inputs(inputs))


def candidate_from_config(raw: bytes) -> CandidateSpec:
    try:
        entries = parse_catalog(raw.decode("utf-8"))
    except (CatalogError, UnicodeDecodeError) as exc:
        raise LaneInputError(f"strategy config: {exc}") from exc
    enabled = [e for e in entries if e["enabled"]]
    if len(enabled) != 1:
        names = ", ".join(e["name"] for e in enabled) or "none"
        raise LaneInputError(
            f"strategy config: the lane evaluates one candidate strategy; {len(enabled)} are "
            f"enabled ({names})"
        )
    e = enabled[0]
    try:
        get_strategy(e["strategy_type"])
    except KeyError as exc:
        raise LaneInputError(f"strategy config: {exc}") from exc
    budget = e["max_notional_per_trade"]
    return CandidateSpec(
        name=e["name"],
        strategy_type=e["strategy_type"],
        version=e["version"],
        base_timeframe=e["base_timeframe"],
        params=dict(e["params"]),
        universe_symbols=tuple(e["universe_symbols"]),
        priority=e["priority"],
        max_notional_per_trade=float(budget) if budget is not None else None,
    )


def _iso(ns: int) -> str:
    return ns_to_datetime(ns).isoformat()


def _fold_plan(n: int, folds: int) -> tuple[list[Fold], bool]:
    """(folds, single): one fold over every row when `folds` is 1 or the data is too short for
    rolling folds with a train window each."""
    if folds <= 1 or n < 2 * (folds + 1):
        return make_folds(n, n_folds=1, train_bars=0), True
    return make_folds(n, n_folds=folds, train_bars=n // (folds + 1), mode="rolling"), False


def _fold_records(frame: BarFrame, wf: WalkForwardResult, single: bool) -> list[FoldRecord]:
    out = []
    for f in wf.folds:
        fold = f.fold
        has_train = fold.train_stop > fold.train_start
        out.append(
            FoldRecord(
                name=SINGLE_FOLD if single else fold.name,
                order=fold.index,
                test_from=f.test_from,
                test_to=f.test_to,
                train_from=_iso(int(frame.ts[fold.train_start])) if has_train else None,
                train_to=_iso(int(frame.ts[fold.train_stop - 1])) if has_train else None,
                metrics=f.metrics.as_dict(),
            )
        )
    return out


def _data_integrity(signals: Sequence[SignalEnvelope], invalid: int) -> DataIntegrity:
    total = len(signals) + invalid
    staleness = [(s.ingest_ts - s.event_ts).total_seconds() * 1000 for s in signals if s.ingest_ts]
    keys = {(s.event_ts, s.symbol, s.seq) for s in signals}
    return DataIntegrity(
        schema_versions=tuple(sorted({s.feature_schema_version for s in signals})),
        null_rate=invalid / total if total else 0.0,
        staleness_ms_p95=float(np.percentile(staleness, 95)) if staleness else None,
        symbol_count=len({s.symbol for s in signals}),
        duplicate_rate=(len(signals) - len(keys)) / len(signals) if signals else 0.0,
    )


def _confidences(
    signals: Sequence[SignalEnvelope], actions: np.ndarray, spec: CandidateSpec
) -> np.ndarray:
    plugin = get_strategy(spec.strategy_type)
    out = np.zeros(len(signals))
    for row in np.flatnonzero(actions).tolist():
        intent = plugin.evaluate(signals[row], spec.params)
        out[row] = float(intent.confidence) if intent is not None else 0.0
    return out


def _evaluation_report(
    *,
    run_id: str,
    candidate_id: str,
    strategy: str,
    result: BacktestResult,
    wf: WalkForwardResult,
    stress: StressReport | None,
    costs: CostModel,
    frame: BarFrame,
) -> dict[str, Any]:
    m, s = result.metrics, wf.summary
    report: dict[str, Any] = {
        "run_id": run_id,
        "candidate_id": candidate_id,
        "strategy": strategy,
        "decision_count": s.decision_count,
        "trade_count": s.trade_count,
        "gross_pnl": s.gross_pnl,
        "net_pnl": s.net_pnl,
        "total_cost": s.total_cost,
        "max_drawdown": s.max_drawdown,
        "turnover_ratio": s.turnover_ratio,
        "exposure": m.exposure,
        "cost_bps": s.cost_bps,
        "robustness": {
            "fold_count": s.fold_count,
            "negative_fold_ratio": s.negative_fold_ratio,
            "net_pnl_cv": s.net_pnl_cv,
            "net_pnl_mean": s.net_pnl_mean,
        },
        "multiple_testing": {
            "parameter_sets_evaluated": 1,
            "correction": "none: one parameter set, no selection on the test windows",
        },
        "impact_assumptions": {
            "spread_bps": costs.spread_bps,
            "slippage_bps": costs.slippage_bps,
            "impact_bps": costs.impact_bps,
            "fee_bps": costs.fee_bps,
            "fee_per_share": costs.fee_per_share,
            "fill": "next row's price, moved against the taker, tick-rounded",
        },
        "whole_period": m.as_dict(),
        "equity_curve": result.artifact(frame, include_trades=False)["equity_curve"],
    }
    if stress is not None:
        report["stress"] = stress.as_dict()
    return report


def _patch_yaml(spec: CandidateSpec, candidate_id: str) -> str:
    strategy = {
        "name": spec.name,
        "type": spec.strategy_type,
        "version": spec.version,
        "enabled": True,
        "base_timeframe": spec.base_timeframe,
        "priority": spec.priority,
        "universe_symbols": list(spec.universe_symbols),
        "params": dict(spec.params),
        "max_notional_per_trade": PATCH_MAX_NOTIONAL,
        "max_position_pct_equity": PATCH_MAX_POSITION_PCT,
    }
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": CONFIGMAP_NAME,
            "namespace": CONFIGMAP_NAMESPACE,
            "annotations": {
                f"{ANNOTATION_PREFIX}/candidate-id": candidate_id,
                f"{ANNOTATION_PREFIX}/recommended-mode": "paper",
            },
        },
        "data": {
            "strategies.yaml": yaml.safe_dump(
                {"strategies": [canonical(strategy)]}, sort_keys=True, default_flow_style=False
            )
        },
    }
    return yaml.safe_dump(configmap, sort_keys=True, default_flow_style=False)


def skipped_outcome(inputs: LaneInputs, reason: str = "no_signals") -> LaneOutcome:
    run_id = lane_run_id(inputs)
    candidate_id = f"cand-{run_id[:12]}"
    artifact = {
        "run_id": run_id,
        "candidate_id": candidate_id,
        "status": "skipped",
        "reason": reason,
        "signal_rows": len(inputs.signal_rows),
        "recommended_mode": "shadow",
    }
    return LaneOutcome(
        run_id=run_id,
        candidate_id=candidate_id,
        status="skipped",
        promotion_target=inputs.promotion_target,
        recommended_mode="shadow",
        candidate=None,
        candidate_hash="",
        artifacts={NO_SIGNAL: artifact},
        recommendation={"action": "hold", "eligible": False, "reasons": [reason]},
    )


def run_lane(
    inputs: LaneInputs, *, readiness: ReadinessProbe, progress: Progress = no_progress
) -> LaneOutcome:
    if inputs.promotion_target not in ("shadow", "paper", "live"):
        raise LaneInputError(
            f"promotion target must be shadow, paper or live, not {inputs.promotion_target!r}"
        )
    spec = candidate_from_config(inputs.strategy_config_bytes)
    policy = inputs.gate_policy
    run_id = lane_run_id(inputs)
    candidate_id = f"cand-{run_id[:12]}"
    parsed = frame_from_rows(
        inputs.signal_rows, source=inputs.signal_source, timeframe=spec.base_timeframe
    )
    signals, frame = parsed.signals, parsed.frame
    if spec.universe_symbols:
        keep = np.flatnonzero(
            np.isin(np.asarray(frame.symbols)[frame.symbol], list(spec.universe_symbols))
        )
        frame = frame.take(keep)
        signals = [signals[i] for i in keep.tolist()]
    if len(frame) == 0:
        return skipped_outcome(inputs)
    total_steps = 6
    progress(0, total_steps, "replay")

    plugin = get_strategy(spec.strategy_type)
    baseline_plugin = get_strategy(BASELINE_TYPE)
    sizing = (
        Sizing(max_notional_per_trade=spec.max_notional_per_trade)
        if spec.max_notional_per_trade is not None
        else Sizing(qty=inputs.default_qty)
    )
    config = BacktestConfig(costs=inputs.costs, sizing=sizing, starting_cash=inputs.starting_cash)
    folds, single = _fold_plan(len(frame), inputs.folds)
    wf = walk_forward(
        frame,
        plugin,
        folds=folds,
        param_grid=[spec.params],
        config=config,
        mode="single" if single else "rolling",
    )
    base_wf = walk_forward(
        frame,
        baseline_plugin,
        folds=folds,
        param_grid=[{}],
        config=config,
        mode="single" if single else "rolling",
    )
    actions = strategy_actions(frame, plugin, spec.params)
    result = simulate(frame, actions, config)
    base_result = simulate(frame, strategy_actions(frame, baseline_plugin, {}), config)
    progress(1, total_steps, "walk-forward")
    stress = run_stress(frame, plugin, spec.params, config=config, settings=inputs.stress)
    progress(2, total_steps, "stress")

    candidate_hash = sha256_hex(
        {
            "strategy": spec.as_dict(),
            "costs": inputs.costs,
            "sizing": sizing,
            "starting_cash": inputs.starting_cash,
        }
    )
    strategy_label = f"{spec.strategy_type}@{spec.version}"
    folds_out = _fold_records(frame, wf, single)
    wf_artifact = {
        "run_id": run_id,
        "candidate_id": candidate_id,
        "strategy": strategy_label,
        "mode": wf.mode,
        "folds": [
            {
                "fold_name": r.name,
                "fold_order": r.order,
                "test_from": r.test_from,
                "test_to": r.test_to,
                "train_from": r.train_from,
                "train_to": r.train_to,
                "metrics": r.metrics,
            }
            for r in folds_out
        ],
        "summary": wf.summary.as_dict(),
        "baseline": {"strategy": BASELINE, "summary": base_wf.summary.as_dict()},
    }
    evaluation = _evaluation_report(
        run_id=run_id,
        candidate_id=candidate_id,
        strategy=strategy_label,
        result=result,
        wf=wf,
        stress=stress,
        costs=inputs.costs,
        frame=frame,
    )
    baseline_report = _evaluation_report(
        run_id=run_id,
        candidate_id=candidate_id,
        strategy=BASELINE,
        result=base_result,
        wf=base_wf,
        stress=None,
        costs=inputs.costs,
        frame=frame,
    )
    hashes = {
        "signals": hashlib.sha256(inputs.signals_bytes).hexdigest(),
        "strategy_config": hashlib.sha256(inputs.strategy_config_bytes).hexdigest(),
        "gate_policy": hashlib.sha256(inputs.gate_policy_bytes).hexdigest(),
        "walkforward_results": sha256_hex(wf_artifact),
        "evaluation_report": sha256_hex(evaluation),
        "baseline_evaluation_report": sha256_hex(baseline_report),
    }
    labels = regime_labels(frame)
    benchmark = {
        "run_id": run_id,
        **profitability_benchmark(
            candidate=result,
            baseline=base_result,
            labels=labels,
            starting_cash=inputs.starting_cash,
            min_delta=policy.gate6_min_market_net_pnl_delta,
            baseline_name=BASELINE,
        ),
    }
    calibration = confidence_calibration(frame, actions, _confidences(signals, actions, spec))
    evidence = {
        "run_id": run_id,
        **profitability_evidence(
            result=result,
            starting_cash=inputs.starting_cash,
            cost_model=canonical(inputs.costs),
            calibration=calibration,
            hashes=hashes,
        ),
    }
    validation = {"run_id": run_id, **validate_evidence(evidence, benchmark)}
    progress(3, total_steps, "evidence")

    uncertainty = None
    if policy.gate7_configured:
        assert policy.gate7_target_coverage is not None
        returns = row_pnl(result, inputs.starting_cash) / inputs.starting_cash
        uncertainty = uncertainty_estimate(
            returns,
            folds,
            target_coverage=policy.gate7_target_coverage,
            min_samples=policy.gate7_min_samples,
        )
    recal_run_id = sha256_hex({"run_id": run_id, "purpose": "recalibration"})[:24]
    data = _data_integrity(signals, parsed.invalid_rows)
    s = wf.summary
    perf = PerformanceSummary(
        decision_count=s.decision_count,
        trade_count=s.trade_count,
        net_pnl=s.net_pnl,
        negative_fold_ratio=s.negative_fold_ratio,
        net_pnl_cv=s.net_pnl_cv,
        max_drawdown=s.max_drawdown,
        turnover_ratio=s.turnover_ratio,
        cost_bps=s.cost_bps,
        fold_count=s.fold_count,
    )
    ready = readiness(spec)
    gate_inputs = GateInputs(
        data=data,
        performance=perf,
        stress=StressSummary(
            case_count=len(stress.cases),
            fragility_score=stress.fragility_score,
            fragility_state=stress.fragility_state,
            fragility_state_rank=stress.fragility_state_rank,
            stressed_max_drawdown=max((c.metrics.max_drawdown for c in stress.cases), default=0.0),
        ),
        quality=QualityEvidence(llm_used=False, forecast_used=False),
        readiness=ready,
        benchmark=benchmark,
        evidence=evidence,
        validation=validation,
        uncertainty=uncertainty,
        recalibration_run_id=recal_run_id,
        recalibration_artifact=RECALIBRATION,
        approval_token_ok=inputs.approval_token_ok,
    )
    report = evaluate_gate_matrix(gate_inputs, policy, inputs.promotion_target)
    progress(4, total_steps, "gates")
    recalibration = {
        "run_id": run_id,
        "status": "not_required" if report.uncertainty_action == "pass" else "queued",
        "uncertainty_action": report.uncertainty_action,
        "recalibration_run_id": "" if report.uncertainty_action == "pass" else recal_run_id,
        "estimate": uncertainty.as_dict() if uncertainty else None,
    }
    gate_eval = {
        "run_id": run_id,
        "candidate_id": candidate_id,
        **report.as_dict(),
        "throughput": {
            "signal_count": len(signals),
            "invalid_rows": parsed.invalid_rows,
            "decision_count": s.decision_count,
            "trade_count": s.trade_count,
        },
        "promotion_evidence": {
            "fold_count": len(folds_out),
            "folds": [r.name for r in folds_out],
            "stress_case_count": len(stress.cases),
            "stress_cases": [c.case for c in stress.cases],
        },
    }
    gate_trace = sha256_hex(gate_eval)[:24]
    gate_eval["promotion_evidence"]["gate_report_trace_id"] = gate_trace

    artifacts: dict[str, Any] = {
        WALKFORWARD: wf_artifact,
        EVALUATION: evaluation,
        BASELINE_REPORT: baseline_report,
        BENCHMARK: benchmark,
        EVIDENCE: evidence,
        VALIDATION: validation,
        RECALIBRATION: recalibration,
        GATE_EVALUATION: gate_eval,
    }
    # the patch exists while it may be needed; removed below if the recommendation is not eligible
    if report.allowed and report.recommended_mode == "paper":
        artifacts[PAPER_PATCH] = _patch_yaml(spec, candidate_id)

    target = inputs.promotion_target
    needs_patch = target in policy.promotion_require_patch_targets
    required = list(policy.promotion_required_artifacts)
    if target != "shadow":
        required += list(policy.promotion_profitability_required_artifacts)
    present = set(artifacts) | {CANDIDATE_SPEC}
    prereq_checks = {
        "gate0_passed": report.passed("gate0"),
        "gate1_passed": report.passed("gate1"),
        "gate2_passed": report.passed("gate2"),
        "gate7_passed": target == "shadow" or report.passed("gate7"),
        "required_artifacts_present": all(a in present for a in required),
        "patch_present": not needs_patch
        or PAPER_PATCH in artifacts
        or report.recommended_mode == "live",
        "throughput": len(signals) >= 1 and s.decision_count >= 1 and s.trade_count >= 0,
        "signal_window_present": True,
        "run_ids_match": all(
            a.get("run_id") == run_id for a in artifacts.values() if isinstance(a, dict)
        ),
        "profitability_validation_passed": target == "shadow" or bool(validation["passed"]),
        "benchmark_regime_coverage": target == "shadow" or benchmark["regime_slice_count"] >= 1,
    }
    prerequisites: dict[str, Any] = {
        "run_id": run_id,
        "candidate_id": candidate_id,
        "promotion_target": target,
        "required_artifacts": required,
        "checks": prereq_checks,
        "passed": all(prereq_checks.values()),
        "reasons": sorted(k for k, ok in prereq_checks.items() if not ok),
    }
    ready_checks = {
        "killSwitchDryRunPassed": ready.kill_switch_dry_run,
        "gitopsRevertDryRunPassed": ready.rollback_dry_run,
        "strategyDisableDryRunPassed": bool(ready.details.get("strategy_disable_dry_run")),
    }
    rollback_checks = {name: ready_checks[name] for name in policy.rollback_required_checks}
    rollback_target = str(ready.details.get("rollback_target") or "")
    rollback = {
        "run_id": run_id,
        "candidate_id": candidate_id,
        "checks": rollback_checks,
        "dry_run_age_hours": 0,
        "dry_run_max_age_hours": policy.rollback_dry_run_max_age_hours,
        "rollback_target": rollback_target,
        # the lane cannot hold a human approval: the promotion action requires and records it
        "human_approval": (
            "required_at_promotion" if policy.rollback_require_human_approval else "not_required"
        ),
        "passed": all(rollback_checks.values()) and bool(rollback_target),
    }
    drift = drift_report(
        observation_from_evidence(
            data=data,
            net_pnl=perf.net_pnl,
            drawdown_pct=result.metrics.max_drawdown_pct,
            cost_bps=perf.cost_bps,
            evidence=evidence,
        ),
        inputs.drift,
    )
    evidence_ok = len(folds_out) >= 1 and len(stress.cases) >= 1
    eligible = (
        report.allowed
        and prerequisites["passed"]
        and rollback["passed"]
        and evidence_ok
        and (report.recommended_mode != "live" or drift["live_promotion_eligible"])
    )
    failed_gates = [g.gate for g in report.gates if g.status == "fail"]
    action = "promote" if eligible else ("deny" if failed_gates else "hold")
    rationale = (
        f"{strategy_label} on {len(signals)} signals, {len(folds_out)} fold(s), "
        f"{len(stress.cases)} stress case(s): net pnl {round(s.net_pnl, 4)}, "
        f"gates {'passed' if report.allowed else 'failed: ' + ', '.join(failed_gates)}; "
        f"recommended {report.recommended_mode}"
    )
    recommendation: dict[str, Any] = {
        "action": action,
        "eligible": eligible,
        "recommended_mode": report.recommended_mode,
        "promotion_target": target,
        "rationale": rationale,
        "reasons": report.reasons
        + [f"prerequisite:{r}" for r in prerequisites["reasons"]]
        + ([] if rollback["passed"] else ["rollback_not_ready"]),
        "gate_report_trace_id": gate_trace,
    }
    recommendation_trace = sha256_hex(recommendation)[:24]
    recommendation["trace_id"] = recommendation_trace
    promotion_gate = {
        "run_id": run_id,
        "candidate_id": candidate_id,
        "gates_allowed": report.allowed,
        "prerequisites_passed": prerequisites["passed"],
        "rollback_ready": rollback["passed"],
        "evidence": {
            "fold_count": len(folds_out),
            "stress_case_count": len(stress.cases),
            "rationale": rationale,
            "passed": evidence_ok,
        },
        "drift": drift,
        "recommendation": recommendation,
    }
    if not eligible:
        artifacts.pop(PAPER_PATCH, None)
    artifacts[PREREQUISITES] = prerequisites
    artifacts[ROLLBACK_READINESS] = rollback
    artifacts[PROMOTION_GATE] = promotion_gate
    artifacts[CANDIDATE_SPEC] = {
        "run_id": run_id,
        "candidate_id": candidate_id,
        "candidate_hash": candidate_hash,
        "bounded_llm": {"enabled": False, "actuation_allowed": False},
        "runtime_errors": [],
        "runtime_strategies": [spec.as_dict()],
        "baseline": BASELINE,
        "artifacts": sorted([*artifacts, CANDIDATE_SPEC]),
        "promotion_recommendation": recommendation,
        "code_commit": inputs.code_commit,
    }
    progress(total_steps, total_steps, "artifacts")
    return LaneOutcome(
        run_id=run_id,
        candidate_id=candidate_id,
        status="passed" if report.allowed else "failed",
        promotion_target=target,
        recommended_mode=report.recommended_mode,
        candidate=spec,
        candidate_hash=candidate_hash,
        artifacts=artifacts,
        gate_report=report,
        recommendation=recommendation,
        folds=folds_out,
        stress=stress,
        metrics={**wf.summary.as_dict(), "whole_period": result.metrics.as_dict()},
        equity_curve=evaluation["equity_curve"],
        symbols=sorted({sig.symbol for sig in signals}),
        dataset_from=signals[0].event_ts.isoformat(),
        dataset_to=signals[-1].event_ts.isoformat(),
        gate_trace_id=gate_trace,
        recommendation_trace_id=recommendation_trace,
    )
