"""`make run`'s supervisor (scripts/supervise.sh): a process that exits is restarted with a
capped exponential backoff and logged; SIGTERM stops the process and the supervisor."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import ROOT

SUPERVISE = str(ROOT / "scripts" / "supervise.sh")


def _start(*command: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [SUPERVISE, "demo", *command],
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_process_that_exits_is_restarted_with_a_capped_backoff(tmp_path: Path):
    runs = tmp_path / "runs"
    proc = _start(
        "sh", "-c", f"echo run >> {runs}; exit 3",
        SUPERVISE_BACKOFF_INITIAL="0.2", SUPERVISE_BACKOFF_MAX="0.4",
    )  # fmt: skip
    try:
        assert _wait(lambda: runs.exists() and len(runs.read_text().splitlines()) >= 4)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0
    lines = stderr.splitlines()
    assert lines[:3] == [
        "[supervise] demo exited with status 3 after 0s; restarting in 0.2s",
        "[supervise] demo exited with status 3 after 0s; restarting in 0.4s",
        "[supervise] demo exited with status 3 after 0s; restarting in 0.4s",
    ]
    assert lines[-1] == "[supervise] demo stopped"


def test_sigterm_stops_the_running_process_and_the_supervisor(tmp_path: Path):
    pid_file = tmp_path / "pid"
    proc = _start("sh", "-c", f"echo $$ > {pid_file}; exec sleep 300")
    assert _wait(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    child = int(pid_file.read_text())
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert stderr.splitlines() == ["[supervise] demo stopped"]
    assert _wait(lambda: not Path(f"/proc/{child}").exists(), 5)  # not left running
