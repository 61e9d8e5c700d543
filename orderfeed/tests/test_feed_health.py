"""`/trading/health` tells the order feed's truth from Kafka (the consumer group's assignments and
committed offsets against the end of the log), on the real broker and a real
`manage.py run_orderfeed_consumer`: degraded with the exact reason code for each fault, 200
again after recovery. Short grace/stall/probe intervals keep it fast."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from orderfeed.tests.conftest import Feed, create_topics
from tests.conftest import ROOT, subprocess_db_dsn
from torghut_site.models import HeartbeatKind, ProcessHeartbeat
from torghut_site.services import heartbeat_record

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

GRACE, STALL = 1.0, 2.0


@pytest.fixture
def one_partition_feed(settings, kafka_bootstrap) -> Feed:
    suffix = uuid.uuid4().hex[:12]
    feed = Feed(
        kafka_bootstrap,
        f"test.health.{suffix}",
        "",
        f"test.health.dlq.{suffix}",
        f"test-health-{suffix}",
    )
    create_topics(kafka_bootstrap, (feed.topic, 1), (feed.dlq, 1))
    settings.TRADING_ORDER_FEED_ENABLED = True
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = kafka_bootstrap
    settings.TRADING_ORDER_FEED_TOPIC = feed.topic
    settings.TRADING_ORDER_FEED_TOPIC_V2 = ""
    settings.TRADING_ORDER_FEED_GROUP_ID = feed.group
    settings.TRADING_ORDER_FEED_KAFKA = {}
    settings.TRADING_ORDER_FEED_PROBE_INTERVAL_SECONDS = 0.2  # every read probes again
    settings.TRADING_ORDER_FEED_PROBE_TIMEOUT_SECONDS = 2.0
    settings.TRADING_ORDER_FEED_UNASSIGNED_GRACE_SECONDS = GRACE
    settings.TRADING_ORDER_FEED_STALL_SECONDS = STALL
    settings.TRADING_ORDER_FEED_LAG_ALERT = 1000
    # the other dependencies of /trading/health are healthy: a worker and beat heartbeat
    heartbeat_record(kind=HeartbeatKind.CELERY_WORKER, name="w1@test", interval_seconds=3600)
    heartbeat_record(kind=HeartbeatKind.CELERY_BEAT, name="beat", interval_seconds=3600)
    return feed


def health() -> tuple[int, dict[str, Any]]:
    response = APIClient().get("/trading/health")
    return response.status_code, response.json()["dependencies"]["order_feed"]


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> float:
    """Seconds until `predicate` held (fails the test after `timeout`)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    pytest.fail(f"not within {timeout} s")


@pytest.fixture
def consumers(
    one_partition_feed: Feed, tmp_path
) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []
    feed = one_partition_feed

    def start(name: str) -> subprocess.Popen[bytes]:
        env = {
            **{k: v for k, v in os.environ.items() if k != "TORGHUT_FAULT_INJECT"},
            "DJANGO_SETTINGS_MODULE": "torghut_site.settings",
            "DB_DSN": subprocess_db_dsn(),
            "LOG_LEVEL": "info",
            "TRADING_ORDER_FEED_ENABLED": "true",
            "TRADING_ORDER_FEED_BOOTSTRAP_SERVERS": feed.bootstrap,
            "TRADING_ORDER_FEED_TOPIC": feed.topic,
            "TRADING_ORDER_FEED_GROUP_ID": feed.group,
            "TRADING_ORDER_FEED_AUTO_OFFSET_RESET": "earliest",
            "TRADING_ORDER_FEED_POLL_MS": "100",
            "TRADING_ORDER_FEED_DLQ_TOPIC": feed.dlq,
            "KAFKA_CONSUMER_HEARTBEAT_SECONDS": "0.2",
        }
        logs.append(open(tmp_path / f"consumer-{len(procs)}.log", "w"))  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_orderfeed_consumer", "--name", name],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=logs[-1],
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait(timeout=10)
    for log in logs:
        log.close()


def logged_at(path: Path, msg: str) -> float:
    """When the consumer logged `msg` (its JSON log line's timestamp, epoch seconds)."""
    for line in path.read_text().splitlines():
        if line.startswith("{") and json.loads(line).get("msg") == msg:
            return datetime.fromisoformat(json.loads(line)["ts"]).timestamp()
    pytest.fail(f"{msg!r} not logged")


def reasons() -> list[str]:
    return list(health()[1]["reasons"])


def assigned_in_heartbeat(name: str, pid: int) -> bool:
    row = ProcessHeartbeat.objects.filter(kind=HeartbeatKind.ORDERFEED_CONSUMER, name=name).first()
    return row is not None and row.pid == pid and bool(row.details.get("assigned"))


