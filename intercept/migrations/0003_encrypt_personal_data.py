"""Buyer details and message bodies encrypted at rest. A message body stays a text column (the
change is the field's, not the table's: no rebuild, so the append-only triggers stay)."""

from django.db import migrations

import caseapi.fields


class Migration(migrations.Migration):
    dependencies = [("intercept", "0002_append_only_triggers")]

    operations = [
        migrations.AlterField(
            model_name="conversation",
            name="buyer",
            field=caseapi.fields.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="message", name="body", field=caseapi.fields.EncryptedTextField(blank=True)
                ),
            ],
        ),
    ]
