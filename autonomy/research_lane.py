"""The research lane (docs/compatibility.md#autonomous-lane; not an account lane, `trading.lanes`):
signals → walk-forward → reports → gates → promotion checks → paper ConfigMap patch, as a pure
computation over its inputs.

`run_lane(inputs, readiness=...)` returns a `LaneOutcome`: every artifact of
docs/compatibility.md#autonomous-lane (path → JSON object, or text for the YAML patch), the gate
report, the recommendation, and what the research ledger records. It touches no database and no
file: `autonomy.services.research_lane` persists the run and writes the artifacts; the one
database-dependent input, operational readiness (dry runs), is a callback.

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

from autonomy.engine.artifacts import canonical, sha256_hex
from autonomy.engine.backtest import BacktestResult, CostModel, simulate, strategy_actions
from autonomy.engine.data import BarFrame, ParsedFrame, frame_from_rows
from autonomy.engine.portfolio import Leg, leg_actions
from autonomy.engine.progress import Progress, no_progress
from autonomy.engine.stress import StressReport
from autonomy.engine.walkforward import Fold, WalkForwardResult, walk_forward
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
from autonomy.lane_book import (
    base_config,
    book_confidences,
    book_legs,
    book_overfitting,
    book_run,
    book_stress,
    book_walk_forward,
    fold_plan,
    iso_time,
    keep_symbols,
    member_trial,
)
from autonomy.lane_inputs import (
    CandidateBook,
    LaneInputError,
    LaneInputs,
    book_from_config,
    lane_run_id,
)
from autonomy.promotion_checks import PromotionChecks, RunFacts, promotion_checks
from autonomy.trials import Trial
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

# the overfitting statistics stored at the top of the profitability evidence (issue #21)
OVERFITTING_KEYS = (
    "deflated_sharpe_ratio",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "trial_count",
)

# progress steps of a run: replay, walk-forward, stress, evidence, gates, artifacts
TOTAL_STEPS = 6


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
    candidate: CandidateBook | None
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
    trials: list[Trial] = field(default_factory=list)  # for the trial registry

    @property
    def eligible(self) -> bool:
        return bool(self.recommendation.get("eligible"))


ReadinessProbe = Callable[[CandidateBook], Readiness]


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
                train_from=iso_time(int(frame.ts[fold.train_start])) if has_train else None,
                train_to=iso_time(int(frame.ts[fold.train_stop - 1])) if has_train else None,
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
    multiple_testing: Mapping[str, Any],
    members: Mapping[str, Any] | None = None,
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
        "multiple_testing": dict(multiple_testing),
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
    if members:
        report["members"] = dict(members)  # each strategy's own book, whole period
    return report


def _patch_yaml(book: CandidateBook, candidate_id: str) -> str:
    strategies = [
        canonical(
            {
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
        )
        for spec in book.specs
    ]
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
                {"strategies": strategies}, sort_keys=True, default_flow_style=False
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


@dataclass(frozen=True)
class _Backtests:
    """Step 1's results: the candidate (a book) and the baseline over the same frame and folds,
    and each member alone as a trial."""

    legs: tuple[Leg, ...]
    leg_actions: tuple[Any, ...]  # each member's action per row (int8 arrays)
    folds: list[Fold]
    single: bool
    wf: WalkForwardResult
    base_wf: WalkForwardResult
    actions: Any  # the book's action per row (int8 array): the members' summed direction
    result: BacktestResult
    base_result: BacktestResult
    stress: StressReport
    member_metrics: dict[str, Any]  # each member's own book over the whole period
    trials: list[Trial]


@dataclass(frozen=True)
class _Reports:
    """Step 2's results: the backtest reports and the profitability evidence."""

    candidate_hash: str
    strategy_label: str
    folds_out: list[FoldRecord]
    walkforward: dict[str, Any]
    evaluation: dict[str, Any]
    baseline_report: dict[str, Any]
    benchmark: dict[str, Any]
    evidence: dict[str, Any]
    validation: dict[str, Any]
    overfitting: dict[str, Any]


