"""A DSPy runtime whose artifact is not promoted: `migrate` still works on a fresh database, and
then the system check, the Celery worker and every trade cycle refuse with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import ROOT, manage
from trading.models import TradeCursor, TradeDecision
from trading.services.cycle import trading_cycle_run
from trading.tests.cycle.conftest import REPLAY_START

UNPROMOTED = "ab" * 32
DSPY_SHADOW = {"LLM_DSPY_RUNTIME_MODE": "shadow", "LLM_DSPY_ARTIFACT_HASH": UNPROMOTED}
CELERY = str(Path(sys.executable).parent / "celery")


def test_migrate_works_on_a_fresh_database_with_a_dspy_mode_and_check_then_refuses(tmp_path):
    env = {"TORGHUT_VAR_DIR": str(tmp_path), **DSPY_SHADOW}
    migrated = manage("migrate", "--noinput", "-v0", env=env, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "torghut.sqlite3").exists()

    checked = manage("check", "--database", "default", env=env)
    assert checked.returncode == 1
    assert (
        f"(trading.E001) LLM_DSPY_RUNTIME_MODE=shadow but LLM_DSPY_ARTIFACT_HASH={UNPROMOTED} "
        "is not a stored, promoted DSPy artifact"
    ) in checked.stderr


def test_a_worker_refuses_to_start_while_the_artifact_is_not_promoted(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TRADING_", "DB_", "LLM_"))},
        "DJANGO_SETTINGS_MODULE": "torghut_site.settings",
        "TORGHUT_ENV_FILE": "/nonexistent",
        "TORGHUT_VAR_DIR": str(tmp_path),
        **DSPY_SHADOW,
    }
    assert manage("migrate", "--noinput", "-v0", env=env, timeout=120).returncode == 0
    worker = subprocess.run(
        [CELERY, "-A", "torghut_site", "worker", "--pool=solo", "-Q", "torghut",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert worker.returncode == 1, worker.stderr
    assert (
        "torghut worker refuses to start: LLM_DSPY_RUNTIME_MODE=shadow but "
        f"LLM_DSPY_ARTIFACT_HASH={UNPROMOTED} is not a stored, promoted DSPy artifact "
        "(compile, evaluate and promote one with `manage.py dspy`, or set "
        "LLM_DSPY_RUNTIME_MODE=disabled) [trading.E001]"
    ) in worker.stderr


@pytest.mark.django_db
def test_the_trade_cycle_decides_nothing_while_the_artifact_is_not_promoted(
    replay_settings, macd_strategy
):
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    at = REPLAY_START + timedelta(seconds=30)
    replay_settings.LLM_DSPY_RUNTIME_MODE = "shadow"
    replay_settings.LLM_DSPY_ARTIFACT_HASH = UNPROMOTED
    result = trading_cycle_run(account_label="paper", now=at)
    assert result.status == "dspy_artifact_not_promoted"
    assert result.error == (
        f"LLM_DSPY_RUNTIME_MODE=shadow but LLM_DSPY_ARTIFACT_HASH={UNPROMOTED} is not a "
        "stored, promoted DSPy artifact [trading.E001]"
    )
    assert TradeDecision.objects.count() == 0

    replay_settings.LLM_DSPY_RUNTIME_MODE = "disabled"
    assert trading_cycle_run(account_label="paper", now=at).status == "ok"
    assert TradeDecision.objects.count() == 1  # the signal waited for the cycle that could run
