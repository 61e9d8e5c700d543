"""Live-approval API (two people), mounted under `/trading/live-approvals`: thin DRF views over
`trading.services.live_approvals` and `trading.selectors.live_approvals`.

Who may do what is decided by the services (active staff users with the permission; the
approver is not the requester); the permission class here only refuses early, before the body
is read. The acting user is always the authenticated caller (API token or session), never a
body field. Refusals come back in the one error format with their code:
400 `reason_required`, `unknown_lane`, `ttl_invalid`, `ttl_above_max`; 403 `not_staff`,
`permission_denied`, `same_person`; 404 `not_found`; 409 `not_requested`, `request_expired`,
`already_revoked`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle, ScopedRateThrottle
from rest_framework.views import APIView

from torghut_site.drf import ApiError, ExactInputSerializer
from torghut_site.schema import ErrorSerializer
from trading.apis import ReasonInputSerializer
from trading.apis_query import (
    DEFAULT_LIMIT,
    MAX_ID,
    CursorQuerySerializer,
    account_field,
    next_field,
    next_page_url,
    query_validated,
)
from trading.lanes import live_lane_labels
from trading.models import LiveApproval, LiveApprovalStatus
from trading.selectors.live_approvals import (
    live_approval_list,
    live_approval_page,
    live_approval_state,
)
from trading.services.live_approvals import (
    APPROVE_PERMISSION,
    READ_PERMISSIONS,
    REQUEST_PERMISSION,
    REVOKE_PERMISSIONS,
    TTL_HOURS_LIMIT,
    LiveApprovalError,
    live_approval_approve,
    live_approval_request,
    live_approval_revoke,
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


class LiveApprovalFilterSerializer(CursorQuerySerializer):
    account_label = account_field()
    status = serializers.ChoiceField(required=False, choices=LiveApprovalStatus.choices)


class LiveApprovalPageSerializer(serializers.Serializer[Any]):
    next = next_field()
    results = LiveApprovalOutputSerializer(many=True)


class LiveLaneLabelField(serializers.CharField):
    """A lane label; the service refuses one that is not a configured live lane (400
    `unknown_lane`), so the schema lists the configured live lanes."""

    def schema_overrides(self) -> dict[str, Any]:
        labels = live_lane_labels()
        return {"enum": labels} if labels else {"not": {}}  # no live lane: nothing is accepted


class TtlHoursField(serializers.IntegerField):
    """Hours; DRF takes 1..TTL_HOURS_LIMIT, the service refuses more than the configured cap
    (400 `ttl_above_max`), so the schema's maximum is the cap."""

    def schema_overrides(self) -> dict[str, Any]:
        return {"maximum": settings.TRADING_LIVE_APPROVAL_MAX_TTL_HOURS}


class LiveApprovalRequestInputSerializer(ExactInputSerializer):
    account_label = LiveLaneLabelField(max_length=64, help_text="a configured live lane")
    reason = serializers.CharField(max_length=2000)
    ttl_hours = TtlHoursField(
        min_value=1,
        max_value=TTL_HOURS_LIMIT,
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

    throttle_scope = "control"

    def get_throttles(self) -> list[BaseThrottle]:
        """Changes take the `control` rate, like the other safety controls; reads the default."""
        if self.request.method == "POST":
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
    """`GET`: a cursor page of the live approvals, newest request first. `POST`: request live
    trading for a live lane (the token's user is the requester)."""

    live_approval_permissions = {
        "GET": READ_PERMISSIONS,
        "POST": (REQUEST_PERMISSION,),
    }

    @extend_schema(
        parameters=[LiveApprovalFilterSerializer],
        responses=LiveApprovalPageSerializer,
        summary="List live approvals",
    )
    def get(self, request: Request) -> Response:
        query = query_validated(request, LiveApprovalFilterSerializer)
        rows, next_after_id = live_approval_page(
            account_label=query.get("account_label"),
            status=query.get("status"),
            after_id=query.get("after_id"),
            limit=query.get("limit", DEFAULT_LIMIT),
        )
        now = timezone.now()
        return Response(
            {
                "next": next_page_url(request, query, next_after_id),
                "results": [live_approval_body(a, now=now) for a in rows],
            }
        )

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


def _reasoned_action(
    request: Request,
    raw_id: str,
    action: Callable[..., LiveApproval],
) -> Response:
    """Approve or revoke: the id from the route, the reason from the body, the caller as actor."""
    approval_id = _approval_id(raw_id)
    data = ReasonInputSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    try:
        approval = action(
            approval_id=approval_id, actor=request.user, reason=data.validated_data["reason"]
        )
    except LiveApprovalError as exc:
        raise live_approval_api_error(exc) from exc
    approval = live_approval_list().get(pk=approval.pk)
    return Response(live_approval_body(approval, now=timezone.now()))


class LiveApprovalApproveApi(_LiveApprovalApi):
    live_approval_permissions = {"POST": (APPROVE_PERMISSION,)}

    @extend_schema(
        parameters=[APPROVAL_ID],
        request=ReasonInputSerializer,
        responses=ACTION_RESPONSES,
        summary="Approve another person's live-approval request",
    )
    def post(self, request: Request, id: str) -> Response:  # noqa: A002 - the route's name
        return _reasoned_action(request, id, live_approval_approve)


class LiveApprovalRevokeApi(_LiveApprovalApi):
    live_approval_permissions = {"POST": REVOKE_PERMISSIONS}

    @extend_schema(
        parameters=[APPROVAL_ID],
        request=ReasonInputSerializer,
        responses=ACTION_RESPONSES,
        summary="Revoke a live-approval request or approval",
    )
    def post(self, request: Request, id: str) -> Response:  # noqa: A002 - the route's name
        return _reasoned_action(request, id, live_approval_revoke)
