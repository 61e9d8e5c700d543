"""Operational readiness (gate 4) and rollback readiness, from real dry runs.

Each dry run performs the real action inside a transaction that is rolled back, then checks
that the action took effect inside it and that nothing is left behind after it:
- kill switch: engage the manual kill switch (the same service the admin uses) and check that the
  order firewall's verdict refuses submissions with `kill_switch_active` or an earlier refusal;
- strategy disable: enable the candidate's strategy for a paper lane exactly as a promotion would,
  check the trade cycle would run it, disable it as a demotion would, check the cycle would not;
- gitops revert: promote, then roll back, and check the strategy row is exactly what it was.
`operational_ready`: migrations applied, an enabled paper lane, the strategy plugin registered.
`runbook_validated`: the demote and rollback steps of the runbook both ran (the two dry runs).
Times go to the ledger (`ResearchRun.readiness`), not into the deterministic artifacts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from autonomy.gates import Readiness
from autonomy.lane_inputs import CandidateBook, CandidateSpec
from autonomy.models import LifecycleRole, ResearchCandidate
from autonomy.services.strategies import (
    PromotionError,
    default_lane_label,
    strategy_apply,
    strategy_disable,
    strategy_restore,
    strategy_snapshot,
)
from trading.lanes import lane_config
from trading.selectors.safety import kill_switch_state, submission_verdict
from trading.services.cycle import enabled_strategies
from trading.services.safety import kill_switch_set
from trading.strategies.registry import get_strategy


def _dry_run(body: Callable[[], bool]) -> tuple[bool, str]:
    """Run `body` in a transaction that is always rolled back; (passed, error)."""
    try:
        with transaction.atomic():
            ok = bool(body())
            transaction.set_rollback(True)
    except Exception as exc:  # noqa: BLE001 - a dry run that breaks is a failed check, kept with its error
        return False, f"{type(exc).__name__}: {exc}"
    return ok, ""


def _migrations_applied() -> bool:
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    return not executor.migration_plan(executor.loader.graph.leaf_nodes())


def _kill_switch_dry_run(label: str) -> bool:
    """Engage the kill switch: it reads as manually engaged and the lane refuses submissions."""
    kill_switch_set(
        engaged=True, actor=None, reason="readiness dry run", actor_label="autonomy-dry-run"
    )
    state = kill_switch_state()
    verdict = submission_verdict(lane_config(label)) if label else None
    return (
        state.active and state.source == "manual" and verdict is not None and not (verdict.allowed)
    )


def _enabled_on_lane(spec: CandidateSpec, label: str) -> bool:
    now = timezone.now()
    return any(s.name == spec.name for s in enabled_strategies(account_label=label, now=now))


def _strategy_disable_dry_run(book: CandidateBook, label: str) -> bool:
    """Apply each of the candidate's strategies to the lane, then disable them: they were on,
    and are off."""
    for spec in book.specs:
        strategy_apply(spec.as_dict(), account_labels=[label])
    was_on = all(_enabled_on_lane(spec, label) for spec in book.specs)
    for spec in book.specs:
        strategy_disable(spec.name)
    return was_on and not any(_enabled_on_lane(spec, label) for spec in book.specs)


def _gitops_revert_dry_run(book: CandidateBook, label: str) -> bool:
    """Apply the candidate's strategies, then restore the snapshots: each row is as it was."""
    ok = True
    for spec in book.specs:
        before = strategy_snapshot(spec.name)
        strategy_apply(spec.as_dict(), account_labels=[label])
        strategy_restore(spec.name, before)
        after = strategy_snapshot(spec.name)
        if before is None:
            ok = ok and (after is None or after["enabled"] is False)
        else:
            ok = ok and after == before
    return ok


def _plugin_registered(book: CandidateBook) -> bool:
    try:
        for spec in book.specs:
            get_strategy(spec.strategy_type)
    except KeyError:
        return False
    return True


def _rollback_target(book: CandidateBook) -> str:
    """The candidate's promoted champion (of the same strategy or book), else disabling its
    strategies."""
    champion = (
        ResearchCandidate.objects.filter(
            strategy_name=book.name, lifecycle_role=LifecycleRole.CHAMPION
        )
        .values_list("candidate_id", flat=True)
        .first()
    )
    return champion or f"disable:{book.name}"


def readiness_probe(book: CandidateBook) -> tuple[Readiness, dict[str, Any]]:
    """(readiness for the gates, the ledger record with times and errors)."""
    started = timezone.now()
    try:
        label = default_lane_label("paper")
    except PromotionError:
        label = ""

    kill_before = kill_switch_state()
    no_lane = (False, "no enabled paper lane")
    kill_ok, kill_err = _dry_run(lambda: _kill_switch_dry_run(label)) if label else no_lane
    disable_ok, disable_err = (
        _dry_run(lambda: _strategy_disable_dry_run(book, label)) if label else no_lane
    )
    revert_ok, revert_err = (
        _dry_run(lambda: _gitops_revert_dry_run(book, label)) if label else no_lane
    )
    # nothing may be left behind by the dry runs
    kill_ok = kill_ok and kill_switch_state() == kill_before
    plugin_ok = _plugin_registered(book)
    migrations_ok = _migrations_applied()
    operational = bool(label) and plugin_ok and migrations_ok
    rollback_target = _rollback_target(book)
    readiness = Readiness(
        operational_ready=operational,
        runbook_validated=disable_ok and revert_ok,
        kill_switch_dry_run=kill_ok,
        rollback_dry_run=revert_ok,
        details={"strategy_disable_dry_run": disable_ok, "rollback_target": rollback_target},
    )
    record = {
        "checked_at": started.isoformat(),
        "paper_lane": label,
        "operational_ready": operational,
        "migrations_applied": migrations_ok,
        "plugin_registered": plugin_ok,
        "killSwitchDryRunPassed": kill_ok,
        "strategyDisableDryRunPassed": disable_ok,
        "gitopsRevertDryRunPassed": revert_ok,
        "errors": {
            k: v
            for k, v in (
                ("kill_switch", kill_err),
                ("strategy_disable", disable_err),
                ("gitops_revert", revert_err),
            )
            if v
        },
        "rollback_target": rollback_target,
    }
    return readiness, record
