"""Site settings the framework consumes (security headers and cookies, CSRF origins, cache,
database and storage URLs and their aliases, DRF throttle rates, the Celery result backend):
each one, set to two values, changes what Django, DRF, Celery or django-storages does.

Settings built inside the settings package from several variables are computed by importing
`torghut_site.settings` afresh on a given environment (`settings_from_env`), then handed to the
framework component that reads them."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis
from django.test import Client, override_settings

import torghut_site
from tests.conftest import ROOT
from tests.servers.base import Request, Response, TestHTTPServer

LOGIN = "/admin/login/"
SETTINGS_PACKAGE = "torghut_site.settings"


def settings_from_env(monkeypatch, env: dict[str, str]) -> dict[str, Any]:
    """The module-level names of the settings package `torghut_site.settings` run on exactly
    `env`: the package and its concern modules are imported afresh, then the process's own
    (the ones Django loaded) are put back."""
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    monkeypatch.setattr(os, "environ", {**clean, "TORGHUT_ENV_FILE": "/nonexistent", **env})
    loaded = _settings_modules()
    for name in loaded:
        del sys.modules[name]
    try:
        return dict(vars(importlib.import_module(SETTINGS_PACKAGE)))
    finally:
        for name in _settings_modules():
            del sys.modules[name]
        sys.modules.update(loaded)
        torghut_site.settings = loaded[SETTINGS_PACKAGE]
        monkeypatch.undo()


def _settings_modules() -> dict[str, ModuleType]:
    return {
        name: module
        for name, module in sys.modules.items()
        if name == SETTINGS_PACKAGE or name.startswith(SETTINGS_PACKAGE + ".")
    }


# -- SecurityMiddleware, cookies, CSRF ---------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "header"),
    [
        ({"SECURE_HSTS_SECONDS": 0}, None),
        ({"SECURE_HSTS_SECONDS": 600}, "max-age=600"),
        (
            {"SECURE_HSTS_SECONDS": 600, "SECURE_HSTS_INCLUDE_SUBDOMAINS": True},
            "max-age=600; includeSubDomains",
        ),
        ({"SECURE_HSTS_SECONDS": 600, "SECURE_HSTS_PRELOAD": True}, "max-age=600; preload"),
    ],
)
def test_hsts_settings_shape_the_strict_transport_security_header(settings, changes, header):
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = False
    settings.SECURE_HSTS_PRELOAD = False
    for name, value in changes.items():
        setattr(settings, name, value)
    response = Client().get(LOGIN, secure=True)
    assert response.status_code == 200
    assert response.headers.get("Strict-Transport-Security") == header


@pytest.mark.django_db
@pytest.mark.parametrize("secure", [False, True])
def test_cookie_secure_settings_mark_the_session_and_csrf_cookies(settings, secure):
    from django.contrib.auth import get_user_model

    settings.SESSION_COOKIE_SECURE = secure
    settings.CSRF_COOKIE_SECURE = secure
    get_user_model().objects.create_superuser("op", password="pw-op-123456")
    client = Client()
    page = client.get(LOGIN, secure=True)
    assert bool(page.cookies["csrftoken"]["secure"]) is secure
    response = client.post(LOGIN, {"username": "op", "password": "pw-op-123456"}, secure=True)
    assert response.status_code == 302
    assert bool(response.cookies["sessionid"]["secure"]) is secure


@pytest.mark.django_db
def test_csrf_trusted_origins_admit_a_cross_origin_post(settings):
    def post_from(origin: str) -> int:
        client = Client(enforce_csrf_checks=True)
        token = client.get(LOGIN, secure=True).cookies["csrftoken"].value
        response = client.post(
            LOGIN,
            {"username": "x", "password": "y", "csrfmiddlewaretoken": token},
            secure=True,
            headers={"origin": origin},
        )
        return response.status_code

    settings.CSRF_TRUSTED_ORIGINS = []
    assert post_from("https://ops.example.com") == 403
    settings.CSRF_TRUSTED_ORIGINS = ["https://ops.example.com"]
    assert post_from("https://ops.example.com") == 200  # the login form again: bad password
    assert post_from("https://evil.example.com") == 403


# -- cache: CACHE_URL, else REDIS_URL -------------------------------------------------------------
def _redis_url(db: int | None = None) -> str:
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/8")
    return url if db is None else url.rsplit("/", 1)[0] + f"/{db}"


@pytest.mark.parametrize(
    "env",
    [
        {"REDIS_URL": _redis_url()},
        # CACHE_URL wins over REDIS_URL (which points at a port nothing listens on)
        {"CACHE_URL": _redis_url(), "REDIS_URL": "redis://127.0.0.1:9/0"},
    ],
)
def test_cache_url_or_redis_url_puts_the_cache_in_redis(monkeypatch, tmp_path, env):
    from django.core.cache import CacheHandler

    module = settings_from_env(monkeypatch, {"TORGHUT_VAR_DIR": str(tmp_path), **env})
    cache = CacheHandler(module["CACHES"])["default"]
    key = f"coverage-{tmp_path.name}"
    cache.set(key, "v", 30)
    try:
        assert redis.Redis.from_url(_redis_url()).exists(f"torghut:1:{key}") == 1
    finally:
        cache.delete(key)
    module = settings_from_env(monkeypatch, {"TORGHUT_VAR_DIR": str(tmp_path)})
    CacheHandler(module["CACHES"])["default"].set(key, "v", 30)  # no URL: the file cache
    assert redis.Redis.from_url(_redis_url()).exists(f"torghut:1:{key}") == 0
    assert list((tmp_path / "cache").iterdir()) != []


# -- database URL aliases --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["DB_DSN", "DB_URL", "DATABASE_URL"])
def test_each_database_url_alias_chooses_the_database(
    monkeypatch, tmp_path, django_db_blocker, name
):
    from django.db.utils import ConnectionHandler

    target = tmp_path / f"{name.lower()}.sqlite3"
    module = settings_from_env(
        monkeypatch, {"TORGHUT_VAR_DIR": str(tmp_path / "var"), name: f"sqlite:///{target}"}
    )
    connection = ConnectionHandler(module["DATABASES"])["default"]
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("create table probe (x int)")
    connection.close()
    assert target.is_file()
    assert not (tmp_path / "var" / "torghut.sqlite3").exists()


# -- SECRET_KEY's alias -------------------------------------------------------------------------
def test_django_secret_key_alias_is_the_signing_key(monkeypatch):
    from django.core import signing

    key = "alias-secret-" + "k" * 40
    module = settings_from_env(monkeypatch, {"DJANGO_SECRET_KEY": key})
    with override_settings(SECRET_KEY=module["SECRET_KEY"]):
        signed = signing.dumps("payload")
    assert signing.loads(signed, key=key) == "payload"
    with pytest.raises(signing.BadSignature):
        signing.loads(signed, key="another-" + "k" * 40)


# -- DRF throttle rates ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "scope", "authenticated"),
    [
        ("API_THROTTLE_ANON", "anon", False),
        ("API_THROTTLE_USER", "user", True),
        ("API_THROTTLE_CONTROL", "control", True),
    ],
)
def test_each_throttle_rate_limits_its_scope(monkeypatch, db, name, scope, authenticated):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import AnonymousUser
    from django.core.cache import cache
    from rest_framework import throttling
    from rest_framework.test import APIRequestFactory

    user = get_user_model().objects.create_user("u1") if authenticated else AnonymousUser()

    class View:
        throttle_scope = "control"

    def allowed(rate: str) -> list[bool]:
        rates = settings_from_env(monkeypatch, {name: rate})["REST_FRAMEWORK"]
        rates = rates["DEFAULT_THROTTLE_RATES"]
        cls = {
            "anon": throttling.AnonRateThrottle,
            "user": throttling.UserRateThrottle,
            "control": throttling.ScopedRateThrottle,
        }[scope]
        monkeypatch.setattr(cls, "THROTTLE_RATES", rates)
        cache.clear()
        out = []
        for _ in range(4):
            request = APIRequestFactory().get("/t", REMOTE_ADDR="10.0.0.9")
            request.user = user
            throttle = cls()
            out.append(throttle.allow_request(request, View()))  # type: ignore[arg-type]
        monkeypatch.undo()
        return out

    assert allowed("2/min") == [True, True, False, False]
    assert allowed("3/min") == [True, True, True, False]
    cache.clear()


# -- S3 artifacts storage: endpoint pieces, credentials, region, bucket ----------------------------
class S3Stub(TestHTTPServer):
    """Accepts every PUT and records it: the signed request shows what the client was given."""

    def __init__(self) -> None:
        super().__init__()
        self.route("PUT", "/.*", lambda request: Response(status=200, headers={"ETag": '"e"'}))
        self.route("HEAD", "/.*", lambda request: Response(status=404))


@pytest.fixture(scope="module")
def s3_stub():
    server = S3Stub()
    server.start()
    yield server
    server.stop()


def _put(module: dict[str, Any]) -> Any:
    from storages.backends.s3 import S3Storage

    options = module["STORAGES"]["artifacts"]["OPTIONS"]
    storage = S3Storage(**{**options, "file_overwrite": True})
    from django.core.files.base import ContentFile

    storage.save("probe.txt", ContentFile(b"x"))
    return storage


def _credential(request: Request) -> str:
    return request.headers["authorization"].split("Credential=")[1].split(",")[0]


@pytest.mark.parametrize(
    "names",
    [
        {"host": "WHITEPAPER_CEPH_BUCKET_HOST", "port": "WHITEPAPER_CEPH_BUCKET_PORT",
         "access": "WHITEPAPER_CEPH_ACCESS_KEY", "secret": "WHITEPAPER_CEPH_SECRET_KEY",
         "bucket": "WHITEPAPER_CEPH_BUCKET"},
        {"host": "BUCKET_HOST", "port": "BUCKET_PORT", "access": "AWS_ACCESS_KEY_ID",
         "secret": "AWS_SECRET_ACCESS_KEY", "bucket": "BUCKET_NAME"},
    ],
)  # fmt: skip
def test_bucket_claim_variables_build_the_signed_s3_request(monkeypatch, s3_stub, names):
    port = s3_stub.url.rsplit(":", 1)[1]
    env = {
        names["host"]: "127.0.0.1",
        names["port"]: port,
        names["access"]: "AKIDCOVERAGE",
        names["secret"]: "secret-one",
        names["bucket"]: "papers-bucket",
        "WHITEPAPER_CEPH_REGION": "eu-central-9",
    }
    with s3_stub.lock:
        s3_stub.requests.clear()
    _put(settings_from_env(monkeypatch, env))
    put = next(r for r in s3_stub.requests if r.method == "PUT")
    assert put.path == "/papers-bucket/probe.txt"
    credential = _credential(put)
    assert credential.startswith("AKIDCOVERAGE/") and "/eu-central-9/s3/" in credential
    first_signature = put.headers["authorization"].rsplit("Signature=", 1)[1]
    with s3_stub.lock:
        s3_stub.requests.clear()
    _put(settings_from_env(monkeypatch, {**env, names["secret"]: "secret-two"}))
    put = next(r for r in s3_stub.requests if r.method == "PUT")
    assert put.headers["authorization"].rsplit("Signature=", 1)[1] != first_signature


def test_ceph_use_tls_switches_the_endpoint_to_https(monkeypatch):
    env = {"WHITEPAPER_CEPH_BUCKET_HOST": "ceph.internal", "WHITEPAPER_CEPH_BUCKET_PORT": "8443"}
    module = settings_from_env(monkeypatch, env)
    assert module["STORAGES"]["artifacts"]["OPTIONS"]["endpoint_url"] == "http://ceph.internal:8443"
    module = settings_from_env(monkeypatch, {**env, "WHITEPAPER_CEPH_USE_TLS": "true"})
    storage = _storage(module)
    assert storage.connection.meta.client.meta.endpoint_url == "https://ceph.internal:8443"


def _storage(module: dict[str, Any]) -> Any:
    from storages.backends.s3 import S3Storage

    return S3Storage(**module["STORAGES"]["artifacts"]["OPTIONS"])


# -- Celery result backend ------------------------------------------------------------------
def test_celery_result_backend_decides_whether_results_are_kept(monkeypatch, tmp_path):
    from celery import Celery

    def app_for(env: dict[str, str]) -> Celery:
        module = settings_from_env(monkeypatch, {"TORGHUT_VAR_DIR": str(tmp_path), **env})
        app = Celery("probe")
        app.config_from_object(
            {k: v for k, v in module.items() if k.startswith("CELERY_")}, namespace="CELERY"
        )
        return app

    plain = app_for({})
    assert (plain.conf.task_ignore_result, type(plain.backend).__name__) == (
        True,
        "DisabledBackend",
    )
    kept = app_for({"CELERY_RESULT_BACKEND": _redis_url()})
    assert (kept.conf.task_ignore_result, type(kept.backend).__name__) == (False, "RedisBackend")


def test_settings_from_env_leaves_the_process_environment_alone(monkeypatch):
    before = dict(os.environ)
    settings_from_env(monkeypatch, {"TRADING_POLL_MS": "1000"})
    assert dict(os.environ) == before
    assert Path(ROOT / "torghut_site" / "settings" / "__init__.py").is_file()
