"""App config for intercept ingest and analytics."""

from django.apps import AppConfig


class InterceptConfig(AppConfig):
    name = "intercept"
    verbose_name = "Intercept ingest"
    default_auto_field = "django.db.models.BigAutoField"
