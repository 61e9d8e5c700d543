"""A sweep across a real Celery worker (prefork, a private Redis broker, the real RGW for the
dataset), whose pool child is killed with SIGKILL after computing a chunk and before storing it
(`TORGHUT_FAULT_INJECT=sweep_chunk_before_store`, armed once).

With the project's `acks_late` + `reject_on_worker_lost`, the main worker process rejects the
lost message with requeue; a new child runs it again. Exactly the chunk the dead child held is
computed twice, every other chunk once, and the finished report is byte-identical to the
single-process computation of the same sweep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from autonomy.engine.artifacts import artifact_bytes
from autonomy.models import ResearchTrial, Sweep, SweepChunk, SweepStatus
from autonomy.services.sweep_data import strategy_entry
from autonomy.services.sweeps import (
    sweep_enqueue,
    sweep_prepare,
    sweep_register,
    sweep_requeue,
)
from autonomy.sweep import FoldPlanSpec, chunk_evaluate, sweep_report
from autonomy.tests.engine.helpers import signal_rows
from autonomy.trials import TrialHistory
from tests.conftest import ROOT, manage_in_test_db, subprocess_db_dsn
from tests.faults.conftest import CELERY, beat, private_redis, wait_for  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.services]

STRATEGY = b"""strategies:
  - name: macd-dist
    type: legacy_macd_rsi
    version: 1.0.0
    enabled: true
    base_timeframe: 1Min
    params:
      buy_rsi_threshold: 45
      sell_rsi_threshold: 55
