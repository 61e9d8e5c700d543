"""Whitepaper API: thin DRF views over the workflow's services and selectors.

Control endpoints (event intake, dispatch, run detail) take the workflow token
`WHITEPAPER_WORKFLOW_API_TOKEN` as `Authorization: Bearer` or `x-whitepaper-token`, compared in
constant time, or a signed-in API user with the `whitepapers.change_whitepaperanalysisrun`
permission. JANGAR_API_KEY is torghut's credential towards Jangar and opens nothing here.

Finalize takes the run's own token (`whitepapers.run_tokens`, handed to its AgentRun at
dispatch), the same two ways, or such a signed-in operator; the workflow token does not finalize.
Anything else is 401 `whitepaper_control_auth_required`.

The GitHub webhook is authenticated by its signature, deduplicated on X-GitHub-Delivery and on
the SHA-256 of its body, and throttled (scope `webhook`, WHITEPAPER_WEBHOOK_THROTTLE).
`GET /whitepapers/status` answers anyone with a health summary; its detail (storage, counts,
consumers) needs a user with a whitepapers run permission.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.db import IntegrityError, transaction
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import authentication, exceptions, serializers, status
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from torghut_site.auth import HashedTokenAuthentication, constant_time_equals
from torghut_site.drf import (
    ApiError,
    BoundedDecimalField,
    JsonTooDeepError,
    json_loads_bounded,
    json_too_deep_error,
    unstorable_text,
)
from torghut_site.schema import ErrorSerializer
from whitepapers.api_responses import (
    WEBHOOK_OK,
    WHITEPAPER_STATUS,
    WebhookQueuedSerializer,
    WhitepaperRunDetailSerializer,
)
from whitepapers.models import (
    CANDIDATE_ID_PATTERN,
    CANDIDATE_LINKS_PER_REQUEST_MAX,
    EventSource,
    WhitepaperAnalysisRun,
)
from whitepapers.run_tokens import run_token_verify
from whitepapers.selectors import run_detail, whitepaper_health, whitepaper_status
from whitepapers.services.dispatch import DispatchError, agentrun_dispatch
from whitepapers.services.finalize import run_finalize
from whitepapers.services.intake import WORK_REASONS, github_event_process, github_event_record
from whitepapers.services.runs import IllegalRunTransition
from whitepapers.statemachine import FINALIZE_STATUSES

ISSUE_EVENTS = frozenset({"issues", "issue_comment"})
_CANDIDATE_ID = re.compile(CANDIDATE_ID_PATTERN)


class WhitepaperControlPrincipal:
    """`request.user` of a caller that presented the workflow token."""

    is_authenticated = True
    is_anonymous = False
    username = "whitepaper-control-token"
    pk = "whitepaper-control-token"  # the throttles key authenticated callers by pk

    def __str__(self) -> str:
        return self.username


def _presented_token(request: Request) -> str:
    header = request.headers.get("x-whitepaper-token", "").strip()
    if header:
        return header
    parts = request.headers.get("Authorization", "").split()
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return parts[1]
    return ""


class WhitepaperTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        expected = settings.WHITEPAPER_WORKFLOW_API_TOKEN
        presented = _presented_token(request)
        if expected and presented and constant_time_equals(presented, expected):
            return WhitepaperControlPrincipal(), None
        return None

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="whitepapers"'


class RunAgentPrincipal:
    """`request.user` of an AgentRun that presented its run's finalize token."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, run_id: str, attempt: int) -> None:
        self.run_id = run_id
        self.attempt = attempt
        self.username = f"agentrun:{run_id}#{attempt}"
        self.pk = self.username  # the throttles key authenticated callers by pk

    def __str__(self) -> str:
        return self.username


class RunTokenAuthentication(authentication.BaseAuthentication):
    """The run's own token (`whitepapers.run_tokens`) for the run named in the URL."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        presented = _presented_token(request)
        run_id = str(request.parser_context.get("kwargs", {}).get("run_id", ""))
        if not (presented and run_id):
            return None
        attempt = run_token_verify(run_id=run_id, token=presented)
        if attempt is None:
            return None  # the next authenticator refuses an unknown bearer token
        return RunAgentPrincipal(run_id, attempt), None

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="whitepapers"'


def _is_operator(user: Any) -> bool:
    return bool(
        user and user.is_authenticated and user.has_perm("whitepapers.change_whitepaperanalysisrun")
    )


class IsWhitepaperOperator(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, WhitepaperControlPrincipal) or _is_operator(request.user)


class IsRunAgentOrOperator(BasePermission):
    """The AgentRun of the run in the URL, or a signed-in operator; never the workflow token."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if isinstance(user, RunAgentPrincipal):
            return user.run_id == view.kwargs.get("run_id")
        return not isinstance(user, WhitepaperControlPrincipal) and _is_operator(user)


