"""An OpenAI-compatible chat-completions server for tests (a local stand-in for OpenAI, Jangar's
`/openai/v1` gateway or a self-hosted model): no network, no model.

Answers come from `queue(...)` (one per request, in order) or, when the queue is empty, from
`responder(body) -> str` (e.g. a rule over the prompt, for optimizer runs). Token usage is the
word count of the prompt and of the answer, so tests can assert exact numbers. Faults (delays,
5xx, dropped connections) come from `TestHTTPServer.inject`.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from typing import Any

from tests.servers.base import Request, Response, TestHTTPServer

CHAT_PATHS = ("/v1/chat/completions", "/openai/v1/chat/completions")


class LLMServer(TestHTTPServer):
    def __init__(self, *, api_key: str = "") -> None:
        super().__init__()
        self.api_key = api_key
        self.answers: deque[str] = deque()
        self.responder: Callable[[dict[str, Any]], str] | None = None
        self.system_fingerprint: str | None = None  # sent in each answer when set
        self._ids = itertools.count(1)
        for path in CHAT_PATHS:
            self.route("POST", path, self._complete)

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (what LLM_SELF_HOSTED_BASE_URL / OPENAI_BASE_URL take)."""
        return f"{self.url}/v1"

    def queue(self, *contents: str) -> None:
        with self.lock:
            self.answers.extend(contents)

    def reset(self) -> None:
        with self.lock:
            self.answers.clear()
            self.requests.clear()
            self.faults.clear()
        self.responder = None
        self.system_fingerprint = None

    def completions(self) -> list[dict[str, Any]]:
        """The JSON bodies of the chat completions received, in order."""
        with self.lock:
            return [r.json() for r in self.requests if r.method == "POST" and r.path in CHAT_PATHS]

    def _complete(self, request: Request) -> Response:
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Response(status=401, body={"error": {"message": "invalid api key"}})
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return Response(status=400, body={"error": {"message": "messages is required"}})
        with self.lock:
            content = self.answers.popleft() if self.answers else None
        if content is None:
            if self.responder is None:
                return Response(status=500, body={"error": {"message": "no answer scripted"}})
            content = self.responder(body)
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        answer_words = len(content.split())
        extra = (
            {}
            if self.system_fingerprint is None
            else {"system_fingerprint": self.system_fingerprint}
        )
        return Response(
            body=extra
            | {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "model": body.get("model", "test-model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_words,
                    "completion_tokens": answer_words,
                    "total_tokens": prompt_words + answer_words,
                },
            }
        )
