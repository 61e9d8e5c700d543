"""Recording GitHub issue events (the API, the webhook, a Kafka batch) and queueing their
processing after the commit."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from torghut_site.queueing import task_send
from whitepapers.github import IntakeRefused, envelope_headers, envelope_unwrap, event_name_of
from whitepapers.models import EventSource, EventStatus, GithubIssueEvent


def _on_commit_process(event_ids: list[int]) -> None:
    def queue() -> None:
        for event_id in event_ids:
            task_send("whitepapers.tasks.process_github_event", event_id)

    transaction.on_commit(queue)


def _summary(payload: Any, event_name: str | None) -> dict[str, Any]:
    """Indexable fields of a raw event; tolerant (the rules run later, in processing)."""
    try:
        headers, body = envelope_unwrap(payload)
    except IntakeRefused:
        headers, body = {}, {}
    if isinstance(payload, dict) and not body:
        headers = envelope_headers(payload)  # an unreadable envelope still names its event
    repository = body.get("repository")
    issue = body.get("issue")
    number = issue.get("number") if isinstance(issue, dict) else None
    full_name = repository.get("full_name") if isinstance(repository, dict) else None
    return {
        "event_name": event_name_of(body, headers, event_name)[:32],
        "action": str(body.get("action") or "")[:32],
        "repository": str(full_name or "")[:300],
        "issue_number": number
        if isinstance(number, int) and not isinstance(number, bool) and number > 0
        else None,
        "delivery_id": str(headers.get("x-github-delivery") or "")[:100],
    }


def github_event_record(
    *,
    source: str,
    payload: Any,
    event_name: str | None = None,
    delivery_id: str | None = None,
    process: bool = True,
    body_sha256: str = "",
) -> GithubIssueEvent:
    """Store one event from the API or the webhook; queue its processing after the commit.
    `body_sha256` (the webhook's raw body) is unique among webhook events: a replayed body
    raises IntegrityError like a repeated delivery id."""
    summary = _summary(payload, event_name)
    if delivery_id:
        summary["delivery_id"] = delivery_id[:100]
    event = GithubIssueEvent.objects.create(
        source=source,
        payload=payload if isinstance(payload, dict) else {"body": payload},
        received_at=timezone.now(),
        body_sha256=body_sha256,
        **summary,
    )
    if process:
        _on_commit_process([event.pk])
    return event


def github_events_record_from_kafka(rows: list[tuple[str, int, int, dict[str, Any]]]) -> list[int]:
    """Store a polled batch (topic, partition, offset, payload) in the caller's transaction; a
    record already stored (a redelivered batch) is skipped by the unique log position. Returns
    the ids still pending, whose processing is queued after the commit."""
    now = timezone.now()
    objects = [
        GithubIssueEvent(
            source=EventSource.KAFKA,
            payload=payload,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            received_at=now,
            **_summary(payload, None),
        )
        for topic, partition, offset, payload in rows
    ]
    GithubIssueEvent.objects.bulk_create(objects, ignore_conflicts=True)
    positions = {(topic, partition, offset) for topic, partition, offset, _ in rows}
    stored = GithubIssueEvent.objects.filter(
        source=EventSource.KAFKA,
        source_topic__in={p[0] for p in positions},
        source_offset__in={p[2] for p in positions},
        status=EventStatus.PENDING,
    ).values_list("pk", "source_topic", "source_partition", "source_offset")
    pending = sorted(pk for pk, *position in stored if tuple(position) in positions)
    _on_commit_process(pending)
    return pending


def github_event_positions_reused(
    rows: list[tuple[str, int, int, dict[str, Any]]],
) -> list[tuple[str, int, int]]:
    """The log positions among `rows` that are stored with another payload: the log reused the
    offset (a topic recreated, a broker that lost acknowledged records), so the unique position
    ignored a new event. The caller dead-letters them instead of losing them."""
    payloads = {(topic, partition, offset): payload for topic, partition, offset, payload in rows}
    stored = GithubIssueEvent.objects.filter(
        source=EventSource.KAFKA,
        source_topic__in={p[0] for p in payloads},
        source_offset__in={p[2] for p in payloads},
    ).values_list("source_topic", "source_partition", "source_offset", "payload")
    reused = []
    for topic, partition, offset, payload in stored:
        position = (topic, partition or 0, offset or 0)  # a Kafka row always has both
        if position in payloads and payloads[position] != payload:
            reused.append(position)
    return sorted(reused)
