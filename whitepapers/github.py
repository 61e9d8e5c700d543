"""GitHub issue events for the whitepaper workflow: pure rules, no database, no network.

The original service (docs/compatibility.md#intake) accepted a GitHub `issues`/`issue_comment`
webhook payload (bare, or wrapped in Froussard's `{headers, body}` envelope), looked for a marker
block in the issue body, found the paper's PDF URL and derived a deterministic run id from the issue
and the normalized URL. Each refusal carries the reason code kept from it (`IntakeRefused.reason`).

Who may start an analysis, and with which branches, is decided here too (the issue text is written
by anyone who can open an issue; the agent it starts can push):

- the repository must be on the operator's allow-list (`repository_not_allowed`);
- the actor must be trusted (`author_not_allowed`): the `author_association` of the object that
  triggers the work — the issue for `issues` events, the comment for `issue_comment` events (the
  commenter asks for the requeue) — is one of the allowed associations, or the event is a
  maintainer adding the trigger label (`actor_authorization`);
- branch names must be plain git branch names (`branch_invalid`); the base branch must be on the
  operator's allow-list (`base_branch_not_allowed`); the head branch is always the run's own
  `codex/whitepaper-<run>` (`head_branch_for`), whatever the issue asks for.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

SUPPORTED_WORKFLOW = "whitepaper-analysis-v1"

ACCEPTED_ACTIONS: dict[str, frozenset[str]] = {
    "issues": frozenset({"opened", "edited", "reopened", "labeled"}),
    "issue_comment": frozenset({"created", "edited"}),
}

_ALLOWED_SCHEMES = frozenset({"http", "https"})
# `[text](url)` and `![alt](url "title")`; the URL may be wrapped in <...>
_MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(\s*<?(?P<url>[^\s)<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_PLAIN_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
# punctuation that ends a sentence or closes a bracket rather than belonging to the URL
_TRAILING_PUNCTUATION = ").,;:!?]}>'\"*_"

# GitHub's author_association values (the REST/webhook `author_association` enum)
AUTHOR_ASSOCIATIONS = frozenset(
    {
        "OWNER",
        "MEMBER",
        "COLLABORATOR",
        "CONTRIBUTOR",
        "FIRST_TIMER",
        "FIRST_TIME_CONTRIBUTOR",
        "MANNEQUIN",
        "NONE",
    }
)
_BRANCH = re.compile(r"[A-Za-z0-9._/-]{1,100}")
_REPOSITORY = re.compile(r"[A-Za-z0-9._-]{1,100}/[A-Za-z0-9._-]{1,100}")


class IntakeRefused(Exception):
    """A refusal with its reason code (e.g. `ignored_event`, `marker_missing`), as listed in
    docs/compatibility.md#reason-codes."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class IssueEvent:
    event: str  # "issues" | "issue_comment"
    action: str
    delivery_id: str | None
    repository: str  # "owner/repo" from repository.full_name
    issue_number: int
    issue_title: str
    issue_url: str  # issue.html_url, else https://github.com/<repo>/issues/<n>
    issue_body: str
    comment_body: str | None  # set for issue_comment events only
    actor: str | None  # sender.login, else comment.user.login
    payload: dict[str, Any]  # the bare GitHub payload
    # upper-cased author_association of the issue (issues) or of the comment (issue_comment)
    author_association: str = ""
    label: str | None = None  # label.name of a `labeled` action
    issue_author: str | None = None  # issue.user.login
    sender_type: str | None = None  # sender.type ("User", "Bot", ...)


@dataclass(frozen=True)
class Marker:
    """The `key: value` lines of the issue's marker block (keys lowercased)."""

    fields: dict[str, str]

    @property
    def workflow(self) -> str | None:
        return self.fields.get("workflow")

    @property
    def base_branch(self) -> str | None:
        return self.fields.get("base_branch")

    @property
    def head_branch(self) -> str | None:
        return self.fields.get("head_branch")

    @property
    def attachment_url(self) -> str | None:
        return self.fields.get("attachment_url")


