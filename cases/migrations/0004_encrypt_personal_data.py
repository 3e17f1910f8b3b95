"""Personal data encrypted at rest: lead names and notes, identifier values (found from now on
by their keyed blind index, `value_index`, which replaces the value in the unique constraint)."""

import django.core.validators
from django.db import migrations, models

import caseapi.fields


class Migration(migrations.Migration):
    dependencies = [("cases", "0003_handoffs")]

    operations = [
        migrations.AlterModelOptions(name="identifier", options={"ordering": ["kind", "id"]}),
        migrations.RemoveConstraint(model_name="identifier", name="identifier_kind_value_uniq"),
        migrations.AddField(
            model_name="identifier",
            name="value_index",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.AlterField(model_name="identifier", name="value", field=caseapi.fields.EncryptedTextField()),
        migrations.AlterField(
            model_name="lead",
            name="display_name",
            field=caseapi.fields.EncryptedTextField(
                blank=True, validators=[django.core.validators.MaxLengthValidator(200)]
            ),
        ),
        migrations.AlterField(model_name="lead", name="notes", field=caseapi.fields.EncryptedTextField(blank=True)),
    ]
