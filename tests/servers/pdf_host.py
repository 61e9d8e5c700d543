"""A PDF host stand-in: real HTTP on 127.0.0.1 serving papers, redirects and hostile bodies.

Built on `TestHTTPServer` (routes, recorded requests, injectable faults). Bodies that must be
streamed — no Content-Length, a lying Content-Length, chunked, or dribbled one byte at a time —
are `StreamResponse`s; the server writes them chunk by chunk and records in `streams` how many
bytes it managed to write before the client hung up.

Routes:
  GET /paper.pdf                   the PDF given to the constructor
  GET /redirect/<n>                n more redirects, then /paper.pdf; odd n answer with an
                                   absolute Location, even n with a relative one
  GET /to?url=<u>&status=<code>    one redirect to <u> (any origin), setting a cookie
  GET /page.html                   an HTML page (200, text/html)
  GET /huge?bytes=<n>&chunked=1    a PDF-looking body of n bytes without Content-Length
  GET /huge-declared               Content-Length: 10 GiB, a few real bytes
  GET /dribble?delay=<s>           a PDF header, then one byte every <s> seconds, forever
  anything else                    404
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.servers.base import Request, Response, TestHTTPServer

PDF_HEADER = b"%PDF-1.4\n"
BLOCK = 64 * 1024


@dataclass
class StreamResponse(Response):
    """A body produced chunk by chunk. Without `declared_length` the body is close-delimited
    (or chunked with `chunked=True`); with it, that Content-Length is sent whatever the truth."""

    chunks: Callable[[], Iterator[bytes]] = field(default=lambda: iter(()))
    chunk_delay: float = 0.0
    declared_length: int | None = None
    chunked: bool = False


@dataclass
class StreamRecord:
    path: str
    bytes_written: int = 0
    completed: bool = False  # the whole body was written
    aborted: bool = False  # the client went away first
    done: threading.Event = field(default_factory=threading.Event)


class PdfHost(TestHTTPServer):
    def __init__(self, pdf: bytes) -> None:
        super().__init__()
        self.pdf = pdf
        self.streams: list[StreamRecord] = []
        self.route("GET", r"/paper\.pdf", self._paper)
        self.route("GET", r"/redirect/(?P<n>\d+)", self._redirect)
        self.route("GET", r"/to", self._to)
        self.route("GET", r"/page\.html", self._html)
        self.route("GET", r"/huge", self._huge)
        self.route("GET", r"/huge-declared", self._huge_declared)
        self.route("GET", r"/dribble", self._dribble)

    def start(self) -> PdfHost:
        super().start()
        assert self._httpd is not None
        # The base handler always sends Content-Length; let StreamResponses write themselves.
        # The handler class is created per start(), so this touches no other server.
        handler_class = self._httpd.RequestHandlerClass
        send_plain = handler_class._send  # type: ignore[attr-defined]
        host = self

        def _send(handler: BaseHTTPRequestHandler, response: Response) -> None:
            if isinstance(response, StreamResponse):
                host._write_stream(handler, response)
            else:
                send_plain(handler, response)

        setattr(handler_class, "_send", _send)  # noqa: B010
        return self

    def requests_to(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def last_stream(self, timeout: float = 5.0) -> StreamRecord:
        """The most recent stream, once the server has finished writing it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                record = self.streams[-1] if self.streams else None
            if record is not None and record.done.wait(0.05):
                return record
            time.sleep(0.01)
        raise AssertionError("no finished stream on the PDF host")

    # -- routes -------------------------------------------------------------------------------
    def _paper(self, request: Request) -> Response:
        return Response(200, raw=self.pdf, headers={"Content-Type": "application/pdf"})

    def _redirect(self, request: Request) -> Response:
        assert request.match is not None
        n = int(request.match.group("n"))
        status = (301, 302, 303, 307, 308)[n % 5]
        if n == 0:
            location = "/paper.pdf"
        elif n % 2:
            location = f"{self.url}/redirect/{n - 1}"
        else:
            location = str(n - 1)  # relative to /redirect/<n>
        return Response(status, raw=b"", headers={"Location": location})

    def _to(self, request: Request) -> Response:
        status = int(request.query.get("status", "302"))
        return Response(
            status,
            raw=b"",
            headers={"Location": request.query["url"], "Set-Cookie": "host_session=abc; Path=/"},
        )

    def _html(self, request: Request) -> Response:
        body = b"<!doctype html><html><body>Sign in to download</body></html>"
        return Response(200, raw=body, headers={"Content-Type": "text/html; charset=utf-8"})

    def _huge(self, request: Request) -> Response:
        total = int(request.query.get("bytes", str(64 * 1024 * 1024)))

        def chunks() -> Iterator[bytes]:
            yield PDF_HEADER
            sent = len(PDF_HEADER)
            while sent < total:
                block = b"0" * min(BLOCK, total - sent)
                sent += len(block)
                yield block

        return StreamResponse(
            200,
            headers={"Content-Type": "application/pdf"},
            chunks=chunks,
            chunked=request.query.get("chunked") == "1",
        )

    def _huge_declared(self, request: Request) -> Response:
        return StreamResponse(
            200,
            headers={"Content-Type": "application/pdf"},
            chunks=lambda: iter([PDF_HEADER, b"0" * 1024]),
            declared_length=10 * 1024**3,
        )

    def _dribble(self, request: Request) -> Response:
        def chunks() -> Iterator[bytes]:
            yield PDF_HEADER
            while True:
                yield b"0"

        return StreamResponse(
            200,
            headers={"Content-Type": "application/pdf"},
            chunks=chunks,
            chunk_delay=float(request.query.get("delay", "0.05")),
        )

    # -- streaming ----------------------------------------------------------------------------
    def _write_stream(self, handler: Any, response: StreamResponse) -> None:
        record = StreamRecord(path=handler.path)
        with self.lock:
            self.streams.append(record)
        handler.close_connection = True
        try:
            handler.send_response(response.status)
            for key, value in response.headers.items():
                handler.send_header(key, value)
            if response.declared_length is not None:
                handler.send_header("Content-Length", str(response.declared_length))
            elif response.chunked:
                handler.send_header("Transfer-Encoding", "chunked")
            handler.send_header("Connection", "close")
            handler.end_headers()
            for chunk in response.chunks():
                if response.chunked:
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    handler.wfile.write(chunk)
                record.bytes_written += len(chunk)
                if response.chunk_delay:
                    time.sleep(response.chunk_delay)
            if response.chunked:
                handler.wfile.write(b"0\r\n\r\n")
            record.completed = True
        except OSError:  # broken pipe / reset: the client stopped reading and closed
            record.aborted = True
        finally:
            record.done.set()
