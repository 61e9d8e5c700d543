"""Decision and execution lists and details: `GET /trading/decisions`, `/trading/executions`
(cursor pages of lean rows, newest first) and `/trading/decisions/{id}`,
`/trading/executions/{id}` (the full row). Thin views over `trading.selectors.lists`.

A page holds `limit` rows (default 50, at most 500) and `next`, the URL of the following page
(the same filters with `after_id` = the last row's id), or null on the last page. Query
parameters are checked exactly as the schema states them (a value outside it, an empty value
included, answers 400 `invalid_request` naming the parameter); rows are rendered with orjson.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from torghut_site.drf import ApiError
from torghut_site.renderers import OrjsonRenderer
from torghut_site.schema import ErrorSerializer
from trading.apis import MAX_ID, DecisionOutputSerializer, ExecutionOutputSerializer
from trading.models.decisions import DecisionStatus, OrderSide, OrderType
from trading.models.executions import ExecutionStatus
from trading.selectors.lists import (
    ListFilters,
    Page,
    decision_detail,
    decision_page,
    execution_detail,
    execution_page,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# RFC 3339 date-time (OpenAPI's `date-time`): an offset is required, so every time is aware
RFC3339 = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
INTEGER = r"^-?[0-9]+$"


class StrictIntegerField(serializers.IntegerField):
    """Digits only: DRF's IntegerField also takes "5.0", " 5" and "+5", the schema does not."""

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, str) or not re.fullmatch(INTEGER, data):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class AwareDateTimeField(serializers.DateTimeField):
    """An RFC 3339 time with its offset (`2026-03-03T15:00:00Z`); a naive time is refused."""

    def to_internal_value(self, value: Any) -> datetime:
        parsed = None
        if isinstance(value, str) and re.fullmatch(RFC3339, value):
            try:
                parsed = parse_datetime(value.upper())
            except ValueError:  # e.g. month 13: the pattern matches, the calendar does not
                parsed = None
        if parsed is None:
            raise serializers.ValidationError("must be an RFC 3339 time with an offset")
        try:
            # in UTC: Postgres refuses offsets beyond ±15:59, RFC 3339 allows up to ±23:59
            return parsed.astimezone(UTC)
        except OverflowError:  # within a day of year 1 or 9999: as far as a time goes
            if parsed.year == 1:
                return datetime.min.replace(tzinfo=UTC)
            return datetime.max.replace(tzinfo=UTC)


def _text(pattern: str, max_length: int, help_text: str) -> serializers.RegexField:
    return serializers.RegexField(
        pattern, max_length=max_length, required=False, trim_whitespace=False, help_text=help_text
    )


class ListQuerySerializer(serializers.Serializer[Any]):
    """The query parameters both lists take (and, through drf-spectacular, their schema)."""

    symbol = _text(r"^[A-Za-z0-9./-]{1,32}$", 32, "case-insensitive")
    strategy = _text(r"^[A-Za-z0-9 _.:/-]{1,120}$", 120, "a strategy name")
    account = _text(r"^[A-Za-z0-9_.-]{1,64}$", 64, "a lane label")
    since = AwareDateTimeField(required=False, help_text="created at or after (RFC 3339)")
    until = AwareDateTimeField(required=False, help_text="created before (RFC 3339)")
    after_id = StrictIntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="cursor: rows with a smaller id"
    )
    limit = StrictIntegerField(
        required=False, min_value=1, max_value=MAX_LIMIT, help_text=f"default {DEFAULT_LIMIT}"
    )


class DecisionQuerySerializer(ListQuerySerializer):
    status = serializers.ChoiceField(choices=DecisionStatus.choices, required=False)


class ExecutionQuerySerializer(ListQuerySerializer):
    status = serializers.ChoiceField(choices=ExecutionStatus.choices, required=False)


def _query(request: Request, serializer_class: type[ListQuerySerializer]) -> dict[str, Any]:
    """The validated query. An empty value (`since=`) is refused: DRF would read it as absent."""
    if not request.query_params:
        return {}  # what the serializer answers for no parameters, without building its fields
    empty = {
        key: ["may not be empty"]
        for key, value in request.query_params.items()
        if value == "" and key in serializer_class().fields
    }
    if empty:
        raise serializers.ValidationError(empty)
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _page_body(request: Request, query: dict[str, Any], page: Page) -> dict[str, Any]:
    next_url = None
    if page.next_after_id is not None:
        params = {key: value for key, value in request.query_params.items() if key in query}
        params["after_id"] = str(page.next_after_id)
        next_url = request.build_absolute_uri(f"{request.path}?{urlencode(params)}")
    return {"next": next_url, "results": page.rows}


