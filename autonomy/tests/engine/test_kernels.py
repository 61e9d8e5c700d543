"""The compiled backtest kernels (autonomy/engine/kernels.py) against the plain numpy rules they
replaced, kept here as the reference: every output array and metric equal to the last bit."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autonomy.engine import kernels
from autonomy.engine.backtest import (
    BPS,
    BacktestConfig,
    CostModel,
    Scratch,
    Sizing,
    positions_from_orders,
    simulate,
)

from .helpers import scripted_frame

TICK_EPS = 1e-9


def reference_symbol(price, actions, config):
    """The numpy formulation of one symbol's run (the engine's code before the kernels)."""
    sizing, costs = config.sizing, config.costs
    n, step = price.shape[0], sizing.qty_step
    wanted = actions.astype(np.float64)
    cap = math.inf
    if sizing.max_fill_qty is not None:
        cap = math.floor(sizing.max_fill_qty / step + TICK_EPS) * step
    if sizing.max_notional_per_trade is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = np.where(price > 0, sizing.max_notional_per_trade / price, 0.0)
        wanted *= np.minimum(np.floor(raw / step + TICK_EPS) * step, cap)
    else:
        wanted *= min(math.floor(sizing.qty / step + TICK_EPS) * step, cap)
    hi = math.inf if sizing.max_position_qty is None else sizing.max_position_qty
    lo = -hi if sizing.allow_shorts else 0.0
    if lo == 0.0 and hi == math.inf:
        s = np.cumsum(wanted)
        pos = s - np.minimum(np.minimum.accumulate(s), 0.0)
    else:
        pos = positions_from_orders(wanted, lo, hi)
    if step != 1.0:
        pos = np.round(pos / step) * step
    orders = np.diff(pos, prepend=0.0) if n else pos
    if n:
        orders[0] = pos[0]
    reasons = np.zeros(n, dtype=np.int8)
    rejected = (actions != 0) & (orders == 0.0)
    zero_qty = rejected & (wanted == 0.0)
    reasons[rejected] = 3
    reasons[zero_qty] = 2
    reasons[rejected & ~zero_qty & (actions < 0) & (lo == 0.0)] = 1
    fills = np.zeros(n)
    fills[1:] = orders[:-1]
    held = np.zeros(n)
    held[1:] = pos[:-1]
    fill_local = np.flatnonzero(fills)
    fq, ref = fills[fill_local], price[fill_local]
    side = np.sign(fq)
    fp = ref * (1.0 + side * (costs.adverse_bps / BPS))
    if costs.tick_rounding:
        tick = np.where(fp < 1.0, 0.0001, 0.01)
        steps = fp / tick
        rounded = np.where(side > 0, np.ceil(steps - TICK_EPS), np.floor(steps + TICK_EPS))
        fp = np.round(rounded * tick, 4)
    abs_q = np.abs(fq)
    fee = abs_q * costs.fee_per_share + abs_q * fp * (costs.fee_bps / BPS)
    cash = np.zeros(n)
    cash[fill_local] = -(fq * fp) - fee
    value = held * price
    equity = config.starting_cash + (np.cumsum(cash) + value)
    return {
        "orders": orders,
        "reasons": reasons,
        "held": held,
        "equity": equity,
        "gross_value": np.abs(value),
        "fill_rows": fill_local,
        "fill_qty": fq,
        "fill_price": fp,
        "fill_fee": fee,
    }


def reference_drawdown(equity, start):
    peak = np.maximum(np.maximum.accumulate(equity), start)
    drawdown = peak - equity
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(drawdown.max()), float((drawdown / peak).max())


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


CONFIGS = {
    "default": BacktestConfig(),
    "costs": BacktestConfig(
        costs=CostModel(spread_bps=2.0, slippage_bps=5.0, fee_bps=0.5, fee_per_share=0.005)
    ),
    "budget": BacktestConfig(sizing=Sizing(max_notional_per_trade=1000.0)),
    "shorts": BacktestConfig(sizing=Sizing(allow_shorts=True)),
    "shorts_capped": BacktestConfig(sizing=Sizing(allow_shorts=True, max_position_qty=3.0)),
    "capped": BacktestConfig(sizing=Sizing(max_position_qty=2.0)),
    "crypto": BacktestConfig(
        sizing=Sizing(qty=0.37, qty_step=1e-8, max_notional_per_trade=777.0),
        costs=CostModel(fee_bps=1.0),
    ),
    "fill_cap": BacktestConfig(
        sizing=Sizing(max_notional_per_trade=5000.0, max_fill_qty=7.0),
        costs=CostModel(impact_bps=10.0, tick_rounding=False),
    ),
    "zero_qty": BacktestConfig(sizing=Sizing(qty=0.0)),
}


def random_run(seed, n, start_price=100.0):
    rng = np.random.default_rng(seed)
    price = np.round(start_price * np.exp(np.cumsum(rng.normal(0, 0.004, n))), 2)
    actions = rng.choice(np.array([-1, 0, 0, 0, 1], dtype=np.int8), n)
    return np.maximum(price, 0.01), actions


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize(("seed", "start_price"), [(1, 100.0), (2, 0.9), (3, 4.0)])
def test_simulate_equals_the_numpy_rules_bit_for_bit(name, seed, start_price):
    config = CONFIGS[name]
    price, actions = random_run(seed, 4000, start_price)
    result = simulate(scripted_frame(price.tolist(), actions.tolist()), actions, config)
    expected = reference_symbol(price, actions, config)
    assert same_bits(result.orders, expected["orders"])
    assert same_bits(result.reject_reason, expected["reasons"])
    assert same_bits(result.held, expected["held"])
    assert same_bits(result.equity, expected["equity"])
    assert same_bits(result.fill_rows, expected["fill_rows"])
    assert same_bits(result.fill_qty, expected["fill_qty"])
    assert same_bits(result.fill_price, expected["fill_price"])
    assert same_bits(result.fill_fee, expected["fill_fee"])
    m = result.metrics
    assert (m.max_drawdown, m.max_drawdown_pct) == reference_drawdown(
        expected["equity"], config.starting_cash
    )
    assert m.exposure == float(expected["gross_value"].mean()) / config.starting_cash
    assert m.order_count == np.count_nonzero(expected["orders"])
    assert m.rejected_count == np.count_nonzero(expected["reasons"])
    assert m.time_in_market == np.count_nonzero(expected["held"]) / 4000
    assert (m.buy_decisions, m.sell_decisions) == (
        int(np.count_nonzero(actions > 0)),
        int(np.count_nonzero(actions < 0)),
    )
    assert m.rejected_count > 0 or name in ("shorts",)  # the rules are exercised


def test_zero_sized_sells_keep_the_sign_of_zero_like_numpy():
    # qty 0: every order is 0 * -1 = -0.0 first; numpy's cumsum/minimum keep that sign
    price, actions = random_run(4, 50)
    actions[:3] = -1
    result = simulate(
        scripted_frame(price.tolist(), actions.tolist()), actions, CONFIGS["zero_qty"]
    )
    expected = reference_symbol(price, actions, CONFIGS["zero_qty"])
    assert same_bits(result.orders, expected["orders"])
    assert same_bits(result.held, expected["held"])
    assert (result.reject_reason[:3] == 2).all()


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=40),
    st.sampled_from([100.0, 1.0, 1e-3, 1e5]),
)
def test_drawdown_kernel_equals_numpy(equity, start):
    eq = np.array(equity)
    got = kernels.drawdown(eq, start)
    want = reference_drawdown(eq, start)
    assert np.array(got).tobytes() == np.array(want).tobytes()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([-1, 0, 1]), min_size=2, max_size=60), st.integers(0, 3))
def test_any_action_sequence_equals_the_numpy_rules(actions_list, config_index):
    name = ("default", "costs", "capped", "crypto")[config_index]
    actions = np.array(actions_list, dtype=np.int8)
    price = 50.0 + np.arange(actions.shape[0]) * 0.37
    result = simulate(scripted_frame(price.tolist(), actions_list), actions, CONFIGS[name])
    expected = reference_symbol(price, actions, CONFIGS[name])
    for key in ("orders", "held", "equity", "fill_price", "fill_fee"):
        got = {
            "orders": result.orders,
            "held": result.held,
            "equity": result.equity,
            "fill_price": result.fill_price,
            "fill_fee": result.fill_fee,
        }[key]
        assert same_bits(got, expected[key]), key


def test_scratch_runs_give_the_fresh_metrics_and_write_no_rows():
    scratch = Scratch()
    buffers = []
    for seed, n in ((5, 3000), (6, 1000), (7, 2000)):
        price, actions = random_run(seed, n)
        frame = scripted_frame(price.tolist(), actions.tolist())
        fresh = simulate(frame, actions, CONFIGS["costs"])
        reused = simulate(frame, actions, CONFIGS["costs"], scratch=scratch)
        assert reused.metrics == fresh.metrics
        assert fresh.metrics.trade_count > 0 and fresh.metrics.unfilled_count in (0, 1)
        for name in ("fill_rows", "fill_qty", "fill_price", "fill_reference", "fill_fee"):
            assert same_bits(getattr(reused, name), getattr(fresh, name)), name
        assert [a.shape for a in (reused.orders, reused.held, reused.equity)] == [(0,)] * 3
        assert reused.reject_reason.shape == (0,)
        buffers.append(scratch.arrays(n)[4])
    assert np.shares_memory(buffers[0], buffers[2])  # one buffer, reused


def test_scratch_with_a_non_positive_start_still_matches():
    price, actions = random_run(9, 500)
    frame = scripted_frame(price.tolist(), actions.tolist())
    config = BacktestConfig(starting_cash=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        fresh = simulate(frame, actions, config)
        reused = simulate(frame, actions, config, scratch=Scratch())
    assert reused.metrics.as_dict().keys() == fresh.metrics.as_dict().keys()
    for key, value in fresh.metrics.as_dict().items():
        other = reused.metrics.as_dict()[key]
        assert other == value or (math.isnan(other) and math.isnan(value)), key


def test_reflected_walk_equals_cumsum_reflection():
    orders = np.random.default_rng(8).choice([-2.0, -1.0, 0.0, 1.0, 3.0], 5000)
    s = np.cumsum(orders)
    assert same_bits(kernels.reflected_walk(orders), s - np.minimum(np.minimum.accumulate(s), 0.0))
    assert same_bits(positions_from_orders(orders, 0.0, math.inf), kernels.reflected_walk(orders))


def test_scratch_skips_only_the_finite_check_of_the_same_price_column():
    scratch = Scratch()
    price, actions = random_run(10, 200)
    good = scripted_frame(price.tolist(), actions.tolist())
    simulate(good, actions, CONFIGS["default"], scratch=scratch)
    simulate(good, actions, CONFIGS["default"], scratch=scratch)  # same column: not re-checked
    bad_price = price.copy()
    bad_price[7] = np.nan
    bad = scripted_frame(bad_price.tolist(), actions.tolist())
    with pytest.raises(ValueError, match="non-finite prices"):
        simulate(bad, actions, CONFIGS["default"], scratch=scratch)
