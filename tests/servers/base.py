"""A small real HTTP server for tests: a stand-in for a vendor API on 127.0.0.1.

Subclass `JsonHandler`-based servers route by (method, regex path). Each server runs in a
background thread on an ephemeral port; `url` is its base URL. Faults can be injected per route
(delay, status code, dropped connection) through `ServerState.faults`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    match: re.Match[str] | None = None

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


@dataclass
class Fault:
    """Applied to the next `times` requests matching `method` and `path_regex`."""

    method: str
    path_regex: str
    times: int = 1
    status: int | None = None  # answer with this status instead of the handler
    body: Any = None
    delay: float = 0.0  # sleep before answering (client timeouts)
    drop: bool = False  # close the connection without answering
    after_handler: bool = False  # run the real handler first (e.g. order accepted, then timeout)


Route = Callable[[Request], Response]


class TestHTTPServer:
    """Start with `start()`, stop with `stop()`; routes are (METHOD, regex) -> handler."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Route]] = []
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self.lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def route(self, method: str, pattern: str, handler: Route) -> None:
        self.routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> TestHTTPServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with server.lock:
                    server.requests.append(request)
                fault = server._take_fault(request)
                if fault and not fault.after_handler:
                    if self._apply_fault(fault):
                        return
                response = server._dispatch(request)
                if fault and fault.after_handler:
                    if self._apply_fault(fault):
                        return
                self._send(response)

            def _apply_fault(self, fault: Fault) -> bool:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.drop:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return True
                if fault.status is not None:
                    self._send(
                        Response(status=fault.status, body=fault.body or {"message": "injected"})
                    )
                    return True
                return False

            def _send(self, response: Response) -> None:
                payload = response.raw
                if payload is None:
                    payload = b"" if response.body is None else json.dumps(response.body).encode()
                try:
                    self.send_response(response.status)
                    headers = {"Content-Type": "application/json", **response.headers}
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def _take_fault(self, request: Request) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method.upper() == request.method and re.match(
                    f"^{fault.path_regex}$", request.path
                ):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _dispatch(self, request: Request) -> Response:
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if method == request.method and match:
                request.match = match
                try:
                    return handler(request)
                except Exception as exc:  # a bug in the double shows up as a 500 with its text
                    return Response(status=500, body={"message": f"test server error: {exc!r}"})
        return Response(status=404, body={"message": "not found"})
