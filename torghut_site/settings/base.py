"""Core: the environment reader, apps and middleware, database, cache, security."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import django_stubs_ext

from torghut_site.dburl import DatabaseUrlError, parse_database_url, sqlite_database
from torghut_site.env import Env, load_dotenv

django_stubs_ext.monkeypatch()  # generic admin/serializer classes at run time

BASE_DIR = Path(__file__).resolve().parent.parent.parent
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
        "DIRS": [],
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
            # Django's, with one redis client per pool (torghut_site/cache.py)
            "BACKEND": "torghut_site.cache.RedisCache",
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
