"""torghut settings: one module, read from environment variables (a `.env` file is honoured).

Variable names follow the original service so its operators feel at home. Every value is read
through `torghut_site.env.Env`, which collects problems; the module ends by raising one
`ConfigError` that names every bad variable, so no process (web, worker, beat, consumer) starts
with a configuration it would misread.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import django_stubs_ext

import autonomy.drift as _drift
from torghut_site.dburl import DatabaseUrlError, parse_database_url, sqlite_database
from torghut_site.env import Env, load_dotenv
from torghut_site.outbound import host_pattern_problem

django_stubs_ext.monkeypatch()  # generic admin/serializer classes at run time

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(Path(os.environ.get("TORGHUT_ENV_FILE", BASE_DIR / ".env")))
env = Env()

VAR_DIR = Path(env.str("TORGHUT_VAR_DIR", default=str(BASE_DIR / "var")))

# --------------------------------------------------------------------------------------------
# Core
# --------------------------------------------------------------------------------------------
APP_ENV = env.choice("APP_ENV", choices=("dev", "stage", "prod"), default="dev")
IS_PROD = APP_ENV == "prod"
DEBUG = env.bool("DEBUG", default=False)
TORGHUT_VERSION = env.str("TORGHUT_VERSION", default="dev")
TORGHUT_COMMIT = env.str("TORGHUT_COMMIT", default="unknown")

# Outside dev (stage and prod) nothing security-relevant is defaulted: a stage deployment is as
# reachable as production, so it gets neither the development key nor every host.
IS_DEV = APP_ENV == "dev"
SECRET_KEY = env.secret("SECRET_KEY", "DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not IS_DEV:
        env.problem(f"SECRET_KEY is required when APP_ENV={APP_ENV} (or SECRET_KEY_FILE)")
    SECRET_KEY = "dev-only-insecure-key-never-used-in-prod-" + "x" * 20  # noqa: S105
elif not IS_DEV and len(SECRET_KEY) < 50:
    env.problem(f"SECRET_KEY must be at least 50 characters when APP_ENV={APP_ENV}")
if IS_PROD and DEBUG:
    env.problem("DEBUG=true is not allowed when APP_ENV=prod")

ALLOWED_HOSTS = env.csv("ALLOWED_HOSTS", default=("*",) if IS_DEV else ())
if not IS_DEV and not ALLOWED_HOSTS:
    env.problem(f"ALLOWED_HOSTS must list the served host names when APP_ENV={APP_ENV}")
elif IS_PROD and "*" in ALLOWED_HOSTS:
    env.problem("ALLOWED_HOSTS must not contain * (any host) when APP_ENV=prod")
CSRF_TRUSTED_ORIGINS = env.csv("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "ops.apps.OpsConfig",  # the operators' app; first, so its admin/index.html wins
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "torghut_site.apps.TorghutSiteConfig",
    "trading",
    "trading.simbroker",
    "orderfeed",
    "whitepapers",
    "autonomy",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "torghut_site.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "torghut_site.urls"
WSGI_APPLICATION = "torghut_site.wsgi.application"
ASGI_APPLICATION = "torghut_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "torghut_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --------------------------------------------------------------------------------------------
# Database: DB_DSN / DB_URL / DATABASE_URL, else the embedded SQLite file under var/
# --------------------------------------------------------------------------------------------
_db_url = env.raw("DB_DSN", "DB_URL", "DATABASE_URL")
DATABASES: dict[str, dict[str, Any]]
if _db_url is None:
    DATABASES = {"default": sqlite_database(VAR_DIR / "torghut.sqlite3")}
else:
    try:
        DATABASES = {"default": parse_database_url(_db_url[1], base_dir=BASE_DIR)}
    except DatabaseUrlError as exc:
        env.problem(f"{_db_url[0]} is not a usable database URL: {exc}")
        DATABASES = {"default": sqlite_database(VAR_DIR / "torghut.sqlite3")}
DATABASE_IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")

# --------------------------------------------------------------------------------------------
# Cache (DRF throttling, locks' fallback): Redis when configured, else a file cache shared by
# the local processes.
# --------------------------------------------------------------------------------------------
REDIS_URL = env.optional_str("REDIS_URL")
CACHE_URL = env.optional_str("CACHE_URL") or REDIS_URL
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "torghut",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "KEY_PREFIX": "torghut",
        }
    }

# --------------------------------------------------------------------------------------------
# Security (production)
# --------------------------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=IS_PROD)
# probes and scrapers talk plain HTTP inside the cluster
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^db-check$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int(
    "SECURE_HSTS_SECONDS", default=31536000 if IS_PROD else 0, min_value=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=IS_PROD)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=IS_PROD)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=IS_PROD)
X_FRAME_OPTIONS = "DENY"
# HSTS preload is a commitment to the browsers' preload list that an operator makes on purpose.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --------------------------------------------------------------------------------------------
# DRF: authenticated by default, throttled, paginated, one error format
# --------------------------------------------------------------------------------------------
# GitHub webhook requests accepted per client address (POST /whitepapers/webhooks/github,
# counted before the signature check), written as DRF rates are: <count>/<period>
WHITEPAPER_WEBHOOK_THROTTLE = env.str("WHITEPAPER_WEBHOOK_THROTTLE", default="120/min")
if not re.fullmatch(
    r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", WHITEPAPER_WEBHOOK_THROTTLE
):
    env.problem(
        f"WHITEPAPER_WEBHOOK_THROTTLE={WHITEPAPER_WEBHOOK_THROTTLE!r} is not a rate "
        "(<count>/<s|min|hour|day>, e.g. 120/min)"
    )
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "torghut_site.auth.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="120/min"),
        "user": env.str("API_THROTTLE_USER", default="2400/min"),
        "control": env.str("API_THROTTLE_CONTROL", default="30/min"),
        "webhook": WHITEPAPER_WEBHOOK_THROTTLE,
    },
    "DEFAULT_PAGINATION_CLASS": "torghut_site.api.LimitOffsetPagination",
    "PAGE_SIZE": 200,
    "EXCEPTION_HANDLER": "torghut_site.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "torghut_site.schema.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["torghut_site.api.JSONParser"],
}
API_MAX_PAGE_SIZE = 500
# a JSON body nested deeper than this (arrays and objects) is refused with a 400 before the
# view sees it; the parser would otherwise recurse until Python's recursion limit (a 500)
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=64, min_value=2, max_value=500)
# days a new API token lives when its issuer names no TTL (`create_api_token` without
# --ttl-days, the demo bootstrap); 0 = no expiry (the token lives until revoked)
API_TOKEN_DEFAULT_TTL_DAYS = env.int("API_TOKEN_DEFAULT_TTL_DAYS", default=0, min_value=0)

# Admin sign-in (torghut_site.login_guard): after this many failed attempts for one username, or
# from one client address, within ADMIN_LOGIN_LOCKOUT_SECONDS, further attempts from it are
# refused without a password check for ADMIN_LOGIN_LOCKOUT_SECONDS (counters: the default cache)
ADMIN_LOGIN_MAX_FAILURES = env.int("ADMIN_LOGIN_MAX_FAILURES", default=5, min_value=1)
ADMIN_LOGIN_LOCKOUT_SECONDS = env.int("ADMIN_LOGIN_LOCKOUT_SECONDS", default=900, min_value=1)
AUTHENTICATION_BACKENDS = [
    "torghut_site.login_guard.LoginLockoutBackend",  # first: refuses locked sign-ins
    "django.contrib.auth.backends.ModelBackend",
]

SPECTACULAR_SETTINGS = {
    "TITLE": "torghut API",
    "DESCRIPTION": "Trading, order feed, whitepaper and autonomy endpoints of torghut.",
    "VERSION": TORGHUT_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

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
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
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
# Metrics: PROMETHEUS_MULTIPROC_DIR aggregates web, worker and consumer processes on one host;
# TORGHUT_METRICS_PORT gives a worker or consumer its own exporter (one per pod).
# --------------------------------------------------------------------------------------------
PROMETHEUS_MULTIPROC_DIR = env.optional_str("PROMETHEUS_MULTIPROC_DIR")
TORGHUT_METRICS_PORT = env.optional_int("TORGHUT_METRICS_PORT", min_value=1)
PROMETHEUS_EXPORT_MIGRATIONS = False

# --------------------------------------------------------------------------------------------
# Feature flags (Flipt boolean evaluations override the matching settings at run time)
# --------------------------------------------------------------------------------------------
TRADING_FEATURE_FLAGS_ENABLED = env.bool("TRADING_FEATURE_FLAGS_ENABLED", default=False)
TRADING_FEATURE_FLAGS_URL = env.str("TRADING_FEATURE_FLAGS_URL").rstrip("/")
TRADING_FEATURE_FLAGS_TIMEOUT_MS = env.int(
    "TRADING_FEATURE_FLAGS_TIMEOUT_MS", default=500, min_value=1, max_value=60000
)
TRADING_FEATURE_FLAGS_NAMESPACE = env.str("TRADING_FEATURE_FLAGS_NAMESPACE", default="default")
TRADING_FEATURE_FLAGS_ENTITY_ID = env.str("TRADING_FEATURE_FLAGS_ENTITY_ID", default="torghut")
TRADING_FEATURE_FLAGS_TOKEN = env.secret("TRADING_FEATURE_FLAGS_TOKEN")
# how long an evaluated flag is reused before Flipt is asked again (keep below TRADING_POLL_MS)
TRADING_FEATURE_FLAGS_CACHE_SECONDS = env.float(
    "TRADING_FEATURE_FLAGS_CACHE_SECONDS", default=2.0, min_value=0.0
)
# after a transport failure, stop calling Flipt for this long (env values stand meanwhile)
TRADING_FEATURE_FLAGS_BACKOFF_SECONDS = env.float(
    "TRADING_FEATURE_FLAGS_BACKOFF_SECONDS", default=10.0, min_value=0.0
)
# how long the last value Flipt gave outlives a Flipt outage before the env value stands again
TRADING_FEATURE_FLAGS_MAX_STALE_SECONDS = env.float(
    "TRADING_FEATURE_FLAGS_MAX_STALE_SECONDS", default=300.0, min_value=0.0
)
if TRADING_FEATURE_FLAGS_ENABLED and not TRADING_FEATURE_FLAGS_URL:
    env.problem("TRADING_FEATURE_FLAGS_URL is required when TRADING_FEATURE_FLAGS_ENABLED=true")

# --------------------------------------------------------------------------------------------
# Trading: mode and safety
# --------------------------------------------------------------------------------------------
TRADING_ENABLED = env.bool("TRADING_ENABLED", default=False)
TRADING_MODE = env.choice("TRADING_MODE", choices=("paper", "live"), default="paper")
TRADING_LIVE_ENABLED = env.bool("TRADING_LIVE_ENABLED", default=False)
if TRADING_MODE == "live" and not TRADING_LIVE_ENABLED:
    env.problem(
        "TRADING_MODE=live requires TRADING_LIVE_ENABLED=true (allowed: paper, or live with it)"
    )
if TRADING_MODE == "paper" and TRADING_LIVE_ENABLED:
    env.problem("TRADING_LIVE_ENABLED=true requires TRADING_MODE=live (paper and live must agree)")
# the longest TTL a live-approval request may ask for: the time it waits for a second person's
# approval, and then the life of that approval (trading.services.live_approvals; its
# TTL_HOURS_LIMIT repeats the upper bound, 366 days)
TRADING_LIVE_APPROVAL_MAX_TTL_HOURS = env.int(
    "TRADING_LIVE_APPROVAL_MAX_TTL_HOURS", default=24, min_value=1, max_value=8784
)
TRADING_ACCOUNT_LABEL = env.str("TRADING_ACCOUNT_LABEL", default=TRADING_MODE)
TRADING_BROKER = env.choice("TRADING_BROKER", choices=("simulated", "alpaca"), default="simulated")
TRADING_KILL_SWITCH_ENABLED = env.bool("TRADING_KILL_SWITCH_ENABLED", default=True)
TRADING_EMERGENCY_STOP_ENABLED = env.bool("TRADING_EMERGENCY_STOP_ENABLED", default=False)
TRADING_EMERGENCY_STOP_RECOVERY_CYCLES = env.int(
    "TRADING_EMERGENCY_STOP_RECOVERY_CYCLES", default=3, min_value=1
)
TRADING_POLL_MS = env.int("TRADING_POLL_MS", default=5000, min_value=250, max_value=3_600_000)
TRADING_RECONCILE_MS = env.int(
    "TRADING_RECONCILE_MS", default=15000, min_value=1000, max_value=3_600_000
)
TRADING_AUTONOMY_ENABLED = env.bool("TRADING_AUTONOMY_ENABLED", default=False)
TRADING_AUTONOMY_INTERVAL_SECONDS = env.int(
    "TRADING_AUTONOMY_INTERVAL_SECONDS", default=300, min_value=30
)
TRADING_AUTONOMY_SIGNAL_LOOKBACK_MINUTES = env.int(
    "TRADING_AUTONOMY_SIGNAL_LOOKBACK_MINUTES", default=15, min_value=1, max_value=7 * 24 * 60
)
# the gate policy and candidate the scheduled lane uses (defaults: the shipped samples)
TRADING_AUTONOMY_GATE_POLICY_PATH = env.str(
    "TRADING_AUTONOMY_GATE_POLICY_PATH",
    default=str(BASE_DIR / "config" / "autonomous-gate-policy.json"),
)
TRADING_AUTONOMY_STRATEGY_CONFIG_PATH = env.str(
    "TRADING_AUTONOMY_STRATEGY_CONFIG_PATH",
    default=str(BASE_DIR / "config" / "autonomous-strategy-sample.yaml"),
)
for _name in ("TRADING_AUTONOMY_GATE_POLICY_PATH", "TRADING_AUTONOMY_STRATEGY_CONFIG_PATH"):
    if not Path(globals()[_name]).is_file():
        env.problem(f"{_name}={globals()[_name]!r} is not a readable file")
# the scheduled lane targets live only with this flag and the approval token (gate 5)
TRADING_AUTONOMY_ALLOW_LIVE_PROMOTION = env.bool(
    "TRADING_AUTONOMY_ALLOW_LIVE_PROMOTION", default=False
)
TRADING_AUTONOMY_APPROVAL_TOKEN = env.secret("TRADING_AUTONOMY_APPROVAL_TOKEN")
# drift governance (§8.6): reason codes per research run, actions with cooldowns, live gating
TRADING_DRIFT_GOVERNANCE_ENABLED = env.bool("TRADING_DRIFT_GOVERNANCE_ENABLED", default=True)
TRADING_DRIFT_MAX_REQUIRED_NULL_RATE = env.float(
    "TRADING_DRIFT_MAX_REQUIRED_NULL_RATE", default=0.02, min_value=0.0, max_value=1.0
)
TRADING_DRIFT_MAX_STALENESS_MS_P95 = env.float(
    "TRADING_DRIFT_MAX_STALENESS_MS_P95", default=180_000.0, min_value=0.0
)
TRADING_DRIFT_MAX_DUPLICATE_RATIO = env.float(
    "TRADING_DRIFT_MAX_DUPLICATE_RATIO", default=0.05, min_value=0.0, max_value=1.0
)
TRADING_DRIFT_MAX_SCHEMA_MISMATCH_TOTAL = env.int(
    "TRADING_DRIFT_MAX_SCHEMA_MISMATCH_TOTAL", default=0, min_value=0
)
TRADING_DRIFT_MAX_MODEL_CALIBRATION_ERROR = env.float(
    "TRADING_DRIFT_MAX_MODEL_CALIBRATION_ERROR", default=0.45, min_value=0.0
)
TRADING_DRIFT_MAX_MODEL_LLM_ERROR_RATIO = env.float(
    "TRADING_DRIFT_MAX_MODEL_LLM_ERROR_RATIO", default=0.1, min_value=0.0, max_value=1.0
)
TRADING_DRIFT_MIN_PERFORMANCE_NET_PNL = env.float(
    "TRADING_DRIFT_MIN_PERFORMANCE_NET_PNL", default=0.0
)
TRADING_DRIFT_MAX_PERFORMANCE_DRAWDOWN = env.float(
    "TRADING_DRIFT_MAX_PERFORMANCE_DRAWDOWN", default=0.08, min_value=0.0
)
TRADING_DRIFT_MAX_PERFORMANCE_COST_BPS = env.float(
    "TRADING_DRIFT_MAX_PERFORMANCE_COST_BPS", default=35.0, min_value=0.0
)
TRADING_DRIFT_MAX_EXECUTION_FALLBACK_RATIO = env.float(
    "TRADING_DRIFT_MAX_EXECUTION_FALLBACK_RATIO", default=0.25, min_value=0.0, max_value=1.0
)
# the reason codes are defined once, with the detector (a pure module, no Django imports)
_DRIFT_DATA_MODEL_CODES = _drift.DATA_CODES + _drift.MODEL_CODES
_DRIFT_PERFORMANCE_CODES = _drift.PERFORMANCE_CODES
TRADING_DRIFT_TRIGGER_RETRAIN_REASON_CODES = env.csv(
    "TRADING_DRIFT_TRIGGER_RETRAIN_REASON_CODES", default=_DRIFT_DATA_MODEL_CODES
)
TRADING_DRIFT_TRIGGER_RESELECTION_REASON_CODES = env.csv(
    "TRADING_DRIFT_TRIGGER_RESELECTION_REASON_CODES", default=_DRIFT_PERFORMANCE_CODES
)
TRADING_DRIFT_ROLLBACK_REASON_CODES = env.csv(
    "TRADING_DRIFT_ROLLBACK_REASON_CODES", default=_DRIFT_PERFORMANCE_CODES
)
for _name in (
    "TRADING_DRIFT_TRIGGER_RETRAIN_REASON_CODES",
    "TRADING_DRIFT_TRIGGER_RESELECTION_REASON_CODES",
    "TRADING_DRIFT_ROLLBACK_REASON_CODES",
):
    _unknown = sorted(set(globals()[_name]) - set(_drift.ALL_CODES))
    if _unknown:
        env.problem(
            f"{_name} has unknown drift reason code(s) {', '.join(_unknown)} (known: "
            f"{', '.join(_drift.ALL_CODES)})"
        )
TRADING_DRIFT_RETRAIN_COOLDOWN_SECONDS = env.int(
    "TRADING_DRIFT_RETRAIN_COOLDOWN_SECONDS", default=3600, min_value=0
)
TRADING_DRIFT_RESELECTION_COOLDOWN_SECONDS = env.int(
    "TRADING_DRIFT_RESELECTION_COOLDOWN_SECONDS", default=3600, min_value=0
)
TRADING_DRIFT_LIVE_PROMOTION_REQUIRES_EVIDENCE = env.bool(
    "TRADING_DRIFT_LIVE_PROMOTION_REQUIRES_EVIDENCE", default=True
)
TRADING_DRIFT_LIVE_PROMOTION_MAX_EVIDENCE_AGE_SECONDS = env.int(
    "TRADING_DRIFT_LIVE_PROMOTION_MAX_EVIDENCE_AGE_SECONDS", default=1800, min_value=1
)
# a scheduled run with a rollback code demotes the strategy's promoted champion (risk-reducing)
TRADING_DRIFT_ROLLBACK_ON_PERFORMANCE = env.bool(
    "TRADING_DRIFT_ROLLBACK_ON_PERFORMANCE", default=True
)
# evidence continuity: every recent research run keeps its ledger rows
TRADING_EVIDENCE_CONTINUITY_ENABLED = env.bool("TRADING_EVIDENCE_CONTINUITY_ENABLED", default=True)
TRADING_EVIDENCE_CONTINUITY_INTERVAL_SECONDS = env.int(
    "TRADING_EVIDENCE_CONTINUITY_INTERVAL_SECONDS", default=86_400, min_value=300
)
TRADING_EVIDENCE_CONTINUITY_RUN_LIMIT = env.int(
    "TRADING_EVIDENCE_CONTINUITY_RUN_LIMIT", default=8, min_value=1, max_value=50
)
TRADING_MAX_NOTIONAL_PER_TRADE = env.decimal("TRADING_MAX_NOTIONAL_PER_TRADE", min_value=Decimal(0))

TRADING_SUBMIT_UNCONFIRMED_GRACE_SECONDS = env.int(
    "TRADING_SUBMIT_UNCONFIRMED_GRACE_SECONDS", default=120, min_value=10
)
# how long a worker holds a lane's cycle lease; a killed worker's lease lapses after this
TRADING_LANE_LEASE_SECONDS = env.int("TRADING_LANE_LEASE_SECONDS", default=120, min_value=10)
TRADING_ARTIFACT_DIR = env.str(
    "TRADING_AUTONOMY_ARTIFACT_DIR", default=str(VAR_DIR / "artifacts" / "autonomy")
)
TRADING_ROLLBACK_SIGNAL_LAG_SECONDS_LIMIT = env.float(
    "TRADING_ROLLBACK_SIGNAL_LAG_SECONDS_LIMIT", default=600.0, min_value=1.0
)
TRADING_ROLLBACK_SIGNAL_STALENESS_ALERT_STREAK_LIMIT = env.int(
    "TRADING_ROLLBACK_SIGNAL_STALENESS_ALERT_STREAK_LIMIT", default=3, min_value=1
)
TRADING_ROLLBACK_AUTONOMY_FAILURE_STREAK_LIMIT = env.int(
    "TRADING_ROLLBACK_AUTONOMY_FAILURE_STREAK_LIMIT", default=3, min_value=1
)
TRADING_ROLLBACK_FALLBACK_RATIO_LIMIT = env.float(
    "TRADING_ROLLBACK_FALLBACK_RATIO_LIMIT", default=0.25, min_value=0.0, max_value=1.0
)
TRADING_ROLLBACK_MAX_DRAWDOWN_LIMIT = env.float(
    "TRADING_ROLLBACK_MAX_DRAWDOWN_LIMIT", default=0.08, min_value=0.0, max_value=1.0
)
# fraction of the US/Eastern session's starting equity a lane may lose before the stop latches
TRADING_ROLLBACK_DAILY_LOSS_LIMIT = env.float(
    "TRADING_ROLLBACK_DAILY_LOSS_LIMIT", default=0.05, min_value=0.0, max_value=1.0
)
# a ratio limit of 0 would latch the emergency stop on every cycle
for _name in (
    "TRADING_ROLLBACK_FALLBACK_RATIO_LIMIT",
    "TRADING_ROLLBACK_MAX_DRAWDOWN_LIMIT",
    "TRADING_ROLLBACK_DAILY_LOSS_LIMIT",
):
    if env.is_set(_name) and globals()[_name] <= 0:
        env.problem(f"{_name}={globals()[_name]} must be > 0")

# -- account lanes ---------------------------------------------------------------------------
TRADING_MULTI_ACCOUNT_ENABLED = env.bool("TRADING_MULTI_ACCOUNT_ENABLED", default=False)
TRADING_ACCOUNTS_JSON = env.json("TRADING_ACCOUNTS_JSON", default=None)
TRADING_LANES: list[dict[str, Any]] = []
if TRADING_MULTI_ACCOUNT_ENABLED:
    _accounts = TRADING_ACCOUNTS_JSON
    if isinstance(_accounts, dict):
        _accounts = _accounts.get("accounts")
    if not isinstance(_accounts, list) or not _accounts:
        env.problem(
            'TRADING_ACCOUNTS_JSON must be a non-empty list of lanes (or {"accounts": [...]}) '
            "when TRADING_MULTI_ACCOUNT_ENABLED=true"
        )
        _accounts = []
    for _i, _lane in enumerate(_accounts):
        if not isinstance(_lane, dict) or not str(_lane.get("label") or "").strip():
            env.problem(f"TRADING_ACCOUNTS_JSON[{_i}] needs a non-empty 'label'")
            continue
        _mode = str(_lane.get("mode") or TRADING_MODE).lower()
        _broker = str(_lane.get("broker") or TRADING_BROKER).lower()
        if _mode not in ("paper", "live"):
            env.problem(f"TRADING_ACCOUNTS_JSON[{_i}].mode={_mode!r} must be one of: paper, live")
        if _broker not in ("simulated", "alpaca"):
            env.problem(
                f"TRADING_ACCOUNTS_JSON[{_i}].broker={_broker!r} must be one of: simulated, alpaca"
            )
        if _mode == "live" and not TRADING_LIVE_ENABLED:
            env.problem(
                f"TRADING_ACCOUNTS_JSON[{_i}] is a live lane but TRADING_LIVE_ENABLED is not true"
            )
        TRADING_LANES.append(
            {
                "label": str(_lane["label"]).strip(),
                "mode": _mode,
                "broker": _broker,
                "enabled": bool(_lane.get("enabled", True)),
                "api_key": str(_lane.get("api_key") or ""),
                "secret_key": str(_lane.get("secret_key") or ""),
                "base_url": str(_lane.get("base_url") or "").rstrip("/").removesuffix("/v2"),
            }
        )
    if len({lane["label"] for lane in TRADING_LANES}) != len(TRADING_LANES):
        env.problem("TRADING_ACCOUNTS_JSON has duplicate lane labels")
else:
    TRADING_LANES.append(
        {
            "label": TRADING_ACCOUNT_LABEL,
            "mode": TRADING_MODE,
            "broker": TRADING_BROKER,
            "enabled": True,
            "api_key": "",
            "secret_key": "",
            "base_url": "",
        }
    )

# -- signals ---------------------------------------------------------------------------------
TRADING_SIGNAL_SOURCE = env.choice(
    "TRADING_SIGNAL_SOURCE", choices=("replay", "clickhouse", "alpaca", "kafka"), default="replay"
)
TRADING_SIGNAL_REPLAY_PATH = env.str(
    "TRADING_SIGNAL_REPLAY_PATH",
    default=str(BASE_DIR / "trading" / "sample_data" / "signals-sample.csv"),
)
TRADING_SIGNAL_REPLAY_SPEED = env.float(
    "TRADING_SIGNAL_REPLAY_SPEED", default=60.0, min_value=0.001
)
TRADING_SIGNAL_REPLAY_LOOP = env.bool("TRADING_SIGNAL_REPLAY_LOOP", default=True)
TRADING_SIGNAL_TABLE = env.str("TRADING_SIGNAL_TABLE", default="torghut.ta_signals")
TRADING_SIGNAL_SCHEMA = env.choice(
    "TRADING_SIGNAL_SCHEMA", choices=("auto", "envelope", "flat"), default="auto"
)
TRADING_SIGNAL_BATCH_SIZE = env.int(
    "TRADING_SIGNAL_BATCH_SIZE", default=500, min_value=1, max_value=10000
)
TRADING_SIGNAL_LOOKBACK_MINUTES = env.int(
    "TRADING_SIGNAL_LOOKBACK_MINUTES", default=15, min_value=1
)
TRADING_SIGNAL_EMPTY_BATCH_ADVANCE_SECONDS = env.int(
    "TRADING_SIGNAL_EMPTY_BATCH_ADVANCE_SECONDS", default=60, min_value=0
)
TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD = env.int(
    "TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD", default=2, min_value=1
)
TRADING_SIGNAL_STALE_LAG_ALERT_SECONDS = env.int(
    "TRADING_SIGNAL_STALE_LAG_ALERT_SECONDS", default=300, min_value=1
)
TRADING_SIGNAL_STALENESS_ALERT_CRITICAL_REASONS = env.csv(
    "TRADING_SIGNAL_STALENESS_ALERT_CRITICAL_REASONS",
    default=("cursor_ahead_of_stream", "no_signals_in_window", "universe_source_unavailable"),
)
TRADING_SIGNAL_MARKET_CLOSED_EXPECTED_REASONS = env.csv(
    "TRADING_SIGNAL_MARKET_CLOSED_EXPECTED_REASONS",
    default=("no_signals_in_window", "cursor_tail_stable", "empty_batch_advanced"),
)
TA_CLICKHOUSE_URL = env.str("TA_CLICKHOUSE_URL").rstrip("/")
TA_CLICKHOUSE_USERNAME = env.str("TA_CLICKHOUSE_USERNAME")
TA_CLICKHOUSE_PASSWORD = env.secret("TA_CLICKHOUSE_PASSWORD")
TA_CLICKHOUSE_CONN_TIMEOUT_SECONDS = env.float(
    "TA_CLICKHOUSE_CONN_TIMEOUT_SECONDS", "CLICKHOUSE_TIMEOUT_SECONDS", default=5.0, min_value=0.1
)
TRADING_FEATURE_QUALITY_ENABLED = env.bool("TRADING_FEATURE_QUALITY_ENABLED", default=True)
TRADING_FEATURE_MAX_REQUIRED_NULL_RATE = env.float(
    "TRADING_FEATURE_MAX_REQUIRED_NULL_RATE", default=0.01, min_value=0.0, max_value=1.0
)
TRADING_FEATURE_MAX_STALENESS_MS = env.int(
    "TRADING_FEATURE_MAX_STALENESS_MS", default=120000, min_value=0
)
TRADING_FEATURE_MAX_DUPLICATE_RATIO = env.float(
    "TRADING_FEATURE_MAX_DUPLICATE_RATIO", default=0.02, min_value=0.0, max_value=1.0
)

# -- strategies ------------------------------------------------------------------------------
TRADING_STRATEGY_CONFIG_PATH = env.str("TRADING_STRATEGY_CONFIG_PATH")
TRADING_STRATEGY_CONFIG_MODE = env.choice(
    "TRADING_STRATEGY_CONFIG_MODE", choices=("merge", "sync"), default="merge"
)
TRADING_STRATEGY_RELOAD_SECONDS = env.int(
    "TRADING_STRATEGY_RELOAD_SECONDS", default=10, min_value=1
)
TRADING_STRATEGY_RUNTIME_CIRCUIT_ERRORS = env.int(
    "TRADING_STRATEGY_RUNTIME_CIRCUIT_ERRORS", default=3, min_value=1
)
TRADING_STRATEGY_RUNTIME_CIRCUIT_COOLDOWN_SECONDS = env.int(
    "TRADING_STRATEGY_RUNTIME_CIRCUIT_COOLDOWN_SECONDS", default=300, min_value=1
)

# -- universe --------------------------------------------------------------------------------
TRADING_UNIVERSE_SOURCE = env.choice(
    "TRADING_UNIVERSE_SOURCE", choices=("static", "jangar"), default="static"
)
TRADING_UNIVERSE_REQUIRE_NON_EMPTY_JANGAR = env.bool(
    "TRADING_UNIVERSE_REQUIRE_NON_EMPTY_JANGAR", default=True
)
TRADING_UNIVERSE_MAX_STALE_SECONDS = env.int(
    "TRADING_UNIVERSE_MAX_STALE_SECONDS", default=900, min_value=0
)
TRADING_UNIVERSE_CACHE_SECONDS = env.int("TRADING_UNIVERSE_CACHE_SECONDS", default=300, min_value=0)
TRADING_UNIVERSE_TIMEOUT_SECONDS = env.float(
    "TRADING_UNIVERSE_TIMEOUT_SECONDS", default=5.0, min_value=0.1
)
TRADING_STATIC_SYMBOLS = [s.upper() for s in env.csv("TRADING_STATIC_SYMBOLS")]
JANGAR_BASE_URL = env.str("JANGAR_BASE_URL").rstrip("/")
JANGAR_API_KEY = env.secret("JANGAR_API_KEY")
JANGAR_SYMBOLS_URL = env.str("JANGAR_SYMBOLS_URL")
if TRADING_UNIVERSE_SOURCE == "jangar" and not JANGAR_SYMBOLS_URL:
    env.problem("TRADING_UNIVERSE_SOURCE=jangar requires JANGAR_SYMBOLS_URL")

# -- sizing, portfolio, execution policy, risk -------------------------------------------------
TRADING_DEFAULT_QTY = env.decimal("TRADING_DEFAULT_QTY", default=Decimal("1"), min_value=Decimal(0))
TRADING_MIN_NOTIONAL_PER_TRADE = env.decimal("TRADING_MIN_NOTIONAL_PER_TRADE", min_value=Decimal(0))
TRADING_MAX_PARTICIPATION_RATE = env.decimal("TRADING_MAX_PARTICIPATION_RATE", min_value=Decimal(0))
TRADING_MAX_POSITION_PCT_EQUITY = env.decimal(
    "TRADING_MAX_POSITION_PCT_EQUITY", min_value=Decimal(0)
)
TRADING_PORTFOLIO_NOTIONAL_PER_POSITION = env.decimal(
    "TRADING_PORTFOLIO_NOTIONAL_PER_POSITION", min_value=Decimal(0)
)
TRADING_PORTFOLIO_VOLATILITY_TARGET = env.decimal(
    "TRADING_PORTFOLIO_VOLATILITY_TARGET", min_value=Decimal(0)
)
TRADING_PORTFOLIO_VOLATILITY_FLOOR = env.decimal(
    "TRADING_PORTFOLIO_VOLATILITY_FLOOR", default=Decimal("0"), min_value=Decimal(0)
)
TRADING_PORTFOLIO_MAX_POSITIONS = env.optional_int("TRADING_PORTFOLIO_MAX_POSITIONS", min_value=1)
TRADING_PORTFOLIO_MAX_NOTIONAL_PER_SYMBOL = env.decimal(
    "TRADING_PORTFOLIO_MAX_NOTIONAL_PER_SYMBOL", min_value=Decimal(0)
)
TRADING_PORTFOLIO_MAX_GROSS_EXPOSURE = env.decimal(
    "TRADING_PORTFOLIO_MAX_GROSS_EXPOSURE", min_value=Decimal(0)
)
TRADING_PORTFOLIO_MAX_GROSS_EXPOSURE_PCT_EQUITY = env.decimal(
    "TRADING_PORTFOLIO_MAX_GROSS_EXPOSURE_PCT_EQUITY", min_value=Decimal(0)
)
TRADING_PORTFOLIO_MAX_NET_EXPOSURE = env.decimal(
    "TRADING_PORTFOLIO_MAX_NET_EXPOSURE", min_value=Decimal(0)
)
TRADING_PORTFOLIO_MAX_NET_EXPOSURE_PCT_EQUITY = env.decimal(
    "TRADING_PORTFOLIO_MAX_NET_EXPOSURE_PCT_EQUITY", min_value=Decimal(0)
)
# allocator (`trading.gates.gate_allocator`): notional room per strategy, symbol and correlation
# group for risk-increasing orders; the flag is also read from Flipt every cycle
TRADING_ALLOCATOR_ENABLED = env.bool("TRADING_ALLOCATOR_ENABLED", default=False)
TRADING_ALLOCATOR_STRATEGY_NOTIONAL_CAPS = env.decimal_map(
    "TRADING_ALLOCATOR_STRATEGY_NOTIONAL_CAPS"
)
TRADING_ALLOCATOR_SYMBOL_NOTIONAL_CAPS = {
    symbol.upper(): cap
    for symbol, cap in env.decimal_map("TRADING_ALLOCATOR_SYMBOL_NOTIONAL_CAPS").items()
}
TRADING_ALLOCATOR_MAX_SYMBOL_NOTIONAL = env.decimal(
    "TRADING_ALLOCATOR_MAX_SYMBOL_NOTIONAL", min_value=Decimal(0)
)
TRADING_ALLOCATOR_MAX_SYMBOL_PCT_EQUITY = env.decimal(
    "TRADING_ALLOCATOR_MAX_SYMBOL_PCT_EQUITY", min_value=Decimal(0)
)
TRADING_ALLOCATOR_SYMBOL_CORRELATION_GROUPS = {
    symbol.upper(): group
    for symbol, group in env.str_map("TRADING_ALLOCATOR_SYMBOL_CORRELATION_GROUPS").items()
}
TRADING_ALLOCATOR_CORRELATION_GROUP_NOTIONAL_CAPS = env.decimal_map(
    "TRADING_ALLOCATOR_CORRELATION_GROUP_NOTIONAL_CAPS"
)
_unknown_groups = sorted(
    set(TRADING_ALLOCATOR_CORRELATION_GROUP_NOTIONAL_CAPS)
    - set(TRADING_ALLOCATOR_SYMBOL_CORRELATION_GROUPS.values())
)
if _unknown_groups:
    env.problem(
        "TRADING_ALLOCATOR_CORRELATION_GROUP_NOTIONAL_CAPS names group(s) no symbol belongs to in "
        f"TRADING_ALLOCATOR_SYMBOL_CORRELATION_GROUPS: {', '.join(_unknown_groups)}"
    )
TRADING_EXECUTION_PREFER_LIMIT = env.bool("TRADING_EXECUTION_PREFER_LIMIT", default=True)
# `GET /trading/tca` and `/trading/metrics` answer their TCA summary from the default cache,
# computed at most this many seconds ago (`summary_as_of` in the answer); the summary covers at
# most the last TRADING_TCA_SUMMARY_MAX_LOOKBACK_DAYS days, so one computation is bounded too
TRADING_TCA_SUMMARY_CACHE_SECONDS = env.int(
    "TRADING_TCA_SUMMARY_CACHE_SECONDS", default=60, min_value=1, max_value=3600
)
TRADING_TCA_SUMMARY_MAX_LOOKBACK_DAYS = env.int(
    "TRADING_TCA_SUMMARY_MAX_LOOKBACK_DAYS", default=90, min_value=1, max_value=3650
)
TRADING_COOLDOWN_SECONDS = env.int("TRADING_COOLDOWN_SECONDS", default=0, min_value=0)
TRADING_ALLOW_SHORTS = env.bool("TRADING_ALLOW_SHORTS", default=False)
TRADING_WS_CRYPTO_ENABLED = env.bool("TRADING_WS_CRYPTO_ENABLED", default=False)
TRADING_UNIVERSE_CRYPTO_ENABLED = env.bool("TRADING_UNIVERSE_CRYPTO_ENABLED", default=False)
TRADING_CRYPTO_ENABLED = env.bool("TRADING_CRYPTO_ENABLED", default=False)
TRADING_CRYPTO_LIVE_ENABLED = env.bool("TRADING_CRYPTO_LIVE_ENABLED", default=False)

# --------------------------------------------------------------------------------------------
# LLM trade review (inventory §10) and DSPy programs (§9). The review runs in a Celery task, never
# in the trade cycle: a decision that needs it waits in `pending_review` until the verdict or the
# deadline. An LLM may veto or shrink a trade, never enlarge it.
# --------------------------------------------------------------------------------------------
LLM_VERDICT_MODES = ("veto", "pass_through")
LLM_UNCERTAINTY_BANDS = ("low", "medium", "high")
LLM_COMMITTEE_ALL_ROLES = ("researcher", "risk_critic", "execution_critic", "policy_judge")
LLM_ROLLOUT_STAGES = (
    "stage0",
    "stage1",
    "stage2",
    "stage3",
    "stage0_baseline",
    "stage1_shadow_pilot",
    "stage2_paper_advisory",
    "stage3_controlled_live",
)
LLM_ENABLED = env.bool("LLM_ENABLED", default=False)
LLM_PROVIDER = env.choice(
    "LLM_PROVIDER",
    choices=("openai", "jangar", "self_hosted"),
    default="jangar" if JANGAR_BASE_URL else "openai",
)
LLM_MODEL = env.str("LLM_MODEL", default="gpt-5.3-codex-spark")
OPENAI_API_KEY = env.secret("OPENAI_API_KEY")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="https://api.openai.com/v1").rstrip("/")
# an OpenAI-compatible server: the fallback when the primary provider fails, or the primary
# itself with LLM_PROVIDER=self_hosted
LLM_SELF_HOSTED_BASE_URL = env.str("LLM_SELF_HOSTED_BASE_URL").rstrip("/")
LLM_SELF_HOSTED_API_KEY = env.secret("LLM_SELF_HOSTED_API_KEY", default="local")
LLM_SELF_HOSTED_MODEL = env.str("LLM_SELF_HOSTED_MODEL", default=LLM_MODEL)
LLM_PROMPT_VERSION = env.str("LLM_PROMPT_VERSION", default="v1")
# greedy decoding and a fixed seed by default: the same snapshot asks the same question twice
LLM_TEMPERATURE = env.float("LLM_TEMPERATURE", default=0.0, min_value=0.0, max_value=2.0)
LLM_SEED = env.int("LLM_SEED", default=0, min_value=0)
LLM_MAX_TOKENS = env.int("LLM_MAX_TOKENS", default=300, min_value=16, max_value=32000)
LLM_TOKEN_BUDGET_MAX = env.int("LLM_TOKEN_BUDGET_MAX", default=1200, min_value=16)
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=20.0, min_value=0.1, max_value=300)
# how long a decision waits in `pending_review` before the fail mode decides for it
LLM_REVIEW_DEADLINE_SECONDS = env.int(
    "LLM_REVIEW_DEADLINE_SECONDS", default=30, min_value=1, max_value=300
)
LLM_FAIL_MODE = env.choice("LLM_FAIL_MODE", choices=LLM_VERDICT_MODES, default="veto")
LLM_FAIL_MODE_ENFORCEMENT = env.choice(
    "LLM_FAIL_MODE_ENFORCEMENT", choices=("strict_veto", "configured"), default="strict_veto"
)
if LLM_FAIL_MODE_ENFORCEMENT == "strict_veto" and LLM_FAIL_MODE != "veto":
    env.problem(
        f"LLM_FAIL_MODE={LLM_FAIL_MODE!r} needs LLM_FAIL_MODE_ENFORCEMENT=configured "
        "(strict_veto allows only veto)"
    )
LLM_FAIL_OPEN_LIVE_APPROVED = env.bool("LLM_FAIL_OPEN_LIVE_APPROVED", default=False)
LLM_ABSTAIN_FAIL_MODE = env.choice(
    "LLM_ABSTAIN_FAIL_MODE", choices=LLM_VERDICT_MODES, default="pass_through"
)
LLM_ESCALATE_FAIL_MODE = env.choice(
    "LLM_ESCALATE_FAIL_MODE", choices=LLM_VERDICT_MODES, default="veto"
)
LLM_QUALITY_FAIL_MODE = env.choice(
    "LLM_QUALITY_FAIL_MODE", choices=LLM_VERDICT_MODES, default="veto"
)
LLM_MIN_CONFIDENCE = env.float("LLM_MIN_CONFIDENCE", default=0.5, min_value=0.0, max_value=1.0)
LLM_MIN_CALIBRATED_TOP_PROBABILITY = env.float(
    "LLM_MIN_CALIBRATED_TOP_PROBABILITY", default=0.45, min_value=0.0, max_value=1.0
)
LLM_MIN_PROBABILITY_MARGIN = env.float(
    "LLM_MIN_PROBABILITY_MARGIN", default=0.05, min_value=0.0, max_value=1.0
)
LLM_MAX_UNCERTAINTY = env.float("LLM_MAX_UNCERTAINTY", default=0.6, min_value=0.0, max_value=1.0)
LLM_MAX_UNCERTAINTY_BAND = env.choice(
    "LLM_MAX_UNCERTAINTY_BAND", choices=LLM_UNCERTAINTY_BANDS, default="medium"
)
LLM_MIN_CALIBRATION_QUALITY_SCORE = env.float(
    "LLM_MIN_CALIBRATION_QUALITY_SCORE", default=0.5, min_value=0.0, max_value=1.0
)
LLM_ADJUSTMENT_ALLOWED = env.bool("LLM_ADJUSTMENT_ALLOWED", default=False)
LLM_ADJUSTMENT_APPROVED = env.bool("LLM_ADJUSTMENT_APPROVED", default=False)
LLM_MIN_QTY_MULTIPLIER = env.decimal(
    "LLM_MIN_QTY_MULTIPLIER", default=Decimal("0.5"), min_value=Decimal("0.01")
) or Decimal("0.5")
LLM_MAX_QTY_MULTIPLIER = env.decimal(
    "LLM_MAX_QTY_MULTIPLIER", default=Decimal("1.25"), min_value=Decimal("0.01")
) or Decimal("1.25")
if LLM_MIN_QTY_MULTIPLIER > LLM_MAX_QTY_MULTIPLIER:
    env.problem(
        f"LLM_MIN_QTY_MULTIPLIER={LLM_MIN_QTY_MULTIPLIER} must be <= "
        f"LLM_MAX_QTY_MULTIPLIER={LLM_MAX_QTY_MULTIPLIER}"
    )
if LLM_MIN_QTY_MULTIPLIER > 1:
    env.problem(
        f"LLM_MIN_QTY_MULTIPLIER={LLM_MIN_QTY_MULTIPLIER} must be <= 1 "
        "(a review may shrink a trade, never enlarge it)"
    )
LLM_SHADOW_MODE = env.bool("LLM_SHADOW_MODE", default=False)
LLM_ROLLOUT_STAGE = env.choice("LLM_ROLLOUT_STAGE", choices=LLM_ROLLOUT_STAGES, default="stage3")
LLM_RECENT_DECISIONS = env.int("LLM_RECENT_DECISIONS", default=5, min_value=0, max_value=50)
LLM_CIRCUIT_MAX_ERRORS = env.int("LLM_CIRCUIT_MAX_ERRORS", default=3, min_value=1, max_value=1000)
LLM_CIRCUIT_WINDOW_SECONDS = env.int("LLM_CIRCUIT_WINDOW_SECONDS", default=300, min_value=1)
LLM_CIRCUIT_COOLDOWN_SECONDS = env.int("LLM_CIRCUIT_COOLDOWN_SECONDS", default=600, min_value=1)
LLM_ALLOWED_PROMPT_VERSIONS = env.csv("LLM_ALLOWED_PROMPT_VERSIONS")
LLM_ALLOWED_MODELS = env.csv("LLM_ALLOWED_MODELS")
# model-risk governance evidence: stage2/stage3 enforce only when all four are set
LLM_EVALUATION_REPORT = env.str("LLM_EVALUATION_REPORT")
LLM_EFFECTIVE_CHALLENGE_ID = env.str("LLM_EFFECTIVE_CHALLENGE_ID")
LLM_SHADOW_COMPLETED_AT = env.str("LLM_SHADOW_COMPLETED_AT")
LLM_MODEL_VERSION_LOCK = env.str("LLM_MODEL_VERSION_LOCK")
if LLM_SHADOW_COMPLETED_AT:
    from datetime import datetime as _datetime

    try:
        _datetime.fromisoformat(LLM_SHADOW_COMPLETED_AT.replace("Z", "+00:00"))
    except ValueError:
        env.problem(
            f"LLM_SHADOW_COMPLETED_AT={LLM_SHADOW_COMPLETED_AT!r} is not an ISO 8601 timestamp"
        )
LLM_COMMITTEE_ROLES = env.csv("LLM_COMMITTEE_ROLES", default=LLM_COMMITTEE_ALL_ROLES)
LLM_COMMITTEE_MANDATORY_ROLES = env.csv(
    "LLM_COMMITTEE_MANDATORY_ROLES", default=("risk_critic", "execution_critic", "policy_judge")
)
for _name, _roles in (
    ("LLM_COMMITTEE_ROLES", LLM_COMMITTEE_ROLES),
    ("LLM_COMMITTEE_MANDATORY_ROLES", LLM_COMMITTEE_MANDATORY_ROLES),
):
    _unknown = sorted(set(_roles) - set(LLM_COMMITTEE_ALL_ROLES))
    if _unknown:
        env.problem(
            f"{_name} has unknown roles {', '.join(_unknown)} "
            f"(allowed: {', '.join(LLM_COMMITTEE_ALL_ROLES)})"
        )
if set(LLM_COMMITTEE_MANDATORY_ROLES) - set(LLM_COMMITTEE_ROLES):
    env.problem("LLM_COMMITTEE_MANDATORY_ROLES must be a subset of LLM_COMMITTEE_ROLES")
if LLM_MAX_TOKENS > LLM_TOKEN_BUDGET_MAX:
    env.problem(
        f"LLM_MAX_TOKENS={LLM_MAX_TOKENS} exceeds LLM_TOKEN_BUDGET_MAX={LLM_TOKEN_BUDGET_MAX}"
    )
if LLM_ENABLED:
    if LLM_PROVIDER == "jangar" and not JANGAR_BASE_URL:
        env.problem("LLM_PROVIDER=jangar requires JANGAR_BASE_URL")
    if LLM_PROVIDER == "openai" and not OPENAI_API_KEY:
        env.problem("LLM_PROVIDER=openai requires OPENAI_API_KEY (or OPENAI_API_KEY_FILE)")
    if LLM_PROVIDER == "self_hosted" and not LLM_SELF_HOSTED_BASE_URL:
        env.problem("LLM_PROVIDER=self_hosted requires LLM_SELF_HOSTED_BASE_URL")

LLM_DSPY_RUNTIME_MODE = env.choice(
    "LLM_DSPY_RUNTIME_MODE", choices=("disabled", "shadow", "active"), default="disabled"
)
LLM_DSPY_ARTIFACT_HASH = env.str("LLM_DSPY_ARTIFACT_HASH").lower()
if LLM_DSPY_RUNTIME_MODE != "disabled":
    # that the hash names a stored, promoted artifact is checked against the database by the
    # `trading.E001` system check (manage.py migrate / check --database default)
    if not LLM_DSPY_ARTIFACT_HASH:
        env.problem(
            f"LLM_DSPY_RUNTIME_MODE={LLM_DSPY_RUNTIME_MODE} requires LLM_DSPY_ARTIFACT_HASH"
        )
    elif len(LLM_DSPY_ARTIFACT_HASH) != 64 or any(
        c not in "0123456789abcdef" for c in LLM_DSPY_ARTIFACT_HASH
    ):
        env.problem(
            f"LLM_DSPY_ARTIFACT_HASH={LLM_DSPY_ARTIFACT_HASH!r} is not a sha256 (64 hex digits)"
        )
LLM_DSPY_PROGRAM_NAME = env.str("LLM_DSPY_PROGRAM_NAME", default="trade-review-committee-v1")
LLM_DSPY_SIGNATURE_VERSION = env.str("LLM_DSPY_SIGNATURE_VERSION", default="v1")
LLM_DSPY_TIMEOUT_SECONDS = env.float(
    "LLM_DSPY_TIMEOUT_SECONDS", default=8.0, min_value=0.1, max_value=300
)
LLM_DSPY_COMPILE_METRICS_POLICY_REF = env.str(
    "LLM_DSPY_COMPILE_METRICS_POLICY_REF", default="config/trading/llm/dspy-metrics.yaml"
)
LLM_DSPY_SECRET_BINDING_REF = env.str(
    "LLM_DSPY_SECRET_BINDING_REF", default="codex-whitepaper-github-token"
)
LLM_DSPY_AGENTRUN_TTL_SECONDS = env.int("LLM_DSPY_AGENTRUN_TTL_SECONDS", default=14400, min_value=0)

# --------------------------------------------------------------------------------------------
# Alpaca
# --------------------------------------------------------------------------------------------
APCA_API_KEY_ID = env.secret("APCA_API_KEY_ID")
APCA_API_SECRET_KEY = env.secret("APCA_API_SECRET_KEY")
APCA_API_BASE_URL = env.str("APCA_API_BASE_URL").rstrip("/").removesuffix("/v2")
APCA_DATA_API_BASE_URL = env.str("APCA_DATA_API_BASE_URL").rstrip("/")
# alpaca-py sets no HTTP timeout of its own; an order submit that times out is "ambiguous"
APCA_HTTP_TIMEOUT_SECONDS = env.float("APCA_HTTP_TIMEOUT_SECONDS", default=5.0, min_value=0.1)
# client-side budget, under Alpaca's 200 requests/min per account
APCA_RATE_LIMIT_PER_MINUTE = env.int(
    "APCA_RATE_LIMIT_PER_MINUTE", default=180, min_value=1, max_value=10000
)
APCA_DATA_FEED = env.choice("APCA_DATA_FEED", choices=("iex", "sip"), default="iex")
if TRADING_BROKER == "alpaca" and not (APCA_API_KEY_ID and APCA_API_SECRET_KEY):
    env.problem("TRADING_BROKER=alpaca needs APCA_API_KEY_ID and APCA_API_SECRET_KEY")

# --------------------------------------------------------------------------------------------
# Simulated broker (the embedded default): Alpaca order semantics, state kept in the database
# --------------------------------------------------------------------------------------------
SIMULATED_BROKER_STARTING_CASH = env.decimal(
    "SIMULATED_BROKER_STARTING_CASH", default=Decimal("100000"), min_value=Decimal(0)
)
SIMULATED_BROKER_SLIPPAGE_BPS = env.decimal(
    "SIMULATED_BROKER_SLIPPAGE_BPS", default=Decimal("5"), min_value=Decimal(0)
)
SIMULATED_BROKER_FEE_PER_SHARE = env.decimal(
    "SIMULATED_BROKER_FEE_PER_SHARE", default=Decimal("0"), min_value=Decimal(0)
)
SIMULATED_BROKER_FEE_BPS = env.decimal(
    "SIMULATED_BROKER_FEE_BPS", default=Decimal("0"), min_value=Decimal(0)
)

# --------------------------------------------------------------------------------------------
# Order feed (Kafka trade updates, inventory §7) and the broker-to-Kafka bridge
# --------------------------------------------------------------------------------------------
KAFKA_OFFSET_RESETS = ("earliest", "latest", "error")
KAFKA_SECURITY_PROTOCOLS = ("plaintext", "ssl", "sasl_plaintext", "sasl_ssl")
KAFKA_SASL_MECHANISMS = ("plain", "scram-sha-256", "scram-sha-512")


def kafka_security(prefix: str) -> dict[str, str]:
    """`<prefix>_SECURITY_PROTOCOL`, `_SASL_MECHANISM`, `_SASL_USERNAME`, `_SASL_PASSWORD`."""
    protocol = env.choice(
        f"{prefix}_SECURITY_PROTOCOL", choices=KAFKA_SECURITY_PROTOCOLS, default="plaintext"
    ).upper()
    mechanism = env.choice(
        f"{prefix}_SASL_MECHANISM", choices=KAFKA_SASL_MECHANISMS, default=""
    ).upper()
    username = env.str(f"{prefix}_SASL_USERNAME")
    password = env.secret(f"{prefix}_SASL_PASSWORD")
    if protocol.startswith("SASL") and not (mechanism and username and password):
        env.problem(
            f"{prefix}_SECURITY_PROTOCOL={protocol} needs {prefix}_SASL_MECHANISM "
            f"(one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), {prefix}_SASL_USERNAME and "
            f"{prefix}_SASL_PASSWORD"
        )
    security = {"security.protocol": protocol}
    if protocol.startswith("SASL"):
        security.update(
            {"sasl.mechanism": mechanism, "sasl.username": username, "sasl.password": password}
        )
    return security


TRADING_ORDER_FEED_ENABLED = env.bool("TRADING_ORDER_FEED_ENABLED", default=False)
TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = env.str("TRADING_ORDER_FEED_BOOTSTRAP_SERVERS")
if TRADING_ORDER_FEED_ENABLED and not TRADING_ORDER_FEED_BOOTSTRAP_SERVERS:
    env.problem(
        "TRADING_ORDER_FEED_BOOTSTRAP_SERVERS is required when TRADING_ORDER_FEED_ENABLED=true "
        "(host:port[,host:port...])"
    )
TRADING_ORDER_FEED_TOPIC = env.str("TRADING_ORDER_FEED_TOPIC", default="torghut.trade-updates.v1")
TRADING_ORDER_FEED_TOPIC_V2 = env.str("TRADING_ORDER_FEED_TOPIC_V2")
TRADING_ORDER_FEED_GROUP_ID = env.str(
    "TRADING_ORDER_FEED_GROUP_ID", default="torghut-order-feed-v1"
)
TRADING_ORDER_FEED_CLIENT_ID = env.str("TRADING_ORDER_FEED_CLIENT_ID", default="torghut-order-feed")
# Kafka static group membership (set it to the pod name of a StatefulSet): a restarted consumer
# gets its partitions back at once instead of after the dead member's session timeout
TRADING_ORDER_FEED_GROUP_INSTANCE_ID = env.str("TRADING_ORDER_FEED_GROUP_INSTANCE_ID")
TRADING_ORDER_FEED_AUTO_OFFSET_RESET = env.choice(
    "TRADING_ORDER_FEED_AUTO_OFFSET_RESET", choices=KAFKA_OFFSET_RESETS, default="latest"
)
# A batch is whatever has arrived, up to BATCH_SIZE (the consumer never waits to fill one): a
# few records per batch at 1,000/s, full batches under a backlog, where 2,000 amortises the
# per-batch round trips and commit (bench/profile_orderfeed.py: ~43 µs of Postgres CPU per event
# at 2,000, 57 at 250). POLL_MS only bounds the wait for the first record of an idle partition.
TRADING_ORDER_FEED_POLL_MS = env.int(
    "TRADING_ORDER_FEED_POLL_MS", default=250, min_value=10, max_value=60000
)
TRADING_ORDER_FEED_BATCH_SIZE = env.int(
    "TRADING_ORDER_FEED_BATCH_SIZE", default=2000, min_value=1, max_value=100000
)
# poison messages: where they go, and how often a failing batch is retried before the consumer
# isolates the message that fails and dead-letters it
TRADING_ORDER_FEED_DLQ_TOPIC = env.str(
    "TRADING_ORDER_FEED_DLQ_TOPIC", default="torghut.trade-updates.dlq"
)
TRADING_ORDER_FEED_MAX_HANDLER_ATTEMPTS = env.int(
    "TRADING_ORDER_FEED_MAX_HANDLER_ATTEMPTS", default=3, min_value=1, max_value=20
)
TRADING_ORDER_FEED_KAFKA = kafka_security("TRADING_ORDER_FEED")
# the bridge (`run_trade_updates_stream`): reconnect backoff bounds
TRADING_ORDER_FEED_BRIDGE_BACKOFF_MIN_SECONDS = env.float(
    "TRADING_ORDER_FEED_BRIDGE_BACKOFF_MIN_SECONDS", default=1.0, min_value=0.01
)
TRADING_ORDER_FEED_BRIDGE_BACKOFF_MAX_SECONDS = env.float(
    "TRADING_ORDER_FEED_BRIDGE_BACKOFF_MAX_SECONDS", default=60.0, min_value=0.01
)
# the stream watchdog: an Alpaca lane with open orders while the market is open whose stream is
# disconnected, or has sent nothing for longer than this, refuses new risk-increasing orders
# (`trade_updates_stream_unhealthy`), is gap-filled from REST, and the bridge reopens it
TRADING_TRADE_UPDATES_MAX_SILENCE_SECONDS = env.float(
    "TRADING_TRADE_UPDATES_MAX_SILENCE_SECONDS", default=60.0, min_value=1.0
)
KAFKA_CONSUMER_HEARTBEAT_SECONDS = env.float(
    "KAFKA_CONSUMER_HEARTBEAT_SECONDS", default=15.0, min_value=0.1
)
KAFKA_CONSUMER_LAG_INTERVAL_SECONDS = env.float(
    "KAFKA_CONSUMER_LAG_INTERVAL_SECONDS", default=10.0, min_value=0.1
)

# -- the `kafka` signal source: `run_signal_consumer` stores TA signal rows from a topic -------
TRADING_SIGNAL_KAFKA_BOOTSTRAP_SERVERS = env.str(
    "TRADING_SIGNAL_KAFKA_BOOTSTRAP_SERVERS", default=TRADING_ORDER_FEED_BOOTSTRAP_SERVERS
)
if TRADING_SIGNAL_SOURCE == "kafka" and not TRADING_SIGNAL_KAFKA_BOOTSTRAP_SERVERS:
    env.problem(
        "TRADING_SIGNAL_SOURCE=kafka requires TRADING_SIGNAL_KAFKA_BOOTSTRAP_SERVERS "
        "(or TRADING_ORDER_FEED_BOOTSTRAP_SERVERS)"
    )
TRADING_SIGNAL_KAFKA_TOPIC = env.str("TRADING_SIGNAL_KAFKA_TOPIC", default="torghut.ta-signals.v1")
TRADING_SIGNAL_KAFKA_GROUP_ID = env.str(
    "TRADING_SIGNAL_KAFKA_GROUP_ID", default="torghut-ta-signals-v1"
)
TRADING_SIGNAL_KAFKA_CLIENT_ID = env.str(
    "TRADING_SIGNAL_KAFKA_CLIENT_ID", default="torghut-ta-signals"
)
TRADING_SIGNAL_KAFKA_GROUP_INSTANCE_ID = env.str("TRADING_SIGNAL_KAFKA_GROUP_INSTANCE_ID")
TRADING_SIGNAL_KAFKA_AUTO_OFFSET_RESET = env.choice(
    "TRADING_SIGNAL_KAFKA_AUTO_OFFSET_RESET", choices=KAFKA_OFFSET_RESETS, default="latest"
)
TRADING_SIGNAL_KAFKA_POLL_MS = env.int(
    "TRADING_SIGNAL_KAFKA_POLL_MS", default=250, min_value=10, max_value=60000
)
TRADING_SIGNAL_KAFKA_BATCH_SIZE = env.int(
    "TRADING_SIGNAL_KAFKA_BATCH_SIZE", default=500, min_value=1, max_value=100000
)
TRADING_SIGNAL_KAFKA_DLQ_TOPIC = env.str(
    "TRADING_SIGNAL_KAFKA_DLQ_TOPIC", default="torghut.ta-signals.dlq"
)
TRADING_SIGNAL_KAFKA = kafka_security("TRADING_SIGNAL_KAFKA")

# --------------------------------------------------------------------------------------------
# Whitepaper workflow (§6): GitHub issue -> stored PDF -> AgentRun on Jangar -> finalize
# --------------------------------------------------------------------------------------------
WHITEPAPER_WORKFLOW_ENABLED = env.bool("WHITEPAPER_WORKFLOW_ENABLED", default=False)
WHITEPAPER_KAFKA_ENABLED = env.bool("WHITEPAPER_KAFKA_ENABLED", default=False)
# control endpoints (events, dispatch, run detail): this token, compared in constant time, or a
# signed-in API user with the run permission. It does not finalize a run: that takes the run's
# own token (whitepapers.run_tokens) or such a user. JANGAR_API_KEY opens none of them.
WHITEPAPER_WORKFLOW_API_TOKEN = env.secret("WHITEPAPER_WORKFLOW_API_TOKEN")
WHITEPAPER_GITHUB_WEBHOOK_SECRET = env.secret("WHITEPAPER_GITHUB_WEBHOOK_SECRET")
WHITEPAPER_REQUEUE_COMMENT_KEYWORD = env.str(
    "WHITEPAPER_REQUEUE_COMMENT_KEYWORD", default="research whitepaper"
)
WHITEPAPER_ISSUE_MARKER_START = env.str(
    "WHITEPAPER_ISSUE_MARKER_START", default="<!-- TORGHUT_WHITEPAPER:START -->"
)
WHITEPAPER_ISSUE_MARKER_END = env.str(
    "WHITEPAPER_ISSUE_MARKER_END", default="<!-- TORGHUT_WHITEPAPER:END -->"
)
# sent as a bearer token only to GitHub-owned hosts, over https (whitepapers/pdf.py)
WHITEPAPER_GITHUB_TOKEN = env.secret("WHITEPAPER_GITHUB_TOKEN")
# the hosts a PDF named in an issue may be downloaded from, on every redirect hop: a name matches
# itself and its subdomains ("arxiv.org" matches "export.arxiv.org"), "*" any host; whatever the
# list, loopback, private, link-local and metadata addresses are refused (torghut_site/outbound.py)
WHITEPAPER_PDF_ALLOWED_HOSTS = [
    h.lower()
    for h in env.csv(
        "WHITEPAPER_PDF_ALLOWED_HOSTS",
        default=(
            "arxiv.org", "github.com", "githubusercontent.com", "openreview.net",
            "aclanthology.org", "ssrn.com", "nber.org", "sciencedirect.com", "springer.com",
            "wiley.com", "tandfonline.com", "jstor.org", "semanticscholar.org",
            "researchgate.net", "biorxiv.org", "medrxiv.org", "mdpi.com", "acm.org", "ieee.org",
            "nature.com", "neurips.cc", "mlr.press", "jmlr.org", "thecvf.com", "aaai.org",
            "federalreserve.gov", "bis.org", "imf.org", "ecb.europa.eu", "oup.com",
            "cambridge.org", "aeaweb.org",
        ),
    )
]  # fmt: skip
for _host_pattern in WHITEPAPER_PDF_ALLOWED_HOSTS:
    if (_problem := host_pattern_problem(_host_pattern)) is not None:
        env.problem(f"WHITEPAPER_PDF_ALLOWED_HOSTS: {_problem}")
if not WHITEPAPER_PDF_ALLOWED_HOSTS:
    env.problem("WHITEPAPER_PDF_ALLOWED_HOSTS is empty: list hosts, or * for any public host")
WHITEPAPER_MAX_PDF_BYTES = env.int(
    "WHITEPAPER_MAX_PDF_BYTES", default=52428800, min_value=1024, max_value=2**31
)
WHITEPAPER_DOWNLOAD_TIMEOUT_SECONDS = env.float(
    "WHITEPAPER_DOWNLOAD_TIMEOUT_SECONDS", default=30.0, min_value=0.1, max_value=600
)
# PDF text extraction runs in a child process (whitepapers/extract.py) with these limits: CPU
# seconds (RLIMIT_CPU), address space in MB (RLIMIT_AS), wall-clock seconds (the child's process
# group is killed) and characters of text kept. A limit that is hit leaves the paper stored with
# empty text and the warning extraction_limit_exceeded:<cpu|memory|timeout|output>. The wall
# clock stays well under the processing task's 300 s soft time limit.
WHITEPAPER_EXTRACT_CPU_SECONDS = env.int(
    "WHITEPAPER_EXTRACT_CPU_SECONDS", default=30, min_value=1, max_value=240
)
WHITEPAPER_EXTRACT_MEMORY_MB = env.int(
    "WHITEPAPER_EXTRACT_MEMORY_MB", default=512, min_value=128, max_value=16384
)
WHITEPAPER_EXTRACT_TIMEOUT_SECONDS = env.float(
    "WHITEPAPER_EXTRACT_TIMEOUT_SECONDS", default=45.0, min_value=1.0, max_value=240
)
WHITEPAPER_EXTRACT_MAX_CHARS = env.int(
    "WHITEPAPER_EXTRACT_MAX_CHARS", default=2_000_000, min_value=1000, max_value=100_000_000
)
WHITEPAPER_AGENTRUN_AUTO_DISPATCH = env.bool("WHITEPAPER_AGENTRUN_AUTO_DISPATCH", default=True)
WHITEPAPER_AGENTRUN_SUBMIT_URL = env.str(
    "WHITEPAPER_AGENTRUN_SUBMIT_URL",
    default=(JANGAR_BASE_URL or "http://agents.agents.svc.cluster.local") + "/v1/agent-runs",
)
WHITEPAPER_AGENTRUN_TIMEOUT_SECONDS = env.float(
    "WHITEPAPER_AGENTRUN_TIMEOUT_SECONDS", default=20.0, min_value=0.1, max_value=300
)
# submit attempts per dispatch (timeouts, connection errors, 429 and 5xx are retried with
# exponential backoff and full jitter; the Idempotency-Key makes a retry safe)
WHITEPAPER_AGENTRUN_MAX_ATTEMPTS = env.int(
    "WHITEPAPER_AGENTRUN_MAX_ATTEMPTS", default=4, min_value=1, max_value=20
)
WHITEPAPER_AGENTRUN_BACKOFF_SECONDS = env.float(
    "WHITEPAPER_AGENTRUN_BACKOFF_SECONDS", default=1.0, min_value=0.0, max_value=60
)
WHITEPAPER_AGENTRUN_NAMESPACE = env.str("WHITEPAPER_AGENTRUN_NAMESPACE", default="agents")
WHITEPAPER_AGENT_NAME = env.str("WHITEPAPER_AGENT_NAME", default="codex-whitepaper-agent")
WHITEPAPER_AGENTRUN_VCS_REF = env.str("WHITEPAPER_AGENTRUN_VCS_REF", default="github")
WHITEPAPER_AGENTRUN_SECRET_BINDING = env.str(
    "WHITEPAPER_AGENTRUN_SECRET_BINDING", default="codex-whitepaper-github-token"
)
WHITEPAPER_AGENTRUN_TTL_SECONDS = env.int(
    "WHITEPAPER_AGENTRUN_TTL_SECONDS", default=7200, min_value=60
)
WHITEPAPER_DEFAULT_BASE_BRANCH = env.str("WHITEPAPER_DEFAULT_BASE_BRANCH", default="main")
# Who may start an analysis (whitepapers/github.py applies them to every intake). Repositories
# whose issues are read, as owner/repo (case-insensitive); empty — the default — refuses every
# event with `repository_not_allowed`, so a deployment names its repositories explicitly.
WHITEPAPER_ALLOWED_REPOSITORIES = env.csv("WHITEPAPER_ALLOWED_REPOSITORIES")
# the author_association of the issue (the comment, for a requeue comment) that may start work
WHITEPAPER_ALLOWED_AUTHOR_ASSOCIATIONS = [
    value.upper()
    for value in env.csv(
        "WHITEPAPER_ALLOWED_AUTHOR_ASSOCIATIONS", default=("OWNER", "MEMBER", "COLLABORATOR")
    )
]
# a label only maintainers can add (GitHub: triage or write access) that starts the analysis of
# any author's issue when a maintainer adds it; empty: off
WHITEPAPER_TRIGGER_LABEL = env.str("WHITEPAPER_TRIGGER_LABEL")
# the base branches a design pull request may target (default: the default base branch)
WHITEPAPER_ALLOWED_BASE_BRANCHES = env.csv(
    "WHITEPAPER_ALLOWED_BASE_BRANCHES", default=(WHITEPAPER_DEFAULT_BASE_BRANCH,)
)
_GITHUB_ASSOCIATIONS = (
    "OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, FIRST_TIMER, FIRST_TIME_CONTRIBUTOR, MANNEQUIN, NONE"
)
for _repo in WHITEPAPER_ALLOWED_REPOSITORIES:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}/[A-Za-z0-9._-]{1,100}", _repo):
        env.problem(f"WHITEPAPER_ALLOWED_REPOSITORIES has {_repo!r}, not owner/repo")
for _association in WHITEPAPER_ALLOWED_AUTHOR_ASSOCIATIONS:
    if _association not in _GITHUB_ASSOCIATIONS.split(", "):
        env.problem(
            f"WHITEPAPER_ALLOWED_AUTHOR_ASSOCIATIONS has {_association!r} (known: "
            f"{_GITHUB_ASSOCIATIONS})"
        )
# the same plain-branch rule as whitepapers.github.branch_name_valid (settings cannot import it)
for _name, _branches in (
    ("WHITEPAPER_DEFAULT_BASE_BRANCH", [WHITEPAPER_DEFAULT_BASE_BRANCH]),
    ("WHITEPAPER_ALLOWED_BASE_BRANCHES", WHITEPAPER_ALLOWED_BASE_BRANCHES),
):
    for _branch in _branches:
        if (
            not re.fullmatch(r"[A-Za-z0-9._/-]{1,100}", _branch)
            or re.search(r"\.\.|//|^[-/.]|[/.]$|(^|/)\.|\.lock(/|$)", _branch) is not None
        ):
            env.problem(f"{_name} has {_branch!r}, not a plain branch name")
if WHITEPAPER_DEFAULT_BASE_BRANCH not in WHITEPAPER_ALLOWED_BASE_BRANCHES:
    env.problem(
        f"WHITEPAPER_DEFAULT_BASE_BRANCH={WHITEPAPER_DEFAULT_BASE_BRANCH!r} must be one of "
        "WHITEPAPER_ALLOWED_BASE_BRANCHES"
    )
# attempts of one event's processing, whatever ends them: object storage unreachable during
# intake is retried (backoff 1, 2, 4 … s, full jitter, capped) until the last attempt records a
# failed run; an attempt that never finished (a time limit, a killed worker) leaves the event
# pending for the sweep, and an event with no attempt left is closed as attempts_exhausted
WHITEPAPER_STORAGE_RETRY_ATTEMPTS = env.int(
    "WHITEPAPER_STORAGE_RETRY_ATTEMPTS", default=10, min_value=1, max_value=100
)
WHITEPAPER_STORAGE_RETRY_BACKOFF_MAX_SECONDS = env.int(
    "WHITEPAPER_STORAGE_RETRY_BACKOFF_MAX_SECONDS", default=300, min_value=1, max_value=3600
)
# events received but not processed after this long (a lost task, a crashed worker) are
# re-queued by the beat sweep, as are queued runs that were never dispatched
WHITEPAPER_SWEEP_AFTER_SECONDS = env.int(
    "WHITEPAPER_SWEEP_AFTER_SECONDS", default=120, min_value=10
)
WHITEPAPER_KAFKA_BOOTSTRAP_SERVERS = env.str(
    "WHITEPAPER_KAFKA_BOOTSTRAP_SERVERS", default=TRADING_ORDER_FEED_BOOTSTRAP_SERVERS
)
if WHITEPAPER_KAFKA_ENABLED and not WHITEPAPER_KAFKA_BOOTSTRAP_SERVERS:
    env.problem(
        "WHITEPAPER_KAFKA_ENABLED=true requires WHITEPAPER_KAFKA_BOOTSTRAP_SERVERS "
        "(or TRADING_ORDER_FEED_BOOTSTRAP_SERVERS)"
    )
WHITEPAPER_KAFKA_TOPIC = env.str("WHITEPAPER_KAFKA_TOPIC", default="github.webhook.events")
WHITEPAPER_KAFKA_GROUP_ID = env.str("WHITEPAPER_KAFKA_GROUP_ID", default="torghut-whitepaper-v1")
WHITEPAPER_KAFKA_CLIENT_ID = env.str("WHITEPAPER_KAFKA_CLIENT_ID", default="torghut-whitepaper")
WHITEPAPER_KAFKA_GROUP_INSTANCE_ID = env.str("WHITEPAPER_KAFKA_GROUP_INSTANCE_ID")
WHITEPAPER_KAFKA_AUTO_OFFSET_RESET = env.choice(
    "WHITEPAPER_KAFKA_AUTO_OFFSET_RESET", choices=KAFKA_OFFSET_RESETS, default="latest"
)
WHITEPAPER_KAFKA_POLL_MS = env.int(
    "WHITEPAPER_KAFKA_POLL_MS", default=500, min_value=10, max_value=60000
)
WHITEPAPER_KAFKA_BATCH_SIZE = env.int(
    "WHITEPAPER_KAFKA_BATCH_SIZE", default=50, min_value=1, max_value=10000
)
WHITEPAPER_KAFKA_DLQ_TOPIC = env.str(
    "WHITEPAPER_KAFKA_DLQ_TOPIC", default="github.webhook.events.torghut-dlq"
)
WHITEPAPER_KAFKA = kafka_security("WHITEPAPER_KAFKA")

# --------------------------------------------------------------------------------------------
# Object storage (Ceph RGW / S3) for whitepapers and research artifacts
# --------------------------------------------------------------------------------------------
WHITEPAPER_CEPH_ENDPOINT = env.str("WHITEPAPER_CEPH_ENDPOINT")
# the original's alternative: an ObjectBucketClaim's BUCKET_HOST/BUCKET_PORT (+ USE_TLS)
_bucket_host = env.str("WHITEPAPER_CEPH_BUCKET_HOST", "BUCKET_HOST")
if not WHITEPAPER_CEPH_ENDPOINT and _bucket_host:
    _bucket_port = env.int("WHITEPAPER_CEPH_BUCKET_PORT", "BUCKET_PORT", default=0, min_value=0)
    _scheme = "https" if env.bool("WHITEPAPER_CEPH_USE_TLS", default=False) else "http"
    WHITEPAPER_CEPH_ENDPOINT = f"{_scheme}://{_bucket_host}" + (
        f":{_bucket_port}" if _bucket_port else ""
    )
WHITEPAPER_CEPH_ACCESS_KEY = env.secret("WHITEPAPER_CEPH_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
WHITEPAPER_CEPH_SECRET_KEY = env.secret("WHITEPAPER_CEPH_SECRET_KEY", "AWS_SECRET_ACCESS_KEY")
WHITEPAPER_CEPH_REGION = env.str("WHITEPAPER_CEPH_REGION", default="us-east-1")
WHITEPAPER_CEPH_BUCKET = env.str(
    "WHITEPAPER_CEPH_BUCKET", "BUCKET_NAME", default="torghut-whitepapers"
)
WHITEPAPER_CEPH_TIMEOUT_SECONDS = env.float(
    "WHITEPAPER_CEPH_TIMEOUT_SECONDS", default=20.0, min_value=0.1
)
OBJECT_STORAGE_ENABLED = bool(WHITEPAPER_CEPH_ENDPOINT)

STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # served by WhiteNoise from STATIC_ROOT (collectstatic), compressed and cache-busted
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    # research and whitepaper artifacts: S3 when an endpoint is configured, else var/artifacts
    "artifacts": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "artifacts")},
    },
}
if OBJECT_STORAGE_ENABLED:
    from botocore.config import Config as BotoConfig

    STORAGES["artifacts"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "endpoint_url": WHITEPAPER_CEPH_ENDPOINT,
            "access_key": WHITEPAPER_CEPH_ACCESS_KEY,
            "secret_key": WHITEPAPER_CEPH_SECRET_KEY,
            "bucket_name": WHITEPAPER_CEPH_BUCKET,
            "region_name": WHITEPAPER_CEPH_REGION,
            "addressing_style": "path",
            "signature_version": "s3v4",
            "file_overwrite": False,
            "querystring_expire": 600,
            # explicit timeouts (botocore's default read timeout is 60 s) and bounded retries
            "client_config": BotoConfig(
                connect_timeout=WHITEPAPER_CEPH_TIMEOUT_SECONDS,
                read_timeout=WHITEPAPER_CEPH_TIMEOUT_SECONDS,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"},
                signature_version="s3v4",
            ),
        },
    }

env.raise_if_problems()
