"""/metrics sums every process's samples in multiprocess mode (web + workers + consumers)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

INCREMENT = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "torghut_site.settings")
django.setup()
from torghut_site.metrics import FEATURE_FLAG_EVALUATIONS
FEATURE_FLAG_EVALUATIONS.labels(flag="f", source="flipt").inc({n})
"""

RENDER = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "torghut_site.settings")
django.setup()
from torghut_site.metrics import render_metrics
print(render_metrics().decode())
"""


def _run(code: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_samples_of_separate_processes_are_summed(tmp_path):
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "TORGHUT_VAR_DIR": str(tmp_path / "var"),
    }
    _run(INCREMENT.format(n=3), env)
    _run(INCREMENT.format(n=4), env)
    text = _run(RENDER, env)
    assert 'torghut_feature_flag_evaluations_total{flag="f",source="flipt"} 7.0' in text
