"""Object storage (S3, Ceph RGW) unreachable during whitepaper intake, then back.

Real processes: `run_whitepaper_consumer` records a GitHub issue event from Kafka and queues its
processing; a real Celery worker (private Redis) downloads the PDF and stores it in S3 — through a
TCP proxy in front of the shared RGW that the test holds closed (connection refused, like an RGW
that is down) and then opens. The shared RGW itself is never touched; the bucket is the test's.

What must hold while S3 is down: the event is not lost and not failed — it stays `pending` with
the storage error and its attempt number in `detail`, and is retried with backoff; nothing else is
written (no document, version, content or run, no object). Once S3 is back the next attempt
completes the intake exactly once: one document, one stored version, one content row, one run,
one object in the bucket, one AgentRun submitted.

Found here (before the fix): the first attempt recorded a `failed` run (`storage_upload_failed`)
that only a keyword comment or an admin requeue could revive — a storage blip became a failure
needing a person. The adapter now classifies storage errors (`ObjectStoreError.retryable`) and the
processing task retries unreachable storage (WHITEPAPER_STORAGE_RETRY_ATTEMPTS).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from confluent_kafka import Producer

from orderfeed.tests.conftest import create_topics, kafka_bootstrap  # noqa: F401 - fixture
from tests.conftest import manage_in_test_db
from tests.faults.conftest import TcpProxy, trading_env, wait_for
from tests.servers.jangar_server import JangarServer
from whitepapers.models import (
    GithubIssueEvent,
    WhitepaperAnalysisRun,
)
from whitepapers.storage import pdf_object_key
from whitepapers.tests.conftest import s3_client  # noqa: F401 - fixture
from whitepapers.tests.pdfs import make_pdf
from whitepapers.tests.workflow import PaperHost, envelope, intake_row_counts, issue_payload

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.services]

PAPER = make_pdf(["Order flow imbalance at the open", "Results: hit rate 54 percent"])
KEY = pdf_object_key(hashlib.sha256(PAPER).hexdigest())
RETRY_LINE = re.compile(r"object storage unavailable \(attempt (\d+) of 20\), retrying")


@pytest.fixture
def bucket(s3_client) -> Any:  # noqa: F811 - the imported fixture
    """A fresh bucket on the shared RGW, emptied and removed afterwards."""
    name = f"torghut-faults-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        for item in s3_client.list_objects_v2(Bucket=name).get("Contents", []):
            s3_client.delete_object(Bucket=name, Key=item["Key"])
        s3_client.delete_bucket(Bucket=name)


@pytest.fixture
def stand_ins() -> Any:
    host, jangar = PaperHost(), JangarServer()
    host.start()
    jangar.start()
    try:
        yield host, jangar
    finally:
        host.stop()
        jangar.stop()


def test_s3_down_during_intake_event_retried_then_stored_exactly_once(
    private_redis,
    workers,
    kafka_bootstrap,  # noqa: F811 - fixture
    s3_client,  # noqa: F811 - fixture
    bucket,
    stand_ins,
    tmp_path: Path,
):
    host, jangar = stand_ins
    rgw = urlsplit(os.environ["TEST_S3_ENDPOINT"])
    proxy = TcpProxy((rgw.hostname or "127.0.0.1", rgw.port or 80))  # closed: S3 is down
    topic = f"wp-s3-{uuid.uuid4().hex[:10]}"
    create_topics(kafka_bootstrap, (topic, 1), (f"{topic}.dlq", 1))
    workflow = {
        "WHITEPAPER_WORKFLOW_ENABLED": "true",
        "WHITEPAPER_ALLOWED_REPOSITORIES": "proompteng/lab",  # the payload's repository
        "WHITEPAPER_CEPH_ENDPOINT": proxy.url,
        "WHITEPAPER_CEPH_ACCESS_KEY": os.environ["TEST_S3_ACCESS_KEY"],
        "WHITEPAPER_CEPH_SECRET_KEY": os.environ["TEST_S3_SECRET_KEY"],
        "WHITEPAPER_CEPH_BUCKET": bucket,
        "WHITEPAPER_CEPH_TIMEOUT_SECONDS": "2",
        "WHITEPAPER_STORAGE_RETRY_ATTEMPTS": "20",  # the outage never exhausts them here
        "WHITEPAPER_STORAGE_RETRY_BACKOFF_MAX_SECONDS": "1",
        "WHITEPAPER_AGENTRUN_SUBMIT_URL": f"{jangar.url}/v1/agent-runs",
        "JANGAR_API_KEY": "",
        "CELERY_BROKER_URL": private_redis.url,
        # the PDF host is a loopback test server: the test-only allowance, and its address
        "DJANGO_SETTINGS_MODULE": "tests.settings_loopback",
        "WHITEPAPER_PDF_ALLOWED_HOSTS": "127.0.0.1",
    }
    worker = workers("wp", trading_env(tmp_path / "none.csv", tmp_path, private_redis.url,
                                       **workflow), queues="whitepapers")  # fmt: skip
    try:
        _run(worker, proxy, host, jangar, s3_client, bucket, kafka_bootstrap, topic, workflow)
    finally:
        proxy.stop()


def _run(
    worker: Any,
    proxy: TcpProxy,
    host: PaperHost,
    jangar: JangarServer,
    s3: Any,
    bucket: str,
    bootstrap: str,
    topic: str,
    workflow: dict[str, str],
) -> None:
    def objects() -> list[str]:
        return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]

    def event() -> GithubIssueEvent:
        return GithubIssueEvent.objects.get()

    url = host.put("ofi.pdf", PAPER)
    producer = Producer({"bootstrap.servers": bootstrap})
    payload = envelope(issue_payload(url=url, number=7), delivery="s3-outage-1")
    producer.produce(topic, value=json.dumps(payload).encode())
    assert producer.flush(10) == 0
    consumed = manage_in_test_db(
        "run_whitepaper_consumer", "--idle-exit-seconds", "1",
        env={**workflow, "WHITEPAPER_KAFKA_ENABLED": "true",
             "WHITEPAPER_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "WHITEPAPER_KAFKA_TOPIC": topic,
             "WHITEPAPER_KAFKA_DLQ_TOPIC": f"{topic}.dlq", "WHITEPAPER_KAFKA_GROUP_ID": topic,
             "WHITEPAPER_KAFKA_AUTO_OFFSET_RESET": "earliest", "WHITEPAPER_KAFKA_POLL_MS": "100"},
    )  # fmt: skip
    assert consumed.returncode == 0, consumed.stderr
    assert json.loads(consumed.stdout.strip().splitlines()[-1])["messages"] == 1

    def failed_attempts() -> int:
        found = re.match(r"attempt (\d+): ", event().detail)
        return int(found[1]) if found else 0

    # S3 down: attempts fail, the event waits (pending, the error on it), nothing else is written
    assert wait_for(lambda: failed_attempts() >= 2, timeout=60), (event().detail, worker.log())
    down = event()
    assert (down.status, down.reason, down.accepted) == ("pending", "", None)
    assert re.fullmatch(
        rf"attempt \d+: storage_upload_failed: s3://{bucket}/{KEY}: EndpointConnectionError: "
        rf'Could not connect to the endpoint URL: "{proxy.url}/{bucket}/{KEY}"',
        down.detail,
    ), down.detail
    assert intake_row_counts() == dict.fromkeys(intake_row_counts(), 0)
    assert objects() == []
    assert jangar.submits() == []
    assert worker.proc.poll() is None

    # S3 back: the next attempt stores the paper and records the intake, once
    proxy.start()
    assert wait_for(lambda: event().status == "processed", timeout=60), (event(), worker.log())
    done = event()
    assert (done.accepted, done.reason, done.detail) == (True, "accepted", "")
    retries = [int(n) for n in RETRY_LINE.findall(worker.log())]
    assert retries == list(range(1, done.attempts)), worker.log()  # every failed attempt, once
    assert done.attempts >= 3  # two failed while down (at least), the last one stored it
    assert host.downloads("ofi.pdf") == done.attempts
    assert wait_for(lambda: len(jangar.submits()) == 1, timeout=30), worker.log()
    run = WhitepaperAnalysisRun.objects.get()
    assert wait_for(
        lambda: WhitepaperAnalysisRun.objects.get().status == "agentrun_dispatched", timeout=30
    )
    assert done.run_id == run.pk
    version = run.document_version
    assert version is not None
    assert (version.parse_status, version.ceph_bucket, version.ceph_object_key) == (
        "stored",
        bucket,
        KEY,
    )
    assert intake_row_counts() == {
        "documents": 1,
        "versions": 1,
        "contents": 1,
        "runs": 1,
        "agentruns": 1,
    }
    assert objects() == [KEY]
    assert s3.get_object(Bucket=bucket, Key=KEY)["Body"].read() == PAPER
    assert proxy.connections >= 1  # stored through the proxy
    assert worker.proc.poll() is None
