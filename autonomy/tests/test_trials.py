"""The trial registry and gate 8 (issue #21, items 1 and 2): every evaluated setting is recorded
once per key, the lane's candidate is deflated by its family's trials, and the gate policy v4
rejects the luckiest of 24 noise settings while a planted edge passes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from autonomy.gates import GateInputs, gate8
from autonomy.lane_inputs import lane_run_id, lane_trial_keys
from autonomy.models import ResearchRun, ResearchTrial
from autonomy.policy import (
    PRODUCTION_POLICY_PATH,
    GatePolicyError,
    load_gate_policy,
    parse_gate_policy,
)
from autonomy.research_lane import EVIDENCE, OVERFITTING_KEYS
from autonomy.selectors import trial_history
from autonomy.services.research_lane import policy_inputs
from autonomy.services.trials import trials_record
from autonomy.trials import (
    BLOCKS,
    Trial,
    TrialHistory,
    TrialWindow,
    block_sums,
    overfitting_evidence,
    trial_of,
)
from trading.signals.replay import read_signal_rows

from .conftest import SAMPLE_POLICY, SAMPLE_SIGNALS, SAMPLE_STRATEGY

V4 = PRODUCTION_POLICY_PATH
PERIODS = 1000
SETTINGS = 24
EDGE = 0.25  # the planted setting's mean return, in standard deviations per period


def window(dataset: str = "d" * 64, plan: str = "test:1") -> TrialWindow:
    return TrialWindow(
        dataset_sha256=dataset,
        start_row=0,
        stop_row=PERIODS,
        window_from="2026-01-05T14:30:00+00:00",
        window_to="2026-01-05T22:00:00+00:00",
        plan=plan,
    )


def noise_trials(seed: int, edge: float = 0.0, family: str = "noise") -> list[Trial]:
    """24 settings of pure noise returns on one window; with an edge, setting 7 has it."""
    m = np.random.default_rng(seed).standard_normal((PERIODS, SETTINGS)) * 0.001
    m[:, 7] += edge * 0.001
    w = window()
    return [
        trial_of(
            family=family,
            params={"setting": j},
            config={"costs": "default"},
            window=w,
            sums=block_sums(m[:, j], 0, w.bounds()),
            source="sweep",
        )
        for j in range(SETTINGS)
    ]


def history_of(trials: list[Trial]) -> TrialHistory:
    from autonomy.trials import HistoricTrial

    return TrialHistory(
        trials[0].family,
        tuple(HistoricTrial(t.key, t.sharpe(), t.window.key, t.sums) for t in trials),
    )


def gate8_verdict(trials: list[Trial]) -> tuple[str, dict]:
    policy, _ = load_gate_policy(V4)
    best = max(trials, key=lambda t: t.sharpe() or -1.0)
    evidence = overfitting_evidence(best, history_of(trials))
    inputs = GateInputs(
        data=None,  # type: ignore[arg-type]  # gate 8 reads only the overfitting evidence
        performance=None,  # type: ignore[arg-type]
        stress=None,  # type: ignore[arg-type]
        quality=None,  # type: ignore[arg-type]
        readiness=None,  # type: ignore[arg-type]
        benchmark={},
        evidence={},
        validation={},
        uncertainty=None,
        overfitting=evidence,
    )
    return gate8(inputs, policy, "paper").status, evidence


def test_gate8_rejects_the_best_of_24_noise_settings_in_at_least_95_of_100_seeds():
    verdicts = [gate8_verdict(noise_trials(seed)) for seed in range(100)]
    assert sum(status == "fail" for status, _ in verdicts) >= 95
    # the evidence counts every setting and sees the selection on the shared window
    assert {e["trial_count"] for _, e in verdicts} == {24}
    assert {e["window_trial_count"] for _, e in verdicts} == {24}
    assert all(e["probability_of_backtest_overfitting"] is not None for _, e in verdicts)
    # undeflated, the luckiest noise setting often looks like an edge
    assert sum(e["probabilistic_sharpe_ratio"] >= 0.95 for _, e in verdicts) >= 50


def test_gate8_passes_a_planted_edge_in_at_least_95_of_100_seeds():
    verdicts = [gate8_verdict(noise_trials(seed, EDGE)) for seed in range(100)]
    assert sum(status == "pass" for status, _ in verdicts) >= 95


def test_gate8_reasons_not_configured_skipped_and_missing():
    policy, _ = load_gate_policy(V4)
    sample, _ = load_gate_policy(SAMPLE_POLICY)
    # the first seed whose luckiest noise setting passes the plain PSR: only the DSR fails it
    evidence = next(
        e
        for e in (gate8_verdict(noise_trials(seed))[1] for seed in range(20))
        if e["probabilistic_sharpe_ratio"] >= 0.95
    )
    inputs = GateInputs(
        data=None,  # type: ignore[arg-type]
        performance=None,  # type: ignore[arg-type]
        stress=None,  # type: ignore[arg-type]
        quality=None,  # type: ignore[arg-type]
        readiness=None,  # type: ignore[arg-type]
        benchmark={},
        evidence={},
        validation={},
        uncertainty=None,
        overfitting=evidence,
    )
    failed = gate8(inputs, policy, "paper")
    assert failed.reasons == ["gate8:deflated_sharpe_ratio"]
    assert failed.details["deflated_sharpe_ratio"]["threshold"] == 0.95
    assert gate8(inputs, sample, "paper").status == "not_configured"
    assert gate8(inputs, policy, "shadow").status == "skipped"
    # a statistic that could not be computed fails as missing
    flat = overfitting_evidence(
        trial_of(
            family="flat",
            params={},
            config={},
            window=window(),
            sums=block_sums(np.zeros(PERIODS), 0, window().bounds()),
        ),
        TrialHistory("flat"),
    )
    assert flat["sharpe_ratio"] is None and "sharpe_ratio" in flat["insufficient"]
    missing = gate8(
        GateInputs(**{**inputs.__dict__, "overfitting": flat}),
        policy,
        "paper",
    )
    assert missing.reasons == [
        "gate8:deflated_sharpe_ratio_missing",
        "gate8:probabilistic_sharpe_ratio_missing",
    ]
    # one setting on the window: no selection happened there, the PBO is not applicable
    assert missing.details["probability_of_backtest_overfitting"]["note"] == "not_applicable"


def test_policy_refuses_a_gate8_probability_above_one():
    with pytest.raises(GatePolicyError, match="gate8_max_probability_of_backtest_overfitting"):
        parse_gate_policy(
            {"policy_version": "x", "gate8_max_probability_of_backtest_overfitting": 1.5}
        )
    policy, _ = load_gate_policy(V4)
    assert policy.policy_version == "v4-gates-prod-1" and policy.gate8_configured


def test_block_sums_of_folds_add_up_to_the_whole_window():
    r = np.random.default_rng(4).standard_normal(PERIODS)
    w = window()
    whole = block_sums(r, 0, w.bounds())
    parts = block_sums(r[:333], 0, w.bounds()) + block_sums(r[333:], 333, w.bounds())
    assert whole.shape == (BLOCKS, 5)
    np.testing.assert_allclose(parts, whole, rtol=1e-12)


@pytest.mark.django_db
def test_trials_record_is_idempotent_by_key_and_never_rewrites_numbers():
    trials = noise_trials(2)
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    assert trials_record(trials=trials, now=t0) == 24
    assert trials_record(trials=trials[:3], now=t0 + timedelta(days=1)) == 0
    assert ResearchTrial.objects.count() == 24
    row = ResearchTrial.objects.get(trial_key=trials[0].key)
    assert row.first_seen_at == t0 and row.last_seen_at == t0 + timedelta(days=1)
    assert row.sharpe_ratio == trials[0].sharpe()
    assert row.periods == PERIODS and row.source == "sweep"
    # the history reads them back: the same evidence as from the trials themselves
    history = trial_history(family="noise")
    best = max(trials, key=lambda t: t.sharpe() or -1.0)
    assert overfitting_evidence(best, history) == overfitting_evidence(best, history_of(trials))
    only_sharpes = trial_history(family="noise", window_key="other")
    assert {t.sums for t in only_sharpes.trials} == {()}


def lane_inputs(policy: Path = V4):
    policy_obj, policy_bytes = load_gate_policy(policy)
    return policy_inputs(
        signal_rows=read_signal_rows(SAMPLE_SIGNALS),
        signals_bytes=SAMPLE_SIGNALS.read_bytes(),
        strategy_config_bytes=SAMPLE_STRATEGY.read_bytes(),
        policy=policy_obj,
        policy_bytes=policy_bytes,
        target="paper",
        approval_token_ok=False,
    )


@pytest.mark.django_db
def test_the_lane_records_its_trial_and_a_rerun_is_the_same_run(run_lane_cmd, tmp_path):
    inputs = lane_inputs()
    own = lane_trial_keys(inputs)
    first = run_lane_cmd(policy=V4, out=tmp_path / "a")
    assert list(ResearchTrial.objects.values_list("trial_key", flat=True)) == own
    trial = ResearchTrial.objects.get()
    assert (trial.source, trial.source_ref) == ("lane", first["run_id"])
    # its own trial in the history does not change the run: the same inputs replay it
    assert lane_run_id(lane_inputs()) == first["run_id"]
    again = run_lane_cmd(policy=V4, out=tmp_path / "a")
    assert again["run_id"] == first["run_id"] and ResearchTrial.objects.count() == 1
    evidence = json.loads((tmp_path / "a" / EVIDENCE).read_text())
    assert {k: evidence[k] for k in OVERFITTING_KEYS}["trial_count"] == 1
    # one trial: nothing to deflate, the DSR is the PSR
    assert evidence["deflated_sharpe_ratio"] == evidence["probabilistic_sharpe_ratio"]
    run = ResearchRun.objects.get(run_id=first["run_id"])
    gate = next(g for g in run.gate_report["gates"] if g["gate"] == "gate8")
    assert gate["details"]["trial_count"] == 1


@pytest.mark.django_db
def test_trials_of_other_settings_deflate_the_lane_candidate_and_change_its_run(run_lane_cmd):
    before = lane_run_id(lane_inputs())
    family = "legacy_macd_rsi"  # the sample config's strategy
    others = noise_trials(3, family=family)
    trials_record(trials=others)
    inputs = lane_inputs()
    assert lane_run_id(inputs) != before  # the history is part of what the run id covers
    summary = run_lane_cmd(policy=V4)
    run = ResearchRun.objects.get(run_id=summary["run_id"])
    gate = next(g for g in run.gate_report["gates"] if g["gate"] == "gate8")
    assert gate["details"]["trial_count"] == 25
    candidate = run.candidates.get()
    overfit = candidate.metadata_bundle["overfitting"]
    assert overfit["trial_count"] == 25
    assert overfit["deflated_sharpe_ratio"] < overfit["probabilistic_sharpe_ratio"]
    assert ResearchTrial.objects.filter(family=family).count() == 25
