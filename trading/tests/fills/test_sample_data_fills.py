"""The simulated broker's own fills on the bundled sample session, checked against the bundled
sample bars (served by the Alpaca data API stand-in)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine

from tests.conftest import use_replay_trading
from trading.models import Execution, FillCheck, Strategy, TradeCursor
from trading.selectors.fill_checks import strategy_fill_realism
from trading.services.cycle import trading_cycle_run
from trading.services.fill_checks import fill_check_run
from trading.services.reconcile import reconcile_lane
from trading.tests.fills.helpers import market_data

pytestmark = pytest.mark.django_db
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
OPEN = datetime(2026, 3, 3, 14, 31, tzinfo=UTC)  # the first sample signal (the 14:30 bar's close)
MINUTES = 60  # the first hour of the sample session: 11 fills


def sample_bars() -> dict[str, list[dict[str, str]]]:
    bars: dict[str, list[dict[str, str]]] = {}
    with (SAMPLE / "bars-sample.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            bars.setdefault(r["symbol"], []).append(
                {"t": r["timestamp"], "o": r["open"], "h": r["high"], "l": r["low"],
                 "c": r["close"], "v": r["volume"], "vw": r["vwap"], "n": r["trade_count"]}
            )  # fmt: skip
    return bars


def trade_the_sample_session(settings) -> None:
    """A cycle 5 s after every sample minute closes, the wall clock there too (the simulated
    broker stamps its fills with it), then a reconciliation that books the fills."""
    use_replay_trading(settings, SAMPLE / "signals-sample.csv")
    Strategy.objects.create(
        name="macd",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        base_timeframe="1Min",
        max_notional_per_trade=Decimal(1000),
        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 65},
    )
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": OPEN.isoformat()}
    )
    for minute in range(MINUTES):
        now = OPEN + timedelta(minutes=minute, seconds=5)
        with time_machine.travel(now, tick=False):
            trading_cycle_run(account_label="paper", now=now)
            reconcile_lane(account_label="paper")


@pytest.mark.parametrize(
    ("slippage_bps", "verdicts", "haircut_notional", "haircut_bps"),
    [
        # the simulated broker fills a market order at the last price, the close of the minute
        # before the fill's; the sample bars open at the previous close, so it lies in the bar
        ("0", {"ok": 11}, "0.000000", "0.0000"),
        # SIMULATED_BROKER_SLIPPAGE_BPS (default 5) moves it 5 bps against the order, which
        # leaves the fill minute's range for 3 of the 11 fills (all 3 MSFT buys, by 0.17, 0.04
        # and 0.04 above the high; over the whole 390-minute session, 44 of 184 fills)
        ("5", {"ok": 8, "price_outside_bar": 3}, "0.500000", "0.5532"),
    ],
)
def test_the_simulated_brokers_sample_fills_against_the_sample_bars(
    settings, alpaca, slippage_bps, verdicts, haircut_notional, haircut_bps
):
    settings.TRADING_FILL_CHECK_MAX_PARTICIPATION = Decimal("0.1")
    settings.TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS = Decimal(0)
    settings.SIMULATED_BROKER_SLIPPAGE_BPS = Decimal(slippage_bps)
    trade_the_sample_session(settings)
    alpaca.bars = sample_bars()
    alpaca.bars_page_size = 10000
    assert Execution.objects.filter(filled_qty__gt=0).count() == 11

    result = fill_check_run(market_data=market_data(alpaca), now=OPEN + timedelta(minutes=70))

    assert result.as_json() == {"checked": verdicts, "not_settled": 0, "failed": []}
    # every fill is the bar after its signal's, a few shares of a minute's volume
    participations = FillCheck.objects.values_list("participation", flat=True)
    assert all(p is not None and p < Decimal("0.001") for p in participations)
    assert all(c.fill_ts == c.bar_minute + timedelta(seconds=5) for c in FillCheck.objects.all())
    block = strategy_fill_realism(
        strategy="macd", labels=["paper"], since=None, until=OPEN + timedelta(minutes=70)
    ).as_json()
    assert (block["fills_checked"], block["haircut_notional"], block["haircut_bps"]) == (
        11,
        haircut_notional,
        haircut_bps,
    )
