"""Object storage (Ceph RGW / S3) for whitepapers and research artifacts, and STORAGES."""

from __future__ import annotations

from typing import Any

from torghut_site.settings.base import VAR_DIR, env

# --------------------------------------------------------------------------------------------
# Object storage (Ceph RGW / S3) for whitepapers and research artifacts
# --------------------------------------------------------------------------------------------
WHITEPAPER_CEPH_ENDPOINT = env.str("WHITEPAPER_CEPH_ENDPOINT")
# the original's alternative: an ObjectBucketClaim's BUCKET_HOST/BUCKET_PORT (+ USE_TLS)
_bucket_host = env.str("WHITEPAPER_CEPH_BUCKET_HOST", "BUCKET_HOST")
if not WHITEPAPER_CEPH_ENDPOINT and _bucket_host:
    _bucket_port = env.int("WHITEPAPER_CEPH_BUCKET_PORT", "BUCKET_PORT", default=0, min_value=0)
    _scheme = "https" if env.bool("WHITEPAPER_CEPH_USE_TLS", default=False) else "http"
    WHITEPAPER_CEPH_ENDPOINT = f"{_scheme}://{_bucket_host}" + (
        f":{_bucket_port}" if _bucket_port else ""
    )
WHITEPAPER_CEPH_ACCESS_KEY = env.secret("WHITEPAPER_CEPH_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
WHITEPAPER_CEPH_SECRET_KEY = env.secret("WHITEPAPER_CEPH_SECRET_KEY", "AWS_SECRET_ACCESS_KEY")
WHITEPAPER_CEPH_REGION = env.str("WHITEPAPER_CEPH_REGION", default="us-east-1")
WHITEPAPER_CEPH_BUCKET = env.str(
    "WHITEPAPER_CEPH_BUCKET", "BUCKET_NAME", default="torghut-whitepapers"
)
WHITEPAPER_CEPH_TIMEOUT_SECONDS = env.float(
    "WHITEPAPER_CEPH_TIMEOUT_SECONDS", default=20.0, min_value=0.1
)
OBJECT_STORAGE_ENABLED = bool(WHITEPAPER_CEPH_ENDPOINT)

STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # served by WhiteNoise from STATIC_ROOT (collectstatic), compressed and cache-busted
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    # research and whitepaper artifacts: S3 when an endpoint is configured, else var/artifacts
    "artifacts": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "artifacts")},
    },
}
if OBJECT_STORAGE_ENABLED:
    from botocore.config import Config as BotoConfig

    STORAGES["artifacts"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "endpoint_url": WHITEPAPER_CEPH_ENDPOINT,
            "access_key": WHITEPAPER_CEPH_ACCESS_KEY,
            "secret_key": WHITEPAPER_CEPH_SECRET_KEY,
            "bucket_name": WHITEPAPER_CEPH_BUCKET,
            "region_name": WHITEPAPER_CEPH_REGION,
            "addressing_style": "path",
            "signature_version": "s3v4",
            "file_overwrite": False,
            "querystring_expire": 600,
            # explicit timeouts (botocore's default read timeout is 60 s) and bounded retries
            "client_config": BotoConfig(
                connect_timeout=WHITEPAPER_CEPH_TIMEOUT_SECONDS,
                read_timeout=WHITEPAPER_CEPH_TIMEOUT_SECONDS,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"},
                signature_version="s3v4",
            ),
        },
    }
