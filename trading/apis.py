"""Trading API: thin DRF views over trading selectors and services."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle, ScopedRateThrottle
from rest_framework.views import APIView

from torghut_site.api import ApiError, LimitOffsetPagination
from torghut_site.schema import ErrorSerializer
from trading.models import LiveApproval, LiveApprovalStatus
from trading.selectors.live_approvals import live_approval_list, live_approval_state
from trading.selectors.trading import (
    decision_list,
    execution_list,
    tca_rows,
    tca_summary,
    trading_health,
    trading_status,
)
from trading.services.live_approvals import (
    APPROVE_PERMISSION,
    REQUEST_PERMISSION,
    REVOKE_PERMISSIONS,
    LiveApprovalError,
    live_approval_approve,
    live_approval_request,
    live_approval_revoke,
)
from trading.services.safety import SafetyActionError, emergency_stop_clear, kill_switch_set


class CanOperateSafety(BasePermission):
    """Safety controls need the explicit `trading.change_safetystate` permission (or superuser)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm("trading.change_safetystate"))


MAX_ID = 2**63 - 1  # bigint: a larger id or offset is refused, not sent to Postgres


class FilterSerializer(serializers.Serializer[Any]):
    symbol = serializers.CharField(required=False, max_length=32)
    since = serializers.DateTimeField(required=False)
    status = serializers.CharField(required=False, max_length=20)
    strategy_id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    # read by the paginator (which ignores bad values); validated here so they answer 400
    limit = serializers.IntegerField(required=False, min_value=1)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=MAX_ID)


FILTER_PARAMS = [
    OpenApiParameter("symbol", {"type": "string", "maxLength": 32}),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="ISO 8601 time"),
    OpenApiParameter(
        "limit", {"type": "integer", "minimum": 1}, description="at most 500 (default 200)"
    ),
    OpenApiParameter("offset", {"type": "integer", "minimum": 0, "maximum": MAX_ID}),
]


def _filters(request: Request) -> dict[str, Any]:
    serializer = FilterSerializer(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    data = dict(serializer.validated_data)
    data.pop("limit", None)
    data.pop("offset", None)
    return data


class DecisionOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    strategy = serializers.CharField(source="strategy.name")
    account_label = serializers.CharField()
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    event_ts = serializers.DateTimeField()
    action = serializers.CharField()
    qty = serializers.DecimalField(max_digits=24, decimal_places=8)
    order_type = serializers.CharField()
    limit_price = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)
    price = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)
    status = serializers.CharField()
    reject_reason = serializers.CharField()
    risk_reasons = serializers.ListField(child=serializers.CharField())
    decision_hash = serializers.CharField()
    client_order_id = serializers.CharField()
    rationale = serializers.CharField()
    gate_verdicts = serializers.JSONField()
    decision_json = serializers.JSONField()
    executed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class ExecutionOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    decision_id = serializers.IntegerField(allow_null=True)
    account_label = serializers.CharField()
    broker = serializers.CharField()
    broker_order_id = serializers.CharField()
    client_order_id = serializers.CharField()
    symbol = serializers.CharField()
    side = serializers.CharField()
    order_type = serializers.CharField()
    time_in_force = serializers.CharField()
    submitted_qty = serializers.DecimalField(max_digits=24, decimal_places=8)
    filled_qty = serializers.DecimalField(max_digits=24, decimal_places=8)
    avg_fill_price = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)
    status = serializers.CharField()
    adopted = serializers.BooleanField()
    unknown_order = serializers.BooleanField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    last_update_at = serializers.DateTimeField(allow_null=True)
    slippage_bps = serializers.SerializerMethodField()

    def get_slippage_bps(self, obj: Any) -> str | None:
        tca = getattr(obj, "tca", None)
        return str(tca.slippage_bps) if tca is not None and tca.slippage_bps is not None else None


class TcaRowSerializer(serializers.Serializer[Any]):
    execution_id = serializers.IntegerField()
    strategy_id = serializers.IntegerField(allow_null=True)
    account_label = serializers.CharField()
    symbol = serializers.CharField()
    side = serializers.CharField()
    arrival_price = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)
    avg_fill_price = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)
    filled_qty = serializers.DecimalField(max_digits=24, decimal_places=8)
    slippage_bps = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True)
    shortfall_notional = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)
    computed_at = serializers.DateTimeField()


