"""Trading API: thin DRF views over trading selectors and services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from torghut_site.drf import ApiError, ExactInputSerializer
from torghut_site.renderers import CachedBodyRenderer
from torghut_site.schema import ErrorSerializer
from trading.api_responses import (
    EmergencyStopClearOutputSerializer,
    KillSwitchOutputSerializer,
    LlmEvaluationSerializer,
    TradingHealthSerializer,
    TradingMetricsSerializer,
    TradingStatusSerializer,
)
from trading.apis_query import Day2000To2999Field, account_field, query_validated
from trading.lanes import UnknownLaneError
from trading.selectors.books import books_overview
from trading.selectors.llm import llm_evaluation
from trading.selectors.trading import (
    tca_summary_cached,
    trading_health,
    trading_status,
)
from trading.services.safety import (
    DailyLossLockedError,
    SafetyActionError,
    emergency_stop_clear,
    kill_switch_set,
)


class CanOperateSafety(BasePermission):
    """Safety controls need the explicit `trading.change_safetystate` permission (or superuser)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm("trading.change_safetystate"))


class DecisionOutputSerializer(serializers.Serializer[Any]):
    """A whole decision (`GET /trading/decisions/{id}`)."""

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
    """A whole execution (`GET /trading/executions/{id}`)."""

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


class StatusApi(APIView):
    # the body is the status cache's, shared while fresh (trading.status_cache): encoded once
    renderer_classes = [CachedBodyRenderer, BrowsableAPIRenderer]

    @extend_schema(responses={200: TradingStatusSerializer})
    def get(self, request: Request) -> Response:
        return Response(trading_status())


class LlmEvaluationInputSerializer(serializers.Serializer[Any]):
    date = Day2000To2999Field(
        required=False,
        input_formats=["%Y-%m-%d"],
        help_text="YYYY-MM-DD, an America/New_York day from 2000-01-01 to 2999-12-31 (default "
        "today); a day with no reviews yet, e.g. a future one, answers its empty aggregate",
    )


class LlmEvaluationApi(APIView):
    """`GET /trading/llm-evaluation`: the LLM reviews of one America/New_York day (default
    today), aggregated in one query (`trading.selectors.llm.llm_evaluation`)."""

    @extend_schema(
        parameters=[LlmEvaluationInputSerializer],
        responses={200: LlmEvaluationSerializer},
    )
    def get(self, request: Request) -> Response:
        query = query_validated(request, LlmEvaluationInputSerializer)
        return Response(llm_evaluation(day=query.get("date")))


class HealthApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(responses={200: TradingHealthSerializer, 503: TradingHealthSerializer})
    def get(self, request: Request) -> Response:
        body = trading_health()
        code = status.HTTP_200_OK if body["status"] == "ok" else status.HTTP_503_SERVICE_UNAVAILABLE
        return Response(body, status=code)


def _decimal(max_digits: int, places: int, **kw: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=max_digits, decimal_places=places, **kw)


class BookLineSerializer(serializers.Serializer[Any]):
    account_label = serializers.CharField()
    strategy = serializers.CharField(allow_null=True, help_text="null: orders without a decision")
    symbol = serializers.CharField()
    position = _decimal(24, 8, help_text="signed filled quantity")
    avg_cost = _decimal(26, 6, allow_null=True, help_text="average-cost method; null when flat")
    realised_pnl = _decimal(34, 6)
    mark = _decimal(26, 6, allow_null=True, help_text="last price (latest account snapshot)")
    unrealised_pnl = _decimal(34, 6, allow_null=True, help_text="null: no mark for the position")
    buy_qty = _decimal(24, 8)
    sell_qty = _decimal(24, 8)
    buy_notional = _decimal(34, 6)
    sell_notional = _decimal(34, 6)


class BooksOutputSerializer(serializers.Serializer[Any]):
    books = BookLineSerializer(many=True, help_text="per lane, strategy and symbol")
    unattributed = BookLineSerializer(many=True, help_text="orders without a decision")


class BooksApi(APIView):
    """Per-strategy books derived from the lane's filled executions (`trading.selectors.books`)."""

    class FilterSerializer(serializers.Serializer[Any]):
        account = account_field()

    @extend_schema(
        parameters=[
            # a lane label; every configured lane when absent
            FilterSerializer
        ],
        responses={200: BooksOutputSerializer, 404: ErrorSerializer},
    )
    def get(self, request: Request) -> Response:
        query = query_validated(request, self.FilterSerializer)
        try:
            lines = books_overview(account_label=query.get("account"))
        except UnknownLaneError as exc:
            raise ApiError(code="unknown_lane", message=str(exc), status_code=404) from exc
        body = {
            "books": [line for line in lines if line.strategy is not None],
            "unattributed": [line for line in lines if line.strategy is None],
        }
        return Response(BooksOutputSerializer(body).data)


class MetricsApi(APIView):
    @extend_schema(responses={200: TradingMetricsSerializer})
    def get(self, request: Request) -> Response:
        status_body = trading_status()
        return Response(
            {
                "lanes": {
                    lane["label"]: lane["last_cycle_summary"] for lane in status_body["lanes"]
                },
                "decisions_24h": status_body["decisions_24h"],
                "tca": tca_summary_cached(),
                "metrics": status_body["metrics"],
                "control_plane_contract": status_body["control_plane_contract"],
            }
        )


class KillSwitchInputSerializer(ExactInputSerializer):
    engaged = serializers.BooleanField()
    reason = serializers.CharField(max_length=2000)


class ReasonInputSerializer(ExactInputSerializer):
    reason = serializers.CharField(max_length=2000)


class KillSwitchApi(APIView):
    permission_classes = [CanOperateSafety]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "control"

    @extend_schema(request=KillSwitchInputSerializer, responses={200: KillSwitchOutputSerializer})
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

    class InputSerializer(ExactInputSerializer):
        reason = serializers.CharField(max_length=2000)
        rebase_high_water_mark = serializers.BooleanField(default=False)

    @extend_schema(
        request=InputSerializer,
        responses={200: EmergencyStopClearOutputSerializer, 409: ErrorSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            emergency_stop_clear(
                actor=request.user,
                reason=data.validated_data["reason"],
                rebase_high_water_mark=data.validated_data["rebase_high_water_mark"],
            )
        except DailyLossLockedError as exc:
            raise ApiError(
                code="daily_loss_limit_locked", message=str(exc), status_code=409
            ) from exc
        except SafetyActionError as exc:
            raise ApiError(
                code="emergency_stop_not_active", message=str(exc), status_code=409
            ) from exc
        return Response({"emergency_stop_active": False})
