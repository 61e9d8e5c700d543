"""URLs of the research ledger and promotion actions, mounted under `/autonomy/`.
The loop's status keeps the original's path, `/trading/autonomy` (`autonomy/urls_trading.py`,
mounted by `torghut_site/urls.py`)."""

from django.urls import path

from autonomy import apis

urlpatterns = [
    path("runs", apis.RunListApi.as_view(), name="autonomy-runs"),
    path("runs/<str:run_id>", apis.RunDetailApi.as_view(), name="autonomy-run"),
    path(
        "candidates/<str:candidate_id>",
        apis.CandidateDetailApi.as_view(),
        name="autonomy-candidate",
    ),
    path(
        "candidates/<str:candidate_id>/promote",
        apis.CandidatePromoteApi.as_view(),
        name="autonomy-candidate-promote",
    ),
    path(
        "candidates/<str:candidate_id>/deny",
        apis.CandidateDenyApi.as_view(),
        name="autonomy-candidate-deny",
    ),
    path(
        "candidates/<str:candidate_id>/demote",
        apis.CandidateDemoteApi.as_view(),
        name="autonomy-candidate-demote",
    ),
    path(
        "candidates/<str:candidate_id>/rollback",
        apis.CandidateRollbackApi.as_view(),
        name="autonomy-candidate-rollback",
    ),
]
