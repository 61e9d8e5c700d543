"""Sweeps in the ledger (`autonomy.models.Sweep`, `SweepChunk`; what a sweep is: `autonomy.sweep`)
and backtests (a sweep of one setting, computed in-process).

Life of a sweep:
1. `sweep_prepare` builds the spec from the inputs (every setting is tried on two rows first, so
   a parameter the strategy rejects fails here, before anything is recorded) and
   `sweep_register` stores the dataset write-once in object storage and creates the sweep with
   one pending chunk per (setting, fold) — idempotent on the sweep id.
2. Chunks are computed by `sweep_chunk_run`, in-process (`sweep_run_local`) or by Celery tasks
   (`sweep_enqueue`: the sweep goes `running`, the chunk tasks are sent after the commit). A run
   claims its chunk (status `running`, `claimed_by`, `attempts` + 1) unless it is already done:
   a redelivered or duplicated task of a stored chunk computes nothing.
3. `sweep_chunk_store` writes the result once (compare-and-set on the chunk's status): the same
   result again is a no-op, a different one is a conflict counted on the chunk and never stored.
   The store that completes the last chunk counts `chunk_done` up in the same transaction.
4. `sweep_finalize` assembles the report when every chunk is done and writes it with a
   compare-and-set on the sweep's status (`running` -> `done`), so it is written once however many
   workers race; the winner records every setting's trial (`trials_record`, source `sweep`).

A worker killed mid-chunk (kill -9) leaves its chunk `running`: Celery redelivers the task
(`acks_late` + `reject_on_worker_lost`) and it is computed again; `sweep_requeue` sends the tasks
of chunks claimed longer ago than a lease (a whole worker host lost, its messages waiting for the
broker's visibility timeout). Chunks already stored are never computed again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from autonomy.engine.artifacts import artifact_bytes, sha256_hex
from autonomy.engine.backtest import strategy_actions
from autonomy.engine.data import BarFrame
from autonomy.engine.progress import Progress, no_progress
from autonomy.models import ChunkStatus, Sweep, SweepChunk, SweepStatus
from autonomy.selectors import trial_history
from autonomy.services.sweep_data import (
    StrategyEntry,
    backtest_config,
    dataset_bytes,
    dataset_frame,
    dataset_store,
    frame_from_dataset,
)
from autonomy.services.trials import trials_record
from autonomy.sweep import (
    ChunkResult,
    FoldPlanSpec,
    SweepInputError,
    SweepSpec,
    chunk_evaluate,
    spec_from_dict,
    sweep_report,
    sweep_spec,
    sweep_trials,
)
from autonomy.trials import Trial
from torghut_site.faults import fault_point
from trading.strategies.registry import get_strategy

CHUNK_TASK = "autonomy.tasks.sweep_chunk"
FINALIZE_TASK = "autonomy.tasks.sweep_finalize"


@dataclass(frozen=True)
class PreparedSweep:
    spec: SweepSpec
    frame: BarFrame
    data: bytes  # the dataset's canonical JSON


def sweep_prepare(
    *,
    rows: Sequence[dict[str, Any]],
    entry: StrategyEntry,
    params: dict[str, Any],
    grid: Sequence[tuple[str, Sequence[Any]]],
    plan: FoldPlanSpec,
    signal_source: str,
    source_flag: str = "--signals",
) -> PreparedSweep:
    """The spec of a sweep (or a backtest: an empty grid) over `rows`; SweepInputError when it
    cannot be evaluated."""
    if not rows:
        raise SweepInputError("no signal rows to evaluate", flag=source_flag)
    data = dataset_bytes(rows)
    frame = frame_from_dataset(
        data, source=signal_source, timeframe=entry.base_timeframe, universe=entry.universe_symbols
    )
    if len(frame) == 0:
        raise SweepInputError("no valid signal rows for the strategy's universe", flag=source_flag)
    spec = sweep_spec(
        frame,
        family=entry.strategy_type,
        strategy_name=entry.name,
        strategy_version=entry.version,
        timeframe=entry.base_timeframe,
        universe=entry.universe_symbols,
        base_params={**entry.params, **params},
        grid=grid,
        plan=plan,
        config=backtest_config(entry),
        dataset_sha256=hashlib.sha256(data).hexdigest(),
        signal_source=signal_source,
    )
    plugin = get_strategy(spec.family)
    probe = frame.slice(0, min(2, len(frame)))
    for i, setting in enumerate(spec.settings()):
        try:
            strategy_actions(probe, plugin, setting)
        except (ValueError, TypeError, KeyError) as exc:
            flag = "--grid" if grid else "--params"
            raise SweepInputError(f"setting {i} {setting}: {exc}", flag=flag) from exc
    return PreparedSweep(spec=spec, frame=frame, data=data)


def sweep_register(*, prepared: PreparedSweep, now: datetime | None = None) -> Sweep:
    """The sweep's ledger row with its chunks (idempotent: the same spec is the same sweep)."""
    spec = prepared.spec
    sha, key = dataset_store(prepared.data)
    with transaction.atomic():
        sweep, created = Sweep.objects.get_or_create(
            sweep_id=spec.sweep_id,
            defaults={
                "family": spec.family,
                "strategy_name": spec.strategy_name,
                "spec": json.loads(artifact_bytes(spec.as_dict())),
                "dataset_sha256": sha,
                "dataset_key": key,
                "chunk_total": spec.chunk_count,
                "created_at": now or timezone.now(),
            },
        )
        if created:
            SweepChunk.objects.bulk_create(
                [SweepChunk(sweep=sweep, setting_index=s, fold_index=f) for s, f in spec.chunks()],
                ignore_conflicts=True,
            )
    return sweep


