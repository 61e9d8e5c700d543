"""The project's Prometheus metrics and the /metrics exporter.

Metrics are plain prometheus_client objects on the default registry. With
PROMETHEUS_MULTIPROC_DIR set (before the process starts), every process — gunicorn workers,
Celery workers, Kafka consumers — writes its samples to files in that directory and /metrics
sums them, so a scrape of the web process shows the whole host. Processes on other hosts run
their own exporter (`TORGHUT_METRICS_PORT`, see `start_process_exporter`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
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


def counter_totals(*, prefix: str) -> dict[str, float]:
    """Every counter whose name starts with `prefix`, summed over its labels (and, with
    PROMETHEUS_MULTIPROC_DIR, over this host's processes, as /metrics sums them), keyed by its
    series name without the prefix (`torghut_trading_decisions_total` -> `decisions_total`).
    A counter this process registered and nobody has counted yet reads 0."""
    totals: dict[str, float] = {}
    families = list(REGISTRY.collect())
    for family in families:
        if family.type == "counter" and family.name.startswith(prefix):
            totals[family.name.removeprefix(prefix) + "_total"] = 0.0
    if multiprocess_enabled():
        families = list(build_registry().collect())
    for family in families:
        if family.type != "counter" or not family.name.startswith(prefix):
            continue
        name = family.name.removeprefix(prefix) + "_total"
        total = sum(s.value for s in family.samples if s.name == family.name + "_total")
        totals[name] = totals.get(name, 0.0) + total
    return dict(sorted(totals.items()))


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
    """Drop a finished process's gauges from the multiprocess directory: its `live*` gauges
    (prometheus_client's own bookkeeping, e.g. the order feed's `livesum` consumer lag) and its
    `all` gauges (one series per pid, meaningless once the pid is gone). Counters, histograms and
    the `mostrecent`/`max`/`min`/`sum` gauges stay: they aggregate over dead processes too."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(path, f"gauge_all_{pid}.db"))


_PID_FILE = re.compile(r"^gauge_(?:live\w+|all)_(\d+)\.db$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def multiprocess_sweep() -> list[int]:
    """At a process's start: drop the gauges of every process that left files in
    PROMETHEUS_MULTIPROC_DIR and is no longer alive on this host (killed with -9, so it could
    not drop them itself). The pids swept, in order."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path or not os.path.isdir(path):
        return []
    pids = sorted({int(m.group(1)) for f in os.listdir(path) if (m := _PID_FILE.match(f))})
    dead = [pid for pid in pids if pid != os.getpid() and not _pid_alive(pid)]
    for pid in dead:
        mark_process_dead(pid)
    return dead


def _at_exit() -> None:
    mark_process_dead(os.getpid())


_lifecycle_installed = False


def multiprocess_lifecycle_install() -> None:
    """Once per process (from the site app's ready()): sweep the dead processes' gauges now and
    drop this process's own at a normal exit. Celery pool children, which leave by `os._exit`,
    drop theirs on `worker_process_shutdown` (torghut_site.celery)."""
    global _lifecycle_installed
    if _lifecycle_installed or not multiprocess_enabled():
        return
    _lifecycle_installed = True
    multiprocess_sweep()
    atexit.register(_at_exit)


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
