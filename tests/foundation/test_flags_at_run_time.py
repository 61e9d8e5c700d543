"""Every Flipt-mapped setting changes behaviour at run time: each flag is flipped on the Flipt
stand-in (Flipt's own engine, in its own process) between two reads, and the code it governs is
observed to change on the next cycle or call. The mapping itself is enumerated, so a flag added
without a probe here fails the suite."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache

from orderfeed.models import OrderEvent
from tests.conftest import flag, free_port, paper_lane, use_replay_trading
from torghut_site.flags import FLAG_SETTINGS, SETTING_FLAGS
from trading.gates import (
    Candidate,
    CycleContext,
    RiskLimits,
    StrategySpec,
    gate_execution_policy,
    gate_risk,
)
from trading.lanes import lane_config
from trading.llm.config import ReviewConfig
from trading.llm.policy import review_posture
from trading.market_context import MarketContextPolicy
from trading.models import LaneState, SafetyState, Strategy, TradeCursor, TradeDecision
from trading.selectors.safety import submission_verdict
from trading.services.cycle import trading_cycle_run
from trading.services.safety import emergency_stop_evaluate
from trading.services.universe import CACHE_KEY, universe_resolve
from trading.simbroker.models import SimTradeUpdate
from trading.tests.cycle.conftest import REPLAY_START, write_signals

pytestmark = pytest.mark.django_db

Probe = Callable[[Any, Any], tuple[Any, Any]]

SIGNALS = [
    ("2026-03-03T14:31:00Z", "AAPL", 1, "100.00", "1.2", "0.5", "20"),
    ("2026-03-03T14:32:00Z", "MSFT", 2, "50.00", "0.8", "0.1", "30"),
    ("2026-03-03T14:33:00Z", "NVDA", 3, "20.00", "0.9", "0.2", "25"),
]


@pytest.fixture
def lane(flipt, settings, tmp_path) -> Any:
    """A paper lane on the simulated broker replaying three buy signals one minute apart, with
    the flags read from the Flipt stand-in."""
    use_replay_trading(settings, write_signals(tmp_path / "signals.csv", SIGNALS))
    settings.TRADING_FEATURE_FLAGS_ENABLED = True  # use_replay_trading switches them off
    settings.TRADING_FEATURE_QUALITY_ENABLED = True
    settings.TRADING_FEATURE_MAX_STALENESS_MS = 3_600_000
    Strategy.objects.create(
        name="macd",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        base_timeframe="1Min",
        max_notional_per_trade=Decimal(1000),
        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 65},
    )
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    return settings


class Cycles:
    """The lane's cycles, each one minute of replay later than the last."""

    def __init__(self) -> None:
        self.seconds = 0

    def next(self) -> Any:
        self.seconds += 60
        at = REPLAY_START + timedelta(seconds=self.seconds - 30)
        return trading_cycle_run(account_label="paper", now=at)


def _spec() -> StrategySpec:
    return StrategySpec(
        id=1, name="s", version="1", strategy_type="legacy_macd_rsi", enabled=True,
        universe_symbols=frozenset(), max_notional_per_trade=None, max_position_pct_equity=None,
        params={}, base_timeframe="1Min",
    )  # fmt: skip


def _gate_reasons(symbol: str, side: str, *, is_live: bool = False) -> list[str]:
    """The risk gate's reasons as a cycle built now would give them (limits read per cycle)."""
    ctx = CycleContext(
        account_label="paper", is_live=is_live, equity=Decimal(100000), cash=Decimal(100000),
        buying_power=Decimal(100000), positions={}, prices={symbol: Decimal(10)}, universe=None,
        limits=RiskLimits.from_settings(kill_switch=False), now=REPLAY_START,
    )  # fmt: skip
    candidate = Candidate(
        strategy=_spec(), symbol=symbol, side=side, price=Decimal(10), features={},
        event_ts=REPLAY_START, qty=Decimal(1),
    )  # fmt: skip
    return list(gate_risk(candidate, ctx).reasons)


