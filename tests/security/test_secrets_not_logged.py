"""Secrets never reach a log line, an error answer, a status page or a settings dump.

Each test runs a real code path that handles a secret — against the real Alpaca and Jangar
stand-ins, the Ceph RGW, Postgres, the API — with the root logger at DEBUG (what
`LOG_LEVEL=debug` gives in production), including its failure paths (refused credentials, 5xx,
timeouts), and then looks for each secret in every captured record formatted by the project's
JSON formatter (message, extras, traceback), in the exceptions raised and in the answers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.config import Config
from django.views.debug import get_default_exception_reporter_filter
from rest_framework.test import APIClient

from tests.conftest import manage
from tests.servers.alpaca_server import AlpacaServer
from tests.servers.base import Fault
from tests.servers.jangar_server import JangarServer
from torghut_site.dburl import DatabaseUrlError, parse_database_url
from torghut_site.logging import JsonFormatter
from torghut_site.storage import ObjectStoreError, object_put
from trading.brokers.alpaca import AlpacaBroker
from trading.brokers.base import BrokerError, OrderRequest

APCA_KEY = "AKSECRETKEYID00000001"
APCA_SECRET = "apca-secret-value-00000002"  # noqa: S105
JANGAR_KEY = "jangar-api-key-00000003"
WORKFLOW_TOKEN = "wf-token-value-00000004"  # noqa: S105
WEBHOOK_SECRET = "webhook-secret-00000005"  # noqa: S105
S3_WRONG_SECRET = "s3-wrong-secret-00000006"  # noqa: S105
S3_WRONG_ACCESS_KEY = "AKS3WRONGACCESS00000011"
DB_PASSWORD = "db-password-00000007"  # noqa: S105
GITHUB_TOKEN = "gh-token-value-00000008"  # noqa: S105
REDIS_PASSWORD = "redis-password-00000009"  # noqa: S105
KAFKA_PASSWORD = "kafka-password-00000010"  # noqa: S105
ALL_SECRETS = (
    APCA_KEY,
    APCA_SECRET,
    JANGAR_KEY,
    WORKFLOW_TOKEN,
    WEBHOOK_SECRET,
    S3_WRONG_SECRET,
    DB_PASSWORD,
    GITHUB_TOKEN,
    REDIS_PASSWORD,
    KAFKA_PASSWORD,
)


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def formatted(caplog: pytest.LogCaptureFixture) -> str:
    formatter = JsonFormatter()
    return "\n".join(formatter.format(record) for record in caplog.records)


def assert_clean(where: str, texts: Iterable[str], secrets: Iterable[str] = ALL_SECRETS) -> None:
    text = "\n".join(texts)
    leaked = [secret for secret in secrets if secret in text]
    assert not leaked, f"{where} shows {leaked}"


@pytest.fixture
def secret_settings(settings) -> Any:
    settings.APCA_API_KEY_ID = APCA_KEY
    settings.APCA_API_SECRET_KEY = APCA_SECRET
    settings.JANGAR_API_KEY = JANGAR_KEY
    settings.WHITEPAPER_WORKFLOW_API_TOKEN = WORKFLOW_TOKEN
    settings.WHITEPAPER_GITHUB_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.WHITEPAPER_GITHUB_TOKEN = GITHUB_TOKEN
    settings.WHITEPAPER_CEPH_SECRET_KEY = S3_WRONG_SECRET
    settings.WHITEPAPER_WORKFLOW_ENABLED = True
    settings.REDIS_URL = f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0"
    settings.CELERY_BROKER_URL = f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/1"
    settings.TRADING_ORDER_FEED_KAFKA = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "torghut",
        "sasl.password": KAFKA_PASSWORD,
    }
    settings.TRADING_LANES = [
        {"label": "paper", "mode": "paper", "broker": "alpaca", "enabled": True}
        | {"api_key": APCA_KEY, "secret_key": APCA_SECRET, "base_url": ""}
    ]
    return settings


def test_alpaca_keys_stay_out_of_logs_and_errors(logs):
    server = AlpacaServer(key=APCA_KEY, secret=APCA_SECRET).start()
    errors: list[str] = []
    try:

        def broker(secret: str) -> AlpacaBroker:
            return AlpacaBroker(
                api_key=APCA_KEY,
                secret_key=secret,
                paper=True,
                base_url=server.url,
                account_label="paper",
                timeout_seconds=0.5,
                rate_limit_per_minute=10_000,
            )

        good = broker(APCA_SECRET)
        good.get_account()
        order = OrderRequest(symbol="AAPL", side="buy", qty=Decimal(1), client_order_id="tg-s1")
        good.submit_order(order)
        for fault in (
            Fault("POST", r"^/v2/orders$", status=500, body={"message": "boom"}),
            Fault("POST", r"^/v2/orders$", status=429, body={"message": "slow down"}),
            Fault("POST", r"^/v2/orders$", delay=2.0),
        ):
            server.inject(fault)
            try:
                good.submit_order(
                    OrderRequest(symbol="AAPL", side="buy", qty=Decimal(1), client_order_id="tg-s2")
                )
            except BrokerError as exc:
                errors.append(repr(exc) + str(exc))
        try:
            broker("a-wrong-secret").get_account()  # refused: 401/403 from the stand-in
        except BrokerError as exc:
            errors.append(repr(exc) + str(exc))
    finally:
        server.stop()
    assert len(errors) == 4
    assert_clean("Alpaca adapter logs", [formatted(logs)])
    assert_clean("Alpaca adapter errors", errors)


def test_jangar_key_stays_out_of_logs_errors_and_runs(logs, secret_settings):
    from torghut_site.jangar import JangarError, agentrun_submit
    from trading.services.universe import universe_resolve

    server = JangarServer(api_key=JANGAR_KEY).start()
    errors: list[str] = []
    try:
        url = f"{server.url}/v1/agent-runs"
        payload = {"agentRef": {"name": "codex"}, "namespace": "agents"}
        server.inject(Fault("POST", r"^/v1/agent-runs$", status=503, body={"error": "busy"}))
        agentrun_submit(  # one retried 503, then accepted
            url=url,
            payload=payload,
            idempotency_key="wp-1",
            api_key=JANGAR_KEY,
            max_attempts=2,
            backoff_seconds=0,
            sleep=lambda _: None,
        )
        try:
            agentrun_submit(url=url, payload=payload, idempotency_key="wp-2", api_key="wrong-key")
        except JangarError as exc:
            errors.append(repr(exc) + str(exc))
        secret_settings.TRADING_UNIVERSE_SOURCE = "jangar"
        secret_settings.JANGAR_SYMBOLS_URL = f"{server.url}/v1/symbols-missing"
        secret_settings.TRADING_UNIVERSE_CACHE_SECONDS = 0
        universe_resolve()  # 404: logged as a failed fetch
    finally:
        server.stop()
    assert errors
    assert_clean("Jangar client logs", [formatted(logs)])
    assert_clean("Jangar client errors", errors)


def test_whitepaper_token_and_webhook_secret_stay_out_of_logs_and_answers(
    db, logs, secret_settings, relaxed_throttles
):
    client = APIClient()
    answers = []
    attempts: list[dict[str, Any]] = [
        {"HTTP_AUTHORIZATION": f"Bearer {WORKFLOW_TOKEN}"},
        {"HTTP_X_WHITEPAPER_TOKEN": WORKFLOW_TOKEN},
        {"HTTP_AUTHORIZATION": f"Bearer {WORKFLOW_TOKEN}x"},
        {"HTTP_AUTHORIZATION": f"Token {WORKFLOW_TOKEN}"},
    ]
    for headers in attempts:
        for path in ("/whitepapers/runs/wp-missing", "/whitepapers/runs/wp-missing/finalize"):
            method = client.post if path.endswith("finalize") else client.get
            answers.append(method(path, {}, format="json", **headers))
    body = json.dumps({"action": "opened", "issue": {"number": 1}}).encode()
    good = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    for signature in (f"sha256={good}", f"sha256={good[::-1]}", WEBHOOK_SECRET):
        answers.append(
            client.post(
                "/whitepapers/webhooks/github",
                body,
                content_type="application/json",
                HTTP_X_HUB_SIGNATURE_256=signature,
                HTTP_X_GITHUB_EVENT="issues",
                HTTP_X_GITHUB_DELIVERY=f"sec-{uuid.uuid4().hex}",
            )
        )
    assert {a.status_code for a in answers} >= {401, 404, 202}
    assert_clean("API answers", [a.content.decode() for a in answers])
    assert_clean("request logs", [formatted(logs)])


def test_status_pages_show_no_secret(db, secret_settings, relaxed_throttles):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("sec-status", password="pw-status-123")
    client = APIClient()
    client.force_authenticate(admin)
    pages = [
        client.get(path)
        for path in ("/", "/healthz", "/db-check", "/whitepapers/status", "/trading/status")
    ]
    pages.append(client.get("/trading/health"))
    pages.append(client.get("/trading/metrics"))
    assert [p.status_code for p in pages[:5]] == [200, 200, 200, 200, 200]
    assert_clean("status pages", [p.content.decode() for p in pages])


def test_settings_dump_hides_every_secret(secret_settings, monkeypatch):
    """What Django's error pages and reports show of the settings (the DEBUG technical 500 page,
    error e-mails): the project's filter hides credentials in URLs as well as by name."""
    from django.conf import settings

    # straight on the settings object: override_settings refuses to swap DATABASES
    databases = {"default": {**settings.DATABASES["default"], "PASSWORD": DB_PASSWORD}}
    monkeypatch.setattr(settings._wrapped, "DATABASES", databases)  # type: ignore[misc]
    reporter_filter = get_default_exception_reporter_filter()
    safe = reporter_filter.get_safe_settings()
    assert_clean("the settings dump", [repr(safe)])
    # what Django's own filter hides is still hidden, and the rest is still shown
    assert safe["SECRET_KEY"] == reporter_filter.cleansed_substitute
    assert safe["REDIS_URL"] == f"redis://:{reporter_filter.cleansed_substitute}@127.0.0.1:6379/0"
    assert safe["TRADING_MODE"] == settings.TRADING_MODE


