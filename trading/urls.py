from django.urls import path

from trading import apis, apis_lists, apis_live_approvals

urlpatterns = [
    path("status", apis.StatusApi.as_view(), name="trading-status"),
    path("health", apis.HealthApi.as_view(), name="trading-health"),
    path("metrics", apis.MetricsApi.as_view(), name="trading-metrics"),
    path("decisions", apis_lists.DecisionListApi.as_view(), name="trading-decisions"),
    path("decisions/<str:id>", apis_lists.DecisionDetailApi.as_view(), name="trading-decision"),
    path("executions", apis_lists.ExecutionListApi.as_view(), name="trading-executions"),
    path("executions/<str:id>", apis_lists.ExecutionDetailApi.as_view(), name="trading-execution"),
    path("tca", apis_lists.TcaListApi.as_view(), name="trading-tca"),
    path("llm-evaluation", apis.LlmEvaluationApi.as_view(), name="trading-llm-evaluation"),
    path("books", apis.BooksApi.as_view(), name="trading-books"),
    path("kill-switch", apis.KillSwitchApi.as_view(), name="trading-kill-switch"),
    path(
        "live-approvals",
        apis_live_approvals.LiveApprovalListApi.as_view(),
        name="trading-live-approvals",
    ),
    path(
        "live-approvals/<str:id>/approve",
        apis_live_approvals.LiveApprovalApproveApi.as_view(),
        name="trading-live-approval-approve",
    ),
    path(
        "live-approvals/<str:id>/revoke",
        apis_live_approvals.LiveApprovalRevokeApi.as_view(),
        name="trading-live-approval-revoke",
    ),
    path(
        "emergency-stop/clear",
        apis.EmergencyStopClearApi.as_view(),
        name="trading-emergency-stop-clear",
    ),
]
