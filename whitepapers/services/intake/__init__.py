"""GitHub issue intake (docs/compatibility.md#intake) and the requeue path.

Every intake — Kafka (Froussard), the control API, GitHub's own webhook — first *records* the
event (`GithubIssueEvent`), then processes it with the same rules. Processing:

1. workflow off ⇒ `workflow_disabled`; not an issue/comment event we act on ⇒ `ignored_event`;
   a repository not in WHITEPAPER_ALLOWED_REPOSITORIES ⇒ `repository_not_allowed`;
2. the marker block and the PDF URL (`marker_missing`, `unsupported_workflow_marker`,
   `pdf_attachment_missing`); a comment without the requeue keyword ⇒
   `comment_without_requeue_keyword`; then who asks (`author_not_allowed`: the issue's or the
   comment's author_association, or a maintainer's trigger label) and the branches
   (`branch_invalid`, `base_branch_not_allowed`; the head is always the run's own
   `codex/whitepaper-<run>`).
   A refused event downloads nothing, writes no run and dispatches nothing;
3. the run id is deterministic: an existing run ⇒ `idempotent_replay`, or the requeue path for a
   keyword comment (`requeued`, `already_completed`, `already_dispatched`, `requeue_not_ready`);
4. download the PDF (size, redirect and type limits) — the same bytes already analysed for another
   issue ⇒ `idempotent_file_replay`;
5. store it (content-addressed object key), extract its text (`whitepapers.extract`: a child
   process under CPU, memory, time and output limits, before any transaction opens), then record
   document, version, content, run (`queued`) and the `issue_intake` step in one short
   transaction; the AgentRun dispatch is queued after the commit.

A download or storage failure is recorded whole, in one transaction: a `failed` run whose version
says why (`parse_status=failed`), never a half-written row. A keyword comment on such a run
retries the download. Processing an event twice changes nothing the second time.

Object storage that cannot be reached (or fails on its side: `ObjectStoreError.retryable`) is not
a verdict on the paper. When the caller can retry (the processing task), the event stays `pending`
with the error in its `detail`, nothing else is written, and `StorageUnavailable` is raised for a
later attempt; only the event's WHITEPAPER_STORAGE_RETRY_ATTEMPTS-th attempt records the failed
run. Attempts are counted on the event, so a sweep re-queueing it meanwhile cannot make them more.

Each attempt claims the event first (a compare-and-set on `claimed_until`/`claim_token`, held
longer than the task's hard time limit), so a duplicate message or the sweep never runs a second
copy while one is running; an event whose attempts are used up is closed as
`attempts_exhausted`, never queued again.

The package, in modules that import downward only:

- `outcomes`: `IntakeOutcome` and its builders, `StorageUnavailable`, `WORK_REASONS`;
- `authorization`: who may ask and for which branches (the settings' allow-lists);
- `download`: the PDF download under the outbound policy, and the file replay (step 4);
- `events`: recording an event and queueing its processing after the commit;
- `records`: the writes of step 5 (or of a failed download or store), the dispatch after commit;
- `requeue`: another attempt of a run (a keyword comment, or the admin);
- `rules`: steps 1-5 in order (`event_rules_apply`);
- `processing`: the claim, the rules once, the outcome on the event, `attempts_exhausted`.

This package re-exports the names used elsewhere (tasks, consumer, API, admin, sweep, tests).
"""

from whitepapers.services.intake.events import (
    github_event_positions_reused,
    github_event_record,
    github_events_record_from_kafka,
)
from whitepapers.services.intake.outcomes import WORK_REASONS, IntakeOutcome, StorageUnavailable
from whitepapers.services.intake.processing import (
    EVENT_CLAIM_SECONDS,
    EVENT_TASK_SOFT_TIME_LIMIT,
    EVENT_TASK_TIME_LIMIT,
    github_event_exhaust,
    github_event_process,
)
from whitepapers.services.intake.records import INTAKE_STEP
from whitepapers.services.intake.requeue import REQUEUE_STEP, admin_requeue, run_requeue

__all__ = [
    "EVENT_CLAIM_SECONDS",
    "EVENT_TASK_SOFT_TIME_LIMIT",
    "EVENT_TASK_TIME_LIMIT",
    "INTAKE_STEP",
    "REQUEUE_STEP",
    "WORK_REASONS",
    "IntakeOutcome",
    "StorageUnavailable",
    "admin_requeue",
    "github_event_exhaust",
    "github_event_positions_reused",
    "github_event_process",
    "github_event_record",
    "github_events_record_from_kafka",
    "run_requeue",
]
