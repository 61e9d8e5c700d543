"""The nightly live-versus-replay check against a day the REAL trade cycle decided on the
simulated broker: the bundled sample session (trading/sample_data/signals-sample.csv) stored as
`kafka` signal rows, one cycle per minute (one bar per cycle, as live), reconciliation after each
cycle as the beat schedule runs it; then the replay check of that date."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from prometheus_client import REGISTRY

from autonomy.models import ReplayCheck
from autonomy.replay import LIVE_GATE_REASONS, MODELLED_REJECT_REASONS, STALE_POSITION
from autonomy.schedule import REPLAY_CHECK_TASK, autonomy_schedule
from autonomy.selectors import clean_replay_sessions
from autonomy.services.replay_check import last_closed_session, replay_check_run
from autonomy.tasks import replay_check_nightly
from tests.conftest import use_replay_trading
from trading.models import Strategy, TaSignal, TradeDecision
from trading.services.cycle import trading_cycle_run
from trading.services.reconcile import reconcile_lane

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "trading" / "sample_data" / "signals-sample.csv"
DAY = date(2026, 3, 3)
PARAMS = {"buy_rsi_threshold": 35, "sell_rsi_threshold": 65}


def sample_rows() -> list[dict[str, str]]:
    with SAMPLE.open(newline="") as handle:
        return list(csv.DictReader(handle))


def store_signals(rows: list[dict[str, str]]) -> None:
    TaSignal.objects.bulk_create(
        TaSignal(
            event_ts=datetime.fromisoformat(row["event_ts"]),
            symbol=row["symbol"],
            seq=int(row["seq"]),
            row=row,
            source_topic="torghut.ta.signals.v1",
            source_partition=0,
            source_offset=offset,
            received_at=datetime.fromisoformat(row["event_ts"]),
        )
        for offset, row in enumerate(rows)
    )


def minutes(rows: list[dict[str, str]]) -> Iterator[datetime]:
    yield from sorted({datetime.fromisoformat(r["event_ts"]) for r in rows})


@pytest.fixture
def kafka_lane(settings, tmp_path):
    use_replay_trading(settings, tmp_path / "unused.csv")
    settings.TRADING_SIGNAL_SOURCE = "kafka"
    return settings


@pytest.fixture
def strategy(db) -> Strategy:
    made = Strategy.objects.create(
        name="macd",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        base_timeframe="1Min",
        max_notional_per_trade=Decimal(1000),
        params=PARAMS,
    )
    Strategy.objects.filter(pk=made.pk).update(created_at=datetime(2026, 3, 1, tzinfo=UTC))
    return made


def live_day(rows: list[dict[str, str]], *, limit: int | None = None) -> None:
    """The live session: one trade cycle per bar, 30 s after it, then reconciliation."""
    for n, minute in enumerate(minutes(rows)):
        if limit is not None and n >= limit:
            break
        trading_cycle_run(account_label="paper", now=minute + timedelta(seconds=30))
        reconcile_lane(account_label="paper")


def figures(check: ReplayCheck) -> dict[str, Any]:
    return {
        "status": check.status,
        "live": check.live_decisions,
        "replay": check.replay_decisions,
        "matched": check.matched,
        "data_gap": check.data_gap,
        "timing": check.timing,
        "fill_model": check.fill_model,
        "live_gate": check.live_gate,
        "rule_divergence": check.rule_divergence,
    }


@pytest.fixture
def sample_day(kafka_lane, strategy):
    rows = sample_rows()
    store_signals(rows)
    live_day(rows)
    return rows


def test_the_sample_day_replays_without_unexplained_mismatch(sample_day, strategy):
    """The parity finding: every decision the live cycle made on the sample day is the
    backtester's decision, with the same quantity and fill."""
    (check,) = replay_check_run(session_date=DAY, account_label="paper")
    assert check.recorded_signals == 5 * 390
    assert check.live_decisions == TradeDecision.objects.filter(strategy=strategy).count()
    assert figures(check) == {
        "status": "clean",
        "live": 217,
        "replay": 217,
        "matched": 217,
        "data_gap": 0,
        "timing": 0,
        "fill_model": 0,
        "live_gate": 0,
        "rule_divergence": 0,
    }
    assert check.details["mismatches"] == []
    assert check.slippage_samples == 184  # pairs filled on both sides
    assert check.realised_slippage_bps is not None
    assert check.modelled_slippage_bps is not None
    assert (
        round(check.realised_slippage_bps, 6) == round(check.modelled_slippage_bps, 6) == 11.01294
    )


