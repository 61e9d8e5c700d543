"""Reads for operations state: heartbeats, schema status."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from torghut_site.models import ProcessHeartbeat


@dataclass(frozen=True)
class SchemaStatus:
    reachable: bool
    unapplied_migrations: list[str]
    error: str = ""
    # `app.migration` of each app's leaf: applied in the database (current) and in the code
    # (expected), the Django form of the original's Alembic heads
    current_heads: list[str] = field(default_factory=list)
    expected_heads: list[str] = field(default_factory=list)

    @property
    def current(self) -> bool:
        return self.reachable and not self.unapplied_migrations


def schema_status(alias: str = DEFAULT_DB_ALIAS) -> SchemaStatus:
    """Whether the database answers and every migration in the code is applied to it."""
    connection = connections[alias]
    try:
        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        leaves = executor.loader.graph.leaf_nodes()
        plan = executor.migration_plan(leaves)
    except Exception as exc:  # noqa: BLE001 - any driver error means "unreachable" here
        return SchemaStatus(reachable=False, unapplied_migrations=[], error=type(exc).__name__)
    return SchemaStatus(
        reachable=True,
        unapplied_migrations=[f"{m.app_label}.{m.name}" for m, backwards in plan if not backwards],
        current_heads=_applied_heads(executor.loader),
        expected_heads=sorted(f"{app}.{name}" for app, name in leaves),
    )


def _applied_heads(loader: MigrationLoader) -> list[str]:
    """Each app's applied migrations that no applied migration of the same app follows, plus any
    applied migration of a known app that this code does not have (the database is ahead: a
    newer release migrated it). /db-check stays 200 then, since it is the readiness probe and
    the older pods must keep serving until the new ones are ready (deploy/k8s/web.yaml)."""
    applied = set(loader.applied_migrations or {})
    graph = loader.graph
    apps = {app for app, _ in graph.nodes}
    squashed = {key for m in loader.replacements.values() for key in m.replaces}
    heads = [
        key
        for key in applied
        if key in graph.nodes
        and not any(c.key in applied and c.key[0] == key[0] for c in graph.node_map[key].children)
    ]
    ahead = [k for k in applied if k not in graph.nodes and k[0] in apps and k not in squashed]
    return sorted(f"{app}.{name}" for app, name in heads + ahead)


def heartbeat_state(*, state: str, expires_at: datetime, now: datetime) -> str:
    """What a heartbeat row says of its process, as every reader shows it: `stopped` (it said
    so on its way out), `dead` (unseen past its expiry: killed, hung, or its host gone), else
    the state it last wrote (`running`, `starting`)."""
    if state == "stopped":
        return "stopped"
    if now >= expires_at:
        return "dead"
    return state or "running"


@dataclass(frozen=True)
class HeartbeatView:
    kind: str
    name: str
    pid: int
    hostname: str
    last_seen_at: datetime
    expires_at: datetime
    age_seconds: float
    state: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.state not in ("dead", "stopped")


def heartbeat_list(*, kind: str | None = None, now: datetime | None = None) -> list[HeartbeatView]:
    """Every heartbeat row (of `kind`), each with its state; a row past its `expires_at` is
    `dead`."""
    now = now or timezone.now()
    rows = ProcessHeartbeat.objects.order_by("kind", "name")
    if kind:
        rows = rows.filter(kind=kind)
    return [
        HeartbeatView(
            kind=row.kind,
            name=row.name,
            pid=row.pid,
            hostname=row.hostname,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            age_seconds=(now - row.last_seen_at).total_seconds(),
            state=heartbeat_state(
                state=str(row.details.get("state", "")), expires_at=row.expires_at, now=now
            ),
            details=row.details,
        )
        for row in rows
    ]


def heartbeat_age_metrics() -> Iterable[Metric]:
    """Scrape-time gauges: seconds since each process's last heartbeat, labelled with the state
    it reads as (`running`, `starting`, `stopped`, `dead`), and 1 for each dead process."""
    age = GaugeMetricFamily(
        "torghut_process_heartbeat_age_seconds",
        "Seconds since each long-running process last wrote its heartbeat.",
        labels=["kind", "name", "state"],
    )
    dead = GaugeMetricFamily(
        "torghut_process_heartbeat_dead",
        "1 when a long-running process's heartbeat is past its expiry (3 of its intervals).",
        labels=["kind", "name"],
    )
    try:
        for view in heartbeat_list():
            age.add_metric([view.kind, view.name, view.state], view.age_seconds)
            dead.add_metric([view.kind, view.name], 1.0 if view.state == "dead" else 0.0)
    except Exception:  # noqa: BLE001 - a scrape must not fail because the DB is down
        return []
    return [age, dead]
