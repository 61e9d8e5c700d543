"""The whitepaper research workflow (docs/compatibility.md#whitepaper-workflow): a GitHub issue with
a PDF becomes a stored paper, an analysis run dispatched to a Codex AgentRun on Jangar, and, when
the run finalizes, a synthesis, a viability verdict and a design pull request.

Table names are kept from the original service (`whitepaper_*`, docs/compatibility.md#tables) so
operators' queries keep working. Statuses are explicit state machines (`whitepapers.statemachine`)
backed by CHECK constraints.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from torghut_site.db import choices_constraint


class DocumentSource(models.TextChoices):
    GITHUB_ISSUE = "github_issue", "GitHub issue"
    UPLOAD = "upload", "upload"


class DocumentStatus(models.TextChoices):
    UPLOADED = "uploaded", "uploaded"
    QUEUED = "queued", "queued for analysis"
    ANALYZED = "analyzed", "analyzed"
    FAILED = "failed", "failed"


class ParseStatus(models.TextChoices):
    PENDING = "pending", "pending"
    STORED = "stored", "stored"
    FAILED = "failed", "failed"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    AGENTRUN_DISPATCHED = "agentrun_dispatched", "AgentRun dispatched"
    RUNNING = "running", "running"
    COMPLETED = "completed", "completed"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


class StepStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    COMPLETED = "completed", "completed"
    FAILED = "failed", "failed"
    SKIPPED = "skipped", "skipped"
    CANCELLED = "cancelled", "cancelled"


class EventSource(models.TextChoices):
    KAFKA = "kafka", "Kafka (Froussard)"
    API = "api", "control API"
    WEBHOOK = "webhook", "GitHub webhook"


class EventStatus(models.TextChoices):
    PENDING = "pending", "pending"
    PROCESSED = "processed", "processed"


class WhitepaperDocument(models.Model):
    document_key = models.CharField(max_length=40, unique=True)
    source = models.CharField(max_length=20, choices=DocumentSource.choices)
    source_identifier = models.CharField(max_length=300, help_text="owner/repo#issue")
    title = models.TextField(blank=True)
    abstract = models.TextField(blank=True)
    authors = models.JSONField(default=list, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    language = models.CharField(max_length=16, blank=True)
    status = models.CharField(
        max_length=20, choices=DocumentStatus.choices, default=DocumentStatus.UPLOADED
    )
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    ingested_by = models.CharField(max_length=200, blank=True)
    last_processed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "whitepaper_documents"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "source_identifier"], name="wp_document_source_unique"
            ),
            choices_constraint("source", DocumentSource, "wp_document_source_valid"),
            choices_constraint("status", DocumentStatus, "wp_document_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.source_identifier} ({self.document_key})"


class WhitepaperDocumentVersion(models.Model):
    document = models.ForeignKey(
        WhitepaperDocument, on_delete=models.CASCADE, related_name="versions"
    )
    version_number = models.PositiveIntegerField()
    trigger_reason = models.CharField(max_length=64, blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    mime_type = models.CharField(max_length=100, blank=True)
    file_size_bytes = models.BigIntegerField(null=True, blank=True)
    checksum_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    ceph_bucket = models.CharField(max_length=255, blank=True)
    ceph_object_key = models.CharField(max_length=1024, blank=True)
    ceph_etag = models.CharField(max_length=128, blank=True)
    parse_status = models.CharField(
        max_length=16, choices=ParseStatus.choices, default=ParseStatus.PENDING
    )
    parse_error = models.TextField(blank=True)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    char_count = models.PositiveIntegerField(null=True, blank=True)
    token_count = models.PositiveIntegerField(null=True, blank=True)
    language = models.CharField(max_length=16, blank=True)
    upload_metadata = models.JSONField(default=dict, blank=True)
    extraction_metadata = models.JSONField(default=dict, blank=True)
    uploaded_by = models.CharField(max_length=200, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "whitepaper_document_versions"
        ordering = ["document_id", "-version_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["document", "version_number"], name="wp_version_number_unique"
            ),
            models.UniqueConstraint(
                fields=["ceph_bucket", "ceph_object_key"],
                condition=~Q(ceph_object_key=""),
                name="wp_version_object_unique",
            ),
            choices_constraint("parse_status", ParseStatus, "wp_version_parse_status_valid"),
            # a stored version always names its object and checksum
            models.CheckConstraint(
                condition=~Q(parse_status=ParseStatus.STORED)
                | (~Q(ceph_object_key="") & ~Q(checksum_sha256="")),
                name="wp_version_stored_has_object",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.document.source_identifier} v{self.version_number}"


class WhitepaperContent(models.Model):
    """The extracted text of a stored version (the original service created this table and
    never wrote it: docs/compatibility.md#tables)."""

    document_version = models.OneToOneField(
        WhitepaperDocumentVersion, on_delete=models.CASCADE, related_name="content"
    )
    text_source = models.CharField(max_length=32, default="pypdf")
    full_text = models.TextField(blank=True)
    full_text_sha256 = models.CharField(max_length=64, blank=True)
    page_count = models.PositiveIntegerField(default=0)
    char_count = models.PositiveIntegerField(default=0)
    section_index = models.JSONField(default=list, blank=True)
    references = models.JSONField(default=list, blank=True)
    tables = models.JSONField(default=list, blank=True)
    figures = models.JSONField(default=list, blank=True)
    chunk_manifest = models.JSONField(default=list, blank=True)
    extraction_warnings = models.JSONField(default=list, blank=True)
    quality_score = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "whitepaper_contents"

    def __str__(self) -> str:
        return f"text of {self.document_version_id} ({self.char_count} chars)"


class WhitepaperAnalysisRun(models.Model):
    run_id = models.CharField(max_length=40, unique=True, help_text="wp-<24 hex>")
    document = models.ForeignKey(WhitepaperDocument, on_delete=models.CASCADE, related_name="runs")
    document_version = models.ForeignKey(
        WhitepaperDocumentVersion,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="runs",
    )
    status = models.CharField(max_length=24, choices=RunStatus.choices, default=RunStatus.QUEUED)
    trigger_source = models.CharField(max_length=64, blank=True)
    trigger_actor = models.CharField(max_length=200, blank=True)
    retry_of_run_id = models.CharField(max_length=40, blank=True)
    source_delivery_id = models.CharField(max_length=100, blank=True)
    dispatch_attempt = models.PositiveIntegerField(
        default=1, help_text="the AgentRun attempt the next dispatch submits"
    )
    orchestration_context = models.JSONField(default=dict, blank=True)
    analysis_profile = models.JSONField(default=dict, blank=True)
    request_payload = models.JSONField(default=dict, blank=True)
    result_payload = models.JSONField(default=dict, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_reason = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "whitepaper_analysis_runs"
        ordering = ["-created_at"]
        constraints = [
            choices_constraint("status", RunStatus, "wp_run_status_valid"),
            models.CheckConstraint(condition=Q(dispatch_attempt__gte=1), name="wp_run_attempt_pos"),
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="wp_run_status_idx")]

    def __str__(self) -> str:
        return f"{self.run_id} [{self.status}]"

    @property
    def repository(self) -> str:
        return str(self.orchestration_context.get("repository", ""))

    @property
    def issue_number(self) -> int | None:
        value = self.orchestration_context.get("issue_number")
        return int(value) if value is not None else None


class WhitepaperAnalysisStep(models.Model):
    run = models.ForeignKey(WhitepaperAnalysisRun, on_delete=models.CASCADE, related_name="steps")
    step_name = models.CharField(max_length=64)
    step_order = models.PositiveIntegerField(default=0)
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=16, choices=StepStatus.choices, default=StepStatus.COMPLETED
    )
    executor = models.CharField(max_length=64, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    trace_id = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    input_json = models.JSONField(default=dict, blank=True)
    output_json = models.JSONField(default=dict, blank=True)
    error_json = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "whitepaper_analysis_steps"
        ordering = ["run_id", "step_order", "attempt"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "step_name", "attempt"], name="wp_step_attempt_unique"
            ),
            choices_constraint("status", StepStatus, "wp_step_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.step_name}#{self.attempt} [{self.status}]"


class WhitepaperCodexAgentRun(models.Model):
    run = models.ForeignKey(
        WhitepaperAnalysisRun, on_delete=models.CASCADE, related_name="agentruns"
    )
    step = models.ForeignKey(
        WhitepaperAnalysisStep, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    attempt = models.PositiveIntegerField(default=1)
    agentrun_name = models.CharField(max_length=253, unique=True)
    namespace = models.CharField(max_length=63)
    uid = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=32, help_text="the AgentRun phase, as Jangar reports it")
    execution_mode = models.CharField(max_length=32, default="job")
    requested_by = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=200)
    codex_session_id = models.CharField(max_length=200, blank=True)
    vcs_provider = models.CharField(max_length=32, default="github")
    vcs_repository = models.CharField(max_length=300, blank=True)
    vcs_base_branch = models.CharField(max_length=255, blank=True)
    vcs_head_branch = models.CharField(max_length=255, blank=True)
    vcs_base_commit_sha = models.CharField(max_length=64, blank=True)
    vcs_head_commit_sha = models.CharField(max_length=64, blank=True)
    workspace_context = models.JSONField(default=dict, blank=True)
    prompt_text = models.TextField()
    prompt_hash = models.CharField(max_length=64)
    input_context = models.JSONField(default=dict, blank=True)
    output_context = models.JSONField(default=dict, blank=True)
    patch_artifact_ref = models.CharField(max_length=1024, blank=True)
    log_artifact_ref = models.CharField(max_length=1024, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "whitepaper_codex_agentruns"
        ordering = ["run_id", "-attempt"]
        constraints = [
            models.UniqueConstraint(fields=["run", "attempt"], name="wp_agentrun_attempt_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.agentrun_name} [{self.status}]"


class WhitepaperSynthesis(models.Model):
    run = models.OneToOneField(
        WhitepaperAnalysisRun, on_delete=models.CASCADE, related_name="synthesis"
    )
    synthesis_version = models.CharField(max_length=32, blank=True)
    generated_by = models.CharField(max_length=200, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    prompt_version = models.CharField(max_length=64, blank=True)
    executive_summary = models.TextField(blank=True)
    problem_statement = models.TextField(blank=True)
    methodology_summary = models.TextField(blank=True)
    key_findings = models.JSONField(default=list, blank=True)
    novelty_claims = models.JSONField(default=list, blank=True)
    risk_assessment = models.JSONField(default=list, blank=True)
    citations = models.JSONField(default=list, blank=True)
    implementation_plan_md = models.TextField(blank=True)
    confidence = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)
    synthesis_json = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "whitepaper_syntheses"
        verbose_name_plural = "whitepaper syntheses"

    def __str__(self) -> str:
        return f"synthesis of {self.run_id}"


class WhitepaperViabilityVerdict(models.Model):
    run = models.OneToOneField(
        WhitepaperAnalysisRun, on_delete=models.CASCADE, related_name="verdict"
    )
    verdict = models.CharField(max_length=32, default="needs_review")
    score = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    confidence = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)
    decision_policy = models.CharField(max_length=200, blank=True)
    gating_json = models.JSONField(default=dict, blank=True)
    rationale = models.TextField(blank=True)
    rejection_reasons = models.JSONField(default=list, blank=True)
    recommendations = models.JSONField(default=list, blank=True)
    requires_followup = models.BooleanField(default=False)
    approved_by = models.CharField(max_length=200, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "whitepaper_viability_verdicts"

    def __str__(self) -> str:
        return f"{self.verdict} for {self.run_id}"


class WhitepaperDesignPullRequest(models.Model):
    run = models.ForeignKey(
        WhitepaperAnalysisRun, on_delete=models.CASCADE, related_name="design_pull_requests"
    )
    codex_agentrun = models.ForeignKey(
        WhitepaperCodexAgentRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="pull_requests",
    )
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=32, blank=True)
    repository = models.CharField(max_length=300, blank=True)
    base_branch = models.CharField(max_length=255, blank=True)
    head_branch = models.CharField(max_length=255, blank=True)
    pr_number = models.PositiveIntegerField(null=True, blank=True)
    pr_url = models.URLField(max_length=500, blank=True)
    title = models.TextField(blank=True)
    body = models.TextField(blank=True)
    commit_sha = models.CharField(max_length=64, blank=True)
    merge_commit_sha = models.CharField(max_length=64, blank=True)
    checks_url = models.URLField(max_length=500, blank=True)
    ci_status = models.CharField(max_length=32, blank=True)
    is_merged = models.BooleanField(default=False)
    merged_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "whitepaper_design_pull_requests"
        ordering = ["run_id", "attempt"]
        constraints = [
            models.UniqueConstraint(fields=["run", "attempt"], name="wp_pr_attempt_unique"),
        ]

    def __str__(self) -> str:
        return self.pr_url or f"PR attempt {self.attempt} of {self.run_id}"


class WhitepaperArtifact(models.Model):
    document = models.ForeignKey(
        WhitepaperDocument, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    document_version = models.ForeignKey(
        WhitepaperDocumentVersion,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    run = models.ForeignKey(
        WhitepaperAnalysisRun,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="artifacts",
    )
    synthesis = models.ForeignKey(
        WhitepaperSynthesis, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    verdict = models.ForeignKey(
        WhitepaperViabilityVerdict,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    design_pull_request = models.ForeignKey(
        WhitepaperDesignPullRequest,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    artifact_scope = models.CharField(max_length=32, blank=True)
    artifact_type = models.CharField(max_length=64, blank=True)
    artifact_role = models.CharField(max_length=64, blank=True)
    ceph_bucket = models.CharField(max_length=255)
    ceph_object_key = models.CharField(max_length=1024)
    artifact_uri = models.CharField(max_length=1300, blank=True)
    checksum_sha256 = models.CharField(max_length=64, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "whitepaper_artifacts"
        constraints = [
            # finalize's upsert key: a run's report names its own artifacts only. Another run
            # naming the same object gets a row of its own; it never takes over this one
            models.UniqueConstraint(
                fields=["run", "ceph_bucket", "ceph_object_key"],
                name="wp_artifact_run_object_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.artifact_uri or f"s3://{self.ceph_bucket}/{self.ceph_object_key}"


class GithubIssueEvent(models.Model):
    """Every GitHub issue event torghut received, from any intake, before it is processed.

    Storing the event first (one transaction; Kafka offsets stored after it) and processing it in
    a Celery task means a crash between receipt and processing loses nothing: a sweep re-queues
    events still `pending`. Processing is idempotent (deterministic run ids), so a second
    processing changes nothing.
    """

    source = models.CharField(max_length=16, choices=EventSource.choices)
    delivery_id = models.CharField(max_length=100, blank=True)
    event_name = models.CharField(max_length=32)
    action = models.CharField(max_length=32, blank=True)
    repository = models.CharField(max_length=300, blank=True)
    issue_number = models.PositiveIntegerField(null=True, blank=True)
    payload = models.JSONField()
    source_topic = models.CharField(max_length=249, blank=True)
    source_partition = models.IntegerField(null=True, blank=True)
    source_offset = models.BigIntegerField(null=True, blank=True)
    body_sha256 = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the raw webhook body (webhook only)"
    )
    status = models.CharField(
        max_length=16, choices=EventStatus.choices, default=EventStatus.PENDING
    )
    accepted = models.BooleanField(null=True, blank=True)
    reason = models.CharField(max_length=64, blank=True)
    detail = models.TextField(blank=True)
    run = models.ForeignKey(
        WhitepaperAnalysisRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
    )
    attempts = models.PositiveIntegerField(default=0)
    # a processing attempt claims the event (compare-and-set) until `claimed_until`, longer than
    # the task's hard time limit: the sweep and a duplicate message never start a second copy
    # while the claim is live; a finished or interrupted attempt clears it
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "GitHub issue event"
        verbose_name_plural = "GitHub issue events"
        db_table = "whitepaper_github_events"
        ordering = ["-received_at", "-pk"]
        constraints = [
            choices_constraint("source", EventSource, "wp_event_source_valid"),
            choices_constraint("status", EventStatus, "wp_event_status_valid"),
            models.UniqueConstraint(
                fields=["source_topic", "source_partition", "source_offset"],
                condition=Q(source="kafka"),
                name="wp_event_kafka_position_unique",
            ),
            # GitHub keeps X-GitHub-Delivery on redeliveries: the same delivery is stored once
            models.UniqueConstraint(
                fields=["delivery_id"],
                condition=Q(source="webhook"),
                name="wp_event_webhook_delivery_unique",
            ),
            # a signed body replayed under a new X-GitHub-Delivery is the same delivery
            models.UniqueConstraint(
                fields=["body_sha256"],
                condition=Q(source="webhook") & ~Q(body_sha256=""),
                name="wp_event_webhook_body_unique",
            ),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(status="pending"),
                name="wp_event_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_name}.{self.action} {self.repository}#{self.issue_number}"


# A research candidate's id as the research lane makes it: `cand-` and the first 12 hex digits of
# its run id (autonomy/research_lane.py). Whitepapers cannot import autonomy, so the shape is
# repeated here; ops/tests/provenance/test_chain.py checks that a lane-made id matches it.
CANDIDATE_ID_PATTERN = r"^cand-[0-9a-f]{12}$"
# at most this many candidates named by one finalize or one admin link
CANDIDATE_LINKS_PER_REQUEST_MAX = 50


class CandidateLinkSource(models.TextChoices):
    FINALIZE = "finalize", "finalize payload"
    ADMIN = "admin", "admin action"


class WhitepaperRunCandidateLink(models.Model):
    """A research candidate a whitepaper run inspired, by the candidate's id.

    The id is a plain value (whitepapers sits beside autonomy, never above it): a link may name a
    candidate that does not exist yet, or no longer resolves; the provenance view (`ops`) shows
    such a link as unresolved. The admin link form checks existence (it lives in `ops`, which
    sees both apps); the agent's finalize cannot, and records what it reported. A link is written
    once per (run, candidate) and never changed: the first source and author stay.
    """

    run = models.ForeignKey(
        WhitepaperAnalysisRun, on_delete=models.CASCADE, related_name="candidate_links"
    )
    candidate_id = models.CharField(max_length=64)
    source = models.CharField(max_length=16, choices=CandidateLinkSource.choices)
    linked_by = models.CharField(max_length=200, help_text="operator or agentrun:<run>#<attempt>")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "whitepaper_run_candidate_links"
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "candidate_id"], name="wp_run_candidate_link_unique"
            ),
            models.CheckConstraint(
                condition=Q(candidate_id__regex=CANDIDATE_ID_PATTERN),
                name="wp_run_candidate_link_id_shape",
            ),
            choices_constraint("source", CandidateLinkSource, "wp_run_candidate_link_source"),
            models.CheckConstraint(condition=~Q(linked_by=""), name="wp_run_candidate_link_by"),
        ]
        indexes = [
            # ops.provenance from a decision: the whitepaper runs that link to a candidate
            models.Index(fields=["candidate_id"], name="wp_candidate_link_cand_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id} -> {self.candidate_id} ({self.source})"
