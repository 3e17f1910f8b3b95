"""Encrypt the buyer details and message bodies written before encryption (batched; messages
are append-only, so their triggers are lifted inside each batch's transaction only); the way
back opens them again."""

from django.db import migrations

from caseapi.fields import reseal_column

COLUMNS = [("intercept_conversation", "id", "buyer", False), ("intercept_message", "id", "body", True)]


def encrypt(apps, schema_editor):
    for table, pk, column, append_only in COLUMNS:
        reseal_column(table, pk, column, using=schema_editor.connection.alias, append_only=append_only)


def decrypt(apps, schema_editor):
    for table, pk, column, append_only in COLUMNS:
        reseal_column(
            table, pk, column, using=schema_editor.connection.alias, append_only=append_only, to_plaintext=True
        )


class Migration(migrations.Migration):
    dependencies = [("intercept", "0003_encrypt_personal_data")]

    operations = [migrations.RunPython(encrypt, decrypt)]
