"""The autonomous research lane, drift governance (docs/compatibility.md#drift-governance) and
evidence continuity."""

from __future__ import annotations

from pathlib import Path

from torghut_site.settings.base import BASE_DIR, env

TRADING_AUTONOMY_ENABLED = env.bool("TRADING_AUTONOMY_ENABLED", default=False)
TRADING_AUTONOMY_INTERVAL_SECONDS = env.int(
    "TRADING_AUTONOMY_INTERVAL_SECONDS", default=300, min_value=30
)
TRADING_AUTONOMY_SIGNAL_LOOKBACK_MINUTES = env.int(
    "TRADING_AUTONOMY_SIGNAL_LOOKBACK_MINUTES", default=15, min_value=1, max_value=7 * 24 * 60
)
# the gate policy and candidate the scheduled lane uses (defaults: the shipped samples)
TRADING_AUTONOMY_GATE_POLICY_PATH = env.str(
    "TRADING_AUTONOMY_GATE_POLICY_PATH",
    default=str(BASE_DIR / "config" / "autonomous-gate-policy.json"),
)
TRADING_AUTONOMY_STRATEGY_CONFIG_PATH = env.str(
    "TRADING_AUTONOMY_STRATEGY_CONFIG_PATH",
    default=str(BASE_DIR / "config" / "autonomous-strategy-sample.yaml"),
)
for _name in ("TRADING_AUTONOMY_GATE_POLICY_PATH", "TRADING_AUTONOMY_STRATEGY_CONFIG_PATH"):
    if not Path(globals()[_name]).is_file():
        env.problem(f"{_name}={globals()[_name]!r} is not a readable file")
