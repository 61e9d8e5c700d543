import math

import numpy as np
import pytest

from trading import indicators as ind


def test_ema_hand_computed_period_3():
    # alpha = 0.5: 1, 0.5*2+0.5*1, 0.5*3+0.5*1.5, 0.5*4+0.5*2.25
    assert ind.ema([1.0, 2.0, 3.0, 4.0], 3).tolist() == [1.0, 1.5, 2.25, 3.125]


def test_ema_default_periods_hand_computed():
    out12 = ind.ema([10.0, 11.0, 12.0], 12)
    out26 = ind.ema([10.0, 11.0, 12.0], 26)
    assert out12[1] == pytest.approx(132 / 13, rel=1e-15)
    assert out12[2] == pytest.approx(1764 / 169, rel=1e-15)
    assert out26[1] == pytest.approx(272 / 27, rel=1e-15)
    assert out26[2] == pytest.approx(7448 / 729, rel=1e-15)


def test_ema_empty_and_period_validation():
    assert ind.ema([], 12).shape == (0,)
    with pytest.raises(ValueError, match="period must be >= 1"):
        ind.ema([1.0], 0)


def test_macd_small_periods_hand_computed():
    m = ind.macd([1.0, 2.0, 3.0, 4.0], fast=1, slow=3, signal=3)
    assert m.ema_fast.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert m.ema_slow.tolist() == [1.0, 1.5, 2.25, 3.125]
    assert m.macd.tolist() == [0.0, 0.5, 0.75, 0.875]
    assert m.signal.tolist() == [0.0, 0.25, 0.5, 0.6875]
    assert m.hist.tolist() == [0.0, 0.25, 0.25, 0.1875]


def test_macd_default_periods_hand_computed():
    m = ind.macd([10.0, 11.0, 12.0])
    assert m.macd[0] == 0.0
    assert m.macd[1] == pytest.approx(28 / 351, rel=1e-12)
    assert m.signal[1] == pytest.approx(28 / 1755, rel=1e-12)  # 0.2 * macd[1]
    assert m.macd[2] == pytest.approx(1764 / 169 - 7448 / 729, rel=1e-12)
    assert m.hist[1] == pytest.approx(28 / 351 - 28 / 1755, rel=1e-12)


def test_rsi_small_period_hand_computed():
    out = ind.rsi([1.0, 2.0, 1.0, 3.0], period=2)
    assert math.isnan(out[0]) and math.isnan(out[1])
    assert out[2] == 50.0  # avg gain 0.5, avg loss 0.5
    # avg gain 0.5*0.5 + 2/2 = 1.25, avg loss 0.5*0.5 = 0.25, RS 5
    assert out[3] == pytest.approx(100 - 100 / 6, rel=1e-15)


def test_rsi14_seed_is_simple_mean_of_first_14_changes():
    x = [float(v) for v in range(14)] + [12.0]  # 13 gains of 1, then one loss of 1
    out = ind.rsi(x)
    assert np.isnan(out[:14]).all()
    assert out[14] == pytest.approx(100 - 100 / 14, rel=1e-14)  # RS = (13/14) / (1/14)


def test_rsi_edge_cases():
    assert ind.rsi([5.0] * 20)[14:].tolist() == [50.0] * 6  # no movement
    assert ind.rsi([float(v) for v in range(20)])[14:].tolist() == [100.0] * 6  # only gains
    assert ind.rsi([float(-v) for v in range(20)])[14:].tolist() == [0.0] * 6  # only losses
    assert np.isnan(ind.rsi([1.0] * 14)).all()


def test_bollinger_hand_computed():
    b = ind.bollinger([float(v) for v in range(1, 22)])
    assert np.isnan(b.mid[:19]).all()
    std = math.sqrt(33.25)  # population variance of 20 consecutive integers = (20^2 - 1) / 12
    assert b.mid[19] == 10.5
    assert b.upper[19] == pytest.approx(10.5 + 2 * std, rel=1e-15)
    assert b.lower[19] == pytest.approx(10.5 - 2 * std, rel=1e-15)
    assert b.mid[20] == 11.5


def test_realized_volatility_hand_computed():
    out = ind.realized_volatility([100.0, 101.0, 100.0, 102.0], window=2)
    r1, r2, r3 = math.log(1.01), math.log(100 / 101), math.log(1.02)
    assert math.isnan(out[0]) and math.isnan(out[1])
    assert out[2] == pytest.approx(math.sqrt(r1 * r1 + r2 * r2), rel=1e-14)
    assert out[3] == pytest.approx(math.sqrt(r2 * r2 + r3 * r3), rel=1e-14)


def test_session_vwap_restarts_per_session():
    out = ind.session_vwap([10.0, 12.0, 11.0, 20.0], [1.0, 3.0, 2.0, 5.0], [1, 1, 1, 2])
    assert out.tolist() == [10.0, 11.5, 68 / 6, 20.0]


def test_session_vwap_zero_volume_uses_price():
    assert ind.session_vwap([10.0, 12.0], [0.0, 0.0], [1, 1]).tolist() == [10.0, 12.0]


def test_rolling_vwap_hand_computed():
    out = ind.rolling_vwap([10.0, 12.0, 11.0, 20.0], [1.0, 3.0, 2.0, 5.0], window=2)
    assert out.tolist() == pytest.approx([10.0, 46 / 4, 58 / 5, 122 / 7], rel=1e-15)


def _random_bars(n: int, seed: int = 11):
    rng = np.random.default_rng(seed)
    close = 150.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n)))
    volume = rng.integers(0, 5000, n).astype(np.float64)
    session = np.repeat(np.arange(n // 400 + 1), 400)[:n]
    return close, volume, session


def test_streaming_state_equals_vectorized_to_1e12():
    close, volume, session = _random_bars(5000)
    features = ind.compute_features(close, volume=volume, session=session)
    state = ind.IndicatorState()
    worst = 0.0
    for i in range(close.shape[0]):
        streamed = state.update(close[i], volume=volume[i], session=int(session[i]))
        vectorized = ind.finite_features(features, i)
        assert streamed.keys() == vectorized.keys(), i
        for key, value in streamed.items():
            scale = max(1.0, abs(vectorized[key]))
            worst = max(worst, abs(value - vectorized[key]) / scale)
    assert worst <= 1e-12
    assert state.count == 5000


def test_streaming_warmup_keys():
    state = ind.IndicatorState()
    first = state.update(100.0)
    assert first == {
        "macd": 0.0,
        "macd_signal": 0.0,
        "macd_hist": 0.0,
        "ema12": 100.0,
        "ema26": 100.0,
    }
    for price in range(101, 113):
        assert "rsi14" not in state.update(float(price))
    assert "rsi14" not in state.update(113.0)  # 14th bar: only 13 changes so far
    fifteenth = state.update(114.0)
    assert fifteenth["rsi14"] == 100.0
    assert "boll_mid" not in fifteenth
    assert fifteenth["vol_realized_w60s"] == pytest.approx(
        math.sqrt(sum(math.log((p + 1) / p) ** 2 for p in range(109, 114))), rel=1e-14
    )


def test_compute_features_without_volume_omits_vwap():
    close, _, _ = _random_bars(50)
    assert sorted(ind.compute_features(close)) == sorted(
        k for k in ind.FEATURE_KEYS if not k.startswith("vwap")
    )
