"""Trials: every setting evaluated for a strategy family, as the overfitting statistics need them
(issue #21, items 1 and 2). Pure: the ledger rows are `autonomy.models.ResearchTrial`, written by
`autonomy.services.trials`.

A trial is one parameter set of one strategy family (the strategy plugin, `strategy_type`)
evaluated under one cost/sizing configuration on one evaluation window of one dataset. Its key
hashes exactly those four things, so evaluating the same setting on the same data again (a re-run
lane, a sweep run twice, a backtest repeated next week) is the same trial and is counted once;
the strategy's name and version are recorded but not keyed (the same parameters under another
name are not a new idea).

What a trial keeps of its returns: the power sums (`autonomy.overfitting.power_sums`) of its
per-row returns (equity change over starting cash) in each of `BLOCKS` equal row blocks of its
evaluation window. That is enough for its Sharpe ratio with skew and kurtosis, for the variance
of the family's trial Sharpe ratios (the deflated Sharpe ratio), and for combinatorially
symmetric cross-validation over the trials that share a window (the probability of backtest
overfitting), and the sums of disjoint stretches add up, so a sweep's chunks (settings x folds,
run on any worker) combine exactly.

Evidence (`overfitting_evidence`) for a candidate against its family's history:
- `trial_count`: distinct trials of the family, the candidate's included;
- `sharpe_ratio` and `sharpe_standard_error` (per row), `probabilistic_sharpe_ratio` (against 0);
- `deflated_sharpe_ratio`: the PSR against the expected maximum Sharpe ratio of `trial_count`
  settings with the family's trial-Sharpe variance; with one trial there is nothing to deflate
  and it equals the PSR;
- `probability_of_backtest_overfitting`: CSCV over the trials sharing the candidate's window
  (`window_trial_count` of them); None with fewer than 2 (no selection happened on that window).
A statistic that cannot be computed (too few rows, no variance) is None with its reason in
`insufficient`; gate 8 (`autonomy.gates`) fails a configured threshold it cannot check.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autonomy.engine.artifacts import canonical, sha256_hex
from autonomy.engine.data import FloatArray
from autonomy.overfitting import (
    InsufficientData,
    SharpeEstimate,
    expected_maximum_sharpe,
    pbo_from_block_sums,
    psr_of,
    sharpe_from_sums,
)
from torghut_site.hashing import round_sig

BLOCKS = 16  # CSCV partitions of an evaluation window
TRIAL_SOURCES = ("lane", "backtest", "sweep")


@dataclass(frozen=True)
class TrialWindow:
    """Rows [start_row, stop_row) of the dataset `dataset_sha256` under the fold plan `plan`.

    The key covers the dataset and the plan, not the rows: the rows are a function of the two
    (the same data and plan always evaluate the same rows), and a key known before the data is
    parsed lets a lane name its own trials in its run id (`autonomy.research_lane`). `plan` must
    say everything that places the evaluated rows (kind, folds, train size...)."""

    dataset_sha256: str
    start_row: int
    stop_row: int
    window_from: str  # iso time of the first row
    window_to: str  # iso time of the last row
    plan: str = ""

    @property
    def key(self) -> str:
        return window_key(self.dataset_sha256, self.plan)

    def bounds(self) -> list[int]:
        """The BLOCKS + 1 row boundaries of the window's blocks (np.array_split's)."""
        return block_bounds(self.start_row, self.stop_row)


def window_key(dataset_sha256: str, plan: str) -> str:
    return sha256_hex({"dataset": dataset_sha256, "plan": plan, "blocks": BLOCKS})


def trial_key(*, family: str, params: Mapping[str, Any], config_sha256: str, window: str) -> str:
    """A trial's key: family, parameters, configuration and window key (module doc)."""
    return sha256_hex(
        {
            "family": family,
            "params": sha256_hex(dict(canonical(dict(params)))),
            "config": config_sha256,
            "window": window,
        }
    )


def block_bounds(start: int, stop: int, blocks: int = BLOCKS) -> list[int]:
    size, extra = divmod(stop - start, blocks)
    out, row = [start], start
    for b in range(blocks):
        row += size + (1 if b < extra else 0)
        out.append(row)
    return out


def block_sums(returns: FloatArray, first_row: int, bounds: Sequence[int]) -> np.ndarray:
    """Power sums per block (blocks x 5) of `returns`, which are the returns of rows
    [first_row, first_row + len(returns)); blocks they do not reach get zeros."""
    r = np.asarray(returns, dtype=np.float64)
    out = np.zeros((len(bounds) - 1, 5))
    stop_row = first_row + r.shape[0]
    for b in range(len(bounds) - 1):
        lo, hi = max(bounds[b], first_row), min(bounds[b + 1], stop_row)
        if hi <= lo:
            continue
        seg = r[lo - first_row : hi - first_row]
        sq = seg * seg
        out[b] = (float(seg.shape[0]), seg.sum(), sq.sum(), (sq * seg).sum(), (sq * sq).sum())
    return out


