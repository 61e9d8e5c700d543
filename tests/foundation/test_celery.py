"""Celery against real brokers: a worker process consumes from Redis (production) and from the
embedded SQLite broker (`make run`), and records its heartbeat in the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from tests.conftest import ROOT
from torghut_site.celery import app
from torghut_site.models import ProcessHeartbeat
from torghut_site.schedule import beat_schedule

CELERY = str(Path(sys.executable).parent / "celery")
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _worker_env(broker: str, tmp_path: Path) -> dict[str, str]:
    db = connection.settings_dict
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRADING_")},
        "DB_DSN": f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DJANGO_SETTINGS_MODULE": "torghut_site.settings",
        "CELERY_BROKER_URL": broker,
        "TORGHUT_VAR_DIR": str(tmp_path),
        "TORGHUT_ENV_FILE": "/nonexistent",
        "LOG_LEVEL": "warning",
    }


def _wait_for(predicate, timeout: float = 40.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def worker(tmp_path, request):
    procs: list[subprocess.Popen[str]] = []
    files: list = []
    logs: list = []

    def start(broker: str, name: str) -> subprocess.Popen[str]:
        log = logs.pop() if logs else open(tmp_path / f"{name}.log", "w")  # noqa: SIM115
        files.append(log)
        proc = subprocess.Popen(
            [
                CELERY,
                "-A",
                "torghut_site",
                "worker",
                "--pool=solo",
                "-Q",
                "torghut",
                "-n",
                name,
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=_worker_env(broker, tmp_path),
            stdout=log,
            stderr=log,
            text=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=20)
    for log in files:
        log.close()


def test_worker_on_redis_records_its_heartbeat_at_start(worker):
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    worker(redis_url, "redis-worker@test")
    assert _wait_for(
        lambda: ProcessHeartbeat.objects.filter(
            kind="celery_worker", name="redis-worker@test"
        ).exists()
    )
    row = ProcessHeartbeat.objects.get(kind="celery_worker", name="redis-worker@test")
    assert row.details == {"event": "ready"}


def test_every_worker_writes_its_own_row_under_its_nodename_and_marks_it_stopped(
    worker, monkeypatch
):
    """Beat's heartbeat task reaches one worker of many: each worker's main process also writes
    its own row (its `-n` nodename) every CELERY_WORKER_HEARTBEAT_SECONDS."""
    monkeypatch.setenv("CELERY_WORKER_HEARTBEAT_SECONDS", "1")
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    procs = [worker(redis_url, "w1@test"), worker(redis_url, "w2@test")]

    def alive(name: str) -> bool:
        row = ProcessHeartbeat.objects.filter(kind="celery_worker", name=name).first()
        return row is not None and row.details == {"event": "alive", "state": "running"}

    assert _wait_for(lambda: alive("w1@test") and alive("w2@test"))
    rows = {r.name: r for r in ProcessHeartbeat.objects.filter(kind="celery_worker")}
    assert {n: (r.pid, r.interval_seconds) for n, r in rows.items()} == {
        "w1@test": (procs[0].pid, 1.0),
        "w2@test": (procs[1].pid, 1.0),
    }
    procs[0].terminate()  # warm shutdown
    procs[0].wait(timeout=30)
    assert ProcessHeartbeat.objects.get(name="w1@test").details == {
        "event": "alive",
        "state": "stopped",
    }


def test_worker_on_the_embedded_broker_runs_a_sent_task(worker, tmp_path, settings):
    broker = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    worker(broker, "embedded-worker@test")
    assert _wait_for(lambda: ProcessHeartbeat.objects.filter(name="embedded-worker@test").exists())
    app.conf.broker_url = broker  # type: ignore[misc]
    try:
        with app.connection_for_write() as conn:
            app.send_task(
                "torghut_site.tasks.worker_heartbeat",
                kwargs={"hostname": "sent-by-test", "event": "beat"},
                queue="torghut",
                connection=conn,
            )
    finally:
        app.conf.broker_url = settings.CELERY_BROKER_URL  # type: ignore[misc]
    assert _wait_for(lambda: ProcessHeartbeat.objects.filter(name="sent-by-test").exists())
    assert ProcessHeartbeat.objects.get(name="sent-by-test").details == {"event": "beat"}


def test_celery_is_configured_for_safe_redelivery(settings):
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert settings.CELERY_VISIBILITY_TIMEOUT_SECONDS > app.conf.task_time_limit


def test_beat_schedule_entries_expire_within_their_period(settings):
    schedule = beat_schedule()
    assert {"ops-worker-heartbeat", "trading-cycle-paper", "trading-reconcile-paper"} <= set(
        schedule
    )
    assert schedule["trading-cycle-paper"]["schedule"] == settings.TRADING_POLL_MS / 1000
    assert schedule["trading-cycle-paper"]["kwargs"] == {"account_label": "paper"}
    for entry in schedule.values():
        assert entry["options"]["expires"] <= entry["schedule"]


def test_beat_scheduler_writes_its_heartbeat(tmp_path, settings):
    from torghut_site.beat import HeartbeatScheduler

    settings.CELERY_WORKER_HEARTBEAT_SECONDS = 1
    scheduler = HeartbeatScheduler(
        app=app, schedule_filename=str(tmp_path / "beat-schedule"), lazy=True
    )
    scheduler._write_heartbeat()
    assert ProcessHeartbeat.objects.filter(kind="celery_beat").count() == 1


def test_beat_scheduler_composes_every_apps_entries(tmp_path):
    """The apps register their entries in AppConfig.ready(); the scheduler composes them when it
    sets up (under `celery beat` the app's configuration is read before Django's apps are)."""
    from torghut_site.beat import HeartbeatScheduler

    scheduler = HeartbeatScheduler(app=app, schedule_filename=str(tmp_path / "beat-schedule"))
    try:
        assert set(beat_schedule()) <= set(scheduler.schedule)
        assert {
            "ops-worker-heartbeat",
            "trading-cycle-paper",
            "trading-reconcile-paper",
            "llm-review-sweep",
            "whitepaper-sweep",
            "autonomy-lane",
            "autonomy-evidence-continuity",
        } <= set(scheduler.schedule)
    finally:
        scheduler.close()
