"""Whitepaper object keys over the shared storage adapter (`torghut_site.storage`)."""

from __future__ import annotations

from torghut_site.storage import (
    LOCAL_BUCKET,
    STORAGE_ALIAS,
    ObjectStoreError,
    StoredObject,
    object_get,
    object_put,
    object_url,
    storage_describe,
)

__all__ = [
    "LOCAL_BUCKET",
    "STORAGE_ALIAS",
    "ObjectStoreError",
    "StoredObject",
    "object_get",
    "object_put",
    "object_url",
    "pdf_object_key",
    "storage_describe",
]


def pdf_object_key(sha256: str) -> str:
    return f"raw/checksum/{sha256[:2]}/{sha256}/source.pdf"