@pytest.mark.slow
def test_unassigned_then_stalled_then_recovered_then_static_rejoin(
    one_partition_feed, consumers, tmp_path
):
    """One consumer's life in one test (~25 s, two consumer start-ups of a few seconds each
    dominate): the faults share the start-ups instead of paying them per fault."""
    feed = one_partition_feed
    # nobody holds the partition: ok within the grace, degraded after it
    code, body = health()
    assert (code, body["ok"], body["reasons"]) == (200, True, [])
    assert [
        (p["partition"], p["assigned"], p["committed"], p["end_offset"]) for p in body["partitions"]
    ] == [(0, False, None, 0)]
    time.sleep(GRACE)
    assert health()[0] == 503
    assert reasons() == ["no_partition_assigned"]

    # a consumer joins and consumes: green
    proc = consumers("c0")
    feed.produce(b"not json")  # dead-lettered, its offset committed like any other
    wait_for(lambda: health()[1]["partitions"][0]["committed"] == 1)
    assert health()[0] == 200

    # the consumer is frozen while records arrive: stalled within STALL_SECONDS
    # (its last progress is the last sample with nothing waiting, just before the stop)
    stopped = time.monotonic()
    os.kill(proc.pid, signal.SIGSTOP)
    feed.produce(b"a", b"b", b"c")
    produced = time.monotonic() - stopped
    detected = wait_for(lambda: reasons() == ["offsets_stalled"], timeout=STALL + 5) + produced
    print(f"offsets_stalled detected {detected:.2f} s after the stop (STALL={STALL})")
    assert STALL - 0.5 <= detected <= STALL + 1.0
    code, body = health()
    assert code == 503
    assert [
        (p["committed"], p["end_offset"], p["lag"], p["stalled"]) for p in body["partitions"]
    ] == [(1, 4, 3, True)]

    # it runs again: green once its offsets move
    os.kill(proc.pid, signal.SIGCONT)
    wait_for(lambda: health()[0] == 200, timeout=10)
    assert health()[1]["partitions"][0]["committed"] == 4

    # kill -9 and restart under the same name: static membership gives the partition back at
    # once (the dead member's session, 30 s, is not waited for)
    proc.kill()
    proc.wait(timeout=10)
    again = consumers("c0")
    wait_for(lambda: assigned_in_heartbeat("c0", again.pid), timeout=25)
    rejoin = logged_at(tmp_path / "consumer-1.log", "partitions assigned") - logged_at(
        tmp_path / "consumer-1.log", "consumer started"
    )
    print(f"restarted consumer held its partition {rejoin:.3f} s after it subscribed")
    assert rejoin < 3.0  # the session timeout is 30 s
    feed.produce(b"d")
    wait_for(lambda: health()[1]["partitions"][0]["committed"] == 5, timeout=10)
    assert health()[0] == 200


def test_kafka_unreachable_is_degraded_within_the_probe_timeout_then_green(
    one_partition_feed, settings
):
    settings.TRADING_ORDER_FEED_UNASSIGNED_GRACE_SECONDS = 60.0
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = "127.0.0.1:1"  # a closed port
    settings.TRADING_ORDER_FEED_PROBE_TIMEOUT_SECONDS = 0.5
    started = time.monotonic()
    code, body = health()
    assert time.monotonic() - started < 2.0
    assert (code, body["ok"], body["reasons"]) == (503, False, ["kafka_unreachable"])
    # the public endpoint says that the probe failed, not Kafka's text (it can name hosts)
    assert body["error"] == "kafka probe failed"

    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = one_partition_feed.bootstrap
    time.sleep(0.2)  # the failed sample is older than the probe interval: probed again
    code, body = health()
    assert (code, body["reasons"], body["error"]) == (200, [], "")


def test_lag_above_threshold_and_the_probes_gauges(one_partition_feed, settings):
    settings.TRADING_ORDER_FEED_UNASSIGNED_GRACE_SECONDS = 60.0
    settings.TRADING_ORDER_FEED_STALL_SECONDS = 60.0
    settings.TRADING_ORDER_FEED_LAG_ALERT = 5
    one_partition_feed.produce(*[b"x"] * 5)
    assert health()[0] == 200  # 5 waiting: at the threshold, not above

    one_partition_feed.produce(b"x")
    code, body = health()
    assert (code, body["reasons"], body["lag"]) == (503, ["lag_above_threshold"], 6)

    metrics = APIClient().get("/metrics").content.decode()
    group, topic = one_partition_feed.group, one_partition_feed.topic
    assert (
        f'torghut_kafka_consumer_group_lag{{group="{group}",partition="0",topic="{topic}"}} 6.0'
        in metrics
    )
    assert (
        "torghut_kafka_consumer_group_partition_assigned"
        f'{{group="{group}",partition="0",topic="{topic}"}} 0.0' in metrics
    )
    assert f'torghut_kafka_consumer_group_probe_up{{group="{group}"}} 1.0' in metrics
    assert 'torghut_trading_order_feed_degraded{reason="lag_above_threshold"} 1.0' in metrics
    assert 'torghut_trading_order_feed_degraded{reason="offsets_stalled"} 0.0' in metrics
    assert "torghut_trading_order_feed_stalled 0.0" in metrics

    status = APIClient()
    from django.contrib.auth import get_user_model

    status.force_authenticate(get_user_model().objects.create_user("ops"))
    feed = status.get("/trading/status").json()["order_feed"]["health"]
    assert (feed["reasons"], feed["lag"]) == (["lag_above_threshold"], 6)