HOUR_END = datetime(2026, 3, 3, 15, 31, tzinfo=UTC)


@pytest.fixture
def first_hour(kafka_lane, strategy):
    """The first hour of the sample session recorded and traded live (the tamper cases)."""
    rows = [r for r in sample_rows() if datetime.fromisoformat(r["event_ts"]) < HOUR_END]
    store_signals(rows)
    live_day(rows)
    return rows


def check_of(day: date = DAY) -> ReplayCheck:
    (check,) = replay_check_run(session_date=day, account_label="paper")
    return check


def test_first_hour_is_clean_and_a_rerun_rewrites_the_same_row(first_hour, strategy):
    first = check_of()
    assert figures(first) == {
        "status": "clean",
        "live": 14,
        "replay": 14,
        "matched": 14,
        "data_gap": 0,
        "timing": 0,
        "fill_model": 0,
        "live_gate": 0,
        "rule_divergence": 0,
    }
    assert first.strategy_versions == [
        {
            "version": "1.0.0",
            "params": PARAMS,
            "budget": 1000.0,
            "from": "session start",
        }
    ]
    again = check_of()
    assert again.pk == first.pk
    assert ReplayCheck.objects.count() == 1
    assert figures(again) == figures(first)


def test_a_deleted_recorded_signal_is_a_data_gap(first_hour, strategy):
    before = (
        REGISTRY.get_sample_value("torghut_research_replay_mismatches_total", {"class": "data_gap"})
        or 0.0
    )
    decision = TradeDecision.objects.filter(strategy=strategy, status="filled").earliest("event_ts")
    TaSignal.objects.filter(
        event_ts=decision.event_ts, symbol=decision.symbol, seq=decision.signal_seq
    ).delete()
    check = check_of()
    assert (check.status, check.data_gap, check.rule_divergence, check.unexplained_mismatches) == (
        "clean",
        len(check.details["mismatches"]),
        0,
        0,
    )
    first = check.details["mismatches"][0]
    assert (first["class"], first["live_decision_id"], first["detail"]) == (
        "data_gap",
        decision.pk,
        "signal not recorded",
    )
    # every later mismatch on that symbol is the position the missing buy left behind
    assert {m["class"] for m in check.details["mismatches"]} == {"data_gap"}
    assert {m["symbol"] for m in check.details["mismatches"]} == {decision.symbol}
    assert check.matched == check.live_decisions - check.data_gap
    after = REGISTRY.get_sample_value(
        "torghut_research_replay_mismatches_total", {"class": "data_gap"}
    )
    assert after == before + check.data_gap


def test_strategy_params_changed_after_the_session_replay_the_recorded_version(
    first_hour, strategy
):
    Strategy.objects.filter(pk=strategy.pk).update(
        params={"buy_rsi_threshold": 60, "sell_rsi_threshold": 40}
    )
    check = check_of()
    assert (check.status, check.matched, check.rule_divergence) == ("clean", 14, 0)


def test_a_rule_that_disagrees_with_the_live_decisions_is_an_unexplained_divergence(
    first_hour, strategy
):
    # the recorded version says another rule than the one that decided: the replay disagrees
    for decision in TradeDecision.objects.filter(strategy=strategy):
        record = decision.decision_json
        record["strategy"]["params"] = {"buy_rsi_threshold": 45, "sell_rsi_threshold": 65}
        TradeDecision.objects.filter(pk=decision.pk).update(decision_json=record)
    check = check_of()
    assert check.status == "mismatched"
    assert check.rule_divergence == check.unexplained_mismatches > 0
    replay_only = [m for m in check.details["mismatches"] if m["detail"] == "replay only"]
    assert replay_only and all(m["side"] == "buy" for m in replay_only)
    assert clean_replay_sessions("macd", before=date(2026, 3, 4)) == 0


