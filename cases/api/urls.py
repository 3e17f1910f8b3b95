"""Routes of the case domain (see API.md)."""

from django.urls import path

from cases.api import views

urlpatterns = [
    path("auth/token/", views.LoginView.as_view(), name="auth-token"),
    path("auth/logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("me/", views.MeView.as_view(), name="me"),
    path("users/", views.UserListView.as_view(), name="user-list"),
    path("prosecutors/", views.ProsecutorListView.as_view(), name="prosecutor-list"),
    path("cases/", views.CaseListCreateView.as_view(), name="case-list"),
    path("cases/<uuid:pk>/", views.CaseDetailView.as_view(), name="case-detail"),
    path("cases/<uuid:pk>/team/", views.CaseTeamView.as_view(), name="case-team"),
    path("cases/<uuid:pk>/team/<int:user_id>/", views.CaseTeamMemberView.as_view(), name="case-team-member"),
    path("leads/", views.LeadListCreateView.as_view(), name="lead-list"),
    path("leads/<uuid:pk>/", views.LeadDetailView.as_view(), name="lead-detail"),
    path("deconfliction/check/", views.DeconflictionCheckView.as_view(), name="deconfliction-check"),
    path("evidence/", views.EvidenceListCreateView.as_view(), name="evidence-list"),
    path("evidence/<uuid:pk>/", views.EvidenceDetailView.as_view(), name="evidence-detail"),
    path("evidence/<uuid:pk>/content/", views.EvidenceContentView.as_view(), name="evidence-content"),
    path("evidence/<uuid:pk>/custody/", views.CustodyListCreateView.as_view(), name="evidence-custody"),
    path("evidence/<uuid:pk>/verify/", views.EvidenceVerifyView.as_view(), name="evidence-verify"),
    path("handoffs/", views.HandoffListCreateView.as_view(), name="handoff-list"),
    path("handoffs/<uuid:pk>/", views.HandoffDetailView.as_view(), name="handoff-detail"),
    path("handoffs/<uuid:pk>/submit/", views.HandoffSubmitView.as_view(), name="handoff-submit"),
    path("handoffs/<uuid:pk>/review/", views.HandoffReviewView.as_view(), name="handoff-review"),
    path("handoffs/<uuid:pk>/acknowledge/", views.HandoffAcknowledgeView.as_view(), name="handoff-acknowledge"),
    path("handoffs/<uuid:pk>/decision/", views.HandoffDecisionView.as_view(), name="handoff-decision"),
    path("handoffs/<uuid:pk>/packets/", views.HandoffPacketsView.as_view(), name="handoff-packets"),
    path("packets/<uuid:pk>/", views.PacketDetailView.as_view(), name="packet-detail"),
    path("packets/<uuid:pk>/download/", views.PacketDownloadView.as_view(), name="packet-download"),
]
