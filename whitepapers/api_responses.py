"""Response schemas of the whitepaper status, run detail and GitHub webhook answers: every key
named (`ExactOutputSerializer`: `additionalProperties: false`), so that schemathesis's
response-conformance check compares the answers with something exact. The views answer the
selectors' dicts (`whitepapers.selectors`); these serializers only describe them.

Open objects are left only where the content is the agent's or GitHub's own JSON, each with
its reason.
"""

from __future__ import annotations

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from torghut_site.drf import ExactOutputSerializer
from whitepapers.models import DocumentSource, DocumentStatus, ParseStatus, RunStatus, StepStatus


def _text() -> serializers.CharField:
    return serializers.CharField(allow_blank=True)


def _decimal(max_digits: int) -> serializers.DecimalField:
    """A Decimal column (4 places) as the selector writes it: a fixed-point string, or null."""
    return serializers.DecimalField(max_digits=max_digits, decimal_places=4, allow_null=True)


# -- GET /whitepapers/status ------------------------------------------------------------------


class WhitepaperHealthSerializer(ExactOutputSerializer):
    """What anyone (a probe) gets."""

    ok = serializers.BooleanField()
    workflow_enabled = serializers.BooleanField()


class WhitepaperStorageSerializer(ExactOutputSerializer):
    backend = serializers.CharField(help_text="`s3`, `filesystem`, or the storage class's name")
    bucket = serializers.CharField(allow_null=True)
    endpoint = serializers.CharField(allow_null=True)
    location = serializers.CharField(required=False, help_text="filesystem only")


class RunsByStatusSerializer(ExactOutputSerializer):
    """Run counts by status; a status without runs is absent."""

    queued = serializers.IntegerField(min_value=1, required=False)
    agentrun_dispatched = serializers.IntegerField(min_value=1, required=False)
    running = serializers.IntegerField(min_value=1, required=False)
    completed = serializers.IntegerField(min_value=1, required=False)
    failed = serializers.IntegerField(min_value=1, required=False)
    cancelled = serializers.IntegerField(min_value=1, required=False)


assert set(RunsByStatusSerializer().fields) == set(RunStatus.values)


class ConsumerHeartbeatSerializer(ExactOutputSerializer):
    name = serializers.CharField()
    healthy = serializers.BooleanField()
    state = serializers.CharField()
    age_seconds = serializers.FloatField()


class WhitepaperStatusDetailSerializer(ExactOutputSerializer):
    """What a user who may see runs gets (`whitepaper_status`)."""

    ok = serializers.BooleanField()
    workflow_enabled = serializers.BooleanField()
    kafka_enabled = serializers.BooleanField()
    inngest_enabled = serializers.BooleanField()
    inngest_registered = serializers.BooleanField()
    worker_running = serializers.BooleanField()
    requeue_comment_keyword = _text()
    control_auth_enabled = serializers.BooleanField()
    webhook_enabled = serializers.BooleanField()
    agentrun_auto_dispatch = serializers.BooleanField()
    kafka_topic = _text()
    storage = WhitepaperStorageSerializer()
    runs_by_status = RunsByStatusSerializer()
    events_pending = serializers.IntegerField(min_value=0)
    dead_letters_window = serializers.IntegerField(
        min_value=0, help_text="the whitepaper consumer's dead letters of the last 24 hours"
    )
    consumers = ConsumerHeartbeatSerializer(many=True)


# oneOf: each form is closed, so an answer matches exactly one of them
WHITEPAPER_STATUS = PolymorphicProxySerializer(
    component_name="WhitepaperStatus",
    serializers=[WhitepaperHealthSerializer, WhitepaperStatusDetailSerializer],
    resource_type_field_name=None,
)


# -- GET /whitepapers/runs/{run_id} -----------------------------------------------------------


class RunDocumentSerializer(ExactOutputSerializer):
    document_key = serializers.CharField()
    source = serializers.ChoiceField(choices=DocumentSource.values)  # type: ignore[assignment]  # a Field attribute name
    source_identifier = serializers.CharField()
    title = _text()
    status = serializers.ChoiceField(choices=DocumentStatus.values)


