"""Brokers: Alpaca and the simulated broker."""

from __future__ import annotations

from decimal import Decimal

from torghut_site.settings.base import env
from torghut_site.settings.trading import TRADING_BROKER

# --------------------------------------------------------------------------------------------
# Alpaca
# --------------------------------------------------------------------------------------------
APCA_API_KEY_ID = env.secret("APCA_API_KEY_ID")
APCA_API_SECRET_KEY = env.secret("APCA_API_SECRET_KEY")
APCA_API_BASE_URL = env.str("APCA_API_BASE_URL").rstrip("/").removesuffix("/v2")
APCA_DATA_API_BASE_URL = env.str("APCA_DATA_API_BASE_URL").rstrip("/")
# alpaca-py sets no HTTP timeout of its own; an order submit that times out is "ambiguous"
APCA_HTTP_TIMEOUT_SECONDS = env.float("APCA_HTTP_TIMEOUT_SECONDS", default=5.0, min_value=0.1)
# client-side budget, under Alpaca's 200 requests/min per account
APCA_RATE_LIMIT_PER_MINUTE = env.int(
    "APCA_RATE_LIMIT_PER_MINUTE", default=180, min_value=1, max_value=10000
)
APCA_DATA_FEED = env.choice("APCA_DATA_FEED", choices=("iex", "sip"), default="iex")
if TRADING_BROKER == "alpaca" and not (APCA_API_KEY_ID and APCA_API_SECRET_KEY):
    env.problem("TRADING_BROKER=alpaca needs APCA_API_KEY_ID and APCA_API_SECRET_KEY")

# --------------------------------------------------------------------------------------------
# Simulated broker (the embedded default): Alpaca order semantics, state kept in the database
# --------------------------------------------------------------------------------------------
SIMULATED_BROKER_STARTING_CASH = env.decimal(
    "SIMULATED_BROKER_STARTING_CASH", default=Decimal("100000"), min_value=Decimal(0)
)
SIMULATED_BROKER_SLIPPAGE_BPS = env.decimal(
    "SIMULATED_BROKER_SLIPPAGE_BPS", default=Decimal("5"), min_value=Decimal(0)
)
SIMULATED_BROKER_FEE_PER_SHARE = env.decimal(
    "SIMULATED_BROKER_FEE_PER_SHARE", default=Decimal("0"), min_value=Decimal(0)
)
SIMULATED_BROKER_FEE_BPS = env.decimal(
    "SIMULATED_BROKER_FEE_BPS", default=Decimal("0"), min_value=Decimal(0)
)
