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


LAG_WRITER = """
import django, os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "torghut_site.settings")
if {setup}:  # the site app's ready(): the start-up sweep and the exit hook
    django.setup()
from orderfeed.metrics import CONSUMER_LAG
from torghut_site.metrics import FEATURE_FLAG_EVALUATIONS
CONSUMER_LAG.labels(topic="t", partition="{partition}").set({lag})
FEATURE_FLAG_EVALUATIONS.labels(flag="dead", source="env").inc()
print(os.getpid(), flush=True)
if {wait}:
    time.sleep(60)
"""


def test_gauges_of_dead_processes_are_swept_and_a_clean_exit_drops_its_own(tmp_path):
    """`torghut_trading_order_feed_consumer_lag` (livesum) of a consumer killed with -9 is gone
    after the next process's start-up sweep; a process that exits normally drops its own at exit;
    a live process's gauge and every counter stay."""
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "TORGHUT_VAR_DIR": str(tmp_path / "var"),
    }

    def writer(partition: int, lag: int) -> subprocess.Popen[str]:
        # no Django set-up: nothing of it is needed to write, and it takes seconds to start
        code = LAG_WRITER.format(partition=partition, lag=lag, wait=True, setup=False)
        proc = subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert int(proc.stdout.readline()) == proc.pid  # its samples are written
        return proc

    killed, alive = writer(0, 7), writer(1, 5)
    try:
        # set up like every process, and exits normally: its lag goes with it
        _run(LAG_WRITER.format(partition=2, lag=3, wait=False, setup=True), env)
        assert f"gauge_livesum_{killed.pid}.db" in os.listdir(tmp_path)
        killed.kill()  # kill -9: it cannot drop its own files
        killed.wait(timeout=10)
        assert f"gauge_livesum_{killed.pid}.db" in os.listdir(tmp_path)

        text = _run(RENDER, env)  # a new process: its start-up sweeps the dead pid

        lag = [
            line
            for line in text.splitlines()
            if line.startswith("torghut_trading_order_feed_consumer_lag{")
        ]
        assert lag == ['torghut_trading_order_feed_consumer_lag{partition="1",topic="t"} 5.0']
        assert f"gauge_livesum_{killed.pid}.db" not in os.listdir(tmp_path)
        # counters of dead processes still count (a sum must not go backwards)
        assert 'torghut_feature_flag_evaluations_total{flag="dead",source="env"} 3.0' in text
    finally:
        for proc in (killed, alive):
            proc.kill()
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
