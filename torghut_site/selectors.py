"""Reads for operations state: heartbeats, schema status."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from torghut_site.models import ProcessHeartbeat


@dataclass(frozen=True)
class SchemaStatus:
    reachable: bool
    unapplied_migrations: list[str]
    error: str = ""

    @property
    def current(self) -> bool:
        return self.reachable and not self.unapplied_migrations


def schema_status(alias: str = DEFAULT_DB_ALIAS) -> SchemaStatus:
    """Whether the database answers and every migration in the code is applied to it."""
    connection = connections[alias]
    try:
        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:  # noqa: BLE001 - any driver error means "unreachable" here
        return SchemaStatus(reachable=False, unapplied_migrations=[], error=type(exc).__name__)
    return SchemaStatus(
        reachable=True,
        unapplied_migrations=[f"{m.app_label}.{m.name}" for m, backwards in plan if not backwards],
    )


@dataclass(frozen=True)
class HeartbeatView:
    kind: str
    name: str
    pid: int
    last_seen_at: datetime
    age_seconds: float
    healthy: bool
    details: dict[str, Any] = field(default_factory=dict)


def heartbeat_list(*, kind: str | None = None, max_age: timedelta) -> list[HeartbeatView]:
    now = timezone.now()
    rows = ProcessHeartbeat.objects.order_by("kind", "name")
    if kind:
        rows = rows.filter(kind=kind)
    views = []
    for row in rows:
        age = (now - row.last_seen_at).total_seconds()
        views.append(
            HeartbeatView(
                row.kind,
                row.name,
                row.pid,
                row.last_seen_at,
                age,
                age <= max_age.total_seconds(),
                row.details,
            )
        )
    return views


def heartbeat_age_metrics() -> Iterable[Metric]:
    """Scrape-time gauge: seconds since each process's last heartbeat."""
    gauge = GaugeMetricFamily(
        "torghut_process_heartbeat_age_seconds",
        "Seconds since each long-running process last wrote its heartbeat.",
        labels=["kind", "name"],
    )
    try:
        now = timezone.now()
        for kind, name, seen in ProcessHeartbeat.objects.values_list(
            "kind", "name", "last_seen_at"
        ):
            gauge.add_metric([kind, name], (now - seen).total_seconds())
    except Exception:  # noqa: BLE001 - a scrape must not fail because the DB is down
        return []
    return [gauge]
