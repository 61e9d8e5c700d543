"""Suite-wide setup. `make test` runs the suite in two pytest-xdist workers: pytest-django gives
each worker its own Postgres test database (`<name>_gw0`, `<name>_gw1`); this gives each its own
Redis database, counting down from TEST_REDIS_URL's. Kafka topics, consumer groups and RGW buckets
are already named per test."""

from __future__ import annotations

import os
import re

import pytest


def pytest_configure(config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    match = re.fullmatch(r"(.*/)(\d+)", url)
    if match:
        db = max(int(match.group(2)) - int(worker[2:]), 0)
        os.environ["TEST_REDIS_URL"] = f"{match.group(1)}{db}"