def _replay(
    inputs: LaneInputs, book: CandidateBook
) -> tuple[ParsedFrame, list[SignalEnvelope], BarFrame]:
    """The signals as the live path parses them, kept to the candidate's universe."""
    parsed = frame_from_rows(
        inputs.signal_rows, source=inputs.signal_source, timeframe=book.base_timeframe
    )
    keep = keep_symbols(parsed.frame, book.universe_symbols)
    if keep.shape[0] == len(parsed.frame):
        return parsed, list(parsed.signals), parsed.frame
    return parsed, [parsed.signals[i] for i in keep.tolist()], parsed.frame.take(keep)


def _backtests(
    inputs: LaneInputs,
    book: CandidateBook,
    parsed: ParsedFrame,
    frame: BarFrame,
    ids: tuple[str, str],
    progress: Progress,
) -> _Backtests:
    """Step 1: walk-forward and whole-period runs of the book and the baseline, the book's
    stress cases, and each member's own trial (`autonomy.lane_book`)."""
    baseline_plugin = get_strategy(BASELINE_TYPE)
    legs = book_legs(inputs, book)
    acts = tuple(leg_actions(frame, leg) for leg in legs)
    config = base_config(inputs, legs)
    folds, single = fold_plan(len(frame), inputs.folds)
    mode = "single" if single else "rolling"
    wf = book_walk_forward(inputs, frame, legs, acts, folds, mode)
    base_wf = walk_forward(
        frame, baseline_plugin, folds=folds, param_grid=[{}], config=config, mode=mode
    )
    run = book_run(inputs, frame, legs, config, acts)
    base_result = simulate(frame, strategy_actions(frame, baseline_plugin, {}), config)
    progress(1, TOTAL_STEPS, "walk-forward")
    stress = book_stress(inputs, frame, legs)
    progress(2, TOTAL_STEPS, "stress")
    return _Backtests(
        legs=legs,
        leg_actions=acts,
        folds=folds,
        single=single,
        wf=wf,
        base_wf=base_wf,
        actions=run.result.actions,
        result=run.result,
        base_result=base_result,
        stress=stress,
        member_metrics={name: m.as_dict() for name, m in run.legs.items()},
        trials=[member_trial(inputs, spec, parsed.frame, ids[0]) for spec in book.specs],
    )


def _walkforward_artifact(
    run_id: str, candidate_id: str, label: str, bt: _Backtests, folds_out: list[FoldRecord]
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "candidate_id": candidate_id,
        "strategy": label,
        "mode": bt.wf.mode,
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
        "summary": bt.wf.summary.as_dict(),
        "baseline": {"strategy": BASELINE, "summary": bt.base_wf.summary.as_dict()},
    }


