"""Outside APP_ENV=dev (stage as well as prod) torghut refuses to start with the development
secret key or with every host allowed.

Before, only APP_ENV=prod checked them: a stage deployment started with the hard-coded development
SECRET_KEY (sessions, CSRF and password-reset tokens signed with a key in the repository) and
ALLOWED_HOSTS=*.
"""

from __future__ import annotations

from tests.conftest import manage

HEADER = "torghut cannot start: invalid configuration"
GOOD_KEY = "s" * 20 + "-stage-secret-key-0123456789-abcdefghijklmnop"


def test_stage_requires_a_secret_key_and_explicit_allowed_hosts(tmp_path):
    result = manage("check", env={"APP_ENV": "stage", "TORGHUT_VAR_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        HEADER,
        "  - SECRET_KEY is required when APP_ENV=stage (or SECRET_KEY_FILE)",
        "  - ALLOWED_HOSTS must list the served host names when APP_ENV=stage",
    ]


def test_stage_refuses_a_short_key_and_prod_refuses_any_host(tmp_path):
    stage = manage(
        "check",
        env={
            "APP_ENV": "stage",
            "SECRET_KEY": "short-stage-key",
            "ALLOWED_HOSTS": "stage.torghut.example.com",
            "TORGHUT_VAR_DIR": str(tmp_path),
        },
    )
    assert stage.returncode == 2
    assert stage.stderr.splitlines() == [
        HEADER,
        "  - SECRET_KEY must be at least 50 characters when APP_ENV=stage",
    ]
    prod = manage(
        "check",
        env={
            "APP_ENV": "prod",
            "SECRET_KEY": GOOD_KEY,
            "ALLOWED_HOSTS": "torghut.example.com,*",
            "TORGHUT_VAR_DIR": str(tmp_path),
        },
    )
    assert prod.returncode == 2
    assert prod.stderr.splitlines() == [
        HEADER,
        "  - ALLOWED_HOSTS must not contain * (any host) when APP_ENV=prod",
    ]


def test_stage_starts_with_its_own_key_and_hosts_and_dev_keeps_its_defaults(tmp_path):
    stage = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.ALLOWED_HOSTS, len(settings.SECRET_KEY))",
        env={
            "APP_ENV": "stage",
            "SECRET_KEY": GOOD_KEY,
            "ALLOWED_HOSTS": "stage.torghut.example.com",
            "TORGHUT_VAR_DIR": str(tmp_path),
        },
    )
    assert stage.returncode == 0, stage.stderr
    assert stage.stdout.splitlines()[-1] == f"['stage.torghut.example.com'] {len(GOOD_KEY)}"
    dev = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.ALLOWED_HOSTS)",
        env={"TORGHUT_VAR_DIR": str(tmp_path)},
    )
    assert dev.returncode == 0, dev.stderr
    assert dev.stdout.splitlines()[-1] == "['*']"
