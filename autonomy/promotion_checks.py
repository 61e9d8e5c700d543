"""The research lane's promotion checks (docs/compatibility.md#autonomous-lane): prerequisites,
rollback readiness, drift, the recommendation and the promotion evidence gate, as pure functions of
what the run computed.

`autonomy.research_lane.run_lane` calls `promotion_checks` once the gate matrix is evaluated; the
documents returned here are written with the run's other artifacts. Nothing here reads a
database, a file or a clock, so the same run gives the same bytes. A promotion itself is a human
action (`autonomy.services.promotion`): these checks only say whether the run recommends one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from autonomy.drift import DriftThresholds, drift_report, observation_from_evidence
from autonomy.engine.artifacts import sha256_hex
from autonomy.gates import GateInputs, GateReport, Readiness
from autonomy.policy import GatePolicy


@dataclass(frozen=True)
class RunFacts:
    """What the checks read about the run besides its gate inputs and gate report."""

    run_id: str
    candidate_id: str
    target: str  # the promotion target asked for: shadow, paper or live
    strategy_label: str  # `<strategy_type>@<version>`
    signal_count: int
    fold_count: int
    stress_case_count: int
    drawdown_pct: float  # the whole-period backtest's max drawdown, percent


@dataclass(frozen=True)
class PromotionChecks:
    prerequisites: dict[str, Any]
    rollback: dict[str, Any]
    drift: dict[str, Any]
    recommendation: dict[str, Any]
    promotion_gate: dict[str, Any]
    eligible: bool
    recommendation_trace_id: str


def prerequisites_check(
    *,
    facts: RunFacts,
    policy: GatePolicy,
    report: GateReport,
    gate_inputs: GateInputs,
    artifacts: Mapping[str, Any],
    present: Collection[str],
    has_patch: bool,
) -> dict[str, Any]:
    """The promotion prerequisites: gates 0-2, 7 and 8, the required artifacts (`present`: the run's
    artifact paths), the paper patch where the target needs one, throughput, one run id across
    the JSON artifacts, and the profitability validation and benchmark for a non-shadow target."""
    target = facts.target
    perf = gate_inputs.performance
    needs_patch = target in policy.promotion_require_patch_targets
    required = list(policy.promotion_required_artifacts)
    if target != "shadow":
        required += list(policy.promotion_profitability_required_artifacts)
    checks = {
        "gate0_passed": report.passed("gate0"),
        "gate1_passed": report.passed("gate1"),
        "gate2_passed": report.passed("gate2"),
        "gate7_passed": target == "shadow" or report.passed("gate7"),
        "gate8_passed": report.passed("gate8"),
        "required_artifacts_present": all(a in present for a in required),
        "patch_present": not needs_patch or has_patch or report.recommended_mode == "live",
        "throughput": facts.signal_count >= 1
        and perf.decision_count >= 1
        and perf.trade_count >= 0,
        "signal_window_present": True,
        "run_ids_match": all(
            a.get("run_id") == facts.run_id for a in artifacts.values() if isinstance(a, dict)
        ),
        "profitability_validation_passed": target == "shadow"
        or bool(gate_inputs.validation["passed"]),
        "benchmark_regime_coverage": target == "shadow"
        or gate_inputs.benchmark["regime_slice_count"] >= 1,
    }
    return {
        "run_id": facts.run_id,
        "candidate_id": facts.candidate_id,
        "promotion_target": target,
        "required_artifacts": required,
        "checks": checks,
        "passed": all(checks.values()),
        "reasons": sorted(k for k, ok in checks.items() if not ok),
    }


def rollback_check(*, facts: RunFacts, policy: GatePolicy, ready: Readiness) -> dict[str, Any]:
    """Rollback readiness: the dry runs the policy requires passed and a rollback target exists."""
    ready_checks = {
        "killSwitchDryRunPassed": ready.kill_switch_dry_run,
        "gitopsRevertDryRunPassed": ready.rollback_dry_run,
        "strategyDisableDryRunPassed": bool(ready.details.get("strategy_disable_dry_run")),
    }
    checks = {name: ready_checks[name] for name in policy.rollback_required_checks}
    target = str(ready.details.get("rollback_target") or "")
    return {
        "run_id": facts.run_id,
        "candidate_id": facts.candidate_id,
        "checks": checks,
        "dry_run_age_hours": 0,
        "dry_run_max_age_hours": policy.rollback_dry_run_max_age_hours,
        "rollback_target": target,
        # the lane cannot hold a human approval: the promotion action requires and records it
        "human_approval": (
            "required_at_promotion" if policy.rollback_require_human_approval else "not_required"
        ),
        "passed": all(checks.values()) and bool(target),
    }


def drift_check(
    *, facts: RunFacts, gate_inputs: GateInputs, thresholds: DriftThresholds
) -> dict[str, Any]:
    """The run's drift report (`autonomy.drift`) from its data integrity, performance and
    evidence."""
    return drift_report(
        observation_from_evidence(
            data=gate_inputs.data,
            net_pnl=gate_inputs.performance.net_pnl,
            drawdown_pct=facts.drawdown_pct,
            cost_bps=gate_inputs.performance.cost_bps,
            evidence=gate_inputs.evidence,
        ),
        thresholds,
    )


def _rationale(facts: RunFacts, report: GateReport, net_pnl: float) -> str:
    failed_gates = [g.gate for g in report.gates if g.status == "fail"]
    return (
        f"{facts.strategy_label} on {facts.signal_count} signals, {facts.fold_count} fold(s), "
        f"{facts.stress_case_count} stress case(s): net pnl {round(net_pnl, 4)}, "
        f"gates {'passed' if report.allowed else 'failed: ' + ', '.join(failed_gates)}; "
        f"recommended {report.recommended_mode}"
    )


def recommendation_for(
    *,
    facts: RunFacts,
    report: GateReport,
    eligible: bool,
    rationale: str,
    prerequisites: Mapping[str, Any],
    rollback: Mapping[str, Any],
    gate_trace_id: str,
) -> dict[str, Any]:
    """The run's recommendation (promote, deny or hold), with its trace id."""
    failed_gates = [g.gate for g in report.gates if g.status == "fail"]
    recommendation: dict[str, Any] = {
        "action": "promote" if eligible else ("deny" if failed_gates else "hold"),
        "eligible": eligible,
        "recommended_mode": report.recommended_mode,
        "promotion_target": facts.target,
        "rationale": rationale,
        "reasons": report.reasons
        + [f"prerequisite:{r}" for r in prerequisites["reasons"]]
        + ([] if rollback["passed"] else ["rollback_not_ready"]),
        "gate_report_trace_id": gate_trace_id,
    }
    recommendation["trace_id"] = sha256_hex(recommendation)[:24]
    return recommendation


