"""Deterministic artifacts: one canonical JSON encoding and its sha256.

Research numbers are float64. Two runs of the same code on the same inputs give bit-identical
floats, but a summation reordered by a numpy upgrade or a different SIMD path may move the last
bits, so every float is rounded to `SIGNIFICANT_DIGITS` significant digits before it is encoded.
The encoding is JSON with sorted keys, no whitespace, ASCII only and no NaN/Infinity (those become
null), so the bytes, and therefore the hash, depend only on the rounded values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import numpy as np

SIGNIFICANT_DIGITS = 10

# where a run's artifacts are stored: `<OBJECT_PREFIX>/<run_id>/<path>`
# (`autonomy.services.artifacts` writes them, `autonomy.selectors` links them)
OBJECT_PREFIX = "autonomy/runs"


def round_sig(value: float, digits: int = SIGNIFICANT_DIGITS) -> float | None:
    """`value` rounded to `digits` significant digits; None for NaN/±inf; -0.0 becomes 0.0."""
    if not math.isfinite(value):
        return None
    rounded = float(f"{value:.{digits}g}")
    return 0.0 if rounded == 0.0 else rounded


def canonical(obj: Any) -> Any:
    """Plain JSON data (dict/list/str/int/float/bool/None) with floats rounded (see module doc)."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return round_sig(float(obj))
    if isinstance(obj, Decimal):
        return round_sig(float(obj)) if obj.is_finite() else None
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, Enum):
        return canonical(obj.value)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return canonical({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    if isinstance(obj, Mapping):
        return {str(key): canonical(value) for key, value in obj.items()}
    if isinstance(obj, np.ndarray):
        return [canonical(item) for item in obj.tolist()]
    if isinstance(obj, list | tuple):
        return [canonical(item) for item in obj]
    raise TypeError(f"cannot encode {type(obj).__name__} in a canonical artifact")


def canonical_json(obj: Any) -> bytes:
    """The canonical bytes of `obj` (sorted keys, compact, ASCII, floats rounded)."""
    return json.dumps(
        canonical(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def sha256_hex(obj: Any) -> str:
    """sha256 of `canonical_json(obj)`; raw bytes are hashed as they are."""
    data = obj if isinstance(obj, bytes) else canonical_json(obj)
    return hashlib.sha256(data).hexdigest()


def artifact_bytes(value: Any) -> bytes:
    """JSON artifacts: canonical values, sorted keys, 2-space indent, trailing newline (readable
    and still byte-identical run to run). YAML text is written as it is."""
    if isinstance(value, str):
        return value.encode("utf-8")
    text = json.dumps(
        canonical(value), sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False
    )
    return (text + "\n").encode("ascii")