class StatusApi(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response(trading_status())


class HealthApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(responses={200: dict, 503: dict})
    def get(self, request: Request) -> Response:
        body = trading_health()
        code = status.HTTP_200_OK if body["status"] == "ok" else status.HTTP_503_SERVICE_UNAVAILABLE
        return Response(body, status=code)


class DecisionListApi(APIView):
    pagination_class = LimitOffsetPagination  # the schema describes the paginated answer

    @extend_schema(parameters=FILTER_PARAMS, responses=DecisionOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        rows = decision_list(**_filters(request))
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(DecisionOutputSerializer(page, many=True).data)


class ExecutionListApi(APIView):
    pagination_class = LimitOffsetPagination  # the schema describes the paginated answer

    @extend_schema(parameters=FILTER_PARAMS, responses=ExecutionOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        filters = _filters(request)
        rows = execution_list(symbol=filters.get("symbol"), since=filters.get("since"))
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(ExecutionOutputSerializer(page, many=True).data)


class TcaApi(APIView):
    @extend_schema(
        parameters=[
            *FILTER_PARAMS,
            OpenApiParameter("strategy_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID}),
        ],
        responses={200: dict},
    )
    def get(self, request: Request) -> Response:
        filters = _filters(request)
        rows = tca_rows(
            symbol=filters.get("symbol"),
            strategy_id=filters.get("strategy_id"),
            since=filters.get("since"),
        )
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(rows, request, view=self) or []
        return Response(
            {
                **tca_summary(rows),
                "count": paginator.count,
                "rows": TcaRowSerializer(page, many=True).data,
            }
        )


class MetricsApi(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        status_body = trading_status()
        return Response(
            {
                "lanes": {
                    lane["label"]: lane["last_cycle_summary"] for lane in status_body["lanes"]
                },
                "decisions_24h": status_body["decisions_24h"],
                "tca": tca_summary(tca_rows()),
            }
        )


class KillSwitchInputSerializer(serializers.Serializer[Any]):
    engaged = serializers.BooleanField()
    reason = serializers.CharField(max_length=2000)


class ReasonInputSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000)


class KillSwitchApi(APIView):
    permission_classes = [CanOperateSafety]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "control"

    @extend_schema(request=KillSwitchInputSerializer, responses={200: dict})
    def post(self, request: Request) -> Response:
        data = KillSwitchInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        state = kill_switch_set(
            engaged=data.validated_data["engaged"],
            actor=request.user,
            reason=data.validated_data["reason"],
        )
        return Response(
            {"kill_switch_engaged": state.kill_switch_engaged, "reason": state.kill_switch_reason}
        )


class EmergencyStopClearApi(APIView):
    permission_classes = [CanOperateSafety]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "control"

    @extend_schema(request=ReasonInputSerializer, responses={200: dict, 409: dict})
    def post(self, request: Request) -> Response:
        data = ReasonInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            emergency_stop_clear(actor=request.user, reason=data.validated_data["reason"])
        except SafetyActionError as exc:
            raise ApiError(
                code="emergency_stop_not_active", message=str(exc), status_code=409
            ) from exc
        return Response({"emergency_stop_active": False})


# -- live approvals (two people) --------------------------------------------------------------
# Who may do what is decided by `trading.services.live_approvals` (active staff users with the
# permission; the approver is not the requester); the permission class below only refuses
# early, before the body is read. Refusals come back in the one error format with their code:
# 400 `reason_required`, `unknown_lane`, `ttl_invalid`, `ttl_above_max`; 403 `not_staff`,
# `permission_denied`, `same_person`; 404 `not_found`; 409 `not_requested`, `request_expired`,
# `already_revoked`.

LIVE_APPROVAL_READ_PERMISSIONS = (
    "trading.view_liveapproval",
    REQUEST_PERMISSION,
    *REVOKE_PERMISSIONS,
)
LIVE_APPROVAL_ERROR_STATUS = {
    "reason_required": status.HTTP_400_BAD_REQUEST,
    "unknown_lane": status.HTTP_400_BAD_REQUEST,
    "ttl_invalid": status.HTTP_400_BAD_REQUEST,
    "ttl_above_max": status.HTTP_400_BAD_REQUEST,
    "not_staff": status.HTTP_403_FORBIDDEN,
    "permission_denied": status.HTTP_403_FORBIDDEN,
    "same_person": status.HTTP_403_FORBIDDEN,
    "not_found": status.HTTP_404_NOT_FOUND,
}  # any other refusal conflicts with the approval's state: 409
MAX_TTL_HOURS = 8784  # the upper bound of TRADING_LIVE_APPROVAL_MAX_TTL_HOURS


class HasLiveApprovalPermission(BasePermission):
    """The caller holds one of the view's `live_approval_permissions` for this method."""

    message = "this live-approval action needs a live-approval permission"
    code = "permission_denied"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        needed = view.live_approval_permissions.get(method, ())
        return bool(user and user.is_authenticated and any(user.has_perm(perm) for perm in needed))


class LiveApprovalOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    account_label = serializers.CharField()
    status = serializers.ChoiceField(choices=LiveApprovalStatus.choices)
    state = serializers.ChoiceField(
        choices=["requested", "request_expired", "approved", "expired", "revoked"],
        help_text="what the row means now: only `approved` lets live orders through",
    )
    reason = serializers.CharField()
    ttl_seconds = serializers.IntegerField(allow_null=True)
    requested_by = serializers.CharField()
    requested_at = serializers.DateTimeField()
    request_expires_at = serializers.DateTimeField(allow_null=True)
    approved_by = serializers.CharField(allow_null=True)
    approved_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_by = serializers.CharField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


def _username(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def live_approval_body(approval: LiveApproval, *, now: Any) -> dict[str, Any]:
    ttl = approval.ttl
    return dict(
        LiveApprovalOutputSerializer(
            {
                "id": approval.pk,
                "account_label": approval.account_label,
                "status": approval.status,
                "state": live_approval_state(approval, now=now),
                "reason": approval.reason,
                "ttl_seconds": int(ttl.total_seconds()) if ttl is not None else None,
                "requested_by": _username(approval.requested_by),
                "requested_at": approval.requested_at,
                "request_expires_at": approval.requested_at + ttl if ttl is not None else None,
                "approved_by": _username(approval.approved_by),
                "approved_at": approval.approved_at,
                "expires_at": approval.expires_at,
                "revoked_by": _username(approval.revoked_by),
                "revoked_at": approval.revoked_at,
            }
        ).data
    )


def live_approval_api_error(exc: LiveApprovalError) -> ApiError:
    return ApiError(
        code=exc.code,
        message=exc.message,
        status_code=LIVE_APPROVAL_ERROR_STATUS.get(exc.code, status.HTTP_409_CONFLICT),
    )


class LiveApprovalFilterSerializer(serializers.Serializer[Any]):
    account_label = serializers.CharField(required=False, max_length=64)
    status = serializers.ChoiceField(required=False, choices=LiveApprovalStatus.choices)
    limit = serializers.IntegerField(required=False, min_value=1)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=MAX_ID)


class LiveApprovalRequestInputSerializer(serializers.Serializer[Any]):
    account_label = serializers.CharField(max_length=64, help_text="a configured live lane")
    reason = serializers.CharField(max_length=2000)
    ttl_hours = serializers.IntegerField(
        min_value=1,
        max_value=MAX_TTL_HOURS,
        help_text="how long the request waits for a second person's approval, then how long "
        "the approval lasts; at most TRADING_LIVE_APPROVAL_MAX_TTL_HOURS (default 24)",
    )


LIVE_APPROVAL_REFUSED = OpenApiResponse(
    ErrorSerializer,
    description="not_requested / request_expired / already_revoked",
)
LIVE_APPROVAL_FORBIDDEN = OpenApiResponse(
    ErrorSerializer,
    description="permission_denied / not_staff / same_person (or CSRF)",
)
LIVE_APPROVAL_INVALID = OpenApiResponse(
    ErrorSerializer,
    description="reason_required / unknown_lane / ttl_invalid / ttl_above_max or a bad body",
)
LIVE_APPROVAL_NOT_FOUND = OpenApiResponse(ErrorSerializer, description="not_found")
APPROVAL_ID = OpenApiParameter(
    "id",
    {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    location=OpenApiParameter.PATH,
    description="the live approval's id",
)


class _LiveApprovalApi(APIView):
    permission_classes = [HasLiveApprovalPermission]
    live_approval_permissions: dict[str, tuple[str, ...]] = {}

    def get_throttles(self) -> list[BaseThrottle]:
        """Changes take the `control` rate, like the other safety controls; reads the default."""
        if self.request.method == "POST":
            self.throttle_scope = "control"
            return [ScopedRateThrottle()]
        return super().get_throttles()


def _approval_id(raw: str) -> int:
    """The path's id; anything but a bigint id is a 404 in the one error format."""
    if re.fullmatch(r"[0-9]{1,19}", raw) is None or not 1 <= int(raw) <= MAX_ID:
        raise ApiError(
            code="not_found",
            message=f"no live approval {raw}",
            status_code=status.HTTP_404_NOT_FOUND,
        )
    return int(raw)


class LiveApprovalListApi(_LiveApprovalApi):
    """`GET`: the live approvals, newest request first. `POST`: request live trading for a
    live lane (the token's user is the requester)."""

    pagination_class = LimitOffsetPagination  # the schema describes the paginated answer
    live_approval_permissions = {
        "GET": LIVE_APPROVAL_READ_PERMISSIONS,
        "POST": (REQUEST_PERMISSION,),
    }

    @extend_schema(
        parameters=[LiveApprovalFilterSerializer],
        responses=LiveApprovalOutputSerializer(many=True),
        summary="List live approvals",
    )
    def get(self, request: Request) -> Response:
        filters = LiveApprovalFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = live_approval_list(
            account_label=filters.validated_data.get("account_label"),
            status=filters.validated_data.get("status"),
        )
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(rows, request, view=self) or []
        now = timezone.now()
        return paginator.get_paginated_response([live_approval_body(a, now=now) for a in page])

    @extend_schema(
        request=LiveApprovalRequestInputSerializer,
        responses={
            201: LiveApprovalOutputSerializer,
            400: LIVE_APPROVAL_INVALID,
            403: LIVE_APPROVAL_FORBIDDEN,
        },
        examples=[
            OpenApiExample(
                "request",
                value={"account_label": "live-1", "reason": "go-live review #12", "ttl_hours": 4},
                request_only=True,
            )
        ],
        summary="Request live trading for a lane (a second person must approve)",
    )
    def post(self, request: Request) -> Response:
        data = LiveApprovalRequestInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            approval = live_approval_request(
                account_label=data.validated_data["account_label"],
                actor=request.user,
                reason=data.validated_data["reason"],
                ttl=timedelta(hours=data.validated_data["ttl_hours"]),
            )
        except LiveApprovalError as exc:
            raise live_approval_api_error(exc) from exc
        approval = live_approval_list().get(pk=approval.pk)
        return Response(
            live_approval_body(approval, now=timezone.now()), status=status.HTTP_201_CREATED
        )


ACTION_RESPONSES: dict[int, Any] = {
    200: LiveApprovalOutputSerializer,
    400: LIVE_APPROVAL_INVALID,
    403: LIVE_APPROVAL_FORBIDDEN,
    404: LIVE_APPROVAL_NOT_FOUND,
    409: LIVE_APPROVAL_REFUSED,
}


class LiveApprovalApproveApi(_LiveApprovalApi):
    live_approval_permissions = {"POST": (APPROVE_PERMISSION,)}

    @extend_schema(
        parameters=[APPROVAL_ID],
        request=ReasonInputSerializer,
        responses=ACTION_RESPONSES,
        summary="Approve another person's live-approval request",
    )
    def post(self, request: Request, id: str) -> Response:  # noqa: A002 - the route's name
        approval_id = _approval_id(id)
        data = ReasonInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            approval = live_approval_approve(
                approval_id=approval_id, actor=request.user, reason=data.validated_data["reason"]
            )
        except LiveApprovalError as exc:
            raise live_approval_api_error(exc) from exc
        approval = live_approval_list().get(pk=approval.pk)
        return Response(live_approval_body(approval, now=timezone.now()))


class LiveApprovalRevokeApi(_LiveApprovalApi):
    live_approval_permissions = {"POST": REVOKE_PERMISSIONS}

    @extend_schema(
        parameters=[APPROVAL_ID],
        request=ReasonInputSerializer,
        responses=ACTION_RESPONSES,
        summary="Revoke a live-approval request or approval",
    )
    def post(self, request: Request, id: str) -> Response:  # noqa: A002 - the route's name
        approval_id = _approval_id(id)
        data = ReasonInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            approval = live_approval_revoke(
                approval_id=approval_id, actor=request.user, reason=data.validated_data["reason"]
            )
        except LiveApprovalError as exc:
            raise live_approval_api_error(exc) from exc
        approval = live_approval_list().get(pk=approval.pk)
        return Response(live_approval_body(approval, now=timezone.now()))
