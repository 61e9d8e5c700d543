"""Purged, embargoed combinatorial cross-validation (`autonomy.engine.cpcv`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autonomy.engine.backtest import BacktestConfig, simulate, strategy_actions
from autonomy.engine.cpcv import cpcv_evaluate, make_cpcv_plan
from autonomy.engine.data import frame_from_rows
from autonomy.tests.engine.helpers import LEGACY_LOOSE, signal_rows
from trading.strategies.registry import get_strategy


def test_exact_splits_on_ten_rows():
    plan = make_cpcv_plan(10, groups=5, test_groups=2, purge=1, embargo=1)
    assert plan.bounds == (0, 2, 4, 6, 8, 10)
    assert len(plan.splits) == 10 and plan.path_count == 4
    by_groups = {s.test_groups: s for s in plan.splits}
    # adjacent groups merge into one test segment; one embargo row after it
    assert (by_groups[(0, 1)].test, by_groups[(0, 1)].train) == (((0, 4),), ((5, 10),))
    # rows 2 (embargo after group 0), 3 (purge before group 2) and 6 (embargo) leave train
    assert (by_groups[(0, 2)].test, by_groups[(0, 2)].train) == (((0, 2), (4, 6)), ((7, 10),))
    assert (by_groups[(1, 3)].test, by_groups[(1, 3)].train) == (
        ((2, 4), (6, 8)),
        ((0, 1), (9, 10)),
    )
    # the last group: purge before it, nothing after it to embargo
    assert (by_groups[(3, 4)].test, by_groups[(3, 4)].train) == (((6, 10),), ((0, 5),))
    assert [s.index for s in plan.splits] == list(range(10))
    assert plan.splits[0].test_groups == (0, 1) and plan.splits[-1].test_groups == (3, 4)


def test_paths_take_each_groups_splits_in_order():
    plan = make_cpcv_plan(10, groups=5, test_groups=2)
    paths = plan.paths()
    assert paths[0] == [(0, 0), (1, 0), (2, 1), (3, 2), (4, 3)]
    assert paths[3] == [(0, 3), (1, 6), (2, 8), (3, 9), (4, 9)]
    assert plan.first_tests() == {0: 0, 1: 0, 2: 1, 3: 2, 4: 3}


def test_uneven_groups_follow_array_split():
    plan = make_cpcv_plan(11, groups=3, test_groups=1)
    assert plan.bounds == (0, 4, 8, 11)
    assert [s.test for s in plan.splits] == [((0, 4),), ((4, 8),), ((8, 11),)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"groups": 1, "test_groups": 1}, "groups must be at least 2"),
        ({"groups": 4, "test_groups": 4}, "test groups must be between 1 and 3"),
        ({"groups": 4, "test_groups": 0}, "test groups must be between 1 and 3"),
        ({"groups": 20, "test_groups": 2}, "10 rows cannot be cut into 20 groups"),
        ({"groups": 4, "test_groups": 2, "purge": 0}, "purge must be at least 1"),
        ({"groups": 4, "test_groups": 2, "embargo": -1}, "embargo must be >= 0"),
    ],
)
def test_bad_plans_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_cpcv_plan(10, **kwargs)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(2, 120),
    groups=st.integers(2, 8),
    k=st.integers(1, 7),
    purge=st.integers(1, 6),
    embargo=st.integers(0, 6),
)
def test_no_train_row_near_a_test_row_and_every_group_tested_equally(n, groups, k, purge, embargo):
    if groups > n or k >= groups:
        return
    plan = make_cpcv_plan(n, groups=groups, test_groups=k, purge=purge, embargo=embargo)
    assert len(plan.splits) == math.comb(groups, k)
    tested = dict.fromkeys(range(groups), 0)
    for split in plan.splits:
        test = np.zeros(n, dtype=bool)
        for a, b in split.test:
            test[a:b] = True
        expected = np.zeros(n, dtype=bool)
        for g in split.test_groups:
            tested[g] += 1
            lo, hi = plan.group_rows(g)
            expected[lo:hi] = True
        assert (test == expected).all()
        train_rows = [r for a, b in split.train for r in range(a, b)]
        assert not test[train_rows].any()
        for a, b in split.test:
            for r in train_rows:
                assert not (a - purge <= r < a) and not (b <= r < b + embargo)
        # everything else is train: the purge and embargo remove no more than they say
        banned = test.copy()
        for a, b in split.test:
            banned[max(0, a - purge) : a] = True
            banned[b : b + embargo] = True
        assert sorted(train_rows) == np.flatnonzero(~banned).tolist()
    assert set(tested.values()) == {math.comb(groups - 1, k - 1)}
    for path in plan.paths():
        assert [g for g, _ in path] == list(range(groups))
        assert all(g in plan.splits[s].test_groups for g, s in path)
    # path p uses each group's p-th testing split: all (group, split) pairs used exactly once
    pairs = [pair for path in plan.paths() for pair in path]
    assert len(pairs) == len(set(pairs)) == groups * plan.path_count


@pytest.fixture(scope="module")
def frame():
    return frame_from_rows(signal_rows({"AAPL": 1}, 240), source="file").frame


def test_evaluate_picks_the_best_train_pnl_and_paths_add_up(frame):
    plugin = get_strategy("legacy_macd_rsi")
    grid = [LEGACY_LOOSE, {"buy_rsi_threshold": 30, "sell_rsi_threshold": 70}]
    cfg = BacktestConfig()
    plan = make_cpcv_plan(len(frame), groups=6, test_groups=2, purge=2, embargo=3)
    result = cpcv_evaluate(frame, plugin, plan=plan, param_grid=grid, config=cfg)
    actions = [strategy_actions(frame, plugin, p) for p in grid]
    for r in result.splits:
        scores = [
            math.fsum(
                simulate(frame.slice(a, b), act[a:b], cfg).metrics.net_pnl for a, b in r.split.train
            )
            for act in actions
        ]
        assert r.params_index == int(np.argmax(scores))
        assert r.train_objective == scores[r.params_index]
        for (a, b), m in zip(r.split.test, r.test_metrics, strict=True):
            assert m == simulate(frame.slice(a, b), actions[r.params_index][a:b], cfg).metrics
        assert math.isclose(math.fsum(r.group_net_pnl.values()), r.net_pnl, abs_tol=1e-6)
    paths = result.path_net_pnl()
    assert len(paths) == plan.path_count == 5
    total = math.fsum(r.net_pnl for r in result.splits)
    assert math.isclose(math.fsum(paths), total, abs_tol=1e-6)
    out = result.as_dict()
    assert out["path_net_pnl"] == paths
    assert out["negative_path_ratio"] == sum(p < 0 for p in paths) / 5


def test_evaluate_refuses_a_plan_of_another_length(frame):
    plan = make_cpcv_plan(len(frame) - 1, groups=4, test_groups=1)
    with pytest.raises(ValueError, match="the plan covers"):
        cpcv_evaluate(frame, get_strategy("legacy_macd_rsi"), plan=plan, param_grid=[{}])
