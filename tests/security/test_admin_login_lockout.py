"""The admin sign-in locks a username or a client address after repeated failures.

Before, the login form checked passwords without limit: a password could be guessed at the
speed of the server. Counters live in the shared cache; here a real Redis (TEST_REDIS_URL).
"""

from __future__ import annotations

import os
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "pw-lockout-admin-123"  # noqa: S105
LOCKED = "Too many failed sign-in attempts. Try again in 15 min."


@pytest.fixture(autouse=True)
def redis_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/8"),
            "KEY_PREFIX": "torghut-lockout-test",
        }
    }
    settings.ADMIN_LOGIN_MAX_FAILURES = 5
    settings.ADMIN_LOGIN_LOCKOUT_SECONDS = 900
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser("lock-admin", password=PASSWORD)


def attempt(username: str, password: str, address: str = "10.0.0.1"):
    client = Client(REMOTE_ADDR=address)
    response = client.post(LOGIN, {"username": username, "password": password})
    return client, response


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_five_failures_lock_the_username_even_for_the_right_password(admin_user):
    failures = metric("torghut_admin_login_failures_total")
    lockouts = metric("torghut_admin_login_lockouts_total", scope="username")
    for n in range(5):  # each from another address: only the username counter reaches five
        client, response = attempt("lock-admin", "wrong", address=f"10.0.1.{n}")
        assert (response.status_code, signed_in(client)) == (200, False)
    assert LOCKED in response.content.decode()

    with CaptureQueriesContext(connection) as queries:
        client, response = attempt("lock-admin", PASSWORD, address="10.0.1.99")
    assert (response.status_code, signed_in(client)) == (200, False)
    assert LOCKED in response.content.decode()
    # refused before any backend looked the user up or checked the password
    assert not [q for q in queries.captured_queries if "auth_user" in q["sql"]]
    # case does not make another username
    assert not signed_in(attempt("LOCK-ADMIN", PASSWORD, address="10.0.1.98")[0])
    assert metric("torghut_admin_login_failures_total") == failures + 5
    assert metric("torghut_admin_login_lockouts_total", scope="username") == lockouts + 1


def test_unknown_usernames_count_and_one_address_is_locked_across_usernames(admin_user):
    for n in range(5):
        client, response = attempt(f"ghost-{n}", "guess", address="10.0.2.1")
        assert not signed_in(client)
    client, response = attempt("lock-admin", PASSWORD, address="10.0.2.1")
    assert not signed_in(client)
    assert LOCKED in response.content.decode()
    assert signed_in(attempt("lock-admin", PASSWORD, address="10.0.2.2")[0])

    for _ in range(5):
        attempt("nobody-at-all", "guess", address=f"10.0.3.{_}")
    assert LOCKED in attempt("nobody-at-all", "guess", address="10.0.3.50")[1].content.decode()


def test_a_successful_sign_in_clears_the_username_counter(admin_user):
    for n in range(4):
        assert not signed_in(attempt("lock-admin", "wrong", address=f"10.0.4.{n}")[0])
    assert signed_in(attempt("lock-admin", PASSWORD, address="10.0.4.10")[0])
    for n in range(4):
        assert not signed_in(attempt("lock-admin", "wrong", address=f"10.0.5.{n}")[0])
    assert signed_in(attempt("lock-admin", PASSWORD, address="10.0.5.10")[0])


def test_the_lock_ends_after_admin_login_lockout_seconds(admin_user, settings):
    settings.ADMIN_LOGIN_MAX_FAILURES = 2
    settings.ADMIN_LOGIN_LOCKOUT_SECONDS = 1
    for n in range(2):
        attempt("lock-admin", "wrong", address=f"10.0.6.{n}")
    client, response = attempt("lock-admin", PASSWORD, address="10.0.6.9")
    assert not signed_in(client)
    assert "Try again in 1 min." in response.content.decode()
    time.sleep(1.2)  # the lock's Redis TTL runs out
    assert signed_in(attempt("lock-admin", PASSWORD, address="10.0.6.9")[0])
