"""Autonomy API: thin DRF views over the research-ledger selectors and the promotion services.

Reads (`/trading/autonomy`, `/autonomy/runs…`, `/autonomy/candidates/<id>`) need a signed-in
caller, like the other trading reads. The promotion actions take the same authentication as the
other state-changing endpoints (API token or session with CSRF) and the `control` throttle; who
may do what (`autonomy.approve_promotion`, `autonomy.approve_live_promotion`) is decided by the
promotion service, whose refusals come back in the one error format with their code:

- 400 `reason_required`, `invalid_mode`;
- 403 `permission_denied`, `approver_required`;
- 409 every other refusal (`not_eligible`, `mode_not_recommended`, `live_disabled`,
  `live_gate_failed`, `live_approval_missing`, `guard_denied`, `not_champion`,
  `lane_mode_mismatch`, `no_lane`, `no_stage`).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from autonomy.models import (
    EvidenceContinuityReport,
    Promotion,
    ResearchCandidate,
    ResearchRun,
)
from autonomy.selectors import (
    autonomy_status,
    candidate_get,
    candidate_stage,
    last_continuity_report,
    run_get,
    run_page,
)
from autonomy.serializers import (
    AutonomyStatusSerializer,
    CandidateSerializer,
    ContinuityQuerySerializer,
    ContinuityRefreshInputSerializer,
    ContinuityReportSerializer,
    DenyInputSerializer,
    PromoteInputSerializer,
    PromotionReasonInputSerializer,
    PromotionResultSerializer,
    RunDetailSerializer,
    RunFilterSerializer,
    RunPageSerializer,
    RunSummarySerializer,
)
from autonomy.services.governance import evidence_continuity_check
from autonomy.services.promotion import (
    promotion_approve,
    promotion_demote,
    promotion_deny,
    promotion_rollback,
)
from autonomy.services.strategies import PromotionError
from torghut_site.drf import ApiError
from torghut_site.schema import ErrorSerializer
from trading.apis_query import DEFAULT_LIMIT, next_page_url, query_validated

PROMOTION_ERROR_STATUS = {
    "reason_required": status.HTTP_400_BAD_REQUEST,
    "invalid_mode": status.HTTP_400_BAD_REQUEST,
    "permission_denied": status.HTTP_403_FORBIDDEN,
    "approver_required": status.HTTP_403_FORBIDDEN,
}
# any other refusal is a conflict with the candidate's state or the configuration


def promotion_api_error(exc: PromotionError) -> ApiError:
    return ApiError(
        code=exc.code,
        message=exc.message,
        status_code=PROMOTION_ERROR_STATUS.get(exc.code, status.HTTP_409_CONFLICT),
    )


def _candidate(candidate_id: str) -> ResearchCandidate:
    try:
        return candidate_get(candidate_id=candidate_id)
    except ResearchCandidate.DoesNotExist as exc:
        raise ApiError(
            code="candidate_not_found",
            message=f"no candidate {candidate_id}",
            status_code=status.HTTP_404_NOT_FOUND,
        ) from exc


def _candidate_body(candidate: ResearchCandidate) -> dict[str, Any]:
    stage = candidate_stage(candidate_id=candidate.candidate_id)
    stages = {candidate.candidate_id: stage} if stage is not None else {}
    return dict(CandidateSerializer(candidate, context={"stages": stages}).data)


def _input(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    """Validated input; a bad `mode` is the service's `invalid_mode`, anything else DRF's 400."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        errors = serializer.errors
        if isinstance(errors, dict) and "mode" in errors:
            field = serializer.fields["mode"]
            assert isinstance(field, serializers.ChoiceField)
            raise ApiError(
                code="invalid_mode",
                message=f"mode must be one of: {', '.join(map(str, field.choices))}",
                details=errors,
            )
        raise serializers.ValidationError(errors)
    return dict(serializer.validated_data)


NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such run or candidate")
REFUSED = OpenApiResponse(
    ErrorSerializer,
    description="Refused by the promotion service (not eligible, guard denied, live off, …)",
)
FORBIDDEN = OpenApiResponse(
    ErrorSerializer, description="permission_denied / approver_required (or CSRF)"
)
INVALID = OpenApiResponse(ErrorSerializer, description="reason_required, invalid_mode or bad body")


