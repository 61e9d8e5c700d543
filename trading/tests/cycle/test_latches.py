"""Loss and failure latches driven by real trade cycles: drawdown from the lane's high-water mark,
the session's daily loss, and the share of submits without a clean broker answer. Each one
latches the database emergency stop with its incident, audit event and metric, cancels the
lane's open orders, blocks new submissions, and is cleared only as its rule says."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth import get_user_model

from tests.servers.alpaca_server import AlpacaServer
from tests.servers.base import Fault
from trading.brokers.simulated import SimulatedBroker
from trading.metrics import EMERGENCY_STOPS, LANE_DRAWDOWN
from trading.models import (
    Execution,
    Incident,
    LaneState,
    SafetyEvent,
    SafetyState,
    TradeCursor,
    TradeDecision,
)
from trading.selectors.safety import FallbackWindow, fallback_window
from trading.selectors.trading import trading_status
from trading.services.cycle import CycleResult, trading_cycle_run
from trading.services.reconcile import reconcile_lane
from trading.services.safety import DailyLossLockedError, emergency_stop_clear
from trading.tests.cycle.conftest import REPLAY_START, write_signals

pytestmark = pytest.mark.django_db

BUY = ("1.2", "0.5", "20")  # MACD above its signal, RSI oversold
FLAT = ("-0.2", "0.1", "50")  # no intent


def rows(*entries: tuple[int, str, str, tuple[str, str, str]]):
    """(minute after 14:30, symbol, price, features) -> replay rows."""
    return [
        (f"2026-03-03T14:{30 + minute:02d}:00Z", symbol, n, price, *features)
        for n, (minute, symbol, price, features) in enumerate(entries, start=1)
    ]


# AAPL bought at 100 (2,000 of cash: half of it), filled at 100, then marked down to 80 while a
# MSFT buy rests unfilled: equity 2,000 -> 1,800, a 10% drawdown and a 10% loss on the day
FALL = rows(
    (1, "AAPL", "100.00", BUY),
    (2, "AAPL", "100.00", FLAT),
    (2, "MSFT", "50.00", BUY),
    (3, "AAPL", "80.00", FLAT),
    (5, "NVDA", "40.00", BUY),
)


@pytest.fixture
def falling(replay_settings, macd_strategy, tmp_path):
    replay_settings.TRADING_SIGNAL_REPLAY_PATH = str(write_signals(tmp_path / "fall.csv", FALL))
    replay_settings.SIMULATED_BROKER_STARTING_CASH = Decimal(2000)
    replay_settings.SIMULATED_BROKER_SLIPPAGE_BPS = Decimal(0)
    replay_settings.TRADING_EMERGENCY_STOP_ENABLED = True
    replay_settings.TRADING_EMERGENCY_STOP_RECOVERY_CYCLES = 1
    # the replay ends and the next day comes: only the loss limits are under test here
    replay_settings.TRADING_ROLLBACK_SIGNAL_LAG_SECONDS_LIMIT = 10**7
    replay_settings.TRADING_ROLLBACK_SIGNAL_STALENESS_ALERT_STREAK_LIMIT = 10**6
    replay_settings.TRADING_ROLLBACK_MAX_DRAWDOWN_LIMIT = 0.08
    replay_settings.TRADING_ROLLBACK_DAILY_LOSS_LIMIT = 0.05
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    return replay_settings


@pytest.fixture
def operator():
    return get_user_model().objects.create_user("op", password="x")


def cycle(seconds: int, label: str = "paper") -> CycleResult:
    """A cycle at REPLAY_START + seconds, with the wall clock there too (snapshots, stamps)."""
    now = REPLAY_START + timedelta(seconds=seconds)
    with time_machine.travel(now, tick=False):
        return trading_cycle_run(account_label=label, now=now)


def stops(reason: str) -> float:
    return float(EMERGENCY_STOPS.labels(reason=reason)._value.get())


def sim_orders() -> dict[str, str]:
    return {o.symbol: o.status for o in SimulatedBroker("paper").list_orders(status="all")}


def fall_until_latched() -> list[CycleResult]:
    """A (+30) submits the AAPL buy; B (+90) fills it at 100 and submits MSFT; C (+150) marks
    AAPL at 80; D (+210) starts from the marked-down account and latches."""
    return [cycle(30), cycle(90), cycle(150), cycle(210)]


def test_drawdown_from_the_high_water_mark_latches_and_survives_a_plain_clear(falling, operator):
    falling.TRADING_ROLLBACK_DAILY_LOSS_LIMIT = 1.0  # only the drawdown limit is in play
    before = stops("max_drawdown_exceeded")
    a, b, c, d = fall_until_latched()
    assert (a.submitted, b.submitted, c.emergency_stop) == (1, 1, "")
    assert (d.emergency_stop, d.cancelled_orders) == ("triggered", 1)
    assert sim_orders() == {"AAPL": "filled", "MSFT": "canceled"}
    state = SafetyState.objects.get(scope="global")
    assert (state.emergency_stop_active, state.emergency_stop_reasons) == (
        True,
        ["max_drawdown_exceeded"],
    )
    lane = LaneState.objects.get(account_label="paper")
    assert (lane.equity_high_water_mark, lane.last_equity) == (Decimal(2000), Decimal(1800))
    incident = Incident.objects.get()
    assert incident.reasons == ["max_drawdown_exceeded"]
    assert {k: incident.snapshot[k] for k in ("lane", "high_water_mark", "equity", "drawdown")} == {
        "lane": "paper",
        "high_water_mark": "2000.000000",
        "equity": "1800.000000",
        "drawdown": "0.100000",
    }
    event = SafetyEvent.objects.get(kind="emergency_stop_triggered")
    assert (event.account_label, event.reason) == ("paper", "max_drawdown_exceeded")
    assert stops("max_drawdown_exceeded") == before + 1
    assert LANE_DRAWDOWN.labels(account="paper")._value.get() == pytest.approx(0.1)
    assert trading_status()["lanes"][0]["equity"] == {
        "last_equity": Decimal("1800.000000"),
        "high_water_mark": Decimal("2000.000000"),
        "drawdown": "0.100000",
        "session_day": date(2026, 3, 3),
        "session_start_equity": Decimal("2000.000000"),
        "daily_loss": "0.100000",
    }

    # latched: the NVDA buy is refused at the firewall, and clean cycles recover nothing
    e = cycle(330)
    assert (e.submitted, e.rejected, e.emergency_stop) == (0, 1, "active")
    assert TradeDecision.objects.get(symbol="NVDA").reject_reason == "emergency_stop_active"
    assert set(sim_orders()) == {"AAPL", "MSFT"}
    assert SafetyState.objects.get(scope="global").emergency_stop_active is True

    # a clear keeps the mark: the lane is still 10% under it and latches again
    emergency_stop_clear(actor=operator, reason="looked at it")
    assert cycle(390).emergency_stop == "triggered"
    assert stops("max_drawdown_exceeded") == before + 2
    # accepting the loss knowingly: the mark drops to the equity, audited, and stays clear
    emergency_stop_clear(actor=operator, reason="accept the loss", rebase_high_water_mark=True)
    cleared = SafetyEvent.objects.filter(kind="emergency_stop_cleared").order_by("pk")
    assert [e.details for e in cleared] == [
        {"reasons": ["max_drawdown_exceeded"]},
        {
            "reasons": ["max_drawdown_exceeded"],
            "rebased_high_water_marks": {"paper": {"from": "2000.000000", "to": "1800.000000"}},
        },
    ]
    assert cycle(450).emergency_stop == ""
    assert SafetyState.objects.get(scope="global").emergency_stop_active is False
    assert LaneState.objects.get(account_label="paper").equity_high_water_mark == Decimal(1800)


def test_daily_loss_latches_for_the_rest_of_the_us_eastern_session(falling, operator):
    falling.TRADING_ROLLBACK_MAX_DRAWDOWN_LIMIT = 1.0  # only the daily loss limit is in play
    before = stops("daily_loss_limit_exceeded")
    *_, d = fall_until_latched()
    assert (d.emergency_stop, d.cancelled_orders) == ("triggered", 1)
    assert sim_orders() == {"AAPL": "filled", "MSFT": "canceled"}
    reasons = ["daily_loss_limit_exceeded:2026-03-03"]
    assert SafetyState.objects.get(scope="global").emergency_stop_reasons == reasons
    incident = Incident.objects.get()
    assert incident.reasons == reasons
    assert (incident.snapshot["session_start_equity"], incident.snapshot["daily_loss"]) == (
        "2000.000000",
        "0.100000",
    )
    assert SafetyEvent.objects.get(kind="emergency_stop_triggered").reason == reasons[0]
    assert stops("daily_loss_limit_exceeded") == before + 1
    e = cycle(330)
    assert (e.submitted, e.rejected, e.emergency_stop) == (0, 1, "active")
    assert set(sim_orders()) == {"AAPL", "MSFT"}

    # refused until midnight in New York (05:00 UTC in March, before daylight saving time)
    for moment in (datetime(2026, 3, 3, 20, 0), datetime(2026, 3, 4, 4, 59, 59)):
        with time_machine.travel(moment.replace(tzinfo=UTC), tick=False):
            with pytest.raises(DailyLossLockedError, match="next session day"):
                emergency_stop_clear(actor=operator, reason="back to work")
    assert SafetyState.objects.get(scope="global").emergency_stop_active is True
    assert SafetyEvent.objects.filter(kind="emergency_stop_cleared").count() == 0
    with time_machine.travel(datetime(2026, 3, 4, 5, 0, tzinfo=UTC), tick=False):
        emergency_stop_clear(actor=operator, reason="new session, loss reviewed")
    assert SafetyState.objects.get(scope="global").emergency_stop_active is False
    # the next session starts from the equity it finds: no loss on the day, no latch
    next_day = int((datetime(2026, 3, 4, 14, 31, tzinfo=UTC) - REPLAY_START).total_seconds())
    assert cycle(next_day).emergency_stop == ""
    lane = LaneState.objects.get(account_label="paper")
    assert (lane.session_day, lane.session_start_equity) == (date(2026, 3, 4), Decimal(1800))


def test_the_latches_do_nothing_while_the_emergency_stop_is_disabled(falling):
    falling.TRADING_EMERGENCY_STOP_ENABLED = False
    before = [stops("max_drawdown_exceeded"), stops("daily_loss_limit_exceeded")]
    results = [*fall_until_latched(), cycle(330)]
    assert [r.emergency_stop for r in results] == ["", "", "", "", ""]
    # nothing cancelled, and the NVDA buy meets the ordinary gates, not a latched stop
    assert sim_orders() == {"AAPL": "filled", "MSFT": "accepted"}
    assert TradeDecision.objects.get(symbol="NVDA").reject_reason == "insufficient_buying_power"
    assert SafetyState.objects.filter(emergency_stop_active=True).count() == 0
    assert (Incident.objects.count(), SafetyEvent.objects.count()) == (0, 0)
    assert [stops("max_drawdown_exceeded"), stops("daily_loss_limit_exceeded")] == before
    # the marks still move: the latch is what the switch turns off
    lane = LaneState.objects.get(account_label="paper")
    assert (lane.equity_high_water_mark, lane.last_equity) == (Decimal(2000), Decimal(1800))


# five buys in five symbols, one a minute
BUYS = rows(
    (1, "AAPL", "100.00", BUY),
    (2, "MSFT", "50.00", BUY),
    (3, "NVDA", "40.00", BUY),
    (4, "AMZN", "20.00", BUY),
    (5, "META", "25.00", BUY),
)


@pytest.fixture
def alpaca(replay_settings, macd_strategy, tmp_path):
    replay_settings.TRADING_SIGNAL_REPLAY_PATH = str(write_signals(tmp_path / "buys.csv", BUYS))
    server = AlpacaServer().start()
    replay_settings.TRADING_LANES = [
        {
            "label": "alp",
            "mode": "paper",
            "broker": "alpaca",
            "enabled": True,
            "api_key": "key",
            "secret_key": "secret",
            "base_url": server.url,
        }
    ]
    replay_settings.APCA_HTTP_TIMEOUT_SECONDS = 0.3
    replay_settings.TRADING_EMERGENCY_STOP_ENABLED = True
    replay_settings.TRADING_ROLLBACK_FALLBACK_RATIO_LIMIT = 0.25
    TradeCursor.objects.create(
        source="replay", account_label="alp", state={"anchor": REPLAY_START.isoformat()}
    )
    from django.core.cache import cache

    cache.clear()
    yield server
    server.stop()


def test_submits_without_a_clean_broker_answer_latch_the_fallback_ratio(alpaca, operator):
    before = stops("fallback_ratio_exceeded")
    # the first two submits time out after Alpaca accepted them: looked up and adopted
    alpaca.inject(Fault("POST", "/v2/orders", after_handler=True, delay=1.0, times=2))
    results = [cycle(seconds, "alp") for seconds in (30, 90, 150, 210)]
    assert [r.outcomes for r in results] == [{"adopted": 1}, {"adopted": 1}] + [
        {"submitted": 1}
    ] * 2
    # three answered submits at the top of the fourth cycle: too few to judge, nothing latched
    assert [r.emergency_stop for r in results] == ["", "", "", ""]
    answers = dict(TradeDecision.objects.values_list("symbol", "submit_answer"))
    assert answers == {
        "AAPL": "ambiguous",
        "MSFT": "ambiguous",
        "NVDA": "accepted",
        "AMZN": "accepted",
    }
    fifth = cycle(270, "alp")  # 2 of 4 fell back: 0.5 >= 0.25
    assert (fifth.emergency_stop, fifth.cancelled_orders) == ("triggered", 4)
    assert sorted(o["status"] for o in alpaca.orders.values()) == ["canceled"] * 4
    assert (fifth.submitted, fifth.rejected) == (0, 1)
    assert alpaca.posts() == 4  # META never reached Alpaca
    assert SafetyState.objects.get(scope="global").emergency_stop_reasons == [
        "fallback_ratio_exceeded"
    ]
    incident = Incident.objects.get()
    assert (incident.reasons, incident.snapshot["fallback"]) == (
        ["fallback_ratio_exceeded"],
        {"submits": 4, "fallbacks": 2},
    )
    event = SafetyEvent.objects.get(kind="emergency_stop_triggered")
    assert (event.account_label, event.reason) == ("alp", "fallback_ratio_exceeded")
    assert stops("fallback_ratio_exceeded") == before + 1
    # not auto-recoverable; a person clears it, and the window starts again from the clear
    assert cycle(330, "alp").emergency_stop == "active"
    assert SafetyState.objects.get(scope="global").emergency_stop_active is True
    with time_machine.travel(REPLAY_START + timedelta(seconds=360), tick=False):
        emergency_stop_clear(actor=operator, reason="alpaca status page: resolved")
    assert cycle(390, "alp").emergency_stop == ""
    assert SafetyState.objects.get(scope="global").emergency_stop_active is False


def test_a_submit_settled_by_reconciliation_counts_as_a_fallback(alpaca):
    cycle(30, "alp")
    decision = TradeDecision.objects.get()
    assert decision.submit_answer == "accepted"
    # what a worker killed between Alpaca's accept and our commit leaves behind
    Execution.objects.all().delete()
    TradeDecision.objects.filter(pk=decision.pk).update(
        status="submitting", submit_answer="", submit_answered_at=None
    )
    assert reconcile_lane(account_label="alp").adopted == 1
    decision.refresh_from_db()
    assert (decision.status, decision.submit_answer) == ("submitted", "recovered")
    assert fallback_window(account_label="alp") == FallbackWindow(submits=1, fallbacks=1)
