"""The whitepaper workflow (docs/compatibility.md#whitepaper-workflow): GitHub issue -> stored PDF
-> AgentRun on Jangar."""

from __future__ import annotations

import re

from torghut_site.outbound import host_pattern_problem
from torghut_site.settings.base import env
from torghut_site.settings.kafka import kafka_consumer, kafka_security, kafka_topics
from torghut_site.settings.orderfeed import TRADING_ORDER_FEED_BOOTSTRAP_SERVERS
from torghut_site.settings.trading_lanes import JANGAR_BASE_URL

# --------------------------------------------------------------------------------------------
# Whitepaper workflow (docs/compatibility.md#whitepaper-workflow): GitHub issue -> stored PDF ->
# AgentRun on Jangar -> finalize
# --------------------------------------------------------------------------------------------
WHITEPAPER_WORKFLOW_ENABLED = env.bool("WHITEPAPER_WORKFLOW_ENABLED", default=False)
WHITEPAPER_KAFKA_ENABLED = env.bool("WHITEPAPER_KAFKA_ENABLED", default=False)
# control endpoints (events, dispatch, run detail): this token, compared in constant time, or a
# signed-in API user with the run permission. It does not finalize a run: that takes the run's
# own token (whitepapers.run_tokens) or such a user. JANGAR_API_KEY opens none of them.
WHITEPAPER_WORKFLOW_API_TOKEN = env.secret("WHITEPAPER_WORKFLOW_API_TOKEN")
WHITEPAPER_GITHUB_WEBHOOK_SECRET = env.secret("WHITEPAPER_GITHUB_WEBHOOK_SECRET")
WHITEPAPER_REQUEUE_COMMENT_KEYWORD = env.str(
    "WHITEPAPER_REQUEUE_COMMENT_KEYWORD", default="research whitepaper"
)
WHITEPAPER_ISSUE_MARKER_START = env.str(
    "WHITEPAPER_ISSUE_MARKER_START", default="<!-- TORGHUT_WHITEPAPER:START -->"
)
WHITEPAPER_ISSUE_MARKER_END = env.str(
    "WHITEPAPER_ISSUE_MARKER_END", default="<!-- TORGHUT_WHITEPAPER:END -->"
)
# sent as a bearer token only to GitHub-owned hosts, over https (whitepapers/pdf.py)
WHITEPAPER_GITHUB_TOKEN = env.secret("WHITEPAPER_GITHUB_TOKEN")
# the hosts a PDF named in an issue may be downloaded from, on every redirect hop: a name matches
# itself and its subdomains ("arxiv.org" matches "export.arxiv.org"), "*" any host; whatever the
# list, loopback, private, link-local and metadata addresses are refused (torghut_site/outbound.py)
WHITEPAPER_PDF_ALLOWED_HOSTS = [
    h.lower()
    for h in env.csv(
        "WHITEPAPER_PDF_ALLOWED_HOSTS",
        default=(
            "arxiv.org", "github.com", "githubusercontent.com", "openreview.net",
            "aclanthology.org", "ssrn.com", "nber.org", "sciencedirect.com", "springer.com",
            "wiley.com", "tandfonline.com", "jstor.org", "semanticscholar.org",
            "researchgate.net", "biorxiv.org", "medrxiv.org", "mdpi.com", "acm.org", "ieee.org",
            "nature.com", "neurips.cc", "mlr.press", "jmlr.org", "thecvf.com", "aaai.org",
            "federalreserve.gov", "bis.org", "imf.org", "ecb.europa.eu", "oup.com",
            "cambridge.org", "aeaweb.org",
        ),
    )
]  # fmt: skip
for _host_pattern in WHITEPAPER_PDF_ALLOWED_HOSTS:
    if (_problem := host_pattern_problem(_host_pattern)) is not None:
        env.problem(f"WHITEPAPER_PDF_ALLOWED_HOSTS: {_problem}")
if not WHITEPAPER_PDF_ALLOWED_HOSTS:
    env.problem("WHITEPAPER_PDF_ALLOWED_HOSTS is empty: list hosts, or * for any public host")
