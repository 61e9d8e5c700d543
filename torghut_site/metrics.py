"""The project's Prometheus metrics and the /metrics exporter.

Metrics are plain prometheus_client objects on the default registry. With
PROMETHEUS_MULTIPROC_DIR set (before the process starts), every process — gunicorn workers,
Celery workers, Kafka consumers — writes its samples to files in that directory and /metrics
sums them, so a scrape of the web process shows the whole host. Processes on other hosts run
their own exporter (`TORGHUT_METRICS_PORT`, see `start_process_exporter`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import Metric

# Collectors evaluated at scrape time in the exporting process (e.g. gauges read from the DB).
ScrapeCollector = Callable[[], Iterable[Metric]]
_scrape_collectors: list[ScrapeCollector] = []


class _CallbackCollector:
    def __init__(self, callbacks: list[ScrapeCollector]) -> None:
        self._callbacks = callbacks

    def collect(self) -> Iterable[Metric]:
        for callback in self._callbacks:
            yield from callback()


def register_scrape_collector(callback: ScrapeCollector) -> None:
    if callback not in _scrape_collectors:
        _scrape_collectors.append(callback)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def build_registry() -> CollectorRegistry:
    if multiprocess_enabled():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    return registry


def render_metrics() -> bytes:
    registry = build_registry()
    output = generate_latest(registry)
    if _scrape_collectors:
        extra = CollectorRegistry()
        extra.register(_CallbackCollector(_scrape_collectors))
        output += generate_latest(extra)
    return output


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)


def start_process_exporter(port: int) -> None:
    """Serve this process's metrics on `port` (for workers/consumers on their own hosts)."""
    start_http_server(port, addr="0.0.0.0", registry=build_registry())  # noqa: S104


_exporter_port: int | None = None


def metrics_exporter_start() -> int | None:
    """Start this process's exporter on `TORGHUT_METRICS_PORT` when it is set (once per process):
    Celery workers call it when ready and consumers when they start. The port it serves, or None."""
    global _exporter_port
    from django.conf import settings

    port = settings.TORGHUT_METRICS_PORT
    if port is None or _exporter_port is not None:
        return _exporter_port
    start_process_exporter(port)
    _exporter_port = port
    return port


def mark_process_dead(pid: int) -> None:
    """Drop a finished process's live gauges from the multiprocess directory."""
    if multiprocess_enabled():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


# -- feature flags -------------------------------------------------------------------------
FEATURE_FLAG_EVALUATIONS = Counter(
    "torghut_feature_flag_evaluations_total",
    "Feature flag resolutions by flag and the source that decided the value.",
    ["flag", "source"],
)
FEATURE_FLAG_FALLBACKS = Counter(
    "torghut_feature_flag_fallback_total",
    "Flipt evaluations that failed, so the env (or last known) value stood.",
    ["flag", "reason"],
)

# -- process heartbeats ----------------------------------------------------------------------
HEARTBEATS = Counter(
    "torghut_process_heartbeats_total",
    "Heartbeats written by long-running processes.",
    ["kind"],
)
