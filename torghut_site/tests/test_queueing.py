"""torghut_site.queueing: a task queued by name reaches the broker on the queue its routes name,
only after the commit, and runs in-process under eager Celery, as `.delay` did."""

from __future__ import annotations

import pytest

from tests.celery_queues import QUEUES, queue_drain
from torghut_site.celery import app
from torghut_site.models import ProcessHeartbeat
from torghut_site.queueing import UnknownTaskError, registered_task, task_after_commit, task_send

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("task", "args", "queue_name"),
    [
        ("trading.tasks.llm_review_run", [41], "torghut"),
        ("trading.tasks.cancel_open_orders_all_lanes", [], "torghut"),
        ("whitepapers.tasks.dispatch_agentrun", ["run-1"], "whitepapers"),
        ("whitepapers.tasks.process_github_event", [42], "whitepapers"),
        ("autonomy.tasks.autonomy_lane_tick", [], "research"),
    ],
)
def test_a_task_queued_after_commit_goes_to_its_routed_queue(
    celery_redis_broker, task, args, queue_name, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        task_after_commit(task, *args)
    assert len(callbacks) == 1
    # nothing leaves before the commit
    assert [queue_drain(name) for name in QUEUES] == [[], [], []]
    callbacks[0]()
    assert {name: queue_drain(name) for name in QUEUES} == {
        name: [(task, args, {})] if name == queue_name else [] for name in QUEUES
    }


def test_task_send_queues_at_once_with_keyword_arguments(celery_redis_broker):
    task_send("torghut_site.tasks.worker_heartbeat", hostname="sent@test", event="beat")
    assert queue_drain("torghut") == [
        ("torghut_site.tasks.worker_heartbeat", [], {"hostname": "sent@test", "event": "beat"})
    ]


def test_under_eager_celery_the_task_runs_when_the_callbacks_run(
    django_capture_on_commit_callbacks,
):
    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            task_after_commit(
                "torghut_site.tasks.worker_heartbeat", hostname="eager@test", event="beat"
            )
            assert not ProcessHeartbeat.objects.filter(name="eager@test").exists()
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = before
    row = ProcessHeartbeat.objects.get(name="eager@test")
    assert row.details == {"event": "beat"}


def test_an_unknown_task_name_fails_in_the_caller(django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(UnknownTaskError, match=r"^trading\.tasks\.no_such_task$"),
    ):
        task_after_commit("trading.tasks.no_such_task", 1)
    assert callbacks == []


def test_a_name_is_found_without_importing_the_tasks_module_first():
    task = registered_task("whitepapers.tasks.dispatch_agentrun")
    assert task.name == "whitepapers.tasks.dispatch_agentrun"
    assert task.soft_time_limit == 300