class WhitepaperControlView(APIView):
    authentication_classes = [
        WhitepaperTokenAuthentication,
        HashedTokenAuthentication,
        authentication.SessionAuthentication,
    ]
    permission_classes = [IsWhitepaperOperator]
    auth_required_message = "whitepaper control endpoints need the workflow token"

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            exc = ApiError(
                code="whitepaper_control_auth_required",
                message=self.auth_required_message,
                status_code=status.HTTP_401_UNAUTHORIZED,
            )
        return super().handle_exception(exc)

    def requested_by(self, request: Request) -> str:
        return str(getattr(request.user, "username", "") or request.user)


def _run_not_found(run_id: str) -> ApiError:
    return ApiError(code="run_not_found", message=f"no run {run_id}", status_code=404)


def _may_see_status_detail(user: Any) -> bool:
    return bool(
        user
        and user.is_authenticated
        and (
            user.has_perm("whitepapers.view_whitepaperanalysisrun")
            or user.has_perm("whitepapers.change_whitepaperanalysisrun")
        )
    )


class StatusApi(APIView):
    """Anyone (a probe) gets the health summary; a user who may see runs gets the detail."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: WHITEPAPER_STATUS}, summary="Whitepaper workflow status")
    def get(self, request: Request) -> Response:
        if _may_see_status_detail(request.user):
            return Response(whitepaper_status())
        return Response(whitepaper_health())


class IntakeOutcomeSerializer(serializers.Serializer[Any]):
    """`IntakeOutcome.as_json` (200: nothing to do, 202: a run was queued)."""

    accepted = serializers.BooleanField()
    reason = serializers.CharField()
    run_id = serializers.CharField(allow_null=True)
    document_key = serializers.CharField(allow_null=True)
    agentrun_name = serializers.CharField(allow_null=True)
    detail = serializers.CharField(allow_blank=True)
    event_id = serializers.IntegerField(allow_null=True)


class DispatchOutcomeSerializer(serializers.Serializer[Any]):
    """`DispatchOutcome.as_json`; `idempotent` only when the AgentRun already existed."""

    run_id = serializers.CharField()
    attempt = serializers.IntegerField()
    agentrun_name = serializers.CharField(allow_blank=True)
    agentrun_uid = serializers.CharField(allow_blank=True)
    status = serializers.CharField()
    idempotent = serializers.BooleanField(required=False)


class FinalizeOutcomeSerializer(serializers.Serializer[Any]):
    run_id = serializers.CharField()
    status = serializers.CharField()
    completed_at = serializers.DateTimeField(allow_null=True)


class IssueEventApi(WhitepaperControlView):
    """Manual replay/debug intake of one GitHub issue event (Froussard envelope or bare)."""

    @extend_schema(
        request=dict[str, Any],
        responses={200: IntakeOutcomeSerializer, 202: IntakeOutcomeSerializer},
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise ApiError(code="invalid_request", message="the body must be a JSON object")
        event_name = request.headers.get("X-GitHub-Event") or request.query_params.get("event")
        event = github_event_record(
            source=EventSource.API,
            payload=dict(request.data),
            event_name=event_name,
            delivery_id=request.headers.get("X-GitHub-Delivery"),
            process=False,
        )
        outcome = github_event_process(event.pk)
        code = status.HTTP_202_ACCEPTED if outcome.reason in WORK_REASONS else status.HTTP_200_OK
        return Response(outcome.as_json(), status=code)


class DispatchApi(WhitepaperControlView):
    @extend_schema(
        request=None,
        responses={200: DispatchOutcomeSerializer, 409: ErrorSerializer, 502: ErrorSerializer},
    )
    def post(self, request: Request, run_id: str) -> Response:
        try:
            outcome = agentrun_dispatch(run_id=run_id, requested_by=self.requested_by(request))
        except WhitepaperAnalysisRun.DoesNotExist as exc:
            raise _run_not_found(run_id) from exc
        except DispatchError as exc:
            raise ApiError(code=exc.code, message=exc.message, status_code=exc.http_status) from exc
        return Response(outcome.as_json())


# -- finalize payload (docs/compatibility.md#finalize): all optional, validated before any write --

_STEP_STATUSES = ("pending", "running", "completed", "failed", "skipped", "cancelled")
# the columns' ranges: a larger number is a 400, not an insert that fails
_INT_MAX = 2_147_483_647  # PositiveIntegerField
_BIGINT_MAX = 9_223_372_036_854_775_807  # BigIntegerField


@extend_schema_field(
    {
        "description": "any JSON value but null",
        "anyOf": [
            {"type": "object", "additionalProperties": {}},
            {"type": "array", "items": {}},
            {"type": "string"},
            {"type": "number"},
            {"type": "boolean"},
        ],
    }
)
class JsonValueField(serializers.JSONField):
    """A JSON value the server takes: anything but null, which DRF's JSONField refuses (400)
    while its schema, an empty one, would allow it."""


# The decimal strings finalize takes (`BoundedDecimalField`: digits past the 4th decimal place
# are cut off toward zero, docs/compatibility.md, finalize): a confidence from 0 to 1 (after the
# cut: "1.00005" is 1.0000, "1.0001" is out), a score of at most 3 integer digits either sign
# (`WhitepaperAnalysisVerdict.score`, max_digits 7 with 4 places). No exponent, no sign on a
# confidence, a digit on each side of the point.
CONFIDENCE_PATTERN = r"^(0(\.[0-9]+)?|1(\.0{1,3}|\.0{4}[0-9]*)?)$"
SCORE_PATTERN = r"^-?[0-9]{1,3}(\.[0-9]+)?$"


def confidence_field() -> BoundedDecimalField:
    return BoundedDecimalField(
        pattern=CONFIDENCE_PATTERN,
        min_value=Decimal(0),
        max_value=Decimal(1),
        max_digits=5,
        decimal_places=4,
        required=False,
        allow_null=True,
    )


def score_field() -> BoundedDecimalField:
    return BoundedDecimalField(
        pattern=SCORE_PATTERN,
        min_value=Decimal("-999.9999"),
        max_value=Decimal("999.9999"),
        max_digits=7,
        decimal_places=4,
        required=False,
        allow_null=True,
    )


class _Lenient(serializers.Serializer[Any]):
    """Unknown keys are ignored; present keys must have the right type."""


class SynthesisSerializer(_Lenient):
    synthesis_version = serializers.CharField(required=False, allow_blank=True, max_length=32)
    generated_by = serializers.CharField(required=False, allow_blank=True, max_length=200)
    model_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    prompt_version = serializers.CharField(required=False, allow_blank=True, max_length=64)
    executive_summary = serializers.CharField(required=False, allow_blank=True)
    problem_statement = serializers.CharField(required=False, allow_blank=True)
    methodology_summary = serializers.CharField(required=False, allow_blank=True)
    key_findings = serializers.ListField(required=False)
    novelty_claims = serializers.ListField(required=False)
    risk_assessment = JsonValueField(required=False)
    citations = serializers.ListField(required=False)
    implementation_plan_md = serializers.CharField(required=False, allow_blank=True)
    implementation_implications = JsonValueField(required=False)
    confidence = confidence_field()


class VerdictSerializer(_Lenient):
    verdict = serializers.CharField(required=False, max_length=32)
    score = score_field()
    confidence = confidence_field()
    decision_policy = serializers.CharField(required=False, allow_blank=True, max_length=200)
    gating = serializers.DictField(required=False)
    dspy_eval_report = JsonValueField(required=False)
    rationale = serializers.CharField(required=False, allow_blank=True)
    rejection_reasons = serializers.ListField(required=False)
    recommendations = serializers.ListField(required=False)
    requires_followup = serializers.BooleanField(required=False)
    approved_by = serializers.CharField(required=False, allow_blank=True, max_length=200)


class PullRequestSerializer(_Lenient):
    attempt = serializers.IntegerField(required=False, min_value=1, max_value=_INT_MAX)
    status = serializers.CharField(required=False, allow_blank=True, max_length=32)
    repository = serializers.CharField(required=False, allow_blank=True, max_length=300)
    base_branch = serializers.CharField(required=False, allow_blank=True, max_length=255)
    head_branch = serializers.CharField(required=False, allow_blank=True, max_length=255)
    pr_number = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=_INT_MAX
    )
    pr_url = serializers.URLField(required=False, allow_blank=True, max_length=500)
    title = serializers.CharField(required=False, allow_blank=True)
    body = serializers.CharField(required=False, allow_blank=True)
    commit_sha = serializers.CharField(required=False, allow_blank=True, max_length=64)
    merge_commit_sha = serializers.CharField(required=False, allow_blank=True, max_length=64)
    checks_url = serializers.URLField(required=False, allow_blank=True, max_length=500)
    ci_status = serializers.CharField(required=False, allow_blank=True, max_length=32)
    is_merged = serializers.BooleanField(required=False)
    merged_at = serializers.DateTimeField(required=False, allow_null=True)
    metadata = serializers.DictField(required=False)


class ArtifactSerializer(_Lenient):
    artifact_scope = serializers.CharField(required=False, allow_blank=True, max_length=32)
    artifact_type = serializers.CharField(required=False, allow_blank=True, max_length=64)
    artifact_role = serializers.CharField(required=False, allow_blank=True, max_length=64)
    ceph_bucket = serializers.CharField(max_length=255)
    ceph_object_key = serializers.CharField(max_length=1024)
    artifact_uri = serializers.CharField(required=False, allow_blank=True, max_length=1300)
    checksum_sha256 = serializers.CharField(required=False, allow_blank=True, max_length=64)
    size_bytes = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=_BIGINT_MAX
    )
    content_type = serializers.CharField(required=False, allow_blank=True, max_length=100)
    metadata = serializers.DictField(required=False)


class StepSerializer(_Lenient):
    step_name = serializers.CharField(max_length=64)
    step_order = serializers.IntegerField(required=False, min_value=0, max_value=_INT_MAX)
    attempt = serializers.IntegerField(required=False, min_value=1, max_value=_INT_MAX)
    status = serializers.ChoiceField(choices=_STEP_STATUSES, required=False)
    executor = serializers.CharField(required=False, allow_blank=True, max_length=64)
    idempotency_key = serializers.CharField(required=False, allow_blank=True, max_length=200)
    trace_id = serializers.CharField(required=False, allow_blank=True, max_length=64)
    duration_ms = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=_INT_MAX
    )
    input_json = JsonValueField(required=False)
    output_json = JsonValueField(required=False)
    error_json = JsonValueField(required=False)


@extend_schema_field(PullRequestSerializer(many=True))
class PullRequestsField(serializers.Field[Any, Any, Any, Any]):
    """`design_pull_request`: one object or a list of them."""

    def to_internal_value(self, data: Any) -> list[dict[str, Any]]:
        items = data if isinstance(data, list) else [data]
        serializer = PullRequestSerializer(data=items, many=True)
        serializer.is_valid(raise_exception=True)
        return list(serializer.validated_data)

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({"type": "string", "pattern": CANDIDATE_ID_PATTERN})
class CandidateIdField(serializers.CharField):
    """A research candidate id, exactly (no trimming; the whole string must match, unlike
    `RegexField`, whose `$` also matches before a trailing newline)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(trim_whitespace=False, max_length=64, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if not _CANDIDATE_ID.fullmatch(data):
            raise serializers.ValidationError("not a research candidate id (cand-<12 hex>)")
        return data


class FinalizeSerializer(_Lenient):
    status = serializers.ChoiceField(choices=FINALIZE_STATUSES, required=False)
    failure_reason = serializers.CharField(required=False, allow_blank=True)
    synthesis = SynthesisSerializer(required=False)
    verdict = VerdictSerializer(required=False)
    design_pull_request = PullRequestsField(required=False)
    artifacts = ArtifactSerializer(many=True, required=False)
    steps = StepSerializer(many=True, required=False)
    # the research candidates the run inspired (not in the original's payload): linked to the run
    # by id, not checked against the research ledger (whitepapers.models.WhitepaperRunCandidateLink)
    candidate_ids = serializers.ListField(
        child=CandidateIdField(),
        max_length=CANDIDATE_LINKS_PER_REQUEST_MAX,
        required=False,
    )


class FinalizeApi(WhitepaperControlView):
    """The run's AgentRun (its run token) or an operator; an approval only from the operator."""

    authentication_classes = [
        RunTokenAuthentication,
        HashedTokenAuthentication,
        authentication.SessionAuthentication,
    ]
    permission_classes = [IsRunAgentOrOperator]
    auth_required_message = "finalize needs the run's token or a signed-in operator"

    @extend_schema(
        request=FinalizeSerializer, responses={200: FinalizeOutcomeSerializer, 409: ErrorSerializer}
    )
    def post(self, request: Request, run_id: str) -> Response:
        serializer = FinalizeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        agent = isinstance(request.user, RunAgentPrincipal)
        try:
            outcome = run_finalize(
                run_id=run_id,
                data=data,
                raw_payload=dict(request.data),
                approver="" if agent else self.requested_by(request),
                reporter=self.requested_by(request),
            )
        except WhitepaperAnalysisRun.DoesNotExist as exc:
            raise _run_not_found(run_id) from exc
        except IllegalRunTransition as exc:
            raise ApiError(
                code="illegal_run_transition", message=str(exc), status_code=409
            ) from exc
        return Response(outcome.as_json())


class RunDetailApi(WhitepaperControlView):
    @extend_schema(responses={200: WhitepaperRunDetailSerializer})
    def get(self, request: Request, run_id: str) -> Response:
        try:
            return Response(run_detail(run_id=run_id))
        except WhitepaperAnalysisRun.DoesNotExist as exc:
            raise _run_not_found(run_id) from exc


# -- GitHub webhook ------------------------------------------------------------------------------


def signature_valid(secret: str, body: bytes, header: str) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`."""
    if not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("ascii", "replace"))


def _webhook_payload(request: Request, body: bytes) -> Any:
    if request.content_type.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode("utf-8", "replace"))
        return json_loads_bounded(form.get("payload", [""])[0])
    return json_loads_bounded(body)


class GithubWebhookApi(APIView):
    """Called by GitHub itself: signature-checked, deduplicated on X-GitHub-Delivery and on the
    body's SHA-256 (a signed body replayed under a new delivery id is a duplicate), stored, and
    processed in a Celery task (GitHub wants an answer within 10 s; a PDF download may not).
    Throttled per client address (scope `webhook`), before the signature is checked."""

    authentication_classes: list[type[authentication.BaseAuthentication]] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "webhook"

    @extend_schema(
        request=dict[str, Any],
        responses={
            200: WEBHOOK_OK,
            202: WebhookQueuedSerializer,
            401: ErrorSerializer,
            503: ErrorSerializer,
        },
    )
    def post(self, request: Request) -> Response:
        secret = settings.WHITEPAPER_GITHUB_WEBHOOK_SECRET
        if not secret:
            raise ApiError(
                code="webhook_not_configured",
                message="WHITEPAPER_GITHUB_WEBHOOK_SECRET is not set",
                status_code=503,
            )
        body = request.body
        if not signature_valid(secret, body, request.headers.get("X-Hub-Signature-256", "")):
            raise ApiError(
                code="invalid_signature",
                message="X-Hub-Signature-256 does not match the body",
                status_code=401,
            )
        event_name = request.headers.get("X-GitHub-Event", "")
        delivery_id = request.headers.get("X-GitHub-Delivery", "").strip()
        if event_name == "ping":
            return Response({"pong": True})
        if event_name not in ISSUE_EVENTS:
            return Response({"accepted": False, "reason": "ignored_event", "event": event_name})
        if not delivery_id:
            raise ApiError(code="invalid_request", message="X-GitHub-Delivery is missing")
        try:
            payload = _webhook_payload(request, body)
        except JsonTooDeepError as exc:
            raise json_too_deep_error(exc.max_depth) from exc
        except ValueError as exc:
            raise ApiError(code="invalid_request", message=f"body is not JSON: {exc}") from exc
        if unstorable_text(payload):
            raise ApiError(
                code="invalid_request",
                message="the body has NUL characters or lone surrogates, which cannot be stored",
            )
        try:
            with transaction.atomic():
                event = github_event_record(
                    source=EventSource.WEBHOOK,
                    payload=payload,
                    event_name=event_name,
                    delivery_id=delivery_id,
                    body_sha256=hashlib.sha256(body).hexdigest(),
                )
        except IntegrityError:
            return Response({"accepted": True, "duplicate": True, "delivery_id": delivery_id})
        return Response(
            {"accepted": True, "queued": True, "event_id": event.pk, "delivery_id": delivery_id},
            status=status.HTTP_202_ACCEPTED,
        )
