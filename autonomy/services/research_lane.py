"""Running the research lane (`autonomy.research_lane`; not an account lane, `trading.lanes`) for
real: read inputs, run, write artifacts (output dir and object storage), and record the run in
the research ledger.

The ledger row is created first (`running`, with progress updates as the lane goes, and the
inputs its run id covers), and the outcome is stored in one transaction at the end. The same
inputs give the same run id: a run that already finished is not recorded twice, its stored
evidence is replayed (verified, never rewritten: `autonomy.services.artifacts`); a run left
`running` by a crash is redone and must reproduce whatever it had already written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from autonomy.drift import DriftThresholds
from autonomy.engine.artifacts import canonical
from autonomy.engine.backtest import CostModel
from autonomy.engine.portfolio import AllocatorCaps
from autonomy.engine.progress import Progress, fan_out, no_progress
from autonomy.gates import Readiness
from autonomy.lane_inputs import (
    CandidateBook,
    LaneInputError,
    LaneInputs,
    book_from_config,
    lane_run_inputs,
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
from autonomy.research_lane import (
    EVALUATION,
    EVIDENCE,
    PROMOTION_GATE,
    LaneOutcome,
    run_lane,
    skipped_outcome,
)
from autonomy.run_inputs import RunInputs, run_id_for
from autonomy.selectors import trial_history
from autonomy.services.artifacts import (
    evidence_replay,
    evidence_write,
    output_dir_check,
    replayed_outcome,
)
from autonomy.services.governance import drift_record
from autonomy.services.readiness import readiness_probe
from autonomy.services.trials import trials_record
from torghut_site.flags import flag_enabled
from trading.signals.types import FEATURE_SCHEMA_VERSION


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
    run_id: str, inputs: LaneInputs, run_inputs: RunInputs, trigger: str, output_dir: Path | None
) -> tuple[ResearchRun, bool]:
    with transaction.atomic():
        run, created = ResearchRun.objects.select_for_update().get_or_create(
            run_id=run_id,
            defaults={
                "inputs": run_inputs.as_dict(),
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


def _record_run(
    run: ResearchRun,
    outcome: LaneOutcome,
    manifest: dict[str, Any],
    manifest_sha256: str,
    readiness: dict[str, Any],
) -> ResearchRun:
    """The ledger row's outcome (within `_record`'s transaction)."""
    book = outcome.candidate
    report = outcome.artifacts.get("gates/gate-evaluation.json", {})
    run = ResearchRun.objects.select_for_update().get(pk=run.pk)
    run.status = outcome.status
    run.recommended_mode = outcome.recommended_mode
    run.artifacts = manifest
    run.manifest_sha256 = manifest_sha256
    run.gate_report = canonical(report)
    run.recommendation = canonical(outcome.recommendation)
    run.readiness = readiness
    run.gate_report_trace_id = outcome.gate_trace_id
    run.recommendation_trace_id = outcome.recommendation_trace_id
    run.finished_at = timezone.now()
    run.error = ""
    if book is not None:
        run.strategy_id = book.name
        run.strategy_name = book.name
        run.strategy_type = book.strategy_type
        run.strategy_version = book.version
        run.spec_hash = outcome.candidate_hash
        run.feature_version = FEATURE_SCHEMA_VERSION
        run.schema_version = FEATURE_SCHEMA_VERSION
        run.dataset_from = (
            datetime.fromisoformat(outcome.dataset_from) if outcome.dataset_from else None
        )
        run.dataset_to = datetime.fromisoformat(outcome.dataset_to) if outcome.dataset_to else None
    run.save()
    return run


def _record_candidate(
    run: ResearchRun, outcome: LaneOutcome, book: CandidateBook
) -> ResearchCandidate:
    """The run's candidate row (within `_record`'s transaction)."""
    metrics = outcome.metrics
    candidate, _ = ResearchCandidate.objects.update_or_create(
        candidate_id=outcome.candidate_id,
        defaults={
            "run": run,
            "candidate_hash": outcome.candidate_hash,
            "strategy_name": book.name,
            "strategy_type": book.strategy_type,
            "strategy_version": book.version,
            "parameter_set": (
                dict(book.specs[0].params)
                if book.single
                else {s.name: dict(s.params) for s in book.specs}
            ),
            "decision_count": int(metrics["decision_count"]),
            "trade_count": int(metrics["trade_count"]),
            "symbols_covered": outcome.symbols,
            "universe_definition": {"symbols": list(book.universe_symbols)},
            "promotion_target": outcome.promotion_target,
            "equity_curve": canonical(outcome.equity_curve),
            "metadata_bundle": {
                "strategy": book.as_dict(),
                # what the candidate holds: every strategy with its version
                "strategies": [s.as_dict() for s in book.specs],
                "member_metrics": canonical(
                    outcome.artifacts.get(EVALUATION, {}).get("members", {})
                ),
                "metrics": canonical(metrics),
                "overfitting": canonical(outcome.artifacts.get(EVIDENCE, {}).get("overfitting")),
            },
            "recommendation_bundle": canonical(outcome.recommendation),
        },
    )
    return candidate


def _record_folds_and_stress(candidate: ResearchCandidate, outcome: LaneOutcome) -> None:
    """The candidate's fold and stress metrics, replacing any from an earlier attempt."""
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


def _record_lane_audit(candidate: ResearchCandidate, outcome: LaneOutcome) -> None:
    """The lane's recommendation as the candidate's first audit row, and its orchestration
    stage."""
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


