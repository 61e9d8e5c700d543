"""Research work has its own Celery queues: every whitepaper task is routed to `whitepapers`,
the autonomy lane's tasks to `research`, trading and operations tasks stay on `torghut`, and
every way of running torghut (make run, the container entry point with the Kubernetes manifests)
starts a worker for the trading queue and one for the research queues."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.conftest import ROOT
from torghut_site.celery import app

TRADING_TASKS = (
    "trading.tasks.run_trade_cycle",
    "trading.tasks.reconcile",
    "torghut_site.tasks.worker_heartbeat",
)
RESEARCH_TASKS = ("autonomy.tasks.autonomy_lane_tick", "autonomy.tasks.evidence_continuity_check")


def queue_of(task_name: str) -> str:
    return str(app.amqp.router.route({}, task_name)["queue"].name)


def test_every_whitepaper_task_goes_to_the_whitepapers_queue():
    app.loader.import_default_modules()
    names = sorted(n for n in app.tasks if n.startswith("whitepapers."))
    assert names == [
        "whitepapers.tasks.dispatch_agentrun",
        "whitepapers.tasks.process_github_event",
        "whitepapers.tasks.whitepaper_sweep",
    ]
    assert {name: queue_of(name) for name in names} == dict.fromkeys(names, "whitepapers")


def test_trading_tasks_stay_on_the_torghut_queue():
    app.loader.import_default_modules()
    assert {name: queue_of(name) for name in TRADING_TASKS} == dict.fromkeys(
        TRADING_TASKS, "torghut"
    )


def test_autonomy_research_goes_to_the_research_queue():
    app.loader.import_default_modules()
    assert {name: queue_of(name) for name in RESEARCH_TASKS} == dict.fromkeys(
        RESEARCH_TASKS, "research"
    )


def test_a_queued_processing_message_carries_the_whitepapers_routing_key():
    from whitepapers.tasks import process_github_event

    options = app.amqp.router.route({}, process_github_event.name)
    assert options["queue"].routing_key == "whitepapers"


def _worker_queues(script: str) -> list[str]:
    """The -Q of every `celery ... worker` command of a shell script (continued lines joined)."""
    joined = re.sub(r"\\\n\s*", " ", script)
    return [
        match.group(1)
        for line in joined.splitlines()
        if "celery" in line and " worker " in line
        for match in [re.search(r"-Q (\S+)", line)]
        if match
    ]


def test_make_run_supervises_a_worker_per_queue():
    script = (ROOT / "scripts" / "run_local.sh").read_text(encoding="utf-8")
    assert sorted(_worker_queues(script)) == ["torghut", "whitepapers,research"]
    joined = re.sub(r"\\\n\s*", " ", script)
    assert re.search(r"supervise\.sh whitepapers-worker .*--concurrency 1 -Q whitepapers", joined)


def test_the_manifests_deploy_a_worker_per_queue():
    path = Path(ROOT / "deploy" / "k8s" / "worker.yaml")
    queues = {}
    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        [container] = doc["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["worker"]
        env = {item["name"]: item["value"] for item in container.get("env", [])}
        # the entry point's default queue is torghut (deploy/entrypoint.sh CELERY_QUEUES)
        queues[env.get("CELERY_QUEUES", "torghut")] = env.get("CELERY_CONCURRENCY")
    assert queues == {"torghut": "2", "whitepapers,research": "1"}
    entrypoint = (ROOT / "deploy" / "entrypoint.sh").read_text(encoding="utf-8")
    assert '--queues "${CELERY_QUEUES:-torghut}"' in entrypoint
