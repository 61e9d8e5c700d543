"""The sizing limits end to end: real trade cycles on the simulated broker over replayed signals
(participation cap, allocator and its run-time flag, uncertainty action, per-symbol netting, and
the cancel of an open opposite-side order through the firewall)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from trading.brokers.simulated import SimulatedBroker
from trading.models import Execution, Strategy, TradeCursor, TradeDecision
from trading.selectors.allocation import strategy_books
from trading.services.cycle import trading_cycle_run
from trading.tests.cycle.conftest import REPLAY_START

pytestmark = pytest.mark.django_db

HEADER = "event_ts,symbol,seq,timeframe,price,macd,macd_signal,macd_hist,rsi14,spread,volume\n"
BUY = ("1.2", "0.5", "20")  # macd above its signal, RSI 20: the legacy rule buys
SELL = ("-0.2", "0.1", "75")  # macd below its signal, RSI 75: the legacy rule sells
FLAT = ("0.1", "0.1", "50")  # no intent


def write(path: Path, rows: list[tuple[str, str, int, str, tuple[str, str, str], str]]) -> Path:
    """rows: (event_ts, symbol, seq, price, (macd, macd_signal, rsi14), volume or "")"""
    lines = [HEADER]
    for ts, symbol, seq, price, (macd, signal, rsi), volume in rows:
        hist = f"{float(macd) - float(signal):.6f}"
        lines.append(
            f"{ts},{symbol},{seq},1Min,{price},{macd},{signal},{hist},{rsi},0.02,{volume}\n"
        )
    path.write_text("".join(lines))
    return path


T1, T2, T3 = "2026-03-03T14:31:00Z", "2026-03-03T14:32:00Z", "2026-03-03T14:33:00Z"


@pytest.fixture
def replay(settings, tmp_path):
    from tests.conftest import use_replay_trading

    def start(rows) -> None:
        use_replay_trading(settings, write(tmp_path / "signals.csv", rows))
        settings.TRADING_RECONCILE_MS = 0  # a fresh account snapshot every cycle
        TradeCursor.objects.create(
            source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
        )

    return start


def run(seconds: int):
    return trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(seconds=seconds))


def broker_orders() -> list[tuple[str, str, Decimal, str]]:
    orders = SimulatedBroker("paper").list_orders(status="all")
    return sorted((o.symbol, o.side, o.qty, o.status) for o in orders)


def verdict(decision: TradeDecision, gate: str) -> dict:
    return next(v for v in decision.gate_verdicts if v["gate"] == gate)


# -- participation cap --------------------------------------------------------------------------
def test_participation_cap_clips_to_the_bars_volume_and_refuses_without_volume(
    replay, settings, macd_strategy
):
    replay(
        [
            ("2026-03-03T14:31:00Z", "AAPL", 1, "100.00", BUY, "500"),
            (T2, "MSFT", 2, "50.00", BUY, ""),
        ]
    )
    settings.TRADING_MAX_PARTICIPATION_RATE = Decimal("0.01")
    assert run(30).submitted == 1
    aapl = TradeDecision.objects.get(symbol="AAPL")
    # sized 10 (1000 / 100), capped at 0.01 x 500 = 5
    assert (aapl.status, aapl.qty) == ("submitted", Decimal(5))
    assert verdict(aapl, "participation")["details"] == {
        "rate": "0.01",
        "bar_volume": "500.0",
        "cap_qty": "5",
        "qty_in": "10",
        "qty_out": "5",
    }
    second = run(90)
    msft = TradeDecision.objects.get(symbol="MSFT")
    assert (second.submitted, second.rejected) == (0, 1)
    assert (msft.status, msft.reject_reason) == ("rejected", "participation_volume_missing")
    assert broker_orders() == [("AAPL", "buy", Decimal(5), "accepted")]


# -- allocator ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("setting", "value", "qty", "reason"),
    [
        ("TRADING_ALLOCATOR_STRATEGY_NOTIONAL_CAPS", {"macd": Decimal(450)}, 4, ""),
        ("TRADING_ALLOCATOR_SYMBOL_NOTIONAL_CAPS", {"AAPL": Decimal(350)}, 3, ""),
        ("TRADING_ALLOCATOR_MAX_SYMBOL_NOTIONAL", Decimal(250), 2, ""),
        ("TRADING_ALLOCATOR_MAX_SYMBOL_PCT_EQUITY", Decimal("0.0075"), 7, ""),  # of 100000
        (
            "TRADING_ALLOCATOR_STRATEGY_NOTIONAL_CAPS",
            {"macd": Decimal(99)},
            0,
            "allocator_reject_strategy_budget",
        ),
        (
            "TRADING_ALLOCATOR_SYMBOL_NOTIONAL_CAPS",
            {"AAPL": Decimal(0)},
            0,
            "allocator_reject_symbol_budget",
        ),
        (
            "TRADING_ALLOCATOR_MAX_SYMBOL_NOTIONAL",
            Decimal(50),
            0,
            "allocator_reject_symbol_capacity",
        ),
    ],
)
def test_each_allocator_setting_limits_the_order(
    replay, settings, macd_strategy, setting, value, qty, reason
):
    replay([(T1, "AAPL", 1, "100.00", BUY, "")])
    settings.TRADING_ALLOCATOR_ENABLED = True
    setattr(settings, setting, value)
    result = run(30)
    decision = TradeDecision.objects.get()
    if reason:
        assert (result.submitted, decision.status, decision.reject_reason) == (
            0,
            "rejected",
            reason,
        )
        assert broker_orders() == []
    else:
        assert (result.submitted, decision.status, decision.qty) == (1, "submitted", Decimal(qty))
        assert broker_orders() == [("AAPL", "buy", Decimal(qty), "accepted")]


@pytest.mark.parametrize(
    ("cap", "status", "qty", "reason"),
    [
        # 10 AAPL held at 100 use 1000 of the group's cap: 300 room at 50 = 6 shares (not 20)
        (Decimal(1300), "submitted", 6, ""),
        (Decimal(1000), "rejected", 0, "allocator_reject_correlation_capacity"),
    ],
)
def test_correlation_group_cap_counts_the_groups_positions(
    replay, settings, macd_strategy, cap, status, qty, reason
):
    replay(
        [
            (T1, "AAPL", 1, "100.00", BUY, ""),
            (T2, "AAPL", 2, "100.00", FLAT, ""),  # fills the AAPL buy
            (T3, "MSFT", 3, "50.00", BUY, ""),
        ]
    )
    settings.TRADING_ALLOCATOR_ENABLED = True
    settings.TRADING_ALLOCATOR_SYMBOL_CORRELATION_GROUPS = {"AAPL": "tech", "MSFT": "tech"}
    settings.TRADING_ALLOCATOR_CORRELATION_GROUP_NOTIONAL_CAPS = {"tech": cap}
    run(30)
    run(90)
    assert TradeDecision.objects.get(symbol="AAPL").qty == Decimal(10)
    run(150)
    msft = TradeDecision.objects.get(symbol="MSFT")
    assert (msft.status, msft.qty, msft.reject_reason) == (status, Decimal(qty), reason)
    details = verdict(msft, "allocator")["details"]
    assert (details["correlation_group"], Decimal(details["correlation_used"])) == (
        "tech",
        Decimal(1000),
    )
    assert [o[0] for o in broker_orders()] == ["AAPL"] + (["MSFT"] if status == "submitted" else [])


def test_strategy_budget_counts_the_strategys_filled_executions(replay, settings, macd_strategy):
    replay(
        [
            (T1, "AAPL", 1, "100.00", BUY, ""),
            (T2, "AAPL", 2, "100.00", FLAT, ""),  # fills the AAPL buy
            (T3, "MSFT", 3, "50.00", BUY, ""),
        ]
    )
    settings.TRADING_ALLOCATOR_ENABLED = True
    settings.TRADING_ALLOCATOR_STRATEGY_NOTIONAL_CAPS = {"macd": Decimal(1500)}
    run(30)
    run(90)
    assert Execution.objects.get(symbol="AAPL").filled_qty == Decimal(10)
    books = strategy_books(account_label="paper")
    # filled at 100 plus 5 bps of simulated slippage
    assert (books.positions, books.fill_prices) == (
        {"macd": {"AAPL": Decimal(10)}},
        {"AAPL": Decimal("100.05")},
    )
    run(150)
    msft = TradeDecision.objects.get(symbol="MSFT")
    # macd holds 10 AAPL (1000 at the last price): 500 of its 1500 left → 10 MSFT at 50, not 20
    assert (msft.status, msft.qty) == ("submitted", Decimal(10))
    assert Decimal(verdict(msft, "allocator")["details"]["strategy_used"]) == Decimal(1000)


def test_allocator_flag_flipped_between_two_cycles_changes_the_second(
    replay, settings, macd_strategy
):
    replay([(T1, "AAPL", 1, "100.00", BUY, ""), (T2, "MSFT", 2, "50.00", BUY, "")])
    settings.TRADING_ALLOCATOR_SYMBOL_NOTIONAL_CAPS = {"AAPL": Decimal(500), "MSFT": Decimal(300)}
    settings.TRADING_ALLOCATOR_ENABLED = False
    run(30)
    aapl = TradeDecision.objects.get(symbol="AAPL")
    assert (aapl.qty, verdict(aapl, "allocator")["details"]) == (Decimal(10), {"enabled": False})
    settings.TRADING_ALLOCATOR_ENABLED = True
    run(90)
    msft = TradeDecision.objects.get(symbol="MSFT")
    assert (msft.status, msft.qty) == ("submitted", Decimal(6))  # 300 / 50, not 1000 / 50
    assert verdict(msft, "allocator")["details"]["symbol_cap"] == "300"
    assert broker_orders() == [
        ("AAPL", "buy", Decimal(10), "accepted"),
        ("MSFT", "buy", Decimal(6), "accepted"),
    ]


# -- uncertainty action -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "rate", "status", "qty", "reason"),
    [
        ("pass", None, "submitted", 10, ""),
        ("degrade", None, "submitted", 5, ""),
        ("degrade", Decimal("0.5"), "submitted", 3, ""),  # rate 0.05 x volume 60
        ("abstain", None, "rejected", 10, "uncertainty_gate_abstain"),
        ("fail", None, "rejected", 10, "uncertainty_gate_fail"),
    ],
)
def test_uncertainty_action_of_the_strategy_acts_in_the_cycle(
    replay, settings, macd_strategy, action, rate, status, qty, reason
):
    replay([(T1, "AAPL", 1, "100.00", BUY, "60")])
    settings.TRADING_MAX_PARTICIPATION_RATE = rate
    Strategy.objects.filter(pk=macd_strategy.pk).update(uncertainty_action=action)
    run(30)
    decision = TradeDecision.objects.get()
    assert (decision.status, decision.qty, decision.reject_reason) == (
        status,
        Decimal(qty),
        reason,
    )
    assert verdict(decision, "uncertainty")["details"]["action"] == action
    expected = [("AAPL", "buy", Decimal(qty), "accepted")] if status == "submitted" else []
    assert broker_orders() == expected


def test_fail_still_lets_a_position_be_closed(replay, settings, macd_strategy):
    replay(
        [
            (T1, "AAPL", 1, "100.00", BUY, ""),
            (T2, "AAPL", 2, "100.00", FLAT, ""),  # fills the buy
            (T3, "AAPL", 3, "101.00", SELL, ""),
        ]
    )
    run(30)
    run(90)
    Strategy.objects.filter(pk=macd_strategy.pk).update(uncertainty_action="fail")
    run(150)
    sell = TradeDecision.objects.get(action="sell")
    assert (sell.status, sell.qty) == ("submitted", Decimal(9))  # 1000 / 101
    assert verdict(sell, "uncertainty")["details"] == {"action": "fail", "risk_reducing": True}


# -- netting and the opposite-side cancel ---------------------------------------------------------
def test_two_strategies_with_opposite_intents_on_one_symbol_are_netted(replay, settings):
    replay([(T1, "AAPL", 1, "100.00", BUY, ""), (T1, "AAPL", 2, "100.00", SELL, "")])
    # a buys only (sells above RSI 90), b sells only (buys below RSI 10)
    Strategy.objects.create(
        name="a",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        max_notional_per_trade=Decimal(3000),
        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 90},
    )
    Strategy.objects.create(
        name="b",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        max_notional_per_trade=Decimal(1000),
        params={"buy_rsi_threshold": 10, "sell_rsi_threshold": 65},
    )
    result = run(30)
    assert (result.intents, result.submitted, result.rejected) == (2, 1, 1)
    buy = TradeDecision.objects.get(strategy__name="a")
    sell = TradeDecision.objects.get(strategy__name="b")
    assert (buy.action, buy.status, buy.qty) == ("buy", "submitted", Decimal(30))
    assert (sell.action, sell.status, sell.reject_reason) == (
        "sell",
        "rejected",
        "intent_netted_conflict",
    )
    assert sell.gate_verdicts == [
        {
            "gate": "netting",
            "passed": False,
            "reasons": ["intent_netted_conflict"],
            "details": {
                "winning_side": "buy",
                "winning_strategies": ["a"],
                "buy_score": "1950.0000",  # 0.65 x 3000
                "sell_score": "650.0000",  # 0.65 x 1000
            },
        }
    ]
    assert broker_orders() == [("AAPL", "buy", Decimal(30), "accepted")]
    # the netted decision keeps its hash: the same window again adds nothing
    TradeCursor.objects.filter(account_label="paper").update(
        cursor_at=None, cursor_symbol="", cursor_seq=0
    )
    again = run(30)
    assert (again.intents, again.duplicates, again.submitted) == (2, 2, 0)
    assert TradeDecision.objects.count() == 2
    assert len(broker_orders()) == 1


def test_open_opposite_order_is_cancelled_through_the_firewall_and_nothing_new_is_sent(
    replay, settings, macd_strategy
):
    # same minute, one signal a cycle: the resting buy sees no newer price, so it stays open
    replay([(T1, "AAPL", 1, "100.00", BUY, ""), (T1, "AAPL", 2, "100.00", SELL, "")])
    settings.TRADING_SIGNAL_BATCH_SIZE = 1
    settings.TRADING_ALLOW_SHORTS = True
    first = run(30)
    assert first.submitted == 1
    assert broker_orders() == [("AAPL", "buy", Decimal(10), "accepted")]
    second = run(31)
    assert (second.signals, second.submitted, second.rejected) == (1, 0, 1)
    sell = TradeDecision.objects.get(action="sell")
    assert (sell.status, sell.reject_reason) == ("rejected", "precheck_opposite_side_open_order")
    buy_order = SimulatedBroker("paper").list_orders(status="all")[0]
    assert verdict(sell, "execution_policy")["details"] == {"conflicting_order_ids": [buy_order.id]}
    # the cancel reached the broker; no sell order was sent
    assert broker_orders() == [("AAPL", "buy", Decimal(10), "canceled")]
    assert list(Execution.objects.values_list("side", flat=True)) == ["buy"]
