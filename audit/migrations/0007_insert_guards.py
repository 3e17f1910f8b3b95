"""Guards on INSERT: an audit event is always inserted unsealed (only the sequencer seals),
tree nodes only by the sequencer's batch; and the chain head refuses TRUNCATE on PostgreSQL."""

from django.db import migrations

from caseapi.appendonly import run_sql_builder


def guard_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [
            """
            CREATE OR REPLACE FUNCTION audit_auditevent_insert_unsealed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.seq IS NOT NULL OR NEW.prev_hash <> '' OR NEW.entry_hash <> '' OR NEW.sealed_at IS NOT NULL THEN
                    RAISE EXCEPTION 'audit_auditevent: events are inserted unsealed; only the sequencer seals'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END;
            $$;
            """,
            "DROP TRIGGER IF EXISTS audit_auditevent_insert_unsealed ON audit_auditevent;",
            "CREATE TRIGGER audit_auditevent_insert_unsealed BEFORE INSERT ON audit_auditevent "
            "FOR EACH ROW EXECUTE FUNCTION audit_auditevent_insert_unsealed();",
            "DROP TRIGGER IF EXISTS audit_chainhead_no_truncate ON audit_chainhead;",
            "CREATE TRIGGER audit_chainhead_no_truncate BEFORE TRUNCATE ON audit_chainhead "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_chainhead_guard();",
        ]
    return [
        "DROP TRIGGER IF EXISTS audit_auditevent_insert_unsealed;",
        "CREATE TRIGGER audit_auditevent_insert_unsealed BEFORE INSERT ON audit_auditevent "
        "WHEN NEW.seq IS NOT NULL OR NEW.prev_hash <> '' OR NEW.entry_hash <> '' OR NEW.sealed_at IS NOT NULL "
        "BEGIN SELECT RAISE(ABORT, 'audit_auditevent: events are inserted unsealed; only the sequencer seals'); END;",
    ]


def drop_guard_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [
            "DROP TRIGGER IF EXISTS audit_auditevent_insert_unsealed ON audit_auditevent;",
            "DROP FUNCTION IF EXISTS audit_auditevent_insert_unsealed();",
            "DROP TRIGGER IF EXISTS audit_chainhead_no_truncate ON audit_chainhead;",
        ]
    return ["DROP TRIGGER IF EXISTS audit_auditevent_insert_unsealed;"]


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_handoff_actions")]

    operations = [migrations.RunPython(run_sql_builder(guard_sql), run_sql_builder(drop_guard_sql))]
