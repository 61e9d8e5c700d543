"""Object-storage fixtures: a fresh bucket on the real Ceph RGW, or a temporary directory."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config


@dataclass
class S3Artifacts:
    bucket: str
    client: Any  # a boto3 S3 client on the same endpoint and credentials
    endpoint: str

    def keys(self, prefix: str = "") -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for item in listing.get("Contents", [])]


@dataclass
class FsArtifacts:
    root: Path


def s3_options(endpoint: str, bucket: str) -> dict[str, Any]:
    """The OPTIONS torghut_site/settings/storage.py gives S3Storage, for `bucket` on `endpoint`."""
    return {
        "endpoint_url": endpoint,
        "access_key": os.environ.get("TEST_S3_ACCESS_KEY", ""),
        "secret_key": os.environ.get("TEST_S3_SECRET_KEY", ""),
        "bucket_name": bucket,
        "region_name": "us-east-1",
        "addressing_style": "path",
        "signature_version": "s3v4",
        "file_overwrite": False,
        "querystring_expire": 600,
    }


def use_s3_bucket(settings, endpoint: str, bucket: str) -> None:
    """Point STORAGES["artifacts"] at `bucket` (the storages registry resets on the change)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": s3_options(endpoint, bucket),
        },
    }
    settings.WHITEPAPER_CEPH_ENDPOINT = endpoint
    settings.WHITEPAPER_CEPH_BUCKET = bucket


@pytest.fixture
def s3_client() -> Any:
    endpoint = os.environ.get("TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.fail("TEST_S3_ENDPOINT is not set: run the suite through `make test`")
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=os.environ.get("TEST_S3_ACCESS_KEY"),
        aws_secret_access_key=os.environ.get("TEST_S3_SECRET_KEY"),
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


@pytest.fixture
def s3_artifacts(settings, s3_client) -> Iterator[S3Artifacts]:
    """A new, uniquely named bucket on the real RGW as the artifacts storage; removed afterwards."""
    endpoint = os.environ["TEST_S3_ENDPOINT"]
    bucket = f"torghut-test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=bucket)
    use_s3_bucket(settings, endpoint, bucket)
    try:
        yield S3Artifacts(bucket=bucket, client=s3_client, endpoint=endpoint)
    finally:
        paginator = s3_client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                s3_client.delete_object(Bucket=bucket, Key=item["Key"])
        s3_client.delete_bucket(Bucket=bucket)


@pytest.fixture
def fs_artifacts(settings, tmp_path) -> FsArtifacts:
    root = tmp_path / "artifacts"
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    return FsArtifacts(root=root)


# -- the workflow: PDF host, Jangar, bucket, eager Celery -----------------------------------------


def allow_loopback_pdf_host(settings) -> None:
    """The test-only allowance: PDFs may come from the loopback test servers (127.0.0.1).

    Production cannot do this: OUTBOUND_TEST_ALLOW_LOOPBACK is no environment variable and
    settings.py never defines it (whitepapers/pdf.py::pdf_fetch_policy reads it).
    """
    settings.OUTBOUND_TEST_ALLOW_LOOPBACK = True
    settings.WHITEPAPER_PDF_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def workflow(settings, s3_artifacts, eager_celery) -> Iterator[Any]:
    from tests.servers.jangar_server import JangarServer
    from whitepapers.tests.workflow import PaperHost, Workflow

    host = PaperHost()
    jangar = JangarServer()
    host.start()
    jangar.start()
    settings.WHITEPAPER_WORKFLOW_ENABLED = True
    settings.WHITEPAPER_WORKFLOW_API_TOKEN = "wp-control-token"
    settings.JANGAR_API_KEY = ""
    settings.WHITEPAPER_AGENTRUN_SUBMIT_URL = f"{jangar.url}/v1/agent-runs"
    settings.WHITEPAPER_AGENTRUN_TIMEOUT_SECONDS = 0.5
    settings.WHITEPAPER_AGENTRUN_MAX_ATTEMPTS = 3
    settings.WHITEPAPER_AGENTRUN_BACKOFF_SECONDS = 0.01
    settings.WHITEPAPER_DOWNLOAD_TIMEOUT_SECONDS = 5
    allow_loopback_pdf_host(settings)
    try:
        yield Workflow(host=host, jangar=jangar, bucket=s3_artifacts.bucket, s3=s3_artifacts.client)
    finally:
        host.stop()
        jangar.stop()


@pytest.fixture
def control() -> Any:
    """An API client holding the workflow token."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer wp-control-token")
    return client
