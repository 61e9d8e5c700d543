"""Input and output shapes of the autonomy API (plain serializers: the services do the work)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from autonomy.models import PromotionMode, RunStatus
from autonomy.selectors import artifact_rows
from torghut_site.drf import ExactInputSerializer, ExactOutputSerializer
from trading.apis_query import (
    CursorQuerySerializer,
    QueryBooleanField,
    next_field,
)

MAX_REASON = 2000

# ------------------------------------------------------------------ input


class RunFilterSerializer(CursorQuerySerializer):
    status = serializers.ChoiceField(choices=RunStatus.values, required=False)
    trigger = serializers.RegexField(r"^[a-z_]{1,32}$", required=False, trim_whitespace=False)


class _ReasonInput(ExactInputSerializer):
    # blank or missing: the service refuses it as `reason_required`
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=MAX_REASON
    )


class PromoteInputSerializer(_ReasonInput):
    mode = serializers.ChoiceField(choices=[PromotionMode.PAPER, PromotionMode.LIVE])
    account_label = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=64
    )


class DenyInputSerializer(_ReasonInput):
    mode = serializers.ChoiceField(choices=PromotionMode.values)


class PromotionReasonInputSerializer(_ReasonInput):
    pass


# ------------------------------------------------------------------ output


class FoldSerializer(serializers.Serializer[Any]):
    fold_name = serializers.CharField()
    fold_order = serializers.IntegerField()
    train_start = serializers.DateTimeField(allow_null=True)
    train_end = serializers.DateTimeField(allow_null=True)
    test_start = serializers.DateTimeField(allow_null=True)
    test_end = serializers.DateTimeField(allow_null=True)
    decision_count = serializers.IntegerField()
    trade_count = serializers.IntegerField()
    gross_pnl = serializers.FloatField()
    net_pnl = serializers.FloatField()
    max_drawdown = serializers.FloatField()
    turnover_ratio = serializers.FloatField()
    cost_bps = serializers.FloatField()
    cost_assumptions = serializers.JSONField()
    regime_label = serializers.CharField()


class StressSerializer(serializers.Serializer[Any]):
    stress_case = serializers.CharField()
    pessimistic_pnl_delta = serializers.FloatField()
    metric_bundle = serializers.JSONField()


class PromotionSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    candidate_id = serializers.CharField(source="candidate.candidate_id")
    decision_action = serializers.CharField()
    requested_mode = serializers.CharField()
    approved_mode = serializers.CharField()
    approver = serializers.CharField()
    approver_role = serializers.CharField()
    reason = serializers.CharField()
    account_label = serializers.CharField()
    paper_candidate_patch_ref = serializers.CharField()
    effective_time = serializers.DateTimeField(allow_null=True)
    rationale = serializers.CharField()
    recommendation_trace_id = serializers.CharField()
    successor_candidate_id = serializers.CharField()
    rollback_candidate_id = serializers.CharField()
    evidence_bundle = serializers.JSONField()
    created_at = serializers.DateTimeField()


class CandidateStageSerializer(serializers.Serializer[Any]):
    active_stage = serializers.CharField()
    paused = serializers.BooleanField()
    run_id = serializers.CharField()
    last_decision = serializers.JSONField()
    updated_at = serializers.DateTimeField()


class CandidateSummarySerializer(serializers.Serializer[Any]):
    candidate_id = serializers.CharField()
    candidate_hash = serializers.CharField()
    strategy_name = serializers.CharField()
    strategy_type = serializers.CharField()
    strategy_version = serializers.CharField()
    promotion_target = serializers.CharField()
    lifecycle_role = serializers.CharField()
    lifecycle_status = serializers.CharField()
    decision_count = serializers.IntegerField()
    trade_count = serializers.IntegerField()


class CandidateSerializer(CandidateSummarySerializer):
    run_id = serializers.CharField(source="run.run_id")
    parameter_set = serializers.JSONField()
    symbols_covered = serializers.JSONField()
    universe_definition = serializers.JSONField()
    equity_curve = serializers.JSONField()
    metadata_bundle = serializers.JSONField()
    recommendation_bundle = serializers.JSONField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    folds = FoldSerializer(source="fold_metrics", many=True)
    stress = StressSerializer(source="stress_metrics", many=True)
    promotions = PromotionSerializer(many=True)
    stage = serializers.SerializerMethodField()

    @extend_schema_field(CandidateStageSerializer(allow_null=True))
    def get_stage(self, obj: Any) -> dict[str, Any] | None:
        stage = self.context.get("stages", {}).get(obj.candidate_id)
        return dict(CandidateStageSerializer(stage).data) if stage is not None else None


class RunProgressSerializer(serializers.Serializer[Any]):
    done = serializers.IntegerField(source="progress_done")
    total = serializers.IntegerField(source="progress_total")
    # a field named like Field.label: fine at run time (the metaclass collects it)
    label = serializers.CharField(source="progress_label")  # type: ignore[assignment]


class RunSummarySerializer(serializers.Serializer[Any]):
    run_id = serializers.CharField()
    status = serializers.CharField()
    trigger = serializers.CharField()
    strategy_name = serializers.CharField()
    strategy_type = serializers.CharField()
    strategy_version = serializers.CharField()
    promotion_target = serializers.CharField()
    recommended_mode = serializers.CharField()
    gate_policy_version = serializers.CharField()
    gate_report_trace_id = serializers.CharField()
    recommendation_trace_id = serializers.CharField()
    recommendation = serializers.JSONField()
    progress = RunProgressSerializer(source="*")
    error = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    candidate_ids = serializers.SerializerMethodField()

    def get_candidate_ids(self, obj: Any) -> list[str]:
        ids = getattr(obj, "candidate_ids", None)  # read with the row by `run_page`
        if ids is not None:
            return [str(candidate_id) for candidate_id in ids]
        return [c.candidate_id for c in obj.candidates.all()]


class RunPageSerializer(serializers.Serializer[Any]):
    """`GET /autonomy/runs`: a cursor page, newest run first."""

    next = next_field()
    results = RunSummarySerializer(many=True)


class RunArtifactSerializer(serializers.Serializer[Any]):
    path = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField(allow_null=True)
    uri = serializers.CharField()
    storage_error = serializers.CharField()


class RunDetailSerializer(RunSummarySerializer):
    code_commit = serializers.CharField()
    spec_hash = serializers.CharField()
    signal_source = serializers.CharField()
    dataset_from = serializers.DateTimeField(allow_null=True)
    dataset_to = serializers.DateTimeField(allow_null=True)
    output_dir = serializers.CharField()
    gate_report = serializers.JSONField()
    readiness = serializers.JSONField()
    artifacts = serializers.SerializerMethodField()
    candidates = CandidateSerializer(many=True)

    @extend_schema_field(RunArtifactSerializer(many=True))
    def get_artifacts(self, obj: Any) -> list[dict[str, Any]]:
        return artifact_rows(obj)


class GateSummarySerializer(serializers.Serializer[Any]):
    gate = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    reasons = serializers.ListField(child=serializers.CharField())


class RecommendationSummarySerializer(serializers.Serializer[Any]):
    action = serializers.CharField(allow_null=True)
    eligible = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())


class LastRunProgressSerializer(serializers.Serializer[Any]):
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]


class LastRunSerializer(serializers.Serializer[Any]):
    run_id = serializers.CharField()
    status = serializers.CharField()
    trigger = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    candidate_id = serializers.CharField(allow_null=True)
    promotion_target = serializers.CharField()
    recommended_mode = serializers.CharField(allow_null=True)
    recommendation = RecommendationSummarySerializer()
    gates_allowed = serializers.BooleanField(allow_null=True)
    gates = GateSummarySerializer(many=True)
    patch_path = serializers.CharField(allow_null=True)
    patch_uri = serializers.CharField(allow_null=True)
    progress = LastRunProgressSerializer()
    error = serializers.CharField()


class GatePolicySerializer(serializers.Serializer[Any]):
    path = serializers.CharField()
    version = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class ChampionSerializer(serializers.Serializer[Any]):
    candidate_id = serializers.CharField()
    strategy_name = serializers.CharField()
    promotion_target = serializers.CharField()
    run_id = serializers.CharField()


class DriftCheckSummarySerializer(serializers.Serializer[Any]):
    run_id = serializers.CharField()
    strategy_name = serializers.CharField()
    checked_at = serializers.DateTimeField()
    reason_codes = serializers.ListField(child=serializers.CharField())
    action = serializers.CharField()
    action_status = serializers.CharField()
    rollback_triggered = serializers.BooleanField()
    rollback_candidate_id = serializers.CharField()


class ContinuitySummarySerializer(serializers.Serializer[Any]):
    checked_at = serializers.DateTimeField()
    passed = serializers.BooleanField()
    runs_checked = serializers.IntegerField()
    failed_runs = serializers.JSONField()


class ContinuityRefreshField(QueryBooleanField):
    def schema_overrides(self) -> dict[str, Any]:
        return {"enum": [False]}


class ContinuityQuerySerializer(serializers.Serializer[Any]):
    refresh = ContinuityRefreshField(
        required=False,
        default=False,
        help_text="only `false`: `true` is refused (400 refresh_requires_post), a GET never "
        "runs the audit",
    )


class ContinuityRefreshInputSerializer(ExactInputSerializer):
    run_limit = serializers.IntegerField(required=False, min_value=1, max_value=50)


class ContinuityReportSerializer(ContinuitySummarySerializer):
    run_limit = serializers.IntegerField()
    run_ids = serializers.ListField(child=serializers.CharField())
    refreshed = serializers.BooleanField()


class AutonomyStatusSerializer(serializers.Serializer[Any]):
    enabled = serializers.BooleanField()
    interval_seconds = serializers.IntegerField()
    signal_lookback_minutes = serializers.IntegerField()
    gate_policy = GatePolicySerializer()
    strategy_config_path = serializers.CharField()
    allow_live_promotion = serializers.BooleanField()
    approval_token_configured = serializers.BooleanField()
    artifact_dir = serializers.CharField()
    last_run = LastRunSerializer(allow_null=True)
    champions = ChampionSerializer(many=True)
    last_drift_check = DriftCheckSummarySerializer(allow_null=True)
    evidence_continuity = ContinuitySummarySerializer(allow_null=True)


class PromotionResultSerializer(serializers.Serializer[Any]):
    created = serializers.BooleanField()
    promotion = PromotionSerializer()
    candidate = CandidateSummarySerializer()


# -- the blocks `/trading/status` carries from this app (`trading.ports`) ----------------------


class LastRunBriefSerializer(ExactOutputSerializer):
    run_id = serializers.CharField()
    status = serializers.ChoiceField(choices=RunStatus.values)
    trigger = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    recommended_mode = serializers.ChoiceField(choices=PromotionMode.values, allow_null=True)
    gates_allowed = serializers.BooleanField(
        allow_null=True, help_text="the gate report's verdict; null before the gates ran"
    )
    error = serializers.CharField(allow_blank=True)


class AutonomyBriefSerializer(ExactOutputSerializer):
    """`autonomy_status_brief`; `GET /trading/autonomy` has the rest."""

    enabled = serializers.BooleanField()
    interval_seconds = serializers.IntegerField()
    last_run = LastRunBriefSerializer(allow_null=True)


class FailedRunSerializer(ExactOutputSerializer):
    run_id = serializers.CharField()
    missing = serializers.ListField(child=serializers.CharField(), help_text="evidence absent")


class ContinuityBriefSerializer(ExactOutputSerializer):
    """The last continuity audit (`evidence_continuity_brief`), null before any."""

    checked_at = serializers.DateTimeField()
    passed = serializers.BooleanField()
    runs_checked = serializers.IntegerField(min_value=0)
    failed_runs = FailedRunSerializer(many=True)
