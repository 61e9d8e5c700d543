"""Response schemas of the trading status, health, metrics, evaluation and control endpoints, so
that schemathesis's response-conformance check compares their answers with something exact.

The blocks of `GET /trading/status` and `/trading/metrics` are closed objects
(`ExactOutputSerializer`: `additionalProperties: false`); an object stays open only where its
keys are data (lane labels, counter names, a cycle's counters), each marked with why.
"""

from __future__ import annotations

from typing import Any, get_args

from rest_framework import serializers

from torghut_site.drf import ExactOutputSerializer
from torghut_site.flags import Source
from trading.models import DecisionStatus
from trading.ports import status_section_schemas
from trading.selectors.status import CONTROL_PLANE_SCHEMA


def _open_object(**kw: Any) -> serializers.DictField:
    """A JSON object whose keys the schema does not fix."""
    return serializers.DictField(**kw)


def _number(**kw: Any) -> serializers.FloatField:
    """A Decimal or float the status renders as a JSON number (or null)."""
    return serializers.FloatField(allow_null=True, **kw)


class KillSwitchStatusSerializer(ExactOutputSerializer):
    active = serializers.BooleanField()
    # named like a Field attribute: mypy sees the clash, DRF does not mind
    source = serializers.CharField(allow_blank=True, allow_null=True)  # type: ignore[assignment]
    reason = serializers.CharField(allow_blank=True, allow_null=True)


class LaneSignalContinuitySerializer(ExactOutputSerializer):
    last_signal_ts = serializers.DateTimeField(allow_null=True)
    signal_lag_seconds = _number()
    no_signal_reason = serializers.CharField(allow_blank=True)
    no_signal_streak = serializers.IntegerField(min_value=0)
    market_open = serializers.BooleanField(allow_null=True)
    universe_status = serializers.CharField(allow_blank=True)


class LaneEquitySerializer(ExactOutputSerializer):
    last_equity = _number()
    high_water_mark = _number()
    drawdown = serializers.CharField(allow_null=True, help_text="a fraction, 6 places")
    session_day = serializers.DateField(allow_null=True)
    session_start_equity = _number()
    daily_loss = serializers.CharField(allow_null=True, help_text="a fraction, 6 places")


class StatusLaneSerializer(ExactOutputSerializer):
    label = serializers.CharField()  # type: ignore[assignment]  # the lane's label
    mode = serializers.CharField()
    broker = serializers.CharField()
    enabled = serializers.BooleanField()
    last_cycle_started_at = serializers.DateTimeField(allow_null=True)
    last_cycle_finished_at = serializers.DateTimeField(allow_null=True)
    last_cycle_status = serializers.CharField(allow_blank=True)
    # open: each step of the cycle adds its own counters (decisions, orders, skips by reason...)
    last_cycle_summary = _open_object(help_text="the last cycle's counters")
    last_error = serializers.CharField(allow_blank=True)
    last_reconcile_at = serializers.DateTimeField(allow_null=True)
    signal_continuity = LaneSignalContinuitySerializer()
    equity = LaneEquitySerializer()


class SignalContinuitySerializer(ExactOutputSerializer):
    """Rolled up over the enabled lanes (`trading.selectors.status.lanes_rollup`)."""

    last_signal_ts = serializers.DateTimeField(allow_null=True)
    max_signal_lag_seconds = _number()
    # open: keyed by lane label (the configured lanes)
    no_signal_reasons = serializers.DictField(
        child=serializers.CharField(), help_text="each lane's no-signal reason, by label"
    )
    max_no_signal_streak = serializers.IntegerField(min_value=0)
    market_open = serializers.BooleanField(allow_null=True)
    actionable_lanes = serializers.ListField(child=serializers.CharField())


class RollbackSerializer(ExactOutputSerializer):
    emergency_stop_enabled = serializers.BooleanField()
    emergency_stop_active = serializers.BooleanField()
    emergency_stop_reasons = serializers.ListField(child=serializers.CharField())
    emergency_stop_triggered_at = serializers.DateTimeField(allow_null=True)
    clean_cycles = serializers.IntegerField(min_value=0)


class LlmPostureSerializer(ExactOutputSerializer):
    shadow = serializers.BooleanField()
    shadow_reasons = serializers.ListField(child=serializers.CharField())
    guardrail_blocks = serializers.ListField(child=serializers.CharField())
    fail_mode_effective = serializers.CharField()
    adjustments_allowed = serializers.BooleanField()


class LlmPolicyResolutionSerializer(ExactOutputSerializer):
    fail_mode_configured = serializers.CharField()
    fail_mode_enforcement = serializers.CharField()
    fail_open_live_approved = serializers.BooleanField()
    paper = LlmPostureSerializer()
    live = LlmPostureSerializer()


