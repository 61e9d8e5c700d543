"""Fixtures for the research lane: the shipped sample inputs and a lane runner."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from tests.conftest import flipt, flipt_server  # noqa: F401  (the Flipt stand-in)
from whitepapers.tests.conftest import fs_artifacts, s3_artifacts, s3_client  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_SIGNALS = ROOT / "tests" / "fixtures" / "walkforward_signals.json"
SAMPLE_STRATEGY = ROOT / "config" / "autonomous-strategy-sample.yaml"
SAMPLE_POLICY = ROOT / "config" / "autonomous-gate-policy.json"
PRODUCTION_POLICY = ROOT / "config" / "autonomy-gates-v3.json"  # the original's gates 0-7
# what the lane writes on the sample inputs (paper recommended, so the patch is there)
SAMPLE_ARTIFACTS = [
    "backtest/baseline-evaluation-report.json",
    "backtest/evaluation-report.json",
    "backtest/walkforward-results.json",
    "gates/gate-evaluation.json",
    "gates/profitability-benchmark-v4.json",
    "gates/profitability-evidence-v4.json",
    "gates/profitability-evidence-validation.json",
    "gates/promotion-evidence-gate.json",
    "gates/promotion-prerequisites.json",
    "gates/recalibration-report.json",
    "gates/rollback-readiness.json",
    "paper-candidate/strategy-configmap-patch.yaml",
    "research/candidate-spec.json",
]


@pytest.fixture(autouse=True)
def own_artifact_store(fs_artifacts, settings, tmp_path: Path) -> None:  # noqa: F811
    """Every test its own object store and artifact dir (a test asking for `s3_artifacts` gets
    a bucket instead): research evidence is write-once, and a store kept from an earlier session
    would hold another version of the code's bytes under the same run ids."""
    settings.TRADING_ARTIFACT_DIR = str(tmp_path / "autonomy-artifacts")


@pytest.fixture
def run_lane_cmd(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """Run `manage.py run_autonomous_lane` in-process; returns its JSON summary."""

    def run(
        *extra: str,
        signals: Path = SAMPLE_SIGNALS,
        strategy: Path = SAMPLE_STRATEGY,
        policy: Path = SAMPLE_POLICY,
        out: Path | None = None,
    ) -> dict[str, Any]:
        from io import StringIO

        stdout = StringIO()
        call_command(
            "run_autonomous_lane",
            "--signals",
            str(signals),
            "--strategy-config",
            str(strategy),
            "--gate-policy",
            str(policy),
            "--output-dir",
            str(out or tmp_path / "lane"),
            "--no-progress",
            *extra,
            stdout=stdout,
        )
        return dict(json.loads(stdout.getvalue()))

    return run
