"""A trade cycle audits a flip of the kill switch's flag before it obeys it
(trading.services.safety.kill_switch_flag_observe at the start of `_stops_apply`)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from trading.models import SafetyEvent, TradeCursor, TradeDecision
from trading.services.cycle import trading_cycle_run
from trading.tests.cycle.conftest import REPLAY_START


def _events() -> list[tuple[str, str, str]]:
    return list(SafetyEvent.objects.order_by("pk").values_list("kind", "actor_label", "reason"))


@pytest.mark.django_db
def test_a_trade_cycle_audits_the_flip_it_obeys(replay_settings, macd_strategy):
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    replay_settings.TRADING_KILL_SWITCH_ENABLED = True
    run = trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(seconds=30))
    assert run.submitted == 0
    decision = TradeDecision.objects.get()
    assert (decision.status, decision.reject_reason) == ("rejected", "kill_switch_active")
    assert _events() == [("kill_switch_flag_on", "flag:env", "TRADING_KILL_SWITCH_ENABLED")]
    trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(seconds=90))
    assert len(_events()) == 1  # the next cycle sees the flip recorded
