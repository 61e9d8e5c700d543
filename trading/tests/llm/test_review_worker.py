"""The review task on a real broker: the cycle's commit queues `llm_review_run` on Redis, a real
Celery worker process answers it through the local LM server and sends the order."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, subprocess_db_dsn
from torghut_site.celery import app
from trading.models import Execution, LLMDecisionReview, TradeCursor, TradeDecision
from trading.services.cycle import trading_cycle_run
from trading.tests.cycle.conftest import REPLAY_START
from trading.tests.llm.answers import legacy_json

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CELERY = str(Path(sys.executable).parent / "celery")


def _wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _reset_broker_pools() -> None:
    """Drop the connection and producer pools an earlier test opened on another broker
    (Celery builds them once and keeps them across `conf.broker_url` changes). They are dropped,
    not closed: kombu keeps each pool in a registry keyed by the broker URL, and a closed one
    would be handed back once `broker_url` is restored ("Acquire on closed pool")."""
    celery_app: Any = app  # private attributes, untyped
    celery_app._pool = None
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@pytest.fixture
def redis_queue(settings) -> Iterator[str]:
    """The app sends to a queue of this test's own on the test Redis."""
    broker = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    queue = f"llm-review-test-{uuid.uuid4().hex[:8]}"
    before = (app.conf.broker_url, app.conf.task_default_queue)
    app.conf.broker_url = broker  # type: ignore[misc]  # celery-types: read-only property
    app.conf.task_default_queue = queue
    _reset_broker_pools()
    yield queue
    _reset_broker_pools()
    app.conf.broker_url, app.conf.task_default_queue = before  # type: ignore[misc]


def test_a_worker_on_redis_runs_the_review_and_sends_the_order(
    replay_settings, macd_strategy, llm_settings, llm_server, redis_queue, tmp_path
):
    llm_server.queue(legacy_json("approve"))
    # a loaded machine may take a while to start the worker: the review must not expire first
    llm_settings.LLM_REVIEW_DEADLINE_SECONDS = 240
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TRADING_", "LLM_"))},
        "DJANGO_SETTINGS_MODULE": "torghut_site.settings",
        "TORGHUT_ENV_FILE": "/nonexistent",
        "TORGHUT_VAR_DIR": str(tmp_path),
        "DB_DSN": subprocess_db_dsn(),
        "CELERY_BROKER_URL": app.conf.broker_url,
        "LOG_LEVEL": "warning",
        "TRADING_ENABLED": "true",
        "TRADING_KILL_SWITCH_ENABLED": "false",
        "TRADING_EXECUTION_PREFER_LIMIT": "false",
        "LLM_ENABLED": "true",
        "LLM_PROVIDER": "self_hosted",
        "LLM_MODEL": "test-model",
        "LLM_SELF_HOSTED_BASE_URL": llm_server.base_url,
        "LLM_SELF_HOSTED_MODEL": "test-model",
        "LLM_EVALUATION_REPORT": "eval-2026-03",
        "LLM_EFFECTIVE_CHALLENGE_ID": "challenge-7",
        "LLM_SHADOW_COMPLETED_AT": "2026-02-01T00:00:00Z",
        "LLM_MODEL_VERSION_LOCK": "test-model",
        "LLM_COMMITTEE_ENABLED": "false",  # one scripted answer: the single call
    }
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115
    worker = subprocess.Popen(
        [
            CELERY,
            "-A",
            "torghut_site",
            "worker",
            "--pool=solo",
            "-Q",
            redis_queue,
            "-n",
            f"{redis_queue}@test",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
        text=True,
    )
    try:
        TradeCursor.objects.create(
            source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
        )
        result = trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(seconds=30))
        assert (result.pending_review, result.submitted) == (1, 0)
        # the order's row exists from `submitting` on (looked up before any resubmit); the
        # decision reads `submitted` once the broker accepted it
        assert _wait_for(
            lambda: TradeDecision.objects.filter(status="submitted").exists(), timeout=180
        ), (
            LLMDecisionReview.objects.values("status", "verdict", "error").get(),
            (tmp_path / "worker.log").read_text(),
        )
        decision = TradeDecision.objects.get()
        review = LLMDecisionReview.objects.get()
        assert (decision.status, Execution.objects.get().submitted_qty) == (
            "submitted",
            Decimal(10),
        )
        assert (review.status, review.verdict, review.execution_id) == (
            "completed",
            "approve",
            Execution.objects.get().pk,
        )
        assert len(llm_server.completions()) == 1
    finally:
        worker.kill()
        worker.wait(timeout=20)
        log.close()
