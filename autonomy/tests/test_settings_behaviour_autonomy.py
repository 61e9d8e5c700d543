"""Scheduled research-lane settings: the signal lookback window and the live-promotion switch,
each set to two values, change what `lane_tick` runs and records."""

from __future__ import annotations

from datetime import timedelta

import pytest

from autonomy.models import ResearchRun
from autonomy.services.schedule import LOCK_KEY, lane_tick
from autonomy.tests.test_governance import NOW, losing_window
from tests.conftest import flag, flipt, flipt_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture
def scheduled(settings, tmp_path):
    from django.core.cache import cache

    settings.TRADING_FEATURE_FLAGS_ENABLED = False
    settings.TRADING_AUTONOMY_ENABLED = True
    settings.TRADING_SIGNAL_SOURCE = "kafka"
    settings.TRADING_ARTIFACT_DIR = str(tmp_path / "autonomy")
    settings.TRADING_AUTONOMY_APPROVAL_TOKEN = ""
    settings.TRADING_AUTONOMY_ALLOW_LIVE_PROMOTION = False
    cache.delete(LOCK_KEY)
    return settings


def test_signal_lookback_minutes_is_the_window_the_lane_reads(scheduled):
    losing_window(NOW - timedelta(minutes=10))  # three signals 11 to 13 minutes before NOW
    scheduled.TRADING_AUTONOMY_SIGNAL_LOOKBACK_MINUTES = 5
    assert lane_tick(now=NOW).reason == "skipped_no_signals"
    scheduled.TRADING_AUTONOMY_SIGNAL_LOOKBACK_MINUTES = 15
    result = lane_tick(now=NOW)
    assert result.reason != "skipped_no_signals"
    assert result.lane_run is not None and result.lane_run.run.status in ("passed", "failed")


def _target() -> str:
    return str(ResearchRun.objects.order_by("-pk").values_list("promotion_target", flat=True)[0])


def test_allow_live_promotion_with_a_token_targets_live(scheduled):
    scheduled.TRADING_AUTONOMY_APPROVAL_TOKEN = "approve-123"
    assert lane_tick(now=NOW).reason == "skipped_no_signals"
    assert _target() == "paper"
    scheduled.TRADING_AUTONOMY_ALLOW_LIVE_PROMOTION = True
    assert lane_tick(now=NOW + timedelta(minutes=1)).reason == "skipped_no_signals"
    assert _target() == "live"
    scheduled.TRADING_AUTONOMY_APPROVAL_TOKEN = ""  # the flag alone is not enough
    lane_tick(now=NOW + timedelta(minutes=2))
    assert _target() == "paper"


def test_the_allow_live_promotion_flag_can_switch_live_targeting_off(scheduled, flipt):  # noqa: F811
    scheduled.TRADING_AUTONOMY_APPROVAL_TOKEN = "approve-123"
    scheduled.TRADING_AUTONOMY_ALLOW_LIVE_PROMOTION = True
    flipt.set_flags(
        flag("torghut_trading_autonomy_enabled", True),
        flag("torghut_trading_autonomy_allow_live_promotion", False),
    )
    lane_tick(now=NOW)
    assert _target() == "paper"
    flipt.set_flags(
        flag("torghut_trading_autonomy_enabled", True),
        flag("torghut_trading_autonomy_allow_live_promotion", True),
    )
    lane_tick(now=NOW + timedelta(minutes=1))
    assert _target() == "live"