class AutonomyStatusApi(APIView):
    """`GET /trading/autonomy`: configuration, last run and champions of the research loop."""

    @extend_schema(responses={200: AutonomyStatusSerializer}, summary="Autonomy status")
    def get(self, request: Request) -> Response:
        return Response(AutonomyStatusSerializer(autonomy_status()).data)


def _continuity_body(report: EvidenceContinuityReport, *, refreshed: bool) -> dict[str, Any]:
    return ContinuityReportSerializer(
        {
            "checked_at": report.checked_at,
            "passed": report.passed,
            "runs_checked": report.runs_checked,
            "failed_runs": report.failed_runs,
            "run_limit": report.run_limit,
            "run_ids": report.report.get("run_ids", []),
            "refreshed": refreshed,
        }
    ).data


REFRESH_PATH = "/trading/autonomy/evidence-continuity/refresh"


class EvidenceContinuityApi(APIView):
    """`GET /trading/autonomy/evidence-continuity`: the last continuity audit of recent research
    runs. A GET only reads: `refresh=true` is refused with 400 `refresh_requires_post` (the
    audit is run by `POST …/refresh` or the daily task), and before any audit it is a 404."""

    @extend_schema(
        parameters=[ContinuityQuerySerializer],
        responses={
            200: ContinuityReportSerializer,
            400: OpenApiResponse(ErrorSerializer, description="refresh_requires_post"),
            404: OpenApiResponse(ErrorSerializer, description="no_continuity_report"),
        },
        summary="Evidence continuity",
    )
    def get(self, request: Request) -> Response:
        query = query_validated(request, ContinuityQuerySerializer)
        if query["refresh"]:
            raise ApiError(
                code="refresh_requires_post",
                message=f"a GET never runs the audit: POST {REFRESH_PATH} to run one",
            )
        report = last_continuity_report()
        if report is None:
            raise ApiError(
                code="no_continuity_report",
                message=f"no continuity audit has run yet: POST {REFRESH_PATH} to run one",
                status_code=status.HTTP_404_NOT_FOUND,
            )
        return Response(_continuity_body(report, refreshed=False))


class CanRefreshContinuity(BasePermission):
    """Running the audit writes a report: it needs `autonomy.add_evidencecontinuityreport`."""

    message = "refreshing the audit needs the permission autonomy.add_evidencecontinuityreport"
    code = "permission_denied"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and user.has_perm("autonomy.add_evidencecontinuityreport")
        )


class EvidenceContinuityRefreshApi(APIView):
    """`POST /trading/autonomy/evidence-continuity/refresh {run_limit≤50}`: run the continuity
    audit now and record it (the report names the requesting user)."""

    permission_classes = [CanRefreshContinuity]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "control"

    @extend_schema(
        request=ContinuityRefreshInputSerializer,
        responses={201: ContinuityReportSerializer, 400: INVALID, 403: FORBIDDEN},
        summary="Run the evidence-continuity audit",
    )
    def post(self, request: Request) -> Response:
        data = ContinuityRefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        report = evidence_continuity_check(
            run_limit=data.validated_data.get("run_limit"),
            requested_by=request.user.get_username(),
        )
        return Response(_continuity_body(report, refreshed=True), status=status.HTTP_201_CREATED)


class RunListApi(APIView):
    """`GET /autonomy/runs`: a cursor page of runs (`status`, `trigger`), newest first by id."""

    @extend_schema(
        operation_id="autonomy_runs_list",
        parameters=[RunFilterSerializer],
        responses=RunPageSerializer,
    )
    def get(self, request: Request) -> Response:
        query = query_validated(request, RunFilterSerializer)
        rows, next_after_id = run_page(
            status=query.get("status"),
            trigger=query.get("trigger"),
            after_id=query.get("after_id"),
            limit=query.get("limit", DEFAULT_LIMIT),
        )
        body = {
            "next": next_page_url(request, query, next_after_id),
            "results": RunSummarySerializer(rows, many=True).data,
        }
        return Response(body)


