"""Builders for whitepaper workflow tests: GitHub payloads, a PDF host, a Jangar stand-in."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from tests.servers.base import Request, Response, TestHTTPServer
from tests.servers.jangar_server import JangarServer

MARKER_START = "<!-- TORGHUT_WHITEPAPER:START -->"
MARKER_END = "<!-- TORGHUT_WHITEPAPER:END -->"


class PaperHost(TestHTTPServer):
    """Serves registered files at `/papers/<name>`; `/go/<name>` redirects there."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, tuple[int, bytes, str]] = {}
        self.route("GET", "/papers/(?P<name>.+)", self._file)
        self.route("GET", "/go/(?P<name>.+)", self._redirect)

    def put(
        self, name: str, data: bytes, *, status: int = 200, ctype: str = "application/pdf"
    ) -> str:
        self.files[name] = (status, data, ctype)
        return f"{self.url}/papers/{name}"

    def _file(self, request: Request) -> Response:
        assert request.match is not None
        entry = self.files.get(request.match["name"])
        if entry is None:
            return Response(status=404, raw=b"not found", headers={"Content-Type": "text/plain"})
        status, data, ctype = entry
        return Response(status=status, raw=data, headers={"Content-Type": ctype})

    def _redirect(self, request: Request) -> Response:
        assert request.match is not None
        return Response(
            status=302, raw=b"", headers={"Location": f"/papers/{request.match['name']}"}
        )

    def downloads(self, name: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r.path == f"/papers/{name}")


def issue_body(
    url: str | None, *, workflow: str = "whitepaper-analysis-v1", extra: str = ""
) -> str:
    lines = [f"workflow: {workflow}", "base_branch: main"]
    if url:
        lines.append(f"attachment_url: {url}")
    if extra:
        lines.append(extra)
    return "Please analyse this paper.\n\n" + "\n".join([MARKER_START, *lines, MARKER_END]) + "\n"


def issue_payload(
    *,
    url: str | None,
    number: int = 42,
    repo: str = "proompteng/lab",
    action: str = "opened",
    body: str | None = None,
    title: str = "Paper: momentum with regime filters",
    association: str = "OWNER",
) -> dict[str, Any]:
    """An `issues` event; `association` is the issue author's author_association (OWNER, one of
    the default WHITEPAPER_ALLOWED_AUTHOR_ASSOCIATIONS)."""
    return {
        "action": action,
        "issue": {
            "number": number,
            "title": title,
            "body": issue_body(url) if body is None else body,
            "html_url": f"https://github.com/{repo}/issues/{number}",
            "user": {"login": "researcher"},
            "author_association": association,
        },
        "repository": {"full_name": repo},
        "sender": {"login": "researcher"},
    }


def comment_payload(
    *,
    url: str | None,
    text: str,
    number: int = 42,
    repo: str = "proompteng/lab",
    association: str = "MEMBER",
) -> dict[str, Any]:
    """An `issue_comment` event; `association` is the commenter's author_association."""
    payload = issue_payload(url=url, number=number, repo=repo, action="created")
    payload["comment"] = {
        "body": text,
        "user": {"login": "maintainer"},
        "author_association": association,
    }
    payload["sender"] = {"login": "maintainer"}
    return payload


def envelope(
    payload: dict[str, Any], *, event: str = "issues", delivery: str = "d-1"
) -> dict[str, Any]:
    return {"headers": {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery}, "body": payload}


def expected_run_id(repo: str, number: int, url: str) -> str:
    return "wp-" + hashlib.sha256(f"{repo}#{number}|{url}".encode()).hexdigest()[:24]


@dataclass
class Workflow:
    """What a workflow test has running: the PDF host, Jangar, the bucket."""

    host: PaperHost
    jangar: JangarServer
    bucket: str
    s3: Any
    token: str = "wp-control-token"
    headers: dict[str, str] = field(default_factory=dict)

    def objects(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.bucket)
        return [o["Key"] for o in listing.get("Contents", [])]

    def finalize_token(self, run_id: str) -> str:
        """The `finalizeToken` the latest AgentRun of `run_id` received, as Jangar got it."""
        sent = [s.json()["parameters"] for s in self.jangar.submits()]
        tokens = [p["finalizeToken"] for p in sent if p["runId"] == run_id]
        assert tokens, f"no AgentRun of {run_id} was submitted"
        return str(tokens[-1])

    def agent(self, run_id: str) -> Any:
        """An API client holding `run_id`'s finalize token, as its AgentRun would."""
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.finalize_token(run_id)}")
        return client


def intake_row_counts() -> dict[str, int]:
    """How many documents, versions, contents, runs and AgentRuns the intake has written."""
    from whitepapers.models import (
        WhitepaperAnalysisRun,
        WhitepaperCodexAgentRun,
        WhitepaperContent,
        WhitepaperDocument,
        WhitepaperDocumentVersion,
    )

    return {
        "documents": WhitepaperDocument.objects.count(),
        "versions": WhitepaperDocumentVersion.objects.count(),
        "contents": WhitepaperContent.objects.count(),
        "runs": WhitepaperAnalysisRun.objects.count(),
        "agentruns": WhitepaperCodexAgentRun.objects.count(),
    }
