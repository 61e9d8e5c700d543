"""Logging, Celery and metrics: what every process (web, worker, beat, consumer) shares."""

from __future__ import annotations

import socket
from typing import Any

from torghut_site.settings.base import VAR_DIR, env

# --------------------------------------------------------------------------------------------
# Logging: structured JSON lines with a request id (LOG_FORMAT=text for a terminal)
# --------------------------------------------------------------------------------------------
LOG_LEVEL = env.choice(
    "LOG_LEVEL", choices=("debug", "info", "warning", "error"), default="info"
).upper()
LOG_FORMAT = env.choice("LOG_FORMAT", choices=("json", "text"), default="json")
# error reports hide credentials inside URLs too (REDIS_URL, CELERY_BROKER_URL, CACHES)
DEFAULT_EXCEPTION_REPORTER_FILTER = "torghut_site.debug.SafeExceptionReporterFilter"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "torghut_site.logging.ContextFilter"}},
    "formatters": {
        "json": {"()": "torghut_site.logging.JsonFormatter"},
        "text": {"()": "torghut_site.logging.TextFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "kafka": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        # botocore's DEBUG lines carry the signed request headers (the S3 access key id)
        "botocore": {"level": "INFO"},
        "LiteLLM": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}

# --------------------------------------------------------------------------------------------
# Celery: JSON only, late acks with redelivery on worker loss, schedule declared in code
# --------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL", default=f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
)
CELERY_BROKER_IS_EMBEDDED = CELERY_BROKER_URL.startswith("sqla+")
CELERY_RESULT_BACKEND = env.optional_str("CELERY_RESULT_BACKEND")
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_TIME_LIMIT = 600  # hard cap for every task; long tasks set their own lower limits
CELERY_TASK_SOFT_TIME_LIMIT = 540
# Redis redelivers unacked tasks after the visibility timeout: it must exceed the longest task
# (and any countdown) or a slow task runs twice at once. The embedded SQLite broker hands its
# transport options to SQLAlchemy's create_engine, which accepts none of these.
CELERY_VISIBILITY_TIMEOUT_SECONDS = env.int(
    "CELERY_VISIBILITY_TIMEOUT_SECONDS", default=3600, min_value=CELERY_TASK_TIME_LIMIT + 60
)
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = (
    {} if CELERY_BROKER_IS_EMBEDDED else {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT_SECONDS}
)
CELERY_TASK_DEFAULT_QUEUE = "torghut"
# research work never waits in front of trading: every whitepaper task (intake with its PDF
# download and text extraction, AgentRun dispatch, the sweep) goes to `whitepapers` and the
# autonomy lane's tick and continuity audit (backtests) to `research`, both served by the research
# worker (`-Q whitepapers,research`); trade cycles, reconciliation and the rest stay on `torghut`
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = {
    "whitepapers.tasks.*": {"queue": "whitepapers"},
    "autonomy.tasks.*": {"queue": "research"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULER = "torghut_site.beat:HeartbeatScheduler"
CELERY_WORKER_HEARTBEAT_SECONDS = env.int(
    "CELERY_WORKER_HEARTBEAT_SECONDS", default=15, min_value=1
)

# --------------------------------------------------------------------------------------------
# Process identity: heartbeat rows are keyed by a stable name, not by host:pid. A consumer's name
# is its `--name`, else TORGHUT_INSTANCE_NAME, else the hostname (a StatefulSet's pod name); it
# also makes the consumer's Kafka `group.instance.id` (`<group id>-<name>`, static membership).
# Two consumers of one group on one host need distinct names. A heartbeat row unseen for 3 of its
# intervals reads `dead`; dead rows older than the retention are deleted by beat.
# --------------------------------------------------------------------------------------------
TORGHUT_INSTANCE_NAME = env.str("TORGHUT_INSTANCE_NAME") or socket.gethostname()
TORGHUT_HEARTBEAT_RETENTION_SECONDS = env.int(
    "TORGHUT_HEARTBEAT_RETENTION_SECONDS", default=86400, min_value=60
)

# --------------------------------------------------------------------------------------------
# Metrics: PROMETHEUS_MULTIPROC_DIR aggregates web, worker and consumer processes on one host;
# TORGHUT_METRICS_PORT gives a worker or consumer its own exporter (one per pod).
# --------------------------------------------------------------------------------------------
PROMETHEUS_MULTIPROC_DIR = env.optional_str("PROMETHEUS_MULTIPROC_DIR")
TORGHUT_METRICS_PORT = env.optional_int("TORGHUT_METRICS_PORT", min_value=1)
PROMETHEUS_EXPORT_MIGRATIONS = False
