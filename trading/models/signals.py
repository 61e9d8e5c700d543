from __future__ import annotations

from django.db import models


class TaSignal(models.Model):
    """A TA signal row received on the Kafka signals topic, in stream order for the `kafka`
    signal source. Unique by stream key and by log position, so a redelivered batch is a no-op."""

    event_ts = models.DateTimeField()
    symbol = models.CharField(max_length=32)
    seq = models.BigIntegerField()
    row = models.JSONField(help_text="the row as received (flat or envelope schema)")
    source_topic = models.CharField(max_length=249)
    source_partition = models.IntegerField()
    source_offset = models.BigIntegerField()
    received_at = models.DateTimeField()

    class Meta:
        verbose_name = "TA signal"
        verbose_name_plural = "TA signals"
        constraints = [
            models.UniqueConstraint(
                fields=["event_ts", "symbol", "seq"], name="ta_signal_stream_key_unique"
            ),
            models.UniqueConstraint(
                fields=["source_topic", "source_partition", "source_offset"],
                name="ta_signal_source_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.event_ts.isoformat()} #{self.seq}"
