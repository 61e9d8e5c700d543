"""Decision, execution and TCA lists and details: `GET /trading/decisions`, `/trading/executions`,
`/trading/tca` (cursor pages of lean rows, newest first; TCA's with its cached summary beside the
page) and `/trading/decisions/{id}`, `/trading/executions/{id}` (the full row). Thin views over
`trading.selectors.lists` (and `tca_summary_cached`).

A page holds `limit` rows (default 50, at most 500) and `next`, the URL of the following page
(the same filters with `after_id` = the last row's id), or null on the last page. Query
parameters are checked exactly as the schema states them (a value outside it, an empty value
included, answers 400 `invalid_request` naming the parameter); rows are rendered with orjson.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from torghut_site.drf import ApiError
from torghut_site.renderers import OrjsonRenderer
from torghut_site.schema import ErrorSerializer
from trading.apis import DecisionOutputSerializer, ExecutionOutputSerializer
from trading.apis_query import (
    DEFAULT_LIMIT,
    MAX_ID,
    AwareDateTimeField,
    CursorQuerySerializer,
    StrictIntegerField,
    account_field,
    next_field,
    next_page_url,
    query_validated,
    symbol_field,
    text_field,
)
from trading.models.decisions import DecisionStatus, OrderSide, OrderType
from trading.models.executions import ExecutionStatus
from trading.selectors.lists import (
    ListFilters,
    Page,
    TcaFilters,
    decision_detail,
    decision_page,
    execution_detail,
    execution_page,
    tca_page,
)
from trading.selectors.trading import tca_summary_cached


class ListQuerySerializer(CursorQuerySerializer):
    """The query parameters both lists take (and, through drf-spectacular, their schema)."""

    symbol = symbol_field()
    strategy = text_field(r"^[A-Za-z0-9 _.:/-]{1,120}$", 120, "a strategy name")
    account = account_field()
    since = AwareDateTimeField(required=False, help_text="created at or after (RFC 3339)")
    until = AwareDateTimeField(required=False, help_text="created before (RFC 3339)")


class DecisionQuerySerializer(ListQuerySerializer):
    status = serializers.ChoiceField(choices=DecisionStatus.choices, required=False)


class ExecutionQuerySerializer(ListQuerySerializer):
    status = serializers.ChoiceField(choices=ExecutionStatus.choices, required=False)


def _list_query(request: Request, serializer_class: type[CursorQuerySerializer]) -> dict[str, Any]:
    """The validated list query; with no parameters `{}`, what the list serializers (no
    booleans, no defaults) answer then, without building their fields on the hot path."""
    if not request.query_params:
        return {}
    return query_validated(request, serializer_class)


def _page_body(request: Request, query: dict[str, Any], page: Page) -> dict[str, Any]:
    return {"next": next_page_url(request, query, page.next_after_id), "results": page.rows}


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
    next = next_field()
    results = DecisionRowSerializer(many=True)


class ExecutionPageSerializer(serializers.Serializer[Any]):
    next = next_field()
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
        query = _list_query(request, DecisionQuerySerializer)
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
        query = _list_query(request, ExecutionQuerySerializer)
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


class TcaQuerySerializer(CursorQuerySerializer):
    symbol = symbol_field()
    strategy_id = StrictIntegerField(required=False, min_value=1, max_value=MAX_ID)
    since = AwareDateTimeField(required=False, help_text="computed at or after (RFC 3339)")


class TcaRowSerializer(serializers.Serializer[Any]):
    """A row of the TCA page (the schema of what `tca_page` returns)."""

    id = serializers.IntegerField(min_value=1)
    execution_id = serializers.IntegerField()
    strategy_id = serializers.IntegerField(allow_null=True)
    account_label = serializers.CharField()
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=OrderSide.choices)
    arrival_price = _decimal(20, 6, allow_null=True)
    avg_fill_price = _decimal(20, 6, allow_null=True)
    filled_qty = _decimal(24, 8)
    slippage_bps = _decimal(14, 4, allow_null=True)
    shortfall_notional = _decimal(20, 6, allow_null=True)
    computed_at = serializers.DateTimeField()


class TcaTotalsSerializer(serializers.Serializer[Any]):
    order_count = serializers.IntegerField(min_value=0)
    avg_slippage_bps = serializers.FloatField(allow_null=True)
    total_shortfall_notional = serializers.FloatField(allow_null=True)


class TcaStrategyTotalsSerializer(serializers.Serializer[Any]):
    strategy_id = serializers.IntegerField(allow_null=True)
    order_count = serializers.IntegerField(min_value=0)
    avg_slippage_bps = serializers.FloatField(allow_null=True)


class TcaSymbolTotalsSerializer(serializers.Serializer[Any]):
    symbol = serializers.CharField()
    order_count = serializers.IntegerField(min_value=0)
    avg_slippage_bps = serializers.FloatField(allow_null=True)


class TcaSummarySerializer(serializers.Serializer[Any]):
    """`tca_summary_cached`: the matching rows of the summary window, aggregated."""

    summary = TcaTotalsSerializer()
    by_strategy = TcaStrategyTotalsSerializer(many=True)
    by_symbol = TcaSymbolTotalsSerializer(many=True)
    summary_as_of = serializers.DateTimeField(help_text="when the cached summary was computed")
    summary_since = serializers.DateTimeField(help_text="the summary window's start")
    summary_max_age_seconds = serializers.IntegerField(min_value=0)


class TcaPageSerializer(TcaSummarySerializer):
    next = next_field()
    results = TcaRowSerializer(many=True)


class TcaListApi(APIView):
    """`GET /trading/tca`: a cursor page of the matching TCA rows beside their summary, which is
    cached and window-bounded (`tca_summary_cached`; see `summary_as_of`)."""

    @extend_schema(
        operation_id="trading_tca_list",
        parameters=[TcaQuerySerializer],
        responses=TcaPageSerializer,
    )
    def get(self, request: Request) -> Response:
        query = _list_query(request, TcaQuerySerializer)
        filters = {key: query.get(key) for key in ("symbol", "strategy_id", "since")}
        page = tca_page(
            TcaFilters(**filters, after_id=query.get("after_id")),
            limit=query.get("limit", DEFAULT_LIMIT),
        )
        body = {
            **tca_summary_cached(**filters),
            "next": next_page_url(request, query, page.next_after_id),
            "results": TcaRowSerializer(page.rows, many=True).data,
        }
        return Response(body)
