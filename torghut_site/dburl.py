"""Parse the database DSNs kept from the original service (docs/compatibility.md#environment-names)
into Django DATABASES entries.

Accepted forms: ``postgresql+psycopg://user:pass@host:port/db`` (SQLAlchemy style), ``postgres://``
and ``postgresql://`` (libpq style, query string options such as ``sslmode`` become connection
options), and ``sqlite:///relative/or//absolute/path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

_POSTGRES_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}


class DatabaseUrlError(ValueError):
    pass


def parse_database_url(url: str, *, base_dir: Path) -> dict[str, Any]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        raw_path = unquote(parts.path)
        if raw_path in ("", "/"):
            raise DatabaseUrlError(
                "sqlite URL needs a file path, e.g. sqlite:///var/torghut.sqlite3"
            )
        # sqlite:///var/x.db is relative to the project, sqlite:////abs/x.db is absolute
        path = Path(raw_path[1:]) if raw_path.startswith("/") else Path(raw_path)
        if not path.is_absolute():
            path = base_dir / path
        return sqlite_database(path)
    if scheme not in _POSTGRES_SCHEMES:
        raise DatabaseUrlError(
            f"unsupported scheme {parts.scheme!r}; use postgresql+psycopg://, postgres:// or sqlite:///"
        )
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise DatabaseUrlError("the URL names no database (…/dbname)")
    try:
        port = parts.port
    except ValueError as exc:
        raise DatabaseUrlError("the port is not a number") from exc
    options = dict(parse_qsl(parts.query))
    return {
        "ENGINE": "torghut_site.postgres",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(port or ""),
        "OPTIONS": options,
        # persistent connections, checked before reuse (a restarted Postgres is not an error; the
        # check costs no round trip while the connection is quiet: torghut_site.postgres)
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


def sqlite_database(path: Path) -> dict[str, Any]:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            # web, worker and beat share the file: WAL lets readers run beside one writer, and
            # IMMEDIATE transactions take the write lock up front instead of failing on upgrade
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    }
