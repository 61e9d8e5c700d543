from __future__ import annotations

from django.db import models
from django.db.models import Q


class TradeStreamState(models.Model):
    """The health of one Alpaca lane's `trade_updates` stream, as the bridge
    (`run_trade_updates_stream`, its own process) last saw it; read once per trade cycle and by
    the gap-fill task. Written on connect, at most once a second while frames arrive
    (compare-and-set), and on disconnect. A killed bridge leaves `connected` true: the age of
    `last_message_at` is what tells a silent or dead stream."""

    account_label = models.CharField(max_length=64, unique=True)
    connected = models.BooleanField(default=False)
    connected_at = models.DateTimeField(null=True, blank=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    # a trade update received (the gap fill asks the broker for what came after it)
    last_event_at = models.DateTimeField(null=True, blank=True)
    # any frame received, the `listening` acknowledgement included
    last_message_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(connected=False) | Q(connected_at__isnull=False),
                name="trade_stream_connected_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"trade stream {self.account_label} ({'up' if self.connected else 'down'})"