@dataclass(frozen=True)
class Trial:
    family: str
    params: Mapping[str, Any]
    config_sha256: str
    window: TrialWindow
    sums: tuple[tuple[float, ...], ...]  # BLOCKS x 5 power sums
    strategy_name: str = ""
    strategy_version: str = ""
    net_pnl: float = 0.0
    trade_count: int = 0
    source: str = "lane"
    source_ref: str = ""

    @property
    def params_sha256(self) -> str:
        return sha256_hex(dict(canonical(dict(self.params))))

    @property
    def key(self) -> str:
        return trial_key(
            family=self.family,
            params=self.params,
            config_sha256=self.config_sha256,
            window=self.window.key,
        )

    def total_sums(self) -> np.ndarray:
        total: np.ndarray = np.asarray(self.sums, dtype=np.float64).sum(axis=0)
        return total

    def sharpe(self) -> float | None:
        try:
            return sharpe_from_sums(self.total_sums()).sharpe
        except InsufficientData:
            return None


def trial_of(
    *,
    family: str,
    params: Mapping[str, Any],
    config: Any,
    window: TrialWindow,
    sums: np.ndarray,
    **extra: Any,
) -> Trial:
    """A `Trial` from numpy block sums; `config` is anything canonical (costs, sizing, cash)."""
    return Trial(
        family=family,
        params=dict(canonical(dict(params))),
        config_sha256=sha256_hex(config),
        window=window,
        sums=tuple(tuple(float(x) for x in row) for row in np.asarray(sums)),
        **extra,
    )


@dataclass(frozen=True)
class HistoricTrial:
    """What the evidence needs of a recorded trial (a ledger row)."""

    key: str
    sharpe: float | None
    window_key: str
    sums: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class TrialHistory:
    """A family's recorded trials (the candidate's own may be among them; it is counted once)."""

    family: str
    trials: tuple[HistoricTrial, ...] = field(default_factory=tuple)

    def sha256(self) -> str:
        """What the run id covers of the history: each trial's key and rounded Sharpe ratio."""
        return sha256_hex(
            {
                "family": self.family,
                "trials": sorted(
                    [t.key, None if t.sharpe is None else round_sig(t.sharpe)] for t in self.trials
                ),
            }
        )

    def without(self, keys: Iterable[str]) -> TrialHistory:
        drop = set(keys)
        return TrialHistory(self.family, tuple(t for t in self.trials if t.key not in drop))


def _history_with(candidate: Trial, history: TrialHistory) -> list[HistoricTrial]:
    """The family's trials with the candidate's, once each, in key order (so every statistic is
    the same whatever order the trials were recorded or read in)."""
    own = HistoricTrial(candidate.key, candidate.sharpe(), candidate.window.key, candidate.sums)
    others = [t for t in history.trials if t.key != candidate.key]
    return sorted([own, *others], key=lambda t: t.key)


def overfitting_evidence(candidate: Trial, history: TrialHistory) -> dict[str, Any]:
    """The candidate's overfitting statistics against its family's trials (module doc)."""
    trials = _history_with(candidate, history)
    insufficient: dict[str, str] = {}
    out: dict[str, Any] = {
        "family": candidate.family,
        "trial_count": len(trials),
        "window_key": candidate.window.key,
        "sharpe_ratio": None,
        "sharpe_standard_error": None,
        "periods": int(candidate.total_sums()[0]),
        "probabilistic_sharpe_ratio": None,
        "deflated_sharpe_ratio": None,
        "expected_maximum_sharpe": None,
        "trial_sharpe_variance": None,
        "probability_of_backtest_overfitting": None,
        "window_trial_count": 0,
        "insufficient": insufficient,
    }
    try:
        est = sharpe_from_sums(candidate.total_sums())
    except InsufficientData as exc:
        insufficient["sharpe_ratio"] = str(exc)
    else:
        out |= _sharpe_block(est, trials, insufficient)
    same_window = [t for t in trials if t.window_key == candidate.window.key]
    out["window_trial_count"] = len(same_window)
    if len(same_window) < 2:
        insufficient["probability_of_backtest_overfitting"] = (
            "one setting evaluated on this window: no selection to test"
        )
    else:
        try:
            out["probability_of_backtest_overfitting"] = _window_pbo(
                tuple(t.sums for t in same_window)
            )
        except InsufficientData as exc:
            insufficient["probability_of_backtest_overfitting"] = str(exc)
    return out


@functools.lru_cache(maxsize=64)
def _window_pbo(sums: tuple[tuple[tuple[float, ...], ...], ...]) -> float:
    """CSCV over one window's trials: the same for every candidate among them (a sweep's
    leaderboard asks once per setting), so computed once per set of trials."""
    return pbo_from_block_sums(np.asarray(sums, dtype=np.float64))


def _sharpe_block(
    est: SharpeEstimate, trials: Sequence[HistoricTrial], insufficient: dict[str, str]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sharpe_ratio": est.sharpe,
        "sharpe_standard_error": est.standard_error,
        "probabilistic_sharpe_ratio": psr_of(est),
    }
    sharpes = sorted(t.sharpe for t in trials if t.sharpe is not None)
    if len(sharpes) < len(trials):
        insufficient["trial_sharpes"] = f"{len(trials) - len(sharpes)} trial(s) without a Sharpe"
    if len(sharpes) < 2:
        # one trial: nothing was selected, the PSR is the deflated ratio
        out["deflated_sharpe_ratio"] = out["probabilistic_sharpe_ratio"]
        out["expected_maximum_sharpe"] = 0.0
        out["trial_sharpe_variance"] = 0.0
        return out
    benchmark = expected_maximum_sharpe(sharpes)
    out["expected_maximum_sharpe"] = benchmark
    out["trial_sharpe_variance"] = float(np.var(sharpes, ddof=1))
    out["deflated_sharpe_ratio"] = psr_of(est, benchmark)
    return out
