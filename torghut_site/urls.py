from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from torghut_site import apis
from torghut_site.login_guard import LockoutAwareAuthenticationForm
from torghut_site.metrics import metrics_view

admin.site.site_header = "torghut"
admin.site.site_title = "torghut"
admin.site.index_title = "torghut operations"
admin.site.login_form = LockoutAwareAuthenticationForm

urlpatterns = [
    path("", apis.RootApi.as_view(), name="root"),
    path("healthz", apis.HealthzApi.as_view(), name="healthz"),
    path("db-check", apis.DbCheckApi.as_view(), name="db-check"),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("trading/", include("trading.urls")),
    # the research loop's status keeps the original's path, /trading/autonomy
    path("trading/", include("autonomy.urls_trading")),
    path("whitepapers/", include("whitepapers.urls")),
    path("autonomy/", include("autonomy.urls")),
]