WHITEPAPER_MAX_PDF_BYTES = env.int(
    "WHITEPAPER_MAX_PDF_BYTES", default=52428800, min_value=1024, max_value=2**31
)
WHITEPAPER_DOWNLOAD_TIMEOUT_SECONDS = env.float(
    "WHITEPAPER_DOWNLOAD_TIMEOUT_SECONDS", default=30.0, min_value=0.1, max_value=600
)
# PDF text extraction runs in a child process (whitepapers/extract.py) with these limits: CPU
# seconds (RLIMIT_CPU), address space in MB (RLIMIT_AS), wall-clock seconds (the child's process
# group is killed) and characters of text kept. A limit that is hit leaves the paper stored with
# empty text and the warning extraction_limit_exceeded:<cpu|memory|timeout|output>. The wall
# clock stays well under the processing task's 300 s soft time limit.
WHITEPAPER_EXTRACT_CPU_SECONDS = env.int(
    "WHITEPAPER_EXTRACT_CPU_SECONDS", default=30, min_value=1, max_value=240
)
WHITEPAPER_EXTRACT_MEMORY_MB = env.int(
    "WHITEPAPER_EXTRACT_MEMORY_MB", default=512, min_value=128, max_value=16384
)
WHITEPAPER_EXTRACT_TIMEOUT_SECONDS = env.float(
    "WHITEPAPER_EXTRACT_TIMEOUT_SECONDS", default=45.0, min_value=1.0, max_value=240
)
WHITEPAPER_EXTRACT_MAX_CHARS = env.int(
    "WHITEPAPER_EXTRACT_MAX_CHARS", default=2_000_000, min_value=1000, max_value=100_000_000
)
WHITEPAPER_AGENTRUN_AUTO_DISPATCH = env.bool("WHITEPAPER_AGENTRUN_AUTO_DISPATCH", default=True)
WHITEPAPER_AGENTRUN_SUBMIT_URL = env.str(
    "WHITEPAPER_AGENTRUN_SUBMIT_URL",
    default=(JANGAR_BASE_URL or "http://agents.agents.svc.cluster.local") + "/v1/agent-runs",
)
WHITEPAPER_AGENTRUN_TIMEOUT_SECONDS = env.float(
    "WHITEPAPER_AGENTRUN_TIMEOUT_SECONDS", default=20.0, min_value=0.1, max_value=300
)
# submit attempts per dispatch (timeouts, connection errors, 429 and 5xx are retried with
# exponential backoff and full jitter; the Idempotency-Key makes a retry safe)
WHITEPAPER_AGENTRUN_MAX_ATTEMPTS = env.int(
    "WHITEPAPER_AGENTRUN_MAX_ATTEMPTS", default=4, min_value=1, max_value=20
)
WHITEPAPER_AGENTRUN_BACKOFF_SECONDS = env.float(
    "WHITEPAPER_AGENTRUN_BACKOFF_SECONDS", default=1.0, min_value=0.0, max_value=60
)
WHITEPAPER_AGENTRUN_NAMESPACE = env.str("WHITEPAPER_AGENTRUN_NAMESPACE", default="agents")
WHITEPAPER_AGENT_NAME = env.str("WHITEPAPER_AGENT_NAME", default="codex-whitepaper-agent")
WHITEPAPER_AGENTRUN_VCS_REF = env.str("WHITEPAPER_AGENTRUN_VCS_REF", default="github")
WHITEPAPER_AGENTRUN_SECRET_BINDING = env.str(
    "WHITEPAPER_AGENTRUN_SECRET_BINDING", default="codex-whitepaper-github-token"
)
WHITEPAPER_AGENTRUN_TTL_SECONDS = env.int(
    "WHITEPAPER_AGENTRUN_TTL_SECONDS", default=7200, min_value=60
)
WHITEPAPER_DEFAULT_BASE_BRANCH = env.str("WHITEPAPER_DEFAULT_BASE_BRANCH", default="main")
# Who may start an analysis (whitepapers/github.py applies them to every intake). Repositories
# whose issues are read, as owner/repo (case-insensitive); empty — the default — refuses every
# event with `repository_not_allowed`, so a deployment names its repositories explicitly.
WHITEPAPER_ALLOWED_REPOSITORIES = env.csv("WHITEPAPER_ALLOWED_REPOSITORIES")
# the author_association of the issue (the comment, for a requeue comment) that may start work
WHITEPAPER_ALLOWED_AUTHOR_ASSOCIATIONS = [
    value.upper()
    for value in env.csv(
        "WHITEPAPER_ALLOWED_AUTHOR_ASSOCIATIONS", default=("OWNER", "MEMBER", "COLLABORATOR")
    )
]
# a label only maintainers can add (GitHub: triage or write access) that starts the analysis of
# any author's issue when a maintainer adds it; empty: off
WHITEPAPER_TRIGGER_LABEL = env.str("WHITEPAPER_TRIGGER_LABEL")
# the base branches a design pull request may target (default: the default base branch)
WHITEPAPER_ALLOWED_BASE_BRANCHES = env.csv(
    "WHITEPAPER_ALLOWED_BASE_BRANCHES", default=(WHITEPAPER_DEFAULT_BASE_BRANCH,)
)
_GITHUB_ASSOCIATIONS = (
    "OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, FIRST_TIMER, FIRST_TIME_CONTRIBUTOR, MANNEQUIN, NONE"
)
for _repo in WHITEPAPER_ALLOWED_REPOSITORIES:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}/[A-Za-z0-9._-]{1,100}", _repo):
        env.problem(f"WHITEPAPER_ALLOWED_REPOSITORIES has {_repo!r}, not owner/repo")
