"""Every identifier has its blind index now: required, and unique."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("cases", "0005_encrypt_existing_rows")]

    operations = [
        migrations.AlterField(
            model_name="identifier",
            name="value_index",
            field=models.CharField(editable=False, max_length=64),
        ),
        migrations.AddConstraint(
            model_name="identifier",
            constraint=models.UniqueConstraint(fields=("value_index",), name="identifier_value_index_uniq"),
        ),
    ]
