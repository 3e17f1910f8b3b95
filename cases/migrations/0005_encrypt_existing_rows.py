"""Encrypt the rows written before encryption (batched) and fill the identifiers' blind index;
the way back opens them again."""

from django.db import migrations

from caseapi.fields import reseal_column
from cases.identifiers import identifiers_reindex

COLUMNS = [("cases_lead", "id", "display_name"), ("cases_lead", "id", "notes"), ("cases_identifier", "id", "value")]


def encrypt(apps, schema_editor):
    using = schema_editor.connection.alias
    for table, pk, column in COLUMNS:
        reseal_column(table, pk, column, using=using)
    identifiers_reindex(using=using)


def decrypt(apps, schema_editor):
    using = schema_editor.connection.alias
    for table, pk, column in COLUMNS:
        reseal_column(table, pk, column, using=using, to_plaintext=True)


class Migration(migrations.Migration):
    dependencies = [("cases", "0004_encrypt_personal_data")]

    operations = [migrations.RunPython(encrypt, decrypt)]