def sweep_spec_of(sweep: Sweep) -> SweepSpec:
    spec = spec_from_dict(sweep.spec)
    if spec.sweep_id != sweep.sweep_id:
        raise SweepInputError(f"sweep {sweep.sweep_id}: its stored spec hashes to {spec.sweep_id}")
    return spec


def sweep_frame(sweep: Sweep, spec: SweepSpec) -> BarFrame:
    return dataset_frame(
        key=sweep.dataset_key,
        sha256=sweep.dataset_sha256,
        source=spec.signal_source,
        timeframe=spec.timeframe,
        universe=spec.universe,
    )


def _claim(sweep: Sweep, chunk: tuple[int, int], worker: str, now: datetime) -> bool:
    """Take the chunk unless it is done already (a redelivered task of a stored chunk)."""
    return bool(
        SweepChunk.objects.filter(sweep=sweep, setting_index=chunk[0], fold_index=chunk[1])
        .exclude(status=ChunkStatus.DONE)
        .update(
            status=ChunkStatus.RUNNING,
            claimed_by=worker[:200],
            claimed_at=now,
            attempts=F("attempts") + 1,
        )
    )


def sweep_chunk_store(*, sweep: Sweep, result: ChunkResult, now: datetime | None = None) -> str:
    """Store a chunk's result once: `stored`, `duplicate` (the same result was there) or
    `conflict` (a different result was there; counted, not stored)."""
    payload = json.loads(result.canonical_bytes())
    digest = sha256_hex(payload)
    at = now or timezone.now()
    with transaction.atomic():
        chunk = SweepChunk.objects.filter(
            sweep=sweep, setting_index=result.setting_index, fold_index=result.fold_index
        )
        stored = chunk.exclude(status=ChunkStatus.DONE).update(
            status=ChunkStatus.DONE, result=payload, result_sha256=digest, finished_at=at
        )
        if stored:
            Sweep.objects.filter(pk=sweep.pk).update(chunk_done=F("chunk_done") + 1)
            return "stored"
        existing = chunk.values_list("result_sha256", flat=True).first()
        if existing is None:
            raise SweepInputError(f"sweep {sweep.sweep_id} has no chunk {result.setting_index}, "
                                  f"{result.fold_index}")  # fmt: skip
        # integrity hashes, not secrets; compared like every digest here (tests/security)
        if hmac.compare_digest(existing, digest):
            return "duplicate"
        chunk.update(conflict_count=F("conflict_count") + 1, conflict_sha256=digest)
        return "conflict"


def sweep_chunk_run(*, sweep_id: str, setting_index: int, fold_index: int, worker: str = "") -> str:
    """Compute and store one chunk (module doc); returns the store's outcome, or `already_done`
    / `not_running`."""
    sweep = Sweep.objects.get(sweep_id=sweep_id)
    if sweep.status not in (SweepStatus.RUNNING, SweepStatus.PENDING):
        return "not_running"
    chunk = (setting_index, fold_index)
    if not _claim(sweep, chunk, worker, timezone.now()):
        return "already_done"
    spec = sweep_spec_of(sweep)
    result = chunk_evaluate(spec, sweep_frame(sweep, spec), chunk)
    fault_point("sweep_chunk_before_store")
    outcome = sweep_chunk_store(sweep=sweep, result=result)
    if outcome == "stored":
        sweep_finalize(sweep_id=sweep_id)  # a no-op until the last chunk is in
    return outcome


def chunk_results(sweep: Sweep) -> list[ChunkResult]:
    rows = SweepChunk.objects.filter(sweep=sweep, status=ChunkStatus.DONE).order_by(
        "setting_index", "fold_index"
    )
    return [ChunkResult.from_dict(r) for r in rows.values_list("result", flat=True) if r]


def sweep_finalize(*, sweep_id: str, now: datetime | None = None) -> bool:
    """Assemble and store the report once every chunk is done (module doc); True for the call
    that wrote it."""
    sweep = Sweep.objects.get(sweep_id=sweep_id)
    if sweep.status != SweepStatus.RUNNING or sweep.chunk_done < sweep.chunk_total:
        return False
    spec = sweep_spec_of(sweep)
    results = chunk_results(sweep)
    history = trial_history(family=spec.family, window_key=spec.window().key)
    report = sweep_report(spec, results, history)
    data = artifact_bytes(report)
    with transaction.atomic():
        won = Sweep.objects.filter(pk=sweep.pk, status=SweepStatus.RUNNING).update(
            status=SweepStatus.DONE,
            report=json.loads(data),
            report_sha256=sha256_hex(data),
            finished_at=now or timezone.now(),
        )
        if won:
            trials_record(trials=sweep_trials(spec, results, source="sweep", source_ref=sweep_id))
    return bool(won)


