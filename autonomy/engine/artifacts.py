"""Deterministic artifacts: one canonical JSON encoding and its sha256.

The encoding is the bytes form of `torghut_site.hashing` (floats rounded to `SIGNIFICANT_DIGITS`
significant digits, sorted keys, no whitespace, ASCII only, no NaN/Infinity), shared with the DSPy
artifacts of `trading/llm`; its module doc says why floats are rounded. The engine keeps its
names for it: `canonical` is `canonical_value`, `canonical_json` is `canonical_bytes` and
`sha256_hex` is `canonical_bytes_hash` (raw bytes hashed as they are).
"""

from __future__ import annotations

from torghut_site.hashing import SIGNIFICANT_DIGITS, round_sig
from torghut_site.hashing import canonical_bytes as canonical_json
from torghut_site.hashing import canonical_bytes_hash as sha256_hex
from torghut_site.hashing import canonical_value as canonical

__all__ = ["SIGNIFICANT_DIGITS", "canonical", "canonical_json", "round_sig", "sha256_hex"]
