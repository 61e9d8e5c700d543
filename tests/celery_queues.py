"""The Celery app on a real broker for tests that look at what was queued: point it at a broker
for a while, and take the messages waiting on a queue off it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from queue import Empty
from typing import Any

from torghut_site.celery import app

QUEUES = ("torghut", "whitepapers", "research")


def _pools_reset() -> None:
    """Celery keeps the broker connection pools; the next send makes them anew for broker_url."""
    app._pool = None  # type: ignore[attr-defined]
    app.amqp._producer_pool = None  # type: ignore[attr-defined]


@contextmanager
def broker_at(url: str) -> Iterator[None]:
    """The app sends to `url` inside the block, to its own broker again after it."""
    before = app.conf.broker_url
    app.conf.broker_url = url  # type: ignore[misc]
    _pools_reset()
    try:
        yield
    finally:
        app.conf.broker_url = before  # type: ignore[misc]
        _pools_reset()


def queue_drain(queue_name: str) -> list[tuple[str, list[Any], dict[str, Any]]]:
    """Every message waiting on `queue_name` in the configured broker (taken off it): its task
    name, positional and keyword arguments."""
    found: list[tuple[str, list[Any], dict[str, Any]]] = []
    with app.connection_for_read() as conn, conn.SimpleQueue(queue_name) as queue:
        while True:
            try:
                message = queue.get(block=False)
            except Empty:
                return found
            args, kwargs, _embed = message.payload
            found.append((message.headers["task"], args, kwargs))
            message.ack()
