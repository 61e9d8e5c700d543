from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers.notify_receiver import NotifyReceiver


@pytest.fixture
def receiver(settings) -> Iterator[NotifyReceiver]:
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
