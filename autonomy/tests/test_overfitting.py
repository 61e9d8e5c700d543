"""Overfitting statistics (autonomy/overfitting.py), seeded: the deflated Sharpe ratio rejects
the luckiest of 24 pure-noise settings and passes a planted edge, where the plain probabilistic
Sharpe ratio would accept the noise; CSCV sees noise as a coin flip and an edge as no overfit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autonomy.overfitting import (
    InsufficientData,
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe_ratio,
)

SETTINGS = 24
PERIODS = 1000
EDGE = 0.25  # the planted setting's mean return, in standard deviations per period
PASS = 0.95  # a gate's DSR threshold


def panel(seed: int, edge: float = 0.0) -> np.ndarray:
    """PERIODS x SETTINGS returns of pure noise; with an edge, setting 7 has it."""
    m = np.random.default_rng(seed).standard_normal((PERIODS, SETTINGS))
    m[:, 7] += edge
    return m


def best_of(m: np.ndarray) -> tuple[np.ndarray, list[float]]:
    sharpes = [sharpe_ratio(m[:, j]).sharpe for j in range(m.shape[1])]
    return m[:, int(np.argmax(sharpes))], sharpes


def test_the_best_of_24_noise_settings_is_rejected_in_at_least_95_of_100_seeds():
    deflated, plain = [], []
    for seed in range(100):
        best, sharpes = best_of(panel(seed))
        deflated.append(deflated_sharpe_ratio(best, sharpes))
        plain.append(probabilistic_sharpe_ratio(best))
    assert sum(d < PASS for d in deflated) >= 95
    # what the deflation is for: undeflated, the luckiest noise setting looks like an edge
    assert sum(p >= PASS for p in plain) >= 50


def test_a_planted_edge_passes_in_at_least_95_of_100_seeds():
    passed = 0
    for seed in range(100):
        best, sharpes = best_of(panel(seed, EDGE))  # the setting a sweep would pick
        passed += deflated_sharpe_ratio(best, sharpes) >= PASS
    assert passed >= 95


def test_cscv_sees_noise_as_a_coin_flip_and_an_edge_as_no_overfit():
    noise = [probability_of_backtest_overfitting(panel(seed)) for seed in range(20)]
    edge = [probability_of_backtest_overfitting(panel(seed, EDGE)) for seed in range(20)]
    assert 0.3 <= float(np.mean(noise)) <= 0.7
    assert max(edge) <= 0.05


def test_sharpe_standard_error_of_normal_returns_matches_the_textbook_formula():
    r = np.random.default_rng(1).standard_normal(5000) + 0.1
    estimate = sharpe_ratio(r)
    expected = math.sqrt((1 + estimate.sharpe**2 / 2) / (r.size - 1))
    assert estimate.standard_error == pytest.approx(expected, rel=0.05)
    assert estimate.kurtosis == pytest.approx(3.0, abs=0.2)
    assert probabilistic_sharpe_ratio(r, estimate.sharpe) == pytest.approx(0.5)


def test_expected_maximum_grows_with_the_trial_count():
    rng = np.random.default_rng(2)
    few, many = rng.normal(0, 0.03, 5), rng.normal(0, 0.03, 500)
    assert 0 < expected_maximum_sharpe(few) < expected_maximum_sharpe(many)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sharpe_ratio([0.1, 0.2]), "at least 3 periods"),
        (lambda: sharpe_ratio([0.1, 0.1, 0.1]), "without variance"),
        (lambda: expected_maximum_sharpe([0.5]), "at least 2 trials"),
        (lambda: probability_of_backtest_overfitting(np.ones((40, 1))), "at least 2 settings"),
        (lambda: probability_of_backtest_overfitting(np.ones((10, 3))), "needs 16 periods"),
    ],
)
def test_too_little_data_is_refused_not_guessed(call, message):
    with pytest.raises(InsufficientData, match=message):
        call()


def test_cscv_needs_an_even_partition_count():
    with pytest.raises(ValueError, match="even"):
        probability_of_backtest_overfitting(np.ones((40, 3)), partitions=5)


returns = st.lists(
    st.floats(min_value=-0.2, max_value=0.2, allow_nan=False), min_size=20, max_size=200
).filter(lambda xs: np.std(xs) > 1e-6)


@settings(max_examples=60, deadline=None)
@given(returns, st.lists(st.floats(-0.5, 0.5, allow_nan=False), min_size=2, max_size=50))
def test_deflation_never_raises_the_probability(r, trials):
    if np.var(trials) == 0:
        return
    psr = probabilistic_sharpe_ratio(r)
    dsr = deflated_sharpe_ratio(r, trials)
    assert 0.0 <= dsr <= psr <= 1.0


@settings(max_examples=60, deadline=None)
@given(returns, st.floats(-1, 1), st.floats(-1, 1))
def test_the_psr_falls_as_the_benchmark_rises(r, a, b):
    low, high = sorted((a, b))
    assert probabilistic_sharpe_ratio(r, high) <= probabilistic_sharpe_ratio(r, low)


def test_power_sums_add_up_and_give_the_same_sharpe_as_the_returns():
    r = np.random.default_rng(3).standard_normal(999) * 0.01 + 0.001
    from autonomy.overfitting import power_sums, sharpe_from_sums

    merged = power_sums(r[:400]) + power_sums(r[400:])
    direct, from_sums = sharpe_ratio(r), sharpe_from_sums(merged)
    assert from_sums.periods == direct.periods == 999
    for field in ("sharpe", "standard_error", "skew", "kurtosis"):
        assert getattr(from_sums, field) == pytest.approx(getattr(direct, field), rel=1e-9)


def test_cscv_from_block_sums_is_the_matrix_cscv():
    from autonomy.overfitting import pbo_from_block_sums, power_sums

    m = panel(5)
    blocks = np.array_split(np.arange(m.shape[0]), 8)
    sums = np.array([[power_sums(m[b, j]) for b in blocks] for j in range(m.shape[1])])
    assert pbo_from_block_sums(sums) == probability_of_backtest_overfitting(m)
    with pytest.raises(InsufficientData):
        pbo_from_block_sums(sums[:1])
