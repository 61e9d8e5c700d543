"""Helpers shared by the benchmark scripts: Django set-up, percentiles, JSON results."""

from __future__ import annotations

import json
import os
import platform
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


def write_result(name: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "measured_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "figures": figures,
    }
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
