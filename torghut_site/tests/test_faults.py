"""`fault_point`: SIGKILL at a named point, every time or (with a marker file) once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

REACH = "from torghut_site.faults import fault_point; fault_point('p'); print('survived')"


def _reach(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TORGHUT_FAULT_INJECT")}
    return subprocess.run(
        [sys.executable, "-c", REACH],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_no_fault_configured_is_a_no_op():
    result = _reach()
    assert (result.returncode, result.stdout) == (0, "survived\n")


def test_another_point_is_a_no_op():
    result = _reach(TORGHUT_FAULT_INJECT="q")
    assert (result.returncode, result.stdout) == (0, "survived\n")


def test_the_point_kills_every_process_that_reaches_it():
    for _ in range(2):
        result = _reach(TORGHUT_FAULT_INJECT="p")
        assert (result.returncode, result.stdout) == (-signal.SIGKILL, "")


def test_once_file_kills_only_the_first_process(tmp_path: Path):
    marker = tmp_path / "crashed"
    first = _reach(TORGHUT_FAULT_INJECT="p", TORGHUT_FAULT_INJECT_ONCE_FILE=str(marker))
    assert (first.returncode, first.stdout) == (-signal.SIGKILL, "")
    assert marker.is_file()  # created before the kill
    second = _reach(TORGHUT_FAULT_INJECT="p", TORGHUT_FAULT_INJECT_ONCE_FILE=str(marker))
    assert (second.returncode, second.stdout) == (0, "survived\n")


def test_once_file_does_not_arm_another_point(tmp_path: Path):
    marker = tmp_path / "crashed"
    result = _reach(TORGHUT_FAULT_INJECT="q", TORGHUT_FAULT_INJECT_ONCE_FILE=str(marker))
    assert (result.returncode, result.stdout) == (0, "survived\n")
    assert not marker.exists()
