"""Evidence the gates read, computed from backtest results (pure numpy, no database).

- Regimes: each row is `trend_up`, `trend_down` or `range` by its symbol's return over the last
  `window` rows (beyond ±`band`); the profitability benchmark slices PnL by them.
- Profitability benchmark v4: candidate vs baseline net PnL on `market:all` and each
  `regime:<label>` present; a slice passes when candidate - baseline >= the policy's minimum delta.
- Profitability evidence v4: risk-adjusted metrics, cost and fill realism, confidence calibration
  (the strategies' stated confidence against how often the next price moved their way), and the
  reproducibility hashes of the lane's inputs and outputs.
- Validation: the evidence and benchmark are well formed (schemas, finite numbers, 64-hex hashes).
- Uncertainty calibration (gate 7): for each fold with enough train and test rows, the central
  `target_coverage` interval of the strategy's per-row returns on the train window, and on the
  test window: coverage (share of test returns inside the train interval), shift (two-sample
  Kolmogorov-Smirnov statistic between train and test returns) and width ratio (test interval
  width / train interval width). Folds are averaged (coverage error) or take the worst (shift,
  width). Too few rows is `insufficient_samples`, which gate 7 turns into `abstain`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from autonomy.engine.backtest import BacktestResult
from autonomy.engine.data import BarFrame, FloatArray, map_symbols
from autonomy.engine.walkforward import Fold

BENCHMARK_SCHEMA = "profitability-benchmark-v4"
EVIDENCE_SCHEMA = "profitability-evidence-v4"
VALIDATION_SCHEMA = "profitability-evidence-validation-v1"
REGIMES = ("range", "trend_up", "trend_down")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def regime_labels(frame: BarFrame, *, window: int = 30, band: float = 0.001) -> list[str]:
    """One regime label per row (see module doc)."""

    def codes(price: FloatArray) -> FloatArray:
        back = np.maximum(np.arange(price.shape[0]) - window, 0)
        ret = price / price[back] - 1.0
        return np.where(ret > band, 1.0, np.where(ret < -band, 2.0, 0.0))

    labels = map_symbols(frame, codes).astype(np.intp)
    return [REGIMES[i] for i in labels.tolist()]


def row_pnl(result: BacktestResult, starting_cash: float) -> FloatArray:
    """PnL of each row (equity change, the first row against the starting cash)."""
    return np.diff(result.equity, prepend=starting_cash)


def _slice_sum(pnl: FloatArray, mask: npt.NDArray[np.bool_]) -> float:
    return math.fsum(pnl[mask].tolist())


def profitability_benchmark(
    *,
    candidate: BacktestResult,
    baseline: BacktestResult,
    labels: Sequence[str],
    starting_cash: float,
    min_delta: float,
    baseline_name: str,
) -> dict[str, Any]:
    cand, base = row_pnl(candidate, starting_cash), row_pnl(baseline, starting_cash)
    label_array = np.asarray(labels, dtype=object)
    slices: list[dict[str, Any]] = []
    everything = np.ones(cand.shape[0], dtype=bool)
    for name, mask in [("market:all", everything)] + [
        (f"regime:{r}", label_array == r) for r in REGIMES if (label_array == r).any()
    ]:
        c, b = _slice_sum(cand, mask), _slice_sum(base, mask)
        slices.append(
            {
                "slice": name,
                "rows": int(mask.sum()),
                "candidate_net_pnl": c,
                "baseline_net_pnl": b,
                "net_pnl_delta": c - b,
                "passed": c - b >= min_delta,
            }
        )
    regime = [s for s in slices if s["slice"].startswith("regime:")]
    return {
        "schema_version": BENCHMARK_SCHEMA,
        "baseline": baseline_name,
        "slices": slices,
        "market_net_pnl_delta": slices[0]["net_pnl_delta"],
        "regime_slice_count": len(regime),
        "regime_slice_pass_ratio": (
            sum(1 for s in regime if s["passed"]) / len(regime) if regime else 0.0
        ),
    }


def confidence_calibration(
    frame: BarFrame, actions: npt.NDArray[np.int8], confidence: FloatArray
) -> dict[str, Any]:
    """Stated confidence vs the share of decisions whose symbol's next price moved their way
    (decisions on a symbol's last row have no next price and are not scored)."""
    nxt = np.full(len(frame), np.nan)
    for _, rows in frame.symbol_rows():
        nxt[rows[:-1]] = frame.price[rows[1:]]
    scored = (actions != 0) & np.isfinite(nxt)
    n = int(scored.sum())
    if n == 0:
        return {"decisions_scored": 0, "mean_confidence": None, "hit_rate": None, "error": None}
    move = np.sign(nxt[scored] - frame.price[scored])
    hits = float((move == np.sign(actions[scored])).mean())
    mean_conf = float(confidence[scored].mean())
    return {
        "decisions_scored": n,
        "mean_confidence": mean_conf,
        "hit_rate": hits,
        "error": abs(mean_conf - hits),
    }


def risk_adjusted(result: BacktestResult, starting_cash: float) -> dict[str, Any]:
    m = result.metrics
    returns = row_pnl(result, starting_cash) / starting_cash
    std = float(returns.std()) if returns.shape[0] else 0.0
    return {
        "net_pnl": m.net_pnl,
        "gross_pnl": m.gross_pnl,
        "max_drawdown": m.max_drawdown,
        "max_drawdown_pct": m.max_drawdown_pct,
        # undefined without a drawdown: gate 6 then only asks for a non-negative net PnL
        "return_over_drawdown": m.net_pnl / m.max_drawdown if m.max_drawdown > 0 else None,
        "mean_row_return": float(returns.mean()) if returns.shape[0] else 0.0,
        "row_return_std": std,
        "sharpe_per_row": float(returns.mean()) / std if std > 0 else None,
    }


def profitability_evidence(
    *,
    result: BacktestResult,
    starting_cash: float,
    cost_model: Mapping[str, Any],
    calibration: Mapping[str, Any],
    hashes: Mapping[str, str],
) -> dict[str, Any]:
    m = result.metrics
    return {
        "schema_version": EVIDENCE_SCHEMA,
        "risk_adjusted": risk_adjusted(result, starting_cash),
        "cost_fill_realism": {
            "cost_model": dict(cost_model),
            "cost_bps": m.cost_bps,
            "total_cost": m.total_cost,
            "fees": m.fees,
            "fill_count": m.trade_count,
            "unfilled_count": m.unfilled_count,
            "fill_rule": "next row's price moved against the taker, tick-rounded",
        },
        "confidence_calibration": dict(calibration),
        "reproducibility": {"hashes": dict(sorted(hashes.items()))},
    }


def _finite_tree(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Mapping):
        return all(_finite_tree(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite_tree(v) for v in value)
    return True


def validate_evidence(evidence: Mapping[str, Any], benchmark: Mapping[str, Any]) -> dict[str, Any]:
    checks = {
        "evidence_schema": evidence.get("schema_version") == EVIDENCE_SCHEMA,
        "benchmark_schema": benchmark.get("schema_version") == BENCHMARK_SCHEMA,
        "hashes_well_formed": all(
            isinstance(h, str) and _HEX64.fullmatch(h) is not None
            for h in evidence.get("reproducibility", {}).get("hashes", {}).values()
        ),
        "numbers_finite": _finite_tree(evidence) and _finite_tree(benchmark),
        "market_slice_present": any(
            s.get("slice") == "market:all" for s in benchmark.get("slices", [])
        ),
    }
    return {
        "schema_version": VALIDATION_SCHEMA,
        "passed": all(checks.values()),
        "checks": checks,
        "reasons": sorted(name for name, ok in checks.items() if not ok),
    }


@dataclass(frozen=True)
class UncertaintyEstimate:
    folds_scored: int
    coverage: float | None
    coverage_error: float | None
    shift_score: float | None
    interval_width_ratio: float | None
    reason: str  # "" | insufficient_samples

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def ks_statistic(a: FloatArray, b: FloatArray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.shape[0]
    cdf_b = np.searchsorted(b, grid, side="right") / b.shape[0]
    return float(np.abs(cdf_a - cdf_b).max())


def uncertainty_estimate(
    returns: FloatArray, folds: Sequence[Fold], *, target_coverage: float, min_samples: int
) -> UncertaintyEstimate:
    lo_q, hi_q = (1 - target_coverage) / 2, 1 - (1 - target_coverage) / 2
    coverages: list[float] = []
    shifts: list[float] = []
    widths: list[float] = []
    for fold in folds:
        train = returns[fold.train_start : fold.train_stop]
        test = returns[fold.test_start : fold.test_stop]
        if train.shape[0] < min_samples or test.shape[0] < min_samples:
            continue
        lo, hi = np.quantile(train, [lo_q, hi_q])
        t_lo, t_hi = np.quantile(test, [lo_q, hi_q])
        coverages.append(float(((test >= lo) & (test <= hi)).mean()))
        shifts.append(ks_statistic(train, test))
        width = float(hi - lo)
        t_width = float(t_hi - t_lo)
        widths.append(t_width / width if width > 0 else (1.0 if t_width == 0 else math.inf))
    if not coverages:
        return UncertaintyEstimate(0, None, None, None, None, "insufficient_samples")
    coverage = float(np.mean(coverages))
    return UncertaintyEstimate(
        folds_scored=len(coverages),
        coverage=coverage,
        coverage_error=abs(coverage - target_coverage),
        shift_score=max(shifts),
        interval_width_ratio=max(widths),
        reason="",
    )
