"""Deterministic artifacts: one canonical JSON encoding and its sha256.

The encoding is the bytes form of `torghut_site.hashing` (floats rounded to `SIGNIFICANT_DIGITS`
significant digits, sorted keys, no whitespace, ASCII only, no NaN/Infinity), shared with the DSPy
artifacts of `trading/llm`; its module doc says why floats are rounded. The engine keeps its
names for it: `canonical` is `canonical_value`, `canonical_json` is `canonical_bytes` and
`sha256_hex` is `canonical_bytes_hash` (raw bytes hashed as they are).
"""

from __future__ import annotations

import json
from typing import Any

from torghut_site.hashing import SIGNIFICANT_DIGITS, round_sig
from torghut_site.hashing import canonical_bytes as canonical_json
from torghut_site.hashing import canonical_bytes_hash as sha256_hex
from torghut_site.hashing import canonical_value as canonical

# where a run's artifacts are stored: `<OBJECT_PREFIX>/<run_id>/<path>`
# (`autonomy.services.artifacts` writes them, `autonomy.selectors` links them)
OBJECT_PREFIX = "autonomy/runs"


def artifact_bytes(value: Any) -> bytes:
    """JSON artifacts: canonical values, sorted keys, 2-space indent, trailing newline (readable
    and still byte-identical run to run). YAML text is written as it is."""
    if isinstance(value, str):
        return value.encode("utf-8")
    text = json.dumps(
        canonical(value), sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False
    )
    return (text + "\n").encode("ascii")


__all__ = [
    "OBJECT_PREFIX",
    "SIGNIFICANT_DIGITS",
    "artifact_bytes",
    "canonical",
    "canonical_json",
    "round_sig",
    "sha256_hex",
]
