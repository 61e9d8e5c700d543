"""Trading: safety limits, account lanes, signals, strategies, universe, sizing and risk."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from torghut_site.settings.base import BASE_DIR, VAR_DIR, env
from torghut_site.settings.trading import (
    TRADING_ACCOUNT_LABEL,
    TRADING_BROKER,
    TRADING_LIVE_ENABLED,
    TRADING_MODE,
)

TRADING_MAX_NOTIONAL_PER_TRADE = env.decimal("TRADING_MAX_NOTIONAL_PER_TRADE", min_value=Decimal(0))

TRADING_SUBMIT_UNCONFIRMED_GRACE_SECONDS = env.int(
    "TRADING_SUBMIT_UNCONFIRMED_GRACE_SECONDS", default=120, min_value=10
)
# how long a worker holds a lane's cycle lease; a killed worker's lease lapses after this
TRADING_LANE_LEASE_SECONDS = env.int("TRADING_LANE_LEASE_SECONDS", default=120, min_value=10)
TRADING_ARTIFACT_DIR = env.str(
    "TRADING_AUTONOMY_ARTIFACT_DIR", default=str(VAR_DIR / "artifacts" / "autonomy")
)
TRADING_ROLLBACK_SIGNAL_LAG_SECONDS_LIMIT = env.float(
    "TRADING_ROLLBACK_SIGNAL_LAG_SECONDS_LIMIT", default=600.0, min_value=1.0
)
TRADING_ROLLBACK_SIGNAL_STALENESS_ALERT_STREAK_LIMIT = env.int(
    "TRADING_ROLLBACK_SIGNAL_STALENESS_ALERT_STREAK_LIMIT", default=3, min_value=1
)
TRADING_ROLLBACK_AUTONOMY_FAILURE_STREAK_LIMIT = env.int(
    "TRADING_ROLLBACK_AUTONOMY_FAILURE_STREAK_LIMIT", default=3, min_value=1
)
TRADING_ROLLBACK_FALLBACK_RATIO_LIMIT = env.float(
    "TRADING_ROLLBACK_FALLBACK_RATIO_LIMIT", default=0.25, min_value=0.0, max_value=1.0
)
TRADING_ROLLBACK_MAX_DRAWDOWN_LIMIT = env.float(
    "TRADING_ROLLBACK_MAX_DRAWDOWN_LIMIT", default=0.08, min_value=0.0, max_value=1.0
)
# fraction of the US/Eastern session's starting equity a lane may lose before the stop latches
TRADING_ROLLBACK_DAILY_LOSS_LIMIT = env.float(
    "TRADING_ROLLBACK_DAILY_LOSS_LIMIT", default=0.05, min_value=0.0, max_value=1.0
)
# a ratio limit of 0 would latch the emergency stop on every cycle
for _name in (
    "TRADING_ROLLBACK_FALLBACK_RATIO_LIMIT",
    "TRADING_ROLLBACK_MAX_DRAWDOWN_LIMIT",
    "TRADING_ROLLBACK_DAILY_LOSS_LIMIT",
):
    if env.is_set(_name) and globals()[_name] <= 0:
        env.problem(f"{_name}={globals()[_name]} must be > 0")

# -- account lanes ---------------------------------------------------------------------------
TRADING_MULTI_ACCOUNT_ENABLED = env.bool("TRADING_MULTI_ACCOUNT_ENABLED", default=False)
TRADING_ACCOUNTS_JSON = env.json("TRADING_ACCOUNTS_JSON", default=None)
TRADING_LANES: list[dict[str, Any]] = []
if TRADING_MULTI_ACCOUNT_ENABLED:
    _accounts = TRADING_ACCOUNTS_JSON
    if isinstance(_accounts, dict):
        _accounts = _accounts.get("accounts")
    if not isinstance(_accounts, list) or not _accounts:
        env.problem(
            'TRADING_ACCOUNTS_JSON must be a non-empty list of lanes (or {"accounts": [...]}) '
            "when TRADING_MULTI_ACCOUNT_ENABLED=true"
        )
        _accounts = []
    for _i, _lane in enumerate(_accounts):
        if not isinstance(_lane, dict) or not str(_lane.get("label") or "").strip():
            env.problem(f"TRADING_ACCOUNTS_JSON[{_i}] needs a non-empty 'label'")
            continue
        _mode = str(_lane.get("mode") or TRADING_MODE).lower()
        _broker = str(_lane.get("broker") or TRADING_BROKER).lower()
        if _mode not in ("paper", "live"):
            env.problem(f"TRADING_ACCOUNTS_JSON[{_i}].mode={_mode!r} must be one of: paper, live")
        if _broker not in ("simulated", "alpaca"):
            env.problem(
                f"TRADING_ACCOUNTS_JSON[{_i}].broker={_broker!r} must be one of: simulated, alpaca"
            )
        if _mode == "live" and not TRADING_LIVE_ENABLED:
            env.problem(
                f"TRADING_ACCOUNTS_JSON[{_i}] is a live lane but TRADING_LIVE_ENABLED is not true"
            )
        TRADING_LANES.append(
            {
                "label": str(_lane["label"]).strip(),
                "mode": _mode,
                "broker": _broker,
                "enabled": bool(_lane.get("enabled", True)),
                "api_key": str(_lane.get("api_key") or ""),
                "secret_key": str(_lane.get("secret_key") or ""),
                "base_url": str(_lane.get("base_url") or "").rstrip("/").removesuffix("/v2"),
            }
        )
    if len({lane["label"] for lane in TRADING_LANES}) != len(TRADING_LANES):
        env.problem("TRADING_ACCOUNTS_JSON has duplicate lane labels")
else:
    TRADING_LANES.append(
        {
            "label": TRADING_ACCOUNT_LABEL,
            "mode": TRADING_MODE,
            "broker": TRADING_BROKER,
            "enabled": True,
            "api_key": "",
            "secret_key": "",
            "base_url": "",
        }
    )

# -- signals ---------------------------------------------------------------------------------
TRADING_SIGNAL_SOURCE = env.choice(
    "TRADING_SIGNAL_SOURCE", choices=("replay", "clickhouse", "alpaca", "kafka"), default="replay"
)
TRADING_SIGNAL_REPLAY_PATH = env.str(
    "TRADING_SIGNAL_REPLAY_PATH",
    default=str(BASE_DIR / "trading" / "sample_data" / "signals-sample.csv"),
)
TRADING_SIGNAL_REPLAY_SPEED = env.float(
    "TRADING_SIGNAL_REPLAY_SPEED", default=60.0, min_value=0.001
)
TRADING_SIGNAL_REPLAY_LOOP = env.bool("TRADING_SIGNAL_REPLAY_LOOP", default=True)
TRADING_SIGNAL_TABLE = env.str("TRADING_SIGNAL_TABLE", default="torghut.ta_signals")
TRADING_SIGNAL_SCHEMA = env.choice(
    "TRADING_SIGNAL_SCHEMA", choices=("auto", "envelope", "flat"), default="auto"
)
TRADING_SIGNAL_BATCH_SIZE = env.int(
    "TRADING_SIGNAL_BATCH_SIZE", default=500, min_value=1, max_value=10000
)
TRADING_SIGNAL_LOOKBACK_MINUTES = env.int(
    "TRADING_SIGNAL_LOOKBACK_MINUTES", default=15, min_value=1
)
TRADING_SIGNAL_EMPTY_BATCH_ADVANCE_SECONDS = env.int(
    "TRADING_SIGNAL_EMPTY_BATCH_ADVANCE_SECONDS", default=60, min_value=0
)
TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD = env.int(
    "TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD", default=2, min_value=1
)
TRADING_SIGNAL_STALE_LAG_ALERT_SECONDS = env.int(
    "TRADING_SIGNAL_STALE_LAG_ALERT_SECONDS", default=300, min_value=1
)
TRADING_SIGNAL_STALENESS_ALERT_CRITICAL_REASONS = env.csv(
    "TRADING_SIGNAL_STALENESS_ALERT_CRITICAL_REASONS",
    default=("cursor_ahead_of_stream", "no_signals_in_window", "universe_source_unavailable"),
)
TRADING_SIGNAL_MARKET_CLOSED_EXPECTED_REASONS = env.csv(
    "TRADING_SIGNAL_MARKET_CLOSED_EXPECTED_REASONS",
    default=("no_signals_in_window", "cursor_tail_stable", "empty_batch_advanced"),
)
TA_CLICKHOUSE_URL = env.str("TA_CLICKHOUSE_URL").rstrip("/")
TA_CLICKHOUSE_USERNAME = env.str("TA_CLICKHOUSE_USERNAME")
TA_CLICKHOUSE_PASSWORD = env.secret("TA_CLICKHOUSE_PASSWORD")
TA_CLICKHOUSE_CONN_TIMEOUT_SECONDS = env.float(
    "TA_CLICKHOUSE_CONN_TIMEOUT_SECONDS", "CLICKHOUSE_TIMEOUT_SECONDS", default=5.0, min_value=0.1
)
TRADING_FEATURE_QUALITY_ENABLED = env.bool("TRADING_FEATURE_QUALITY_ENABLED", default=True)
TRADING_FEATURE_MAX_REQUIRED_NULL_RATE = env.float(
    "TRADING_FEATURE_MAX_REQUIRED_NULL_RATE", default=0.01, min_value=0.0, max_value=1.0
)
TRADING_FEATURE_MAX_STALENESS_MS = env.int(
    "TRADING_FEATURE_MAX_STALENESS_MS", default=120000, min_value=0
)
TRADING_FEATURE_MAX_DUPLICATE_RATIO = env.float(
    "TRADING_FEATURE_MAX_DUPLICATE_RATIO", default=0.02, min_value=0.0, max_value=1.0
)

# -- strategies ------------------------------------------------------------------------------
TRADING_STRATEGY_CONFIG_PATH = env.str("TRADING_STRATEGY_CONFIG_PATH")
TRADING_STRATEGY_CONFIG_MODE = env.choice(
    "TRADING_STRATEGY_CONFIG_MODE", choices=("merge", "sync"), default="merge"
)
TRADING_STRATEGY_RELOAD_SECONDS = env.int(
    "TRADING_STRATEGY_RELOAD_SECONDS", default=10, min_value=1
)
TRADING_STRATEGY_RUNTIME_CIRCUIT_ERRORS = env.int(
    "TRADING_STRATEGY_RUNTIME_CIRCUIT_ERRORS", default=3, min_value=1
)
TRADING_STRATEGY_RUNTIME_CIRCUIT_COOLDOWN_SECONDS = env.int(
    "TRADING_STRATEGY_RUNTIME_CIRCUIT_COOLDOWN_SECONDS", default=300, min_value=1
)

# -- universe --------------------------------------------------------------------------------
TRADING_UNIVERSE_SOURCE = env.choice(
    "TRADING_UNIVERSE_SOURCE", choices=("static", "jangar"), default="static"
)
TRADING_UNIVERSE_REQUIRE_NON_EMPTY_JANGAR = env.bool(
    "TRADING_UNIVERSE_REQUIRE_NON_EMPTY_JANGAR", default=True
)
TRADING_UNIVERSE_MAX_STALE_SECONDS = env.int(
    "TRADING_UNIVERSE_MAX_STALE_SECONDS", default=900, min_value=0
)
TRADING_UNIVERSE_CACHE_SECONDS = env.int("TRADING_UNIVERSE_CACHE_SECONDS", default=300, min_value=0)
TRADING_UNIVERSE_TIMEOUT_SECONDS = env.float(
    "TRADING_UNIVERSE_TIMEOUT_SECONDS", default=5.0, min_value=0.1
)
TRADING_STATIC_SYMBOLS = [s.upper() for s in env.csv("TRADING_STATIC_SYMBOLS")]
JANGAR_BASE_URL = env.str("JANGAR_BASE_URL").rstrip("/")
JANGAR_API_KEY = env.secret("JANGAR_API_KEY")
JANGAR_SYMBOLS_URL = env.str("JANGAR_SYMBOLS_URL")
if TRADING_UNIVERSE_SOURCE == "jangar" and not JANGAR_SYMBOLS_URL:
    env.problem("TRADING_UNIVERSE_SOURCE=jangar requires JANGAR_SYMBOLS_URL")

# -- sizing, portfolio, execution policy, risk -------------------------------------------------
TRADING_DEFAULT_QTY = env.decimal("TRADING_DEFAULT_QTY", default=Decimal("1"), min_value=Decimal(0))
TRADING_MIN_NOTIONAL_PER_TRADE = env.decimal("TRADING_MIN_NOTIONAL_PER_TRADE", min_value=Decimal(0))
TRADING_MAX_PARTICIPATION_RATE = env.decimal("TRADING_MAX_PARTICIPATION_RATE", min_value=Decimal(0))
TRADING_MAX_POSITION_PCT_EQUITY = env.decimal(
    "TRADING_MAX_POSITION_PCT_EQUITY", min_value=Decimal(0)
)
TRADING_PORTFOLIO_NOTIONAL_PER_POSITION = env.decimal(
    "TRADING_PORTFOLIO_NOTIONAL_PER_POSITION", min_value=Decimal(0)
)
TRADING_PORTFOLIO_VOLATILITY_TARGET = env.decimal(
    "TRADING_PORTFOLIO_VOLATILITY_TARGET", min_value=Decimal(0)
)
TRADING_PORTFOLIO_VOLATILITY_FLOOR = env.decimal(
    "TRADING_PORTFOLIO_VOLATILITY_FLOOR", default=Decimal("0"), min_value=Decimal(0)
)
TRADING_PORTFOLIO_MAX_POSITIONS = env.optional_int("TRADING_PORTFOLIO_MAX_POSITIONS", min_value=1)
TRADING_PORTFOLIO_MAX_NOTIONAL_PER_SYMBOL = env.decimal(
    "TRADING_PORTFOLIO_MAX_NOTIONAL_PER_SYMBOL", min_value=Decimal(0)
)
TRADING_PORTFOLIO_MAX_GROSS_EXPOSURE = env.decimal(
    "TRADING_PORTFOLIO_MAX_GROSS_EXPOSURE", min_value=Decimal(0)
)
TRADING_PORTFOLIO_MAX_GROSS_EXPOSURE_PCT_EQUITY = env.decimal(
    "TRADING_PORTFOLIO_MAX_GROSS_EXPOSURE_PCT_EQUITY", min_value=Decimal(0)
)
TRADING_PORTFOLIO_MAX_NET_EXPOSURE = env.decimal(
    "TRADING_PORTFOLIO_MAX_NET_EXPOSURE", min_value=Decimal(0)
)
TRADING_PORTFOLIO_MAX_NET_EXPOSURE_PCT_EQUITY = env.decimal(
    "TRADING_PORTFOLIO_MAX_NET_EXPOSURE_PCT_EQUITY", min_value=Decimal(0)
)
# allocator (`trading.gates.gate_allocator`): notional room per strategy, symbol and correlation
# group for risk-increasing orders; the flag is also read from Flipt every cycle
TRADING_ALLOCATOR_ENABLED = env.bool("TRADING_ALLOCATOR_ENABLED", default=False)
TRADING_ALLOCATOR_STRATEGY_NOTIONAL_CAPS = env.decimal_map(
    "TRADING_ALLOCATOR_STRATEGY_NOTIONAL_CAPS"
)
TRADING_ALLOCATOR_SYMBOL_NOTIONAL_CAPS = {
    symbol.upper(): cap
    for symbol, cap in env.decimal_map("TRADING_ALLOCATOR_SYMBOL_NOTIONAL_CAPS").items()
}
TRADING_ALLOCATOR_MAX_SYMBOL_NOTIONAL = env.decimal(
    "TRADING_ALLOCATOR_MAX_SYMBOL_NOTIONAL", min_value=Decimal(0)
)
TRADING_ALLOCATOR_MAX_SYMBOL_PCT_EQUITY = env.decimal(
    "TRADING_ALLOCATOR_MAX_SYMBOL_PCT_EQUITY", min_value=Decimal(0)
)
TRADING_ALLOCATOR_SYMBOL_CORRELATION_GROUPS = {
    symbol.upper(): group
    for symbol, group in env.str_map("TRADING_ALLOCATOR_SYMBOL_CORRELATION_GROUPS").items()
}
TRADING_ALLOCATOR_CORRELATION_GROUP_NOTIONAL_CAPS = env.decimal_map(
    "TRADING_ALLOCATOR_CORRELATION_GROUP_NOTIONAL_CAPS"
)
_unknown_groups = sorted(
    set(TRADING_ALLOCATOR_CORRELATION_GROUP_NOTIONAL_CAPS)
    - set(TRADING_ALLOCATOR_SYMBOL_CORRELATION_GROUPS.values())
)
if _unknown_groups:
    env.problem(
        "TRADING_ALLOCATOR_CORRELATION_GROUP_NOTIONAL_CAPS names group(s) no symbol belongs to in "
        f"TRADING_ALLOCATOR_SYMBOL_CORRELATION_GROUPS: {', '.join(_unknown_groups)}"
    )
TRADING_EXECUTION_PREFER_LIMIT = env.bool("TRADING_EXECUTION_PREFER_LIMIT", default=True)
# `GET /trading/tca` and `/trading/metrics` answer their TCA summary from the default cache,
# computed at most this many seconds ago (`summary_as_of` in the answer); the summary covers at
# most the last TRADING_TCA_SUMMARY_MAX_LOOKBACK_DAYS days, so one computation is bounded too
TRADING_TCA_SUMMARY_CACHE_SECONDS = env.int(
    "TRADING_TCA_SUMMARY_CACHE_SECONDS", default=60, min_value=1, max_value=3600
)
TRADING_TCA_SUMMARY_MAX_LOOKBACK_DAYS = env.int(
    "TRADING_TCA_SUMMARY_MAX_LOOKBACK_DAYS", default=90, min_value=1, max_value=3650
)
# `GET /trading/status` (and `/trading/metrics`, the admin's status) answer a body each process
# computed at most this many seconds ago (`as_of` in it); a safety latch's change or a flag's new
# value computes it afresh (trading.status_cache); 0 = computed on every request
TRADING_STATUS_CACHE_SECONDS = env.int(
    "TRADING_STATUS_CACHE_SECONDS", default=2, min_value=0, max_value=60
)
# fill realism (trading.fill_realism): a paper or simulated fill may take at most this fraction
# of its minute bar's volume, and its price may lie this many bps outside the bar's low-high
TRADING_FILL_CHECK_MAX_PARTICIPATION = env.decimal(
    "TRADING_FILL_CHECK_MAX_PARTICIPATION", default=Decimal("0.1"), min_value=Decimal(0)
)
if TRADING_FILL_CHECK_MAX_PARTICIPATION is not None and not (
    0 < TRADING_FILL_CHECK_MAX_PARTICIPATION <= 1
):
    env.problem(
        f"TRADING_FILL_CHECK_MAX_PARTICIPATION={TRADING_FILL_CHECK_MAX_PARTICIPATION} must be "
        "> 0 and <= 1 (a fraction of the bar's volume)"
    )
TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS = env.decimal(
    "TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS", default=Decimal(0), min_value=Decimal(0)
)
if TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS is not None and (
    TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS > 1000
):
    env.problem(
        f"TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS={TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS} must be "
        "<= 1000"
    )
TRADING_COOLDOWN_SECONDS = env.int("TRADING_COOLDOWN_SECONDS", default=0, min_value=0)
TRADING_ALLOW_SHORTS = env.bool("TRADING_ALLOW_SHORTS", default=False)
TRADING_WS_CRYPTO_ENABLED = env.bool("TRADING_WS_CRYPTO_ENABLED", default=False)
TRADING_UNIVERSE_CRYPTO_ENABLED = env.bool("TRADING_UNIVERSE_CRYPTO_ENABLED", default=False)
TRADING_CRYPTO_ENABLED = env.bool("TRADING_CRYPTO_ENABLED", default=False)
TRADING_CRYPTO_LIVE_ENABLED = env.bool("TRADING_CRYPTO_LIVE_ENABLED", default=False)