def _order_type_now() -> str:
    ctx = CycleContext(
        account_label="paper", is_live=False, equity=Decimal(100000), cash=Decimal(100000),
        buying_power=Decimal(100000), positions={}, prices={}, universe=None,
        limits=RiskLimits.from_settings(kill_switch=False), now=REPLAY_START,
    )  # fmt: skip
    candidate = Candidate(
        strategy=_spec(), symbol="AAPL", side="buy", price=Decimal("10.00"),
        features={"spread": 0.02}, event_ts=REPLAY_START, qty=Decimal(1),
    )  # fmt: skip
    gate_execution_policy(candidate, ctx)
    return candidate.order_type


# --------------------------------------------------------------------------------- probes
# Each probe runs the governed code twice: first with the Flipt flag off, then on. It returns
# (observed with the flag off, observed with the flag on).


def _probe_trading_enabled(flipt, settings) -> tuple[Any, Any]:
    settings.TRADING_ENABLED = False
    cycles = Cycles()
    flipt.set_flags(flag("torghut_trading_enabled", False))
    off = cycles.next().status
    flipt.set_flags(flag("torghut_trading_enabled", True))
    on = cycles.next().status
    return off, on


def _probe_live_enabled(flipt, settings) -> tuple[Any, Any]:
    settings.TRADING_LIVE_ENABLED = True  # a one-way flag: it can only switch live off
    settings.TRADING_LANES = [paper_lane("live", mode="live")]
    live = lane_config("live")
    flipt.set_flags(flag("torghut_trading_live_enabled", False))
    off = submission_verdict(live).reason
    flipt.set_flags(flag("torghut_trading_live_enabled", True))
    return off, submission_verdict(live).reason


def _crypto_probe(key: str, setting: str, reason: str, *, is_live: bool = False) -> Probe:
    def probe(flipt, settings) -> tuple[Any, Any]:
        for name in ("TRADING_WS_CRYPTO_ENABLED", "TRADING_UNIVERSE_CRYPTO_ENABLED",
                     "TRADING_CRYPTO_ENABLED", "TRADING_CRYPTO_LIVE_ENABLED"):  # fmt: skip
            setattr(settings, name, True)
        settings.TRADING_LIVE_ENABLED = True
        flipt.set_flags(flag(key, False))
        off = reason in _gate_reasons("BTC/USD", "buy", is_live=is_live)
        flipt.set_flags(flag(key, True))
        return off, reason in _gate_reasons("BTC/USD", "buy", is_live=is_live)

    return probe


def _probe_order_feed(flipt, settings) -> tuple[Any, Any]:
    from orderfeed.simfeed import reset_producer
    from orderfeed.tests.conftest import create_topics

    settings.TRADING_ORDER_FEED_ENABLED = False
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = _kafka()
    settings.TRADING_ORDER_FEED_TOPIC_V2 = f"flags-{uuid.uuid4().hex}"
    # topics are never auto-created: the feed refuses a missing one
    create_topics(_kafka(), (settings.TRADING_ORDER_FEED_TOPIC_V2, 1))
    reset_producer()
    cycles = Cycles()
    try:
        flipt.set_flags(flag("torghut_trading_order_feed_enabled", False))
        cycles.next()  # the order's updates are applied here: events stored at once
        off = OrderEvent.objects.count() > 0
        events = OrderEvent.objects.count()
        flipt.set_flags(flag("torghut_trading_order_feed_enabled", True))
        cycles.next()  # published to Kafka for the consumer: nothing stored here
        on = OrderEvent.objects.count() > events
        assert not SimTradeUpdate.objects.filter(published_at__isnull=True).exists()
    finally:
        reset_producer()
    return off, on


