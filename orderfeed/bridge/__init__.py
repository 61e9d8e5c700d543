"""The broker-to-Kafka bridge: Alpaca's `trade_updates` stream onto the order-feed topic.

One `TradeUpdatesBridge` per Alpaca lane. It subscribes to the lane's trading stream with
alpaca-py's `TradingStream` and produces every update, wrapped in `trade_update_envelope`, to
the order-feed topic keyed by symbol (all updates of a symbol share a partition, so they stay in
order) with the idempotent producer of `torghut_site.kafka.config.producer_config`.

Who reconnects: alpaca-py's `TradingStream.run()` swallows every error and reconnects by itself,
with its own backoff and no hook for "connected again". The bridge needs both: its own backoff
(settings `TRADING_ORDER_FEED_BRIDGE_BACKOFF_MIN/MAX_SECONDS`) and a reconciliation after every
reconnection, because the stream has no replay — whatever happened while we were away is only
found by asking the broker. So the bridge uses `TradingStream` for what fits (connection,
authentication, the `listen` request, frame routing through `_dispatch`, `close`) and drives the
session itself instead of `run()`:

    connect + authenticate + listen  ->  wait for the `listening` ack  ->  receive frames
          ^                                        |                            |
          |                                  (connected: reset the backoff;     |
          |                                   not the first time: reconcile)    |
          +---- backoff (full jitter, floor) <---------- lost / refused / silent --+

The backoff is full jitter with a floor: uniform(0, min(max, min * 2^(n-1))), never below min
(`jittered_backoff_seconds`; every process restarted at once does not come back in step). A
refusal for too many connections (HTTP 429 at the handshake, or "connection limit exceeded" in
the authorization answer: Alpaca allows one stream per account) waits at least
RATE_LIMIT_BACKOFF_SECONDS on top of that, so a run of refusals never becomes a burst. A stream
that is connected but has sent nothing for TRADING_TRADE_UPDATES_MAX_SILENCE_SECONDS while the
lane has open orders and the market is open (`trade_stream_watch_needed`) is closed and reopened
through the same backoff (counted; logged once per silence): a session closed for silence does
not reset the backoff unless a trade update came through it. `stop()` (thread-safe) cancels the
session at its next await — an update already received is always handed to the producer — then
the producer is flushed and a last heartbeat written.

Stream health for the trade cycle: the bridge writes the lane's `TradeStreamState` through
`trading.services.trade_stream` — on `listening`, at most once a second while frames arrive, and
when the session ends — which the cycle reads to refuse new risk while the stream is unhealthy.

Database work (heartbeats, stream health, the reconcile trigger) runs in one worker thread per
bridge, never on the event loop, in the order it was asked for.

The producer: every update stays in `_unconfirmed` until its delivery report says Kafka has it. A
report with an error drops it, counts it and triggers a reconciliation. A *fatal* producer error
(librdkafka gives up on the idempotent producer, e.g. `OUT_OF_ORDER_SEQUENCE_NUMBER` after a broker
lost records it had acknowledged) would otherwise make every later produce fail until the process
restarts: the bridge logs it once, counts it, puts a new producer with the same configuration in
place, produces every unconfirmed update on it (a duplicate is harmless: the consumer dedupes by
event fingerprint) and triggers a reconciliation, because what the broker lost after acknowledging
it is beyond any producer. A producer that fails again before delivering anything is replaced
after the reconnect backoff (min * 2^(n-1), capped), not in a loop.

Note: vendor clients belong in one adapter module per vendor, yet alpaca-py and confluent-kafka are
imported in this package rather than through `trading/brokers/alpaca.py`; the stream is a different
client than the REST adapter and the order feed owns it. Moving `_open_stream` (`session.py`) into
the adapter is a mechanical follow-up.

The package, in modules that import downward only (`TradeUpdatesBridge` is the four parts of the
bridge class stacked: `BridgeCore` <- `ProducerMixin`, `StreamHealthMixin` <- `SessionMixin` <-
`TradeUpdatesBridge`; all of them share one object's state):

- `errors`: the classified errors (`SESSION_ERRORS`, `stream_rate_limited`, `fatal_kafka_error`);
- `backoff`: the reconnect backoff; `metrics`: the Prometheus counters, created once;
- `config`: the topic, the lanes, a lane's credentials, the record produced, the reconcile trigger;
- `state`: `BridgeStats` and one session's `StreamWatch`;
- `core`: `BridgeCore`, the state and its stop, the worker thread, the reconciliation;
- `producer`: `ProducerMixin`, updates onto the topic and the producer's replacement;
- `health`: `StreamHealthMixin`, the stream-health writes and the silence watch;
- `session`: `SessionMixin`, the connection loop and one session's frames;
- `runner`: `TradeUpdatesBridge` (`for_lane`, `run`, the heartbeats) and `TradeUpdatesBridges`.

This package re-exports the names used elsewhere (the management command, the tests).
"""

from orderfeed.bridge.backoff import (
    RATE_LIMIT_BACKOFF_SECONDS,
    backoff_seconds,
    jittered_backoff_seconds,
)
from orderfeed.bridge.config import (
    bridge_lane_labels,
    bridge_topic,
    reconcile_trigger,
    stream_credentials,
    trade_update_envelope,
)
from orderfeed.bridge.errors import (
    SESSION_ERRORS,
    BridgeNotConfigured,
    StreamAuthError,
    StreamProtocolError,
    StreamRateLimited,
    StreamSilent,
    fatal_kafka_error,
    stream_rate_limited,
)
from orderfeed.bridge.runner import (
    FLUSH_TIMEOUT_SECONDS,
    HEARTBEAT_KIND,
    TradeUpdatesBridge,
    TradeUpdatesBridges,
)
from orderfeed.bridge.state import BridgeStats

__all__ = [
    "FLUSH_TIMEOUT_SECONDS",
    "HEARTBEAT_KIND",
    "RATE_LIMIT_BACKOFF_SECONDS",
    "SESSION_ERRORS",
    "BridgeNotConfigured",
    "BridgeStats",
    "StreamAuthError",
    "StreamProtocolError",
    "StreamRateLimited",
    "StreamSilent",
    "TradeUpdatesBridge",
    "TradeUpdatesBridges",
    "backoff_seconds",
    "bridge_lane_labels",
    "bridge_topic",
    "fatal_kafka_error",
    "jittered_backoff_seconds",
    "reconcile_trigger",
    "stream_credentials",
    "stream_rate_limited",
    "trade_update_envelope",
]
