"""LLM trade reviews, the review circuit breaker, and the DSPy workflow artifacts
(docs/compatibility.md#llm-review-and-dspy)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from torghut_site.db import choices_constraint
from trading.models.decisions import TradeDecision
from trading.models.executions import Execution


class ReviewStatus(models.TextChoices):
    PENDING = "pending", "pending"
    COMPLETED = "completed", "completed"
    EXPIRED = "expired", "expired"


class ReviewVerdict(models.TextChoices):
    """What the reviewer answered (`error`: no usable answer: provider, schema, circuit, ...)."""

    APPROVE = "approve", "approve"
    VETO = "veto", "veto"
    ADJUST = "adjust", "adjust"
    ABSTAIN = "abstain", "abstain"
    ESCALATE = "escalate", "escalate"
    ERROR = "error", "error"


class ReviewEffect(models.TextChoices):
    """What the deterministic policy made of the verdict for the decision."""

    PASS = "pass", "pass (deterministic order unchanged)"
    SHRINK = "shrink", "shrink (smaller quantity)"
    VETO = "veto", "veto"
    SHADOW = "shadow", "shadow (recorded only)"


class LLMDecisionReview(models.Model):
    """One LLM review of one decision: what was asked, what came back, what it did.

    The input snapshot is taken when the decision is made, so the task that runs the review asks
    exactly what the decision saw; `input_hash` and `response_hash` make a rerun comparable.
    `final_qty` can never exceed `deterministic_qty` (a database CHECK): the review may veto or
    shrink a trade, never enlarge it.
    """

    decision = models.OneToOneField(TradeDecision, on_delete=models.CASCADE, related_name="review")
    execution = models.ForeignKey(
        Execution,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="the order that followed the review",
    )
    account_label = models.CharField(max_length=64)
    status = models.CharField(
        max_length=12, choices=ReviewStatus.choices, default=ReviewStatus.PENDING
    )
    shadow = models.BooleanField(
        default=False, help_text="recorded only: the decision did not wait for it"
    )
    shadow_reasons = models.JSONField(default=list, blank=True)
    deadline = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # what answered
    runtime = models.CharField(
        max_length=16, default="legacy", help_text="legacy | dspy_active | dspy_fallback"
    )
    provider = models.CharField(max_length=32, blank=True, default="")
    model = models.CharField(max_length=128, blank=True, default="")
    prompt_version = models.CharField(max_length=64, blank=True, default="")
    program_name = models.CharField(max_length=128, blank=True, default="")
    signature_version = models.CharField(max_length=32, blank=True, default="")
    artifact_hash = models.CharField(max_length=64, blank=True, default="")
    rollout_stage = models.CharField(max_length=32, blank=True, default="")
    # what was asked
    input_json = models.JSONField(default=dict, help_text="the review request snapshot")
    input_hash = models.CharField(max_length=64, blank=True, default="")
    prompt_json = models.JSONField(default=list, blank=True, help_text="chat messages sent")
    config_json = models.JSONField(
        default=dict, blank=True, help_text="settings that shaped the review"
    )
    # what came back
    response_json = models.JSONField(null=True, blank=True)
    response_hash = models.CharField(max_length=64, blank=True, default="")
    verdict = models.CharField(max_length=12, choices=ReviewVerdict.choices, blank=True, default="")
    effect = models.CharField(max_length=8, choices=ReviewEffect.choices, blank=True, default="")
    reasons = models.JSONField(default=list, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    rationale = models.CharField(max_length=280, blank=True, default="")
    risk_flags = models.JSONField(default=list, blank=True)
    deterministic_qty = models.DecimalField(max_digits=24, decimal_places=8)
    adjusted_qty = models.DecimalField(
        max_digits=24, decimal_places=8, null=True, blank=True, help_text="as the LLM asked"
    )
    final_qty = models.DecimalField(
        max_digits=24, decimal_places=8, null=True, blank=True, help_text="after clamping"
    )
    adjusted_order_type = models.CharField(max_length=16, blank=True, default="")
    limit_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    # the Jangar market context fetched by the task (trading/services/review_context.py): what the
    # model saw under `market_context` when `status` is ok; null when none was fetched
    market_context = models.JSONField(null=True, blank=True)
    market_context_reasons = models.JSONField(
        default=list, blank=True, help_text="why the context was not used (e.g. stale)"
    )
    tokens_prompt = models.PositiveIntegerField(default=0)
    tokens_completion = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    # reproducibility (trading/services/review_replay.py): what was sent, how, and the raw answer
    system_fingerprint = models.CharField(
        max_length=128, blank=True, default="", help_text="the provider's, when it gives one"
    )
    prompt_sha256 = models.CharField(
        max_length=64, blank=True, default="", help_text="canonical hash of the messages sent"
    )
    temperature = models.FloatField(null=True, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    cost_usd = models.DecimalField(
        max_digits=18,
        decimal_places=8,
        default=0,
        help_text="settled cost of every call the review made",
    )
    response_body = models.TextField(
        blank=True,
        default="",
        help_text="the raw answer before parsing (DSPy paths: the program's output JSON)",
    )
    response_sha256 = models.CharField(
        max_length=64, blank=True, default="", help_text="sha256 of response_body"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "LLM decision review"
        verbose_name_plural = "LLM decision reviews"
        db_table = "llm_decision_reviews"
        ordering = ["-created_at"]
        constraints = [
            choices_constraint("status", ReviewStatus, "llm_review_status_valid"),
            models.CheckConstraint(
                condition=Q(verdict="") | Q(verdict__in=ReviewVerdict.values),
                name="llm_review_verdict_valid",
            ),
            models.CheckConstraint(
                condition=Q(effect="") | Q(effect__in=ReviewEffect.values),
                name="llm_review_effect_valid",
            ),
            # never enlarge: the reviewed quantity is at most the deterministic one
            models.CheckConstraint(
                condition=Q(final_qty__isnull=True)
                | (Q(final_qty__gte=0) & Q(final_qty__lte=F("deterministic_qty"))),
                name="llm_review_never_enlarges",
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | ~Q(effect=""), name="llm_review_done_has_effect"
            ),
            models.CheckConstraint(condition=Q(cost_usd__gte=0), name="llm_review_cost_nonneg"),
        ]
        indexes = [
            # the sweep: pending reviews past their deadline
            models.Index(
                fields=["deadline"], condition=Q(status="pending"), name="llm_review_pending_idx"
            ),
            models.Index(fields=["verdict", "-created_at"], name="llm_review_verdict_idx"),
            # the day's evaluation (trading.selectors.llm.llm_evaluation, /trading/status)
            models.Index(fields=["created_at"], name="llm_review_created_idx"),
        ]

    def __str__(self) -> str:
        return f"review of decision {self.decision_id}: {self.verdict or self.status}"


class ProbeStatus(models.TextChoices):
    PENDING = "pending", "pending (claimed, call in flight)"
    DONE = "done", "done"


class LLMStabilityProbe(models.Model):
    """One stability probe: a completed review asked again once, with the same messages,
    temperature and seed (trading/services/stability.py). `kind` says what was asked again: the
    legacy messages, or the DSPy artifact (`artifact_hash`) the review ran or shadowed. A probe
    with `error` got no answer and is not a measurement."""

    review = models.OneToOneField(
        LLMDecisionReview, on_delete=models.CASCADE, related_name="stability_probe"
    )
    status = models.CharField(
        max_length=8, choices=ProbeStatus.choices, default=ProbeStatus.PENDING
    )
    kind = models.CharField(max_length=8, help_text="legacy | dspy")
    artifact_hash = models.CharField(max_length=64, blank=True, default="")
    original_verdict = models.CharField(max_length=12, blank=True, default="")
    verdict = models.CharField(max_length=12, blank=True, default="")
    flipped = models.BooleanField(default=False)
    response_sha256 = models.CharField(max_length=64, blank=True, default="")
    tokens_prompt = models.PositiveIntegerField(default=0)
    tokens_completion = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=8, default=0)
    error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "LLM stability probe"
        verbose_name_plural = "LLM stability probes"
        db_table = "llm_stability_probes"
        ordering = ["-created_at"]
        constraints = [
            choices_constraint("status", ProbeStatus, "llm_probe_status_valid"),
            models.CheckConstraint(
                condition=Q(kind__in=("legacy", "dspy")), name="llm_probe_kind_valid"
            ),
            models.CheckConstraint(condition=Q(cost_usd__gte=0), name="llm_probe_cost_nonneg"),
        ]
        indexes = [
            # the promotion gate: measured probes of one artifact
            models.Index(
                fields=["artifact_hash"],
                condition=Q(status="done", kind="dspy", error=""),
                name="llm_probe_artifact_idx",
            )
        ]

    def __str__(self) -> str:
        return f"probe of review {self.review_id}: {self.verdict}{' (flipped)' * self.flipped}"


class LLMCircuitBreaker(models.Model):
    """The review circuit breaker, shared by every worker: errors inside the window, open until.

    Updated under `select_for_update`, so concurrent workers count every error once.
    """

    key = models.CharField(max_length=64, unique=True)
    error_times = models.JSONField(default=list, help_text="ISO times of recent errors")
    open_until = models.DateTimeField(null=True, blank=True)
    trips = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "LLM circuit breaker"
        verbose_name_plural = "LLM circuit breakers"
        db_table = "llm_circuit_breakers"

    def __str__(self) -> str:
        return f"{self.key} open until {self.open_until}" if self.open_until else self.key


class DspyLane(models.TextChoices):
    DATASET_BUILD = "dataset-build", "dataset-build"
    COMPILE = "compile", "compile"
    EVAL = "eval", "eval"
    GEPA_EXPERIMENT = "gepa-experiment", "gepa-experiment"
    PROMOTE = "promote", "promote"


class DspyArtifactStatus(models.TextChoices):
    BUILT = "built", "built"
    COMPILED = "compiled", "compiled"
    EVALUATED = "evaluated", "evaluated"
    PROMOTED = "promoted", "promoted"
    SUBMITTED = "submitted", "submitted (AgentRun on Jangar)"
    FAILED = "failed", "failed"


class LLMDspyWorkflowArtifact(models.Model):
    """A DSPy lane's result (dataset, compiled program, evaluation, promotion) or an AgentRun
    submitted for a lane, keyed by `run_key` (table `llm_dspy_workflow_artifacts`,
    docs/compatibility.md#tables)."""

    run_key = models.CharField(max_length=128, unique=True)
    lane = models.CharField(max_length=16, choices=DspyLane.choices)
    status = models.CharField(max_length=12, choices=DspyArtifactStatus.choices)
    implementation_spec_ref = models.CharField(max_length=128, blank=True, default="")
    program_name = models.CharField(max_length=128, blank=True, default="")
    signature_version = models.CharField(max_length=64, blank=True, default="")
    optimizer = models.CharField(max_length=64, blank=True, default="")
    artifact_uri = models.CharField(max_length=1024, blank=True, default="")
    object_key = models.CharField(
        max_length=512, blank=True, default="", help_text="the lane's JSON file in object storage"
    )
    artifact_hash = models.CharField(max_length=64, blank=True, default="", db_index=True)
    dataset_hash = models.CharField(max_length=64, blank=True, default="")
    compiled_prompt_hash = models.CharField(max_length=64, blank=True, default="")
    reproducibility_hash = models.CharField(max_length=64, blank=True, default="")
    eval_hash = models.CharField(max_length=64, blank=True, default="")
    promotion_hash = models.CharField(max_length=64, blank=True, default="")
    file_hash = models.CharField(
        max_length=64, blank=True, default="", help_text="sha256 of the stored file's bytes"
    )
    metric_bundle = models.JSONField(default=dict, blank=True)
    gate_compatibility = models.CharField(max_length=8, blank=True, default="")
    promotion_recommendation = models.CharField(max_length=32, blank=True, default="")
    promotion_target = models.CharField(max_length=32, blank=True, default="")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    approval_token_ref = models.CharField(max_length=256, blank=True, default="")
    idempotency_key = models.CharField(max_length=256, blank=True, default="")
    agentrun_name = models.CharField(max_length=256, blank=True, default="")
    agentrun_namespace = models.CharField(max_length=128, blank=True, default="")
    agentrun_uid = models.CharField(max_length=128, blank=True, default="")
    request_payload = models.JSONField(null=True, blank=True)
    response_payload = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "DSPy artifact"
        verbose_name_plural = "DSPy artifacts"
        db_table = "llm_dspy_workflow_artifacts"
        ordering = ["-created_at"]
        constraints = [
            choices_constraint("lane", DspyLane, "dspy_artifact_lane_valid"),
            choices_constraint("status", DspyArtifactStatus, "dspy_artifact_status_valid"),
            # a promotion names its approver
            models.CheckConstraint(
                condition=~Q(status="promoted") | Q(approved_by__isnull=False),
                name="dspy_promotion_has_approver",
            ),
            # one promotion record per (artifact, evaluation, target)
            models.UniqueConstraint(
                fields=["artifact_hash", "eval_hash", "promotion_target"],
                condition=Q(lane="promote"),
                name="dspy_promotion_target_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lane} {self.run_key} [{self.status}]"
