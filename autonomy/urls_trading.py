"""The research loop's status under the original's paths, `/trading/autonomy...`.

Mounted under `/trading/` by `torghut_site/urls.py` (beside `trading.urls`), so trading's own
URL module does not import autonomy; the ledger and promotion actions are in `autonomy/urls.py`
under `/autonomy/`."""

from django.urls import path

from autonomy import apis

urlpatterns = [
    path("autonomy", apis.AutonomyStatusApi.as_view(), name="trading-autonomy"),
    path(
        "autonomy/evidence-continuity",
        apis.EvidenceContinuityApi.as_view(),
        name="trading-autonomy-evidence-continuity",
    ),
    path(
        "autonomy/evidence-continuity/refresh",
        apis.EvidenceContinuityRefreshApi.as_view(),
        name="trading-autonomy-evidence-continuity-refresh",
    ),
]
