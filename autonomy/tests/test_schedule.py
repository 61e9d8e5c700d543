"""The scheduled lane tick over the recent signals of the configured source."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from autonomy.models import ResearchCandidate, ResearchRun
from autonomy.services.schedule import LOCK_KEY, lane_tick
from autonomy.tasks import autonomy_lane_tick
from torghut_site.schedule import beat_schedule
from trading.models import TaSignal

from .conftest import SAMPLE_SIGNALS

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


@pytest.fixture
def autonomy_on(settings, tmp_path):
    settings.TRADING_AUTONOMY_ENABLED = True
    settings.TRADING_SIGNAL_SOURCE = "kafka"
    settings.TRADING_ARTIFACT_DIR = str(tmp_path / "autonomy")
    cache.delete(LOCK_KEY)
    return settings


def store_sample_signals(end: datetime) -> None:
    """The three sample signals, moved to end one minute before `end`."""
    rows = json.loads(SAMPLE_SIGNALS.read_text())
    last = datetime.fromisoformat(rows[-1]["event_ts"])
    for offset, row in enumerate(rows):
        ts = end - timedelta(minutes=1) - (last - datetime.fromisoformat(row["event_ts"]))
        TaSignal.objects.create(
            event_ts=ts,
            symbol=row["symbol"],
            seq=offset,
            row={**row, "event_ts": ts.isoformat(), "seq": offset},
            source_topic="torghut.ta.signals.v1",
            source_partition=0,
            source_offset=offset,
            received_at=ts,
        )


def test_nothing_runs_while_autonomy_is_disabled(settings):
    settings.TRADING_AUTONOMY_ENABLED = False
    result = lane_tick(now=NOW)
    assert (result.ran, result.reason) == (False, "autonomy_disabled")
    assert ResearchRun.objects.count() == 0


def test_a_window_without_signals_is_a_skipped_run(autonomy_on):
    result = lane_tick(now=NOW)
    assert (result.ran, result.reason) == (True, "skipped_no_signals")
    run = ResearchRun.objects.get()
    assert (run.status, run.trigger, run.recommended_mode) == ("skipped", "schedule", "shadow")
    assert list(run.artifacts) == ["research/no-signal-window.json"]
    # the next (empty) window is another run
    lane_tick(now=NOW + timedelta(minutes=5))
    assert ResearchRun.objects.filter(status="skipped").count() == 2


def test_recent_signals_run_the_lane_once_per_window(autonomy_on):
    store_sample_signals(NOW)
    old = NOW - timedelta(hours=2)
    TaSignal.objects.create(
        event_ts=old,
        symbol="MSFT",
        seq=9,
        row={"event_ts": old.isoformat(), "symbol": "MSFT"},
        source_topic="t",
        source_partition=0,
        source_offset=99,
        received_at=old,
    )
    result = lane_tick(now=NOW)
    assert (result.ran, result.reason) == (True, "passed")
    run = ResearchRun.objects.get()
    assert (run.trigger, run.recommended_mode, run.signal_source) == ("schedule", "paper", "kafka")
    candidate = ResearchCandidate.objects.get()
    assert candidate.symbols_covered == ["AAPL"]  # the 2-hour-old MSFT row is outside the window
    assert candidate.decision_count == 3
    # the same window again: the same run id, nothing new recorded
    again = lane_tick(now=NOW)
    assert again.lane_run is not None and again.lane_run.recorded is False
    assert ResearchRun.objects.count() == 1


def test_one_tick_at_a_time(autonomy_on):
    cache.add(LOCK_KEY, "1", timeout=60)
    try:
        result = lane_tick(now=NOW)
    finally:
        cache.delete(LOCK_KEY)
    assert (result.ran, result.reason) == (False, "already_running")
    assert ResearchRun.objects.count() == 0


def test_the_task_and_the_beat_entry(autonomy_on):
    autonomy_on.TRADING_AUTONOMY_INTERVAL_SECONDS = 300
    entry = beat_schedule()["autonomy-lane"]
    assert (entry["task"], entry["schedule"], entry["options"]) == (
        "autonomy.tasks.autonomy_lane_tick",
        300.0,
        {"expires": 300.0},
    )
    out = autonomy_lane_tick.apply().get()
    assert out["ran"] is True
    assert out["reason"] == "skipped_no_signals"
    finished = ResearchRun.objects.get(run_id=out["run_id"]).finished_at
    assert finished is not None and finished <= timezone.now()
