"""The Postgres backend's health check (torghut_site/postgres/base.py): a quiet, idle
persistent connection is reused without `SELECT 1` reaching the server; a connection the server
ended is closed and replaced before the request's first query; inside a transaction Django's own
check runs. Each case is read back from the server's `pg_stat_activity`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection, connections

from torghut_site.postgres.base import DatabaseWrapper

pytestmark = pytest.mark.django_db


@pytest.fixture
def wrapper() -> Iterator[Any]:
    """A second connection of the test database, with health checks on, as a web worker has."""
    if connection.vendor != "postgresql":
        pytest.skip("the backend is Postgres's")
    created = connections.create_connection("default")
    created.settings_dict = {
        **created.settings_dict,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
    yield created
    created.close()


def _observer() -> psycopg.Connection[Any]:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def _last_query(pid: int) -> str:
    with _observer() as observer:
        row = observer.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone()
    return str(row[0]) if row else ""


def _pid(db: Any) -> int:
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid() /* marker */")
        return int(cursor.fetchone()[0])


def _new_request(db: Any) -> None:
    """What Django does between two requests of a persistent connection."""
    db.close_if_unusable_or_obsolete()  # request_finished
    db.close_if_health_check_failed()  # before the next request's first query


def test_engine_is_this_backend(wrapper: Any) -> None:
    assert type(wrapper) is DatabaseWrapper
    assert wrapper.vendor == "postgresql"


def test_quiet_connection_reused_without_a_round_trip(wrapper: Any) -> None:
    pid = _pid(wrapper)
    assert wrapper.health_check_enabled is True
    _new_request(wrapper)
    assert wrapper.health_check_done is True
    assert wrapper.connection is not None
    # the server saw nothing after the marker: no SELECT 1
    assert _last_query(pid) == "SELECT pg_backend_pid() /* marker */"
    assert _pid(wrapper) == pid  # the same session serves the next query


def test_connection_ended_by_the_server_is_replaced_before_the_query(wrapper: Any) -> None:
    pid = _pid(wrapper)
    with _observer() as observer:
        assert observer.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        # pg_terminate_backend only signals the session: wait until it has ended
        deadline = time.monotonic() + 10
        while observer.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the session did not end"
            time.sleep(0.01)
    # the goodbye (FATAL 57P01, then EOF) makes the socket readable; Django's SELECT 1 fails
    _new_request(wrapper)
    assert wrapper.connection is None
    new_pid = _pid(wrapper)
    assert new_pid != pid


def test_inside_a_transaction_django_checks_with_select_1(wrapper: Any) -> None:
    pid = _pid(wrapper)
    wrapper.set_autocommit(False)
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 2 /* in transaction */")
        assert wrapper.is_usable() is True
        assert _last_query(pid) == "SELECT 1"
    finally:
        wrapper.rollback()
        wrapper.set_autocommit(True)


def test_closed_connection_is_not_usable(wrapper: Any) -> None:
    _pid(wrapper)
    raw = wrapper.connection
    raw.close()
    assert wrapper.is_usable() is False
    wrapper.connection = None
    assert wrapper.is_usable() is False
