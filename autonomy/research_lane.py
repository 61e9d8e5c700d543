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

from autonomy.drift import DriftThresholds
from autonomy.engine.artifacts import canonical, sha256_hex
from autonomy.engine.backtest import (
    BacktestConfig,
    BacktestResult,
    CostModel,
    Sizing,
    simulate,
    strategy_actions,
)
from autonomy.engine.data import BarFrame, ParsedFrame, frame_from_rows, ns_to_datetime
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
from autonomy.promotion_checks import PromotionChecks, RunFacts, promotion_checks
from autonomy.run_inputs import RunInputs, rows_sha256, run_id_for, run_inputs
from autonomy.trials import (
    BLOCKS,
    Trial,
    TrialHistory,
    TrialWindow,
    block_sums,
    overfitting_evidence,
    trial_key,
    trial_of,
    window_key,
)
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

# the overfitting statistics stored at the top of the profitability evidence (issue #21)
OVERFITTING_KEYS = (
    "deflated_sharpe_ratio",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "trial_count",
)

# progress steps of a run: replay, walk-forward, stress, evidence, gates, artifacts
TOTAL_STEPS = 6


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
    # the trial registry's trials of each family the config names (autonomy.trials)
    trial_history: Mapping[str, TrialHistory] = field(default_factory=dict)


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
    trials: list[Trial] = field(default_factory=list)  # for the trial registry

    @property
    def eligible(self) -> bool:
        return bool(self.recommendation.get("eligible"))


ReadinessProbe = Callable[[CandidateSpec], Readiness]


def lane_run_inputs(inputs: LaneInputs) -> RunInputs:
    """Everything in `inputs` that can change an artifact, as the run id's record. Of the trial
    history, the run id covers every recorded trial but the lane's own (`lane_trial_keys`): a
    run recorded once is the same run when its inputs come again."""
    own = set(lane_trial_keys(inputs).values())
    history = {
        family: h.without(own).sha256() for family, h in sorted(inputs.trial_history.items())
    }
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
        trial_history_sha256=sha256_hex(history),
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


def lane_sizing(inputs: LaneInputs, spec: CandidateSpec) -> Sizing:
    """The strategy budget when the catalog sets one, else the default quantity (live sizing)."""
    if spec.max_notional_per_trade is not None:
        return Sizing(max_notional_per_trade=spec.max_notional_per_trade)
    return Sizing(qty=inputs.default_qty)


def _trial_config(inputs: LaneInputs, sizing: Sizing) -> dict[str, Any]:
    return {"costs": inputs.costs, "sizing": sizing, "starting_cash": inputs.starting_cash}


def _trial_dataset(inputs: LaneInputs, spec: CandidateSpec) -> str:
    """The data a lane trial is evaluated on: the parsed signal rows kept to the strategy's
    universe at its timeframe (with the fold plan, `_plan`, this places the evaluated rows)."""
    return sha256_hex(
        {
            "signal_rows": rows_sha256(inputs.signal_rows),
            "source": inputs.signal_source,
            "timeframe": spec.base_timeframe,
            "universe": sorted(spec.universe_symbols),
        }
    )


def _plan(inputs: LaneInputs) -> str:
    return f"lane:{'single' if inputs.folds <= 1 else 'rolling'}:{inputs.folds}"


def lane_trial_keys(inputs: LaneInputs) -> dict[str, str]:
    """family -> the key of the trial this lane's candidate will be (no parsing of signals);
    empty when the strategy config is invalid (the run then stops with `LaneInputError`)."""
    try:
        spec = candidate_from_config(inputs.strategy_config_bytes)
    except LaneInputError:
        return {}
    key = trial_key(
        family=spec.strategy_type,
        params=spec.params,
        config_sha256=sha256_hex(_trial_config(inputs, lane_sizing(inputs, spec))),
        window=window_key(_trial_dataset(inputs, spec), _plan(inputs)),
    )
    return {spec.strategy_type: key}


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
    multiple_testing: Mapping[str, Any],
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


@dataclass(frozen=True)
class _Backtests:
    """Step 1's results: the candidate and the baseline over the same frame and folds."""

    sizing: Sizing
    folds: list[Fold]
    single: bool
    wf: WalkForwardResult
    base_wf: WalkForwardResult
    actions: Any  # the candidate's action per row (int8 array)
    result: BacktestResult
    base_result: BacktestResult
    stress: StressReport


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
    trial: Trial
    overfitting: dict[str, Any]


def _replay(
    inputs: LaneInputs, spec: CandidateSpec
) -> tuple[ParsedFrame, list[SignalEnvelope], BarFrame]:
    """The signals as the live path parses them, kept to the candidate's universe."""
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
    return parsed, signals, frame


