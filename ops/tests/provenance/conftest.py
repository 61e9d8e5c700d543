"""The fixtures a provenance chain is built with: the research lane (autonomy), the whitepaper
workflow (PDF host, RGW bucket, Jangar stand-in) and the replayed signals (trading)."""

from __future__ import annotations

from autonomy.tests.conftest import own_artifact_store, run_lane_cmd  # noqa: F401
from trading.tests.cycle.conftest import signals_file  # noqa: F401
from whitepapers.tests.conftest import (  # noqa: F401
    control,
    fs_artifacts,
    s3_artifacts,
    s3_client,
    workflow,
)
