"""Top-level routes: the API, its schema and docs, health probes, and the admin."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from caseapi import health

urlpatterns = [
    path("api/", include("cases.api.urls")),
    path("api/", include("audit.api.urls")),
    path("api/", include("intercept.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its init script from this URL (`?script`): no inline script, so the
    # docs page runs under a Content-Security-Policy without 'unsafe-inline' (caseapi.security).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
]

handler404 = "caseapi.security.not_found"
handler500 = "caseapi.security.server_error"
