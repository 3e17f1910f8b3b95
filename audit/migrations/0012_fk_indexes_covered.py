"""The audit table's single-column indexes on actor and agency go: the (actor, id) and
(agency, id) indexes serve every lookup they served, and each index less is work less for
every INSERT of an event.

Only the two indexes are dropped. Django would alter the fields by copying the table on
SQLite, which would take the append-only triggers with the old table."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

DROP = [
    'DROP INDEX IF EXISTS "audit_auditevent_actor_id_270bb4b7"',
    'DROP INDEX IF EXISTS "audit_auditevent_agency_id_219033f1"',
]
CREATE = [
    'CREATE INDEX IF NOT EXISTS "audit_auditevent_actor_id_270bb4b7" ON "audit_auditevent" ("actor_id")',
    'CREATE INDEX IF NOT EXISTS "audit_auditevent_agency_id_219033f1" ON "audit_auditevent" ("agency_id")',
]


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0011_canonical_json_compact"),
        ("cases", "0006_identifier_value_index_unique"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(DROP, CREATE, elidable=False)],
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="actor",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="auditevent",
                    name="agency",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="cases.agency",
                    ),
                ),
            ],
        )
    ]