def test_live_gate_rejections_are_explained_and_not_replayed(kafka_lane, strategy):
    kafka_lane.TRADING_COOLDOWN_SECONDS = 600
    rows = [r for r in sample_rows() if datetime.fromisoformat(r["event_ts"]) < HOUR_END]
    store_signals(rows)
    live_day(rows)
    gated = TradeDecision.objects.filter(reject_reason="cooldown_active").count()
    assert gated > 0
    check = check_of()
    assert (check.status, check.live_gate, check.rule_divergence) == ("clean", gated, 0)
    assert check.matched + check.live_gate == check.live_decisions == check.replay_decisions
    assert {m["live_reason"] for m in check.details["mismatches"]} == {"cooldown_active"}


def test_unreadable_signals_make_a_no_signals_session_that_breaks_the_clean_run(
    first_hour, strategy, settings
):
    check_of()
    settings.TRADING_SIGNAL_SOURCE = "replay"  # the lane has no replay anchor: nothing to read
    # the same session checked again under another source: nothing readable
    check = check_of()
    assert (check.status, check.recorded_signals, check.data_gap, check.matched) == (
        "no_signals",
        0,
        14,
        0,
    )
    assert check.details["signal_error"] == "the replay source has no anchor for this lane"
    assert clean_replay_sessions("macd", before=date(2026, 3, 4)) == 0


def test_the_beat_task_checks_the_given_or_the_last_closed_session(first_hour, strategy):
    assert replay_check_nightly(session_date="2026-03-03", account_label="paper") == {
        "session_date": "2026-03-03",
        "checks": 1,
        "unexplained_mismatches": 0,
    }
    stored = ReplayCheck.objects.get()
    assert (stored.session_date, stored.account_label, stored.status) == (DAY, "paper", "clean")
    with time_machine.travel(datetime(2026, 3, 3, 23, 30, tzinfo=UTC), tick=False):
        result = replay_check_nightly()
    assert result["session_date"] == "2026-03-03"
    assert ReplayCheck.objects.count() == 1  # the same row again


def test_last_closed_session_is_the_new_york_date_after_the_close():
    assert last_closed_session(datetime(2026, 3, 3, 20, 59, tzinfo=UTC)) == date(2026, 3, 2)
    assert last_closed_session(datetime(2026, 3, 3, 21, 0, tzinfo=UTC)) == date(2026, 3, 3)
    assert last_closed_session(datetime(2026, 3, 4, 2, 30, tzinfo=UTC)) == date(2026, 3, 3)
    # summer time: the close is 20:00 UTC
    assert last_closed_session(datetime(2026, 7, 1, 20, 0, tzinfo=UTC)) == date(2026, 7, 1)


def test_the_command_prints_each_check(first_hour, strategy):
    out = StringIO()
    call_command("replay_check", "--date", "2026-03-03", "--lane", "paper", stdout=out)
    assert out.getvalue() == (
        "2026-03-03 paper macd: clean live=14 replay=14 matched=14 data_gap=0 timing=0 "
        "fill_model=0 live_gate=0 rule_divergence=0\n"
    )
    empty = StringIO()
    call_command("replay_check", "--date", "2026-03-07", stdout=empty)
    assert empty.getvalue() == "2026-03-07: nothing to check (no recorded signals, no decisions)\n"
    assert ReplayCheck.objects.count() == 1


def test_the_nightly_entry_is_scheduled_once_a_day_and_expires_within_it():
    entries = dict(autonomy_schedule())
    entry = entries["autonomy-replay-check"]
    assert (entry["task"], entry["schedule"], entry["options"]) == (
        REPLAY_CHECK_TASK,
        86_400.0,
        {"expires": 86_400.0},
    )


def _check(strategy: Strategy, day: date, status: str, *, lane: str = "paper") -> None:
    ReplayCheck.objects.create(
        session_date=day,
        account_label=lane,
        strategy=strategy,
        status=status,
        rule_divergence=1 if status == "mismatched" else 0,
        unexplained_mismatches=1 if status == "mismatched" else 0,
    )


