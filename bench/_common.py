"""Helpers shared by the benchmark scripts: Django set-up, percentiles, JSON results."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def django_setup(settings_module: str = "torghut_site.settings") -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    os.environ.setdefault("LOG_LEVEL", "warning")
    import django

    django.setup()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def spread(values: list[float], digits: int | None = None) -> dict[str, float]:
    """min / median / max of one figure over a benchmark's runs (rounded to `digits` if given)."""
    figures = {"min": min(values), "median": statistics.median(values), "max": max(values)}
    return figures if digits is None else {k: round(v, digits) for k, v in figures.items()}


def write_result(
    name: str, figures: dict[str, Any], table: list[dict[str, Any]] | None = None
) -> Path:
    """bench/results/<name>.json. `table`: the rows `run_all.py` prints for this benchmark, each
    {name, figure, baseline, ratio, unit}; a value is a number, a string, or {min, median, max}
    over runs (printed as a range)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "benchmark": name,
        "measured_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "figures": figures,
    }
    if table is not None:
        payload["table"] = table
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


LOCAL_POSTGRES = "postgresql://postgres:postgres@127.0.0.1:5432"


def scratch_database(name: str) -> str:
    """Drop and create `name` on the local Postgres; returns its DSN (DB_DSN wins when set)."""
    import subprocess

    if os.environ.get("DB_DSN"):
        return os.environ["DB_DSN"]
    for sql in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
        subprocess.run(["psql", f"{LOCAL_POSTGRES}/postgres", "-qc", sql], check=True)
    return f"{LOCAL_POSTGRES}/{name}"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Any, timeout: float, step: float = 0.1) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


class PrivateRedis:
    """A redis-server of the benchmark's own on a free port (never the shared one on 6379, where
    other test runs purge and flush), started by `make test`'s services package."""

    def __init__(self, workdir: str) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: Any = None

    def __enter__(self) -> PrivateRedis:
        import shutil
        import subprocess

        import redis

        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed: run scripts/services.sh up first")
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", self.workdir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)

        def pings() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        if not wait_until(pings, timeout=10):
            raise SystemExit("the benchmark's redis-server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def process_env(dsn: str, var_dir: str, **extra: str) -> dict[str, str]:
    """The environment of a Django process (manage.py, gunicorn, celery) on the bench database."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TRADING_", "LLM_"))},
        "DJANGO_SETTINGS_MODULE": "torghut_site.settings",
        "TORGHUT_ENV_FILE": "/nonexistent",
        "TORGHUT_VAR_DIR": var_dir,
        "DB_DSN": dsn,
        "LOG_LEVEL": "warning",
    }
    env.pop("TORGHUT_FAULT_INJECT", None)
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str]) -> str:
    """`manage.py ARGS` in a fresh process; returns its stdout."""
    import subprocess

    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        check=False,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {args[0]} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout
