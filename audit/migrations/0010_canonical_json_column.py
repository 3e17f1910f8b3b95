"""PostgreSQL: each audit event's canonical JSON in a stored generated column, which
verification hashes instead of rebuilding it event by event (audit.canonical_sql). The
database computes it from the row's own columns on every write; nobody can set it."""

from django.db import migrations

from audit import canonical_sql


def add_column(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(canonical_sql.ADD_COLUMN)


def drop_column(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(canonical_sql.DROP_COLUMN)


class Migration(migrations.Migration):
    dependencies = [("audit", "0009_field_keys_action")]

    operations = [migrations.RunPython(add_column, drop_column, elidable=False)]
