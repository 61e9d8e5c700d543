from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from torghut_site.db import choices_constraint


class ApiToken(models.Model):
    """An API token for a user. Only a SHA-256 digest is stored; the key is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # first characters of the key, to tell tokens apart in the admin without revealing them
    prefix = models.CharField(max_length=12, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # null: lives until revoked; otherwise refused from this time on, like a revoked token
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"
        verbose_name_plural = "API tokens"
        constraints = [
            models.CheckConstraint(
                condition=Q(digest__regex=r"^[0-9a-f]{64}$"), name="apitoken_digest_hex"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class HeartbeatKind(models.TextChoices):
    CELERY_WORKER = "celery_worker", "Celery worker"
    CELERY_BEAT = "celery_beat", "Celery beat"
    ORDERFEED_CONSUMER = "orderfeed_consumer", "Order-feed consumer"
    WHITEPAPER_CONSUMER = "whitepaper_consumer", "Whitepaper consumer"
    TRADE_UPDATES_BRIDGE = "trade_updates_bridge", "Trade-updates bridge"
    SIGNAL_CONSUMER = "signal_consumer", "TA signal consumer"


class ProcessHeartbeat(models.Model):
    """The last sign of life of a long-running process (Celery worker, consumer, bridge).

    One row per (kind, name), where `name` is the process's stable identity, not its pid: a
    consumer's instance name (`--name`, `TORGHUT_INSTANCE_NAME`, else the hostname), a Celery
    worker's nodename (`-n w1@%h`), beat's fixed name, a bridge lane's `label:instance`. A restart
    takes the same row back. Every write sets `expires_at` (last sight + 3 of the writer's
    heartbeat intervals): past it the row reads `dead` wherever it is shown (`heartbeat_list`,
    `/trading/health`, the admin, `torghut_process_heartbeat_age_seconds`), and rows dead for
    longer than TORGHUT_HEARTBEAT_RETENTION_SECONDS are deleted by the `ops-heartbeats-prune`
    beat task.
    """

    Kind = HeartbeatKind

    kind = models.CharField(max_length=32, choices=HeartbeatKind.choices)
    name = models.CharField(max_length=200)
    pid = models.PositiveIntegerField(default=0)
    hostname = models.CharField(max_length=255, blank=True, default="")
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    interval_seconds = models.FloatField(default=15.0)
    expires_at = models.DateTimeField()
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "name"], name="heartbeat_kind_name_unique"),
            choices_constraint("kind", HeartbeatKind, "heartbeat_kind_valid"),
            models.CheckConstraint(
                condition=Q(interval_seconds__gt=0), name="heartbeat_interval_positive"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("last_seen_at")),
                name="heartbeat_expires_after_seen",
            ),
        ]
        # the retention sweep: `expires_at < now - retention`
        indexes = [models.Index(fields=["expires_at"], name="heartbeat_expires_idx")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


class DeadLetterMessage(models.Model):
    """A Kafka message a consumer refused (invalid, incomplete, or failing every attempt).

    Kept here whatever happens to the dead-letter topic, exactly once per source offset, so an
    operator can read, fix and replay it; `published_at` says it also reached the DLQ topic.
    """

    consumer = models.CharField(max_length=64)
    topic = models.CharField(max_length=249)
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    key = models.BinaryField(null=True, blank=True)
    value = models.BinaryField(null=True, blank=True)
    reason = models.CharField(max_length=64)
    error = models.TextField(blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["consumer", "topic", "partition", "offset"],
                name="dead_letter_source_unique",
            )
        ]
        indexes = [models.Index(fields=["consumer", "-created_at"], name="dead_letter_recent_idx")]

    def __str__(self) -> str:
        return f"{self.consumer} {self.topic}[{self.partition}]@{self.offset}: {self.reason}"

    @property
    def value_preview(self) -> str:
        raw = bytes(self.value) if self.value is not None else b""
        return raw[:2000].decode("utf-8", "replace")


class ConsumerGroupProbe(models.Model):
    """The last probe of a consumer group, asked of Kafka (`torghut_site.kafka.probe`): when,
    whether Kafka answered, and what it said of the group. Its partitions' samples are the
    `ConsumerGroupPartition` rows."""

    group = models.CharField(max_length=255, unique=True)
    probed_at = models.DateTimeField()
    reachable = models.BooleanField()
    error = models.CharField(max_length=500, blank=True)
    # the last answer's group state and member count (kept when Kafka does not answer)
    state = models.CharField(max_length=32, blank=True)
    members = models.PositiveIntegerField(default=0)
    missing_topics = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"{self.group} @ {self.probed_at:%Y-%m-%d %H:%M:%S}"


class ConsumerGroupPartition(models.Model):
    """One partition of a probed group: the last committed and end offsets Kafka reported, and
    when each last changed, so a rule can compare over time (a committed offset that does not
    move while records wait is a stalled consumer)."""

    group = models.CharField(max_length=255)
    topic = models.CharField(max_length=249)
    partition = models.IntegerField()
    committed = models.BigIntegerField(null=True, blank=True)  # null: never committed
    end_offset = models.BigIntegerField()
    lag = models.BigIntegerField()
    assigned = models.BooleanField()
    probed_at = models.DateTimeField()
    committed_changed_at = models.DateTimeField()
    end_changed_at = models.DateTimeField()
    # the last time the partition made progress: its committed offset moved, or nothing waited
    progress_at = models.DateTimeField()
    # since when no member of the group holds it (null while one does)
    unassigned_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "topic", "partition"], name="consumer_group_partition_unique"
            ),
            models.CheckConstraint(condition=Q(lag__gte=0), name="consumer_group_lag_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.group} {self.topic}[{self.partition}]"
