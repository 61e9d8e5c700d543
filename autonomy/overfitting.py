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

import functools
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


def power_sums(returns: ArrayLike) -> np.ndarray:
    """[n, sum r, sum r^2, sum r^3, sum r^4] of `returns`: everything the statistics here need,
    and additive, so the sums of disjoint stretches (folds, CSCV blocks, chunks of a sweep run on
    different workers) add up to the sums of their union."""
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1:
        raise ValueError("returns must be one-dimensional")
    r2 = r * r
    return np.array([float(r.size), r.sum(), r2.sum(), (r2 * r).sum(), (r2 * r2).sum()])


def sharpe_from_sums(sums: ArrayLike) -> SharpeEstimate:
    """`sharpe_ratio` from the power sums of the returns (`power_sums`)."""
    n, s1, s2, s3, s4 = (float(x) for x in np.asarray(sums, dtype=float))
    if n < 3:
        raise InsufficientData("a Sharpe ratio needs at least 3 periods of returns")
    mean = s1 / n
    m2 = s2 / n - mean * mean  # central moments, population
    m3 = s3 / n - 3 * mean * s2 / n + 2 * mean**3
    m4 = s4 / n - 4 * mean * s3 / n + 6 * mean * mean * s2 / n - 3 * mean**4
    return _estimate(int(n), mean, m2, m3, m4, scale=math.sqrt(max(s2, 0.0) / n))


def sharpe_ratio(returns: ArrayLike) -> SharpeEstimate:
    """The per-period Sharpe ratio of `returns` and its standard error (skew and kurtosis of
    the sample included)."""
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or r.size < 3:
        raise InsufficientData("a Sharpe ratio needs at least 3 periods of returns")
    mean = float(r.mean())
    centred = r - mean
    c2 = centred * centred
    m2, m3, m4 = float(c2.mean()), float((c2 * centred).mean()), float((c2 * c2).mean())
    return _estimate(int(r.size), mean, m2, m3, m4, scale=float(np.abs(r).max()))


def _estimate(n: int, mean: float, m2: float, m3: float, m4: float, scale: float) -> SharpeEstimate:
    # constant returns leave only rounding noise (0.1 three times: ~1e-17)
    if not math.isfinite(m2) or m2 <= (1e-9 * scale) ** 2:
        raise InsufficientData("returns without variance have no Sharpe ratio")
    std = math.sqrt(m2 * n / (n - 1))
    sharpe = mean / std
    skew = m3 / m2**1.5
    kurtosis = m4 / m2**2
    variance = (1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2) / (n - 1)
    return SharpeEstimate(sharpe, math.sqrt(max(variance, 0.0)), n, skew, kurtosis)


def probabilistic_sharpe_ratio(returns: ArrayLike, benchmark_sharpe: float = 0.0) -> float:
    """P(true Sharpe > `benchmark_sharpe`), per period, from the sample's Sharpe ratio, length,
    skew and kurtosis."""
    return psr_of(sharpe_ratio(returns), benchmark_sharpe)


def psr_of(estimate: SharpeEstimate, benchmark_sharpe: float = 0.0) -> float:
    """`probabilistic_sharpe_ratio` of an estimate already made (e.g. `sharpe_from_sums`)."""
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
    _check_partitions(partitions)
    if m.shape[0] < 2 * partitions:
        raise InsufficientData(f"CSCV with {partitions} partitions needs {2 * partitions} periods")
    blocks = np.array_split(np.arange(m.shape[0]), partitions)
    sums = np.stack(
        [np.stack([power_sums(m[rows, j]) for rows in blocks]) for j in range(m.shape[1])]
    )
    return pbo_from_block_sums(sums)


def pbo_from_block_sums(block_sums: ArrayLike) -> float:
    """CSCV (`probability_of_backtest_overfitting`) from each setting's power sums per block:
    an array settings x blocks x 5 (`power_sums` of the setting's returns in each block, the
    blocks the same periods for every setting). The blocks are the partitions."""
    sums = np.ascontiguousarray(block_sums, dtype=np.float64)
    if sums.ndim != 3 or sums.shape[2] != 5:
        raise ValueError("block sums are settings x blocks x 5")
    settings_count, partitions = sums.shape[0], sums.shape[1]
    if settings_count < 2:
        raise InsufficientData("CSCV needs a matrix of at least 2 settings")
    _check_partitions(partitions)
    if float(sums[:, :, 0].min()) < 2:
        raise InsufficientData(f"CSCV with {partitions} partitions needs {2 * partitions} periods")
    inside = _split_mask(partitions)
    splits = range(inside.shape[0])
    # sums of every split's in-sample and out-of-sample blocks: splits x settings x 5
    flat = sums.transpose(1, 0, 2).reshape(partitions, settings_count * 5)
    is_sums = (inside @ flat).reshape(len(splits), settings_count, 5)
    oos_sums = sums.sum(axis=1)[None, :, :] - is_sums
    is_sharpes = _sharpes_of(is_sums)
    oos = _sharpes_of(oos_sums)
    best = np.argmax(is_sharpes, axis=1)
    best_oos = oos[np.arange(len(splits)), best]
    # relative rank of the in-sample best among the settings out of sample, in (0, 1)
    rank = ((oos < best_oos[:, None]).sum(axis=1) + 1.0) / (settings_count + 1)
    overfit = int(np.count_nonzero(np.log(rank / (1.0 - rank)) <= 0))
    return overfit / len(splits)


@functools.cache
def _split_mask(partitions: int) -> np.ndarray:
    """One row per CSCV split: 1.0 for its in-sample blocks (every half of the partitions)."""
    splits = list(combinations(range(partitions), partitions // 2))
    mask = np.zeros((len(splits), partitions))
    rows = np.repeat(np.arange(len(splits)), partitions // 2)
    mask[rows, np.asarray(splits).ravel()] = 1.0
    mask.flags.writeable = False
    return mask


def _check_partitions(partitions: int) -> None:
    if partitions < 2 or partitions % 2:
        raise ValueError("partitions must be an even number of at least 2")


def _sharpes_of(sums: np.ndarray) -> np.ndarray:
    """Per-period Sharpe ratio (sample std) of power sums (last axis); 0 without variance."""
    n, s1, s2 = sums[..., 0], sums[..., 1], sums[..., 2]
    mean = s1 / n
    var = np.maximum(s2 - n * mean * mean, 0.0) / np.maximum(n - 1, 1)
    std = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpes = np.where(std > 1e-12 * np.sqrt(s2 / n), mean / std, 0.0)
    return np.asarray(sharpes)
