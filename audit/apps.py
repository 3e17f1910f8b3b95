"""App config for the audit log."""

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate, pre_migrate

        from audit import checks  # noqa: F401 - registers the system checks
        from caseapi.migrating import lift_statement_timeout, restore_statement_timeout

        # Every app's migrations, connected here once: the audit log's are the longest.
        pre_migrate.connect(lift_statement_timeout, dispatch_uid="caseapi.migrating.lift_statement_timeout")
        post_migrate.connect(restore_statement_timeout, dispatch_uid="caseapi.migrating.restore_statement_timeout")
