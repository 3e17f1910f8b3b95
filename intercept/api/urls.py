"""Routes of intercept ingest and analytics."""

urlpatterns: list = []
