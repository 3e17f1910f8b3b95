"""Triggers for the chain: audit events accept exactly the sequencer's sealing UPDATE; tree
nodes and checkpoints are append-only; the chain head never shrinks and is never deleted.
Also creates the chain head row."""

from django.db import migrations

from caseapi.appendonly import (
    append_only_trigger_sql,
    drop_append_only_trigger_sql,
    run_sql_builder,
    sealable_trigger_sql,
)

EVENT_FIXED_COLUMNS = [
    "id",
    "created_at",
    "actor_id",
    "actor_name",
    "agency_id",
    "action",
    "target_type",
    "target_id",
    "case_id",
    "changes",
    "request_id",
    "ip",
    "user_agent",
]


def head_guard_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [
            """
            CREATE OR REPLACE FUNCTION audit_chainhead_guard() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'UPDATE' AND NEW.size >= OLD.size THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION 'audit_chainhead: the chain never shrinks (% refused)', TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END;
            $$;
            """,
            "DROP TRIGGER IF EXISTS audit_chainhead_guard ON audit_chainhead;",
            "CREATE TRIGGER audit_chainhead_guard BEFORE UPDATE OR DELETE ON audit_chainhead "
            "FOR EACH ROW EXECUTE FUNCTION audit_chainhead_guard();",
        ]
    return [
        "DROP TRIGGER IF EXISTS audit_chainhead_no_shrink;",
        "CREATE TRIGGER audit_chainhead_no_shrink BEFORE UPDATE ON audit_chainhead WHEN NEW.size < OLD.size "
        "BEGIN SELECT RAISE(ABORT, 'audit_chainhead: the chain never shrinks'); END;",
        "DROP TRIGGER IF EXISTS audit_chainhead_no_delete;",
        "CREATE TRIGGER audit_chainhead_no_delete BEFORE DELETE ON audit_chainhead "
        "BEGIN SELECT RAISE(ABORT, 'audit_chainhead: the chain never shrinks'); END;",
    ]


def drop_head_guard_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [
            "DROP TRIGGER IF EXISTS audit_chainhead_guard ON audit_chainhead;",
            "DROP FUNCTION IF EXISTS audit_chainhead_guard();",
        ]
    return ["DROP TRIGGER IF EXISTS audit_chainhead_no_shrink;", "DROP TRIGGER IF EXISTS audit_chainhead_no_delete;"]


def create_head(apps, schema_editor):
    apps.get_model("audit", "ChainHead").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_chain_tree_checkpoints")]

    operations = [
        migrations.RunPython(
            run_sql_builder(sealable_trigger_sql, "audit_auditevent", EVENT_FIXED_COLUMNS),
            run_sql_builder(append_only_trigger_sql, "audit_auditevent"),
        ),
        migrations.RunPython(
            run_sql_builder(append_only_trigger_sql, "audit_treenode"),
            run_sql_builder(drop_append_only_trigger_sql, "audit_treenode"),
        ),
        migrations.RunPython(
            run_sql_builder(append_only_trigger_sql, "audit_checkpoint"),
            run_sql_builder(drop_append_only_trigger_sql, "audit_checkpoint"),
        ),
        migrations.RunPython(create_head, migrations.RunPython.noop),
        migrations.RunPython(run_sql_builder(head_guard_sql), run_sql_builder(drop_head_guard_sql)),
    ]
