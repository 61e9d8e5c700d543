from django.urls import path

from whitepapers import apis

urlpatterns = [
    path("status", apis.StatusApi.as_view(), name="whitepapers-status"),
    path("events/github-issue", apis.IssueEventApi.as_view(), name="whitepapers-github-issue"),
    path("webhooks/github", apis.GithubWebhookApi.as_view(), name="whitepapers-github-webhook"),
    path("runs/<str:run_id>", apis.RunDetailApi.as_view(), name="whitepapers-run"),
    path(
        "runs/<str:run_id>/dispatch-agentrun",
        apis.DispatchApi.as_view(),
        name="whitepapers-run-dispatch",
    ),
    path("runs/<str:run_id>/finalize", apis.FinalizeApi.as_view(), name="whitepapers-run-finalize"),
]
