"""The research loop's Flipt flags change the next tick, task or promotion check at run time:
each is flipped on the Flipt stand-in between two reads (tests/foundation/test_flags_at_run_time.py
enumerates the mapping and names this module for these flags)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache

from autonomy.models import DriftCheck, ResearchCandidate
from autonomy.selectors import drift_evidence_for_live
from autonomy.services.promotion import promotion_approve
from autonomy.services.schedule import LOCK_KEY, lane_tick
from autonomy.tasks import evidence_continuity_task
from autonomy.tests.test_governance import NOW, approver, losing_window
from tests.conftest import flag
from trading.models import Strategy

pytestmark = pytest.mark.django_db

STRATEGY = "legacy-macd-rsi-v3"


@pytest.fixture
def scheduled(flipt, settings, tmp_path):
    settings.TRADING_AUTONOMY_ENABLED = True
    settings.TRADING_SIGNAL_SOURCE = "kafka"
    settings.TRADING_ARTIFACT_DIR = str(tmp_path / "autonomy")
    cache.delete(LOCK_KEY)
    return settings


def _tick(at) -> str:
    cache.delete(LOCK_KEY)
    return lane_tick(now=at).reason


def test_autonomy_enabled_flag_starts_and_stops_the_scheduled_lane(scheduled, flipt):
    scheduled.TRADING_AUTONOMY_ENABLED = False
    losing_window(NOW)
    flipt.set_flags(flag("torghut_trading_autonomy_enabled", False))
    assert _tick(NOW) == "autonomy_disabled"
    assert DriftCheck.objects.count() == 0
    flipt.set_flags(flag("torghut_trading_autonomy_enabled", True))
    assert _tick(NOW) == "failed"  # the losing window ran and failed its gates
    assert DriftCheck.objects.count() == 1


def test_allow_live_promotion_flag_switches_the_scheduled_target(scheduled, flipt):
    scheduled.TRADING_AUTONOMY_ALLOW_LIVE_PROMOTION = True  # a one-way flag: env is the ceiling
    scheduled.TRADING_AUTONOMY_APPROVAL_TOKEN = "approve-me"
    key = "torghut_trading_autonomy_allow_live_promotion"
    flipt.set_flags(flag("torghut_trading_autonomy_enabled", True), flag(key, False))
    losing_window(NOW)
    cache.delete(LOCK_KEY)
    paper = lane_tick(now=NOW).lane_run
    flipt.set_flags(flag("torghut_trading_autonomy_enabled", True), flag(key, True))
    losing_window(NOW + timedelta(minutes=20), offset=10)
    cache.delete(LOCK_KEY)
    live = lane_tick(now=NOW + timedelta(minutes=20)).lane_run
    assert paper is not None and live is not None
    assert (paper.run.promotion_target, live.run.promotion_target) == ("paper", "live")


def test_evidence_continuity_flag_switches_the_daily_audit(flipt, settings):
    settings.TRADING_EVIDENCE_CONTINUITY_ENABLED = False
    flipt.set_flags(flag("torghut_trading_evidence_continuity_enabled", False))
    assert evidence_continuity_task.apply().get() == {"ran": False}
    flipt.set_flags(flag("torghut_trading_evidence_continuity_enabled", True))
    assert evidence_continuity_task.apply().get() == {
        "ran": True,
        "passed": True,
        "failed_runs": [],
    }


def test_live_promotion_evidence_flag_switches_the_drift_requirement(flipt, settings):
    settings.TRADING_DRIFT_LIVE_PROMOTION_REQUIRES_EVIDENCE = False
    key = "torghut_trading_drift_live_promotion_requires_evidence"
    flipt.set_flags(flag(key, False))
    assert drift_evidence_for_live("never-checked") == ""
    flipt.set_flags(flag(key, True))
    assert drift_evidence_for_live("never-checked") == "drift_evidence_missing"


@pytest.mark.parametrize(
    ("governance", "rollback", "status", "demoted"),
    [
        (False, True, "disabled", False),
        (True, False, "triggered", False),
        (True, True, "triggered", True),
    ],
)
def test_drift_governance_and_rollback_flags_decide_what_a_scheduled_loss_does(
    run_lane_cmd, scheduled, flipt, governance, rollback, status, demoted
):
    scheduled.TRADING_DRIFT_GOVERNANCE_ENABLED = not governance  # Flipt decides, not env
    scheduled.TRADING_DRIFT_ROLLBACK_ON_PERFORMANCE = not rollback
    champion = ResearchCandidate.objects.get(candidate_id=run_lane_cmd()["candidate_id"])
    promotion_approve(candidate=champion, mode="paper", actor=approver(), reason="ok")
    flipt.set_flags(
        flag("torghut_trading_autonomy_enabled", True),
        flag("torghut_trading_drift_governance_enabled", governance),
        flag("torghut_trading_drift_rollback_on_performance", rollback),
    )
    losing_window(NOW)
    result = lane_tick(now=NOW)
    assert result.lane_run is not None
    check = DriftCheck.objects.get(run=result.lane_run.run)
    assert (check.action_status, check.rollback_triggered) == (status, demoted)
    assert Strategy.objects.get(name=STRATEGY).enabled is (not demoted)
