"""The order feed's block of `GET /trading/status` (`order_feed`), lent to trading with its schema
through `trading.ports.status_section_register` (orderfeed.apps): every key of
`orderfeed.selectors.order_feed_status` named, each object closed (`ExactOutputSerializer`), so a
key added there without its schema fails the status schema-conformance test."""

from __future__ import annotations

from rest_framework import serializers

from orderfeed.selectors import REASONS
from torghut_site.drf import ExactOutputSerializer


class OrderFeedPartitionSerializer(ExactOutputSerializer):
    """`PartitionHealth.as_json`: one partition of the consumer group, as Kafka last answered."""

    topic = serializers.CharField()
    partition = serializers.IntegerField(min_value=0)
    committed = serializers.IntegerField(allow_null=True, help_text="null: never committed")
    end_offset = serializers.IntegerField()
    lag = serializers.IntegerField(min_value=0)
    assigned = serializers.BooleanField()
    stalled = serializers.BooleanField()
    unassigned_seconds = serializers.FloatField(
        allow_null=True, help_text="how long no member held it (null: held)"
    )


class OrderFeedHealthSerializer(ExactOutputSerializer):
    """`FeedHealth.as_json`: the consumer group as Kafka last answered; `reasons` empty = ok."""

    ok = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.ChoiceField(choices=REASONS))
    group = serializers.CharField()
    probed_at = serializers.DateTimeField(allow_null=True)
    probe_age_seconds = serializers.FloatField(allow_null=True)
    error = serializers.CharField(allow_blank=True, help_text="Kafka's error text, or blank")
    lag = serializers.IntegerField(min_value=0)
    partitions = OrderFeedPartitionSerializer(many=True)


class OrderFeedConsumerSerializer(ExactOutputSerializer):
    """One order-feed consumer process, from its heartbeat."""

    name = serializers.CharField()
    healthy = serializers.BooleanField()
    age_seconds = serializers.FloatField(help_text="since its last heartbeat")
    state = serializers.CharField(help_text="running, starting, stopped or dead")
    pid = serializers.IntegerField(min_value=0)
    hostname = serializers.CharField(allow_blank=True)
    assigned = serializers.ListField(
        child=serializers.CharField(), help_text="the partitions it holds, as `topic[partition]`"
    )


class OrderFeedStatusSerializer(ExactOutputSerializer):
    """`order_feed_status()`: the feed's events over the last 24 hours and its health."""

    enabled = serializers.BooleanField()
    topics = serializers.ListField(child=serializers.CharField())
    last_event_at = serializers.DateTimeField(allow_null=True)
    events_window = serializers.IntegerField(min_value=0)
    # open: keyed by outcome (`EventOutcome` values), and only the outcomes the window saw are
    # there: an absent key is a zero, so the keys are data, not a fixed shape
    outcomes_window = serializers.DictField(
        child=serializers.IntegerField(min_value=1), help_text="events in the window, by outcome"
    )
    unknown_orders_open = serializers.IntegerField(min_value=0)
    dead_letters_window = serializers.IntegerField(min_value=0)
    consumers = OrderFeedConsumerSerializer(many=True)
    health = OrderFeedHealthSerializer(
        allow_null=True, help_text="null when the feed is off or has no Kafka configured"
    )
