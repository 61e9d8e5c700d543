"""Object storage against the real Ceph RGW (S3) and the filesystem backend."""

from __future__ import annotations

import hashlib
import threading
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.config import Config

from tests.conftest import free_port
from whitepapers.storage import (
    ObjectStoreError,
    StoredObject,
    object_get,
    object_put,
    object_url,
    pdf_object_key,
    storage_describe,
)
from whitepapers.tests.conftest import use_s3_bucket
from whitepapers.tests.pdfs import make_pdf

PDF = make_pdf(["Stored paper"])
SHA = hashlib.sha256(PDF).hexdigest()
MD5 = hashlib.md5(PDF).hexdigest()


def test_pdf_object_key_layout():
    sha = "ab" + "0" * 62
    assert pdf_object_key(sha) == f"raw/checksum/ab/{sha}/source.pdf"


# -- S3 (Ceph RGW) ----------------------------------------------------------------------------


def test_s3_put_get_round_trip(s3_artifacts):
    key = pdf_object_key(SHA)
    stored = object_put(key, PDF, content_type="application/pdf")
    assert (
        stored
        == StoredObject(
            bucket=s3_artifacts.bucket,
            key=f"raw/checksum/{SHA[:2]}/{SHA}/source.pdf",
            etag=MD5,  # single-part upload: the ETag is the content's MD5
            size=len(PDF),
            uri=f"s3://{s3_artifacts.bucket}/raw/checksum/{SHA[:2]}/{SHA}/source.pdf",
        )
    )
    assert object_get(key) == PDF
    head = s3_artifacts.client.head_object(Bucket=s3_artifacts.bucket, Key=key)
    assert head["ContentType"] == "application/pdf"
    assert head["ContentLength"] == len(PDF)
    assert s3_artifacts.keys() == [key]


def test_s3_second_put_of_the_same_key_keeps_one_object(s3_artifacts):
    key = pdf_object_key(SHA)
    first = object_put(key, PDF, content_type="application/pdf")
    second = object_put(key, PDF, content_type="application/pdf")
    assert second == first
    assert s3_artifacts.keys(prefix="raw/") == [key]
    listing = s3_artifacts.client.list_objects_v2(Bucket=s3_artifacts.bucket, Prefix="raw/")
    assert listing["KeyCount"] == 1


def test_s3_existing_object_of_the_same_size_is_not_uploaded_again(s3_artifacts):
    key = pdf_object_key(SHA)
    object_put(key, PDF, content_type="application/pdf")
    same_size = bytes(len(PDF))  # a content-addressed key never holds other bytes: skipped
    stored = object_put(key, same_size, content_type="application/pdf")
    assert stored.etag == MD5
    assert object_get(key) == PDF


def test_s3_object_of_another_size_is_replaced_in_place(s3_artifacts):
    key = "raw/checksum/00/partial/source.pdf"
    object_put(key, PDF[:100], content_type="application/pdf")
    stored = object_put(key, PDF, content_type="application/pdf")
    assert (stored.etag, stored.size) == (MD5, len(PDF))
    assert object_get(key) == PDF
    assert s3_artifacts.keys() == [key]


