"""Heartbeats keyed by a stable instance name: one row per process identity across restarts,
expiry (`dead`), retention, the start-up refusal of a live duplicate, static group membership
derived from the name."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone

from torghut_site.kafka.config import ConsumerNotConfigured, consumer_settings_from
from torghut_site.models import HeartbeatKind, ProcessHeartbeat
from torghut_site.selectors import heartbeat_age_metrics, heartbeat_list
from torghut_site.services import (
    InstanceNameInUse,
    heartbeat_claim,
    heartbeat_record,
    heartbeats_prune,
)
from torghut_site.tasks import heartbeats_prune as heartbeats_prune_task

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
KIND = HeartbeatKind.ORDERFEED_CONSUMER


def test_rows_are_keyed_by_the_instance_name_with_pid_host_and_expiry(settings):
    settings.TORGHUT_INSTANCE_NAME = "feed-0"
    with time_machine.travel(T0, tick=False):
        heartbeat_record(kind=KIND, interval_seconds=10)
    with time_machine.travel(T0 + timedelta(seconds=5), tick=False):
        heartbeat_record(kind=KIND, interval_seconds=10, details={"state": "running"})

    row = ProcessHeartbeat.objects.get()  # a second write (a restart too) takes the same row
    assert (row.kind, row.name, row.pid, row.hostname) == (
        KIND,
        "feed-0",
        os.getpid(),
        socket.gethostname(),
    )
    assert (row.started_at, row.last_seen_at, row.interval_seconds, row.expires_at) == (
        T0,
        T0 + timedelta(seconds=5),
        10.0,
        T0 + timedelta(seconds=35),
    )


def test_a_row_past_its_expiry_reads_dead_everywhere():
    with time_machine.travel(T0, tick=False):
        heartbeat_record(kind=KIND, name="c0", interval_seconds=10, details={"state": "running"})
        heartbeat_record(kind=KIND, name="c1", interval_seconds=10, details={"state": "stopped"})

    def states(at: datetime) -> list[tuple[str, str, bool]]:
        with time_machine.travel(at, tick=False):
            return [(v.name, v.state, v.healthy) for v in heartbeat_list(kind=KIND)]

    assert states(T0 + timedelta(seconds=29.9)) == [
        ("c0", "running", True),
        ("c1", "stopped", False),
    ]
    assert states(T0 + timedelta(seconds=30)) == [("c0", "dead", False), ("c1", "stopped", False)]
    with time_machine.travel(T0 + timedelta(seconds=31), tick=False):
        age, dead = heartbeat_age_metrics()
    assert [(s.labels, s.value) for s in age.samples] == [
        ({"kind": KIND, "name": "c0", "state": "dead"}, 31.0),
        ({"kind": KIND, "name": "c1", "state": "stopped"}, 31.0),
    ]
    assert [(s.labels["name"], s.value) for s in dead.samples] == [("c0", 1.0), ("c1", 0.0)]


def test_rows_dead_longer_than_the_retention_are_pruned(settings):
    with time_machine.travel(T0, tick=False):
        heartbeat_record(kind=KIND, name="old", interval_seconds=10)  # expires T0+30 s
    with time_machine.travel(T0 + timedelta(seconds=60), tick=False):
        heartbeat_record(kind=KIND, name="recent", interval_seconds=10)  # expires T0+90 s

    # old: dead for 100 s, recent: dead for 40 s
    assert heartbeats_prune(retention_seconds=100, now=T0 + timedelta(seconds=130)) == 0
    assert heartbeats_prune(retention_seconds=99, now=T0 + timedelta(seconds=130)) == 1
    assert list(ProcessHeartbeat.objects.values_list("name", flat=True)) == ["recent"]

    settings.TORGHUT_HEARTBEAT_RETENTION_SECONDS = 60
    with time_machine.travel(T0 + timedelta(seconds=151), tick=False):
        assert heartbeats_prune_task.apply().get() == 1
    assert ProcessHeartbeat.objects.count() == 0


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait(timeout=10)


def test_a_second_process_with_a_live_instance_name_on_this_host_is_refused(live_pid):
    heartbeat_record(kind=KIND, name="c0", interval_seconds=10, details={"state": "running"})
    ProcessHeartbeat.objects.update(pid=live_pid.pid)
    before = ProcessHeartbeat.objects.values().get()

    with pytest.raises(InstanceNameInUse) as refused:
        heartbeat_claim(kind=KIND, name="c0", interval_seconds=10)
    assert str(refused.value) == (
        f"orderfeed_consumer 'c0' is already running on {socket.gethostname()} as pid "
        f"{live_pid.pid}: stop it, or give this process another name (--name or "
        "TORGHUT_INSTANCE_NAME)"
    )
    assert ProcessHeartbeat.objects.values().get() == before  # untouched

    live_pid.kill()  # the holder died (kill -9: its row still says running)
    live_pid.wait(timeout=10)
    row = heartbeat_claim(kind=KIND, name="c0", interval_seconds=10)
    assert (row.pid, row.details) == (os.getpid(), {"state": "starting"})


def test_an_expired_row_whose_pid_now_names_another_process_is_taken_over(live_pid):
    """A restarted container reuses small pids: the dead holder's pid may be alive as something
    else, but the row stopped heartbeating, so the name is free."""
    heartbeat_record(kind=KIND, name="c0", interval_seconds=10, details={"state": "running"})
    ProcessHeartbeat.objects.update(pid=live_pid.pid)
    with pytest.raises(InstanceNameInUse):  # while it heartbeats, the live pid holds the name
        heartbeat_claim(kind=KIND, name="c0", interval_seconds=10)
    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=False):  # 3 intervals
        row = heartbeat_claim(kind=KIND, name="c0", interval_seconds=10)
    assert (row.pid, row.details) == (os.getpid(), {"state": "starting"})


def test_a_stopped_process_or_another_hosts_row_is_taken_over(live_pid):
    heartbeat_record(kind=KIND, name="c0", interval_seconds=10, details={"state": "stopped"})
    heartbeat_record(kind=KIND, name="c1", interval_seconds=10, details={"state": "running"})
    ProcessHeartbeat.objects.update(pid=live_pid.pid)
    ProcessHeartbeat.objects.filter(name="c1").update(hostname="other-host")

    assert heartbeat_claim(kind=KIND, name="c0", interval_seconds=10).pid == os.getpid()
    assert heartbeat_claim(kind=KIND, name="c1", interval_seconds=10).pid == os.getpid()


def test_the_consumer_command_refuses_a_live_duplicate_before_touching_kafka(settings, live_pid):
    settings.TRADING_ORDER_FEED_ENABLED = True
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = "127.0.0.1:1"  # never reached
    heartbeat_record(kind=KIND, name="feed-a", interval_seconds=10, details={"state": "running"})
    ProcessHeartbeat.objects.update(pid=live_pid.pid)

    with pytest.raises(CommandError, match=r"^orderfeed_consumer 'feed-a' is already running"):
        call_command("run_orderfeed_consumer", "--name", "feed-a")
    assert ProcessHeartbeat.objects.get().pid == live_pid.pid


def _settings(**overrides):
    return consumer_settings_from(
        "TRADING_ORDER_FEED",
        name="orderfeed",
        heartbeat_kind=KIND,
        security={},
        unconfigured=ConsumerNotConfigured("no"),
        **overrides,
    )


def test_static_membership_is_derived_from_the_instance_name_unless_pinned(settings):
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = "127.0.0.1:19092"
    settings.TRADING_ORDER_FEED_GROUP_ID = "feed-group"
    settings.TRADING_ORDER_FEED_GROUP_INSTANCE_ID = ""
    settings.TORGHUT_INSTANCE_NAME = "pod-0"

    default = _settings()
    assert (default.instance_name, default.group_instance_id) == ("pod-0", "feed-group-pod-0")
    assert default.consumer_config()["group.instance.id"] == "feed-group-pod-0"
    named = _settings(instance_name="c1")  # --name c1
    assert named.consumer_config()["group.instance.id"] == "feed-group-c1"

    settings.TRADING_ORDER_FEED_GROUP_INSTANCE_ID = "pinned"
    assert _settings(instance_name="c1").consumer_config()["group.instance.id"] == "pinned"
