"""Probes, the global DRF configuration (auth, errors, throttling, pagination), schema, admin."""

from __future__ import annotations

import json
import logging

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from tests.conftest import manage
from torghut_site.auth import api_token_issue, api_token_revoke
from torghut_site.logging import JsonFormatter, bind_request_id, reset_request_id

pytestmark = pytest.mark.urls("tests.foundation.urls_test")


@pytest.mark.django_db
def test_healthz_touches_no_database(api_client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = api_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "torghut"}


def test_root_reports_version_and_commit(api_client, settings):
    settings.TORGHUT_VERSION = "1.2.3"
    settings.TORGHUT_COMMIT = "abc1234"
    assert api_client.get("/").json() == {
        "service": "torghut",
        "status": "ok",
        "version": "1.2.3",
        "commit": "abc1234",
    }


@pytest.mark.django_db
def test_db_check_current_then_pending_migration(api_client):
    graph = MigrationLoader(connection).graph
    heads = sorted(f"{app}.{name}" for app, name in graph.leaf_nodes())
    ok = api_client.get("/db-check")
    assert ok.status_code == 200
    assert ok.json() == {
        "ok": True,
        "schema_current": True,
        "current_heads": heads,
        "expected_heads": heads,
        "unapplied_migrations": [],
    }
    # the newest trading migration "not applied" (as after deploying code before migrating)
    (leaf,) = graph.leaf_nodes("trading")
    (parent,) = (p for p in graph.node_map[leaf].parents if p.key[0] == "trading")
    MigrationRecorder.Migration.objects.filter(app="trading", name=leaf[1]).delete()
    pending = api_client.get("/db-check")
    assert pending.status_code == 503
    assert pending.json() == {
        "ok": False,
        "schema_current": False,
        # the database's trading head is the leaf's parent; the code still expects the leaf
        "current_heads": sorted(
            [h for h in heads if h != f"trading.{leaf[1]}"] + [f"trading.{parent.key[1]}"]
        ),
        "expected_heads": heads,
        "unapplied_migrations": [f"trading.{leaf[1]}"],
        "error": "database schema mismatch; migrations pending",
    }


@pytest.mark.django_db
def test_db_check_names_a_migration_applied_by_a_newer_release_and_stays_ready(api_client):
    heads = sorted(f"{a}.{n}" for a, n in MigrationLoader(connection).graph.leaf_nodes())
    MigrationRecorder.Migration.objects.create(app="trading", name="9999_from_a_newer_release")
    MigrationRecorder.Migration.objects.create(app="gone_app", name="0001_initial")  # not ours
    response = api_client.get("/db-check")
    # still 200: /db-check is the readiness probe, and the older pods keep serving in a rollout
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "schema_current": True,
        "current_heads": sorted([*heads, "trading.9999_from_a_newer_release"]),
        "expected_heads": heads,
        "unapplied_migrations": [],
    }


def test_db_check_when_the_database_is_unreachable():
    script = (
        "from django.test import Client; r = Client().get('/db-check'); "
        "import json; print(r.status_code, json.dumps(r.json(), sort_keys=True))"
    )
    result = manage("shell", "-c", script, env={"DB_DSN": "postgresql://nobody@127.0.0.1:1/none"})
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().splitlines()[-1].split(" ", 1)
    assert status == "503"
    assert json.loads(body) == {
        "ok": False,
        "schema_current": False,
        "current_heads": [],
        "expected_heads": [],
        "unapplied_migrations": [],
        "error": "database unavailable",
    }


@pytest.mark.django_db
def test_api_requires_authentication_with_one_error_format(api_client):
    response = api_client.get("/t/protected", HTTP_X_REQUEST_ID="req-123")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response["X-Request-ID"] == "req-123"
    assert response.json() == {
        "error": {
            "code": "not_authenticated",
            "message": "Authentication credentials were not provided.",
            "details": None,
        },
        "request_id": "req-123",
    }


