"""A Flipt-protocol server for tests, evaluating with Flipt's own engine (PyPI `flipt-client`).

Run as a separate process (`python -m tests.servers.flipt_server PORT STATE_FILE`): the engine
aborts its process when its server is unreachable, so it never runs inside the test process.

- `GET /internal/v1/evaluation/snapshot/namespace/{ns}`: the flag state the engine reads;
- `POST /evaluate/v1/boolean`: Flipt's boolean evaluation (camelCase or snake_case fields),
  answered by the engine; an unknown flag gets Flipt's grpc-gateway 404 body;
- `PUT /__admin/state`: replace the flag state and rebuild the engines (tests flip flags);
- `POST /__admin/delay`: `{"seconds": s}` delays every evaluation (timeout tests).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from flipt_client import FliptClient
from flipt_client.errors import EvaluationError
from flipt_client.models import ClientOptions

STATE: dict[str, Any] = {"namespace": {"key": "default"}, "flags": []}
ENGINES: dict[str, FliptClient] = {}
LOCK = threading.Lock()
DELAY = {"seconds": 0.0}
URL = ""


def _engine(namespace: str) -> FliptClient:
    with LOCK:
        engine = ENGINES.get(namespace)
    if engine is None:
        # built outside the lock: the engine fetches its snapshot from this very server
        engine = FliptClient(opts=ClientOptions(url=URL, namespace=namespace))
        with LOCK:
            engine = ENGINES.setdefault(namespace, engine)
    return engine


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self) -> None:
        prefix = "/internal/v1/evaluation/snapshot/namespace/"
        if self.path.startswith(prefix):
            namespace = self.path[len(prefix) :].split("?")[0]
            with LOCK:
                state = {**STATE, "namespace": {"key": namespace}}
            self._send(200, state)
            return
        self._send(404, {"code": 5, "message": "not found", "details": []})

    def do_PUT(self) -> None:
        if self.path == "/__admin/state":
            state = self._body()
            with LOCK:
                STATE.clear()
                STATE.update(state)
                engines = list(ENGINES.values())
                ENGINES.clear()
            for engine in engines:
                engine.close()
            self._send(200, {"ok": True})
            return
        self._send(404, {})

    def do_POST(self) -> None:
        if self.path == "/__admin/delay":
            DELAY["seconds"] = float(self._body().get("seconds", 0))
            self._send(200, {"ok": True})
            return
        if self.path != "/evaluate/v1/boolean":
            self._send(404, {"code": 5, "message": "not found", "details": []})
            return
        started = time.perf_counter()
        req = self._body()

        def get(camel: str, snake: str) -> Any:
            return req.get(camel) if req.get(camel) is not None else req.get(snake)

        namespace = get("namespaceKey", "namespace_key") or "default"
        flag = get("flagKey", "flag_key")
        entity = get("entityId", "entity_id") or ""
        context = {k: str(v) for k, v in (req.get("context") or {}).items()}
        if DELAY["seconds"]:
            time.sleep(DELAY["seconds"])
        try:
            result = _engine(namespace).evaluate_boolean(flag, entity, context)
        except (KeyError, EvaluationError):
            self._send(
                404, {"code": 5, "message": f'flag "{namespace}/{flag}" not found', "details": []}
            )
            return
        self._send(
            200,
            {
                "enabled": result.enabled,
                "reason": result.reason,
                "requestId": get("requestId", "request_id") or str(uuid.uuid4()),
                "requestDurationMillis": (time.perf_counter() - started) * 1000,
                "timestamp": datetime.now(tz=UTC).isoformat(),
                "flagKey": result.flag_key,
                "segmentKeys": result.segment_keys or [],
            },
        )


def main() -> None:
    global URL
    port = int(sys.argv[1])
    if len(sys.argv) > 2:
        with open(sys.argv[2], encoding="utf-8") as handle:
            STATE.update(json.load(handle))
    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    URL = f"http://127.0.0.1:{httpd.server_address[1]}"
    print(URL, flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
