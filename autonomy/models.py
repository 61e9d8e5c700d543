"""The research ledger (docs/compatibility.md#research-loop): runs, candidates with their
challenger/champion lifecycle, fold and stress metrics, promotions (append-only, enforced by
database triggers), and where each candidate stands in the orchestration stages.

Table names are the original's (`research_*`). Research numbers (PnL, drawdown, costs) are
float64 outputs of the vectorised engine; they are evidence, not money that moves.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from torghut_site.db import choices_constraint


class RunStatus(models.TextChoices):
    RUNNING = "running", "running"
    PASSED = "passed", "passed"
    FAILED = "failed", "failed"
    SKIPPED = "skipped", "skipped (no signals)"


class PromotionMode(models.TextChoices):
    SHADOW = "shadow", "shadow"
    PAPER = "paper", "paper"
    LIVE = "live", "live"


class LifecycleRole(models.TextChoices):
    CHALLENGER = "challenger", "challenger"
    CHAMPION = "champion", "champion"
    DEMOTED = "demoted", "demoted"


class LifecycleStatus(models.TextChoices):
    EVALUATED = "evaluated", "evaluated"
    ACTIVE = "active", "active"
    STANDBY = "standby", "standby"


class StressCase(models.TextChoices):
    SPREAD = "spread", "spread"
    VOLATILITY = "volatility", "volatility"
    LIQUIDITY = "liquidity", "liquidity"
    HALT = "halt", "halt"


class PromotionAction(models.TextChoices):
    HOLD = "hold", "hold"
    PROMOTE = "promote", "promote"
    DENY = "deny", "deny"
    DEMOTE = "demote", "demote"
    ROLLBACK = "rollback", "rollback"


class Stage(models.TextChoices):
    """The 12 orchestration stages of the guard policy
    (docs/compatibility.md#orchestration-guard)."""

    RESEARCH_INTAKE = "research-intake", "research intake"
    CANDIDATE_BUILD = "candidate-build", "candidate build"
    BACKTEST_ROBUSTNESS = "backtest-robustness", "backtest robustness"
    GATE_EVALUATION = "gate-evaluation", "gate evaluation"
    PROMOTION_PREREQUISITES = "promotion-prerequisites", "promotion prerequisites"
    ROLLBACK_READINESS = "rollback-readiness", "rollback readiness"
    POLICY_DRY_RUN = "policy-dry-run", "policy dry run"
    SHADOW_PAPER = "shadow-paper", "shadow / paper"
    LIVE_RAMP = "live-ramp", "live ramp"
    CONTINUOUS_MONITORING = "continuous-monitoring", "continuous monitoring"
    INCIDENT_RECOVERY = "incident-recovery", "incident recovery"
    AUDIT_EVIDENCE = "audit-evidence", "audit evidence"


class ResearchRun(models.Model):
    run_id = models.CharField(max_length=40, unique=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    trigger = models.CharField(max_length=32, default="cli", help_text="cli, schedule, api")
    strategy_id = models.CharField(max_length=100, blank=True)
    strategy_name = models.CharField(max_length=100, blank=True)
    strategy_type = models.CharField(max_length=64, blank=True)
    strategy_version = models.CharField(max_length=32, blank=True)
    code_commit = models.CharField(max_length=64, blank=True)
    feature_version = models.CharField(max_length=32, blank=True)
    schema_version = models.CharField(max_length=32, blank=True)
    spec_hash = models.CharField(max_length=64, blank=True)
    signal_source = models.CharField(max_length=64, blank=True)
    dataset_version = models.CharField(max_length=64, blank=True)
    dataset_from = models.DateTimeField(null=True, blank=True)
    dataset_to = models.DateTimeField(null=True, blank=True)
    dataset_snapshot_ref = models.CharField(max_length=1024, blank=True)
    runner_version = models.CharField(max_length=64, blank=True)
    runner_binary_hash = models.CharField(max_length=64, blank=True)
    gate_policy_version = models.CharField(max_length=64, blank=True)
    gate_report_trace_id = models.CharField(max_length=64, blank=True)
    recommendation_trace_id = models.CharField(max_length=64, blank=True)
    promotion_target = models.CharField(
        max_length=8, choices=PromotionMode.choices, default=PromotionMode.PAPER
    )
    recommended_mode = models.CharField(max_length=8, choices=PromotionMode.choices, blank=True)
    output_dir = models.CharField(max_length=1024, blank=True)
    artifacts = models.JSONField(
        default=dict, blank=True, help_text="artifact path -> {sha256, size, uri}"
    )
    gate_report = models.JSONField(default=dict, blank=True, help_text="gates/gate-evaluation.json")
    recommendation = models.JSONField(
        default=dict, blank=True, help_text="promotion recommendation: action, eligible, reasons"
    )
    readiness = models.JSONField(
        default=dict, blank=True, help_text="operational readiness dry runs, with their times"
    )
    inputs = models.JSONField(
        default=dict,
        blank=True,
        help_text="everything the run id covers (autonomy.run_inputs.RunInputs); also in the "
        "run's manifest.json",
    )
    manifest_sha256 = models.CharField(
        max_length=64, blank=True, help_text="sha256 of the run's stored manifest.json"
    )
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    progress_label = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "research_runs"
        ordering = ["-started_at"]
        constraints = [
            choices_constraint("status", RunStatus, "research_run_status_valid"),
            choices_constraint("promotion_target", PromotionMode, "research_run_target_valid"),
            models.CheckConstraint(
                condition=Q(recommended_mode="") | Q(recommended_mode__in=PromotionMode.values),
                name="research_run_recommended_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run_id} [{self.status}]"


class ResearchCandidate(models.Model):
    run = models.ForeignKey(ResearchRun, on_delete=models.PROTECT, related_name="candidates")
    candidate_id = models.CharField(max_length=64, unique=True)
    candidate_hash = models.CharField(max_length=64)
    strategy_name = models.CharField(max_length=100)
    strategy_type = models.CharField(max_length=64)
    strategy_version = models.CharField(max_length=32, blank=True)
    parameter_set = models.JSONField(default=dict, blank=True)
    decision_count = models.PositiveIntegerField(default=0)
    trade_count = models.PositiveIntegerField(default=0)
    symbols_covered = models.JSONField(default=list, blank=True)
    universe_definition = models.JSONField(default=dict, blank=True)
    promotion_target = models.CharField(max_length=8, choices=PromotionMode.choices)
    lifecycle_role = models.CharField(
        max_length=16, choices=LifecycleRole.choices, default=LifecycleRole.CHALLENGER
    )
    lifecycle_status = models.CharField(
        max_length=16, choices=LifecycleStatus.choices, default=LifecycleStatus.EVALUATED
    )
    equity_curve = models.JSONField(
        default=list, blank=True, help_text="[[ts, equity], …] downsampled for the admin chart"
    )
    metadata_bundle = models.JSONField(default=dict, blank=True)
    recommendation_bundle = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "research_candidates"
        ordering = ["-created_at"]
        constraints = [
            choices_constraint("promotion_target", PromotionMode, "research_cand_target_valid"),
            choices_constraint("lifecycle_role", LifecycleRole, "research_cand_role_valid"),
            choices_constraint("lifecycle_status", LifecycleStatus, "research_cand_status_valid"),
            # one champion per strategy: promoting a challenger demotes the previous one
            models.UniqueConstraint(
                fields=["strategy_name"],
                condition=Q(lifecycle_role="champion"),
                name="research_one_champion_per_strategy",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.candidate_id} ({self.lifecycle_role}/{self.lifecycle_status})"


class TrialSource(models.TextChoices):
    LANE = "lane", "research lane run"
    BACKTEST = "backtest", "manage.py backtest"
    SWEEP = "sweep", "parameter sweep"


class ResearchTrial(models.Model):
    """One setting evaluated for a strategy family: the trial registry the overfitting gate
    counts (`autonomy.trials`: what a trial is, what its key covers, why the returns are kept as
    power sums per block). Written once per key; evaluating it again only moves `last_seen_at`."""

    trial_key = models.CharField(max_length=64, unique=True)
    family = models.CharField(max_length=64, help_text="the strategy plugin (strategy_type)")
    strategy_name = models.CharField(max_length=100, blank=True)
    strategy_version = models.CharField(max_length=32, blank=True)
    params = models.JSONField(default=dict, blank=True)
    params_sha256 = models.CharField(max_length=64)
    config_sha256 = models.CharField(max_length=64, help_text="costs, sizing, starting cash")
    dataset_sha256 = models.CharField(max_length=64)
    window_key = models.CharField(max_length=64)
    window_start_row = models.PositiveIntegerField()
    window_stop_row = models.PositiveIntegerField()
    window_from = models.DateTimeField()
    window_to = models.DateTimeField()
    periods = models.PositiveIntegerField()
    sharpe_ratio = models.FloatField(null=True, blank=True, help_text="per row; None: no variance")
    net_pnl = models.FloatField(default=0.0)
    trade_count = models.PositiveIntegerField(default=0)
    block_sums = models.JSONField(help_text="power sums [n, Σr, Σr², Σr³, Σr⁴] per block")
    source = models.CharField(max_length=16, choices=TrialSource.choices)
    source_ref = models.CharField(max_length=64, blank=True, help_text="run id or sweep id")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        db_table = "research_trials"
        ordering = ["family", "first_seen_at", "pk"]
        constraints = [
            choices_constraint("source", TrialSource, "research_trial_source_valid"),
            models.CheckConstraint(
                condition=Q(window_stop_row__gt=models.F("window_start_row")),
                name="research_trial_window_not_empty",
            ),
            models.CheckConstraint(
                condition=Q(trial_key__regex=r"^[0-9a-f]{64}$"), name="research_trial_key_hex"
            ),
        ]
        indexes = [
            # the overfitting evidence: a family's trials, and those on one window
            models.Index(fields=["family", "window_key"], name="research_trial_family_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.family} {self.params_sha256[:8]} on {self.window_key[:8]}"


class SweepStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class ChunkStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    DONE = "done", "done"


class Sweep(models.Model):
    """A parameter sweep (`autonomy.sweep`: what its id covers) split into chunks (settings x
    folds) that any worker computes (`autonomy.services.sweeps`). The dataset is stored once in
    object storage under `dataset_key` (its sha256), so every worker reads the same bytes. The
    report is written once, when the last chunk is stored (compare-and-set on `status`)."""

    sweep_id = models.CharField(max_length=64, unique=True)
    family = models.CharField(max_length=64)
    strategy_name = models.CharField(max_length=100, blank=True)
    spec = models.JSONField()
    dataset_sha256 = models.CharField(max_length=64)
    dataset_key = models.CharField(max_length=255)
    status = models.CharField(
        max_length=16, choices=SweepStatus.choices, default=SweepStatus.PENDING
    )
    chunk_total = models.PositiveIntegerField()
    chunk_done = models.PositiveIntegerField(default=0)
    report = models.JSONField(null=True, blank=True)
    report_sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "research_sweeps"
        ordering = ["-created_at", "pk"]
        constraints = [
            choices_constraint("status", SweepStatus, "research_sweep_status_valid"),
            models.CheckConstraint(
                condition=Q(chunk_done__lte=models.F("chunk_total")),
                name="research_sweep_chunks_done_le_total",
            ),
            models.CheckConstraint(
                condition=~Q(status=SweepStatus.DONE)
                | (Q(report__isnull=False) & Q(chunk_done=models.F("chunk_total"))),
                name="research_sweep_done_has_report",
            ),
        ]

    def __str__(self) -> str:
        return f"sweep {self.sweep_id[:12]} {self.family} {self.status}"


class SweepChunk(models.Model):
    """One (setting, fold) of a sweep. Its result is written once: a second identical result is
    a no-op, a different one is counted in `conflict_count` (its sha256 kept) and never stored."""

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="chunks")
    setting_index = models.PositiveIntegerField()
    fold_index = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=ChunkStatus.choices, default=ChunkStatus.PENDING
    )
    result = models.JSONField(null=True, blank=True)
    result_sha256 = models.CharField(max_length=64, blank=True)
    claimed_by = models.CharField(max_length=200, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    conflict_count = models.PositiveIntegerField(default=0)
    conflict_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        db_table = "research_sweep_chunks"
        ordering = ["sweep", "setting_index", "fold_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["sweep", "setting_index", "fold_index"], name="research_sweep_chunk_unique"
            ),
            choices_constraint("status", ChunkStatus, "research_sweep_chunk_status_valid"),
            models.CheckConstraint(
                condition=~Q(status=ChunkStatus.DONE)
                | (Q(result__isnull=False) & ~Q(result_sha256="")),
                name="research_sweep_chunk_done_has_result",
            ),
        ]
        indexes = [
            # the sweep's progress and the requeue of stale claims: its chunks not done
            models.Index(
                fields=["sweep", "status"],
                name="research_sweep_chunk_open_idx",
                condition=~Q(status="done"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sweep_id} setting {self.setting_index} fold {self.fold_index}"


class FoldMetric(models.Model):
    candidate = models.ForeignKey(
        ResearchCandidate, on_delete=models.CASCADE, related_name="fold_metrics"
    )
    fold_name = models.CharField(max_length=64)
    fold_order = models.PositiveIntegerField()
    train_start = models.DateTimeField(null=True, blank=True)
    train_end = models.DateTimeField(null=True, blank=True)
    test_start = models.DateTimeField(null=True, blank=True)
    test_end = models.DateTimeField(null=True, blank=True)
    decision_count = models.PositiveIntegerField(default=0)
    trade_count = models.PositiveIntegerField(default=0)
    gross_pnl = models.FloatField(default=0.0)
    net_pnl = models.FloatField(default=0.0)
    max_drawdown = models.FloatField(default=0.0)
    turnover_ratio = models.FloatField(default=0.0)
    cost_bps = models.FloatField(default=0.0)
    cost_assumptions = models.JSONField(default=dict, blank=True)
    regime_label = models.CharField(max_length=64, blank=True)

    class Meta:
        db_table = "research_fold_metrics"
        ordering = ["candidate_id", "fold_order"]
        constraints = [
            models.UniqueConstraint(
                fields=["candidate", "fold_order"], name="research_fold_order_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.fold_name} of {self.candidate_id}"


class StressMetric(models.Model):
    candidate = models.ForeignKey(
        ResearchCandidate, on_delete=models.CASCADE, related_name="stress_metrics"
    )
    stress_case = models.CharField(max_length=16, choices=StressCase.choices)
    metric_bundle = models.JSONField(default=dict, blank=True)
    pessimistic_pnl_delta = models.FloatField(default=0.0)

    class Meta:
        db_table = "research_stress_metrics"
        ordering = ["candidate_id", "stress_case"]
        constraints = [
            models.UniqueConstraint(
                fields=["candidate", "stress_case"], name="research_stress_case_unique"
            ),
            choices_constraint("stress_case", StressCase, "research_stress_case_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.stress_case} of {self.candidate_id}"


class Promotion(models.Model):
    """One promotion decision, append-only: database triggers refuse UPDATE and DELETE, so the
    audit trail cannot be rewritten even by a bug or a manual query through the app's role."""

    candidate = models.ForeignKey(
        ResearchCandidate, on_delete=models.PROTECT, related_name="promotions"
    )
    requested_mode = models.CharField(max_length=8, choices=PromotionMode.choices)
    approved_mode = models.CharField(max_length=8, blank=True)
    decision_action = models.CharField(max_length=16, choices=PromotionAction.choices)
    approver = models.CharField(max_length=150, blank=True)
    approver_role = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)
    account_label = models.CharField(max_length=64, blank=True, help_text="paper lane, if any")
    paper_candidate_patch_ref = models.CharField(max_length=1024, blank=True)
    effective_time = models.DateTimeField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    evidence_bundle = models.JSONField(default=dict, blank=True)
    recommendation_trace_id = models.CharField(max_length=64, blank=True)
    successor_candidate_id = models.CharField(max_length=64, blank=True)
    rollback_candidate_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "research_promotions"
        ordering = ["-created_at", "-pk"]
        permissions = [
            ("approve_promotion", "Can approve or deny a research promotion to paper"),
            ("approve_live_promotion", "Can approve a research promotion to live"),
        ]
        constraints = [
            choices_constraint("requested_mode", PromotionMode, "research_promo_requested_valid"),
            choices_constraint("decision_action", PromotionAction, "research_promo_action_valid"),
            models.CheckConstraint(
                condition=Q(approved_mode="") | Q(approved_mode__in=PromotionMode.values),
                name="research_promo_approved_valid",
            ),
            # a promotion to anything but shadow names the human who approved it
            models.CheckConstraint(
                condition=~Q(decision_action="promote")
                | Q(approved_mode="shadow")
                | ~Q(approver=""),
                name="research_promo_needs_approver",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision_action} {self.candidate_id} -> {self.approved_mode or '-'}"


class CandidateStage(models.Model):
    """Where a candidate stands in the orchestration stages (the guard's state, in the database)."""

    candidate_id = models.CharField(max_length=64, unique=True)
    run_id = models.CharField(max_length=64, blank=True)
    active_stage = models.CharField(max_length=32, choices=Stage.choices)
    paused = models.BooleanField(default=False)
    failure_counts = models.JSONField(default=dict, blank=True)
    last_decision = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "research_candidate_stages"
        ordering = ["candidate_id"]
        constraints = [choices_constraint("active_stage", Stage, "research_stage_valid")]

    def __str__(self) -> str:
        return f"{self.candidate_id} @ {self.active_stage}"


class DriftAction(models.TextChoices):
    NONE = "none", "none"
    RETRAIN = "retrain", "retrain"
    RESELECTION = "reselection", "reselection"


class DriftActionStatus(models.TextChoices):
    NONE = "none", "no action needed"
    TRIGGERED = "triggered", "triggered"
    COOLDOWN_SKIP = "cooldown_skip", "skipped (cooldown)"
    DISABLED = "disabled", "governance disabled"


class DriftCheck(models.Model):
    """One drift detection (docs/compatibility.md#drift-governance) over a research run's evidence,
    with the action it led to."""

    run = models.ForeignKey(ResearchRun, on_delete=models.PROTECT, related_name="drift_checks")
    strategy_name = models.CharField(max_length=100)
    trigger = models.CharField(max_length=32, default="cli")
    reason_codes = models.JSONField(default=list, blank=True)
    action = models.CharField(max_length=16, choices=DriftAction.choices, default=DriftAction.NONE)
    action_status = models.CharField(
        max_length=16, choices=DriftActionStatus.choices, default=DriftActionStatus.NONE
    )
    rollback_triggered = models.BooleanField(default=False)
    rollback_candidate_id = models.CharField(max_length=64, blank=True)
    detection = models.JSONField(default=dict, blank=True)
    artifacts = models.JSONField(default=dict, blank=True)
    checked_at = models.DateTimeField()

    class Meta:
        db_table = "research_drift_checks"
        ordering = ["-checked_at", "-pk"]
        constraints = [
            choices_constraint("action", DriftAction, "research_drift_action_valid"),
            choices_constraint("action_status", DriftActionStatus, "research_drift_status_valid"),
            models.UniqueConstraint(fields=["run"], name="research_drift_one_per_run"),
        ]
        indexes = [models.Index(fields=["strategy_name", "-checked_at"], name="drift_strategy_idx")]

    def __str__(self) -> str:
        return f"drift {self.run_id}: {self.action}/{self.action_status}"


class EvidenceContinuityReport(models.Model):
    """A continuity audit of the most recent research runs: each needs its ledger rows."""

    checked_at = models.DateTimeField()
    run_limit = models.PositiveIntegerField()
    runs_checked = models.PositiveIntegerField()
    passed = models.BooleanField()
    failed_runs = models.JSONField(default=list, blank=True)
    report = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "research_evidence_continuity"
        ordering = ["-checked_at", "-pk"]

    def __str__(self) -> str:
        return f"continuity {self.checked_at:%Y-%m-%d %H:%M} {'ok' if self.passed else 'FAILED'}"


class ArtifactConflictReason(models.TextChoices):
    WRITE_CONFLICT = "write_conflict", "different bytes for an artifact already written"
    STORED_MISMATCH = "stored_mismatch", "stored bytes differ from the run's manifest"
    MANIFEST_MISMATCH = "manifest_mismatch", "stored manifest differs from the ledger"


class ArtifactConflict(models.Model):
    """A refused write or replay of a write-once research artifact (nothing was overwritten)."""

    run_id = models.CharField(max_length=40)
    path = models.CharField(max_length=512, help_text="artifact path relative to the run")
    location = models.CharField(max_length=1024, help_text="object URI or file path")
    reason = models.CharField(max_length=32, choices=ArtifactConflictReason.choices)
    expected_sha256 = models.CharField(max_length=64, blank=True)
    found_sha256 = models.CharField(max_length=64, blank=True)
    detail = models.TextField(blank=True)
    detected_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "research_artifact_conflicts"
        ordering = ["-detected_at", "-pk"]
        constraints = [
            choices_constraint("reason", ArtifactConflictReason, "research_artifact_reason_valid")
        ]

    def __str__(self) -> str:
        return f"{self.reason} {self.run_id}/{self.path}"


class ReplayCheckStatus(models.TextChoices):
    CLEAN = "clean", "clean: no unexplained mismatch"
    MISMATCHED = "mismatched", "unexplained mismatches (rule divergence)"
    NO_SIGNALS = "no_signals", "the session's recorded signals could not be read"


class ReplayCheck(models.Model):
    """One session's live-versus-replay check of one strategy on one account lane
    (`autonomy.replay` has the matching rule and the mismatch classes; written by
    `autonomy.services.replay_check.replay_check_run`, re-running a session updates its row).

    Slippage figures are float64 research evidence (bps), as the rest of this ledger."""

    session_date = models.DateField(help_text="the New York trading date")
    account_label = models.CharField(max_length=64)
    strategy = models.ForeignKey(
        "trading.Strategy", on_delete=models.PROTECT, related_name="replay_checks"
    )
    status = models.CharField(max_length=16, choices=ReplayCheckStatus.choices)
    # the strategy versions the replay ran ([{version, params, budget, from}]); once decisions
    # carry `strategy_version` (issue 21 item 6) this is where the version rows are named
    strategy_versions = models.JSONField(default=list, blank=True)
    recorded_signals = models.PositiveIntegerField(default=0)
    live_decisions = models.PositiveIntegerField(default=0)
    replay_decisions = models.PositiveIntegerField(default=0)
    matched = models.PositiveIntegerField(default=0)
    data_gap = models.PositiveIntegerField(default=0)
    timing = models.PositiveIntegerField(default=0)
    fill_model = models.PositiveIntegerField(default=0)
    rule_divergence = models.PositiveIntegerField(default=0)
    live_gate = models.PositiveIntegerField(default=0, help_text="live gates not modelled")
    unexplained_mismatches = models.PositiveIntegerField(default=0)
    modelled_slippage_bps = models.FloatField(null=True, blank=True)
    realised_slippage_bps = models.FloatField(null=True, blank=True)
    slippage_samples = models.PositiveIntegerField(default=0)
    details = models.JSONField(
        default=dict, blank=True, help_text="mismatches (first 200), signal gaps, notes"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "research_replay_checks"
        ordering = ["-session_date", "account_label", "strategy_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session_date", "account_label", "strategy"],
                name="research_replay_check_unique",
            ),
            choices_constraint("status", ReplayCheckStatus, "research_replay_status_valid"),
            models.CheckConstraint(
                condition=Q(unexplained_mismatches=models.F("rule_divergence")),
                name="research_replay_unexplained_is_rule_divergence",
            ),
            models.CheckConstraint(
                condition=Q(status="mismatched", unexplained_mismatches__gt=0)
                | (~Q(status="mismatched") & Q(unexplained_mismatches=0)),
                name="research_replay_status_matches_unexplained",
            ),
        ]
        indexes = [
            # clean_replay_sessions: a strategy's most recent sessions
            models.Index(fields=["strategy", "-session_date"], name="research_replay_recent_idx")
        ]

    def __str__(self) -> str:
        return f"replay {self.session_date} {self.account_label} #{self.strategy_id} {self.status}"