def _kafka() -> str:
    import os

    bootstrap = os.environ.get("TEST_KAFKA_BOOTSTRAP")
    if not bootstrap:
        pytest.fail("TEST_KAFKA_BOOTSTRAP is not set: run the suite through `make test`")
    return bootstrap


def _probe_feature_quality(flipt, settings) -> tuple[Any, Any]:
    settings.TRADING_FEATURE_QUALITY_ENABLED = False
    settings.TRADING_FEATURE_MAX_STALENESS_MS = 1000  # every replayed signal is 30 s old
    cycles = Cycles()
    flipt.set_flags(flag("torghut_trading_feature_quality_enabled", False))
    off = cycles.next().status
    flipt.set_flags(flag("torghut_trading_feature_quality_enabled", True))
    return off, cycles.next().status


def _probe_universe_fail_safe(flipt, settings) -> tuple[Any, Any]:
    settings.TRADING_UNIVERSE_SOURCE = "jangar"
    settings.JANGAR_SYMBOLS_URL = f"http://127.0.0.1:{free_port()}/symbols"  # nobody listens
    settings.TRADING_UNIVERSE_TIMEOUT_SECONDS = 1.0
    key = "torghut_trading_universe_require_non_empty_jangar"
    cache.delete(CACHE_KEY)
    flipt.set_flags(flag(key, False))
    off = universe_resolve().blocked_reason
    flipt.set_flags(flag(key, True))
    return off, universe_resolve().blocked_reason


def _probe_prefer_limit(flipt, settings) -> tuple[Any, Any]:
    settings.TRADING_EXECUTION_PREFER_LIMIT = False
    flipt.set_flags(flag("torghut_trading_execution_prefer_limit", False))
    off = _order_type_now()
    flipt.set_flags(flag("torghut_trading_execution_prefer_limit", True))
    return off, _order_type_now()


def _probe_allow_shorts(flipt, settings) -> tuple[Any, Any]:
    settings.TRADING_ALLOW_SHORTS = False
    flipt.set_flags(flag("torghut_trading_allow_shorts", False))
    off = "shorts_not_allowed" in _gate_reasons("AAPL", "sell")
    flipt.set_flags(flag("torghut_trading_allow_shorts", True))
    return off, "shorts_not_allowed" in _gate_reasons("AAPL", "sell")


def _probe_kill_switch(flipt, settings) -> tuple[Any, Any]:
    settings.TRADING_KILL_SWITCH_ENABLED = False
    cycles = Cycles()
    flipt.set_flags(flag("torghut_trading_kill_switch_enabled", False))
    cycles.next()
    off = TradeDecision.objects.order_by("pk").last().status  # type: ignore[union-attr]
    flipt.set_flags(flag("torghut_trading_kill_switch_enabled", True))
    cycles.next()
    last = TradeDecision.objects.order_by("pk").last()
    assert last is not None
    return off, (last.status, last.reject_reason)


def _probe_emergency_stop(flipt, settings) -> tuple[Any, Any]:
    settings.TRADING_EMERGENCY_STOP_ENABLED = False
    settings.TRADING_ROLLBACK_SIGNAL_LAG_SECONDS_LIMIT = 600.0
    state = LaneState.objects.create(
        account_label="paper", market_open=True, signal_lag_seconds=900.0
    )
    flipt.set_flags(flag("torghut_trading_emergency_stop_enabled", False))
    emergency_stop_evaluate(lane=state, snapshot={})
    off = SafetyState.objects.get(scope="global").emergency_stop_active
    flipt.set_flags(flag("torghut_trading_emergency_stop_enabled", True))
    emergency_stop_evaluate(lane=state, snapshot={})
    return off, SafetyState.objects.get(scope="global").emergency_stop_active


def _llm_probe(key: str, setting: str, observe: Callable[[], Any], env: bool = False) -> Probe:
    def probe(flipt, settings) -> tuple[Any, Any]:
        setattr(settings, setting, env)
        flipt.set_flags(flag(key, False))
        off = observe()
        flipt.set_flags(flag(key, True))
        return off, observe()

    return probe


