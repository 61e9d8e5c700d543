"""The seeded chaos soak (`tests/chaos/soak.py`) on a short fixed set of seeds.

Each seed is one schedule of trade cycles, reconciles and faults on the simulated broker
(ambiguous and retryable submits, failing lookups, dropped / duplicated / reordered trade
updates, a silent stream, the kill switch; one seed includes a kill -9 of a `run_trade_cycle`
process after the broker accepted its order), settled and checked against the money-safety
invariants. A failure names its seed and the one-line replay command.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.chaos.broker import FEED_FAULTS, SUBMIT_FAULTS
from tests.chaos.soak import Step, build_schedule, run_schedule
from tests.conftest import subprocess_db_dsn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SEEDS = [101, 202, 303, 404, 505, 606, 707, 808, 909]
KILL_SEEDS = [1313]


# seeds whose schedule sends an order for another symbol while one order is still ambiguous
WITNESS_SEEDS = {101, 404, 808}


@pytest.mark.django_db(transaction=False)
def test_the_fixed_seeds_cover_every_fault_kind():
    schedules = [build_schedule(s) for s in SEEDS] + [
        build_schedule(s, kill=True) for s in KILL_SEEDS
    ]
    steps = [step for schedule in schedules for step in schedule.steps]
    assert {f for step in steps for f in step.submit_faults} - {""} == set(SUBMIT_FAULTS)
    assert {step.feed_fault for step in steps} - {""} == set(FEED_FAULTS)
    assert sum(step.lookup_failures for step in steps) > 0
    assert any(step.silent for step in steps)
    assert any(step.kill_switch for step in steps)
    assert sum(step.kill9 for step in steps) == len(KILL_SEEDS)
    assert build_schedule(101) == build_schedule(101)  # a seed is a replayable schedule


@pytest.mark.parametrize("seed", SEEDS)
def test_chaos_schedule_keeps_the_money_invariants(seed, tmp_path):
    report = run_schedule(build_schedule(seed), workdir=tmp_path, dsn=subprocess_db_dsn())
    assert report.problems == []
    assert report.cycles == len(build_schedule(seed).steps)
    assert (report.witness_cycles > 0) == (seed in WITNESS_SEEDS), report


@pytest.mark.parametrize("seed", KILL_SEEDS)
def test_chaos_schedule_with_a_kill_9_after_broker_accept(seed, tmp_path):
    schedule = build_schedule(seed, kill=True)
    report = run_schedule(schedule, workdir=tmp_path, dsn=subprocess_db_dsn())
    assert report.problems == []
    assert report.killed == 1, report


def test_kill_switch_during_an_unrecorded_ambiguous_order(tmp_path):
    """The schedule that found `orders_cancel_all` skipping the simulated broker's cancel while an
    accepted order was not recorded yet (every submit ambiguous, every lookup failing, the feed
    silent): under the kill switch the order filled instead of being cancelled."""
    drawn = build_schedule(404)
    steps = [Step() for _ in drawn.steps]
    steps[0] = Step(submit_faults=("ambiguous_after",) * 20, lookup_failures=50, silent=True)
    steps[1] = Step(kill_switch=True, silent=True)
    schedule = dataclasses.replace(drawn, steps=tuple(steps), fallback_limit=1.0)
    report = run_schedule(schedule, workdir=tmp_path, dsn=subprocess_db_dsn())
    assert report.problems == []
    assert report.faults["submit_ambiguous_after"] == 2
    assert report.faults["kill_switch_cycle"] == 1