def _record(
    run: ResearchRun,
    outcome: LaneOutcome,
    manifest: dict[str, Any],
    manifest_sha256: str,
    readiness: dict[str, Any],
) -> ResearchRun:
    """The outcome into the research ledger, in one transaction: the run row, its candidate,
    fold and stress metrics, the lane's audit row and the candidate's stage."""
    with transaction.atomic():
        run = _record_run(run, outcome, manifest, manifest_sha256, readiness)
        book = outcome.candidate
        if book is None:
            return run
        candidate = _record_candidate(run, outcome, book)
        _record_folds_and_stress(candidate, outcome)
        _record_lane_audit(candidate, outcome)
        trials_record(trials=outcome.trials)
    return run


Compute = Callable[[Callable[[CandidateBook], Readiness], Progress], LaneOutcome]


def lane_execute(
    *,
    inputs: LaneInputs,
    output_dir: Path | None,
    trigger: str = "cli",
    progress: Progress = no_progress,
) -> LaneRun:
    book_from_config(inputs.strategy_config_bytes)  # bad input: refused before recording
    return _lane_run(
        inputs=inputs,
        output_dir=output_dir,
        trigger=trigger,
        progress=progress,
        compute=lambda probe, report: run_lane(inputs, readiness=probe, progress=report),
    )


def lane_skip(*, inputs: LaneInputs, output_dir: Path | None, trigger: str) -> LaneRun:
    """Record a window without signals as a `skipped` run with its no-signal artifact."""
    return _lane_run(
        inputs=inputs,
        output_dir=output_dir,
        trigger=trigger,
        progress=no_progress,
        compute=lambda probe, report: skipped_outcome(inputs),
    )


def _lane_run(
    *,
    inputs: LaneInputs,
    output_dir: Path | None,
    trigger: str,
    progress: Progress,
    compute: Compute,
) -> LaneRun:
    """Replay the stored run when its id is in the ledger and its evidence verifies; else compute
    it, write its evidence once and (a new run) record it."""
    run_inputs = lane_run_inputs(inputs)
    run_id = run_id_for(run_inputs)
    output_dir_check(output_dir=output_dir, run_id=run_id)
    run, fresh = _start(run_id, inputs, run_inputs, trigger, output_dir)
    if not fresh:
        replay = evidence_replay(
            run_id=run_id,
            inputs=run_inputs,
            manifest_sha256=run.manifest_sha256,
            output_dir=output_dir,
        )
        if replay is not None:
            return LaneRun(run=run, outcome=replayed_outcome(replay), recorded=False)
    readiness_record: dict[str, Any] = {}

    def probe(book: CandidateBook) -> Readiness:
        readiness, record = readiness_probe(book)
        readiness_record.update(record)
        return readiness

    report = fan_out(progress, _progress_recorder(run.pk)) if fresh else progress
    recorded = {
        path: str(entry.get("sha256", ""))
        for path, entry in (run.artifacts if isinstance(run.artifacts, dict) else {}).items()
    }
    try:
        outcome = compute(probe, report)
        evidence = evidence_write(
            outcome=outcome, inputs=run_inputs, output_dir=output_dir, recorded=recorded
        )
    except Exception as exc:
        if fresh:
            ResearchRun.objects.filter(pk=run.pk).update(
                status=RunStatus.FAILED,
                error=f"{type(exc).__name__}: {exc}"[:4000],
                finished_at=timezone.now(),
            )
        raise
    if not fresh:
        return LaneRun(run=run, outcome=outcome, recorded=False)
    run = _record(run, outcome, evidence.entries, evidence.manifest_sha256, readiness_record)
    LANE_RUNS.labels(trigger=trigger, status=run.status).inc()
    if PROMOTION_GATE in outcome.artifacts:
        drift_record(run=run, drift=outcome.artifacts[PROMOTION_GATE]["drift"])
    return LaneRun(run=run, outcome=outcome, recorded=True)


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
    """The lane's inputs from settings and the ledger (the families' recorded trials)."""
    try:
        families = sorted({s.strategy_type for s in book_from_config(strategy_config_bytes).specs})
    except LaneInputError:
        families = []  # the run stops on the config; no history to read
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
        trial_history={family: trial_history(family=family) for family in families},
        allocator=allocator_caps(),
    )


def allocator_caps() -> AllocatorCaps | None:
    """The allocator's caps from settings when TRADING_ALLOCATOR_ENABLED, else None."""
    if not flag_enabled("TRADING_ALLOCATOR_ENABLED"):
        return None

    def floats(caps: Mapping[str, Decimal]) -> dict[str, float]:
        return {key: float(value) for key, value in sorted(caps.items())}

    max_notional = settings.TRADING_ALLOCATOR_MAX_SYMBOL_NOTIONAL
    max_pct = settings.TRADING_ALLOCATOR_MAX_SYMBOL_PCT_EQUITY
    return AllocatorCaps(
        strategy_notional=floats(settings.TRADING_ALLOCATOR_STRATEGY_NOTIONAL_CAPS),
        symbol_notional=floats(settings.TRADING_ALLOCATOR_SYMBOL_NOTIONAL_CAPS),
        max_symbol_notional=float(max_notional) if max_notional is not None else None,
        max_symbol_pct_equity=float(max_pct) if max_pct is not None else None,
        symbol_groups=dict(sorted(settings.TRADING_ALLOCATOR_SYMBOL_CORRELATION_GROUPS.items())),
        group_notional=floats(settings.TRADING_ALLOCATOR_CORRELATION_GROUP_NOTIONAL_CAPS),
    )