class RunDocumentVersionSerializer(ExactOutputSerializer):
    version_number = serializers.IntegerField(min_value=0)
    parse_status = serializers.ChoiceField(choices=ParseStatus.values)
    parse_error = _text()
    file_name = _text()
    file_size_bytes = serializers.IntegerField(allow_null=True)
    checksum_sha256 = _text()
    ceph_bucket = _text()
    ceph_object_key = _text()
    ceph_etag = _text()
    page_count = serializers.IntegerField(min_value=0, allow_null=True)
    char_count = serializers.IntegerField(min_value=0, allow_null=True)


class RunAgentRunSerializer(ExactOutputSerializer):
    attempt = serializers.IntegerField(min_value=0)
    agentrun_name = serializers.CharField()
    namespace = serializers.CharField()
    uid = _text()
    status = serializers.CharField(help_text="the AgentRun phase, as Jangar reports it")
    idempotency_key = serializers.CharField()
    head_branch = _text()
    prompt_hash = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)


class RunStepSerializer(ExactOutputSerializer):
    step_name = serializers.CharField()
    step_order = serializers.IntegerField(min_value=0)
    attempt = serializers.IntegerField(min_value=0)
    status = serializers.ChoiceField(choices=StepStatus.values)
    duration_ms = serializers.IntegerField(min_value=0, allow_null=True)


class RunSynthesisSerializer(ExactOutputSerializer):
    executive_summary = _text()
    # the agent's findings as it wrote them (finalize takes any JSON list here)
    key_findings = serializers.ListField(child=serializers.JSONField())
    implementation_plan_md = _text()
    confidence = _decimal(5)


class RunVerdictSerializer(ExactOutputSerializer):
    verdict = serializers.CharField()
    score = _decimal(7)
    confidence = _decimal(5)
    requires_followup = serializers.BooleanField()
    approved_by = _text()


class RunPullRequestSerializer(ExactOutputSerializer):
    attempt = serializers.IntegerField(min_value=0)
    status = _text()
    repository = _text()
    base_branch = _text()
    head_branch = _text()
    pr_number = serializers.IntegerField(min_value=0, allow_null=True)
    pr_url = _text()
    title = _text()
    ci_status = _text()
    is_merged = serializers.BooleanField()


class WhitepaperRunDetailSerializer(ExactOutputSerializer):
    """`run_detail`: the run, its document and version, its latest AgentRun, steps, synthesis,
    verdict and design pull requests."""

    run_id = serializers.CharField()
    status = serializers.ChoiceField(choices=RunStatus.values)
    trigger_source = _text()
    trigger_actor = _text()
    dispatch_attempt = serializers.IntegerField(min_value=0)
    failure_code = _text()
    failure_reason = _text()
    # what the intake recorded of the issue event that started the run (GitHub's own fields)
    orchestration_context = serializers.DictField(child=serializers.JSONField())
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    document = RunDocumentSerializer()
    document_version = RunDocumentVersionSerializer(allow_null=True)
    agentrun = RunAgentRunSerializer(allow_null=True)
    steps = RunStepSerializer(many=True)
    synthesis = RunSynthesisSerializer(allow_null=True)
    verdict = RunVerdictSerializer(allow_null=True)
    design_pull_requests = RunPullRequestSerializer(many=True)


# -- POST /whitepapers/webhooks/github --------------------------------------------------------


class WebhookPongSerializer(ExactOutputSerializer):
    """200 to GitHub's `ping`."""

    pong = serializers.BooleanField(help_text="true")


class WebhookIgnoredSerializer(ExactOutputSerializer):
    """200 to an event other than issues / issue comments: nothing stored."""

    accepted = serializers.BooleanField(help_text="false")
    reason = serializers.ChoiceField(choices=["ignored_event"])
    event = serializers.CharField(allow_blank=True, help_text="X-GitHub-Event")


class WebhookDuplicateSerializer(ExactOutputSerializer):
    """200 to a delivery (or a body) already stored: nothing stored again."""

    accepted = serializers.BooleanField(help_text="true")
    duplicate = serializers.BooleanField(help_text="true")
    delivery_id = serializers.CharField()


class WebhookQueuedSerializer(ExactOutputSerializer):
    """202: the event is stored and queued for processing."""

    accepted = serializers.BooleanField(help_text="true")
    queued = serializers.BooleanField(help_text="true")
    event_id = serializers.IntegerField(min_value=1)
    delivery_id = serializers.CharField()


WEBHOOK_OK = PolymorphicProxySerializer(
    component_name="GithubWebhookAnswer",
    serializers=[WebhookPongSerializer, WebhookIgnoredSerializer, WebhookDuplicateSerializer],
    resource_type_field_name=None,
)