def github_event_normalize(
    raw: Any, *, event_name: str | None = None, delivery_id: str | None = None
) -> IssueEvent:
    """An accepted issue event from a Froussard envelope or a bare GitHub payload.

    The event name comes from, in order: the `event_name` argument, the envelope's
    `x-github-event` header, an `event`/`event_name` key of the payload, or is inferred
    (`comment` present ⇒ issue_comment, else `issue` present ⇒ issues). Raises
    `IntakeRefused("ignored_event", why)` for anything the workflow does not handle.
    """
    headers, payload = envelope_unwrap(raw)
    event = event_name_of(payload, headers, event_name)
    delivery = delivery_id or headers.get("x-github-delivery") or None

    if event not in ACCEPTED_ACTIONS:
        raise IntakeRefused("ignored_event", f"event {event or '<none>'!r} is not handled")
    action = payload.get("action")
    if not isinstance(action, str) or action not in ACCEPTED_ACTIONS[event]:
        raise IntakeRefused("ignored_event", f"{event} action {action!r} is not handled")

    repository = _dig(payload, "repository", "full_name")
    if not isinstance(repository, str) or not _is_owner_repo(repository.strip()):
        raise IntakeRefused("ignored_event", "repository.full_name is missing or not owner/repo")
    repository = repository.strip()
    issue = payload.get("issue")
    number = issue.get("number") if isinstance(issue, dict) else None
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        raise IntakeRefused("ignored_event", "issue.number is missing or not a positive integer")
    assert isinstance(issue, dict)

    comment = payload.get("comment") if event == "issue_comment" else None
    comment_body: str | None = None
    if event == "issue_comment":
        comment_body = _str_or_none(comment.get("body")) if isinstance(comment, dict) else None
        comment_body = comment_body or ""
    html_url = _str_or_none(issue.get("html_url"))
    association = _dig(comment if event == "issue_comment" else issue, "author_association")
    return IssueEvent(
        event=event,
        action=action,
        delivery_id=delivery,
        repository=repository,
        issue_number=number,
        issue_title=_str_or_none(issue.get("title")) or "",
        issue_url=html_url or f"https://github.com/{repository}/issues/{number}",
        issue_body=_str_or_none(issue.get("body")) or "",
        comment_body=comment_body,
        actor=_str_or_none(_dig(payload, "sender", "login"))
        or _str_or_none(_dig(comment, "user", "login")),
        payload=payload,
        author_association=association.strip().upper() if isinstance(association, str) else "",
        label=_str_or_none(_dig(payload, "label", "name")) if action == "labeled" else None,
        issue_author=_str_or_none(_dig(issue, "user", "login")),
        sender_type=_str_or_none(_dig(payload, "sender", "type")),
    )


def repository_authorize(repository: str, allowed: Iterable[str]) -> None:
    """Refuse (`repository_not_allowed`) a repository not on the allow-list (case-insensitive;
    an empty allow-list refuses every repository)."""
    if repository.casefold() not in {name.casefold() for name in allowed}:
        raise IntakeRefused(
            "repository_not_allowed",
            f"{repository!r} is not in WHITEPAPER_ALLOWED_REPOSITORIES",
        )


def actor_authorization(
    issue: IssueEvent, *, associations: Iterable[str], trigger_label: str = ""
) -> str:
    """Why the event may start work (`author_association:<A>` or `trigger_label:<login>`);
    raises `IntakeRefused("author_not_allowed")` otherwise.

    1. The author_association of the triggering object (the issue for `issues` events, the
       comment for `issue_comment` events) is one of `associations`.
    2. Or, with a trigger label configured, the event is `issues`/`labeled` adding exactly that
       label, by a user (not a bot) other than the issue's author. GitHub lets only people with
       triage or write access add labels; an issue template's labels, though, are applied on the
       author's behalf (the author is then the sender) and an automation labelling by content
       is a bot, so neither counts. The approval is of the issue as it is when labelled: a later
       edit by an outside author is refused again until a maintainer labels it again.
    """
    if issue.author_association and issue.author_association in set(associations):
        return f"author_association:{issue.author_association}"
    label = trigger_label.strip().casefold()
    sender = (issue.actor or "").casefold()
    if (
        label
        and issue.event == "issues"
        and issue.action == "labeled"
        and (issue.label or "").strip().casefold() == label
        and sender
        and (issue.sender_type or "User") != "Bot"
        and sender != (issue.issue_author or "").casefold()
    ):
        return f"trigger_label:{issue.actor}"
    who = "comment" if issue.event == "issue_comment" else "issue"
    raise IntakeRefused(
        "author_not_allowed",
        f"{who} author_association {issue.author_association or '<none>'!r} is not in "
        "WHITEPAPER_ALLOWED_AUTHOR_ASSOCIATIONS and no maintainer added the trigger label",
    )