class RunDetailApi(APIView):
    @extend_schema(responses={200: RunDetailSerializer, 404: NOT_FOUND})
    def get(self, request: Request, run_id: str) -> Response:
        try:
            run = run_get(run_id=run_id)
        except ResearchRun.DoesNotExist as exc:
            raise ApiError(
                code="run_not_found",
                message=f"no run {run_id}",
                status_code=status.HTTP_404_NOT_FOUND,
            ) from exc
        stages = {
            s.candidate_id: s
            for c in run.candidates.all()
            if (s := candidate_stage(candidate_id=c.candidate_id)) is not None
        }
        return Response(RunDetailSerializer(run, context={"stages": stages}).data)


class CandidateDetailApi(APIView):
    @extend_schema(responses={200: CandidateSerializer, 404: NOT_FOUND})
    def get(self, request: Request, candidate_id: str) -> Response:
        return Response(_candidate_body(_candidate(candidate_id)))


class CanDecidePromotions(BasePermission):
    """Every promotion action needs `autonomy.approve_promotion` (a live promotion also needs
    `autonomy.approve_live_promotion`, which the service checks). The service checks it again:
    this only refuses early, before the body is read."""

    message = "promotion actions need the permission autonomy.approve_promotion"
    code = "permission_denied"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm("autonomy.approve_promotion"))


class _PromotionActionApi(APIView):
    permission_classes = [CanDecidePromotions]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "control"

    def respond(self, promotion: Promotion, *, created: bool = True) -> Response:
        body = PromotionResultSerializer(
            {"created": created, "promotion": promotion, "candidate": promotion.candidate}
        ).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


ACTION_RESPONSES: dict[int, Any] = {
    201: PromotionResultSerializer,
    400: INVALID,
    403: FORBIDDEN,
    404: NOT_FOUND,
    409: REFUSED,
}


class CandidatePromoteApi(_PromotionActionApi):
    @extend_schema(
        request=PromoteInputSerializer,
        responses={
            **ACTION_RESPONSES,
            200: OpenApiResponse(
                PromotionResultSerializer, description="Already promoted: the existing promotion"
            ),
        },
        summary="Approve a promotion to paper or live",
    )
    def post(self, request: Request, candidate_id: str) -> Response:
        data = _input(PromoteInputSerializer, request.data)
        candidate = _candidate(candidate_id)
        try:
            result = promotion_approve(
                candidate=candidate,
                mode=data["mode"],
                actor=request.user,
                reason=data["reason"],
                account_label=data["account_label"] or None,
            )
        except PromotionError as exc:
            raise promotion_api_error(exc) from exc
        return self.respond(result.promotion, created=result.created)


class CandidateDenyApi(_PromotionActionApi):
    @extend_schema(
        request=DenyInputSerializer, responses=ACTION_RESPONSES, summary="Deny a promotion"
    )
    def post(self, request: Request, candidate_id: str) -> Response:
        data = _input(DenyInputSerializer, request.data)
        candidate = _candidate(candidate_id)
        try:
            promotion = promotion_deny(
                candidate=candidate, mode=data["mode"], actor=request.user, reason=data["reason"]
            )
        except PromotionError as exc:
            raise promotion_api_error(exc) from exc
        return self.respond(promotion)


class CandidateDemoteApi(_PromotionActionApi):
    @extend_schema(
        request=PromotionReasonInputSerializer,
        responses=ACTION_RESPONSES,
        summary="Demote a champion",
    )
    def post(self, request: Request, candidate_id: str) -> Response:
        data = _input(PromotionReasonInputSerializer, request.data)
        candidate = _candidate(candidate_id)
        try:
            promotion = promotion_demote(
                candidate=candidate, actor=request.user, reason=data["reason"]
            )
        except PromotionError as exc:
            raise promotion_api_error(exc) from exc
        return self.respond(promotion)


class CandidateRollbackApi(_PromotionActionApi):
    @extend_schema(
        request=PromotionReasonInputSerializer,
        responses=ACTION_RESPONSES,
        summary="Roll back a promotion (restores the previous strategy and champion)",
    )
    def post(self, request: Request, candidate_id: str) -> Response:
        data = _input(PromotionReasonInputSerializer, request.data)
        candidate = _candidate(candidate_id)
        try:
            promotion = promotion_rollback(
                candidate=candidate, actor=request.user, reason=data["reason"]
            )
        except PromotionError as exc:
            raise promotion_api_error(exc) from exc
        return self.respond(promotion)
