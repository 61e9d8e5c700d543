import numpy as np
import pytest

from trading.strategies.base import Intent
from trading.strategies.legacy_macd_rsi import LegacyMacdRsi

from .helpers import action, signal

S = LegacyMacdRsi()


def test_buy_when_macd_above_signal_and_rsi_below_35():
    assert S.evaluate(signal(macd=1.2, macd_signal=0.5, rsi14=20.0), {}) == Intent(
        action="buy",
        confidence=0.65,
        rationale="macd_cross_up,rsi_oversold(rsi14=20.00<35)",
    )


def test_sell_when_macd_below_signal_and_rsi_above_65():
    assert S.evaluate(signal(macd=-0.2, macd_signal=0.1, rsi14=75.0), {}) == Intent(
        action="sell",
        confidence=0.65,
        rationale="macd_cross_down,rsi_overbought(rsi14=75.00>65)",
    )


@pytest.mark.parametrize(
    ("features", "action"),
    [
        ({"macd": 0.2, "macd_signal": 0.1, "rsi14": 34.999}, "buy"),
        ({"macd": 0.2, "macd_signal": 0.1, "rsi14": 35.0}, None),  # strict <
        ({"macd": 0.1, "macd_signal": 0.1, "rsi14": 20.0}, None),  # macd == signal
        ({"macd": -0.2, "macd_signal": 0.1, "rsi14": 65.001}, "sell"),
        ({"macd": -0.2, "macd_signal": 0.1, "rsi14": 65.0}, None),  # strict >
        ({"macd": 0.1, "macd_signal": 0.1, "rsi14": 80.0}, None),
        ({"macd": 0.2, "macd_signal": 0.1, "rsi14": 80.0}, None),  # overbought but crossing up
        ({"macd": -0.2, "macd_signal": 0.1, "rsi14": 20.0}, None),  # oversold but crossing down
        ({"macd": 0.2, "macd_signal": 0.1}, None),  # rsi missing
        ({"macd": 0.2, "rsi14": 20.0}, None),
    ],
)
def test_threshold_boundaries(features, action):
    intent = S.evaluate(signal(**features), {})
    assert (intent.action if intent else None) == action


def test_thresholds_are_params():
    params = {"buy_rsi_threshold": 40, "sell_rsi_threshold": "60"}
    assert action(S.evaluate(signal(macd=0.2, macd_signal=0.1, rsi14=39.0), params)) == "buy"
    assert S.evaluate(signal(macd=0.2, macd_signal=0.1, rsi14=39.0), {}) is None
    assert action(S.evaluate(signal(macd=-0.2, macd_signal=0.1, rsi14=61.0), params)) == "sell"
    assert S.evaluate(signal(macd=-0.2, macd_signal=0.1, rsi14=61.0), {}) is None
    no_override = {"buy_rsi_threshold": None}  # None keeps the default
    assert action(S.evaluate(signal(macd=0.2, macd_signal=0.1, rsi14=20.0), no_override)) == "buy"


def test_bad_params_fail_loudly():
    with pytest.raises(ValueError, match="'buy_rsi_threshold' must be a number"):
        S.evaluate(signal(macd=0.2, macd_signal=0.1, rsi14=20.0), {"buy_rsi_threshold": "low"})
    with pytest.raises(TypeError, match="'sell_rsi_threshold' must be a number"):
        S.evaluate(signal(macd=0.2, macd_signal=0.1, rsi14=20.0), {"sell_rsi_threshold": [65]})
    with pytest.raises(ValueError, match="'buy_rsi_threshold' must be finite"):
        S.evaluate(signal(macd=0.2, macd_signal=0.1, rsi14=20.0), {"buy_rsi_threshold": "nan"})


def test_evaluate_arrays():
    features = {
        "macd": np.array([1.2, -0.2, 0.2, 0.2, np.nan, 0.1]),
        "macd_signal": np.array([0.5, 0.1, 0.1, 0.1, 0.1, 0.1]),
        "rsi14": np.array([20.0, 75.0, 35.0, 30.0, 10.0, 10.0]),
    }
    out = S.evaluate_arrays(features, {})
    assert out.dtype == np.int8
    assert out.tolist() == [1, -1, 0, 1, 0, 0]
    assert S.evaluate_arrays(features, {"buy_rsi_threshold": 36}).tolist() == [1, -1, 1, 1, 0, 0]


def test_evaluate_arrays_missing_column_is_no_action_and_lengths_checked():
    assert S.evaluate_arrays({"macd": np.ones(3), "macd_signal": np.zeros(3)}, {}).tolist() == [
        0,
        0,
        0,
    ]
    with pytest.raises(ValueError, match="feature columns differ in length"):
        S.evaluate_arrays({"macd": np.ones(3), "macd_signal": np.zeros(2)}, {})
    assert S.evaluate_arrays({}, {}).tolist() == []
