"""Drift governance, evidence continuity and the scheduled research lane: each setting, set to
two values, changes what the real consumer decides."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from autonomy.drift import DriftObservation, action_for, detect
from autonomy.models import DriftCheck, ResearchCandidate, ResearchRun
from autonomy.selectors import drift_evidence_for_live
from autonomy.services.governance import drift_record, evidence_continuity_check
from autonomy.services.research_lane import drift_thresholds

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
CLEAN = DriftObservation(0.0, 0.0, 0.0, 0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("setting", "field", "observed", "tripped_at", "clear_at", "code"),
    [
        ("TRADING_DRIFT_MAX_REQUIRED_NULL_RATE", "null_rate", 0.05, 0.04, 0.05,
         "data_required_null_rate_exceeded"),
        ("TRADING_DRIFT_MAX_STALENESS_MS_P95", "staleness_ms_p95", 1000.0, 999.0, 1000.0,
         "data_staleness_p95_exceeded"),
        ("TRADING_DRIFT_MAX_DUPLICATE_RATIO", "duplicate_ratio", 0.1, 0.09, 0.1,
         "data_duplicate_ratio_exceeded"),
        ("TRADING_DRIFT_MAX_SCHEMA_MISMATCH_TOTAL", "schema_mismatch_total", 2, 1, 2,
         "data_schema_mismatch"),
        ("TRADING_DRIFT_MAX_MODEL_CALIBRATION_ERROR", "calibration_error", 0.3, 0.29, 0.3,
         "model_calibration_error_exceeded"),
        ("TRADING_DRIFT_MAX_MODEL_LLM_ERROR_RATIO", "llm_error_ratio", 0.2, 0.19, 0.2,
         "model_llm_error_ratio_exceeded"),
        ("TRADING_DRIFT_MIN_PERFORMANCE_NET_PNL", "net_pnl", 5.0, 5.01, 5.0,
         "performance_net_pnl_below_min"),
        ("TRADING_DRIFT_MAX_PERFORMANCE_DRAWDOWN", "drawdown_pct", 0.05, 0.049, 0.05,
         "performance_drawdown_exceeded"),
        ("TRADING_DRIFT_MAX_PERFORMANCE_COST_BPS", "cost_bps", 20.0, 19.9, 20.0,
         "performance_cost_bps_exceeded"),
        ("TRADING_DRIFT_MAX_EXECUTION_FALLBACK_RATIO", "execution_fallback_ratio", 0.3, 0.29, 0.3,
         "performance_execution_fallback_ratio_exceeded"),
    ],
)  # fmt: skip
def test_each_drift_threshold_flips_its_reason_code(
    settings, setting, field, observed, tripped_at, clear_at, code
):
    obs = replace(CLEAN, **{field: observed})
    setattr(settings, setting, tripped_at)
    assert detect(obs, drift_thresholds()) == [code]
    setattr(settings, setting, clear_at)  # the limit is inclusive
    assert detect(obs, drift_thresholds()) == []


def test_the_trigger_code_lists_choose_the_action(settings):
    codes = ["data_schema_mismatch"]
    assert action_for(codes, drift_thresholds()) == "retrain"
    settings.TRADING_DRIFT_TRIGGER_RETRAIN_REASON_CODES = ["data_duplicate_ratio_exceeded"]
    assert action_for(codes, drift_thresholds()) == "none"
    settings.TRADING_DRIFT_TRIGGER_RESELECTION_REASON_CODES = ["data_schema_mismatch"]
    assert action_for(codes, drift_thresholds()) == "reselection"


def _run(run_id: str, *, trigger: str = "schedule", strategy: str = "s1") -> ResearchRun:
    return ResearchRun.objects.create(
        run_id=run_id, trigger=trigger, strategy_name=strategy, status="passed"
    )


DRIFTED = {"reason_codes": ["performance_net_pnl_below_min"], "action": "reselection"}
RETRAIN = {"reason_codes": ["data_schema_mismatch"], "action": "retrain"}


@pytest.mark.django_db
def test_governance_disabled_records_the_check_but_takes_no_action(settings):
    settings.TRADING_FEATURE_FLAGS_ENABLED = False
    settings.TRADING_DRIFT_GOVERNANCE_ENABLED = False
    assert drift_record(run=_run("r1"), drift=DRIFTED, now=NOW).action_status == "disabled"
    settings.TRADING_DRIFT_GOVERNANCE_ENABLED = True
    assert drift_record(run=_run("r2"), drift=DRIFTED, now=NOW).action_status == "triggered"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setting", "drift"),
    [
        ("TRADING_DRIFT_RETRAIN_COOLDOWN_SECONDS", RETRAIN),
        ("TRADING_DRIFT_RESELECTION_COOLDOWN_SECONDS", DRIFTED),
    ],
)
def test_each_action_cooldown_skips_a_repeat_within_it(settings, setting, drift):
    settings.TRADING_FEATURE_FLAGS_ENABLED = False
    setattr(settings, setting, 600)
    statuses = [
        drift_record(
            run=_run(f"r{i}"), drift=drift, now=NOW + timedelta(seconds=300 * i)
        ).action_status
        for i in range(3)
    ]
    # 300 s after a trigger: skipped; 600 s after it: triggered again
    assert statuses == ["triggered", "cooldown_skip", "triggered"]
    setattr(settings, setting, 200)
    statuses = [
        drift_record(
            run=_run(f"q{i}"), drift=drift, now=NOW + timedelta(days=1, seconds=300 * i)
        ).action_status
        for i in range(2)
    ]
    assert statuses == ["triggered", "triggered"]


def _champion(run: ResearchRun) -> ResearchCandidate:
    """A champion with no promotion row: a demotion attempt is refused, which shows the
    attempt was made without trading anything."""
    return ResearchCandidate.objects.create(
        run=run,
        candidate_id="cand-1",
        candidate_hash="h",
        strategy_name="s1",
        strategy_type="legacy_macd_rsi",
        promotion_target="paper",
        lifecycle_role="champion",
    )


@pytest.mark.django_db
def test_rollback_codes_and_the_rollback_flag_decide_the_demotion_attempt(settings):
    settings.TRADING_FEATURE_FLAGS_ENABLED = False
    settings.TRADING_DRIFT_RESELECTION_COOLDOWN_SECONDS = 0
    _champion(_run("base", trigger="cli"))
    settings.TRADING_DRIFT_ROLLBACK_ON_PERFORMANCE = True
    settings.TRADING_DRIFT_ROLLBACK_REASON_CODES = ["performance_drawdown_exceeded"]
    assert drift_record(run=_run("r1"), drift=DRIFTED, now=NOW).rollback_candidate_id == ""
    settings.TRADING_DRIFT_ROLLBACK_REASON_CODES = ["performance_net_pnl_below_min"]
    attempted = drift_record(run=_run("r2"), drift=DRIFTED, now=NOW).rollback_candidate_id
    assert attempted.startswith("refused:")
    settings.TRADING_DRIFT_ROLLBACK_ON_PERFORMANCE = False
    assert drift_record(run=_run("r3"), drift=DRIFTED, now=NOW).rollback_candidate_id == ""
    assert ResearchCandidate.objects.get().lifecycle_role == "champion"


@pytest.mark.django_db
def test_live_promotion_evidence_requirement_and_its_max_age(settings):
    settings.TRADING_FEATURE_FLAGS_ENABLED = False
    settings.TRADING_DRIFT_LIVE_PROMOTION_REQUIRES_EVIDENCE = False
    assert drift_evidence_for_live("s1", now=NOW) == ""
    settings.TRADING_DRIFT_LIVE_PROMOTION_REQUIRES_EVIDENCE = True
    assert drift_evidence_for_live("s1", now=NOW) == "drift_evidence_missing"
    DriftCheck.objects.create(run=_run("r1"), strategy_name="s1", checked_at=NOW)
    later = NOW + timedelta(seconds=100)
    settings.TRADING_DRIFT_LIVE_PROMOTION_MAX_EVIDENCE_AGE_SECONDS = 99
    assert drift_evidence_for_live("s1", now=later) == "drift_evidence_missing"
    settings.TRADING_DRIFT_LIVE_PROMOTION_MAX_EVIDENCE_AGE_SECONDS = 100
    assert drift_evidence_for_live("s1", now=later) == ""


@pytest.mark.django_db
def test_continuity_run_limit_bounds_the_runs_checked(settings):
    for i in range(3):
        ResearchRun.objects.filter(pk=_run(f"r{i}").pk).update(started_at=NOW - timedelta(hours=i))
    settings.TRADING_EVIDENCE_CONTINUITY_RUN_LIMIT = 2
    report = evidence_continuity_check(now=NOW)
    assert (report.run_limit, report.runs_checked, report.report["run_ids"]) == (2, 2, ["r0", "r1"])
    settings.TRADING_EVIDENCE_CONTINUITY_RUN_LIMIT = 3
    assert evidence_continuity_check(now=NOW).runs_checked == 3


def test_continuity_interval_is_the_beat_period(settings):
    from torghut_site.schedule import beat_schedule

    settings.TRADING_EVIDENCE_CONTINUITY_INTERVAL_SECONDS = 3600
    assert beat_schedule()["autonomy-evidence-continuity"]["schedule"] == 3600.0
    settings.TRADING_EVIDENCE_CONTINUITY_INTERVAL_SECONDS = 7200
    assert beat_schedule()["autonomy-evidence-continuity"]["schedule"] == 7200.0
