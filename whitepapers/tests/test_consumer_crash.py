"""kill -9 of `run_whitepaper_consumer` after its batch committed and before its offsets were
stored: the restarted consumer gets the batch again and stores nothing twice."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from orderfeed.tests.conftest import create_topics, kafka_bootstrap  # noqa: F401 - fixture
from tests.conftest import manage_in_test_db
from whitepapers.models import GithubIssueEvent
from whitepapers.tests.workflow import envelope, issue_payload

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.services]

EVENTS = 5


def _consumer(
    bootstrap: str, topic: str, group: str, tmp_path: Path, fault: str | None
) -> subprocess.CompletedProcess[str]:
    env = {
        "WHITEPAPER_WORKFLOW_ENABLED": "true",
        "WHITEPAPER_KAFKA_ENABLED": "true",
        "WHITEPAPER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "WHITEPAPER_KAFKA_TOPIC": topic,
        "WHITEPAPER_KAFKA_DLQ_TOPIC": f"{topic}.dlq",
        "WHITEPAPER_KAFKA_GROUP_ID": group,
        "WHITEPAPER_KAFKA_GROUP_INSTANCE_ID": "whitepaper-0",
        "WHITEPAPER_KAFKA_AUTO_OFFSET_RESET": "earliest",
        "WHITEPAPER_KAFKA_POLL_MS": "100",
        # processing tasks go to a throw-away embedded broker: this test is about intake
        "CELERY_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}",
    }
    return manage_in_test_db(
        "run_whitepaper_consumer", "--idle-exit-seconds", "1", env=env, fault=fault
    )


def test_kill_9_before_offsets_then_restart_stores_each_event_once(
    kafka_bootstrap,  # noqa: F811 - fixture
    tmp_path,
):
    from confluent_kafka import Producer

    topic = f"wp-crash-{uuid.uuid4().hex[:10]}"
    create_topics(kafka_bootstrap, (topic, 1), (f"{topic}.dlq", 1))
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for n in range(1, EVENTS + 1):
        payload = envelope(
            issue_payload(url=f"https://papers.example.org/{n}.pdf", number=n), delivery=f"k-{n}"
        )
        producer.produce(topic, value=json.dumps(payload).encode())
    assert producer.flush(10) == 0
    group = f"wp-crash-{uuid.uuid4().hex[:8]}"

    killed = _consumer(kafka_bootstrap, topic, group, tmp_path, "whitepaper_before_store_offsets")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    stored = GithubIssueEvent.objects.count()
    assert stored == EVENTS  # the batch committed; its offsets were never stored

    restarted = _consumer(kafka_bootstrap, topic, group, tmp_path, None)
    assert restarted.returncode == 0, restarted.stderr
    stats = json.loads(restarted.stdout.strip().splitlines()[-1])
    assert stats["messages"] == EVENTS  # redelivered …
    assert GithubIssueEvent.objects.count() == EVENTS  # … and stored once
    assert sorted(GithubIssueEvent.objects.values_list("delivery_id", flat=True)) == [
        f"k-{n}" for n in range(1, EVENTS + 1)
    ]

    again = _consumer(kafka_bootstrap, topic, group, tmp_path, None)
    assert json.loads(again.stdout.strip().splitlines()[-1])["messages"] == 0  # offsets stored


def test_command_refuses_to_run_when_the_workflow_is_off():
    from tests.conftest import manage

    result = manage("run_whitepaper_consumer", env={"WHITEPAPER_WORKFLOW_ENABLED": "false"})
    assert result.returncode == 1
    assert "WHITEPAPER_WORKFLOW_ENABLED and WHITEPAPER_KAFKA_ENABLED must both be true" in (
        result.stderr
    )
