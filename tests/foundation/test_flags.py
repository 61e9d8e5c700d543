"""Feature flags against a Flipt-protocol server running Flipt's own evaluation engine."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import flag, free_port
from torghut_site.flags import FlagResolver, FliptBooleanClient, flag_enabled, resolver
from torghut_site.metrics import FEATURE_FLAG_FALLBACKS


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.posts = 0

    def post(self, *args, **kwargs):
        self.posts += 1
        return super().post(*args, **kwargs)


def fallbacks(flag_key: str, reason: str) -> float:
    return float(FEATURE_FLAG_FALLBACKS.labels(flag=flag_key, reason=reason)._value.get())


def test_flag_overrides_the_env_value_and_is_refreshed(flipt, settings):
    settings.TRADING_KILL_SWITCH_ENABLED = False
    flipt.set_flags(flag("torghut_trading_kill_switch_enabled", True))
    assert flag_enabled("TRADING_KILL_SWITCH_ENABLED") is True
    flipt.set_flags(flag("torghut_trading_kill_switch_enabled", False))
    assert flag_enabled("TRADING_KILL_SWITCH_ENABLED") is False  # cache 0 s: the next read sees it


def test_cached_value_is_reused_until_the_ttl_passes(flipt, settings):
    settings.TRADING_FEATURE_FLAGS_CACHE_SECONDS = 2.0
    clock = Clock()
    session = CountingSession()
    local = FlagResolver(client=FliptBooleanClient(session), clock=clock)
    flipt.set_flags(flag("torghut_trading_enabled", True))
    assert local.resolve("TRADING_ENABLED").value is True
    flipt.set_flags(flag("torghut_trading_enabled", False))
    clock.now += 1.9
    assert local.resolve("TRADING_ENABLED").value is True
    assert session.posts == 1
    clock.now += 0.2
    assert local.resolve("TRADING_ENABLED").value is False
    assert session.posts == 2


def test_unknown_flag_keeps_the_env_value_and_is_counted(flipt, settings):
    settings.TRADING_ALLOW_SHORTS = True
    before = fallbacks("torghut_trading_allow_shorts", "unknown_flag")
    resolution = resolver.resolve("TRADING_ALLOW_SHORTS")
    assert (resolution.value, resolution.source, resolution.reason) == (
        True,
        "env_fallback",
        "unknown_flag",
    )
    assert fallbacks("torghut_trading_allow_shorts", "unknown_flag") == before + 1


def test_unreachable_flipt_falls_back_without_raising_and_backs_off(settings):
    settings.TRADING_FEATURE_FLAGS_ENABLED = True
    settings.TRADING_FEATURE_FLAGS_URL = f"http://127.0.0.1:{free_port()}"
    settings.TRADING_FEATURE_FLAGS_CACHE_SECONDS = 0.0
    settings.TRADING_FEATURE_FLAGS_BACKOFF_SECONDS = 10.0
    settings.TRADING_ENABLED = False
    clock = Clock()
    session = CountingSession()
    local = FlagResolver(client=FliptBooleanClient(session), clock=clock)
    first = local.resolve("TRADING_ENABLED")
    assert (first.value, first.source, first.reason) == (False, "env_fallback", "connection_error")
    clock.now += 5
    second = local.resolve("TRADING_ENABLED")
    assert (second.source, second.reason) == ("env_fallback", "backoff")
    assert session.posts == 1  # in back-off: Flipt is not asked again
    clock.now += 6
    local.resolve("TRADING_ENABLED")
    assert session.posts == 2


def test_last_known_value_outlives_a_short_outage(flipt, settings):
    settings.TRADING_KILL_SWITCH_ENABLED = False
    settings.TRADING_FEATURE_FLAGS_MAX_STALE_SECONDS = 60.0
    clock = Clock()
    local = FlagResolver(clock=clock)
    flipt.set_flags(flag("torghut_trading_kill_switch_enabled", True))
    assert local.resolve("TRADING_KILL_SWITCH_ENABLED").value is True
    settings.TRADING_FEATURE_FLAGS_URL = f"http://127.0.0.1:{free_port()}"  # Flipt goes away
    clock.now += 30
    during = local.resolve("TRADING_KILL_SWITCH_ENABLED")
    assert (during.value, during.source) == (True, "last_known")
    clock.now += 61
    after = local.resolve("TRADING_KILL_SWITCH_ENABLED")
    assert (after.value, after.source) == (False, "env_fallback")


def test_timeout_is_a_fallback(flipt, settings):
    settings.TRADING_FEATURE_FLAGS_TIMEOUT_MS = 100
    settings.TRADING_ENABLED = True
    flipt.set_flags(flag("torghut_trading_enabled", False))
    flipt.set_delay(0.5)
    resolution = FlagResolver().resolve("TRADING_ENABLED")
    assert (resolution.value, resolution.source, resolution.reason) == (
        True,
        "env_fallback",
        "timeout",
    )


def test_live_flag_can_switch_live_off_but_never_on(flipt, settings):
    flipt.set_flags(flag("torghut_trading_live_enabled", True))
    settings.TRADING_LIVE_ENABLED = False
    assert FlagResolver().resolve("TRADING_LIVE_ENABLED").value is False
    settings.TRADING_LIVE_ENABLED = True
    assert FlagResolver().resolve("TRADING_LIVE_ENABLED").value is True
    flipt.set_flags(flag("torghut_trading_live_enabled", False))
    assert FlagResolver().resolve("TRADING_LIVE_ENABLED").value is False


def test_segment_rollout_uses_the_sent_context(flipt, settings):
    prod_only = [
        {
            "segment": {
                "segmentOperator": "OR_SEGMENT_OPERATOR",
                "value": True,
                "segments": [
                    {
                        "key": "prod",
                        "matchType": "ALL_SEGMENT_MATCH_TYPE",
                        "constraints": [
                            {
                                "type": "STRING_CONSTRAINT_COMPARISON_TYPE",
                                "property": "app_env",
                                "operator": "eq",
                                "value": "prod",
                            }
                        ],
                    }
                ],
            }
        }
    ]
    flipt.set_flags(flag("torghut_trading_allocator_enabled", False, prod_only))
    settings.APP_ENV = "dev"
    assert FlagResolver().resolve("TRADING_ALLOCATOR_ENABLED").value is False
    settings.APP_ENV = "prod"
    assert FlagResolver().resolve("TRADING_ALLOCATOR_ENABLED").value is True


@pytest.mark.django_db
def test_kill_switch_flipped_in_flipt_reaches_the_trading_safety_selector(flipt, settings):
    from trading.selectors.safety import kill_switch_state

    settings.TRADING_KILL_SWITCH_ENABLED = False
    flipt.set_flags(flag("torghut_trading_kill_switch_enabled", False))
    assert kill_switch_state().active is False
    flipt.set_flags(flag("torghut_trading_kill_switch_enabled", True))
    state = kill_switch_state()
    assert (state.active, state.source) == (True, "flag")
