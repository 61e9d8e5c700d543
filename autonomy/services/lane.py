"""Running the lane for real: read inputs, run, write artifacts (output dir and object storage),
and record the run in the research ledger.

The ledger row is created first (`running`, with progress updates as the lane goes), and the
outcome is stored in one transaction at the end. The same inputs give the same run id: a run
that already finished is not recorded twice (its artifacts are rewritten, byte-identical); a run
left `running` by a crash is redone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from autonomy.drift import DriftThresholds
from autonomy.engine.artifacts import canonical
from autonomy.engine.backtest import CostModel
from autonomy.engine.progress import Progress, fan_out, no_progress
from autonomy.gates import Readiness
from autonomy.lane import (
    PROMOTION_GATE,
    CandidateSpec,
    LaneInputs,
    LaneOutcome,
    candidate_from_config,
    lane_run_id,
    run_lane,
    skipped_outcome,
)
from autonomy.metrics import LANE_RUNS
from autonomy.models import (
    CandidateStage,
    FoldMetric,
    Promotion,
    PromotionAction,
    ResearchCandidate,
    ResearchRun,
    RunStatus,
    Stage,
    StressMetric,
)
from autonomy.policy import GatePolicy
from autonomy.services.readiness import readiness_probe
from torghut_site.storage import ObjectStoreError, object_put
from trading.signals.types import FEATURE_SCHEMA_VERSION

OBJECT_PREFIX = "autonomy/runs"


def artifact_bytes(value: Any) -> bytes:
    """JSON artifacts: canonical values, sorted keys, 2-space indent, trailing newline (readable
    and still byte-identical run to run). YAML text is written as it is."""
    if isinstance(value, str):
        return value.encode("utf-8")
    text = json.dumps(
        canonical(value), sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False
    )
    return (text + "\n").encode("ascii")


def code_commit() -> str:
    """The checked-out commit (read from .git, no subprocess), else TORGHUT_VERSION."""
    git = Path(settings.BASE_DIR) / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            ref_file = git / ref
            if ref_file.is_file():
                return ref_file.read_text().strip()
            for line in (git / "packed-refs").read_text().splitlines():
                if line.endswith(f" {ref}"):
                    return line.split(" ", 1)[0]
            return ""
        return head
    except OSError:
        return str(settings.TORGHUT_VERSION)


def drift_thresholds() -> DriftThresholds:
    return DriftThresholds(
        max_required_null_rate=settings.TRADING_DRIFT_MAX_REQUIRED_NULL_RATE,
        max_staleness_ms_p95=settings.TRADING_DRIFT_MAX_STALENESS_MS_P95,
        max_duplicate_ratio=settings.TRADING_DRIFT_MAX_DUPLICATE_RATIO,
        max_schema_mismatch_total=settings.TRADING_DRIFT_MAX_SCHEMA_MISMATCH_TOTAL,
        max_model_calibration_error=settings.TRADING_DRIFT_MAX_MODEL_CALIBRATION_ERROR,
        max_model_llm_error_ratio=settings.TRADING_DRIFT_MAX_MODEL_LLM_ERROR_RATIO,
        min_performance_net_pnl=settings.TRADING_DRIFT_MIN_PERFORMANCE_NET_PNL,
        max_performance_drawdown=settings.TRADING_DRIFT_MAX_PERFORMANCE_DRAWDOWN,
        max_performance_cost_bps=settings.TRADING_DRIFT_MAX_PERFORMANCE_COST_BPS,
        max_execution_fallback_ratio=settings.TRADING_DRIFT_MAX_EXECUTION_FALLBACK_RATIO,
        retrain_codes=tuple(settings.TRADING_DRIFT_TRIGGER_RETRAIN_REASON_CODES),
        reselection_codes=tuple(settings.TRADING_DRIFT_TRIGGER_RESELECTION_REASON_CODES),
    )


def costs_from_settings() -> CostModel:
    return CostModel(
        slippage_bps=float(settings.SIMULATED_BROKER_SLIPPAGE_BPS or 0),
        fee_bps=float(settings.SIMULATED_BROKER_FEE_BPS or 0),
        fee_per_share=float(settings.SIMULATED_BROKER_FEE_PER_SHARE or 0),
    )


def write_artifacts(outcome: LaneOutcome, output_dir: Path | None) -> dict[str, dict[str, Any]]:
    """Write every artifact to `output_dir` (when given) and to object storage; the manifest
    path -> {sha256, size, uri}. Storage errors are recorded in the manifest, not raised: the
    output dir and the ledger still hold the run."""
    manifest: dict[str, dict[str, Any]] = {}
    for path, value in sorted(outcome.artifacts.items()):
        data = artifact_bytes(value)
        entry: dict[str, Any] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        if output_dir is not None:
            target = output_dir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            entry["path"] = str(target)
        content_type = "application/yaml" if path.endswith(".yaml") else "application/json"
        try:
            stored = object_put(
                f"{OBJECT_PREFIX}/{outcome.run_id}/{path}", data, content_type=content_type
            )
            entry["uri"] = stored.uri
        except ObjectStoreError as exc:
            entry["storage_error"] = exc.reason
        manifest[path] = entry
    return manifest


def _progress_recorder(run_pk: int) -> Progress:
    def report(done: int, total: int, label: str) -> None:
        ResearchRun.objects.filter(pk=run_pk).update(
            progress_done=done, progress_total=total, progress_label=label[:200]
        )

    return report


@dataclass(frozen=True)
class LaneRun:
    run: ResearchRun
    outcome: LaneOutcome
    recorded: bool  # False: the run was already in the ledger


def _start(
    run_id: str, inputs: LaneInputs, trigger: str, output_dir: Path | None
) -> tuple[ResearchRun, bool]:
    with transaction.atomic():
        run, created = ResearchRun.objects.select_for_update().get_or_create(
            run_id=run_id,
            defaults={
                "trigger": trigger,
                "promotion_target": inputs.promotion_target,
                "gate_policy_version": inputs.gate_policy.policy_version,
                "output_dir": str(output_dir or ""),
                "code_commit": inputs.code_commit,
                "signal_source": inputs.signal_source,
            },
        )
        if not created and run.status != RunStatus.RUNNING:
            return run, False
        return run, True


def _record(
    run: ResearchRun, outcome: LaneOutcome, manifest: dict[str, Any], readiness: dict[str, Any]
) -> ResearchRun:
    spec = outcome.candidate
    report = outcome.artifacts.get("gates/gate-evaluation.json", {})
    with transaction.atomic():
        run = ResearchRun.objects.select_for_update().get(pk=run.pk)
        run.status = outcome.status
        run.recommended_mode = outcome.recommended_mode
        run.artifacts = manifest
        run.gate_report = canonical(report)
        run.recommendation = canonical(outcome.recommendation)
        run.readiness = readiness
        run.gate_report_trace_id = outcome.gate_trace_id
        run.recommendation_trace_id = outcome.recommendation_trace_id
        run.finished_at = timezone.now()
        run.error = ""
        if spec is not None:
            run.strategy_id = spec.name
            run.strategy_name = spec.name
            run.strategy_type = spec.strategy_type
            run.strategy_version = spec.version
            run.spec_hash = outcome.candidate_hash
            run.feature_version = FEATURE_SCHEMA_VERSION
            run.schema_version = FEATURE_SCHEMA_VERSION
            run.dataset_from = (
                datetime.fromisoformat(outcome.dataset_from) if outcome.dataset_from else None
            )
            run.dataset_to = (
                datetime.fromisoformat(outcome.dataset_to) if outcome.dataset_to else None
            )
        run.save()
        if spec is None:
            return run
        metrics = outcome.metrics
        candidate, _ = ResearchCandidate.objects.update_or_create(
            candidate_id=outcome.candidate_id,
            defaults={
                "run": run,
                "candidate_hash": outcome.candidate_hash,
                "strategy_name": spec.name,
                "strategy_type": spec.strategy_type,
                "strategy_version": spec.version,
                "parameter_set": dict(spec.params),
                "decision_count": int(metrics["decision_count"]),
                "trade_count": int(metrics["trade_count"]),
                "symbols_covered": outcome.symbols,
                "universe_definition": {"symbols": list(spec.universe_symbols)},
                "promotion_target": outcome.promotion_target,
                "equity_curve": canonical(outcome.equity_curve),
                "metadata_bundle": {"strategy": spec.as_dict(), "metrics": canonical(metrics)},
                "recommendation_bundle": canonical(outcome.recommendation),
            },
        )
        candidate.fold_metrics.all().delete()
        candidate.stress_metrics.all().delete()
        FoldMetric.objects.bulk_create(
            [
                FoldMetric(
                    candidate=candidate,
                    fold_name=f.name,
                    fold_order=f.order,
                    train_start=datetime.fromisoformat(f.train_from) if f.train_from else None,
                    train_end=datetime.fromisoformat(f.train_to) if f.train_to else None,
                    test_start=datetime.fromisoformat(f.test_from),
                    test_end=datetime.fromisoformat(f.test_to),
                    decision_count=int(f.metrics["decision_count"]),
                    trade_count=int(f.metrics["trade_count"]),
                    gross_pnl=float(f.metrics["gross_pnl"]),
                    net_pnl=float(f.metrics["net_pnl"]),
                    max_drawdown=float(f.metrics["max_drawdown"]),
                    turnover_ratio=float(f.metrics["turnover_ratio"]),
                    cost_bps=float(f.metrics["cost_bps"]),
                    cost_assumptions=canonical(
                        outcome.artifacts["backtest/evaluation-report.json"]["impact_assumptions"]
                    ),
                )
                for f in outcome.folds
            ]
        )
        if outcome.stress is not None:
            StressMetric.objects.bulk_create(
                [
                    StressMetric(
                        candidate=candidate,
                        stress_case=c.case,
                        metric_bundle=canonical(c.as_dict()),
                        pessimistic_pnl_delta=float(c.pnl_delta),
                    )
                    for c in outcome.stress.cases
                ]
            )
        # the lane's recommendation is the first audit row: `hold` (awaiting a human approval) or
        # `deny` (a gate failed); only a human's action can be `promote`
        rec = outcome.recommendation
        if not Promotion.objects.filter(
            candidate=candidate, recommendation_trace_id=outcome.recommendation_trace_id
        ).exists():
            Promotion.objects.create(
                candidate=candidate,
                requested_mode=outcome.promotion_target,
                decision_action=(
                    PromotionAction.DENY if rec.get("action") == "deny" else PromotionAction.HOLD
                ),
                approver="",
                approver_role="lane",
                reason=f"lane recommendation: {rec.get('action', 'hold')}",
                rationale=str(rec.get("rationale", "")),
                evidence_bundle={"recommendation": canonical(rec)},
                recommendation_trace_id=outcome.recommendation_trace_id,
            )
        stage = Stage.POLICY_DRY_RUN if outcome.eligible else Stage.GATE_EVALUATION
        CandidateStage.objects.update_or_create(
            candidate_id=outcome.candidate_id,
            defaults={
                "run_id": outcome.run_id,
                "active_stage": stage,
                "paused": False,
                "last_decision": {"source": "lane", "recommendation": outcome.recommendation},
            },
        )
    return run


def lane_execute(
    *,
    inputs: LaneInputs,
    output_dir: Path | None,
    trigger: str = "cli",
    progress: Progress = no_progress,
) -> LaneRun:
    candidate_from_config(inputs.strategy_config_bytes)  # bad input: refused before recording
    run_id = lane_run_id(inputs)
    run, fresh = _start(run_id, inputs, trigger, output_dir)
    readiness_record: dict[str, Any] = {}

    def probe(spec: CandidateSpec) -> Readiness:
        readiness, record = readiness_probe(spec)
        readiness_record.update(record)
        return readiness

    report = fan_out(progress, _progress_recorder(run.pk)) if fresh else progress
    try:
        outcome = run_lane(inputs, readiness=probe, progress=report)
    except Exception as exc:
        if fresh:
            ResearchRun.objects.filter(pk=run.pk).update(
                status=RunStatus.FAILED,
                error=f"{type(exc).__name__}: {exc}"[:4000],
                finished_at=timezone.now(),
            )
        raise
    manifest = write_artifacts(outcome, output_dir)
    if not fresh:
        return LaneRun(run=run, outcome=outcome, recorded=False)
    run = _record(run, outcome, manifest, readiness_record)
    LANE_RUNS.labels(trigger=trigger, status=run.status).inc()
    from autonomy.services.governance import drift_record

    drift_record(run=run, drift=outcome.artifacts[PROMOTION_GATE]["drift"])
    return LaneRun(run=run, outcome=outcome, recorded=True)


def lane_skip(*, inputs: LaneInputs, output_dir: Path | None, trigger: str) -> LaneRun:
    """Record a window without signals as a `skipped` run with its no-signal artifact."""
    outcome = skipped_outcome(inputs)
    run, fresh = _start(outcome.run_id, inputs, trigger, output_dir)
    manifest = write_artifacts(outcome, output_dir)
    if fresh:
        run = _record(run, outcome, manifest, {})
        LANE_RUNS.labels(trigger=trigger, status=run.status).inc()
    return LaneRun(run=run, outcome=outcome, recorded=fresh)


def policy_inputs(
    *,
    signal_rows: list[dict[str, Any]],
    signals_bytes: bytes,
    strategy_config_bytes: bytes,
    policy: GatePolicy,
    policy_bytes: bytes,
    target: str,
    approval_token_ok: bool,
    folds: int = 1,
    signal_source: str = "file",
) -> LaneInputs:
    return LaneInputs(
        signal_rows=signal_rows,
        signals_bytes=signals_bytes,
        strategy_config_bytes=strategy_config_bytes,
        gate_policy=policy,
        gate_policy_bytes=policy_bytes,
        promotion_target=target,
        approval_token_ok=approval_token_ok,
        folds=folds,
        costs=costs_from_settings(),
        starting_cash=float(settings.SIMULATED_BROKER_STARTING_CASH or 0),
        default_qty=float(settings.TRADING_DEFAULT_QTY or 1),
        code_commit=code_commit(),
        signal_source=signal_source,
        drift=drift_thresholds(),
    )
