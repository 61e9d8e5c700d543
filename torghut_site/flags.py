"""Feature flags: Flipt boolean evaluations that override the matching settings at run time.

The original service read its flags once at boot (docs/compatibility.md#feature-flags). Here every
read goes through `flag_enabled()`, which asks Flipt (`POST /evaluate/v1/boolean`) and caches the
answer for TRADING_FEATURE_FLAGS_CACHE_SECONDS, so an operator who flips
`torghut_trading_kill_switch_enabled` in Flipt is obeyed by the next trading cycle.

When Flipt cannot answer:
- an unknown flag (404): the env value stands;
- a timeout, connection error, 5xx or malformed answer: the last value Flipt gave stands if it is
  younger than TRADING_FEATURE_FLAGS_MAX_STALE_SECONDS (an operator's recent kill switch is not
  forgotten because Flipt blinked), else the env value; Flipt is then left alone for
  TRADING_FEATURE_FLAGS_BACKOFF_SECONDS so a dead server does not add its timeout to every read.
Every fallback is counted in `torghut_feature_flag_fallback_total`; nothing here raises.

`flipt-client` is deliberately not used in the app: it aborts the whole process when the server
is unreachable.

Some flags can only make trading safer: a flag may switch live trading *off* but never on
(`ONE_WAY_FLAGS`); enabling live takes env configuration and a recorded human approval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import requests
from django.conf import settings

from torghut_site.metrics import FEATURE_FLAG_EVALUATIONS, FEATURE_FLAG_FALLBACKS

logger = logging.getLogger(__name__)

# Flipt flag key -> setting it overrides (the `torghut_*` keys; README, Feature flags).
# Every mapped setting is read through `flag_enabled` by the code it governs, so a flip reaches
# the next cycle. Not mapped: flags of components this project does not ship (the LEAN runner,
# the hash-based forecast router, the strategy scheduler and its legacy fallback, the execution
# advisor), and `TRADING_MULTI_ACCOUNT_ENABLED`,
# which is deployment configuration read at start (the set of account lanes), not a switch.
FLAG_SETTINGS: dict[str, str] = {
    "torghut_trading_enabled": "TRADING_ENABLED",
    "torghut_trading_live_enabled": "TRADING_LIVE_ENABLED",
    "torghut_ws_crypto_enabled": "TRADING_WS_CRYPTO_ENABLED",
    "torghut_universe_crypto_enabled": "TRADING_UNIVERSE_CRYPTO_ENABLED",
    "torghut_trading_crypto_enabled": "TRADING_CRYPTO_ENABLED",
    "torghut_trading_crypto_live_enabled": "TRADING_CRYPTO_LIVE_ENABLED",
    "torghut_trading_order_feed_enabled": "TRADING_ORDER_FEED_ENABLED",
    "torghut_trading_feature_quality_enabled": "TRADING_FEATURE_QUALITY_ENABLED",
    "torghut_trading_autonomy_enabled": "TRADING_AUTONOMY_ENABLED",
    "torghut_trading_autonomy_allow_live_promotion": "TRADING_AUTONOMY_ALLOW_LIVE_PROMOTION",
    "torghut_trading_evidence_continuity_enabled": "TRADING_EVIDENCE_CONTINUITY_ENABLED",
    "torghut_trading_universe_require_non_empty_jangar": (
        "TRADING_UNIVERSE_REQUIRE_NON_EMPTY_JANGAR"
    ),
    "torghut_trading_execution_prefer_limit": "TRADING_EXECUTION_PREFER_LIMIT",
    "torghut_trading_allocator_enabled": "TRADING_ALLOCATOR_ENABLED",
    "torghut_trading_drift_governance_enabled": "TRADING_DRIFT_GOVERNANCE_ENABLED",
    "torghut_trading_drift_live_promotion_requires_evidence": (
        "TRADING_DRIFT_LIVE_PROMOTION_REQUIRES_EVIDENCE"
    ),
    "torghut_trading_drift_rollback_on_performance": "TRADING_DRIFT_ROLLBACK_ON_PERFORMANCE",
    "torghut_trading_allow_shorts": "TRADING_ALLOW_SHORTS",
    "torghut_trading_kill_switch_enabled": "TRADING_KILL_SWITCH_ENABLED",
    "torghut_trading_emergency_stop_enabled": "TRADING_EMERGENCY_STOP_ENABLED",
    "torghut_trading_market_context_required": "TRADING_MARKET_CONTEXT_REQUIRED",
    "torghut_llm_enabled": "LLM_ENABLED",
    "torghut_llm_fail_open_live_approved": "LLM_FAIL_OPEN_LIVE_APPROVED",
    "torghut_llm_adjustment_allowed": "LLM_ADJUSTMENT_ALLOWED",
    "torghut_llm_shadow_mode": "LLM_SHADOW_MODE",
    "torghut_llm_adjustment_approved": "LLM_ADJUSTMENT_APPROVED",
    "torghut_llm_committee_enabled": "LLM_COMMITTEE_ENABLED",
}
SETTING_FLAGS: dict[str, str] = {setting: flag for flag, setting in FLAG_SETTINGS.items()}

# A flag can turn these off, never on: the env value is the ceiling.
ONE_WAY_FLAGS = frozenset(
    {
        "TRADING_LIVE_ENABLED",
        "TRADING_CRYPTO_LIVE_ENABLED",
        "TRADING_AUTONOMY_ALLOW_LIVE_PROMOTION",
        "LLM_FAIL_OPEN_LIVE_APPROVED",
        "LLM_ADJUSTMENT_APPROVED",
    }
)

Source = Literal["env", "flipt", "last_known", "env_fallback", "disabled"]


@dataclass(frozen=True)
class FlagResolution:
    setting: str
    flag_key: str
    value: bool
    env_value: bool
    source: Source
    reason: str = ""


class FliptError(Exception):
    def __init__(self, reason: str, *, transport: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transport = transport  # a transport failure backs off; an unknown flag does not


class FliptBooleanClient:
    """`POST /evaluate/v1/boolean` over a kept-alive HTTP session."""

    def __init__(self, session: requests.Session | None = None) -> None:
        self._session = session or requests.Session()

    def evaluate(self, flag_key: str) -> bool:
        url = f"{settings.TRADING_FEATURE_FLAGS_URL}/evaluate/v1/boolean"
        headers = {"Content-Type": "application/json"}
        if settings.TRADING_FEATURE_FLAGS_TOKEN:
            headers["Authorization"] = f"Bearer {settings.TRADING_FEATURE_FLAGS_TOKEN}"
        body = {
            "namespaceKey": settings.TRADING_FEATURE_FLAGS_NAMESPACE,
            "flagKey": flag_key,
            "entityId": settings.TRADING_FEATURE_FLAGS_ENTITY_ID,
            "context": {"app_env": settings.APP_ENV, "trading_mode": settings.TRADING_MODE},
        }
        try:
            response = self._session.post(
                url,
                json=body,
                headers=headers,
                timeout=settings.TRADING_FEATURE_FLAGS_TIMEOUT_MS / 1000,
            )
        except requests.Timeout as exc:
            raise FliptError("timeout", transport=True) from exc
        except requests.RequestException as exc:
            raise FliptError("connection_error", transport=True) from exc
        if response.status_code == 404:
            raise FliptError("unknown_flag", transport=False)
        if response.status_code != 200:
            raise FliptError(f"http_{response.status_code}", transport=True)
        try:
            enabled = response.json().get("enabled")
        except ValueError as exc:
            raise FliptError("invalid_response", transport=True) from exc
        if not isinstance(enabled, bool):
            raise FliptError("invalid_response", transport=True)
        return enabled


class FlagResolver:
    def __init__(
        self,
        client: FliptBooleanClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client or FliptBooleanClient()
        self._clock = clock
        self._lock = threading.Lock()
        self._fresh: dict[str, tuple[float, FlagResolution]] = {}
        self._last_known: dict[str, tuple[float, bool]] = {}
        self._backoff_until = 0.0

    def reset(self) -> None:
        with self._lock:
            self._fresh.clear()
            self._last_known.clear()
            self._backoff_until = 0.0

    def resolve(self, setting: str) -> FlagResolution:
        env_value = bool(getattr(settings, setting, False))
        flag_key = SETTING_FLAGS.get(setting, "")
        if not flag_key or not settings.TRADING_FEATURE_FLAGS_ENABLED:
            return FlagResolution(setting, flag_key, env_value, env_value, "disabled")
        now = self._clock()
        with self._lock:
            cached = self._fresh.get(setting)
            if cached and now - cached[0] < settings.TRADING_FEATURE_FLAGS_CACHE_SECONDS:
                return cached[1]
            in_backoff = now < self._backoff_until
        resolution = (
            self._fallback(setting, flag_key, env_value, "backoff", now)
            if in_backoff
            else (self._evaluate(setting, flag_key, env_value, now))
        )
        with self._lock:
            self._fresh[setting] = (now, resolution)
        FEATURE_FLAG_EVALUATIONS.labels(flag=flag_key, source=resolution.source).inc()
        return resolution

    def _evaluate(self, setting: str, flag_key: str, env_value: bool, now: float) -> FlagResolution:
        try:
            flag_value = self._client.evaluate(flag_key)
        except FliptError as exc:
            if exc.transport:
                with self._lock:
                    self._backoff_until = now + settings.TRADING_FEATURE_FLAGS_BACKOFF_SECONDS
                logger.warning(
                    "feature flag evaluation failed", extra={"flag": flag_key, "reason": exc.reason}
                )
            return self._fallback(setting, flag_key, env_value, exc.reason, now)
        with self._lock:
            self._last_known[setting] = (now, flag_value)
        value = (flag_value and env_value) if setting in ONE_WAY_FLAGS else flag_value
        return FlagResolution(setting, flag_key, value, env_value, "flipt")

    def _fallback(
        self, setting: str, flag_key: str, env_value: bool, reason: str, now: float
    ) -> FlagResolution:
        FEATURE_FLAG_FALLBACKS.labels(flag=flag_key, reason=reason).inc()
        with self._lock:
            last = self._last_known.get(setting)
        if (
            reason != "unknown_flag"
            and last is not None
            and now - last[0] <= settings.TRADING_FEATURE_FLAGS_MAX_STALE_SECONDS
        ):
            value = (last[1] and env_value) if setting in ONE_WAY_FLAGS else last[1]
            return FlagResolution(setting, flag_key, value, env_value, "last_known", reason)
        return FlagResolution(setting, flag_key, env_value, env_value, "env_fallback", reason)


resolver = FlagResolver()


def flag_enabled(setting: str) -> bool:
    """The effective value of a boolean setting, with its Flipt flag applied when enabled."""
    return resolver.resolve(setting).value


def flags_snapshot() -> list[FlagResolution]:
    return [resolver.resolve(setting) for setting in sorted(SETTING_FLAGS)]
