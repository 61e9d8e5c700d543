"""`GET /trading/autonomy/evidence-continuity` only reads; the audit runs on an authorised POST.

Before, a GET with `refresh=true` (or any GET before the first audit) ran the audit and wrote a
report: a read-only caller, a crawler or a prefetching browser could write rows.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from rest_framework.test import APIClient

from autonomy.models import EvidenceContinuityReport
from autonomy.services.governance import evidence_continuity_check

pytestmark = pytest.mark.django_db

URL = "/trading/autonomy/evidence-continuity"
REFRESH = "/trading/autonomy/evidence-continuity/refresh"


@pytest.fixture(autouse=True)
def _fresh_throttles():
    cache.clear()
    yield
    cache.clear()


def client_with(username: str, *codenames: str) -> APIClient:
    user = get_user_model().objects.create_user(username, password=f"pw-{username}-123")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(pk=user.pk))
    return client


def test_a_get_never_writes_even_with_refresh():
    reader = client_with("continuity-reader")
    for query in ("", "?refresh=true", "?refresh=1&run_limit=5"):
        response = reader.get(URL + query)
        assert response.status_code in (400, 404), (query, response.status_code)
    assert EvidenceContinuityReport.objects.count() == 0

    refused = reader.get(URL + "?refresh=true")
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "code": "refresh_requires_post",
        "message": f"a GET never runs the audit: POST {REFRESH} to run one",
        "details": None,
    }
    missing = reader.get(URL)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "no_continuity_report")

    evidence_continuity_check()
    assert reader.get(URL).json()["refreshed"] is False
    assert reader.get(URL + "?refresh=true").status_code == 400
    assert reader.get(URL + "?refresh=false").json()["refreshed"] is False
    # a boolean is `true` or `false` exactly, as the schema writes it
    not_boolean = reader.get(URL + "?refresh=1")
    assert (not_boolean.status_code, list(not_boolean.json()["error"]["details"])) == (
        400,
        ["refresh"],
    )
    assert EvidenceContinuityReport.objects.count() == 1


def test_refresh_needs_the_add_permission_and_writes_nothing_when_refused():
    anonymous = APIClient().post(REFRESH, {}, format="json")
    assert anonymous.status_code == 401
    reader = client_with("continuity-no-perm", "view_evidencecontinuityreport")
    denied = reader.post(REFRESH, {}, format="json")
    assert denied.status_code == 403
    assert denied.json()["error"] == {
        "code": "permission_denied",
        "message": (
            "refreshing the audit needs the permission autonomy.add_evidencecontinuityreport"
        ),
        "details": None,
    }
    assert EvidenceContinuityReport.objects.count() == 0


def test_refresh_with_the_permission_records_one_audit_naming_the_user():
    auditor = client_with("continuity-auditor", "add_evidencecontinuityreport")
    response = auditor.post(REFRESH, {"run_limit": 7}, format="json")
    assert response.status_code == 201
    assert (response.json()["refreshed"], response.json()["run_limit"]) == (True, 7)
    report = EvidenceContinuityReport.objects.get()
    assert (report.run_limit, report.report["requested_by"]) == (7, "continuity-auditor")
