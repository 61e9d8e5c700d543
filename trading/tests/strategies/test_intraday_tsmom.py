import numpy as np
import pytest

from trading.strategies.base import Intent
from trading.strategies.intraday_tsmom import IntradayTsmom, TsmomParams

from .helpers import action, confidence, signal

S = IntradayTsmom()

UP = {
    "ema12": 101.0,
    "ema26": 100.5,
    "macd": 0.13,
    "macd_signal": 0.06,  # hist 0.07
    "rsi14": 56.0,
    "vol_realized_w60s": 0.009,
}
DOWN = {
    "ema12": 100.0,
    "ema26": 100.5,
    "macd": -0.2,
    "macd_signal": -0.1,  # signal - macd = 0.1
    "rsi14": 68.0,
    "vol_realized_w60s": 0.02,
}


def evaluate(base, **changes):
    return S.evaluate(signal(**{**base, **changes}), {})


def test_buy_base_confidence():
    assert evaluate(UP) == Intent(
        action="buy", confidence=0.64, rationale="tsmom_trend_up,macd_hist=0.0700,rsi14=56.00"
    )


def test_buy_confidence_bonuses():
    assert evaluate(UP, macd=0.17).confidence == 0.69  # hist 0.11 >= 0.10
    assert evaluate(UP, vol_realized_w60s=0.008).confidence == 0.67  # vol <= 0.008
    both = evaluate(UP, macd=0.17, vol_realized_w60s=0.005)
    assert both == Intent(
        action="buy",
        confidence=0.72,
        rationale="tsmom_trend_up,macd_hist=0.1100,rsi14=56.00,strong_momentum,calm_volatility",
    )


def test_buy_confidence_is_capped():
    params = {"strong_hist": 0.0, "calm_vol": 1.0}
    assert confidence(S.evaluate(signal(**UP), params)) == 0.72  # 0.64 + 0.05 + 0.03 < 0.82 cap


@pytest.mark.parametrize(
    ("changes", "action"),
    [
        ({"rsi14": 52.0}, "buy"),
        ({"rsi14": 51.999}, None),
        ({"rsi14": 62.0}, "buy"),
        ({"rsi14": 62.001}, None),
        ({"vol_realized_w60s": 0.001}, "buy"),
        ({"vol_realized_w60s": 0.000999}, None),
        ({"vol_realized_w60s": 0.012}, "buy"),
        ({"vol_realized_w60s": 0.01201}, None),
        ({"vol_realized_w60s": None}, None),  # the vol gate needs the feature
        ({"macd": 0.0999, "macd_signal": 0.06}, None),  # hist 0.0399 < 0.04
        ({"macd": 0.1001, "macd_signal": 0.06}, "buy"),  # hist 0.0401
        ({"ema12": 100.5}, None),  # ema12 == ema26: no uptrend
        ({"ema12": None}, None),
    ],
)
def test_buy_boundaries(changes, action):
    features = {**UP, **changes}
    features = {k: v for k, v in features.items() if v is not None}
    intent = S.evaluate(signal(**features), {})
    assert (intent.action if intent else None) == action


def test_hist_boundary_is_inclusive_with_exact_values():
    params = {"bullish_hist_min": 0.0625}
    exact = {**UP, "macd": 0.5625, "macd_signal": 0.5}  # hist exactly 0.0625
    assert action(S.evaluate(signal(**exact), params)) == "buy"
    assert S.evaluate(signal(**{**exact, "macd": 0.5624}), params) is None


def test_sell():
    assert evaluate(DOWN) == Intent(
        action="sell", confidence=0.62, rationale="tsmom_trend_down,macd_hist=-0.1000,rsi14=68.00"
    )
    assert evaluate(DOWN, rsi14=72.0) == Intent(
        action="sell",
        confidence=0.65,
        rationale="tsmom_trend_down,macd_hist=-0.1000,rsi14=72.00,overheated",
    )


@pytest.mark.parametrize(
    ("changes", "action"),
    [
        ({"rsi14": 66.0}, "sell"),
        ({"rsi14": 65.999}, None),
        ({"macd": -0.16, "macd_signal": -0.1}, "sell"),  # 0.06 (float 0.06000000000000001)
        ({"macd": -0.1599, "macd_signal": -0.1}, None),
        ({"ema12": 100.5}, None),  # no downtrend
        ({"macd": 0.1, "macd_signal": 0.2, "ema12": 99.0}, "sell"),
    ],
)
def test_sell_boundaries(changes, action):
    intent = evaluate(DOWN, **changes)
    assert (intent.action if intent else None) == action


def test_sell_boundary_exact_values():
    params = {"bearish_hist_min": 0.125}
    exact = {**DOWN, "macd": -0.625, "macd_signal": -0.5}
    assert action(S.evaluate(signal(**exact), params)) == "sell"
    assert S.evaluate(signal(**{**exact, "macd": -0.6249}), params) is None


def test_params_defaults_and_overrides():
    assert TsmomParams.parse({}) == TsmomParams()
    assert TsmomParams.parse({"min_bull_rsi": "50", "vol_ceil": 0.02}).min_bull_rsi == 50.0
    assert action(S.evaluate(signal(**{**UP, "rsi14": 51.0}), {"min_bull_rsi": 50})) == "buy"
    with pytest.raises(ValueError, match="'vol_floor' must be a number"):
        TsmomParams.parse({"vol_floor": "x"})


def test_evaluate_arrays():
    rows = [
        UP,
        DOWN,
        {**UP, "rsi14": 63.0},
        {**UP, "vol_realized_w60s": np.nan},
        {**DOWN, "rsi14": 60.0},
    ]
    features = {k: np.array([r[k] for r in rows]) for k in UP}
    assert S.evaluate_arrays(features, {}).tolist() == [1, -1, 0, 0, 0]
    assert S.evaluate_arrays(features, {"max_bull_rsi": 64}).tolist() == [1, -1, 1, 0, 0]