class LlmCircuitSerializer(ExactOutputSerializer):
    open = serializers.BooleanField()
    open_until = serializers.DateTimeField(allow_null=True)
    recent_errors = serializers.IntegerField(min_value=0)


class LlmCommitteeSerializer(ExactOutputSerializer):
    enabled = serializers.BooleanField()
    roles = serializers.ListField(child=serializers.CharField())
    mandatory_roles = serializers.ListField(child=serializers.CharField())


class LlmDspySerializer(ExactOutputSerializer):
    runtime_mode = serializers.CharField()
    artifact_hash = serializers.CharField(allow_blank=True)


class MarketContextPolicySerializer(ExactOutputSerializer):
    configured = serializers.BooleanField()
    required = serializers.BooleanField()  # type: ignore[assignment]
    fail_mode = serializers.ChoiceField(choices=["shadow_only", "fail_closed"])
    min_quality = serializers.FloatField()
    max_staleness_seconds = serializers.FloatField()


class LlmStatusSerializer(ExactOutputSerializer):
    """`trading.selectors.llm.llm_status`."""

    enabled = serializers.BooleanField()
    provider = serializers.CharField()
    model = serializers.CharField()
    prompt_version = serializers.CharField()
    rollout_stage = serializers.CharField()
    shadow_mode = serializers.BooleanField()
    policy_resolution = LlmPolicyResolutionSerializer()
    circuit = LlmCircuitSerializer()
    committee = LlmCommitteeSerializer()
    dspy = LlmDspySerializer()
    market_context = MarketContextPolicySerializer()
    deadline_seconds = serializers.FloatField()


class FlagValueSerializer(ExactOutputSerializer):
    """A feature flag as this process resolved it (`torghut_site.flags.flags_snapshot`)."""

    value = serializers.BooleanField()
    # named like a Field attribute: mypy sees the clash, DRF does not mind
    source = serializers.ChoiceField(choices=list(get_args(Source)))  # type: ignore[assignment]


class StatusTcaSerializer(ExactOutputSerializer):
    """The cached TCA summary over its window (`as_of`: when it was computed)."""

    order_count = serializers.IntegerField(min_value=0)
    avg_slippage_bps = _number()
    total_shortfall_notional = _number()
    as_of = serializers.DateTimeField()
    since = serializers.DateTimeField()


class ControlPlaneLaneSerializer(ExactOutputSerializer):
    label = serializers.CharField()  # type: ignore[assignment]  # the lane's label
    enabled = serializers.BooleanField()
    live = serializers.BooleanField()
    last_cycle_at = serializers.DateTimeField(allow_null=True)
    healthy = serializers.BooleanField()


class ControlPlaneContractSerializer(ExactOutputSerializer):
    """The versioned subset a control plane relies on (`control_plane_contract`); a change of
    shape is a new `schema_version`."""

    schema_version = serializers.ChoiceField(choices=[CONTROL_PLANE_SCHEMA])
    as_of = serializers.DateTimeField()
    mode = serializers.CharField()
    trading_enabled = serializers.BooleanField()
    running = serializers.BooleanField()
    kill_switch_engaged = serializers.BooleanField()
    emergency_stop_active = serializers.BooleanField()
    lanes = ControlPlaneLaneSerializer(many=True)
    signal_continuity = serializers.ChoiceField(choices=["ok", "actionable", "unknown"])


def _counters() -> serializers.DictField:
    # open: one entry per `torghut_trading_*` counter series, named without the prefix; a new
    # counter anywhere in the code adds a key
    return serializers.DictField(
        child=serializers.FloatField(), help_text="each trading counter's total, by series name"
    )


class DecisionCountsSerializer(ExactOutputSerializer):
    """Decisions of the last 24 hours by status; a status without any is absent."""

    def get_fields(self) -> dict[str, Any]:
        return {
            status: serializers.IntegerField(min_value=1, required=False)
            for status in DecisionStatus.values
        }


class DependencySerializer(serializers.Serializer[Any]):
    ok = serializers.BooleanField()


class TradingHealthSerializer(serializers.Serializer[Any]):
    """`GET /trading/health`: 200 `ok`, 503 `degraded`; one entry per dependency."""

    status = serializers.ChoiceField(choices=["ok", "degraded"])
    dependencies = serializers.DictField(child=DependencySerializer())


class EvaluationWindowSerializer(ExactOutputSerializer):
    date = serializers.DateField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    timezone = serializers.CharField()


class RiskFlagCountSerializer(ExactOutputSerializer):
    flag = serializers.CharField()
    count = serializers.IntegerField(min_value=0)


class VerdictCountsSerializer(ExactOutputSerializer):
    approve = serializers.IntegerField(min_value=0)
    veto = serializers.IntegerField(min_value=0)
    adjust = serializers.IntegerField(min_value=0)
    abstain = serializers.IntegerField(min_value=0)
    escalate = serializers.IntegerField(min_value=0)
    error = serializers.IntegerField(min_value=0)