@pytest.mark.django_db
def test_hashed_token_authentication(api_client, user):
    issued = api_token_issue(user=user, name="ci")
    assert issued.token.digest != issued.key and len(issued.token.digest) == 64
    assert issued.key not in str(issued.token.__dict__)
    for scheme in ("Token", "Bearer"):
        response = api_client.get("/t/protected", HTTP_AUTHORIZATION=f"{scheme} {issued.key}")
        assert (response.status_code, response.json()) == (200, {"user": "alice"})
    bad = api_client.get("/t/protected", HTTP_AUTHORIZATION="Token tg_wrong")
    assert (bad.status_code, bad.json()["error"]["code"]) == (401, "authentication_failed")
    api_token_revoke(token=issued.token)
    revoked = api_client.get("/t/protected", HTTP_AUTHORIZATION=f"Token {issued.key}")
    assert revoked.status_code == 401


@pytest.mark.django_db
def test_create_api_token_command_prints_a_working_key(api_client, user, capsys):
    call_command("create_api_token", "--user", "alice", "--name", "cli")
    key = capsys.readouterr().out.strip()
    assert key.startswith("tg_")
    assert api_client.get("/t/protected", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200


@pytest.mark.django_db
def test_validation_error_shape(user_client):
    response = user_client.post("/t/protected", {"n": 0}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "invalid_request"
    assert body["error"]["details"] == {"n": ["Ensure this value is greater than or equal to 1."]}


@pytest.mark.django_db
def test_pagination_is_capped(user_client):
    body = user_client.get("/t/numbers", {"limit": 5000}).json()
    assert (body["count"], len(body["results"]), body["results"][:2]) == (1200, 500, [0, 1])
    assert len(user_client.get("/t/numbers").json()["results"]) == 200


@pytest.mark.django_db
def test_throttling_returns_429(user_client, settings, monkeypatch):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "control": "2/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    cache.clear()
    from rest_framework.throttling import ScopedRateThrottle

    # monkeypatch: the 2/min rate and the counters must not outlive this test (later tests of
    # control endpoints would get 429)
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", rates)
    codes = [user_client.get("/t/throttled").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert user_client.get("/t/throttled").json()["error"]["code"] == "throttled"
    cache.clear()


@pytest.mark.django_db
def test_schema_and_docs_are_served_without_a_cdn(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/healthz", "/db-check", "/trading/decisions", "/trading/kill-switch"} <= set(paths)
    assert schema.json()["components"]["securitySchemes"]["tokenAuth"]["name"] == "Authorization"
    docs = api_client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs
    assert "cdn." not in docs and "unpkg" not in docs


@pytest.mark.django_db
def test_admin_login_page_is_titled_torghut(api_client):
    page = api_client.get("/admin/login/").content.decode()
    assert "<title>Log in | torghut</title>" in page


@pytest.mark.django_db
def test_admin_index_shows_safety_panel(client):
    admin = get_user_model().objects.create_superuser("root", "root@x", "pw")
    client.force_login(admin)
    page = client.get("/admin/").content.decode()
    assert 'id="torghut-safety"' in page
    assert 'id="kill-switch"' in page


def test_json_logs_carry_request_id_and_redact_secrets():
    formatter = JsonFormatter()
    record = logging.makeLogRecord(
        {
            "name": "x",
            "levelname": "INFO",
            "msg": "hello %s",
            "args": ("w",),
            "api_key": "sekrit",
            "symbol": "AAPL",
        }
    )
    token = bind_request_id("rid-1")
    try:
        line = json.loads(formatter.format(record))
    finally:
        reset_request_id(token)
    assert {k: line[k] for k in ("level", "logger", "msg", "request_id", "api_key", "symbol")} == {
        "level": "info",
        "logger": "x",
        "msg": "hello w",
        "request_id": "rid-1",
        "api_key": "[redacted]",
        "symbol": "AAPL",
    }


def test_request_id_is_generated_when_missing_or_unsafe(api_client):
    generated = api_client.get("/healthz")["X-Request-ID"]
    assert len(generated) == 32
    assert (
        api_client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
        != "bad id with spaces"
    )


@pytest.mark.django_db
def test_metrics_endpoint_serves_prometheus_text(api_client):
    from torghut_site.models import HeartbeatKind
    from torghut_site.services import heartbeat_record

    heartbeat_record(kind=HeartbeatKind.CELERY_WORKER, name="w1", interval_seconds=15)
    response = api_client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "django_http_requests_total_by_method_total" in text
    assert (
        'torghut_process_heartbeat_age_seconds{kind="celery_worker",name="w1",state="running"}'
        in text
    )
    assert connection.vendor == "postgresql"