def _posture(**changes: Any) -> Callable[[], Any]:
    def observe() -> Any:
        return review_posture(ReviewConfig.current(), **changes)

    return observe


def _llm_settings(settings) -> None:
    settings.LLM_ROLLOUT_STAGE = "stage3"
    settings.LLM_EVALUATION_REPORT = "eval"
    settings.LLM_EFFECTIVE_CHALLENGE_ID = "challenge"
    settings.LLM_SHADOW_COMPLETED_AT = "2026-01-01T00:00:00Z"
    settings.LLM_PROVIDER = "self_hosted"
    settings.LLM_SELF_HOSTED_MODEL = "m"
    settings.LLM_MODEL_VERSION_LOCK = "m"
    settings.LLM_FAIL_MODE = "pass_through"
    settings.LLM_FAIL_MODE_ENFORCEMENT = "configured"
    settings.LLM_ADJUSTMENT_ALLOWED = True
    settings.LLM_ADJUSTMENT_APPROVED = True
    settings.LLM_SHADOW_MODE = False


def _review_enabled() -> Any:
    return ReviewConfig.current().enabled


def _committee_enabled() -> Any:
    return ReviewConfig.current().committee_enabled


PROBES: dict[str, tuple[Probe, tuple[Any, Any]]] = {
    "TRADING_ENABLED": (_probe_trading_enabled, ("trading_disabled", "ok")),
    "TRADING_LIVE_ENABLED": (
        _probe_live_enabled,
        ("live_trading_disabled", "live_approval_missing"),
    ),
    "TRADING_WS_CRYPTO_ENABLED": (
        _crypto_probe(
            "torghut_ws_crypto_enabled", "TRADING_WS_CRYPTO_ENABLED", "crypto_ws_disabled"
        ),
        (True, False),
    ),
    "TRADING_UNIVERSE_CRYPTO_ENABLED": (
        _crypto_probe(
            "torghut_universe_crypto_enabled",
            "TRADING_UNIVERSE_CRYPTO_ENABLED",
            "crypto_universe_disabled",
        ),
        (True, False),
    ),  # fmt: skip
    "TRADING_CRYPTO_ENABLED": (
        _crypto_probe(
            "torghut_trading_crypto_enabled", "TRADING_CRYPTO_ENABLED", "crypto_trading_disabled"
        ),
        (True, False),
    ),  # fmt: skip
    "TRADING_CRYPTO_LIVE_ENABLED": (
        _crypto_probe(
            "torghut_trading_crypto_live_enabled",
            "TRADING_CRYPTO_LIVE_ENABLED",
            "crypto_live_trading_disabled",
            is_live=True,
        ),
        (True, False),
    ),  # fmt: skip
    "TRADING_ORDER_FEED_ENABLED": (_probe_order_feed, (True, False)),
    "TRADING_FEATURE_QUALITY_ENABLED": (_probe_feature_quality, ("ok", "feature_quality_rejected")),
    "TRADING_UNIVERSE_REQUIRE_NON_EMPTY_JANGAR": (
        _probe_universe_fail_safe,
        ("", "universe_source_unavailable"),
    ),
    "TRADING_EXECUTION_PREFER_LIMIT": (_probe_prefer_limit, ("market", "limit")),
    "TRADING_ALLOW_SHORTS": (_probe_allow_shorts, (True, False)),
    "TRADING_KILL_SWITCH_ENABLED": (
        _probe_kill_switch,
        ("submitted", ("rejected", "kill_switch_active")),
    ),
    "TRADING_EMERGENCY_STOP_ENABLED": (_probe_emergency_stop, (False, True)),
    "LLM_ENABLED": (
        _llm_probe("torghut_llm_enabled", "LLM_ENABLED", _review_enabled),
        (False, True),
    ),
    "LLM_COMMITTEE_ENABLED": (
        _llm_probe("torghut_llm_committee_enabled", "LLM_COMMITTEE_ENABLED", _committee_enabled),
        (False, True),
    ),
}

