"""A sweep across a real Celery worker (prefork, a private Redis broker, the real RGW for the
dataset), whose pool child is killed with SIGKILL after computing a chunk and before storing it
(`TORGHUT_FAULT_INJECT=sweep_chunk_before_store`, armed once).

With the project's `acks_late` + `reject_on_worker_lost`, the main worker process rejects the
lost message with requeue; a new child runs it again. Exactly the chunk the dead child held is
computed twice, every other chunk once, and the finished report is byte-identical to the
single-process computation of the same sweep.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from autonomy.engine.artifacts import artifact_bytes
from autonomy.models import ResearchTrial, SweepChunk, SweepStatus
from autonomy.services.sweep_data import strategy_entry
from autonomy.services.sweeps import sweep_enqueue, sweep_prepare, sweep_register
from autonomy.sweep import FoldPlanSpec, chunk_evaluate, sweep_report
from autonomy.tests.engine.helpers import signal_rows
from autonomy.trials import TrialHistory
from tests.conftest import ROOT, subprocess_db_dsn
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
