"""Configuration: bad values stop every process with one message naming each variable."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import ROOT, manage
from torghut_site.dburl import DatabaseUrlError, parse_database_url
from torghut_site.env import ConfigError, Env, load_dotenv

HEADER = "torghut cannot start: invalid configuration"


@pytest.mark.parametrize(
    ("env", "problems"),
    [
        ({"TRADING_POLL_MS": "abc"}, ["TRADING_POLL_MS='abc' is not an integer"]),
        (
            {"TRADING_AUTONOMY_GATE_POLICY_PATH": "/nope.json"},
            ["TRADING_AUTONOMY_GATE_POLICY_PATH='/nope.json' is not a readable file"],
        ),
        (
            {
                "TRADING_DRIFT_RETRAIN_REASON_CODES": "x",
                "TRADING_DRIFT_ROLLBACK_REASON_CODES": "bad",
            },
            [
                "TRADING_DRIFT_ROLLBACK_REASON_CODES has unknown drift reason code(s) bad (known: "
                "data_required_null_rate_exceeded, data_staleness_p95_exceeded, "
                "data_duplicate_ratio_exceeded, data_schema_mismatch, "
                "model_calibration_error_exceeded, model_llm_error_ratio_exceeded, "
                "performance_net_pnl_below_min, performance_drawdown_exceeded, "
                "performance_cost_bps_exceeded, performance_execution_fallback_ratio_exceeded)"
            ],
        ),
        (
            {
                "TRADING_ROLLBACK_DAILY_LOSS_LIMIT": "0",
                "TRADING_ROLLBACK_MAX_DRAWDOWN_LIMIT": "1.5",
                "TRADING_ROLLBACK_FALLBACK_RATIO_LIMIT": "0",
            },
            [
                "TRADING_ROLLBACK_MAX_DRAWDOWN_LIMIT=1.5 must be <= 1.0",
                "TRADING_ROLLBACK_FALLBACK_RATIO_LIMIT=0.0 must be > 0",
                "TRADING_ROLLBACK_DAILY_LOSS_LIMIT=0.0 must be > 0",
            ],
        ),
        ({"TRADING_MODE": "foo"}, ["TRADING_MODE='foo' must be one of: paper, live"]),
        (
            {"LLM_COMMITTEE_ENABLED": "maybe", "LLM_COMMITTEE_FAIL_CLOSED_VERDICT": "approve"},
            [
                "LLM_COMMITTEE_ENABLED='maybe' is not a boolean (true/false, 1/0, yes/no, on/off)",
                "LLM_COMMITTEE_FAIL_CLOSED_VERDICT='approve' must be one of: veto, abstain",
            ],
        ),
        (
            {"WHITEPAPER_WEBHOOK_THROTTLE": "120/fortnight"},
            [
                "WHITEPAPER_WEBHOOK_THROTTLE='120/fortnight' is not a rate "
                "(<count>/<s|min|hour|day>, e.g. 120/min)"
            ],
        ),
        (
            {"TRADING_LIVE_APPROVAL_MAX_TTL_HOURS": "0"},
            ["TRADING_LIVE_APPROVAL_MAX_TTL_HOURS=0 must be >= 1"],
        ),
        (
            {"TRADING_MODE": "live"},
            [
                "TRADING_MODE=live requires TRADING_LIVE_ENABLED=true (allowed: paper, or live with it)"
            ],
        ),
        (
            {"TRADING_LIVE_ENABLED": "true"},
            ["TRADING_LIVE_ENABLED=true requires TRADING_MODE=live (paper and live must agree)"],
        ),
        (
            {"TRADING_POLL_MS": "10", "TRADING_ENABLED": "maybe", "DB_DSN": "mysql://x/y"},
            [
                "DB_DSN is not a usable database URL: unsupported scheme 'mysql'; use postgresql+psycopg://, "
                "postgres:// or sqlite:///",
                "TRADING_ENABLED='maybe' is not a boolean (true/false, 1/0, yes/no, on/off)",
                "TRADING_POLL_MS=10 must be >= 250",
            ],
        ),
        (
            {"TRADING_MULTI_ACCOUNT_ENABLED": "true", "TRADING_ACCOUNTS_JSON": "[{"},
            [
                "TRADING_ACCOUNTS_JSON is not valid JSON (line 1 column 3: Expecting property name "
                "enclosed in double quotes; the value is not shown, it may hold credentials)",
                'TRADING_ACCOUNTS_JSON must be a non-empty list of lanes (or {"accounts": [...]}) when '
                "TRADING_MULTI_ACCOUNT_ENABLED=true",
            ],
        ),
        (
            {
                "TRADING_ORDER_FEED_ENABLED": "true",
                "TRADING_ORDER_FEED_AUTO_OFFSET_RESET": "oldest",
            },
            [
                "TRADING_ORDER_FEED_BOOTSTRAP_SERVERS is required when "
                "TRADING_ORDER_FEED_ENABLED=true (host:port[,host:port...])",
                "TRADING_ORDER_FEED_AUTO_OFFSET_RESET='oldest' must be one of: earliest, latest, error",
            ],
        ),
        (
            {
                "TRADING_ORDER_FEED_TOPIC_PARTITIONS": "0",
                "TRADING_SIGNAL_KAFKA_TOPIC_REPLICATION": "three",
                "WHITEPAPER_KAFKA_DLQ_TOPIC_RETENTION_MS": "-1",
            },
            [
                "TRADING_ORDER_FEED_TOPIC_PARTITIONS=0 must be >= 1",
                "TRADING_SIGNAL_KAFKA_TOPIC_REPLICATION='three' is not an integer",
                "WHITEPAPER_KAFKA_DLQ_TOPIC_RETENTION_MS=-1 must be >= 1",
            ],
        ),
        (
            {"TRADING_ORDER_FEED_SECURITY_PROTOCOL": "sasl_ssl"},
            [
                "TRADING_ORDER_FEED_SECURITY_PROTOCOL=SASL_SSL needs TRADING_ORDER_FEED_SASL_MECHANISM "
                "(one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), TRADING_ORDER_FEED_SASL_USERNAME and "
                "TRADING_ORDER_FEED_SASL_PASSWORD"
            ],
        ),
        (
            {"TRADING_SIGNAL_SOURCE": "kafka"},
            [
                "TRADING_SIGNAL_SOURCE=kafka requires TRADING_SIGNAL_KAFKA_BOOTSTRAP_SERVERS "
                "(or TRADING_ORDER_FEED_BOOTSTRAP_SERVERS)"
            ],
        ),
        (
            {
                "WHITEPAPER_KAFKA_ENABLED": "true",
                "WHITEPAPER_MAX_PDF_BYTES": "fifty",
                "WHITEPAPER_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext",
            },
            [
                "WHITEPAPER_MAX_PDF_BYTES='fifty' is not an integer",
                "WHITEPAPER_KAFKA_ENABLED=true requires WHITEPAPER_KAFKA_BOOTSTRAP_SERVERS "
                "(or TRADING_ORDER_FEED_BOOTSTRAP_SERVERS)",
                "WHITEPAPER_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs "
                "WHITEPAPER_KAFKA_SASL_MECHANISM (one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), "
                "WHITEPAPER_KAFKA_SASL_USERNAME and WHITEPAPER_KAFKA_SASL_PASSWORD",
            ],
        ),
        (
            {"WHITEPAPER_PDF_ALLOWED_HOSTS": "arxiv.org, https://evil.example/x.pdf, *.github.com"},
            [
                "WHITEPAPER_PDF_ALLOWED_HOSTS: 'https://evil.example/x.pdf' is not a host name "
                "(no scheme, port or path) nor an IP address",
                "WHITEPAPER_PDF_ALLOWED_HOSTS: '*.github.com': write 'github.com', which also "
                "matches its subdomains",
            ],
        ),
        (
            {"WHITEPAPER_PDF_ALLOWED_HOSTS": " , "},
            ["WHITEPAPER_PDF_ALLOWED_HOSTS is empty: list hosts, or * for any public host"],
        ),
        (
            {
                "TRADING_ALLOCATOR_ENABLED": "maybe",
                "TRADING_ALLOCATOR_STRATEGY_NOTIONAL_CAPS": '{"macd": "lots", "b": true}',
                "TRADING_ALLOCATOR_SYMBOL_NOTIONAL_CAPS": "[1]",
                "TRADING_ALLOCATOR_MAX_SYMBOL_NOTIONAL": "x",
                "TRADING_ALLOCATOR_MAX_SYMBOL_PCT_EQUITY": "-1",
                "TRADING_ALLOCATOR_SYMBOL_CORRELATION_GROUPS": '{"AAPL": 3, "msft": "tech"}',
                "TRADING_ALLOCATOR_CORRELATION_GROUP_NOTIONAL_CAPS": '{"tech": -5, "metals": 1}',
                "TRADING_MAX_PARTICIPATION_RATE": "-0.1",
            },
            [
                "TRADING_MAX_PARTICIPATION_RATE=-0.1 must be >= 0",
                "TRADING_ALLOCATOR_ENABLED='maybe' is not a boolean (true/false, 1/0, yes/no, "
                "on/off)",
                "TRADING_ALLOCATOR_STRATEGY_NOTIONAL_CAPS['macd']=\"lots\" is not a decimal number",
                "TRADING_ALLOCATOR_STRATEGY_NOTIONAL_CAPS['b']=true is not a decimal number",
                "TRADING_ALLOCATOR_SYMBOL_NOTIONAL_CAPS must be a JSON object of name -> number",
                "TRADING_ALLOCATOR_MAX_SYMBOL_NOTIONAL='x' is not a decimal number",
                "TRADING_ALLOCATOR_MAX_SYMBOL_PCT_EQUITY=-1 must be >= 0",
                "TRADING_ALLOCATOR_SYMBOL_CORRELATION_GROUPS['AAPL']=3 must be a non-empty string",
                "TRADING_ALLOCATOR_CORRELATION_GROUP_NOTIONAL_CAPS['tech']=-5 must be >= 0",
                "TRADING_ALLOCATOR_CORRELATION_GROUP_NOTIONAL_CAPS names group(s) no symbol "
                "belongs to in TRADING_ALLOCATOR_SYMBOL_CORRELATION_GROUPS: metals",
            ],
        ),
    ],
)
def test_invalid_values_stop_startup_with_one_message(env, problems):
    result = manage("check", env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [HEADER, *[f"  - {p}" for p in problems]]
    assert "Traceback" not in result.stderr


def test_prod_requires_secret_key_no_debug_and_allowed_hosts():
    result = manage("check", env={"APP_ENV": "prod", "DEBUG": "true"})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        HEADER,
        "  - SECRET_KEY is required when APP_ENV=prod (or SECRET_KEY_FILE)",
        "  - DEBUG=true is not allowed when APP_ENV=prod",
        "  - ALLOWED_HOSTS must list the served host names when APP_ENV=prod",
    ]


def test_prod_check_deploy_is_clean(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s" * 20 + "-production-secret-key-0123456789-abcdefghij\n")
    env = {
        "APP_ENV": "prod",
        "SECRET_KEY_FILE": str(secret),
        "ALLOWED_HOSTS": "torghut.example.com",
        "TORGHUT_VAR_DIR": str(tmp_path),
    }
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_celery_worker_refuses_bad_configuration():
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "torghut_site",
            "worker",
            "--pool=solo",
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "TRADING_MODE": "foo", "TORGHUT_ENV_FILE": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-2:] == [
        HEADER,
        "  - TRADING_MODE='foo' must be one of: paper, live",
    ]


def test_env_readers():
    env = Env(
        {
            "A": " 5 ",
            "B": "yes",
            "C": "1.5",
            "D": "x,, y ",
            "E": "12.30",
            "F": '{"k": 1}',
            "G": "inf",
        }
    )
    assert env.int("A", default=0) == 5
    assert env.bool("B") is True
    assert env.float("C", default=0.0) == 1.5
    assert env.csv("D") == ["x", "y"]
    assert env.decimal("E") == Decimal("12.30")
    assert env.json("F") == {"k": 1}
    assert env.float("G", default=2.0) == 2.0
    assert env.str("MISSING", default="d") == "d"
    assert env.problems == ["G='inf' is not a finite number"]
    with pytest.raises(ConfigError) as info:
        env.raise_if_problems()
    assert str(info.value) == f"{HEADER}\n  - G='inf' is not a finite number"


def test_allocator_maps_parse_into_settings():
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings as s; print(repr(("
        "s.TRADING_ALLOCATOR_STRATEGY_NOTIONAL_CAPS, s.TRADING_ALLOCATOR_SYMBOL_NOTIONAL_CAPS, "
        "s.TRADING_ALLOCATOR_SYMBOL_CORRELATION_GROUPS, "
        "s.TRADING_ALLOCATOR_CORRELATION_GROUP_NOTIONAL_CAPS)))",
        env={
            "TRADING_ALLOCATOR_STRATEGY_NOTIONAL_CAPS": '{"macd": 2500, "tsmom": "1000.50"}',
            "TRADING_ALLOCATOR_SYMBOL_NOTIONAL_CAPS": '{"aapl": 0}',
            "TRADING_ALLOCATOR_SYMBOL_CORRELATION_GROUPS": '{"aapl": " tech ", "MSFT": "tech"}',
            "TRADING_ALLOCATOR_CORRELATION_GROUP_NOTIONAL_CAPS": '{"tech": 4000}',
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "({'macd': Decimal('2500'), 'tsmom': Decimal('1000.50')}, {'AAPL': Decimal('0')}, "
        "{'AAPL': 'tech', 'MSFT': 'tech'}, {'tech': Decimal('4000')})"
    )


def test_env_secret_file_and_aliases(tmp_path):
    secret = tmp_path / "s"
    secret.write_text("from-file\n")
    env = Env({"TOKEN_FILE": str(secret), "ALIAS": "second"})
    assert env.secret("TOKEN") == "from-file"
    assert env.str("PRIMARY", "ALIAS") == "second"
    missing = Env({"TOKEN_FILE": str(tmp_path / "nope")})
    assert missing.secret("TOKEN") == ""
    assert missing.problems == [
        f"TOKEN_FILE='{tmp_path / 'nope'}' cannot be read: No such file or directory"
    ]


def test_dotenv_does_not_override_the_environment(tmp_path):
    path = tmp_path / ".env"
    path.write_text("# comment\nexport A='from-file'\nB=\"quoted\"\nC=plain\n")
    environ = {"C": "from-env"}
    load_dotenv(path, environ)
    assert environ == {"A": "from-file", "B": "quoted", "C": "from-env"}


def test_database_urls(tmp_path):
    pg = parse_database_url(
        "postgresql+psycopg://tor:gh%40ut@db.internal:15438/torghut?sslmode=require",
        base_dir=tmp_path,
    )
    assert {
        k: pg[k] for k in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
    } == {
        "ENGINE": "torghut_site.postgres",
        "NAME": "torghut",
        "USER": "tor",
        "PASSWORD": "gh@ut",
        "HOST": "db.internal",
        "PORT": "15438",
        "OPTIONS": {"sslmode": "require"},
    }
    assert (pg["CONN_MAX_AGE"], pg["CONN_HEALTH_CHECKS"]) == (60, True)
    assert parse_database_url("postgres://u@h/d", base_dir=tmp_path)["PORT"] == ""
    assert parse_database_url("sqlite:///var/x.db", base_dir=tmp_path)["NAME"] == str(
        tmp_path / "var/x.db"
    )
    assert parse_database_url("sqlite:////abs/x.db", base_dir=tmp_path)["NAME"] == "/abs/x.db"
    for bad, message in [
        (
            "mysql://h/d",
            "unsupported scheme 'mysql'; use postgresql+psycopg://, postgres:// or sqlite:///",
        ),
        ("postgres://h:port/d", "the port is not a number"),
        ("postgres://h:5432/", "the URL names no database (…/dbname)"),
        ("sqlite://", "sqlite URL needs a file path, e.g. sqlite:///var/torghut.sqlite3"),
    ]:
        with pytest.raises(DatabaseUrlError) as info:
            parse_database_url(bad, base_dir=tmp_path)
        assert str(info.value) == message