def _backtests(
    inputs: LaneInputs, spec: CandidateSpec, frame: BarFrame, progress: Progress
) -> _Backtests:
    """Step 1: walk-forward and whole-period backtests of the candidate and the baseline, and the
    candidate's stress cases."""
    plugin = get_strategy(spec.strategy_type)
    baseline_plugin = get_strategy(BASELINE_TYPE)
    sizing = lane_sizing(inputs, spec)
    config = BacktestConfig(costs=inputs.costs, sizing=sizing, starting_cash=inputs.starting_cash)
    folds, single = _fold_plan(len(frame), inputs.folds)
    mode = "single" if single else "rolling"
    wf = walk_forward(
        frame, plugin, folds=folds, param_grid=[spec.params], config=config, mode=mode
    )
    base_wf = walk_forward(
        frame, baseline_plugin, folds=folds, param_grid=[{}], config=config, mode=mode
    )
    actions = strategy_actions(frame, plugin, spec.params)
    result = simulate(frame, actions, config)
    base_result = simulate(frame, strategy_actions(frame, baseline_plugin, {}), config)
    progress(1, TOTAL_STEPS, "walk-forward")
    stress = run_stress(frame, plugin, spec.params, config=config, settings=inputs.stress)
    progress(2, TOTAL_STEPS, "stress")
    return _Backtests(
        sizing=sizing,
        folds=folds,
        single=single,
        wf=wf,
        base_wf=base_wf,
        actions=actions,
        result=result,
        base_result=base_result,
        stress=stress,
    )


def _candidate_trial(
    inputs: LaneInputs, spec: CandidateSpec, frame: BarFrame, bt: _Backtests, run_id: str
) -> Trial:
    """The candidate as a trial: its per-row returns in each walk-forward test window (each
    window starts flat, as its fold metrics do), as power sums per block of the windows' span."""
    config = BacktestConfig(
        costs=inputs.costs, sizing=bt.sizing, starting_cash=inputs.starting_cash
    )
    start, stop = bt.folds[0].test_start, bt.folds[-1].test_stop
    window = TrialWindow(
        dataset_sha256=_trial_dataset(inputs, spec),
        start_row=start,
        stop_row=stop,
        window_from=_iso(int(frame.ts[start])),
        window_to=_iso(int(frame.ts[stop - 1])),
        plan=_plan(inputs),
    )
    bounds = window.bounds()
    sums = np.zeros((BLOCKS, 5))
    for fold in bt.folds:
        rows = slice(fold.test_start, fold.test_stop)
        result = simulate(frame.slice(fold.test_start, fold.test_stop), bt.actions[rows], config)
        returns = row_pnl(result, inputs.starting_cash) / inputs.starting_cash
        sums += block_sums(returns, fold.test_start, bounds)
    return trial_of(
        family=spec.strategy_type,
        params=spec.params,
        config=_trial_config(inputs, bt.sizing),
        window=window,
        sums=sums,
        strategy_name=spec.name,
        strategy_version=spec.version,
        net_pnl=bt.wf.summary.net_pnl,
        trade_count=bt.wf.summary.trade_count,
        source="lane",
        source_ref=run_id,
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
    spec: CandidateSpec,
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
    calibration = confidence_calibration(frame, bt.actions, _confidences(signals, bt.actions, spec))
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
    spec: CandidateSpec,
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
            "strategy": spec.as_dict(),
            "costs": inputs.costs,
            "sizing": bt.sizing,
            "starting_cash": inputs.starting_cash,
        }
    )
    label = f"{spec.strategy_type}@{spec.version}"
    trial = _candidate_trial(inputs, spec, frame, bt, run_id)
    history = inputs.trial_history.get(spec.strategy_type, TrialHistory(spec.strategy_type))
    overfitting = overfitting_evidence(trial, history)
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
    benchmark, evidence = _profitability(
        inputs, spec, run_id, frame, signals, bt, hashes, overfitting
    )
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
        trial=trial,
        overfitting=overfitting,
    )


def _gate_inputs(
    inputs: LaneInputs,
    spec: CandidateSpec,
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
        readiness=readiness(spec),
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
    spec: CandidateSpec,
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
        "runtime_strategies": [spec.as_dict()],
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
    spec = candidate_from_config(inputs.strategy_config_bytes)
    run_id = lane_run_id(inputs)
    ids = (run_id, f"cand-{run_id[:12]}")
    parsed, signals, frame = _replay(inputs, spec)
    if len(frame) == 0:
        return skipped_outcome(inputs)
    progress(0, TOTAL_STEPS, "replay")
    bt = _backtests(inputs, spec, frame, progress)
    rep = _reports(inputs, spec, ids, frame, signals, bt)
    progress(3, TOTAL_STEPS, "evidence")
    data = _data_integrity(signals, parsed.invalid_rows)
    gate_inputs = _gate_inputs(inputs, spec, run_id, data, bt, rep, readiness)
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
        artifacts[PAPER_PATCH] = _patch_yaml(spec, ids[1])
    checks = _promotion_checks(
        inputs, ids, len(signals), bt, rep, report, gate_inputs, artifacts, gate_trace
    )
    if not checks.eligible:
        artifacts.pop(PAPER_PATCH, None)
    artifacts[PREREQUISITES] = checks.prerequisites
    artifacts[ROLLBACK_READINESS] = checks.rollback
    artifacts[PROMOTION_GATE] = checks.promotion_gate
    artifacts[CANDIDATE_SPEC] = _candidate_spec(
        inputs, spec, ids, rep.candidate_hash, list(artifacts), checks.recommendation
    )
    progress(TOTAL_STEPS, TOTAL_STEPS, "artifacts")
    return LaneOutcome(
        run_id=run_id,
        candidate_id=ids[1],
        status="passed" if report.allowed else "failed",
        promotion_target=inputs.promotion_target,
        recommended_mode=report.recommended_mode,
        candidate=spec,
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
        trials=[rep.trial],
    )