def test_s3_presigned_url_downloads_the_object(s3_artifacts):
    key = pdf_object_key(SHA)
    object_put(key, PDF, content_type="application/pdf")
    url = object_url(key, expires_seconds=60)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == s3_artifacts.endpoint
    assert parts.path == f"/{s3_artifacts.bucket}/{key}"
    query = parse_qs(parts.query)
    assert query["X-Amz-Expires"] == ["60"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == PDF
    assert response.headers["Content-Type"] == "application/pdf"


def test_s3_unsigned_url_is_refused(s3_artifacts):
    key = pdf_object_key(SHA)
    object_put(key, PDF, content_type="application/pdf")
    response = requests.get(f"{s3_artifacts.endpoint}/{s3_artifacts.bucket}/{key}", timeout=10)
    assert response.status_code == 403


def test_s3_get_of_a_missing_key(s3_artifacts):
    with pytest.raises(ObjectStoreError) as info:
        object_get("raw/checksum/ff/nothing/source.pdf")
    assert info.value.reason == "storage_object_missing"
    assert info.value.detail == (
        f"s3://{s3_artifacts.bucket}/raw/checksum/ff/nothing/source.pdf does not exist"
    )


def test_s3_bucket_that_does_not_exist(s3_artifacts, settings):
    missing = f"torghut-missing-{uuid.uuid4().hex[:12]}"
    use_s3_bucket(settings, s3_artifacts.endpoint, missing)
    key = pdf_object_key(SHA)
    with pytest.raises(ObjectStoreError) as info:
        object_put(key, PDF, content_type="application/pdf")
    assert (info.value.reason, info.value.retryable) == ("storage_upload_failed", False)
    assert info.value.detail == (
        f"s3://{missing}/{key}: NoSuchBucket: "
        "An error occurred (NoSuchBucket) when calling the PutObject operation: None"
    )
    with pytest.raises(ObjectStoreError) as info:
        object_get(key)
    assert info.value.reason == "storage_download_failed"
    assert "NoSuchBucket" in info.value.detail
    # nothing landed in the real bucket either
    assert s3_artifacts.keys() == []


def test_s3_wrong_credentials(s3_artifacts, settings):
    options = {**settings.STORAGES["artifacts"]["OPTIONS"], "secret_key": "not-the-secret"}
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {**settings.STORAGES["artifacts"], "OPTIONS": options},
    }
    with pytest.raises(ObjectStoreError) as info:
        object_put(pdf_object_key(SHA), PDF, content_type="application/pdf")
    assert (info.value.reason, info.value.retryable) == ("storage_upload_failed", False)
    # HEAD answers carry no error body: RGW's refusal shows as a bare 403
    assert info.value.detail == (
        f"s3://{s3_artifacts.bucket}/{pdf_object_key(SHA)}: ClientError: "
        "An error occurred (403) when calling the HeadObject operation: Forbidden"
    )
    assert s3_artifacts.keys() == []


def _no_botocore_retries(settings, endpoint: str, bucket: str) -> None:
    use_s3_bucket(settings, endpoint, bucket)
    options = {
        **settings.STORAGES["artifacts"]["OPTIONS"],
        "client_config": Config(
            retries={"total_max_attempts": 1},
            s3={"addressing_style": "path"},
            signature_version="s3v4",
        ),
    }
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {**settings.STORAGES["artifacts"], "OPTIONS": options},
    }


def test_s3_endpoint_unreachable_is_retryable(settings):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    _no_botocore_retries(settings, endpoint, "torghut-unreachable")
    key = pdf_object_key(SHA)
    with pytest.raises(ObjectStoreError) as info:
        object_put(key, PDF, content_type="application/pdf")
    assert (info.value.reason, info.value.retryable) == ("storage_upload_failed", True)
    assert info.value.detail == (
        f"s3://torghut-unreachable/{key}: EndpointConnectionError: "
        f'Could not connect to the endpoint URL: "{endpoint}/torghut-unreachable/{key}"'
    )


