"""The lane end to end on the shipped sample inputs (§8.2): artifacts, ledger, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError

from autonomy.models import (
    CandidateStage,
    DriftCheck,
    FoldMetric,
    Promotion,
    ResearchCandidate,
    ResearchRun,
    StressMetric,
)
from trading.models import SafetyEvent, SafetyState, Strategy

from .conftest import PRODUCTION_POLICY
from .conftest import SAMPLE_ARTIFACTS as ARTIFACTS

pytestmark = pytest.mark.django_db


def read(out: Path, path: str) -> dict:
    return dict(json.loads((out / path).read_text()))


def test_sample_inputs_recommend_paper_with_one_fold_and_four_stress_cases(
    run_lane_cmd, tmp_path, fs_artifacts
):
    out = tmp_path / "lane"
    summary = run_lane_cmd(out=out)
    assert summary["status"] == "passed"
    assert summary["recommended_mode"] == "paper"
    assert summary["recommendation"] == "promote"
    assert summary["eligible"] is True
    assert summary["artifacts"] == ARTIFACTS
    run_id = summary["run_id"]
    assert len(run_id) == 24
    assert summary["candidate_id"] == f"cand-{run_id[:12]}"

    gates = read(out, "gates/gate-evaluation.json")
    assert {g["gate"]: g["status"] for g in gates["gates"]} == {
        "gate0": "pass",
        "gate1": "pass",
        "gate2": "pass",
        "gate3": "pass",
        "gate4": "pass",
        "gate5": "skipped",
        "gate6": "pass",
        "gate7": "not_configured",
        "gate8": "not_configured",
    }
    assert gates["recommended_mode"] == "paper"
    assert gates["promotion_evidence"]["folds"] == ["autonomous_lane"]
    assert gates["promotion_evidence"]["stress_cases"] == [
        "spread",
        "volatility",
        "liquidity",
        "halt",
    ]
    assert gates["throughput"] == {
        "signal_count": 3,
        "invalid_rows": 0,
        "decision_count": 3,
        "trade_count": 2,
    }
    # buy @100 fills at 101 + 5 bps = 101.06, sell @101 fills at 102 - 5 bps = 101.94
    evaluation = read(out, "backtest/evaluation-report.json")
    assert evaluation["net_pnl"] == pytest.approx(0.88)
    assert evaluation["gross_pnl"] == pytest.approx(1.0)
    assert evaluation["trade_count"] == 2

    _assert_patch_and_spec(out, summary)
    _assert_ledger(out, summary, fs_artifacts)


def _assert_patch_and_spec(out: Path, summary: dict) -> None:
    """The sample run's paper patch, candidate spec and evidence hashes."""
    patch = yaml.safe_load((out / "paper-candidate/strategy-configmap-patch.yaml").read_text())
    assert patch["metadata"]["name"] == "torghut-strategy-config"
    assert patch["metadata"]["namespace"] == "torghut"
    assert patch["metadata"]["annotations"] == {
        "torghut.proompteng.ai/candidate-id": summary["candidate_id"],
        "torghut.proompteng.ai/recommended-mode": "paper",
    }
    (strategy,) = yaml.safe_load(patch["data"]["strategies.yaml"])["strategies"]
    assert strategy["name"] == "legacy-macd-rsi-v3"
    assert strategy["max_notional_per_trade"] == 250
    assert strategy["max_position_pct_equity"] == 0.025

    spec = read(out, "research/candidate-spec.json")
    assert spec["bounded_llm"] == {"enabled": False, "actuation_allowed": False}
    assert spec["promotion_recommendation"]["action"] == "promote"
    assert len(read(out, "gates/profitability-evidence-v4.json")["reproducibility"]["hashes"]) == 6


def _assert_ledger(out: Path, summary: dict, fs_artifacts) -> None:
    """The sample run's ledger rows, and its artifacts in object storage."""
    run_id = summary["run_id"]
    run = ResearchRun.objects.get(run_id=run_id)
    assert (run.status, run.recommended_mode, run.trigger) == ("passed", "paper", "cli")
    assert sorted(run.artifacts) == ARTIFACTS
    assert run.progress_done == run.progress_total == 6
    candidate = ResearchCandidate.objects.get(candidate_id=summary["candidate_id"])
    assert (candidate.lifecycle_role, candidate.lifecycle_status) == ("challenger", "evaluated")
    assert (candidate.decision_count, candidate.trade_count) == (3, 2)
    assert list(
        FoldMetric.objects.filter(candidate=candidate).values_list("fold_name", flat=True)
    ) == ["autonomous_lane"]
    assert sorted(
        StressMetric.objects.filter(candidate=candidate).values_list("stress_case", flat=True)
    ) == [
        "halt",
        "liquidity",
        "spread",
        "volatility",
    ]
    assert CandidateStage.objects.get(candidate_id=candidate.candidate_id).active_stage == (
        "policy-dry-run"
    )
    # the lane never promotes: its audit row is `hold` (awaiting a human), and its dry runs
    # leave nothing behind
    (audit,) = Promotion.objects.all()
    assert (audit.decision_action, audit.approver, audit.approved_mode) == ("hold", "", "")
    assert audit.recommendation_trace_id == run.recommendation_trace_id
    assert DriftCheck.objects.get(run=run).reason_codes == []
    assert not Strategy.objects.filter(name="legacy-macd-rsi-v3", enabled=True).exists()
    assert SafetyEvent.objects.count() == 0
    assert not SafetyState.objects.filter(kill_switch_engaged=True).exists()
    assert run.readiness["killSwitchDryRunPassed"] is True
    # every artifact is in object storage, byte-identical to the output dir
    for path in ARTIFACTS:
        stored = fs_artifacts.root / "autonomy" / "runs" / run_id / path
        assert stored.read_bytes() == (out / path).read_bytes(), path