def sweep_fail(*, sweep_id: str, error: str) -> bool:
    return bool(
        Sweep.objects.filter(
            sweep_id=sweep_id, status__in=[SweepStatus.PENDING, SweepStatus.RUNNING]
        ).update(status=SweepStatus.FAILED, error=error[:4000], finished_at=timezone.now())
    )


def _start(sweep: Sweep) -> None:
    Sweep.objects.filter(pk=sweep.pk, status=SweepStatus.PENDING).update(status=SweepStatus.RUNNING)
    sweep.refresh_from_db()


def sweep_run_local(*, sweep: Sweep, progress: Progress = no_progress) -> Sweep:
    """Every chunk not yet done computed in this process, then the report."""
    _start(sweep)
    open_chunks = list(
        SweepChunk.objects.filter(sweep=sweep)
        .exclude(status=ChunkStatus.DONE)
        .order_by("setting_index", "fold_index")
        .values_list("setting_index", "fold_index")
    )
    done = sweep.chunk_done
    for s, f in open_chunks:
        sweep_chunk_run(sweep_id=sweep.sweep_id, setting_index=s, fold_index=f, worker="local")
        done += 1
        progress(done, sweep.chunk_total, f"sweep {sweep.sweep_id[:8]}")
    sweep_finalize(sweep_id=sweep.sweep_id)  # a sweep whose chunks were all done before
    sweep.refresh_from_db()
    return sweep


Sender = Callable[[str, list[Any]], None]  # (task name, args): sends one task message


def _app_send(name: str, args: list[Any]) -> None:
    from torghut_site.celery import app  # routed by CELERY_TASK_ROUTES (`research`)

    app.send_task(name, args=args)


def _send(chunks: Sequence[tuple[int, int]], sweep_id: str, send: Sender = _app_send) -> None:
    for s, f in chunks:
        send(CHUNK_TASK, [sweep_id, s, f])


def sweep_enqueue(*, sweep: Sweep, send: Sender = _app_send) -> int:
    """The sweep `running` and a task for each chunk not done, sent after the commit; returns
    how many. A sweep whose chunks are all done gets its finalize task."""
    _start(sweep)
    if sweep.status != SweepStatus.RUNNING:
        return 0
    chunks = list(
        SweepChunk.objects.filter(sweep=sweep)
        .exclude(status=ChunkStatus.DONE)
        .order_by("setting_index", "fold_index")
        .values_list("setting_index", "fold_index")
    )
    sweep_id = sweep.sweep_id
    if chunks:
        transaction.on_commit(lambda: _send(chunks, sweep_id, send))
    else:
        transaction.on_commit(lambda: send(FINALIZE_TASK, [sweep_id]))
    return len(chunks)


def sweep_requeue(
    *,
    sweep_id: str,
    older_than: timedelta,
    now: datetime | None = None,
    send: Sender = _app_send,
) -> int:
    """Send again the tasks of chunks claimed before `now - older_than` and still not done
    (their worker is gone); returns how many."""
    cutoff = (now or timezone.now()) - older_than
    stale = list(
        SweepChunk.objects.filter(sweep__sweep_id=sweep_id, status=ChunkStatus.RUNNING)
        .filter(Q(claimed_at__lt=cutoff) | Q(claimed_at__isnull=True))
        .order_by("setting_index", "fold_index")
        .values_list("setting_index", "fold_index")
    )
    if stale:
        transaction.on_commit(lambda: _send(stale, sweep_id, send))
    return len(stale)


@dataclass(frozen=True)
class BacktestOutcome:
    report: dict[str, Any]
    trial: Trial
    recorded: bool


def backtest_run(
    *, prepared: PreparedSweep, progress: Progress = no_progress, record: bool = True
) -> BacktestOutcome:
    """One setting over the fold plan, in-process; its trial recorded (source `backtest`)."""
    spec = prepared.spec
    if len(spec.settings()) != 1:
        raise SweepInputError("a backtest evaluates one setting")
    chunks = spec.chunks()
    results = []
    for done, chunk in enumerate(chunks, start=1):
        results.append(chunk_evaluate(spec, prepared.frame, chunk))
        progress(done, len(chunks), f"backtest fold {chunk[1] + 1}")
    [trial] = sweep_trials(spec, results, source="backtest", source_ref=spec.sweep_id)
    history = trial_history(family=spec.family, window_key=spec.window().key)
    report = sweep_report(spec, results, history, source="backtest")
    new = trials_record(trials=[trial]) if record else 0
    return BacktestOutcome(report=report, trial=trial, recorded=new > 0)


def backtest_record(*, outcome: BacktestOutcome) -> bool:
    """Record a backtest's trial (after its artifacts are written); True when it is new."""
    return trials_record(trials=[outcome.trial]) > 0