class ContributionSerializer(ExactOutputSerializer):
    vetoed = serializers.IntegerField(min_value=0)
    shrunk = serializers.IntegerField(min_value=0)
    passed = serializers.IntegerField(min_value=0)
    shadow = serializers.IntegerField(min_value=0)


class TokensSerializer(ExactOutputSerializer):
    prompt = serializers.IntegerField(min_value=0)
    completion = serializers.IntegerField(min_value=0)


class CalibrationSerializer(ExactOutputSerializer):
    avg_quality_score = serializers.FloatField(allow_null=True)
    samples = serializers.IntegerField(min_value=0)


class MarketContextCountsSerializer(ExactOutputSerializer):
    blocked = serializers.IntegerField(min_value=0)
    shadow = serializers.IntegerField(min_value=0)


class LlmEvaluationSerializer(ExactOutputSerializer):
    """`GET /trading/llm-evaluation` (`trading.selectors.llm.llm_evaluation`)."""

    window = EvaluationWindowSerializer()
    total_reviews = serializers.IntegerField(min_value=0)
    pending_reviews = serializers.IntegerField(min_value=0)
    verdict_counts = VerdictCountsSerializer()
    error_rate = serializers.FloatField()
    avg_confidence = serializers.FloatField(allow_null=True)
    decision_contribution = ContributionSerializer()
    tokens = TokensSerializer()
    top_risk_flags = RiskFlagCountSerializer(many=True)
    calibration_quality = CalibrationSerializer()
    market_context = MarketContextCountsSerializer()


class TradingStatusSerializer(ExactOutputSerializer):
    """`GET /trading/status`: these keys always, each block typed; the blocks lent by the apps
    above trading (`trading.ports.status_section_register`: `order_feed` from the order feed,
    `autonomy` and `evidence_continuity` from autonomy) are added with their own schemas when
    the schema is generated. Closed at the top level: a key nobody named is a schema error."""

    as_of = serializers.DateTimeField()
    enabled = serializers.BooleanField()
    running = serializers.BooleanField()
    last_run = serializers.DateTimeField(allow_null=True)
    last_reconcile = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_null=True, allow_blank=True)
    signal_continuity = SignalContinuitySerializer()
    mode = serializers.CharField()
    autonomy_enabled = serializers.BooleanField()
    kill_switch = KillSwitchStatusSerializer()
    rollback = RollbackSerializer()
    lanes = StatusLaneSerializer(many=True)
    # open: keyed by flag setting (the flag registry's names), each value closed
    feature_flags = serializers.DictField(child=FlagValueSerializer())
    llm = LlmStatusSerializer()
    llm_evaluation = LlmEvaluationSerializer()
    tca = StatusTcaSerializer()
    decisions_24h = DecisionCountsSerializer()
    metrics = _counters()
    control_plane_contract = ControlPlaneContractSerializer()

    def get_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = super().get_fields()
        for name, schema in status_section_schemas().items():
            fields[name] = schema(allow_null=True)
        return fields


class TcaAggregateSerializer(ExactOutputSerializer):
    order_count = serializers.IntegerField(min_value=0)
    avg_slippage_bps = _number()
    total_shortfall_notional = _number()


class TcaStrategyAggregateSerializer(ExactOutputSerializer):
    strategy_id = serializers.IntegerField(allow_null=True)
    order_count = serializers.IntegerField(min_value=0)
    avg_slippage_bps = _number()


class TcaSymbolAggregateSerializer(ExactOutputSerializer):
    symbol = serializers.CharField()
    order_count = serializers.IntegerField(min_value=0)
    avg_slippage_bps = _number()


class MetricsTcaSerializer(ExactOutputSerializer):
    """The cached TCA summary, as `/trading/tca` has it beside its page."""

    summary = TcaAggregateSerializer()
    by_strategy = TcaStrategyAggregateSerializer(many=True)
    by_symbol = TcaSymbolAggregateSerializer(many=True)
    summary_as_of = serializers.DateTimeField()
    summary_since = serializers.DateTimeField()
    summary_max_age_seconds = serializers.IntegerField(min_value=0)


class TradingMetricsSerializer(ExactOutputSerializer):
    """`GET /trading/metrics`."""

    # open: keyed by lane label, each the lane's last cycle counters (see StatusLane)
    lanes = serializers.DictField(
        child=serializers.DictField(), help_text="each lane's last cycle summary, by label"
    )
    decisions_24h = DecisionCountsSerializer()
    tca = MetricsTcaSerializer()
    metrics = _counters()
    control_plane_contract = ControlPlaneContractSerializer()


class KillSwitchOutputSerializer(serializers.Serializer[Any]):
    kill_switch_engaged = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)


class EmergencyStopClearOutputSerializer(serializers.Serializer[Any]):
    emergency_stop_active = serializers.BooleanField(help_text="false: the stop was cleared")
