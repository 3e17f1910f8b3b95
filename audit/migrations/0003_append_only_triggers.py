"""Database triggers: the audit table refuses UPDATE, DELETE (and TRUNCATE on PostgreSQL)."""

from django.db import migrations

from caseapi.appendonly import append_only_trigger_sql, drop_append_only_trigger_sql, run_sql_builder


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_initial")]

    operations = [
        migrations.RunPython(
            run_sql_builder(append_only_trigger_sql, "audit_auditevent"),
            run_sql_builder(drop_append_only_trigger_sql, "audit_auditevent"),
        ),
    ]
