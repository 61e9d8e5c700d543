"""Gate matrix rules (§8.3) and gate-policy parsing, as pure functions."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from autonomy.evidence import UncertaintyEstimate, ks_statistic, uncertainty_estimate
from autonomy.gates import (
    DataIntegrity,
    GateInputs,
    PerformanceSummary,
    QualityEvidence,
    Readiness,
    StressSummary,
    TcaSummary,
    evaluate_gate_matrix,
    uncertainty_action,
)
from autonomy.policy import GatePolicyError, load_gate_policy, parse_gate_policy

from .conftest import PRODUCTION_POLICY, SAMPLE_POLICY

SAMPLE, _ = load_gate_policy(SAMPLE_POLICY)
PRODUCTION, _ = load_gate_policy(PRODUCTION_POLICY)
HASHES = {f"h{i}": f"{i:064x}" for i in range(6)}


def inputs(**changes) -> GateInputs:
    base = GateInputs(
        data=DataIntegrity(("3.0.0",), 0.0, None, 1),
        performance=PerformanceSummary(3, 2, 0.88, 0.0, 0.0, 0.06, 0.002, 5.9, 1),
        stress=StressSummary(4, 0.24, "normal", 0, 0.1),
        quality=QualityEvidence(),
        readiness=Readiness(True, True, True, True),
        benchmark={
            "schema_version": "profitability-benchmark-v4",
            "market_net_pnl_delta": 0.0,
            "regime_slice_pass_ratio": 1.0,
        },
        evidence={
            "schema_version": "profitability-evidence-v4",
            "risk_adjusted": {"return_over_drawdown": 14.6, "net_pnl": 0.88},
            "cost_fill_realism": {"cost_bps": 5.9},
            "confidence_calibration": {"error": 0.15},
            "reproducibility": {"hashes": HASHES},
        },
        validation={"passed": True, "reasons": []},
        uncertainty=None,
    )
    return replace(base, **changes)


def test_everything_passing_recommends_the_target():
    report = evaluate_gate_matrix(inputs(), SAMPLE, "paper")
    assert (report.allowed, report.recommended_mode, report.reasons) == (True, "paper", [])


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"data": DataIntegrity(("2.0.0",), 0.0, None, 1)}, "gate0:feature_schema_version"),
        ({"data": DataIntegrity(("3.0.0",), 0.02, None, 1)}, "gate0:null_rate"),
        ({"data": DataIntegrity(("3.0.0",), 0.0, 120_001.0, 1)}, "gate0:staleness_ms_p95"),
        ({"data": DataIntegrity(("3.0.0",), 0.0, None, 0)}, "gate0:symbol_coverage"),
        (
            {"performance": PerformanceSummary(0, 0, 0.0, 0.0, None, 0, 0, 0, 1)},
            "gate1:decision_count",
        ),
        (
            {"performance": PerformanceSummary(3, 2, -0.01, 0.0, 0.5, 0.06, 0.0, 5.9, 1)},
            "gate1:net_pnl",
        ),
        (
            {"performance": PerformanceSummary(3, 2, 1.0, 0.51, 0.5, 0.06, 0.0, 5.9, 4)},
            "gate1:negative_fold_ratio",
        ),
        (
            {"performance": PerformanceSummary(3, 2, 1.0, 0.0, 2.01, 0.06, 0.0, 5.9, 4)},
            "gate1:net_pnl_cv",
        ),
        (
            {"performance": PerformanceSummary(3, 2, 1.0, 0.0, 0.1, 250.01, 0.0, 5.9, 1)},
            "gate2:max_drawdown",
        ),
        (
            {"performance": PerformanceSummary(3, 2, 1.0, 0.0, 0.1, 1, 8.01, 5.9, 1)},
            "gate2:turnover_ratio",
        ),
        (
            {"performance": PerformanceSummary(3, 2, 1.0, 0.0, 0.1, 1, 1, 35.01, 1)},
            "gate2:cost_bps",
        ),
        ({"stress": StressSummary(4, 0.86, "crisis", 3, 1)}, "gate2:fragility_score"),
        ({"stress": StressSummary(4, 0.5, "stress", 3, 1)}, "gate2:fragility_state_rank"),
        ({"stress": StressSummary(4, 0.1, "normal", 0, 251)}, "gate2:stability_under_stress"),
        ({"tca": TcaSummary(5, 25.5, 1, 0.1)}, "gate2:tca_slippage_bps"),
        (
            {"quality": QualityEvidence(llm_used=True, llm_reviews=10, llm_errors=2)},
            "gate3:llm_error_ratio",
        ),
        ({"quality": QualityEvidence(forecast_used=True)}, "gate3:forecast_fallback_rate"),
        ({"readiness": Readiness(True, True, False, True)}, "gate4:kill_switch_dry_run"),
        ({"readiness": Readiness(False, True, True, True)}, "gate4:operational_ready"),
        ({"validation": {"passed": False, "reasons": ["x"]}}, "gate6:validation_passed"),
    ],
)
def test_each_failing_check_names_itself_and_falls_back_to_shadow(changes, reason):
    report = evaluate_gate_matrix(inputs(**changes), SAMPLE, "paper")
    assert reason in report.reasons
    assert (report.allowed, report.recommended_mode) == (False, "shadow")


def test_tca_is_only_checked_with_orders():
    report = evaluate_gate_matrix(inputs(tca=TcaSummary(0, 99, 99, 9)), SAMPLE, "paper")
    assert report.reasons == []


def test_unused_llm_and_forecast_are_not_applicable():
    gate3 = evaluate_gate_matrix(inputs(), SAMPLE, "paper").gate("gate3")
    assert gate3.status == "pass"
    assert gate3.details["forecast_calibration_score"]["note"] == "not_applicable"


def test_gate6_is_skipped_for_shadow_and_gate5_only_for_live():
    bad = inputs(benchmark={"schema_version": "nope"})
    shadow = evaluate_gate_matrix(bad, SAMPLE, "shadow")
    assert shadow.gate("gate6").status == "skipped"
    assert shadow.gate("gate5").status == "skipped"
    assert (shadow.allowed, shadow.recommended_mode) == (True, "shadow")
    assert evaluate_gate_matrix(bad, SAMPLE, "paper").allowed is False


def test_live_needs_gate5_else_paper():
    live_policy = replace(SAMPLE, gate5_live_enabled=True)
    no_token = evaluate_gate_matrix(inputs(), live_policy, "live")
    assert (no_token.recommended_mode, no_token.gate("gate5").reasons) == (
        "paper",
        ["gate5:approval_token"],
    )
    with_token = evaluate_gate_matrix(inputs(approval_token_ok=True), live_policy, "live")
    assert with_token.recommended_mode == "live"
    assert evaluate_gate_matrix(
        inputs(approval_token_ok=True), SAMPLE, "live"
    ).recommended_mode == ("paper")


def est(cov_err: float, shift: float, width: float) -> UncertaintyEstimate:
    return UncertaintyEstimate(1, 0.9 - cov_err, cov_err, shift, width, "")


@pytest.mark.parametrize(
    ("estimate", "action"),
    [
        (est(0.0, 0.0, 1.0), "pass"),
        (est(0.03, 0.59, 1.25), "pass"),
        (est(0.031, 0.0, 1.0), "degrade"),
        (est(0.051, 0.0, 1.0), "degrade"),
        (est(0.0, 0.60, 1.0), "degrade"),
        (est(0.0, 0.0, 1.26), "degrade"),
        (est(0.081, 0.0, 1.0), "abstain"),
        (est(0.0, 0.80, 1.0), "abstain"),
        (est(0.0, 0.0, 1.76), "abstain"),
        (est(0.0, 0.95, 1.0), "fail"),
        (UncertaintyEstimate(0, None, None, None, None, "insufficient_samples"), "abstain"),
    ],
)
def test_uncertainty_ladder(estimate, action):
    assert uncertainty_action(estimate, PRODUCTION)[0] == action


def test_uncertainty_degrade_needs_a_queued_recalibration_and_abstain_never_promotes():
    degrade = inputs(uncertainty=est(0.04, 0.0, 1.0))
    assert evaluate_gate_matrix(degrade, PRODUCTION, "paper").reasons == [
        "gate7:recalibration_queued"
    ]
    queued = replace(degrade, recalibration_run_id="r" * 24, recalibration_artifact="x.json")
    report = evaluate_gate_matrix(queued, PRODUCTION, "paper")
    assert (report.allowed, report.uncertainty_action) == (True, "degrade")
    abstain = evaluate_gate_matrix(inputs(uncertainty=est(0.1, 0.0, 1.0)), PRODUCTION, "paper")
    assert (abstain.allowed, abstain.recommended_mode) == (False, "shadow")


def test_uncertainty_estimate_on_matching_and_shifted_windows():
    import numpy as np

    from autonomy.engine.walkforward import Fold

    rng = np.random.default_rng(7)
    same = rng.normal(0, 1, 400)
    fold = Fold(0, 0, 200, 200, 400)
    close = uncertainty_estimate(same, [fold], target_coverage=0.9, min_samples=20)
    # seeded: 170 of 200 test draws fall inside the train window's 90% interval
    assert close.coverage == pytest.approx(0.85)
    assert close.coverage_error == pytest.approx(0.05)
    assert close.shift_score == pytest.approx(0.065)
    shifted = np.concatenate([same[:200], same[200:] * 3 + 2])
    far = uncertainty_estimate(shifted, [fold], target_coverage=0.9, min_samples=20)
    assert far.shift_score is not None and far.shift_score > 0.5
    assert far.interval_width_ratio is not None and far.interval_width_ratio > 2
    assert ks_statistic(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0


def test_policy_files_parse_and_differ_where_the_inventory_says():
    assert SAMPLE.policy_version == "v3-gates-1"
    assert SAMPLE.gate7_configured is False
    assert PRODUCTION.gate7_target_coverage == 0.9
    assert PRODUCTION.gate6_max_calibration_error == 0.45
    assert SAMPLE.rollback_required_checks == (
        "killSwitchDryRunPassed",
        "gitopsRevertDryRunPassed",
        "strategyDisableDryRunPassed",
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "a gate policy is a JSON object"),
        ({}, "policy_version must be a non-empty string"),
        (
            {"policy_version": "x", "gate2_max_drawdown": "big"},
            "gate2_max_drawdown must be a finite number",
        ),
        (
            {"policy_version": "x", "gate2_max_drawdown": -1},
            "gate2_max_drawdown must be a number >= 0",
        ),
        (
            {"policy_version": "x", "gate1_min_trade_count": 1.5},
            "gate1_min_trade_count must be a whole number",
        ),
        (
            {"policy_version": "x", "gate5_live_enabled": 1},
            "gate5_live_enabled must be true or false",
        ),
        (
            {"policy_version": "x", "rollback_required_checks": ["nope"]},
            "unknown check\\(s\\) nope",
        ),
    ],
)
def test_bad_policies_name_the_problem(data, message):
    with pytest.raises(GatePolicyError, match=message):
        parse_gate_policy(json.loads(json.dumps(data)))
