"""fill_check_run against the Alpaca data API stand-in (real HTTP) and Postgres."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError
from prometheus_client import REGISTRY

from tests.conftest import paper_lane
from tests.servers.base import Fault
from trading.models import FillCheck
from trading.services.fill_checks import fill_check_run
from trading.tests.books.helpers import T0
from trading.tests.fills.helpers import bar, filled, market_data

pytestmark = pytest.mark.django_db
NOW = T0 + timedelta(hours=1)


def counted(verdict: str) -> float:
    return REGISTRY.get_sample_value("torghut_trading_fill_checks_total", {"verdict": verdict}) or 0


def rows() -> list[tuple]:
    return list(
        FillCheck.objects.order_by("execution_id").values_list(
            "symbol",
            "side",
            "price",
            "qty",
            "bar_minute",
            "bar_low",
            "bar_high",
            "bar_volume",
            "participation",
            "verdict",
            "repriced_price",
            "haircut_notional",
        )
    )


@pytest.fixture
def lanes(settings):
    settings.TRADING_LANES = [paper_lane(), paper_lane("live-1", mode="live")]
    settings.TRADING_FILL_CHECK_MAX_PARTICIPATION = Decimal("0.1")
    settings.TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS = Decimal(0)
    return settings


def test_each_verdict_is_stored_once_with_its_conservative_price(alpaca, lanes, transactional_db):
    alpaca.bars = {
        "AAPL": [
            bar(0, "99.50", "100.50", 1000),
            bar(1, "100.00", "101.00", 1000),
            bar(2, "101.00", "102.00", 100),
        ]
    }
    ok = filled("macd", "AAPL", "buy", "10", "100.20", minute=0)
    above = filled("macd", "AAPL", "buy", "10", "101.30", minute=1)
    heavy = filled("macd", "AAPL", "sell", "20", "101.50", minute=2)
    no_bar = filled("macd", "MSFT", "buy", "5", "50", minute=0)
    filled("macd", "AAPL", "buy", "1", "100", minute=58)  # its bar has not settled at NOW
    filled("macd", "AAPL", "buy", "1", "100", minute=0, account_label="live-1")  # a live lane
    filled("macd", "AAPL", "buy", "1", "100", minute=0, submitted="2")  # still filling
    before = {v: counted(v) for v in ("ok", "price_outside_bar", "participation_high", "no_bar")}

    result = fill_check_run(market_data=market_data(alpaca), now=NOW)

    assert result.as_json() == {
        "checked": {"no_bar": 1, "ok": 1, "participation_high": 1, "price_outside_bar": 1},
        "not_settled": 1,
        "failed": [],
    }
    m = [T0 + timedelta(minutes=i) for i in range(3)]
    d = Decimal
    assert rows() == [
        ("AAPL", "buy", d("100.2"), d(10), m[0], d("99.5"), d("100.5"), d(1000), d("0.01"),
         "ok", None, d(0)),
        # 0.30 above the high: repriced at the fill price plus the same 0.30 again
        ("AAPL", "buy", d("101.3"), d(10), m[1], d(100), d(101), d(1000), d("0.01"),
         "price_outside_bar", d("101.6"), d("3")),
        # 20 of a 100-share minute: the sell is repriced at the bar's low
        ("AAPL", "sell", d("101.5"), d(20), m[2], d(101), d(102), d(100), d("0.2"),
         "participation_high", d(101), d(10)),
        ("MSFT", "buy", d(50), d(5), m[0], None, None, None, None, "no_bar", None, d(0)),
    ]  # fmt: skip
    assert [r.execution_id for r in FillCheck.objects.order_by("execution_id")] == [
        ok.pk, above.pk, heavy.pk, no_bar.pk
    ]  # fmt: skip
    assert {v: counted(v) - before[v] for v in before} == {
        "ok": 1,
        "price_outside_bar": 1,
        "participation_high": 1,
        "no_bar": 1,
    }
    # one bars request per symbol and day, over the fills' minutes only
    bars_requests = [r for r in alpaca.requests if r.path == "/v2/stocks/bars"]
    assert {
        (r.query["symbols"], r.query["start"][:16], r.query["end"][:16]) for r in bars_requests
    } == {
        ("AAPL", "2026-03-03T14:31", "2026-03-03T14:33"),
        ("MSFT", "2026-03-03T14:31", "2026-03-03T14:31"),
    }

    # a second run checks nothing twice and counts nothing again
    again = fill_check_run(market_data=market_data(alpaca), now=NOW)
    assert again.as_json() == {"checked": {}, "not_settled": 1, "failed": []}
    assert FillCheck.objects.count() == 4
    assert counted("ok") - before["ok"] == 1
    # the database refuses a second check of the same fill
    with pytest.raises(IntegrityError):
        FillCheck.objects.create(**{
            f.attname: getattr(FillCheck.objects.get(execution=ok), f.attname)
            for f in FillCheck._meta.concrete_fields if f.attname != "id"
        })  # fmt: skip


def test_the_settled_fill_is_checked_by_a_later_run(alpaca, lanes):
    alpaca.bars = {"AAPL": [bar(58, "99", "101", 1000)]}
    late = filled("macd", "AAPL", "buy", "1", "100", minute=58)
    assert fill_check_run(market_data=market_data(alpaca), now=NOW).checked == {}
    # the bar opened at T0+58 min, closed at +59 and is settled two minutes later
    settled = T0 + timedelta(minutes=61)
    assert fill_check_run(market_data=market_data(alpaca), now=settled).checked == {"ok": 1}
    assert FillCheck.objects.get().execution_id == late.pk


def test_a_failed_bars_request_writes_nothing_and_the_next_run_asks_again(alpaca, lanes):
    alpaca.bars = {"AAPL": [bar(0, "99", "101", 1000)]}
    filled("macd", "AAPL", "buy", "1", "100", minute=0)
    alpaca.inject(Fault("GET", r"/v2/stocks/bars", status=500, body={"message": "boom"}))
    result = fill_check_run(market_data=market_data(alpaca), now=NOW)
    assert result.checked == {}
    assert len(result.failed) == 1 and result.failed[0].startswith("AAPL 2026-03-03: ")
    assert not FillCheck.objects.exists()
    assert fill_check_run(market_data=market_data(alpaca), now=NOW).checked == {"ok": 1}


def test_no_fill_to_check_makes_no_bars_request(alpaca, lanes):
    filled("macd", "AAPL", "buy", "1", "100", minute=0, account_label="live-1")
    assert fill_check_run(market_data=market_data(alpaca), now=NOW).as_json() == {
        "checked": {},
        "not_settled": 0,
        "failed": [],
    }
    assert alpaca.requests == []


@pytest.mark.parametrize(
    ("participation", "tolerance_bps", "verdict"),
    [
        # 101.05 is 0.05 above the high of 101: 4.95 bps
        ("0.1", "0", "price_outside_bar"),
        ("0.1", "5", "ok"),
        # 10 of 1000 shares is 1% of the minute's volume
        ("0.005", "5", "participation_high"),
        ("0.01", "5", "ok"),
    ],
)
def test_the_thresholds_come_from_the_settings(
    alpaca, lanes, participation, tolerance_bps, verdict
):
    lanes.TRADING_FILL_CHECK_MAX_PARTICIPATION = Decimal(participation)
    lanes.TRADING_FILL_CHECK_PRICE_TOLERANCE_BPS = Decimal(tolerance_bps)
    alpaca.bars = {"AAPL": [bar(0, "100", "101", 1000)]}
    filled("macd", "AAPL", "buy", "10", "101.05", minute=0)
    assert fill_check_run(market_data=market_data(alpaca), now=NOW).checked == {verdict: 1}
    check = FillCheck.objects.get()
    assert (check.max_participation, check.price_tolerance_bps) == (
        Decimal(participation),
        Decimal(tolerance_bps),
    )


def test_without_filled_at_the_orders_updated_at_is_the_fill_time(alpaca, lanes):
    alpaca.bars = {"AAPL": [bar(0, "99", "101", 1000), bar(1, "101", "102", 1000)]}
    execution = filled("macd", "AAPL", "buy", "1", "100", minute=0)
    # the Alpaca stand-in's fill (like a REST order snapshot) carries updated_at, not filled_at
    execution.raw_order = {"updated_at": "2026-03-03T14:32:30Z", "status": "filled"}
    execution.save(update_fields=["raw_order"])
    assert fill_check_run(market_data=market_data(alpaca), now=NOW).checked == {
        "price_outside_bar": 1
    }
    check = FillCheck.objects.get()
    assert (check.fill_ts, check.bar_minute, check.bar_low) == (
        T0 + timedelta(minutes=1, seconds=30),
        T0 + timedelta(minutes=1),
        Decimal(101),
    )
