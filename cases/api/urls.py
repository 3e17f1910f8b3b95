"""Routes of the case domain (see API.md)."""

from django.urls import path

from cases.api import views

urlpatterns = [
    path("auth/token/", views.LoginView.as_view(), name="auth-token"),
    path("auth/logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("me/", views.MeView.as_view(), name="me"),
    path("users/", views.UserListView.as_view(), name="user-list"),
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
]
