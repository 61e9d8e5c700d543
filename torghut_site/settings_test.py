"""Test overrides: only what the suite needs. Tests run against real Postgres by default."""

import os
import tempfile

# the suite's files (the embedded broker, artifacts, caches) never land in the checkout's var/,
# where `make run` would find them (a test's queued task, run by the next `make run` worker)
os.environ.setdefault("TORGHUT_VAR_DIR", tempfile.mkdtemp(prefix="torghut-test-var-"))

from torghut_site.dburl import parse_database_url  # noqa: E402
from torghut_site.settings import *  # noqa: E402, F403
from torghut_site.settings import BASE_DIR  # noqa: E402

_test_dsn = os.environ.get("TEST_DB_DSN", "postgresql://postgres:postgres@127.0.0.1:5432/torghut")
DATABASES = {"default": parse_database_url(_test_dsn, base_dir=BASE_DIR)}
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASE_IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# the short-lived caches of the API token lookup and of /trading/status are off: most tests
# change rows between two requests; the caches' own tests (tests/security/test_token_cache.py,
# trading/tests/apis/test_status_cache.py) turn them on
API_TOKEN_CACHE_SECONDS = 0
TRADING_STATUS_CACHE_SECONDS = 0
SECURE_SSL_REDIRECT = False
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# no collectstatic in tests: WhiteNoise serves from the finders and does not scan STATIC_ROOT
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# the repository the suite's GitHub payloads name (whitepapers/tests/workflow.py); production's
# default is empty, which refuses every event (tests of that default set it back to [])
WHITEPAPER_ALLOWED_REPOSITORIES = ["proompteng/lab"]
