"""Overfitting-aware statistics of a strategy's returns (issue #21, item 2): the numbers a
promotion gate needs to tell an edge from the luckiest of many tried settings.

- `sharpe_ratio`: per-period mean over standard deviation, with its standard error under
  non-normal returns (Mertens: skew and kurtosis widen it);
- `probabilistic_sharpe_ratio`: the probability that the true Sharpe ratio exceeds a benchmark,
  given the sample's length, skew and kurtosis (Bailey & López de Prado, 2012);
- `deflated_sharpe_ratio`: the PSR against the Sharpe ratio the best of `trial_count` settings
  would show by luck alone (the expected maximum of the trials' Sharpe ratios under the null;
  Bailey & López de Prado, 2014);
- `probability_of_backtest_overfitting`: combinatorially symmetric cross-validation over a
  trial matrix (periods x settings): how often the in-sample best setting ranks below the median
  out of sample (Bailey, Borwein, López de Prado & Zhu, 2015).

Pure functions over numpy arrays: no database, no settings. All Sharpe ratios are per period
(not annualised); the statistics are invariant to that choice as long as it is consistent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


class InsufficientData(ValueError):
    """Too few periods or settings for the statistic to mean anything."""


@dataclass(frozen=True)
class SharpeEstimate:
    sharpe: float  # per period
    standard_error: float
    periods: int
    skew: float
    kurtosis: float  # not excess: 3 for normal returns


def sharpe_ratio(returns: ArrayLike) -> SharpeEstimate:
    """The per-period Sharpe ratio of `returns` and its standard error (skew and kurtosis of
    the sample included)."""
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or r.size < 3:
        raise InsufficientData("a Sharpe ratio needs at least 3 periods of returns")
    std = float(r.std(ddof=1))
    # constant returns leave only rounding noise (0.1 three times: ~1e-17)
    if not math.isfinite(std) or std <= 1e-9 * float(np.abs(r).max()):
        raise InsufficientData("returns without variance have no Sharpe ratio")
    sharpe = float(r.mean()) / std
    centred = r - r.mean()
    m2 = float(np.mean(centred**2))
    skew = float(np.mean(centred**3)) / m2**1.5
    kurtosis = float(np.mean(centred**4)) / m2**2
    variance = (1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2) / (r.size - 1)
    return SharpeEstimate(sharpe, math.sqrt(max(variance, 0.0)), int(r.size), skew, kurtosis)


def probabilistic_sharpe_ratio(returns: ArrayLike, benchmark_sharpe: float = 0.0) -> float:
    """P(true Sharpe > `benchmark_sharpe`), per period, from the sample's Sharpe ratio, length,
    skew and kurtosis."""
    estimate = sharpe_ratio(returns)
    if estimate.standard_error == 0.0:
        return 1.0 if estimate.sharpe > benchmark_sharpe else 0.0
    z = (estimate.sharpe - benchmark_sharpe) / estimate.standard_error
    return _NORMAL.cdf(z)


def expected_maximum_sharpe(trial_sharpes: ArrayLike) -> float:
    """The Sharpe ratio the best of these trials would reach by luck alone: the expected maximum
    of `len(trial_sharpes)` draws with their variance and a true Sharpe ratio of zero."""
    sharpes = np.asarray(trial_sharpes, dtype=float)
    n = sharpes.size
    if n < 2:
        raise InsufficientData("deflating needs the Sharpe ratios of at least 2 trials")
    spread = math.sqrt(float(sharpes.var(ddof=1)))
    quantiles = (1 - EULER_GAMMA) * _NORMAL.inv_cdf(1 - 1 / n) + EULER_GAMMA * _NORMAL.inv_cdf(
        1 - 1 / (n * math.e)
    )
    return spread * quantiles


def deflated_sharpe_ratio(returns: ArrayLike, trial_sharpes: ArrayLike) -> float:
    """The PSR of `returns` against what the best of the trials (every setting tried for this
    strategy family, this one included) would show by luck: a probability in [0, 1]."""
    return probabilistic_sharpe_ratio(returns, expected_maximum_sharpe(trial_sharpes))


def probability_of_backtest_overfitting(trials: ArrayLike, partitions: int = 8) -> float:
    """CSCV over a trial matrix (rows: periods in order, columns: settings). The rows are cut
    into `partitions` (even) blocks; for every half of the blocks as in-sample and the rest out
    of sample, the setting best in sample is ranked out of sample. The share of splits where it
    ranks at or below the median (logit <= 0) is the probability of backtest overfitting."""
    m = np.asarray(trials, dtype=float)
    if m.ndim != 2 or m.shape[1] < 2:
        raise InsufficientData("CSCV needs a matrix of at least 2 settings")
    if partitions < 2 or partitions % 2:
        raise ValueError("partitions must be an even number of at least 2")
    if m.shape[0] < 2 * partitions:
        raise InsufficientData(f"CSCV with {partitions} partitions needs {2 * partitions} periods")
    blocks = np.array_split(np.arange(m.shape[0]), partitions)
    overfit = 0
    splits = list(combinations(range(partitions), partitions // 2))
    for chosen in splits:
        inside = np.concatenate([blocks[i] for i in chosen])
        outside = np.concatenate([blocks[i] for i in range(partitions) if i not in chosen])
        best = int(np.argmax(_column_sharpes(m[inside])))
        oos = _column_sharpes(m[outside])
        # relative rank of the in-sample best among the settings out of sample, in (0, 1)
        rank = (float(np.sum(oos < oos[best])) + 1) / (m.shape[1] + 1)
        if math.log(rank / (1 - rank)) <= 0:
            overfit += 1
    return overfit / len(splits)


def _column_sharpes(m: np.ndarray) -> np.ndarray:
    std = m.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpes = np.where(std > 0, m.mean(axis=0) / std, 0.0)
    return np.asarray(sharpes)
