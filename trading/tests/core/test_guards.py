"""Firewall-only broker mutation, the live guard, the strategy circuit breaker, the Jangar universe."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from tests.conftest import paper_lane, staff_user
from tests.servers.base import Response, TestHTTPServer
from trading.lanes import LaneConfig, ReadOnlyBrokerError, broker_for_lane
from trading.models import Strategy
from trading.selectors.safety import submission_verdict
from trading.services.decisions import strategy_record_error, strategy_record_success
from trading.services.live_approvals import (
    live_approval_approve,
    live_approval_request,
    live_approval_revoke,
)
from trading.services.universe import universe_resolve

ROOT = Path(__file__).resolve().parents[3]
LIVE = LaneConfig(
    label="live-1",
    mode="live",
    broker="simulated",
    enabled=True,
    api_key="",
    secret_key="",
    base_url="",
)


def test_only_the_firewall_calls_broker_mutations():
    """Static guard: no module outside the firewall and the broker adapters mutates orders."""
    pattern = re.compile(r"\.(submit_order|cancel_order|cancel_all_orders)\(")
    allowed = {"trading/firewall.py", "trading/brokers/alpaca.py", "trading/brokers/simulated.py"}
    offenders = []
    for path in ROOT.glob("**/*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith((".venv/", "tests/", "bench/")) or "/tests/" in rel or rel in allowed:
            continue
        if pattern.search(path.read_text(encoding="utf-8")):
            offenders.append(rel)
    assert offenders == []


@pytest.mark.django_db
def test_read_only_broker_refuses_mutations():
    broker = broker_for_lane(LaneConfig("paper", "paper", "simulated", True, "", "", ""))
    assert broker.get_account().cash > 0
    for name in ("submit_order", "cancel_order", "cancel_all_orders"):
        with pytest.raises(ReadOnlyBrokerError):
            getattr(broker, name)


@pytest.mark.django_db
def test_live_lane_needs_live_enabled_and_a_two_person_approval(settings):
    settings.TRADING_ENABLED = True
    settings.TRADING_KILL_SWITCH_ENABLED = False
    settings.TRADING_FEATURE_FLAGS_ENABLED = False
    settings.TRADING_LANES = [paper_lane("live-1", mode="live")]
    settings.TRADING_LIVE_ENABLED = False
    assert submission_verdict(LIVE).reason == "live_trading_disabled"
    settings.TRADING_LIVE_ENABLED = True
    assert submission_verdict(LIVE).reason == "live_approval_missing"
    requester = staff_user("risk-requester", "add_liveapproval")
    approver = staff_user("risk-officer", "approve_liveapproval")
    approval = live_approval_request(
        account_label="live-1", actor=requester, reason="go-live review #12", ttl=timedelta(hours=1)
    )
    assert submission_verdict(LIVE).reason == "live_approval_missing"  # a request is not enough
    live_approval_approve(approval_id=approval.pk, actor=approver, reason="reviewed")
    assert submission_verdict(LIVE).allowed is True
    live_approval_revoke(approval_id=approval.pk, actor=approver, reason="pause")
    assert submission_verdict(LIVE).reason == "live_approval_missing"
    second = live_approval_request(
        account_label="live-1", actor=requester, reason="again", ttl=timedelta(hours=1)
    )
    live_approval_approve(approval_id=second.pk, actor=approver, reason="reviewed")
    assert submission_verdict(LIVE).allowed is True
    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=1)):
        assert submission_verdict(LIVE).reason == "live_approval_missing"  # expired


@pytest.mark.django_db
def test_strategy_circuit_breaker_degrades_after_consecutive_errors(settings):
    settings.TRADING_STRATEGY_RUNTIME_CIRCUIT_ERRORS = 3
    settings.TRADING_STRATEGY_RUNTIME_CIRCUIT_COOLDOWN_SECONDS = 300
    strategy = Strategy.objects.create(name="flaky", strategy_type="legacy_macd_rsi", enabled=True)
    strategy_record_error(strategy=strategy, error=ValueError("a"))
    strategy_record_success(strategy=strategy)  # a success resets the streak
    for _ in range(2):
        strategy_record_error(strategy=strategy, error=ValueError("b"))
    assert Strategy.objects.get(pk=strategy.pk).degraded_until is None
    strategy_record_error(strategy=strategy, error=ValueError("c"))
    row = Strategy.objects.get(pk=strategy.pk)
    assert row.degraded_until is not None
    assert 299 <= (row.degraded_until - timezone.now()).total_seconds() <= 300
    assert row.last_error == "ValueError: c"


@pytest.fixture
def jangar():
    server = TestHTTPServer()
    state = {"symbols": ["aapl", {"symbol": "MSFT"}]}
    server.route("GET", "/api/torghut/symbols", lambda request: Response(200, state))
    server.start()
    cache.clear()
    yield server, state
    server.stop()
    cache.clear()


def test_jangar_universe_cache_stale_window_and_fail_safe(jangar, settings):
    server, state = jangar
    settings.TRADING_UNIVERSE_SOURCE = "jangar"
    settings.JANGAR_SYMBOLS_URL = f"{server.url}/api/torghut/symbols"
    settings.TRADING_UNIVERSE_CACHE_SECONDS = 300
    settings.TRADING_UNIVERSE_MAX_STALE_SECONDS = 900
    settings.TRADING_UNIVERSE_REQUIRE_NON_EMPTY_JANGAR = True
    first = universe_resolve(now=1000.0)
    assert (first.symbols, first.status) == (frozenset({"AAPL", "MSFT"}), "ok")
    state["symbols"] = ["TSLA"]
    assert universe_resolve(now=1200.0).symbols == frozenset({"AAPL", "MSFT"})  # cached
    server.stop()
    degraded = universe_resolve(now=1400.0)
    assert (degraded.symbols, degraded.status) == (frozenset({"AAPL", "MSFT"}), "degraded")
    blocked = universe_resolve(now=2000.0)
    assert (blocked.symbols, blocked.status, blocked.blocked_reason) == (
        frozenset(),
        "unavailable",
        "universe_source_unavailable",
    )
    settings.TRADING_UNIVERSE_REQUIRE_NON_EMPTY_JANGAR = False
    assert universe_resolve(now=2000.0).symbols is None
