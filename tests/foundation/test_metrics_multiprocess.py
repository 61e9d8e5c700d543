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


EXPORTER = """
import django, os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "torghut_site.settings")
django.setup()
from torghut_site.metrics import FEATURE_FLAG_EVALUATIONS, metrics_exporter_start
FEATURE_FLAG_EVALUATIONS.labels(flag="exported", source="env").inc(2)
first, second = metrics_exporter_start(), metrics_exporter_start()
print(first, second, flush=True)
time.sleep(30)
"""


def test_a_process_on_its_own_host_serves_its_metrics_on_torghut_metrics_port(tmp_path):
    import socket
    import time

    import requests

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "TORGHUT_VAR_DIR": str(tmp_path / "var"),
        "TORGHUT_METRICS_PORT": str(port),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", EXPORTER], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == [str(port), str(port)]  # started once
        deadline = time.monotonic() + 20
        while True:
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert 'torghut_feature_flag_evaluations_total{flag="exported",source="env"} 2.0' in text
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