def _profitability(
    inputs: LaneInputs,
    run_id: str,
    frame: BarFrame,
    signals: Sequence[SignalEnvelope],
    bt: _Backtests,
    hashes: Mapping[str, str],
    overfitting: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The profitability benchmark against the baseline, and the profitability evidence (with
    the overfitting statistics, their four headline numbers at the top level)."""
    benchmark = {
        "run_id": run_id,
        **profitability_benchmark(
            candidate=bt.result,
            baseline=bt.base_result,
            labels=regime_labels(frame),
            starting_cash=inputs.starting_cash,
            min_delta=inputs.gate_policy.gate6_min_market_net_pnl_delta,
            baseline_name=BASELINE,
        ),
    }
    confidences = book_confidences(signals, bt.legs, bt.leg_actions, bt.actions)
    calibration = confidence_calibration(frame, bt.actions, confidences)
    evidence = {
        "run_id": run_id,
        **profitability_evidence(
            result=bt.result,
            starting_cash=inputs.starting_cash,
            cost_model=canonical(inputs.costs),
            calibration=calibration,
            hashes=hashes,
        ),
        **{key: overfitting[key] for key in OVERFITTING_KEYS},
        "overfitting": dict(overfitting),
    }
    return benchmark, evidence


def _reports(
    inputs: LaneInputs,
    book: CandidateBook,
    ids: tuple[str, str],
    frame: BarFrame,
    signals: Sequence[SignalEnvelope],
    bt: _Backtests,
) -> _Reports:
    """Step 2: the walk-forward results, the evaluation reports (candidate and baseline), and
    the profitability benchmark, evidence and its validation."""
    run_id, candidate_id = ids
    candidate_hash = sha256_hex(
        {
            "strategy": book.as_dict(),
            "costs": inputs.costs,
            "sizing": [leg.sizing for leg in bt.legs],
            "starting_cash": inputs.starting_cash,
            "allocator": inputs.allocator,
        }
    )
    label = book.label
    overfitting = book_overfitting(inputs, book, bt.trials)
    folds_out = _fold_records(frame, bt.wf, bt.single)
    wf_artifact = _walkforward_artifact(run_id, candidate_id, label, bt, folds_out)
    evaluation = _evaluation_report(
        run_id=run_id,
        candidate_id=candidate_id,
        strategy=label,
        result=bt.result,
        wf=bt.wf,
        stress=bt.stress,
        costs=inputs.costs,
        frame=frame,
        multiple_testing={
            "trial_count": overfitting["trial_count"],
            "correction": "deflated Sharpe ratio over the strategy family's recorded trials",
            "deflated_sharpe_ratio": overfitting["deflated_sharpe_ratio"],
        },
        members=None if book.single else bt.member_metrics,
    )
    baseline_report = _evaluation_report(
        run_id=run_id,
        candidate_id=candidate_id,
        strategy=BASELINE,
        result=bt.base_result,
        wf=bt.base_wf,
        stress=None,
        costs=inputs.costs,
        frame=frame,
        multiple_testing={"trial_count": 1, "correction": "none: the fixed baseline"},
    )
    hashes = {
        "signals": hashlib.sha256(inputs.signals_bytes).hexdigest(),
        "strategy_config": hashlib.sha256(inputs.strategy_config_bytes).hexdigest(),
        "gate_policy": hashlib.sha256(inputs.gate_policy_bytes).hexdigest(),
        "walkforward_results": sha256_hex(wf_artifact),
        "evaluation_report": sha256_hex(evaluation),
        "baseline_evaluation_report": sha256_hex(baseline_report),
    }
    benchmark, evidence = _profitability(inputs, run_id, frame, signals, bt, hashes, overfitting)
    return _Reports(
        candidate_hash=candidate_hash,
        strategy_label=label,
        folds_out=folds_out,
        walkforward=wf_artifact,
        evaluation=evaluation,
        baseline_report=baseline_report,
        benchmark=benchmark,
        evidence=evidence,
        validation={"run_id": run_id, **validate_evidence(evidence, benchmark)},
        overfitting=overfitting,
    )


def _gate_inputs(
    inputs: LaneInputs,
    book: CandidateBook,
    run_id: str,
    data: DataIntegrity,
    bt: _Backtests,
    rep: _Reports,
    readiness: ReadinessProbe,
) -> GateInputs:
    """Step 3: what the gate matrix reads (data integrity, performance, stress, readiness,
    evidence, the uncertainty estimate when gate 7 is configured)."""
    policy = inputs.gate_policy
    uncertainty = None
    if policy.gate7_configured:
        assert policy.gate7_target_coverage is not None
        returns = row_pnl(bt.result, inputs.starting_cash) / inputs.starting_cash
        uncertainty = uncertainty_estimate(
            returns,
            bt.folds,
            target_coverage=policy.gate7_target_coverage,
            min_samples=policy.gate7_min_samples,
        )
    s = bt.wf.summary
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
    cases = bt.stress.cases
    return GateInputs(
        data=data,
        performance=perf,
        stress=StressSummary(
            case_count=len(cases),
            fragility_score=bt.stress.fragility_score,
            fragility_state=bt.stress.fragility_state,
            fragility_state_rank=bt.stress.fragility_state_rank,
            stressed_max_drawdown=max((c.metrics.max_drawdown for c in cases), default=0.0),
        ),
        quality=QualityEvidence(llm_used=False, forecast_used=False),
        readiness=readiness(book),
        benchmark=rep.benchmark,
        evidence=rep.evidence,
        validation=rep.validation,
        uncertainty=uncertainty,
        recalibration_run_id=sha256_hex({"run_id": run_id, "purpose": "recalibration"})[:24],
        recalibration_artifact=RECALIBRATION,
        approval_token_ok=inputs.approval_token_ok,
        overfitting=rep.overfitting,
    )


def _gate_artifacts(
    ids: tuple[str, str],
    gate_inputs: GateInputs,
    report: GateReport,
    throughput: dict[str, int],
    bt: _Backtests,
    rep: _Reports,
) -> tuple[dict[str, Any], str]:
    """The run's artifacts up to the gate evaluation, and the gate report's trace id."""
    run_id, candidate_id = ids
    queued = report.uncertainty_action != "pass"
    uncertainty = gate_inputs.uncertainty
    recalibration = {
        "run_id": run_id,
        "status": "queued" if queued else "not_required",
        "uncertainty_action": report.uncertainty_action,
        "recalibration_run_id": gate_inputs.recalibration_run_id if queued else "",
        "estimate": uncertainty.as_dict() if uncertainty else None,
    }
    gate_eval = {
        "run_id": run_id,
        "candidate_id": candidate_id,
        **report.as_dict(),
        "throughput": throughput,
        "promotion_evidence": {
            "fold_count": len(rep.folds_out),
            "folds": [r.name for r in rep.folds_out],
            "stress_case_count": len(bt.stress.cases),
            "stress_cases": [c.case for c in bt.stress.cases],
        },
    }
    gate_trace = sha256_hex(gate_eval)[:24]
    gate_eval["promotion_evidence"]["gate_report_trace_id"] = gate_trace
    artifacts: dict[str, Any] = {
        WALKFORWARD: rep.walkforward,
        EVALUATION: rep.evaluation,
        BASELINE_REPORT: rep.baseline_report,
        BENCHMARK: rep.benchmark,
        EVIDENCE: rep.evidence,
        VALIDATION: rep.validation,
        RECALIBRATION: recalibration,
        GATE_EVALUATION: gate_eval,
    }
    return artifacts, gate_trace


def _promotion_checks(
    inputs: LaneInputs,
    ids: tuple[str, str],
    signal_count: int,
    bt: _Backtests,
    rep: _Reports,
    report: GateReport,
    gate_inputs: GateInputs,
    artifacts: Mapping[str, Any],
    gate_trace: str,
) -> PromotionChecks:
    """Step 4: the promotion checks (`autonomy.promotion_checks`) over the artifacts so far."""
    run_id, candidate_id = ids
    return promotion_checks(
        facts=RunFacts(
            run_id=run_id,
            candidate_id=candidate_id,
            target=inputs.promotion_target,
            strategy_label=rep.strategy_label,
            signal_count=signal_count,
            fold_count=len(rep.folds_out),
            stress_case_count=len(bt.stress.cases),
            drawdown_pct=bt.result.metrics.max_drawdown_pct,
        ),
        policy=inputs.gate_policy,
        report=report,
        gate_inputs=gate_inputs,
        artifacts=artifacts,
        present=set(artifacts) | {CANDIDATE_SPEC},
        has_patch=PAPER_PATCH in artifacts,
        drift_thresholds=inputs.drift,
        gate_trace_id=gate_trace,
    )


def _candidate_spec(
    inputs: LaneInputs,
    book: CandidateBook,
    ids: tuple[str, str],
    candidate_hash: str,
    artifact_paths: Sequence[str],
    recommendation: Mapping[str, Any],
) -> dict[str, Any]:
    """Step 5: the candidate spec, naming every artifact of the run (itself included)."""
    run_id, candidate_id = ids
    return {
        "run_id": run_id,
        "candidate_id": candidate_id,
        "candidate_hash": candidate_hash,
        "bounded_llm": {"enabled": False, "actuation_allowed": False},
        "runtime_errors": [],
        "runtime_strategies": [spec.as_dict() for spec in book.specs],
        "baseline": BASELINE,
        "artifacts": sorted([*artifact_paths, CANDIDATE_SPEC]),
        "promotion_recommendation": recommendation,
        "code_commit": inputs.code_commit,
    }


def run_lane(
    inputs: LaneInputs, *, readiness: ReadinessProbe, progress: Progress = no_progress
) -> LaneOutcome:
    """One run of the research lane over `inputs`, in five named steps: backtests
    (`_backtests`), reports and evidence (`_reports`), gate inputs (`_gate_inputs`), promotion
    checks (`autonomy.promotion_checks`), candidate spec (`_candidate_spec`)."""
    if inputs.promotion_target not in ("shadow", "paper", "live"):
        raise LaneInputError(
            f"promotion target must be shadow, paper or live, not {inputs.promotion_target!r}"
        )
    book = book_from_config(inputs.strategy_config_bytes)
    run_id = lane_run_id(inputs)
    ids = (run_id, f"cand-{run_id[:12]}")
    parsed, signals, frame = _replay(inputs, book)
    if len(frame) == 0:
        return skipped_outcome(inputs)
    progress(0, TOTAL_STEPS, "replay")
    bt = _backtests(inputs, book, parsed, frame, ids, progress)
    rep = _reports(inputs, book, ids, frame, signals, bt)
    progress(3, TOTAL_STEPS, "evidence")
    data = _data_integrity(signals, parsed.invalid_rows)
    gate_inputs = _gate_inputs(inputs, book, run_id, data, bt, rep, readiness)
    report = evaluate_gate_matrix(gate_inputs, inputs.gate_policy, inputs.promotion_target)
    progress(4, TOTAL_STEPS, "gates")
    s = bt.wf.summary
    throughput = {
        "signal_count": len(signals),
        "invalid_rows": parsed.invalid_rows,
        "decision_count": s.decision_count,
        "trade_count": s.trade_count,
    }
    artifacts, gate_trace = _gate_artifacts(ids, gate_inputs, report, throughput, bt, rep)
    # the patch exists while it may be needed; removed below if the recommendation is not eligible
    if report.allowed and report.recommended_mode == "paper":
        artifacts[PAPER_PATCH] = _patch_yaml(book, ids[1])
    checks = _promotion_checks(
        inputs, ids, len(signals), bt, rep, report, gate_inputs, artifacts, gate_trace
    )
    if not checks.eligible:
        artifacts.pop(PAPER_PATCH, None)
    artifacts[PREREQUISITES] = checks.prerequisites
    artifacts[ROLLBACK_READINESS] = checks.rollback
    artifacts[PROMOTION_GATE] = checks.promotion_gate
    artifacts[CANDIDATE_SPEC] = _candidate_spec(
        inputs, book, ids, rep.candidate_hash, list(artifacts), checks.recommendation
    )
    progress(TOTAL_STEPS, TOTAL_STEPS, "artifacts")
    return LaneOutcome(
        run_id=run_id,
        candidate_id=ids[1],
        status="passed" if report.allowed else "failed",
        promotion_target=inputs.promotion_target,
        recommended_mode=report.recommended_mode,
        candidate=book,
        candidate_hash=rep.candidate_hash,
        artifacts=artifacts,
        gate_report=report,
        recommendation=checks.recommendation,
        folds=rep.folds_out,
        stress=bt.stress,
        metrics={**s.as_dict(), "whole_period": bt.result.metrics.as_dict()},
        equity_curve=rep.evaluation["equity_curve"],
        symbols=sorted({sig.symbol for sig in signals}),
        dataset_from=signals[0].event_ts.isoformat(),
        dataset_to=signals[-1].event_ts.isoformat(),
        gate_trace_id=gate_trace,
        recommendation_trace_id=checks.recommendation_trace_id,
        trials=bt.trials,
    )