def branch_name_valid(name: str) -> bool:
    """A plain branch name: ^[A-Za-z0-9._/-]{1,100}$ and git's ref rules that still apply (no
    `..` or `//`, no leading `-`, `/` or `.`, no trailing `/` or `.`, no component starting with
    `.` or ending in `.lock`)."""
    if not _BRANCH.fullmatch(name) or ".." in name or "//" in name:
        return False
    if name.startswith(("-", "/", ".")) or name.endswith(("/", ".")):
        return False
    return not any(part.startswith(".") or part.endswith(".lock") for part in name.split("/"))


def repository_name_valid(name: str) -> bool:
    return bool(_REPOSITORY.fullmatch(name)) and ".." not in name


@dataclass(frozen=True)
class Branches:
    base: str
    requested_head: str | None  # the marker's head_branch, checked; never used as the head


def branches_resolve(
    marker: Marker, *, default_base: str, allowed_bases: Iterable[str]
) -> Branches:
    """The validated branches of a marker: `branch_invalid` for a malformed name,
    `base_branch_not_allowed` for a base off the allow-list.

    The issue never chooses the head branch: a well-formed `head_branch` is accepted and
    ignored, the agent always pushes to `head_branch_for(run_id, attempt)`
    (`codex/whitepaper-<run>`), so no text of the issue becomes a branch in the agent's
    instructions and no issue can point its run at another run's branch."""
    base = marker.base_branch or default_base
    for field, value in (("base_branch", base), ("head_branch", marker.head_branch)):
        if value is not None and not branch_name_valid(value):
            raise IntakeRefused("branch_invalid", f"{field} {value[:120]!r} is not a valid branch")
    if base not in set(allowed_bases):
        raise IntakeRefused(
            "base_branch_not_allowed",
            f"base_branch {base!r} is not in WHITEPAPER_ALLOWED_BASE_BRANCHES",
        )
    return Branches(base=base, requested_head=marker.head_branch)


