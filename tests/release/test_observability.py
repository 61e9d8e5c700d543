"""The Grafana dashboard and the Prometheus alerts name only metrics the service exports.

The exported set is read from the live registry, not from the source: every app module is
imported (so every `Counter(...)`/`Gauge(...)`/`Histogram(...)` is registered), then each
collector's families are expanded into the series names Prometheus stores (a counter `x` is
scraped as `x_total` and `x_created`, a histogram as `x_bucket`, `x_sum`, `x_count`, `x_created`),
and the scrape-time collectors of `torghut_site/metrics.py` are run against the test database. A
renamed metric therefore fails here, and so does a query that uses a counter without `_total` or
a histogram's `_bucket` on a gauge.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.core import Metric

from tests.conftest import ROOT
from torghut_site import metrics

DASHBOARD = ROOT / "deploy/grafana/torghut.json"
RULES = ROOT / "deploy/k8s/prometheus-rules.yaml"
APP_PACKAGES = ("torghut_site", "trading", "orderfeed", "whitepapers", "autonomy", "ops")
# modules not imported: the settings (importing them again re-reads the environment) and the
# server entry points
SKIPPED = re.compile(r"\.(tests|migrations)(\.|$)|^torghut_site\.(settings|wsgi|asgi)")
_METRIC = re.compile(r"\btorghut_[a-z0-9_]+\b")

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "info": ("_info",),
    "stateset": ("",),
    "gauge": ("",),
    "unknown": ("",),
}


def import_app_modules() -> list[str]:
    imported = []
    for package in APP_PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            if not SKIPPED.search(info.name):
                importlib.import_module(info.name)
                imported.append(info.name)
    return imported


def series_names(families: Iterable[Metric]) -> set[str]:
    return {family.name + suffix for family in families for suffix in SUFFIXES[family.type]}


def _registry_families() -> Iterator[Metric]:
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 - every registered one
        describe = getattr(collector, "describe", None)
        yield from (describe() if describe is not None else collector.collect())


def exported_metrics() -> set[str]:
    import_app_modules()
    names = series_names(_registry_families())
    for callback in metrics._scrape_collectors:  # noqa: SLF001 - the /metrics scrape collectors
        names |= series_names(callback())
    return {name for name in names if name.startswith("torghut_")}


def expr_metrics(expr: str) -> set[str]:
    return set(_METRIC.findall(expr))


def dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(row title, expr) of every target, rows taken in order."""
    found = []
    row = ""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
        for target in panel.get("targets", []):
            found.append((row, target["expr"]))
    return found


def rule_problems(document: dict[str, Any]) -> list[str]:
    problems = []
    if (document.get("apiVersion"), document.get("kind")) != (
        "monitoring.coreos.com/v1",
        "PrometheusRule",
    ):
        problems.append("not a monitoring.coreos.com/v1 PrometheusRule")
    for group in document["spec"]["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert", "<no alert name>")
            missing = {"alert", "expr", "for", "labels", "annotations"} - set(rule)
            if missing:
                problems.append(f"{name}: missing {sorted(missing)}")
                continue
            if rule["labels"].get("severity") not in ("critical", "warning", "info"):
                problems.append(f"{name}: labels.severity is {rule['labels'].get('severity')!r}")
            if not {"summary", "description"} <= set(rule["annotations"]):
                problems.append(f"{name}: annotations need summary and description")
            if not re.fullmatch(r"\d+[smh]", str(rule["for"])):
                problems.append(f"{name}: for is {rule['for']!r}")
    return problems


def unknown_metrics(used: Iterable[tuple[str, str]], exported: set[str]) -> list[str]:
    """Metrics of (place, expr) pairs that are not exported."""
    return [
        f"{place}: {name} is not exported ({expr})"
        for place, expr in used
        for name in sorted(expr_metrics(expr))
        if name not in exported
    ]


def rules_document() -> dict[str, Any]:
    [document] = list(yaml.safe_load_all(RULES.read_text(encoding="utf-8")))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def exported(django_db_setup, django_db_blocker) -> set[str]:
    with django_db_blocker.unblock():
        return exported_metrics()


