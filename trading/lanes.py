"""Account lanes: configuration from settings, and the broker adapter for each lane."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from trading.brokers.base import Broker


@dataclass(frozen=True)
class LaneConfig:
    label: str
    mode: str  # paper | live
    broker: str  # simulated | alpaca
    enabled: bool
    api_key: str
    secret_key: str
    base_url: str

    @property
    def is_live(self) -> bool:
        return self.mode == "live"


class UnknownLaneError(LookupError):
    pass


def lane_configs() -> list[LaneConfig]:
    return [LaneConfig(**lane) for lane in settings.TRADING_LANES]


def lane_config(label: str) -> LaneConfig:
    for lane in lane_configs():
        if lane.label == label:
            return lane
    raise UnknownLaneError(f"no account lane labelled {label!r}")


def enabled_lane_labels() -> list[str]:
    return [lane.label for lane in lane_configs() if lane.enabled]


def live_lane_labels() -> list[str]:
    """Labels of the configured live lanes (enabled or not): the lanes a live approval is for."""
    return [lane.label for lane in lane_configs() if lane.is_live]


def paper_lane_labels() -> list[str]:
    """Labels of the configured paper lanes (simulated or Alpaca paper), enabled or not."""
    return [lane.label for lane in lane_configs() if not lane.is_live]


class ReadOnlyBrokerError(PermissionError):
    pass


class ReadOnlyBroker:
    """A broker whose mutating calls raise: what every caller but the order firewall gets."""

    def __init__(self, inner: Broker) -> None:
        self._inner = inner
        self.name = inner.name

    def __getattr__(self, item: str) -> object:
        if item in ("submit_order", "cancel_order", "cancel_all_orders"):
            raise ReadOnlyBrokerError(
                f"{item} is only allowed through trading.firewall.OrderFirewall"
            )
        return getattr(self._inner, item)


def broker_for_lane(lane: LaneConfig) -> Broker:
    """The read-only broker of a lane (account, positions, clock, order lookups)."""
    return ReadOnlyBroker(raw_broker_for_lane(lane))  # type: ignore[return-value]


def raw_broker_for_lane(lane: LaneConfig) -> Broker:
    """The mutable adapter. Only `trading.firewall` may call this."""
    if lane.broker == "alpaca":
        from trading.brokers.alpaca import AlpacaBroker

        return AlpacaBroker.from_settings(
            account_label=lane.label,
            api_key=lane.api_key or None,
            secret_key=lane.secret_key or None,
            base_url=lane.base_url or None,
            mode=lane.mode,
        )
    from trading.brokers.simulated import SimulatedBroker

    return SimulatedBroker(lane.label)
