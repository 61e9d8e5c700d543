"""Suite-wide setup. `make test` runs the suite in two pytest-xdist workers: pytest-django gives
each worker its own Postgres test database (`<name>_gw0`, `<name>_gw1`); this gives each its own
Redis database, counting down from TEST_REDIS_URL's. Kafka topics, consumer groups and RGW buckets
are already named per test."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

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


@pytest.fixture
def receiver(settings: Any) -> Iterator[Any]:
    """A real HTTP receiver the notification settings point at (tests/servers/)."""
    from tests.servers.notify_receiver import NotifyReceiver

    server = NotifyReceiver()
    server.start()
    server.configure(settings)
    yield server
    server.stop()


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Celery tasks run in-process when the transaction that queued them commits."""
    from torghut_site.celery import app as celery_app

    before = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = before


@pytest.fixture
def celery_redis_broker() -> Iterator[None]:
    """The Celery app on the test Redis broker, its queues emptied before and after."""
    from tests.celery_queues import QUEUES, broker_at, queue_drain

    with broker_at(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")):
        for name in QUEUES:
            queue_drain(name)
        yield
        for name in QUEUES:
            queue_drain(name)