"""


def worker_env(tmp_path: Path, broker: str, bucket: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADING_", "LLM_"))}
    env.pop("TORGHUT_FAULT_INJECT", None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "torghut_site.settings",
            "TORGHUT_ENV_FILE": "/nonexistent",
            "TORGHUT_VAR_DIR": str(tmp_path),
            "DB_DSN": subprocess_db_dsn(),
            "CELERY_BROKER_URL": broker,
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "text",
            "WHITEPAPER_CEPH_ENDPOINT": os.environ["TEST_S3_ENDPOINT"],
            "WHITEPAPER_CEPH_BUCKET": bucket,
            "WHITEPAPER_CEPH_ACCESS_KEY": os.environ["TEST_S3_ACCESS_KEY"],
            "WHITEPAPER_CEPH_SECRET_KEY": os.environ["TEST_S3_SECRET_KEY"],
            **extra,
        }
    )
    return env


def test_worker_child_killed_mid_sweep_recomputes_only_its_chunk(
    private_redis,  # noqa: F811
    s3_artifacts,
    tmp_path: Path,
):
    rows = signal_rows({"AAPL": 1, "MSFT": 2}, 120)
    marker = tmp_path / "fault-fired"
    env = worker_env(
        tmp_path,
        private_redis.url,
        s3_artifacts.bucket,
        TORGHUT_FAULT_INJECT="sweep_chunk_before_store",
        TORGHUT_FAULT_INJECT_ONCE_FILE=str(marker),
    )
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [CELERY, "-A", "torghut_site", "worker", "--pool=prefork", "--concurrency=1",
             "-Q", "research", "-n", "sweep@faults", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "--loglevel=info"],
            cwd=ROOT, env=env, stdout=log, stderr=log, text=True,
        )  # fmt: skip
    try:
        prepared = sweep_prepare(
            rows=rows,
            entry=strategy_entry(STRATEGY, None),
            params={},
            grid=[("buy_rsi_threshold", [35, 45, 50])],
            plan=FoldPlanSpec("rolling", 2),
            signal_source="file",
        )
        sweep = sweep_register(prepared=prepared)  # the dataset goes to the RGW bucket
        client = beat(private_redis.url)  # a producer on the private broker

        def send(name: str, args: list) -> None:
            client.send_task(name, args=args, queue="research")  # the route of autonomy.tasks.*

        assert sweep_enqueue(sweep=sweep, send=send) == 6

        def done() -> bool:
            sweep.refresh_from_db()
            return sweep.status == SweepStatus.DONE

        assert wait_for(done, timeout=25), log_path.read_text()
        assert marker.exists()
        text = log_path.read_text()
        assert "WorkerLostError" in text and "signal 9 (SIGKILL)" in text, text
        assert worker.poll() is None, text  # the main worker lived on
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)  # its pool children exit with it
            worker.wait(timeout=20)

    attempts = sorted(SweepChunk.objects.values_list("attempts", flat=True))
    assert attempts == [1, 1, 1, 1, 1, 2]  # only the chunk the dead child held ran again
    assert set(SweepChunk.objects.values_list("conflict_count", flat=True)) == {0}
    assert ResearchTrial.objects.filter(source="sweep", source_ref=sweep.sweep_id).count() == 3

    spec = prepared.spec
    single = [chunk_evaluate(spec, prepared.frame, c) for c in spec.chunks()]
    expected = artifact_bytes(sweep_report(spec, single, TrialHistory(spec.family)))
    assert artifact_bytes(sweep.report) == expected


def test_a_whole_worker_killed_its_chunk_is_requeued_after_its_claim_lapses(
    private_redis,  # noqa: F811
    s3_artifacts,
    tmp_path: Path,
):
    """Two solo workers, both armed; the first to reach the point dies entirely (its message
    waits in Redis's `unacked` set for the visibility timeout). The survivor computes every
    other chunk; `sweep_requeue` (what the waiting `sweep` command calls for claims older than
    the task time limit; here the lease is 0) sends the dead worker's chunk again."""
    rows = signal_rows({"AAPL": 1, "MSFT": 2}, 120)
    marker = tmp_path / "fault-fired"
    env = worker_env(
        tmp_path,
        private_redis.url,
        s3_artifacts.bucket,
        TORGHUT_FAULT_INJECT="sweep_chunk_before_store",
        TORGHUT_FAULT_INJECT_ONCE_FILE=str(marker),
    )
    procs = {}
    for name in ("a", "b"):
        with open(tmp_path / f"worker-{name}.log", "w") as log:
            procs[name] = subprocess.Popen(
                [CELERY, "-A", "torghut_site", "worker", "--pool=solo", "-Q", "research",
                 "-n", f"{name}@sweep", "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "--loglevel=info"],
                cwd=ROOT, env=env, stdout=log, stderr=log, text=True,
            )  # fmt: skip
    client = beat(private_redis.url)

    def send(name: str, args: list) -> None:
        client.send_task(name, args=args, queue="research")

    try:
        prepared = sweep_prepare(
            rows=rows,
            entry=strategy_entry(STRATEGY, None),
            params={},
            grid=[("buy_rsi_threshold", [35, 45, 50])],
            plan=FoldPlanSpec("rolling", 2),
            signal_source="file",
        )
        sweep = sweep_register(prepared=prepared)
        assert sweep_enqueue(sweep=sweep, send=send) == 6

        def logs() -> str:
            return "\n".join((tmp_path / f"worker-{n}.log").read_text() for n in procs)

        assert wait_for(lambda: any(p.poll() is not None for p in procs.values()), 25), logs()
        [dead] = [n for n, p in procs.items() if p.poll() is not None]
        assert procs[dead].returncode == -signal.SIGKILL
        assert wait_for(lambda: Sweep.objects.get(pk=sweep.pk).chunk_done == 5, 20), logs()
        [held] = SweepChunk.objects.filter(sweep=sweep, status="running")
        assert (held.claimed_by, held.attempts) == (f"{dead}@sweep", 1)
        # the dead worker's message stays unacknowledged (the survivor acks each of its own)
        assert wait_for(lambda: private_redis.client().hlen("unacked") == 1, 10)

        assert sweep_requeue(sweep_id=sweep.sweep_id, older_than=timedelta(0), send=send) == 1
        assert wait_for(lambda: Sweep.objects.get(pk=sweep.pk).status == SweepStatus.DONE, 20)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=20)
    held.refresh_from_db()
    survivor = "b" if dead == "a" else "a"
    assert (held.claimed_by, held.attempts, held.status) == (f"{survivor}@sweep", 2, "done")
    assert sorted(SweepChunk.objects.values_list("attempts", flat=True)) == [1, 1, 1, 1, 1, 2]
    sweep.refresh_from_db()
    spec = prepared.spec
    single = [chunk_evaluate(spec, prepared.frame, c) for c in spec.chunks()]
    expected = artifact_bytes(sweep_report(spec, single, TrialHistory(spec.family)))
    assert artifact_bytes(sweep.report) == expected


def test_sweep_command_on_celery_waits_for_the_workers_and_prints_the_leaderboard(
    private_redis,  # noqa: F811
    s3_artifacts,
    tmp_path: Path,
):
    signals = tmp_path / "signals.json"
    signals.write_text(json.dumps(signal_rows({"AAPL": 1}, 120)))
    config = tmp_path / "strategy.yaml"
    config.write_bytes(STRATEGY)
    env = worker_env(tmp_path, private_redis.url, s3_artifacts.bucket)
    with open(tmp_path / "worker.log", "w") as log:
        worker = subprocess.Popen(
            [CELERY, "-A", "torghut_site", "worker", "--pool=solo", "-Q", "research",
             "-n", "cmd@sweep", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=log, stderr=log, text=True,
        )  # fmt: skip
    try:
        done = manage_in_test_db(
            "sweep", "--strategy-config", str(config), "--signals", str(signals),
            "--grid", "buy_rsi_threshold=35,45", "--folds", "2", "--workers", "celery",
            "--timeout", "60", env=env,
        )  # fmt: skip
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=20)
    assert done.returncode == 0, done.stdout + done.stderr
    sweep = Sweep.objects.get()
    lines = done.stdout.splitlines()
    assert lines[0] == f"sweep {sweep.sweep_id} legacy_macd_rsi done 4/4 chunks"
    assert lines[1].split()[:3] == ["rank", "setting", "params"]
    assert len(lines) == 4 and {ln.split()[2] for ln in lines[2:]} == {
        "buy_rsi_threshold=35",
        "buy_rsi_threshold=45",
    }
    assert set(SweepChunk.objects.values_list("claimed_by", flat=True)) == {"cmd@sweep"}
