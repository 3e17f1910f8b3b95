"""Routes of intercept ingest and analytics (see API.md, "Intercept ingest and analytics")."""

from django.urls import path

from intercept.api import views

urlpatterns = [
    path("ingest/conversations/", views.ConversationIngestView.as_view(), name="ingest-conversations"),
    path("ingest/ads/", views.AdIngestView.as_view(), name="ingest-ads"),
    path("conversations/", views.ConversationListView.as_view(), name="conversation-list"),
    path("conversations/<uuid:pk>/", views.ConversationDetailView.as_view(), name="conversation-detail"),
    path("conversations/<uuid:pk>/snapshot/", views.ConversationSnapshotView.as_view(), name="conversation-snapshot"),
    path("ads/", views.AdListView.as_view(), name="ad-list"),
    path("analytics/summary/", views.AnalyticsSummaryView.as_view(), name="analytics-summary"),
]
