"""Drift governance and evidence continuity (§8.6)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission, User

from autonomy.drift import DriftObservation, DriftThresholds, action_for, detect
from autonomy.models import DriftCheck, FoldMetric, Promotion, ResearchCandidate, ResearchRun
from autonomy.selectors import drift_evidence_for_live
from autonomy.services.governance import evidence_continuity_check
from autonomy.services.promotion import promotion_approve
from autonomy.services.schedule import LOCK_KEY, lane_tick
from trading.models import Strategy, TaSignal

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
CLEAN = DriftObservation(0.0, None, 0.0, 0, 0.1, None, 1.0, 0.01, 5.0, None)


@pytest.mark.parametrize(
    ("changes", "codes", "action"),
    [
        ({}, [], "none"),
        ({"null_rate": 0.021}, ["data_required_null_rate_exceeded"], "retrain"),
        ({"staleness_ms_p95": 180_001.0}, ["data_staleness_p95_exceeded"], "retrain"),
        ({"schema_mismatch_total": 1}, ["data_schema_mismatch"], "retrain"),
        ({"calibration_error": 0.46}, ["model_calibration_error_exceeded"], "retrain"),
        ({"net_pnl": -0.01}, ["performance_net_pnl_below_min"], "reselection"),
        ({"drawdown_pct": 0.081}, ["performance_drawdown_exceeded"], "reselection"),
        (
            {"cost_bps": 36.0, "duplicate_ratio": 0.06},
            ["data_duplicate_ratio_exceeded", "performance_cost_bps_exceeded"],
            "reselection",
        ),
    ],
)
def test_drift_codes_and_actions(changes, codes, action):
    from dataclasses import replace

    t = DriftThresholds()
    found = detect(replace(CLEAN, **changes), t)
    assert found == codes
    assert action_for(found, t) == action


def approver() -> User:
    user = User.objects.create_user("alice", password="x")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["approve_promotion", "approve_live_promotion"])
    )
    return User.objects.get(pk=user.pk)


def losing_window(end: datetime, *, offset: int = 0) -> None:
    """Buy @100 (fills 101.06), sell @101 (fills at 98 - 5 bps): a loss."""
    payloads = [
        {"macd": {"macd": "1.2", "signal": "0.5"}, "rsi14": "20", "price": "100.00"},
        {"macd": {"macd": "-0.2", "signal": "0.1"}, "rsi14": "75", "price": "101.00"},
        {"macd": {"macd": "0.3", "signal": "0.1"}, "rsi14": "50", "price": "98.00"},
    ]
    for i, payload in enumerate(payloads):
        ts = end - timedelta(minutes=3 - i)
        row = {
            "event_ts": ts.isoformat(),
            "symbol": "AAPL",
            "seq": i,
            "timeframe": "1Min",
            "payload": payload,
        }
        TaSignal.objects.create(
            event_ts=ts,
            symbol="AAPL",
            seq=i,
            row=json.loads(json.dumps(row)),
            source_topic="t",
            source_partition=0,
            source_offset=offset + i,
            received_at=ts,
        )


@pytest.fixture
def scheduled(settings, tmp_path):
    from django.core.cache import cache

    settings.TRADING_AUTONOMY_ENABLED = True
    settings.TRADING_SIGNAL_SOURCE = "kafka"
    settings.TRADING_ARTIFACT_DIR = str(tmp_path / "autonomy")
    cache.delete(LOCK_KEY)
    return settings


def test_a_scheduled_loss_demotes_the_promoted_champion(run_lane_cmd, scheduled):
    champion = ResearchCandidate.objects.get(candidate_id=run_lane_cmd()["candidate_id"])
    promotion_approve(candidate=champion, mode="paper", actor=approver(), reason="ok")
    assert Strategy.objects.get(name="legacy-macd-rsi-v3").enabled is True

    losing_window(NOW)
    result = lane_tick(now=NOW)
    assert result.reason == "failed"  # gate 1: net pnl < 0
    assert result.lane_run is not None
    check = DriftCheck.objects.get(run=result.lane_run.run)
    assert check.reason_codes == ["performance_net_pnl_below_min"]
    assert (check.action, check.action_status) == ("reselection", "triggered")
    assert (check.rollback_triggered, check.rollback_candidate_id) == (True, champion.candidate_id)
    assert sorted(check.artifacts) == [
        "drift/action.json",
        "drift/detection.json",
        "drift/outcome.json",
    ]
    champion.refresh_from_db()
    assert champion.lifecycle_role == "demoted"
    assert Strategy.objects.get(name="legacy-macd-rsi-v3").enabled is False
    demote = Promotion.objects.get(decision_action="demote")
    assert (demote.approver, demote.approver_role) == ("system:drift-governance", "system")


def test_the_same_action_within_its_cooldown_is_skipped(run_lane_cmd, scheduled):
    losing_window(NOW)
    lane_tick(now=NOW)
    losing_window(NOW + timedelta(minutes=20), offset=10)
    lane_tick(now=NOW + timedelta(minutes=20))
    statuses = list(
        DriftCheck.objects.order_by("checked_at").values_list("action_status", flat=True)
    )
    # both checks ran on the wall clock within the hour: the second reselection is skipped
    assert statuses == ["triggered", "cooldown_skip"]


def test_a_cli_run_never_acts_on_what_trades(run_lane_cmd, tmp_path):
    champion = ResearchCandidate.objects.get(candidate_id=run_lane_cmd()["candidate_id"])
    promotion_approve(candidate=champion, mode="paper", actor=approver(), reason="ok")
    losing = tmp_path / "losing.json"
    losing.write_text(
        json.dumps(
            [
                {
                    "event_ts": "2026-01-01T00:01:00+00:00",
                    "symbol": "AAPL",
                    "timeframe": "1Min",
                    "payload": {
                        "macd": {"macd": "1.2", "signal": "0.5"},
                        "rsi14": "20",
                        "price": "100",
                    },
                },
                {
                    "event_ts": "2026-01-01T00:02:00+00:00",
                    "symbol": "AAPL",
                    "timeframe": "1Min",
                    "payload": {
                        "macd": {"macd": "-0.2", "signal": "0.1"},
                        "rsi14": "75",
                        "price": "101",
                    },
                },
                {
                    "event_ts": "2026-01-01T00:03:00+00:00",
                    "symbol": "AAPL",
                    "timeframe": "1Min",
                    "payload": {
                        "macd": {"macd": "0.3", "signal": "0.1"},
                        "rsi14": "50",
                        "price": "98",
                    },
                },
            ]
        )
    )
    summary = run_lane_cmd(signals=losing, out=tmp_path / "losing")
    check = DriftCheck.objects.get(run__run_id=summary["run_id"])
    assert check.reason_codes == ["performance_net_pnl_below_min"]
    assert check.rollback_triggered is False
    champion.refresh_from_db()
    assert champion.lifecycle_role == "champion"
    assert Strategy.objects.get(name="legacy-macd-rsi-v3").enabled is True


def test_live_promotion_needs_fresh_clean_drift_evidence(run_lane_cmd):
    run_lane_cmd()
    assert drift_evidence_for_live("legacy-macd-rsi-v3") == ""
    assert drift_evidence_for_live("other-strategy") == "drift_evidence_missing"
    DriftCheck.objects.update(checked_at=datetime.now(UTC) - timedelta(seconds=1801))
    assert drift_evidence_for_live("legacy-macd-rsi-v3") == "drift_evidence_missing"
    DriftCheck.objects.update(
        checked_at=datetime.now(UTC), reason_codes=["performance_drawdown_exceeded"]
    )
    assert drift_evidence_for_live("legacy-macd-rsi-v3") == "drift_detected"


def test_evidence_continuity_names_the_missing_rows(run_lane_cmd, tmp_path):
    first = run_lane_cmd()
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    run_lane_cmd(signals=empty, out=tmp_path / "skip")  # skipped runs are not audited
    report = evidence_continuity_check(run_limit=8)
    assert (report.passed, report.runs_checked, report.failed_runs) == (True, 1, [])
    FoldMetric.objects.all().delete()
    report = evidence_continuity_check(run_limit=8)
    assert report.passed is False
    assert report.failed_runs == [{"run_id": first["run_id"], "missing": ["research_fold_metrics"]}]
    assert ResearchRun.objects.count() == 2


def test_the_continuity_task_reads_its_flag(run_lane_cmd, settings):
    from autonomy.tasks import evidence_continuity_task
    from torghut_site.schedule import beat_schedule

    assert beat_schedule()["autonomy-evidence-continuity"]["schedule"] == 86_400.0
    settings.TRADING_EVIDENCE_CONTINUITY_ENABLED = False
    assert evidence_continuity_task.apply().get() == {"ran": False}
    settings.TRADING_EVIDENCE_CONTINUITY_ENABLED = True
    run_lane_cmd()
    assert evidence_continuity_task.apply().get() == {
        "ran": True,
        "passed": True,
        "failed_runs": [],
    }
