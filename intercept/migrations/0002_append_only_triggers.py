"""Database triggers: chat messages and transcript snapshots are append-only."""

from django.db import migrations

from caseapi.appendonly import append_only_trigger_sql, drop_append_only_trigger_sql, run_sql_builder


class Migration(migrations.Migration):
    dependencies = [("intercept", "0001_initial")]

    operations = [
        migrations.RunPython(
            run_sql_builder(append_only_trigger_sql, "intercept_message"),
            run_sql_builder(drop_append_only_trigger_sql, "intercept_message"),
        ),
        migrations.RunPython(
            run_sql_builder(append_only_trigger_sql, "intercept_transcriptsnapshot"),
            run_sql_builder(drop_append_only_trigger_sql, "intercept_transcriptsnapshot"),
        ),
    ]
