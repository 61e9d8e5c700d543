"""Canonical JSON and sha256 hashes: same input, same bytes, same hash.

Two canonical forms, for two jobs, under distinct names:

- the text form, `canonical_text` (hashed by `canonical_text_hash`): exact values (a Decimal
  keeps its digits), Unicode kept. It names things by their content: a decision's identity
  (`trading/identity.py`), a review's input and answer (`trading/services/reviews.py`), the
  market snapshot in a review prompt (`trading/llm/request.py`).
- the bytes form, `canonical_bytes` (hashed by `canonical_bytes_hash`): research and DSPy
  artifacts, whose numbers are float64. Two runs of the same code on the same inputs give
  bit-identical floats, but a summation reordered by a numpy upgrade or a different SIMD path may
  move the last bits, so every float is rounded to `SIGNIFICANT_DIGITS` significant digits
  (`canonical_value`) before it is encoded: JSON with sorted keys, no whitespace, ASCII only and
  no NaN/Infinity (those become null), so the bytes, and therefore the hash, depend only on the
  rounded values (`autonomy/engine`, `trading/llm/dspy_artifacts.py`).

`sha256_hex` hashes text (as UTF-8) or bytes as they are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import numpy as np

SIGNIFICANT_DIGITS = 10


def sha256_hex(data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


# -- the text form ---------------------------------------------------------------------------------


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def canonical_text(value: Any) -> str:
    """`value` as canonical JSON text (sorted keys, compact, exact Decimals, Unicode kept)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


def canonical_text_hash(value: Any) -> str:
    """sha256 of `canonical_text(value)`."""
    return sha256_hex(canonical_text(value))


# -- the bytes form (artifacts) ------------------------------------------------------------------


def round_sig(value: float, digits: int = SIGNIFICANT_DIGITS) -> float | None:
    """`value` rounded to `digits` significant digits; None for NaN/±inf; -0.0 becomes 0.0."""
    if not math.isfinite(value):
        return None
    rounded = float(f"{value:.{digits}g}")
    return 0.0 if rounded == 0.0 else rounded


def canonical_value(obj: Any) -> Any:
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
        return canonical_value(obj.value)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return canonical_value({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    if isinstance(obj, Mapping):
        return {str(key): canonical_value(value) for key, value in obj.items()}
    if isinstance(obj, np.ndarray):
        return [canonical_value(item) for item in obj.tolist()]
    if isinstance(obj, list | tuple):
        return [canonical_value(item) for item in obj]
    raise TypeError(f"cannot encode {type(obj).__name__} in a canonical artifact")


def canonical_bytes(obj: Any) -> bytes:
    """The canonical bytes of `obj` (sorted keys, compact, ASCII, floats rounded)."""
    return json.dumps(
        canonical_value(obj),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    ).encode("ascii")


def canonical_bytes_hash(obj: Any) -> str:
    """sha256 of `canonical_bytes(obj)`; raw bytes are hashed as they are."""
    data = obj if isinstance(obj, bytes) else canonical_bytes(obj)
    return hashlib.sha256(data).hexdigest()
