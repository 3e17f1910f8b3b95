"""Evidence in the list's order across every case, with each item's case in the index
(PostgreSQL; elsewhere the index has the order alone): the page of a wide scope (a
supervisor's 40,000 items at scale 1) is found by walking this index until the page is full
(selectors.walked_page), instead of reading every item of the scope and sorting them."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("cases", "0007_evidence_keys_index")]

    operations = [
        migrations.AddIndex(
            model_name="evidenceitem",
            index=models.Index(fields=["-created_at", "id"], include=["case"], name="evidence_created_id_idx"),
        ),
    ]