def test_same_inputs_give_byte_identical_artifacts_and_one_ledger_run(run_lane_cmd, tmp_path):
    first = run_lane_cmd(out=tmp_path / "a")
    second = run_lane_cmd(out=tmp_path / "b")
    assert second["run_id"] == first["run_id"]
    assert (first["recorded"], second["recorded"]) == (True, False)
    for path in ARTIFACTS:
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes(), path
    assert ResearchRun.objects.count() == 1
    assert ResearchCandidate.objects.count() == 1
    assert FoldMetric.objects.count() == 1
    assert StressMetric.objects.count() == 4
    assert Promotion.objects.count() == 1
    assert DriftCheck.objects.count() == 1


def test_a_different_target_is_a_different_run(run_lane_cmd, tmp_path):
    paper = run_lane_cmd(out=tmp_path / "paper")
    shadow = run_lane_cmd("--promotion-target", "shadow", out=tmp_path / "shadow")
    assert paper["run_id"] != shadow["run_id"]
    assert shadow["recommended_mode"] == "shadow"
    assert shadow["eligible"] is True
    assert "paper-candidate/strategy-configmap-patch.yaml" not in shadow["artifacts"]


def test_live_target_without_live_gate_falls_back_to_paper(run_lane_cmd, tmp_path):
    out = tmp_path / "live"
    summary = run_lane_cmd("--promotion-target", "live", "--approval-token", "guess", out=out)
    assert summary["recommended_mode"] == "paper"
    gate5 = next(
        g for g in read(out, "gates/gate-evaluation.json")["gates"] if g["gate"] == "gate5"
    )
    assert gate5["status"] == "fail"
    assert gate5["reasons"] == ["gate5:live_enabled", "gate5:approval_token"]


def test_production_policy_abstains_on_too_little_data(run_lane_cmd, tmp_path):
    out = tmp_path / "prod"
    summary = run_lane_cmd(policy=PRODUCTION_POLICY, out=out)
    assert summary["status"] == "failed"
    assert summary["recommended_mode"] == "shadow"
    assert summary["recommendation"] == "deny"
    assert "paper-candidate/strategy-configmap-patch.yaml" not in summary["artifacts"]
    gates = read(out, "gates/gate-evaluation.json")
    gate7 = next(g for g in gates["gates"] if g["gate"] == "gate7")
    assert gate7["status"] == "fail"
    assert gate7["reasons"] == ["gate7:uncertainty_inputs:insufficient_samples"]
    assert gates["uncertainty_action"] == "abstain"
    recal = read(out, "gates/recalibration-report.json")
    assert recal["status"] == "queued"
    assert len(recal["recalibration_run_id"]) == 24
    assert ResearchRun.objects.get(run_id=summary["run_id"]).status == "failed"
    assert Promotion.objects.get().decision_action == "deny"


def test_no_signals_records_a_skipped_run(run_lane_cmd, tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    summary = run_lane_cmd(signals=empty, out=tmp_path / "skip")
    assert summary["status"] == "skipped"
    assert summary["recommended_mode"] == "shadow"
    assert summary["artifacts"] == ["research/no-signal-window.json"]
    run = ResearchRun.objects.get(run_id=summary["run_id"])
    assert run.status == "skipped"
    assert ResearchCandidate.objects.count() == 0


def test_a_bad_gate_policy_names_the_key(run_lane_cmd, tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"policy_version": "x", "gate2_max_drawdwn": 1}))
    with pytest.raises(CommandError, match="unknown key\\(s\\) gate2_max_drawdwn"):
        run_lane_cmd(policy=policy)
    assert ResearchRun.objects.count() == 0


def test_artifacts_go_to_the_s3_bucket(run_lane_cmd, s3_artifacts):
    summary = run_lane_cmd()
    prefix = f"autonomy/runs/{summary['run_id']}/"
    others = ["drift/action.json", "drift/detection.json", "drift/outcome.json", "manifest.json"]
    stored = sorted(k[len(prefix) :] for k in s3_artifacts.keys(prefix))
    assert stored == sorted(ARTIFACTS + others)
    run = ResearchRun.objects.get(run_id=summary["run_id"])
    assert run.artifacts["gates/gate-evaluation.json"]["uri"] == (
        f"s3://{s3_artifacts.bucket}/{prefix}gates/gate-evaluation.json"
    )