def envelope_unwrap(raw: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """(lower-cased headers, GitHub payload) of a Froussard envelope or a bare payload.

    Raises `IntakeRefused("ignored_event", why)` when there is no JSON object to read."""
    if not isinstance(raw, dict):
        raise IntakeRefused("ignored_event", f"payload is {type(raw).__name__}, not an object")
    if not _is_envelope(raw):
        return {}, raw
    headers = envelope_headers(raw)
    payload = raw.get("body")
    if isinstance(payload, str | bytes):
        try:
            payload = json.loads(payload)
        except ValueError as exc:
            raise IntakeRefused("ignored_event", "envelope body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise IntakeRefused("ignored_event", "envelope body is not an object")
    return headers, payload


def envelope_headers(raw: dict[str, Any]) -> dict[str, str]:
    """An envelope's headers with lower-cased names (empty when it has none)."""
    raw_headers = raw.get("headers")
    if not isinstance(raw_headers, dict):
        return {}
    return {str(k).lower(): str(v) for k, v in raw_headers.items() if v is not None}


def event_name_of(
    payload: dict[str, Any], headers: dict[str, str], explicit: str | None = None
) -> str:
    """The GitHub event name: the caller's, the `x-github-event` header, an `event`/`event_name`
    key, or inferred (`comment` ⇒ issue_comment, else `issue` ⇒ issues); lower-cased."""
    return (
        (
            explicit
            or headers.get("x-github-event")
            or _str_or_none(payload.get("event"))
            or _str_or_none(payload.get("event_name"))
            or ("issue_comment" if "comment" in payload else "issues" if "issue" in payload else "")
        )
        .strip()
        .lower()
    )


def marker_parse(body: str, *, start: str, end: str) -> Marker:
    """The marker block between `start` and the first `end` after it.

    Lines without `:` and blank keys or values are ignored; a repeated key keeps its last value.
    """
    begin = body.find(start) if start else -1
    finish = body.find(end, begin + len(start)) if begin >= 0 and end else -1
    if begin < 0 or finish < 0:
        raise IntakeRefused("marker_missing", "no whitepaper marker block in the issue body")
    fields: dict[str, str] = {}
    for line in body[begin + len(start) : finish].splitlines():
        key, sep, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if sep and key and value:
            fields[key] = value
    marker = Marker(fields=fields)
    if marker.workflow is not None and marker.workflow != SUPPORTED_WORKFLOW:
        raise IntakeRefused(
            "unsupported_workflow_marker",
            f"workflow {marker.workflow!r} is not {SUPPORTED_WORKFLOW!r}",
        )
    return marker


def pdf_url_find(body: str, marker: Marker) -> str:
    """The normalized PDF URL: the marker's attachment_url, else the first `.pdf` URL in the body.

    Markdown links are searched before plain URLs. Only http(s) URLs are accepted.
    """
    if marker.attachment_url:
        if not _is_http_url(marker.attachment_url):
            raise IntakeRefused(
                "pdf_attachment_missing",
                f"marker attachment_url is not an http(s) URL: {marker.attachment_url!r}",
            )
        return url_normalize(marker.attachment_url)
    for match in _MARKDOWN_LINK.finditer(body):
        url = match.group("url")
        if ".pdf" in url.lower() and _is_http_url(url):
            return url_normalize(url)
    for match in _PLAIN_URL.finditer(body):
        url = match.group(0).rstrip(_TRAILING_PUNCTUATION)
        if ".pdf" in url.lower() and _is_http_url(url):
            return url_normalize(url)
    raise IntakeRefused("pdf_attachment_missing", "no PDF URL in the issue body or the marker")


def url_normalize(url: str) -> str:
    """Lowercase scheme and host, drop the fragment; path and query stay exactly as given."""
    parts = urlsplit(url.strip())
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = f"{userinfo}{at}{hostport.lower()}"
    normalized = f"{parts.scheme.lower()}://{netloc}{parts.path}"
    return f"{normalized}?{parts.query}" if parts.query else normalized


def run_id_for(repository: str, issue_number: int, normalized_url: str) -> str:
    digest = hashlib.sha256(f"{repository}#{issue_number}|{normalized_url}".encode()).hexdigest()
    return f"wp-{digest[:24]}"


def has_requeue_keyword(text: str | None, keyword: str) -> bool:
    """Case-insensitive substring match; an empty keyword never matches."""
    needle = keyword.strip().casefold()
    return bool(text and needle and needle in text.casefold())


def head_branch_for(run_id: str, attempt: int) -> str:
    branch = f"codex/whitepaper-{run_id[-16:]}"
    return f"{branch}-retry-{attempt}" if attempt > 1 else branch


def idempotency_key_for(run_id: str, attempt: int) -> str:
    return f"{run_id}-retry-{attempt}" if attempt > 1 else run_id


def _is_envelope(raw: dict[str, Any]) -> bool:
    # a GitHub payload never has top-level `headers` or `body` (the issue's body is nested)
    return "headers" in raw or ("body" in raw and "issue" not in raw and "repository" not in raw)


def _is_owner_repo(value: str) -> bool:
    owner, sep, name = value.partition("/")
    return bool(sep and owner and name and "/" not in name and not any(c.isspace() for c in value))


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in _ALLOWED_SCHEMES and bool(parts.hostname)


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