# Flags whose behaviour is observed elsewhere, on the research loop or the LLM review, with the
# same flip on the Flipt stand-in (the module named holds the probe).
PROBED_ELSEWHERE = {
    "TRADING_AUTONOMY_ENABLED": "autonomy/tests/test_flags_at_run_time.py",
    "TRADING_AUTONOMY_ALLOW_LIVE_PROMOTION": "autonomy/tests/test_flags_at_run_time.py",
    "TRADING_EVIDENCE_CONTINUITY_ENABLED": "autonomy/tests/test_flags_at_run_time.py",
    "TRADING_DRIFT_GOVERNANCE_ENABLED": "autonomy/tests/test_flags_at_run_time.py",
    "TRADING_DRIFT_LIVE_PROMOTION_REQUIRES_EVIDENCE": "autonomy/tests/test_flags_at_run_time.py",
    "TRADING_DRIFT_ROLLBACK_ON_PERFORMANCE": "autonomy/tests/test_flags_at_run_time.py",
    "TRADING_ALLOCATOR_ENABLED": "trading/tests/core/test_allocator.py",
}


def test_every_mapped_flag_has_a_run_time_probe():
    covered = set(PROBES) | set(PROBED_ELSEWHERE) | set(LLM_POSTURE_PROBES)
    assert sorted(set(SETTING_FLAGS) - covered) == []
    assert sorted(covered - set(SETTING_FLAGS)) == []
    assert len(FLAG_SETTINGS) == len(SETTING_FLAGS)


@pytest.mark.parametrize("setting", sorted(PROBES))
def test_a_flip_in_flipt_changes_the_next_cycle(setting, flipt, lane):
    probe, expected = PROBES[setting]
    assert probe(flipt, lane) == expected


def _live_fail_mode() -> Any:
    return review_posture(ReviewConfig.current(), is_live=True).fail_mode


def _paper_shadow() -> Any:
    return review_posture(ReviewConfig.current(), is_live=False).shadow


def _paper_adjustments() -> Any:
    return review_posture(ReviewConfig.current(), is_live=False).adjustments_allowed


def _market_context_required() -> Any:
    # what the review task reads before the model call (trading/services/review_context.py)
    return MarketContextPolicy.current().required


LLM_POSTURE_PROBES: dict[str, tuple[str, Callable[[], Any], bool, tuple[Any, Any]]] = {
    # setting: (flag key, observed review posture, env value, (flag off, flag on))
    "LLM_FAIL_OPEN_LIVE_APPROVED": (
        "torghut_llm_fail_open_live_approved", _live_fail_mode, True, ("veto", "pass_through"),
    ),
    "LLM_SHADOW_MODE": ("torghut_llm_shadow_mode", _paper_shadow, False, (False, True)),
    "LLM_ADJUSTMENT_ALLOWED": (
        "torghut_llm_adjustment_allowed", _paper_adjustments, False, (False, True),
    ),
    "LLM_ADJUSTMENT_APPROVED": (
        "torghut_llm_adjustment_approved", _paper_adjustments, True, (False, True),
    ),
    "TRADING_MARKET_CONTEXT_REQUIRED": (
        "torghut_trading_market_context_required", _market_context_required, False,
        (False, True),
    ),
}  # fmt: skip


@pytest.mark.parametrize("setting", sorted(LLM_POSTURE_PROBES))
def test_a_flip_in_flipt_changes_the_next_llm_review_posture(setting, flipt, settings):
    _llm_settings(settings)
    key, observe, env, expected = LLM_POSTURE_PROBES[setting]
    assert _llm_probe(key, setting, observe, env)(flipt, settings) == expected


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    cache.delete(CACHE_KEY)
    yield
    cache.delete(CACHE_KEY)
