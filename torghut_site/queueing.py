"""Queueing a Celery task by its name.

A service asks for work without importing its app's `tasks` module: the tasks import the
services, so an import the other way would close a circle. The task is looked up by name in the
Celery app's registry (the apps' `tasks` modules are loaded by the app's autodiscovery the first
time a name is missing) and sent with `apply_async`, exactly as `.delay` sends it: the routes of
CELERY_TASK_ROUTES choose its queue, and under `task_always_eager` (the whitepaper tests'
`eager_celery` fixture) it runs in-process.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from django.db import transaction

from torghut_site.celery import app


class UnknownTaskError(LookupError):
    """No installed app defines a task of this name."""


def registered_task(name: str) -> Task[Any, Any]:
    """The task registered under `name`, loading the installed apps' tasks modules if needed."""
    if name not in app.tasks:
        app.autodiscover_tasks(force=True)  # imports each installed app's tasks module
    try:
        return app.tasks[name]
    except KeyError:
        raise UnknownTaskError(name) from None


def task_send(name: str, *args: Any, **kwargs: Any) -> None:
    """Queue the task `name` now (inside a task, or where no transaction is open)."""
    registered_task(name).apply_async(args=args, kwargs=kwargs)


def task_after_commit(name: str, *args: Any, **kwargs: Any) -> None:
    """Queue the task `name` once the current transaction commits (at once outside one).

    The name is checked now, so a misspelt task fails in the caller, not after the commit."""
    task = registered_task(name)
    transaction.on_commit(lambda: task.apply_async(args=args, kwargs=kwargs))