def promotion_checks(
    *,
    facts: RunFacts,
    policy: GatePolicy,
    report: GateReport,
    gate_inputs: GateInputs,
    artifacts: Mapping[str, Any],
    present: Collection[str],
    has_patch: bool,
    drift_thresholds: DriftThresholds,
    gate_trace_id: str,
) -> PromotionChecks:
    """Every promotion check of the run, and whether its recommendation is eligible: gates
    allowed, prerequisites and rollback readiness passed, at least one fold and one stress case,
    and for a live recommendation no drift."""
    prerequisites = prerequisites_check(
        facts=facts,
        policy=policy,
        report=report,
        gate_inputs=gate_inputs,
        artifacts=artifacts,
        present=present,
        has_patch=has_patch,
    )
    rollback = rollback_check(facts=facts, policy=policy, ready=gate_inputs.readiness)
    drift = drift_check(facts=facts, gate_inputs=gate_inputs, thresholds=drift_thresholds)
    evidence_ok = facts.fold_count >= 1 and facts.stress_case_count >= 1
    eligible = (
        report.allowed
        and prerequisites["passed"]
        and rollback["passed"]
        and evidence_ok
        and (report.recommended_mode != "live" or drift["live_promotion_eligible"])
    )
    rationale = _rationale(facts, report, gate_inputs.performance.net_pnl)
    recommendation = recommendation_for(
        facts=facts,
        report=report,
        eligible=eligible,
        rationale=rationale,
        prerequisites=prerequisites,
        rollback=rollback,
        gate_trace_id=gate_trace_id,
    )
    promotion_gate = {
        "run_id": facts.run_id,
        "candidate_id": facts.candidate_id,
        "gates_allowed": report.allowed,
        "prerequisites_passed": prerequisites["passed"],
        "rollback_ready": rollback["passed"],
        "evidence": {
            "fold_count": facts.fold_count,
            "stress_case_count": facts.stress_case_count,
            "rationale": rationale,
            "passed": evidence_ok,
        },
        "drift": drift,
        "recommendation": recommendation,
    }
    return PromotionChecks(
        prerequisites=prerequisites,
        rollback=rollback,
        drift=drift,
        recommendation=recommendation,
        promotion_gate=promotion_gate,
        eligible=bool(eligible),
        recommendation_trace_id=str(recommendation["trace_id"]),
    )
