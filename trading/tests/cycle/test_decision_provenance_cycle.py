"""A decision copies its strategy row's version and promotion in its own insert; the database
refuses to change them afterwards."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from trading.models import Strategy, TradeCursor, TradeDecision
from trading.services.cycle import trading_cycle_run
from trading.tests.core.test_decision_provenance import _promoted
from trading.tests.cycle.conftest import REPLAY_START

pytestmark = pytest.mark.django_db


def _cycle(seconds: int):
    return trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(seconds=seconds))


def test_decisions_copy_the_strategy_version_and_promotion_and_keep_them(replay_settings):
    promoted = _promoted()
    Strategy.objects.create(
        name="catalog-macd",
        strategy_type="legacy_macd_rsi",
        version="1.0.3",
        enabled=True,
        max_notional_per_trade=Decimal(1000),
        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 65},
        source="catalog",
    )
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    _cycle(30)
    rows = {
        d.strategy.name: (d.strategy_version, d.promotion_ref)
        for d in TradeDecision.objects.select_related("strategy")
    }
    assert rows == {"promoted": ("2.1.0", 41), "catalog-macd": ("1.0.3", None)}

    # a later change of the strategy row does not rewrite the decisions it made
    Strategy.objects.filter(pk=promoted.pk).update(
        version="3.0.0", promotion_ref=42, promotion_candidate_id="cand-ba9876543210"
    )
    decision = TradeDecision.objects.get(strategy=promoted)
    assert (decision.strategy_version, decision.promotion_ref) == ("2.1.0", 41)

    # the database refuses to change them, whoever asks
    for change in ({"strategy_version": "9.9.9"}, {"promotion_ref": 7}, {"promotion_ref": None}):
        with pytest.raises(IntegrityError), transaction.atomic():
            TradeDecision.objects.filter(pk=decision.pk).update(**change)
    decision.refresh_from_db()
    assert (decision.strategy_version, decision.promotion_ref) == ("2.1.0", 41)
    # other columns still move (a status transition writes the row)
    TradeDecision.objects.filter(pk=decision.pk).update(rationale="reviewed")
    decision.refresh_from_db()
    decision.save()  # a full-row save writes the same provenance values: allowed
    assert TradeDecision.objects.get(pk=decision.pk).rationale == "reviewed"
