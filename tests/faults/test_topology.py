"""The production topology (`make run-services`, tests/faults/topology.py) under faults.

The seed of the production-topology test: the bring-up answers healthy; a consumer killed with
SIGKILL is restarted under the same name and the topology is healthy again; a second consumer and
a second worker join and report their heartbeats.
"""

from __future__ import annotations

import pytest

from orderfeed.tests.conftest import kafka_bootstrap  # noqa: F401 - a fixture of `topology`
from tests.faults.conftest import wait_for
from tests.faults.topology import topology  # noqa: F401 - the fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.services]


def _consumers(health: dict) -> list[dict]:
    return list(health["dependencies"]["order_feed"]["consumers"])


def _workers(health: dict) -> set[str]:
    return {w["name"] for w in health["dependencies"]["worker_heartbeat"]["workers"]}


def test_bring_up_kill_a_consumer_and_scale_out(topology):  # noqa: F811 - fixture
    topo = topology()
    health = topo.wait_healthy(timeout=120)
    assert {name.split("@")[0] for name in _workers(health)} == {"trading", "research"}
    assert len(_consumers(health)) == 1
    assert "admin login: admin / " + topo.admin_password() in topo.log()

    old = topo.kill9("orderfeed-1")
    new = topo.wait_restarted("orderfeed-1", old)
    assert new != old
    assert "[supervise] orderfeed-1 exited with status 137" in topo.log()
    topo.wait_healthy(timeout=60)

    topo.start_consumer("orderfeed-2")
    topo.start_worker("trading-2")
    assert_joined = lambda: (  # noqa: E731
        topo.health()[0] == 200
        and any(name.startswith("trading-2@") for name in _workers(topo.health()[1]))
        and len({c["name"] for c in _consumers(topo.health()[1]) if c["healthy"]}) >= 2
    )
    assert wait_for(assert_joined, timeout=60), topo.health()
