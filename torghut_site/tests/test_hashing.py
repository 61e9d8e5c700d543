"""torghut_site/hashing.py: the text and bytes canonical forms, each defined once."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from torghut_site import hashing


def test_the_text_form_keeps_exact_values_and_unicode():
    value = {"b": Decimal("1.50"), "a": Decimal("2"), "name": "é", "tags": {"y", "x"}}
    text = hashing.canonical_text(value)
    assert text == '{"a":"2","b":"1.50","name":"é","tags":["x","y"]}'
    assert hashing.canonical_text_hash(value) == hashlib.sha256(text.encode()).hexdigest()


def test_the_bytes_form_rounds_floats_and_is_ascii():
    value = {"b": 0.1 + 0.2, "a": float("nan"), "name": "é", "d": Decimal("1.50")}
    data = hashing.canonical_bytes(value)
    assert data == b'{"a":null,"b":0.3,"d":1.5,"name":"\\u00e9"}'
    assert hashing.canonical_bytes_hash(value) == hashlib.sha256(data).hexdigest()
    assert hashing.canonical_bytes_hash(b"raw") == hashlib.sha256(b"raw").hexdigest()


def test_the_research_engine_uses_the_same_functions():
    from autonomy.engine import artifacts

    assert artifacts.canonical is hashing.canonical_value
    assert artifacts.canonical_json is hashing.canonical_bytes
    assert artifacts.sha256_hex is hashing.canonical_bytes_hash
    assert artifacts.round_sig is hashing.round_sig
