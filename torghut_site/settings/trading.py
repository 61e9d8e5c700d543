"""Trading: feature flags, mode and safety switches, the cycle's cadence."""

from __future__ import annotations

from torghut_site.settings.base import env

# --------------------------------------------------------------------------------------------
# Feature flags (Flipt boolean evaluations override the matching settings at run time)
# --------------------------------------------------------------------------------------------
TRADING_FEATURE_FLAGS_ENABLED = env.bool("TRADING_FEATURE_FLAGS_ENABLED", default=False)
TRADING_FEATURE_FLAGS_URL = env.str("TRADING_FEATURE_FLAGS_URL").rstrip("/")
TRADING_FEATURE_FLAGS_TIMEOUT_MS = env.int(
    "TRADING_FEATURE_FLAGS_TIMEOUT_MS", default=500, min_value=1, max_value=60000
)
TRADING_FEATURE_FLAGS_NAMESPACE = env.str("TRADING_FEATURE_FLAGS_NAMESPACE", default="default")
TRADING_FEATURE_FLAGS_ENTITY_ID = env.str("TRADING_FEATURE_FLAGS_ENTITY_ID", default="torghut")
TRADING_FEATURE_FLAGS_TOKEN = env.secret("TRADING_FEATURE_FLAGS_TOKEN")
# how long an evaluated flag is reused before Flipt is asked again (keep below TRADING_POLL_MS)
TRADING_FEATURE_FLAGS_CACHE_SECONDS = env.float(
    "TRADING_FEATURE_FLAGS_CACHE_SECONDS", default=2.0, min_value=0.0
)
# after a transport failure, stop calling Flipt for this long (env values stand meanwhile)
TRADING_FEATURE_FLAGS_BACKOFF_SECONDS = env.float(
    "TRADING_FEATURE_FLAGS_BACKOFF_SECONDS", default=10.0, min_value=0.0
)
# how long the last value Flipt gave outlives a Flipt outage before the env value stands again
TRADING_FEATURE_FLAGS_MAX_STALE_SECONDS = env.float(
    "TRADING_FEATURE_FLAGS_MAX_STALE_SECONDS", default=300.0, min_value=0.0
)
if TRADING_FEATURE_FLAGS_ENABLED and not TRADING_FEATURE_FLAGS_URL:
    env.problem("TRADING_FEATURE_FLAGS_URL is required when TRADING_FEATURE_FLAGS_ENABLED=true")

# --------------------------------------------------------------------------------------------
# Trading: mode and safety
# --------------------------------------------------------------------------------------------
TRADING_ENABLED = env.bool("TRADING_ENABLED", default=False)
TRADING_MODE = env.choice("TRADING_MODE", choices=("paper", "live"), default="paper")
TRADING_LIVE_ENABLED = env.bool("TRADING_LIVE_ENABLED", default=False)
if TRADING_MODE == "live" and not TRADING_LIVE_ENABLED:
    env.problem(
        "TRADING_MODE=live requires TRADING_LIVE_ENABLED=true (allowed: paper, or live with it)"
    )
if TRADING_MODE == "paper" and TRADING_LIVE_ENABLED:
    env.problem("TRADING_LIVE_ENABLED=true requires TRADING_MODE=live (paper and live must agree)")
# the longest TTL a live-approval request may ask for: the time it waits for a second person's
# approval, and then the life of that approval (trading.services.live_approvals; its
# TTL_HOURS_LIMIT repeats the upper bound, 366 days)
TRADING_LIVE_APPROVAL_MAX_TTL_HOURS = env.int(
    "TRADING_LIVE_APPROVAL_MAX_TTL_HOURS", default=24, min_value=1, max_value=8784
)
TRADING_ACCOUNT_LABEL = env.str("TRADING_ACCOUNT_LABEL", default=TRADING_MODE)
TRADING_BROKER = env.choice("TRADING_BROKER", choices=("simulated", "alpaca"), default="simulated")
TRADING_KILL_SWITCH_ENABLED = env.bool("TRADING_KILL_SWITCH_ENABLED", default=True)
TRADING_EMERGENCY_STOP_ENABLED = env.bool("TRADING_EMERGENCY_STOP_ENABLED", default=False)
TRADING_EMERGENCY_STOP_RECOVERY_CYCLES = env.int(
    "TRADING_EMERGENCY_STOP_RECOVERY_CYCLES", default=3, min_value=1
)
TRADING_POLL_MS = env.int("TRADING_POLL_MS", default=5000, min_value=250, max_value=3_600_000)
TRADING_RECONCILE_MS = env.int(
    "TRADING_RECONCILE_MS", default=15000, min_value=1000, max_value=3_600_000
)
