"""The demo model: a deterministic OpenAI-compatible chat server that stands in for a real model
in `manage.py dspy demo`, as the simulated broker stands in for Alpaca. It is not a language
model: its answers are a fixed rule over the prompt, so a compiled program, its evaluation and
every hash reproduce exactly. It serves `POST /v1/chat/completions` on 127.0.0.1 (ephemeral port)
with the stdlib HTTP server, for as long as the `DemoModelServer` context is open.

The rule:
- a trade review (DSPy's chat format, the review program's fields) is answered with the verdict
  of the closest few-shot demo in the prompt: of the demos of the same strategy, symbol and side,
  the one whose RSI(14) is nearest (the first on a tie); with no such demo it is `approve`. The
  model therefore knows only what the compiled program shows it;
- any other DSPy signature (an optimizer's instruction proposals, dataset summaries) gets a fixed
  value of each output field's type (as JSON when DSPy's JSON adapter asks for a JSON object);
- any other prompt (GEPA's reflection asks for instructions within ``` blocks) gets
  `DEMO_INSTRUCTION` within ``` blocks.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from trading.llm.dspy.outputs import verdict_outputs

DEMO_MODEL = "torghut-demo-rule-v1"
# the rule was fixed before the bundled sample day (2026-03-03): it has seen none of its outcomes
DEMO_MODEL_TRAINING_CUTOFF = date(2026, 3, 2)
DEMO_INSTRUCTION = (
    "Review one trade decision that passed the deterministic checks. Answer the verdict of the "
    "most similar reviewed decision of the same strategy and symbol; approve when there is none."
)

_FIELD = re.compile(r"^\d+\. `(\w+)` \(([^)]*)\)", re.MULTILINE)
_SECTION = re.compile(r"\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\[\[ ## |\Z)", re.DOTALL)


def _output_fields(system: str) -> list[tuple[str, str]]:
    """The (name, type) of each output field a DSPy chat-format system message asks for."""
    _, sep, outputs = system.partition("Your output fields are:")
    if not sep:
        return []
    outputs = outputs.split("All interactions will be structured", 1)[0]
    return _FIELD.findall(outputs)


def _sections(text: str) -> dict[str, str]:
    return {name: value.strip() for name, value in _SECTION.findall(text)}


def _review_key(request_json: str) -> tuple[str, str, str, float] | None:
    """(strategy, symbol, action, RSI(14)) of a review request, or None when it is not one."""
    try:
        request = json.loads(request_json)
        decision = request["decision"]
        rsi = float(request["market"]["features"].get("rsi14") or 0.0)
        return (
            str(decision["strategy_id"]),
            str(decision["symbol"]),
            str(decision.get("action", "")),
            rsi,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _nearest_verdict(messages: list[dict[str, Any]], asked: tuple[str, str, str, float]) -> str:
    """The verdict of the closest demo (a user turn with a request, the next assistant turn with
    its verdict) of the same strategy, symbol and action; `approve` when none."""
    best: tuple[float, str] | None = None
    for turn, answer in zip(messages[1:-1], messages[2:-1], strict=False):
        if turn.get("role") != "user" or answer.get("role") != "assistant":
            continue
        key = _review_key(_sections(str(turn.get("content", ""))).get("request_json", ""))
        verdict = _sections(str(answer.get("content", ""))).get("verdict")
        if key is None or verdict not in ("approve", "veto") or key[:3] != asked[:3]:
            continue
        distance = abs(key[3] - asked[3])
        if best is None or distance < best[0]:
            best = (distance, verdict)
    return best[1] if best else "approve"


def _review_fields(verdict: str) -> dict[str, Any]:
    return verdict_outputs(
        verdict,
        confidence=0.6,
        rationale=f"demo rule: the most similar reviewed decision was {verdict}",
        veto_flag="similar_decision_lost",
        metadata={"source": DEMO_MODEL},
    )


def _typed_value(name: str, kind: str) -> Any:
    """A fixed value of a DSPy output field's type."""
    kind = kind.strip()
    if kind.startswith("Literal["):
        return kind[len("Literal[") :].split(",")[0].strip(" ]'\"")
    fixed: dict[str, Any] = {"float": 0.5, "int": 1, "bool": False}
    if kind in fixed:
        return fixed[kind]
    if kind.startswith(("list", "List")):
        return []
    if kind.startswith(("dict", "Dict")):
        return {}
    return DEMO_INSTRUCTION if "instruction" in name else f"demo {name.replace('_', ' ')}"


def _chat_format(fields: dict[str, Any]) -> str:
    parts = [
        f"[[ ## {name} ## ]]\n{value if isinstance(value, str) else json.dumps(value)}"
        for name, value in fields.items()
    ]
    return "\n\n".join([*parts, "[[ ## completed ## ]]"])


def demo_answer(body: dict[str, Any]) -> str:
    """The demo model's answer to a chat-completions request body."""
    messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
    system = next((str(m.get("content", "")) for m in messages if m.get("role") == "system"), "")
    fields = _output_fields(system)
    if not fields:
        return f"```\n{DEMO_INSTRUCTION}\n```"
    names = [name for name, _ in fields]
    asked = _review_key(_sections(str(messages[-1].get("content", ""))).get("request_json", ""))
    if "verdict" in names and asked is not None:
        review = _review_fields(_nearest_verdict(messages, asked))
        answer = {name: review[name] for name in names if name in review}
    else:
        answer = {name: _typed_value(name, kind) for name, kind in fields}
    if "Respond with a JSON object" in str(messages[-1].get("content", "")):
        return json.dumps(answer)  # DSPy's JSON adapter
    return _chat_format(answer)


def _completion(body: dict[str, Any], number: int) -> dict[str, Any]:
    content = demo_answer(body)
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    answer = len(content.split())
    return {
        "id": f"demo-{number}",
        "object": "chat.completion",
        "model": DEMO_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": answer,
            "total_tokens": prompt + answer,
        },
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._send(400, {"error": {"message": "messages is required"}})
            return
        self._send(200, _completion(body, self.server.next_number()))

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None  # quiet: the command prints its own summary


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._lock = threading.Lock()
        self.completions = 0

    def next_number(self) -> int:
        with self._lock:
            self.completions += 1
            return self.completions


class DemoModelServer:
    """`with DemoModelServer() as server:` serves the demo model at `server.base_url`."""

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the demo model server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def completions(self) -> int:
        return self._server.completions if self._server is not None else 0

    def __enter__(self) -> DemoModelServer:
        self._server = _Server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="demo-model-server", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
