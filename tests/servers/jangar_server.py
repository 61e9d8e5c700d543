"""A Jangar stand-in: `POST /v1/agent-runs` with Jangar's idempotency semantics.

An `Idempotency-Key` seen before returns the AgentRun created for it (same name, same uid) with
200 instead of 201, so tests can prove a retried submit never starts a second agent. `runs` holds
what was created, `set_phase()` moves an AgentRun (e.g. to `failed` before a requeue). Faults
(timeouts, 5xx, dropped connections) come from `TestHTTPServer.inject`.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from tests.servers.base import Request, Response, TestHTTPServer


class JangarServer(TestHTTPServer):
    def __init__(self, *, api_key: str = "") -> None:
        super().__init__()
        self.api_key = api_key
        self.runs: dict[str, dict[str, Any]] = {}  # idempotency key -> resource
        self._counter = itertools.count(1)
        self.route("POST", "/v1/agent-runs", self._create)

    def _create(self, request: Request) -> Response:
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Response(status=401, body={"error": "unauthorized"})
        key = request.headers.get("idempotency-key", "")
        if not key:
            return Response(status=400, body={"error": "Idempotency-Key header is required"})
        body = request.json()
        if not isinstance(body, dict) or "agentRef" not in body:
            return Response(status=422, body={"error": "agentRef is required"})
        with self.lock:
            existing = self.runs.get(key)
            if existing is not None:
                return Response(status=200, body={"resource": existing, "idempotent": True})
            resource = {
                "metadata": {
                    "name": f"{body['agentRef']['name']}-{next(self._counter):04d}",
                    "namespace": body.get("namespace", ""),
                    "uid": str(uuid.uuid4()),
                },
                "spec": body,
                "status": {"phase": "Queued"},
            }
            self.runs[key] = resource
        return Response(status=201, body={"resource": resource})

    def set_phase(self, key: str, phase: str) -> None:
        with self.lock:
            self.runs[key]["status"]["phase"] = phase

    def submits(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.method == "POST" and r.path == "/v1/agent-runs"]
