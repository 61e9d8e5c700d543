"""The research backtest engine: vectorised backtests of the live strategy plugins, walk-forward
folds, stress cases, parameter sweeps, deterministic artifacts and progress reporting.

Pure numpy over `BarFrame` columns; no database access. See each module's docstring for the
rules (`backtest` for fills/costs and how they mirror the live chain and simulated broker).
"""

from autonomy.engine.artifacts import canonical_json, round_sig, sha256_hex
from autonomy.engine.backtest import (
    BacktestConfig,
    BacktestMetrics,
    BacktestResult,
    CostModel,
    Decision,
    Sizing,
    Trade,
    positions_from_orders,
    run_backtest,
    simulate,
    strategy_actions,
)
from autonomy.engine.data import (
    BarFrame,
    ParsedFrame,
    compute_indicators,
    frame_from_bars,
    frame_from_rows,
    frame_from_signals,
)
from autonomy.engine.progress import Progress, fan_out, no_progress, terminal_progress
from autonomy.engine.stress import (
    STRESS_CASES,
    StressCaseResult,
    StressReport,
    StressSettings,
    fragility,
    run_stress,
)
from autonomy.engine.walkforward import (
    Fold,
    FoldResult,
    WalkForwardResult,
    WalkForwardSummary,
    make_folds,
    make_time_folds,
    parameter_sweep,
    summarize,
    walk_forward,
)

# The version of the numbers this engine (and the research lane over it, `autonomy.research_lane`)
# produces. It is part of every research run id (`autonomy.run_inputs.RunInputs`, beside the code
# commit), and research artifacts are written once under their run id. Rule: bump it in the same
# change as anything that alters the bytes of an artifact for the same inputs (fills, costs,
# metrics, folds, stress, gates, evidence, the artifact encoding or contents). Without the bump,
# code whose commit is unchanged or unknown (an uncommitted change, a deployment without .git that
# reports TORGHUT_VERSION) replays the old evidence for inputs already run, and where it has to
# compute again (a stored object missing) it is refused (`write_conflict`) instead of rewriting
# evidence.
ENGINE_VERSION = "3"

__all__ = [
    "ENGINE_VERSION",
    "STRESS_CASES",
    "BacktestConfig",
    "BacktestMetrics",
    "BacktestResult",
    "BarFrame",
    "CostModel",
    "Decision",
    "Fold",
    "FoldResult",
    "ParsedFrame",
    "Progress",
    "Sizing",
    "StressCaseResult",
    "StressReport",
    "StressSettings",
    "Trade",
    "WalkForwardResult",
    "WalkForwardSummary",
    "canonical_json",
    "compute_indicators",
    "fan_out",
    "fragility",
    "frame_from_bars",
    "frame_from_rows",
    "frame_from_signals",
    "make_folds",
    "make_time_folds",
    "no_progress",
    "parameter_sweep",
    "positions_from_orders",
    "round_sig",
    "run_backtest",
    "run_stress",
    "sha256_hex",
    "simulate",
    "strategy_actions",
    "summarize",
    "terminal_progress",
    "walk_forward",
]
