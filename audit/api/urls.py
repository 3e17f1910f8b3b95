"""Routes of the audit log API (API.md, "Audit")."""

from django.urls import path

from audit.api import views

urlpatterns = [
    path("audit/events/", views.AuditEventListView.as_view(), name="audit-event-list"),
    path("audit/events/<int:seq>/proof/", views.InclusionProofView.as_view(), name="audit-event-proof"),
    path("audit/checkpoints/", views.CheckpointCreateView.as_view(), name="audit-checkpoint-create"),
    path("audit/checkpoints/latest/", views.LatestCheckpointView.as_view(), name="audit-checkpoint-latest"),
    path("audit/checkpoints/key/", views.VerifierKeyView.as_view(), name="audit-checkpoint-key"),
    path("audit/consistency/", views.ConsistencyProofView.as_view(), name="audit-consistency"),
    path("audit/verify/", views.VerifyView.as_view(), name="audit-verify"),
]