class _S3Refusing(BaseHTTPRequestHandler):
    """An S3 endpoint whose HEAD finds no object and whose PUT fails with `answer`."""

    answer: tuple[int, str] = (503, "SlowDown")
    protocol_version = "HTTP/1.1"  # answers botocore's `Expect: 100-continue` at once

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_HEAD(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, code = self.answer
        body = f"<Error><Code>{code}</Code><Message>refused</Message></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (503, "SlowDown", True),
        (500, "InternalError", True),
        (502, "BadGateway", True),
        (400, "RequestTimeout", True),
        (403, "AccessDenied", False),
        (400, "InvalidArgument", False),
    ],
)
def test_s3_server_errors_are_retryable_client_errors_are_not(settings, status, code, retryable):
    handler = type("Handler", (_S3Refusing,), {"answer": (status, code)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _no_botocore_retries(settings, f"http://127.0.0.1:{server.server_address[1]}", "bucket")
        with pytest.raises(ObjectStoreError) as info:
            object_put(pdf_object_key(SHA), PDF, content_type="application/pdf")
    finally:
        server.shutdown()
        server.server_close()
    assert (info.value.reason, info.value.retryable) == ("storage_upload_failed", retryable)
    assert info.value.detail.startswith(f"s3://bucket/{pdf_object_key(SHA)}: ")
    assert info.value.detail.endswith(  # botocore's own retries are off here
        f"An error occurred ({code}) when calling the PutObject operation "
        "(reached max retries: 0): refused"
    )


def test_s3_describe(s3_artifacts):
    assert storage_describe() == {
        "backend": "s3",
        "bucket": s3_artifacts.bucket,
        "endpoint": s3_artifacts.endpoint,
    }


# -- filesystem -------------------------------------------------------------------------------


def test_fs_put_get_round_trip(fs_artifacts):
    key = pdf_object_key(SHA)
    stored = object_put(key, PDF, content_type="application/pdf")
    path = fs_artifacts.root / "raw" / "checksum" / SHA[:2] / SHA / "source.pdf"
    assert stored == StoredObject(
        bucket="local", key=key, etag=MD5, size=len(PDF), uri=path.as_uri()
    )
    assert path.read_bytes() == PDF
    assert object_get(key) == PDF
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_fs_second_put_keeps_one_file_and_no_temporaries(fs_artifacts):
    key = pdf_object_key(SHA)
    first = object_put(key, PDF, content_type="application/pdf")
    second = object_put(key, PDF, content_type="application/pdf")
    assert second == first
    directory = fs_artifacts.root / "raw" / "checksum" / SHA[:2] / SHA
    assert sorted(p.name for p in directory.iterdir()) == ["source.pdf"]
    assert sorted(
        str(p.relative_to(fs_artifacts.root)) for p in fs_artifacts.root.rglob("*") if p.is_file()
    ) == [key]


def test_fs_file_of_another_size_is_replaced(fs_artifacts):
    key = "raw/checksum/00/partial/source.pdf"
    object_put(key, PDF[:10], content_type="application/pdf")
    object_put(key, PDF, content_type="application/pdf")
    assert object_get(key) == PDF
    assert [p.name for p in (fs_artifacts.root / "raw/checksum/00/partial").iterdir()] == [
        "source.pdf"
    ]


def test_fs_url_is_a_file_uri_that_reads_back(fs_artifacts):
    key = pdf_object_key(SHA)
    object_put(key, PDF, content_type="application/pdf")
    url = object_url(key)
    assert url == (fs_artifacts.root / key).as_uri()
    with urllib.request.urlopen(url) as response:
        assert response.read() == PDF


def test_fs_get_of_a_missing_key(fs_artifacts):
    with pytest.raises(ObjectStoreError) as info:
        object_get("raw/none.pdf")
    assert info.value.reason == "storage_object_missing"
    assert info.value.detail == f"{fs_artifacts.root / 'raw/none.pdf'} does not exist"


def test_fs_unwritable_location(settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(blocker)},
        },
    }
    with pytest.raises(ObjectStoreError) as info:
        object_put(pdf_object_key(SHA), PDF, content_type="application/pdf")
    assert info.value.reason == "storage_upload_failed"
    assert info.value.detail.startswith(f"{blocker / pdf_object_key(SHA)}: ")


def test_fs_describe(fs_artifacts):
    assert storage_describe() == {
        "backend": "filesystem",
        "bucket": "local",
        "endpoint": None,
        "location": str(fs_artifacts.root),
    }


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "raw/../../escape.pdf", "raw//x.pdf", "raw/./x.pdf"]
)
def test_invalid_keys_are_refused(fs_artifacts, key):
    with pytest.raises(ObjectStoreError) as info:
        object_put(key, PDF, content_type="application/pdf")
    assert info.value.reason == "storage_key_invalid"
    assert not fs_artifacts.root.exists()


def test_unsupported_backend(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    with pytest.raises(ObjectStoreError) as info:
        object_put("raw/x.pdf", PDF, content_type="application/pdf")
    assert info.value.reason == "storage_unsupported"