# the scheduled lane targets live only with this flag and the approval token (gate 5)
TRADING_AUTONOMY_ALLOW_LIVE_PROMOTION = env.bool(
    "TRADING_AUTONOMY_ALLOW_LIVE_PROMOTION", default=False
)
TRADING_AUTONOMY_APPROVAL_TOKEN = env.secret("TRADING_AUTONOMY_APPROVAL_TOKEN")
# drift governance (docs/compatibility.md#drift-governance): reason codes per research run, actions
# with cooldowns, live gating
TRADING_DRIFT_GOVERNANCE_ENABLED = env.bool("TRADING_DRIFT_GOVERNANCE_ENABLED", default=True)
TRADING_DRIFT_MAX_REQUIRED_NULL_RATE = env.float(
    "TRADING_DRIFT_MAX_REQUIRED_NULL_RATE", default=0.02, min_value=0.0, max_value=1.0
)
TRADING_DRIFT_MAX_STALENESS_MS_P95 = env.float(
    "TRADING_DRIFT_MAX_STALENESS_MS_P95", default=180_000.0, min_value=0.0
)
TRADING_DRIFT_MAX_DUPLICATE_RATIO = env.float(
    "TRADING_DRIFT_MAX_DUPLICATE_RATIO", default=0.05, min_value=0.0, max_value=1.0
)
TRADING_DRIFT_MAX_SCHEMA_MISMATCH_TOTAL = env.int(
    "TRADING_DRIFT_MAX_SCHEMA_MISMATCH_TOTAL", default=0, min_value=0
)
TRADING_DRIFT_MAX_MODEL_CALIBRATION_ERROR = env.float(
    "TRADING_DRIFT_MAX_MODEL_CALIBRATION_ERROR", default=0.45, min_value=0.0
)
TRADING_DRIFT_MAX_MODEL_LLM_ERROR_RATIO = env.float(
    "TRADING_DRIFT_MAX_MODEL_LLM_ERROR_RATIO", default=0.1, min_value=0.0, max_value=1.0
)
TRADING_DRIFT_MIN_PERFORMANCE_NET_PNL = env.float(
    "TRADING_DRIFT_MIN_PERFORMANCE_NET_PNL", default=0.0
)
TRADING_DRIFT_MAX_PERFORMANCE_DRAWDOWN = env.float(
    "TRADING_DRIFT_MAX_PERFORMANCE_DRAWDOWN", default=0.08, min_value=0.0
)
TRADING_DRIFT_MAX_PERFORMANCE_COST_BPS = env.float(
    "TRADING_DRIFT_MAX_PERFORMANCE_COST_BPS", default=35.0, min_value=0.0
)
TRADING_DRIFT_MAX_EXECUTION_FALLBACK_RATIO = env.float(
    "TRADING_DRIFT_MAX_EXECUTION_FALLBACK_RATIO", default=0.25, min_value=0.0, max_value=1.0
)
# the reason codes are defined with the detector (autonomy/drift.py); settings do not import it
# (a layer below autonomy), so the defaults are spelled here and every value, default or not, is
# checked against autonomy.drift.ALL_CODES at startup (autonomy/checks.py, autonomy.E001)
TRADING_DRIFT_TRIGGER_RETRAIN_REASON_CODES = env.csv(
    "TRADING_DRIFT_TRIGGER_RETRAIN_REASON_CODES",
    default=(
        "data_required_null_rate_exceeded",
        "data_staleness_p95_exceeded",
        "data_duplicate_ratio_exceeded",
        "data_schema_mismatch",
        "model_calibration_error_exceeded",
        "model_llm_error_ratio_exceeded",
    ),
)
_DRIFT_PERFORMANCE_CODES = (
    "performance_net_pnl_below_min",
    "performance_drawdown_exceeded",
    "performance_cost_bps_exceeded",
    "performance_execution_fallback_ratio_exceeded",
)
TRADING_DRIFT_TRIGGER_RESELECTION_REASON_CODES = env.csv(
    "TRADING_DRIFT_TRIGGER_RESELECTION_REASON_CODES", default=_DRIFT_PERFORMANCE_CODES
)
TRADING_DRIFT_ROLLBACK_REASON_CODES = env.csv(
    "TRADING_DRIFT_ROLLBACK_REASON_CODES", default=_DRIFT_PERFORMANCE_CODES
)
TRADING_DRIFT_RETRAIN_COOLDOWN_SECONDS = env.int(
    "TRADING_DRIFT_RETRAIN_COOLDOWN_SECONDS", default=3600, min_value=0
)
TRADING_DRIFT_RESELECTION_COOLDOWN_SECONDS = env.int(
    "TRADING_DRIFT_RESELECTION_COOLDOWN_SECONDS", default=3600, min_value=0
)
TRADING_DRIFT_LIVE_PROMOTION_REQUIRES_EVIDENCE = env.bool(
    "TRADING_DRIFT_LIVE_PROMOTION_REQUIRES_EVIDENCE", default=True
)
TRADING_DRIFT_LIVE_PROMOTION_MAX_EVIDENCE_AGE_SECONDS = env.int(
    "TRADING_DRIFT_LIVE_PROMOTION_MAX_EVIDENCE_AGE_SECONDS", default=1800, min_value=1
)
# a scheduled run with a rollback code demotes the strategy's promoted champion (risk-reducing)
TRADING_DRIFT_ROLLBACK_ON_PERFORMANCE = env.bool(
    "TRADING_DRIFT_ROLLBACK_ON_PERFORMANCE", default=True
)
# evidence continuity: every recent research run keeps its ledger rows
TRADING_EVIDENCE_CONTINUITY_ENABLED = env.bool("TRADING_EVIDENCE_CONTINUITY_ENABLED", default=True)
TRADING_EVIDENCE_CONTINUITY_INTERVAL_SECONDS = env.int(
    "TRADING_EVIDENCE_CONTINUITY_INTERVAL_SECONDS", default=86_400, min_value=300
)
TRADING_EVIDENCE_CONTINUITY_RUN_LIMIT = env.int(
    "TRADING_EVIDENCE_CONTINUITY_RUN_LIMIT", default=8, min_value=1, max_value=50
)