def test_s3_secret_stays_out_of_logs_and_errors(logs, settings):
    endpoint = os.environ.get("TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.fail("TEST_S3_ENDPOINT is not set: run the suite through `make test`")
    access, secret = os.environ["TEST_S3_ACCESS_KEY"], os.environ["TEST_S3_SECRET_KEY"]
    bucket = f"torghut-sec-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    s3.create_bucket(Bucket=bucket)

    def use(secret_key: str, access_key: str = access) -> None:
        settings.STORAGES = {
            **settings.STORAGES,
            "artifacts": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "endpoint_url": endpoint,
                    "access_key": access_key,
                    "secret_key": secret_key,
                    "bucket_name": bucket,
                    "region_name": "us-east-1",
                    "addressing_style": "path",
                    "signature_version": "s3v4",
                    "file_overwrite": False,
                    "client_config": Config(retries={"max_attempts": 1}),
                },
            },
        }

    errors = []
    try:
        use(secret)
        object_put("sec/ok.bin", b"payload", content_type="application/octet-stream")
        use(S3_WRONG_SECRET, S3_WRONG_ACCESS_KEY)
        with pytest.raises(ObjectStoreError) as refused:
            object_put("sec/refused.bin", b"payload", content_type="application/octet-stream")
        errors.append(repr(refused.value) + str(refused.value))
    finally:
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
        s3.delete_bucket(Bucket=bucket)
    shown = (secret, S3_WRONG_SECRET, S3_WRONG_ACCESS_KEY)
    assert_clean("S3 logs", [formatted(logs)], secrets=shown)
    assert_clean("S3 errors", errors, secrets=shown)