for _association in WHITEPAPER_ALLOWED_AUTHOR_ASSOCIATIONS:
    if _association not in _GITHUB_ASSOCIATIONS.split(", "):
        env.problem(
            f"WHITEPAPER_ALLOWED_AUTHOR_ASSOCIATIONS has {_association!r} (known: "
            f"{_GITHUB_ASSOCIATIONS})"
        )
# the same plain-branch rule as whitepapers.github.branch_name_valid (settings cannot import it)
for _name, _branches in (
    ("WHITEPAPER_DEFAULT_BASE_BRANCH", [WHITEPAPER_DEFAULT_BASE_BRANCH]),
    ("WHITEPAPER_ALLOWED_BASE_BRANCHES", WHITEPAPER_ALLOWED_BASE_BRANCHES),
):
    for _branch in _branches:
        if (
            not re.fullmatch(r"[A-Za-z0-9._/-]{1,100}", _branch)
            or re.search(r"\.\.|//|^[-/.]|[/.]$|(^|/)\.|\.lock(/|$)", _branch) is not None
        ):
            env.problem(f"{_name} has {_branch!r}, not a plain branch name")
if WHITEPAPER_DEFAULT_BASE_BRANCH not in WHITEPAPER_ALLOWED_BASE_BRANCHES:
    env.problem(
        f"WHITEPAPER_DEFAULT_BASE_BRANCH={WHITEPAPER_DEFAULT_BASE_BRANCH!r} must be one of "
        "WHITEPAPER_ALLOWED_BASE_BRANCHES"
    )
# attempts of one event's processing, whatever ends them: object storage unreachable during
# intake is retried (backoff 1, 2, 4 … s, full jitter, capped) until the last attempt records a
# failed run; an attempt that never finished (a time limit, a killed worker) leaves the event
# pending for the sweep, and an event with no attempt left is closed as attempts_exhausted
WHITEPAPER_STORAGE_RETRY_ATTEMPTS = env.int(
    "WHITEPAPER_STORAGE_RETRY_ATTEMPTS", default=10, min_value=1, max_value=100
)
WHITEPAPER_STORAGE_RETRY_BACKOFF_MAX_SECONDS = env.int(
    "WHITEPAPER_STORAGE_RETRY_BACKOFF_MAX_SECONDS", default=300, min_value=1, max_value=3600
)
# events received but not processed after this long (a lost task, a crashed worker) are
# re-queued by the beat sweep, as are queued runs that were never dispatched
WHITEPAPER_SWEEP_AFTER_SECONDS = env.int(
    "WHITEPAPER_SWEEP_AFTER_SECONDS", default=120, min_value=10
)
WHITEPAPER_KAFKA_BOOTSTRAP_SERVERS = env.str(
    "WHITEPAPER_KAFKA_BOOTSTRAP_SERVERS", default=TRADING_ORDER_FEED_BOOTSTRAP_SERVERS
)
if WHITEPAPER_KAFKA_ENABLED and not WHITEPAPER_KAFKA_BOOTSTRAP_SERVERS:
    env.problem(
        "WHITEPAPER_KAFKA_ENABLED=true requires WHITEPAPER_KAFKA_BOOTSTRAP_SERVERS "
        "(or TRADING_ORDER_FEED_BOOTSTRAP_SERVERS)"
    )
(
    WHITEPAPER_KAFKA_TOPIC,
    WHITEPAPER_KAFKA_GROUP_ID,
    WHITEPAPER_KAFKA_CLIENT_ID,
    WHITEPAPER_KAFKA_GROUP_INSTANCE_ID,
    WHITEPAPER_KAFKA_AUTO_OFFSET_RESET,
    WHITEPAPER_KAFKA_POLL_MS,
    WHITEPAPER_KAFKA_BATCH_SIZE,
    WHITEPAPER_KAFKA_DLQ_TOPIC,
) = kafka_consumer(
    "WHITEPAPER_KAFKA",
    topic="github.webhook.events",
    group_id="torghut-whitepaper-v1",
    client_id="torghut-whitepaper",
    poll_ms=500,
    batch_size=50,
    max_batch_size=10000,
    dlq_topic="github.webhook.events.torghut-dlq",
)
WHITEPAPER_KAFKA = kafka_security("WHITEPAPER_KAFKA")
# how `manage.py kafka_topics ensure` creates the topic and its DLQ (one partition: webhook
# events are few, and one partition keeps them in arrival order)
(
    WHITEPAPER_KAFKA_TOPIC_PARTITIONS,
    WHITEPAPER_KAFKA_TOPIC_REPLICATION,
    WHITEPAPER_KAFKA_TOPIC_RETENTION_MS,
    WHITEPAPER_KAFKA_DLQ_TOPIC_RETENTION_MS,
) = kafka_topics("WHITEPAPER_KAFKA", partitions=1, retention_days=7)
