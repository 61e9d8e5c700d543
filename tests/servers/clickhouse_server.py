"""ClickHouse's HTTP interface on 127.0.0.1, answered by the real ClickHouse engine (chdb).

`GET /?query=<SQL>` or `POST /` (the body is the query, or its continuation when `query` is also
given) runs the SQL through chdb and answers like clickhouse-server: 200 with the output in the
query's `FORMAT` (TabSeparated when none), or an error body `Code: N. DB::Exception: ...` with
`X-ClickHouse-Exception-Code: N` and HTTP 500 (401 for authentication failures, 400 for syntax
errors, 404 for unknown databases/tables, as the server does). Credentials come from the
`X-ClickHouse-User` / `X-ClickHouse-Key` headers or the `user` / `password` parameters; the
default user has no password. `GET /ping` answers `Ok.`.

chdb allows one engine (one data directory) per process, so every server in a test run shares
it: tests isolate themselves with their own database names. Test-only: chdb is a dev dependency.
"""

from __future__ import annotations

import re
import tempfile
import threading
from typing import Any

from tests.servers.base import Request, Response, TestHTTPServer

_engine: Any = None
_engine_lock = threading.Lock()
_CODE = re.compile(r"Code:\s*(\d+)")
_STATUS_BY_CODE = {62: 400, 60: 404, 81: 404, 516: 401}


def engine() -> Any:
    """The process-wide chdb session (created on first use in a temporary directory)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from chdb import session

            _engine = session.Session(tempfile.mkdtemp(prefix="torghut-chdb-"))
        return _engine


def close_engine() -> None:
    """Close the shared engine (a later `engine()` starts a fresh one); call at test-run end so
    chdb shuts down cleanly instead of at interpreter exit."""
    global _engine
    with _engine_lock:
        if _engine is not None:
            _engine.close()
            _engine = None


def run_query(sql: str) -> bytes:
    """Run SQL on the shared engine (TabSeparated unless the SQL names a FORMAT)."""
    eng = engine()
    with _engine_lock:
        result = eng.query(sql, "TabSeparated")
    data = result.bytes() if hasattr(result, "bytes") else str(result).encode()
    return bytes(data)


class ClickHouseServer(TestHTTPServer):
    def __init__(self, *, user: str = "default", password: str = "") -> None:
        super().__init__()
        self.user = user
        self.password = password
        self.route("GET", "/", self._handle_query)
        self.route("POST", "/", self._handle_query)
        self.route("GET", "/ping", lambda request: Response(raw=b"Ok.\n", headers=_TEXT))

    @property
    def queries(self) -> list[str]:
        """The SQL text of every query received, in order."""
        with self.lock:
            return [_sql(r) for r in self.requests if r.path == "/"]

    def execute(self, sql: str) -> str:
        """Run SQL directly (test setup), bypassing HTTP."""
        return run_query(sql).decode()

    def _handle_query(self, request: Request) -> Response:
        user = request.headers.get("x-clickhouse-user") or request.query.get("user") or "default"
        key = request.headers.get("x-clickhouse-key") or request.query.get("password") or ""
        if user != self.user or key != self.password:
            return _error(
                f"Code: 516. DB::Exception: {user}: Authentication failed: password is incorrect, "
                "or there is no user with such name. (AUTHENTICATION_FAILED)"
            )
        sql = _sql(request)
        if not sql.strip():
            return _error("Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
        try:
            output = run_query(sql)
        except Exception as exc:  # chdb raises ChdbError(RuntimeError) with the server's text
            return _error(str(exc))
        return Response(raw=output, headers=_TEXT)


_TEXT = {"Content-Type": "text/plain; charset=UTF-8"}


def _sql(request: Request) -> str:
    body = request.body.decode("utf-8", "replace") if request.body else ""
    query = request.query.get("query", "")
    return f"{query}\n{body}" if query and body else (query or body)


def _error(message: str) -> Response:
    match = _CODE.search(message)
    code = int(match.group(1)) if match else 1001
    text = message if match else f"Code: {code}. DB::Exception: {message}"
    return Response(
        status=_STATUS_BY_CODE.get(code, 500),
        raw=(text.rstrip() + "\n").encode(),
        headers={**_TEXT, "X-ClickHouse-Exception-Code": str(code)},
    )
