"""A streak of failed scheduled autonomy runs latches the trading emergency stop."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.cache import cache

from autonomy.models import ResearchRun
from autonomy.selectors import scheduled_failure_streak
from autonomy.services.schedule import LOCK_KEY, lane_tick
from tests.conftest import paper_lane
from trading.brokers.base import OrderRequest
from trading.brokers.simulated import SimulatedBroker
from trading.firewall import OrderFirewall
from trading.lanes import lane_config
from trading.metrics import EMERGENCY_STOPS
from trading.models import (
    Incident,
    SafetyEvent,
    SafetyState,
    Strategy,
    TaSignal,
    TradeDecision,
)
from trading.services.cycle import trading_cycle_run
from trading.services.execution import execution_record

from .conftest import SAMPLE_SIGNALS, SAMPLE_STRATEGY

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
REASON = "autonomy_failure_streak_exceeded"


@pytest.fixture
def broken_lane(settings, tmp_path):
    """Autonomy on, the emergency stop on, and a candidate whose parameters break the lane."""
    broken = SAMPLE_STRATEGY.read_text().replace("buy_rsi_threshold: 35", "buy_rsi_threshold: x")
    (tmp_path / "broken.yaml").write_text(broken)
    settings.TRADING_AUTONOMY_ENABLED = True
    settings.TRADING_SIGNAL_SOURCE = "kafka"
    settings.TRADING_ARTIFACT_DIR = str(tmp_path / "autonomy")
    settings.TRADING_AUTONOMY_STRATEGY_CONFIG_PATH = str(tmp_path / "broken.yaml")
    settings.TRADING_LANES = [paper_lane()]
    settings.TRADING_ENABLED = True
    settings.TRADING_KILL_SWITCH_ENABLED = False
    settings.TRADING_FEATURE_FLAGS_ENABLED = False
    settings.TRADING_EMERGENCY_STOP_ENABLED = True
    settings.TRADING_ROLLBACK_AUTONOMY_FAILURE_STREAK_LIMIT = 3
    cache.delete(LOCK_KEY)
    return settings


def store_signals(end: datetime, first_offset: int) -> None:
    """The sample signals moved to end a minute before `end` (a window of its own)."""
    rows = json.loads(Path(SAMPLE_SIGNALS).read_text())
    last = datetime.fromisoformat(rows[-1]["event_ts"])
    for n, row in enumerate(rows):
        ts = end - timedelta(minutes=1) - (last - datetime.fromisoformat(row["event_ts"]))
        TaSignal.objects.create(
            event_ts=ts,
            symbol=row["symbol"],
            seq=first_offset + n,
            row={**row, "event_ts": ts.isoformat(), "seq": first_offset + n},
            source_topic="torghut.ta.signals.v1",
            source_partition=0,
            source_offset=first_offset + n,
            received_at=ts,
        )


def tick(k: int) -> str:
    """The k-th scheduled tick, 20 minutes apart, over signals of its own; its outcome."""
    now = NOW + timedelta(minutes=20 * k)
    store_signals(now, first_offset=100 * k)
    try:
        return lane_tick(now=now).reason
    except Exception as exc:  # noqa: BLE001 - the tick re-raises what broke the lane
        return f"raised {type(exc).__name__}"


def stops() -> float:
    return float(EMERGENCY_STOPS.labels(reason=REASON)._value.get())


def resting_order() -> None:
    """A buy resting at the simulated broker for the paper lane, as a cycle would leave it."""
    order = OrderFirewall(lane=lane_config("paper")).submit(
        OrderRequest(
            symbol="AAPL",
            side="buy",
            qty=Decimal(1),
            client_order_id="resting-1",
            order_type="limit",
            time_in_force="day",
            limit_price=Decimal(1),
        )
    )
    execution_record(
        decision=None, order=order, broker="simulated", adopted=True, account_label="paper"
    )


def test_three_failed_runs_in_a_row_latch_the_emergency_stop(
    broken_lane, django_capture_on_commit_callbacks
):
    resting_order()
    before = stops()
    assert [tick(0), tick(1)] == ["raised ValueError"] * 2
    assert SafetyState.objects.filter(emergency_stop_active=True).count() == 0
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert tick(2) == "raised ValueError"
    assert len(callbacks) == 1  # every lane's open orders, cancelled after the commit
    assert list(ResearchRun.objects.values_list("status", flat=True)) == ["failed"] * 3
    state = SafetyState.objects.get(scope="global")
    assert (state.emergency_stop_active, state.emergency_stop_reasons) == (True, [REASON])
    incident = Incident.objects.get()
    assert incident.reasons == [REASON]
    assert (incident.snapshot["source"], incident.snapshot["failure_streak"]) == ("autonomy", 3)
    assert incident.snapshot["failed_runs"] == list(
        ResearchRun.objects.order_by("-finished_at").values_list("run_id", flat=True)
    )
    event = SafetyEvent.objects.get(kind="emergency_stop_triggered")
    assert (event.actor_label, event.reason) == ("system", REASON)
    assert stops() == before + 1
    # a fourth failure adds nothing to the latch already there
    assert tick(3) == "raised ValueError"
    assert (Incident.objects.count(), stops()) == (1, before + 1)

    # the paper lane's next cycle cancels its resting order and sends nothing new
    Strategy.objects.create(
        name="macd",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        base_timeframe="1Min",
        max_notional_per_trade=Decimal(1000),
        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 65},
    )
    broken_lane.TRADING_FEATURE_QUALITY_ENABLED = False
    result = trading_cycle_run(account_label="paper", now=NOW + timedelta(minutes=61))
    assert (result.cancelled_orders, result.outcomes) == (1, {"blocked": 2, "rejected": 1})
    assert sorted(TradeDecision.objects.values_list("reject_reason", flat=True)) == [
        "emergency_stop_active",
        "emergency_stop_active",
        "intent_netted_conflict",  # the AAPL sell, netted against the buy of the same batch
    ]
    orders = SimulatedBroker("paper").list_orders(status="all")
    assert [(o.client_order_id, o.status) for o in orders] == [("resting-1", "canceled")]

    # not auto-recoverable: a passed run ends the streak but leaves the latch
    broken_lane.TRADING_AUTONOMY_STRATEGY_CONFIG_PATH = str(SAMPLE_STRATEGY)
    assert tick(4) == "passed"
    assert scheduled_failure_streak(limit=3) == []
    assert SafetyState.objects.get(scope="global").emergency_stop_active is True


def test_a_passed_run_resets_the_streak(broken_lane):
    assert [tick(0), tick(1)] == ["raised ValueError"] * 2
    broken_lane.TRADING_AUTONOMY_STRATEGY_CONFIG_PATH = str(SAMPLE_STRATEGY)
    assert tick(2) == "passed"
    broken_lane.TRADING_AUTONOMY_STRATEGY_CONFIG_PATH = str(
        Path(broken_lane.TRADING_ARTIFACT_DIR).parent / "broken.yaml"
    )
    assert [tick(3), tick(4)] == ["raised ValueError"] * 2
    assert len(scheduled_failure_streak(limit=3)) == 2
    assert SafetyState.objects.filter(emergency_stop_active=True).count() == 0
    assert Incident.objects.count() == 0


def test_a_candidate_that_fails_its_gates_is_not_a_failed_lane():
    for n, (status, error) in enumerate(
        [("failed", "ValueError: x"), ("failed", ""), ("failed", "ValueError: y")]
    ):
        ResearchRun.objects.create(
            run_id=f"run-{n}",
            trigger="schedule",
            status=status,
            error=error,
            finished_at=NOW + timedelta(minutes=n),
        )
    ResearchRun.objects.create(run_id="cli", trigger="cli", status="failed", error="boom")
    assert scheduled_failure_streak(limit=3) == ["run-2"]


def test_the_streak_latches_nothing_while_the_emergency_stop_is_disabled(broken_lane):
    broken_lane.TRADING_EMERGENCY_STOP_ENABLED = False
    before = stops()
    assert [tick(0), tick(1), tick(2)] == ["raised ValueError"] * 3
    assert len(scheduled_failure_streak(limit=3)) == 3
    assert SafetyState.objects.filter(emergency_stop_active=True).count() == 0
    assert (Incident.objects.count(), SafetyEvent.objects.count(), stops()) == (0, 0, before)