def test_database_password_stays_out_of_startup_errors():
    dsn = f"postgresql://torghut:{DB_PASSWORD}@127.0.0.1:1/torghut"
    failures = [
        # unusable URLs stop every process with a configuration error
        manage("check", env={"DB_DSN": dsn.replace(":1/", ":notaport/")}),
        manage("check", env={"DB_DSN": dsn.replace("postgresql:", "mysql:")}),
        # a usable URL whose server cannot be reached
        manage("migrate", "--check", env={"DB_DSN": dsn}),
        manage("showmigrations", "trading", env={"DB_DSN": dsn}),
    ]
    assert all(result.returncode != 0 for result in failures)
    assert_clean("startup errors", [r.stdout + r.stderr for r in failures])
    for bad in (dsn.replace(":1/", ":port/"), dsn.replace("postgresql:", "ftp:"), dsn[:-8]):
        try:
            parse_database_url(bad, base_dir=None)  # type: ignore[arg-type]
        except DatabaseUrlError as exc:
            assert_clean("a database URL error", [str(exc)])


def test_account_keys_stay_out_of_a_bad_accounts_json_message():
    """TRADING_ACCOUNTS_JSON carries each lane's Alpaca keys: a typo in it must not print them."""
    broken = json.dumps([{"label": "a", "api_key": APCA_KEY, "secret_key": APCA_SECRET}])[:-1]
    result = manage(
        "check",
        env={"TRADING_MULTI_ACCOUNT_ENABLED": "true", "TRADING_ACCOUNTS_JSON": broken},
    )
    assert result.returncode != 0
    assert "TRADING_ACCOUNTS_JSON" in result.stderr
    assert_clean("the configuration error", [result.stdout + result.stderr])