def test_clean_replay_sessions_counts_the_latest_clean_dates_in_a_row(strategy):
    other = Strategy.objects.create(name="other", strategy_type="legacy_macd_rsi")
    _check(strategy, date(2026, 3, 2), "clean")
    _check(strategy, date(2026, 3, 3), "mismatched")
    _check(strategy, date(2026, 3, 4), "clean")
    _check(strategy, date(2026, 3, 5), "clean")
    _check(strategy, date(2026, 3, 5), "clean", lane="paper-2")
    _check(strategy, date(2026, 3, 6), "clean")
    _check(strategy, date(2026, 3, 6), "mismatched", lane="paper-2")
    _check(other, date(2026, 3, 5), "mismatched")
    assert clean_replay_sessions("macd", before=date(2026, 3, 6)) == 2
    assert clean_replay_sessions("macd", before=date(2026, 3, 7)) == 0  # one lane diverged
    assert clean_replay_sessions("macd", before=date(2026, 3, 3)) == 1
    assert clean_replay_sessions("macd", before=date(2026, 3, 2)) == 0
    assert clean_replay_sessions("nobody", before=date(2026, 3, 7)) == 0


def test_the_database_refuses_a_status_that_contradicts_the_counts(strategy):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ReplayCheck.objects.create(
            session_date=DAY,
            account_label="paper",
            strategy=strategy,
            status="clean",
            rule_divergence=1,
            unexplained_mismatches=1,
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        ReplayCheck.objects.create(
            session_date=DAY,
            account_label="paper",
            strategy=strategy,
            status="mismatched",
            rule_divergence=2,
            unexplained_mismatches=1,
        )
    assert ReplayCheck.objects.count() == 0


def test_every_gate_reject_reason_is_classified():
    """Every reason string trading/gates.py can reject with is either modelled by the
    backtester or a listed live gate."""
    import re

    text = (ROOT / "trading" / "gates.py").read_text()
    found = set(re.findall(r'reasons\.append\("([a-z_]+)"\)', text))
    found |= set(re.findall(r'GateVerdict\("[a-z_]+", False, \("([a-z_]+)",\)', text))
    found |= set(re.findall(r'\("(allocator_reject_[a-z_]+)", "', text))
    assert len(found) > 25
    assert found - (LIVE_GATE_REASONS | MODELLED_REJECT_REASONS) == set()


def test_the_admin_lists_checks_and_shows_the_mismatches(admin_client, first_hour, strategy):
    decision = TradeDecision.objects.earliest("event_ts")
    TaSignal.objects.filter(symbol=decision.symbol).delete()
    check = check_of()
    assert check.data_gap > 0
    listing = admin_client.get("/admin/autonomy/replaycheck/")
    assert listing.status_code == 200
    assert b"macd" in listing.content
    page = admin_client.get(f"/admin/autonomy/replaycheck/{check.pk}/change/")
    assert page.status_code == 200
    assert b"data_gap" in page.content
    assert b"signal not recorded" in page.content


def test_sells_after_their_buys_filled_match_the_backtest(kafka_lane, strategy):
    """Found by this check, then fixed: the cycles run milliseconds apart in wall-clock time
    without a reconcile between them, and the cycle's account snapshot, kept for one
    TRADING_RECONCILE_MS, had predated the fills of earlier buys, so live refused 5 sells the
    strategy's own fills covered (`shorts_not_allowed`, classed `timing`: STALE_POSITION) while
    the backtester sold. The snapshot is now taken afresh once a fill is recorded
    (`trading.services.accounts.account_snapshot_current`): every live decision matches."""
    Strategy.objects.filter(pk=strategy.pk).update(params={})
    rows = [r for r in sample_rows() if r["event_ts"] < "2026-03-03T15:45"]
    store_signals(rows)
    for minute in minutes(rows):
        trading_cycle_run(account_label="paper", now=minute + timedelta(seconds=30))
    check = check_of()
    assert (check.status, check.live_decisions, check.matched, check.timing) == (
        "clean",
        26,
        26,
        0,
    )
    assert check.rule_divergence == 0
    assert check.details["mismatches"] == []
    assert STALE_POSITION not in str(check.details)
