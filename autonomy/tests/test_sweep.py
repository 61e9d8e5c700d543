"""The pure sweep core (`autonomy.sweep`): grid order, chunks, trials counted once, and a report
byte-identical however its chunks were computed."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autonomy.engine.artifacts import artifact_bytes, canonical_json
from autonomy.engine.backtest import BacktestConfig, CostModel, Sizing, run_backtest
from autonomy.engine.data import frame_from_rows
from autonomy.overfitting import power_sums
from autonomy.sweep import (
    ChunkResult,
    FoldPlanSpec,
    SweepInputError,
    chunk_evaluate,
    expand_grid,
    spec_from_dict,
    sweep_report,
    sweep_spec,
    sweep_trials,
)
from autonomy.tests.engine.helpers import LEGACY_LOOSE, signal_rows
from autonomy.trials import HistoricTrial, TrialHistory
from trading.strategies.registry import get_strategy

FAMILY = "legacy_macd_rsi"
GRID = [("sell_rsi_threshold", [55, 65]), ("buy_rsi_threshold", [35, 45, 50])]
CONFIG = BacktestConfig(
    costs=CostModel(slippage_bps=5.0, fee_bps=1.0), sizing=Sizing(qty=10.0), starting_cash=50_000.0
)


@pytest.fixture(scope="module")
def frame():
    rows = signal_rows({"AAPL": 1, "MSFT": 2}, 160)
    return frame_from_rows(json.loads(canonical_json(rows)), source="file").frame


def make_spec(frame, plan, grid=GRID):
    return sweep_spec(
        frame,
        family=FAMILY,
        strategy_name="macd",
        strategy_version="1.0.0",
        timeframe="1Min",
        universe=(),
        base_params=LEGACY_LOOSE,
        grid=grid,
        plan=plan,
        config=CONFIG,
        dataset_sha256="ab" * 32,
        signal_source="file",
    )


PLANS = {
    "rolling": FoldPlanSpec("rolling", 3),
    "anchored": FoldPlanSpec("anchored", 2),
    "cpcv": FoldPlanSpec("cpcv", 5, 2, 2, 1),
}


@pytest.fixture(scope="module")
def computed(frame):
    out = {}
    for kind, plan in PLANS.items():
        spec = make_spec(frame, plan)
        out[kind] = (spec, [chunk_evaluate(spec, frame, c) for c in spec.chunks()])
    return out


def test_grid_expands_by_sorted_names_values_in_given_order():
    assert expand_grid({"a": 1, "b": 0}, [("b", [2, 1]), ("c", ["x", "y"])]) == [
        {"a": 1, "b": 2, "c": "x"},
        {"a": 1, "b": 2, "c": "y"},
        {"a": 1, "b": 1, "c": "x"},
        {"a": 1, "b": 1, "c": "y"},
    ]


def test_spec_settings_chunks_and_round_trip(frame, computed):
    spec, _ = computed["rolling"]
    assert [s["buy_rsi_threshold"] for s in spec.settings()] == [35, 35, 45, 45, 50, 50]
    assert [s["sell_rsi_threshold"] for s in spec.settings()] == [55, 65] * 3
    assert spec.chunk_count == 18 and spec.chunks()[:4] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    again = spec_from_dict(json.loads(artifact_bytes(spec.as_dict())))
    assert again == spec and again.sweep_id == spec.sweep_id
    other = make_spec(frame, PLANS["anchored"])
    assert other.sweep_id != spec.sweep_id
    cpcv, _ = computed["cpcv"]
    assert cpcv.chunk_count == 6 * 10
    assert spec_from_dict(json.loads(artifact_bytes(cpcv.as_dict()))).sweep_id == cpcv.sweep_id


@settings(max_examples=15, deadline=None)
@given(kind=st.sampled_from(sorted(PLANS)), order=st.randoms(use_true_random=False))
def test_report_is_byte_identical_in_any_chunk_order(computed, kind, order):
    spec, results = computed[kind]
    history = TrialHistory(FAMILY)
    single = artifact_bytes(sweep_report(spec, results, history))
    # chunks as workers store them: canonical JSON, read back, any order, some twice
    stored = [ChunkResult.from_dict(json.loads(r.canonical_bytes())) for r in results]
    shuffled = stored + order.sample(stored, k=3)
    order.shuffle(shuffled)
    assert artifact_bytes(sweep_report(spec, shuffled, history)) == single


def test_whole_window_trial_equals_the_engines_backtest(frame):
    spec = make_spec(frame, FoldPlanSpec("rolling", 1), grid=[("buy_rsi_threshold", [45])])
    [result] = [chunk_evaluate(spec, frame, c) for c in spec.chunks()]
    [trial] = sweep_trials(spec, [result], source="sweep")
    bt = run_backtest(frame, get_strategy(FAMILY), spec.settings()[0], spec.config)
    returns = np.diff(bt.equity, prepend=CONFIG.starting_cash) / CONFIG.starting_cash
    np.testing.assert_allclose(trial.total_sums(), power_sums(returns), rtol=1e-9)
    assert math.isclose(trial.net_pnl, bt.metrics.net_pnl, abs_tol=1e-6)
    assert trial.trade_count == bt.metrics.trade_count
    assert (trial.window.start_row, trial.window.stop_row) == (0, len(frame))


@pytest.mark.parametrize("kind", sorted(PLANS))
def test_each_window_row_is_counted_once(computed, kind):
    spec, results = computed[kind]
    window = spec.window()
    for trial in sweep_trials(spec, results, source="sweep"):
        assert trial.total_sums()[0] == window.stop_row - window.start_row
    if kind == "cpcv":
        assert (window.start_row, window.stop_row) == (0, spec.rows)
        # the counted rows are path 0's: every group from the first split testing it
        report = sweep_report(spec, results, TrialHistory(FAMILY))
        for entry in report["settings"]:
            assert len(entry["paths"]) == 4
            assert math.isclose(entry["paths"][0]["net_pnl"], entry["net_pnl"], abs_tol=0.01)
    else:
        folds = spec.folds()
        assert window.start_row == folds[0].test[0][0] and window.stop_row == spec.rows


def test_leaderboard_by_deflated_sharpe_then_setting(computed):
    spec, results = computed["rolling"]
    report = sweep_report(spec, results, TrialHistory(FAMILY))
    board = report["leaderboard"]
    assert [e["rank"] for e in board] == list(range(1, 7))
    keys = [(-(e["deflated_sharpe_ratio"] or -1.0), e["setting"]) for e in board]
    assert keys == sorted(keys)
    assert {e["trial_count"] for e in board} == {6}
    by_setting = {s["setting"]: s for s in report["settings"]}
    for e in board:
        assert e["deflated_sharpe_ratio"] == pytest.approx(
            by_setting[e["setting"]]["overfitting"]["deflated_sharpe_ratio"]
        )


def test_history_counts_other_trials_and_not_the_sweeps_own_twice(computed):
    spec, results = computed["rolling"]
    trials = sweep_trials(spec, results, source="sweep")
    own = tuple(HistoricTrial(t.key, t.sharpe(), t.window.key, t.sums) for t in trials)
    other = HistoricTrial("f" * 64, 0.5, "elsewhere", ())
    fresh = sweep_report(spec, results, TrialHistory(FAMILY))
    recorded = sweep_report(spec, results, TrialHistory(FAMILY, own))
    assert artifact_bytes(recorded) == artifact_bytes(fresh)
    wider = sweep_report(spec, results, TrialHistory(FAMILY, (*own, other)))
    assert {e["trial_count"] for e in wider["leaderboard"]} == {7}
    assert wider["history_sha256"] != fresh["history_sha256"]


def test_missing_or_contradicting_chunks_are_refused(computed):
    spec, results = computed["anchored"]
    with pytest.raises(SweepInputError, match="missing"):
        sweep_report(spec, results[1:], TrialHistory(FAMILY))
    forged = ChunkResult.from_dict({**results[0].as_dict(), "net_pnl": 123.0})
    with pytest.raises(SweepInputError, match="two different results"):
        sweep_report(spec, [*results, forged], TrialHistory(FAMILY))


def test_bad_specs_name_their_flag(frame):
    with pytest.raises(SweepInputError) as err:
        make_spec(frame, FoldPlanSpec("cpcv", 1000, 2))
    assert err.value.flag == "--fold-plan"
    with pytest.raises(SweepInputError) as err:
        make_spec(frame, PLANS["rolling"], grid=[("a", [1]), ("a", [2])])
    assert err.value.flag == "--grid"
    with pytest.raises(SweepInputError) as err:
        make_spec(frame, FoldPlanSpec("rolling", 10_000))
    assert err.value.flag == "--fold-plan"


def test_chunk_result_hash_is_its_canonical_json(computed):
    _, results = computed["cpcv"]
    r = results[7]
    assert r.sha256 == hashlib.sha256(r.canonical_bytes()).hexdigest()
    assert r.normalised().sha256 == r.sha256
    assert {g["group"] for g in r.groups} == set(
        computed["cpcv"][0].folds()[r.fold_index].groups[i][0] for i in range(2)
    )
