"""The seeded chaos soak (`tests/chaos/soak.py`) on a short fixed set of seeds.

Each seed is one schedule of trade cycles, reconciles and faults on the simulated broker
(ambiguous and retryable submits, failing lookups, dropped / duplicated / reordered trade
updates, a silent stream, the kill switch; two seeds include a kill -9 of a `run_trade_cycle`
process after the broker accepted its order), settled and checked against the money-safety
invariants. A failure names its seed and the one-line replay command.
"""

from __future__ import annotations

import pytest

from tests.chaos.soak import build_schedule, run_schedule
from tests.conftest import subprocess_db_dsn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SEEDS = [101, 202, 303, 404, 505, 606, 707, 808, 909, 1010, 1111, 1212]
KILL_SEEDS = [1313, 1414]


@pytest.mark.parametrize("seed", SEEDS)
def test_chaos_schedule_keeps_the_money_invariants(seed, tmp_path):
    report = run_schedule(build_schedule(seed), workdir=tmp_path, dsn=subprocess_db_dsn())
    assert report.problems == []
    assert report.cycles == len(build_schedule(seed).steps)


@pytest.mark.parametrize("seed", KILL_SEEDS)
def test_chaos_schedule_with_a_kill_9_after_broker_accept(seed, tmp_path):
    schedule = build_schedule(seed, kill=True)
    report = run_schedule(schedule, workdir=tmp_path, dsn=subprocess_db_dsn())
    assert report.problems == []
    assert report.killed == 1, report
