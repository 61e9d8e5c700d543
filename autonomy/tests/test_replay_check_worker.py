"""The nightly replay check as a real Celery worker runs it: the task sent by name over Redis to
the `research` queue (JSON kwargs), executed in another process against the committed rows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection

from autonomy.models import ReplayCheck
from autonomy.tests.test_replay_check import (  # noqa: F401 - fixtures
    DAY,
    kafka_lane,
    minutes,
    sample_rows,
    store_signals,
    strategy,
)
from tests.conftest import ROOT
from torghut_site.celery import app
from trading.services.cycle import trading_cycle_run
from trading.services.reconcile import reconcile_lane

CELERY = str(Path(sys.executable).parent / "celery")
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def research_worker(tmp_path: Path) -> Iterator[str]:
    """A solo worker on the `research` queue of the test Redis, reading the kafka signal rows."""
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    db = connection.settings_dict
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRADING_")},
        "DB_DSN": f"postgresql://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DJANGO_SETTINGS_MODULE": "torghut_site.settings",
        "CELERY_BROKER_URL": redis_url,
        "TORGHUT_VAR_DIR": str(tmp_path),
        "TORGHUT_ENV_FILE": "/nonexistent",
        "LOG_LEVEL": "warning",
        "TRADING_SIGNAL_SOURCE": "kafka",
        "TRADING_SIGNAL_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",  # not contacted: rows in DB
    }
    with open(tmp_path / "worker.log", "w") as log:
        proc = subprocess.Popen(
            [CELERY, "-A", "torghut_site", "worker", "--pool=solo", "-Q", "research",
             "-n", "replay-worker@test", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=log, stderr=log, text=True,
        )  # fmt: skip
        try:
            yield redis_url
        finally:
            proc.kill()
            proc.wait(timeout=20)


def test_a_worker_runs_the_sent_task_and_stores_the_check(kafka_lane, strategy, research_worker):  # noqa: F811
    rows = [r for r in sample_rows() if r["event_ts"] < "2026-03-03T15:00"]
    store_signals(rows)
    for minute in minutes(rows):
        trading_cycle_run(account_label="paper", now=minute + timedelta(seconds=30))
        reconcile_lane(account_label="paper")
    app.conf.broker_url = research_worker  # type: ignore[misc]
    try:
        with app.connection_for_write() as conn:
            app.send_task(
                "autonomy.tasks.replay_check_nightly",
                kwargs={"session_date": DAY.isoformat(), "account_label": "paper"},
                queue="research",
                connection=conn,
            )
    finally:
        app.conf.broker_url = kafka_lane.CELERY_BROKER_URL  # type: ignore[misc]
    assert _wait_for(lambda: ReplayCheck.objects.exists())
    check = ReplayCheck.objects.get()
    assert (check.session_date, check.account_label, check.strategy_id, check.status) == (
        DAY,
        "paper",
        strategy.pk,
        "clean",
    )
    assert check.live_decisions == check.matched == check.replay_decisions > 0