def _filters(query: dict[str, Any]) -> ListFilters:
    return ListFilters(**{k: v for k, v in query.items() if k != "limit"})


def _decimal(max_digits: int, places: int, **kw: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=max_digits, decimal_places=places, **kw)


class DecisionRowSerializer(serializers.Serializer[Any]):
    """A row of the decision list (the schema of what `decision_page` returns)."""

    id = serializers.IntegerField(min_value=1)
    strategy = serializers.CharField(help_text="strategy name")
    account_label = serializers.CharField()
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    event_ts = serializers.DateTimeField()
    action = serializers.ChoiceField(choices=OrderSide.choices)
    qty = _decimal(24, 8)
    order_type = serializers.ChoiceField(choices=OrderType.choices)
    limit_price = _decimal(20, 6, allow_null=True)
    price = _decimal(20, 6, allow_null=True, help_text="arrival price")
    status = serializers.ChoiceField(choices=DecisionStatus.choices)
    reject_reason = serializers.CharField(allow_blank=True)
    client_order_id = serializers.CharField()
    executed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class ExecutionRowSerializer(serializers.Serializer[Any]):
    """A row of the execution list (the schema of what `execution_page` returns)."""

    id = serializers.IntegerField(min_value=1)
    decision_id = serializers.IntegerField(allow_null=True, help_text="null: an adopted order")
    account_label = serializers.CharField()
    broker = serializers.CharField()
    client_order_id = serializers.CharField()
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=OrderSide.choices)
    order_type = serializers.CharField()
    submitted_qty = _decimal(24, 8)
    filled_qty = _decimal(24, 8)
    avg_fill_price = _decimal(20, 6, allow_null=True)
    status = serializers.ChoiceField(choices=ExecutionStatus.choices)
    submitted_at = serializers.DateTimeField(allow_null=True)
    last_update_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class DecisionPageSerializer(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True, help_text="the next page; null on the last")
    results = DecisionRowSerializer(many=True)


class ExecutionPageSerializer(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True, help_text="the next page; null on the last")
    results = ExecutionRowSerializer(many=True)


class FastListView(APIView):
    renderer_classes = [OrjsonRenderer, BrowsableAPIRenderer]


class DecisionListApi(FastListView):
    @extend_schema(
        operation_id="trading_decisions_list",
        parameters=[DecisionQuerySerializer],
        responses=DecisionPageSerializer,
    )
    def get(self, request: Request) -> Response:
        query = _query(request, DecisionQuerySerializer)
        page = decision_page(_filters(query), limit=query.get("limit", DEFAULT_LIMIT))
        for row in page.rows:
            row["strategy"] = row.pop("strategy_name")
        return Response(_page_body(request, query, page))


class ExecutionListApi(FastListView):
    @extend_schema(
        operation_id="trading_executions_list",
        parameters=[ExecutionQuerySerializer],
        responses=ExecutionPageSerializer,
    )
    def get(self, request: Request) -> Response:
        query = _query(request, ExecutionQuerySerializer)
        page = execution_page(_filters(query), limit=query.get("limit", DEFAULT_LIMIT))
        return Response(_page_body(request, query, page))


ID_PARAMETER = OpenApiParameter(
    "id", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, OpenApiParameter.PATH
)
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No row with this id")


def _row_id(raw: str) -> int:
    """The path's id; anything that is not an id of a row that could exist is not found."""
    if not re.fullmatch(r"[0-9]{1,19}", raw) or not 1 <= int(raw) <= MAX_ID:
        raise ApiError(code="not_found", message="Not found.", status_code=404)
    return int(raw)


class DecisionDetailApi(FastListView):
    @extend_schema(
        operation_id="trading_decisions_retrieve",
        parameters=[ID_PARAMETER],
        responses={200: DecisionOutputSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, id: str) -> Response:
        decision = decision_detail(_row_id(id))
        if decision is None:
            raise ApiError(code="not_found", message="Not found.", status_code=404)
        return Response(DecisionOutputSerializer(decision).data)


class ExecutionDetailApi(FastListView):
    @extend_schema(
        operation_id="trading_executions_retrieve",
        parameters=[ID_PARAMETER],
        responses={200: ExecutionOutputSerializer, 404: NOT_FOUND},
    )
    def get(self, request: Request, id: str) -> Response:
        execution = execution_detail(_row_id(id))
        if execution is None:
            raise ApiError(code="not_found", message="Not found.", status_code=404)
        return Response(ExecutionOutputSerializer(execution).data)
