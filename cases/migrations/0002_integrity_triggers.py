"""Database triggers: custody events are append-only; an evidence item's hash, size and
content location never change after intake."""

from django.db import migrations

from caseapi.appendonly import (
    append_only_trigger_sql,
    drop_append_only_trigger_sql,
    drop_immutable_columns_trigger_sql,
    immutable_columns_trigger_sql,
    run_sql_builder,
)

EVIDENCE_IMMUTABLE = ["sha256", "size_bytes", "content_name", "external_uri", "case_id"]


class Migration(migrations.Migration):
    dependencies = [("cases", "0001_initial")]

    operations = [
        migrations.RunPython(
            run_sql_builder(append_only_trigger_sql, "cases_custodyevent"),
            run_sql_builder(drop_append_only_trigger_sql, "cases_custodyevent"),
        ),
        migrations.RunPython(
            run_sql_builder(immutable_columns_trigger_sql, "cases_evidenceitem", EVIDENCE_IMMUTABLE),
            run_sql_builder(drop_immutable_columns_trigger_sql, "cases_evidenceitem"),
        ),
    ]
