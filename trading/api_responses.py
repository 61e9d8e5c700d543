"""Response schemas of the trading status, health, metrics, evaluation and control endpoints, so
that schemathesis's response-conformance check compares their answers with something exact.

`GET /trading/status` and `/trading/metrics` grow blocks as the app grows: their schemas name
the blocks a client relies on (required, typed) and allow further top-level keys.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


def _open_object(**kw: Any) -> serializers.DictField:
    """A JSON object whose keys the schema does not fix."""
    return serializers.DictField(**kw)


class KillSwitchStatusSerializer(serializers.Serializer[Any]):
    active = serializers.BooleanField()
    # named like a Field attribute: mypy sees the clash, DRF does not mind
    source = serializers.CharField(allow_blank=True, allow_null=True)  # type: ignore[assignment]
    reason = serializers.CharField(allow_blank=True, allow_null=True)


class StatusLaneSerializer(serializers.Serializer[Any]):
    label = serializers.CharField()  # type: ignore[assignment]  # the lane's label
    mode = serializers.CharField()
    broker = serializers.CharField()
    enabled = serializers.BooleanField()
    last_cycle_started_at = serializers.DateTimeField(allow_null=True)
    last_cycle_finished_at = serializers.DateTimeField(allow_null=True)
    last_cycle_status = serializers.CharField(allow_blank=True)
    last_cycle_summary = _open_object(help_text="the last cycle's counters")
    last_error = serializers.CharField(allow_blank=True)
    last_reconcile_at = serializers.DateTimeField(allow_null=True)
    signal_continuity = _open_object()


class TradingStatusSerializer(serializers.Serializer[Any]):
    """`GET /trading/status`: these keys always, more blocks beside them (no
    `additionalProperties: false`)."""

    enabled = serializers.BooleanField()
    running = serializers.BooleanField()
    last_run = serializers.DateTimeField(allow_null=True)
    last_reconcile = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_null=True, allow_blank=True)
    signal_continuity = _open_object()
    mode = serializers.CharField()
    autonomy_enabled = serializers.BooleanField()
    kill_switch = KillSwitchStatusSerializer()
    rollback = _open_object()
    lanes = StatusLaneSerializer(many=True)


class DependencySerializer(serializers.Serializer[Any]):
    ok = serializers.BooleanField()


class TradingHealthSerializer(serializers.Serializer[Any]):
    """`GET /trading/health`: 200 `ok`, 503 `degraded`; one entry per dependency."""

    status = serializers.ChoiceField(choices=["ok", "degraded"])
    dependencies = serializers.DictField(child=DependencySerializer())


class TradingMetricsSerializer(serializers.Serializer[Any]):
    """`GET /trading/metrics`: these keys always, more blocks beside them."""

    lanes = serializers.DictField(
        child=serializers.DictField(), help_text="each lane's last cycle summary, by label"
    )
    decisions_24h = serializers.JSONField()
    tca = serializers.DictField(help_text="the cached TCA summary, as `/trading/tca` has it")


class EvaluationWindowSerializer(serializers.Serializer[Any]):
    date = serializers.DateField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    timezone = serializers.CharField()


class RiskFlagCountSerializer(serializers.Serializer[Any]):
    flag = serializers.CharField()
    count = serializers.IntegerField(min_value=0)


class VerdictCountsSerializer(serializers.Serializer[Any]):
    approve = serializers.IntegerField(min_value=0)
    veto = serializers.IntegerField(min_value=0)
    adjust = serializers.IntegerField(min_value=0)
    abstain = serializers.IntegerField(min_value=0)
    escalate = serializers.IntegerField(min_value=0)
    error = serializers.IntegerField(min_value=0)


class ContributionSerializer(serializers.Serializer[Any]):
    vetoed = serializers.IntegerField(min_value=0)
    shrunk = serializers.IntegerField(min_value=0)
    passed = serializers.IntegerField(min_value=0)
    shadow = serializers.IntegerField(min_value=0)


class TokensSerializer(serializers.Serializer[Any]):
    prompt = serializers.IntegerField(min_value=0)
    completion = serializers.IntegerField(min_value=0)


class CalibrationSerializer(serializers.Serializer[Any]):
    avg_quality_score = serializers.FloatField(allow_null=True)
    samples = serializers.IntegerField(min_value=0)


class MarketContextCountsSerializer(serializers.Serializer[Any]):
    blocked = serializers.IntegerField(min_value=0)
    shadow = serializers.IntegerField(min_value=0)


class LlmEvaluationSerializer(serializers.Serializer[Any]):
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


class KillSwitchOutputSerializer(serializers.Serializer[Any]):
    kill_switch_engaged = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)


class EmergencyStopClearOutputSerializer(serializers.Serializer[Any]):
    emergency_stop_active = serializers.BooleanField(help_text="false: the stop was cleared")
