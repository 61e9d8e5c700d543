"""Content-addressed object storage (the storage adapter): whitepaper PDFs, DSPy and research
artifacts.

The backend is Django's `storages["artifacts"]` (settings.STORAGES): django-storages' S3Storage
against Ceph RGW when `WHITEPAPER_CEPH_ENDPOINT` is set, else a FileSystemStorage. It is looked
up on every call, so a settings override (tests) takes effect at once.

Writes are idempotent: a key names its content, so putting the same key twice leaves exactly one
object. `Storage.save()` cannot promise that (with `file_overwrite=False` it renames the second
copy), so the S3 path talks to the storage's boto3 client and the filesystem path writes
atomically with `os.replace`.

`object_put_once` is the write-once variant (research evidence): an object that exists is never
replaced. The write itself is conditional — S3 `PutObject` with `If-None-Match: *` (Ceph RGW and
AWS S3 answer 412 when the key exists), on the filesystem a hard link of a finished temporary
file, which fails when the name exists — and the stored bytes are read back and compared, so
different bytes already under the key raise `ObjectConflict` and are left as they are.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, SSLError
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.core.files.storage import FileSystemStorage, Storage, storages

STORAGE_ALIAS = "artifacts"
LOCAL_BUCKET = "local"
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_TRANSIENT_CODES = frozenset(
    {"RequestTimeout", "SlowDown", "ServiceUnavailable", "InternalError", "Throttling"}
)


class ObjectStoreError(Exception):
    """A storage failure. `reason`: storage_upload_failed, storage_download_failed,
    storage_object_missing, storage_url_failed, storage_key_invalid or storage_unsupported.

    `retryable`: the store could not be reached or answered with a server error (connection
    refused or dropped, a timeout, HTTP 5xx, SlowDown) — the same call may succeed later. False
    for what a retry does not change (refused credentials, a missing bucket or key, a bad key,
    a TLS failure, the filesystem backend's errors)."""

    def __init__(self, reason: str, detail: str, *, retryable: bool = False) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retryable = retryable


class ObjectConflict(ObjectStoreError):
    """A write-once key already holds different bytes (reason `storage_object_conflict`); the
    stored object was not touched."""

    def __init__(self, where: str, *, expected_sha256: str, found_sha256: str) -> None:
        super().__init__(
            "storage_object_conflict",
            f"{where} holds sha256 {found_sha256}, not {expected_sha256}: write-once, "
            "not overwritten",
        )
        self.where = where
        self.expected_sha256 = expected_sha256
        self.found_sha256 = found_sha256


@dataclass(frozen=True)
class StoredObject:
    bucket: str  # the S3 bucket, or "local" for the filesystem backend
    key: str  # relative to the storage (its `location` prefix, if any, is only in `uri`)
    etag: str | None
    size: int
    uri: str  # "s3://<bucket>/<key>" or "file://<absolute path>"


def object_put(key: str, data: bytes, *, content_type: str) -> StoredObject:
    """Store `data` under `key`; an object already there with the same size is kept as is."""
    _check_key(key)
    storage = _artifacts()
    s3 = _as_s3(storage)
    if s3 is not None:
        return _s3_put(s3, key=key, data=data, content_type=content_type)
    if isinstance(storage, FileSystemStorage):
        return _fs_put(storage, key=key, data=data)
    raise _unsupported(storage)


def object_put_once(key: str, data: bytes, *, content_type: str) -> StoredObject:
    """Store `data` under `key` unless the key exists; either way the stored bytes are read back
    and must be `data`, else `ObjectConflict` (the existing object is left unchanged)."""
    _check_key(key)
    storage = _artifacts()
    s3 = _as_s3(storage)
    if s3 is not None:
        return _s3_put_once(s3, key=key, data=data, content_type=content_type)
    if isinstance(storage, FileSystemStorage):
        path = Path(storage.path(key))
        try:
            file_put_once(path, data, mode=storage.file_permissions_mode or 0o644)
        except OSError as exc:
            raise _wrap("storage_upload_failed", str(path), exc) from exc
        return _fs_stored(key=key, path=path, data=data)
    raise _unsupported(storage)


def file_put_once(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write `data` to `path` unless it exists (a hard link of a fsynced temporary file: the name
    appears whole or not at all, and never replaces one that exists); then the bytes at `path`
    must be `data`, else `ObjectConflict`. OSError for filesystem failures."""
    if not path.is_file():
        temp_name = _fs_temp_write(path, data, mode=mode)
        try:
            os.link(temp_name, path)
        except FileExistsError:
            pass  # written meanwhile by another writer: compared below
        finally:
            Path(temp_name).unlink(missing_ok=True)
    _verify(str(path), path.read_bytes(), data)


def _fs_temp_write(path: Path, data: bytes, *, mode: int) -> str:
    """A fsynced temporary file beside `path` holding `data`, for the caller to put in place
    (and to remove if it does not)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.chmod(temp_name, mode)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return temp_name


def _verify(where: str, stored: bytes, data: bytes) -> None:
    expected = hashlib.sha256(data).hexdigest()
    found = hashlib.sha256(stored).hexdigest()
    if found != expected:
        raise ObjectConflict(where, expected_sha256=expected, found_sha256=found)


def object_get(key: str) -> bytes:
    _check_key(key)
    storage = _artifacts()
    s3 = _as_s3(storage)
    if s3 is not None:
        bucket, full_key = str(s3.bucket_name), _full_key(s3, key)
        try:
            body = s3.connection.meta.client.get_object(Bucket=bucket, Key=full_key)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                raise ObjectStoreError(
                    "storage_object_missing", f"s3://{bucket}/{full_key} does not exist"
                ) from exc
            raise _wrap("storage_download_failed", f"s3://{bucket}/{full_key}", exc) from exc
        except BotoCoreError as exc:
            raise _wrap("storage_download_failed", f"s3://{bucket}/{full_key}", exc) from exc
    if isinstance(storage, FileSystemStorage):
        path = Path(storage.path(key))
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ObjectStoreError("storage_object_missing", f"{path} does not exist") from exc
        except OSError as exc:
            raise _wrap("storage_download_failed", str(path), exc) from exc
    raise _unsupported(storage)


def object_url(key: str, *, expires_seconds: int = 600) -> str:
    """A presigned GET URL on S3; on the filesystem, the file's `file://` URI."""
    _check_key(key)
    storage = _artifacts()
    s3 = _as_s3(storage)
    if s3 is not None:
        try:
            return str(s3.url(key, expire=expires_seconds))
        except (BotoCoreError, ClientError) as exc:
            raise _wrap("storage_url_failed", key, exc) from exc
    if isinstance(storage, FileSystemStorage):
        return Path(storage.path(key)).as_uri()
    raise _unsupported(storage)


def storage_describe() -> dict[str, Any]:
    """The configured backend for status endpoints (never credentials)."""
    storage = _artifacts()
    s3 = _as_s3(storage)
    if s3 is not None:
        return {"backend": "s3", "bucket": str(s3.bucket_name), "endpoint": s3.endpoint_url or None}
    if isinstance(storage, FileSystemStorage):
        return {
            "backend": "filesystem",
            "bucket": LOCAL_BUCKET,
            "endpoint": None,
            "location": str(storage.location),
        }
    return {"backend": type(storage).__name__, "bucket": None, "endpoint": None}


# -- S3 ---------------------------------------------------------------------------------------


def _as_s3(storage: Storage) -> Any | None:
    """The storage when it is django-storages' S3Storage (untyped, hence Any), else None."""
    from storages.backends.s3 import S3Storage  # lazily: only S3 deployments need it

    return storage if isinstance(storage, S3Storage) else None


def _full_key(s3: Any, key: str) -> str:
    location = str(s3.location or "").strip("/")
    return posixpath.join(location, key) if location else key


def _s3_put(s3: Any, *, key: str, data: bytes, content_type: str) -> StoredObject:
    client, bucket = s3.connection.meta.client, str(s3.bucket_name)
    full_key = _full_key(s3, key)
    where = f"s3://{bucket}/{full_key}"
    try:
        try:
            head = client.head_object(Bucket=bucket, Key=full_key)
        except ClientError as exc:
            if _error_code(exc) not in _MISSING_CODES:
                raise
            head = None
        if head is not None and int(head.get("ContentLength", -1)) == len(data):
            etag = head.get("ETag")
        else:
            # the storage's configured object parameters (e.g. CacheControl, encryption)
            params: dict[str, Any] = dict(s3.get_object_parameters(key))
            params["ContentType"] = content_type
            acl = s3.default_acl
            if acl:
                params.setdefault("ACL", acl)
            response = client.put_object(Bucket=bucket, Key=full_key, Body=data, **params)
            etag = response.get("ETag")
    except (BotoCoreError, ClientError) as exc:
        raise _wrap("storage_upload_failed", where, exc) from exc
    # `key` stays relative to the storage (what object_get/object_url take); the URI is absolute
    return StoredObject(bucket=bucket, key=key, etag=_strip_etag(etag), size=len(data), uri=where)


def _s3_read(client: Any, bucket: str, full_key: str) -> bytes | None:
    try:
        body = client.get_object(Bucket=bucket, Key=full_key)["Body"]
    except ClientError as exc:
        if _error_code(exc) in _MISSING_CODES:
            return None
        raise
    try:
        return bytes(body.read())
    finally:
        body.close()


def _s3_put_once(s3: Any, *, key: str, data: bytes, content_type: str) -> StoredObject:
    client, bucket = s3.connection.meta.client, str(s3.bucket_name)
    full_key = _full_key(s3, key)
    where = f"s3://{bucket}/{full_key}"
    try:
        stored = _s3_read(client, bucket, full_key)
        etag = None
        if stored is None:
            params: dict[str, Any] = dict(s3.get_object_parameters(key))
            params["ContentType"] = content_type
            acl = s3.default_acl
            if acl:
                params.setdefault("ACL", acl)
            try:
                response = client.put_object(
                    Bucket=bucket, Key=full_key, Body=data, IfNoneMatch="*", **params
                )
                etag = response.get("ETag")
            except ClientError as exc:
                # 412: the key was created since the read above; 409: a concurrent
                # conditional write is in flight. Either way the stored bytes decide below.
                if _error_code(exc) not in {"PreconditionFailed", "ConditionalRequestConflict"}:
                    raise
            stored = _s3_read(client, bucket, full_key)
    except (BotoCoreError, ClientError) as exc:
        raise _wrap("storage_upload_failed", where, exc) from exc
    if stored is None:
        raise ObjectStoreError("storage_upload_failed", f"{where} is missing after the write")
    _verify(where, stored, data)
    return StoredObject(bucket=bucket, key=key, etag=_strip_etag(etag), size=len(data), uri=where)


# -- filesystem -------------------------------------------------------------------------------


def _fs_put(storage: FileSystemStorage, *, key: str, data: bytes) -> StoredObject:
    path = Path(storage.path(key))
    try:
        if not (path.is_file() and path.stat().st_size == len(data)):
            temp_name = _fs_temp_write(path, data, mode=storage.file_permissions_mode or 0o644)
            try:
                os.replace(temp_name, path)
            except BaseException:
                Path(temp_name).unlink(missing_ok=True)
                raise
    except OSError as exc:
        raise _wrap("storage_upload_failed", str(path), exc) from exc
    return _fs_stored(key=key, path=path, data=data)


def _fs_stored(*, key: str, path: Path, data: bytes) -> StoredObject:
    return StoredObject(
        bucket=LOCAL_BUCKET,
        key=key,
        # the MD5 of the content, like a single-part S3 ETag
        etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        size=len(data),
        uri=path.as_uri(),
    )


# -- shared -----------------------------------------------------------------------------------


def _artifacts() -> Storage:
    return storages[STORAGE_ALIAS]


def _check_key(key: str) -> None:
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in {"", ".", ".."} for part in parts):
        raise ObjectStoreError("storage_key_invalid", f"{key!r} is not a relative object key")


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _strip_etag(etag: Any) -> str | None:
    return str(etag).strip('"') or None if etag else None


def _wrap(reason: str, where: str, exc: BaseException) -> ObjectStoreError:
    return ObjectStoreError(
        reason, f"{where}: {type(exc).__name__}: {exc}", retryable=_is_transient(exc)
    )


def _is_transient(exc: BaseException) -> bool:
    """The store was unreachable or failed on its side (after botocore's own retries)."""
    if isinstance(exc, SSLError):
        return False
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status >= 500 or _error_code(exc) in _TRANSIENT_CODES
    return False


def _unsupported(storage: Storage) -> ObjectStoreError:
    return ObjectStoreError(
        "storage_unsupported",
        f"the {STORAGE_ALIAS!r} storage is {type(storage).__name__}; "
        "use S3Storage or FileSystemStorage",
    )