@pytest.mark.django_db
def test_the_exported_set_is_read_from_the_registry(exported):
    # spot checks of each kind: a counter, a histogram, a gauge, a scrape-time gauge
    assert {
        "torghut_trading_decisions_total",
        "torghut_kafka_consumer_batch_seconds_bucket",
        "torghut_trading_order_feed_consumer_lag",
        "torghut_process_heartbeat_age_seconds",
        "torghut_trading_kill_switch_engaged",
        "torghut_kafka_consumer_group_lag",
        "torghut_trading_order_feed_degraded",
        "torghut_process_heartbeat_dead",
    } <= exported
    assert "torghut_trading_decisions" not in exported  # a counter is only scraped with _total
    assert "torghut_trading_order_feed_consumer_lag_total" not in exported
    assert len(exported) > 150


@pytest.mark.django_db
def test_every_dashboard_query_names_exported_metrics(exported):
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "torghut"
    used = dashboard_exprs(dashboard)
    rows = {row for row, _ in used}
    assert {"Safety latches", "Trading", "Order feed", "Consumers and processes"} <= rows
    assert {"LLM review", "Research and whitepapers", "Order feed (Kafka's view)"} <= rows
    assert unknown_metrics(used, exported) == []
    # every panel queries something and every query names a metric
    assert all(expr_metrics(expr) for _, expr in used)


@pytest.mark.django_db
def test_every_alert_is_complete_and_names_exported_metrics(exported):
    document = rules_document()
    assert rule_problems(document) == []
    used = [
        (group["name"], rule["expr"])
        for group in document["spec"]["groups"]
        for rule in group["rules"]
    ]
    names = [rule["alert"] for group in document["spec"]["groups"] for rule in group["rules"]]
    assert len(names) == len(set(names)), "an alert name is used twice"
    alerts = set(names)
    assert {
        "TorghutKillSwitchEngaged",
        "TorghutEmergencyStopLatched",
        "TorghutNoSignalStreak",
        "TorghutOrderFeedStalled",
        "TorghutOrderFeedLagging",
        "TorghutOrderFeedDegraded",
        "TorghutHeartbeatMissing",
        "TorghutDeadLettersGrowing",
    } <= alerts
    assert unknown_metrics(used, exported) == []


# -- self-tests ---------------------------------------------------------------------------------
def test_self_suffix_rules():
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    registry = CollectorRegistry()
    Counter("torghut_x", "x", registry=registry)
    Histogram("torghut_h_seconds", "h", registry=registry)
    Gauge("torghut_g", "g", registry=registry)
    assert series_names(registry.collect()) == {
        "torghut_x_total",
        "torghut_x_created",
        "torghut_h_seconds_bucket",
        "torghut_h_seconds_sum",
        "torghut_h_seconds_count",
        "torghut_h_seconds_created",
        "torghut_g",
    }


def test_self_a_renamed_or_misused_metric_fails():
    exported = {"torghut_x_total", "torghut_g"}
    assert unknown_metrics([("row", "rate(torghut_x_total[5m]) + torghut_g")], exported) == []
    assert unknown_metrics([("row", "rate(torghut_x[5m])")], exported) == [
        "row: torghut_x is not exported (rate(torghut_x[5m]))"
    ]
    assert unknown_metrics([("row", "torghut_g_bucket")], exported) == [
        "row: torghut_g_bucket is not exported (torghut_g_bucket)"
    ]


def test_self_an_incomplete_rule_fails():
    document = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "spec": {
            "groups": [
                {
                    "name": "g",
                    "rules": [
                        {"alert": "A", "expr": "torghut_g > 1", "for": "1m", "labels": {}},
                        {
                            "alert": "B",
                            "expr": "torghut_g > 1",
                            "for": "soon",
                            "labels": {"severity": "page"},
                            "annotations": {"summary": "s"},
                        },
                    ],
                }
            ]
        },
    }
    assert rule_problems(document) == [
        "A: missing ['annotations']",
        "B: labels.severity is 'page'",
        "B: annotations need summary and description",
        "B: for is 'soon'",
    ]
