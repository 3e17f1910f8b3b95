"""Append-only building blocks: a model and queryset that refuse update and delete, and the
database triggers that refuse them below the ORM (PostgreSQL and SQLite).

The ORM guard stops honest mistakes; the triggers stop raw SQL. Neither stops a database
superuser who disables triggers: the audit chain and signed checkpoints catch that.
"""

from __future__ import annotations

from typing import Any

from django.db import models


class AppendOnlyError(Exception):
    """Raised on any attempt to change or remove an append-only row through the ORM."""


APPEND_ONLY_MESSAGE = "append-only: rows can be added, never changed or removed"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError(APPEND_ONLY_MESSAGE)

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(APPEND_ONLY_MESSAGE)

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        raise AppendOnlyError(APPEND_ONLY_MESSAGE)


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError(APPEND_ONLY_MESSAGE)
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError(APPEND_ONLY_MESSAGE)


def _pg_function(table: str) -> str:
    return f"{table}_append_only"


def append_only_trigger_sql(table: str, vendor: str) -> list[str]:
    """SQL statements that make `table` refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL)."""
    if vendor == "postgresql":
        fn = _pg_function(table)
        return [
            f"""
            CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{table} is append-only: % refused', TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END;
            $$;
            """,
            f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table};",
            f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {fn}();",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {fn}();",
        ]
    if vendor == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {table}_no_update;",
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END;",
            f"DROP TRIGGER IF EXISTS {table}_no_delete;",
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END;",
        ]
    raise NotImplementedError(f"append-only triggers are not written for {vendor}")


def drop_append_only_trigger_sql(table: str, vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table};",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};",
            f"DROP FUNCTION IF EXISTS {_pg_function(table)}();",
        ]
    if vendor == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {table}_no_update;",
            f"DROP TRIGGER IF EXISTS {table}_no_delete;",
        ]
    raise NotImplementedError(f"append-only triggers are not written for {vendor}")


def immutable_columns_trigger_sql(table: str, columns: list[str], vendor: str) -> list[str]:
    """SQL that refuses any UPDATE changing one of `columns` (other columns stay writable)."""
    name = f"{table}_immutable_columns"
    if vendor == "postgresql":
        changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in columns)
        return [
            f"""
            CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF {changed} THEN
                    RAISE EXCEPTION '{table}: {", ".join(columns)} never change after intake'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END;
            $$;
            """,
            f"DROP TRIGGER IF EXISTS {name} ON {table};",
            f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {name}();",
        ]
    if vendor == "sqlite":
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)
        return [
            f"DROP TRIGGER IF EXISTS {name};",
            f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} WHEN {changed} "
            f"BEGIN SELECT RAISE(ABORT, '{table}: {', '.join(columns)} never change after intake'); "
            "END;",
        ]
    raise NotImplementedError(f"immutable-column triggers are not written for {vendor}")


def drop_immutable_columns_trigger_sql(table: str, vendor: str) -> list[str]:
    name = f"{table}_immutable_columns"
    if vendor == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {name} ON {table};", f"DROP FUNCTION IF EXISTS {name}();"]
    return [f"DROP TRIGGER IF EXISTS {name};"]


def sealable_trigger_sql(table: str, fixed_columns: list[str], vendor: str) -> list[str]:
    """Like append_only_trigger_sql, except that one UPDATE is allowed: filling the chain
    fields of a row not yet sealed (OLD.seq IS NULL, NEW.seq set) while every column in
    `fixed_columns` stays exactly as it was."""
    if vendor == "postgresql":
        fn = _pg_function(table)
        same = " AND ".join(f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in fixed_columns)
        return [
            f"""
            CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL AND {same} THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION '{table} is append-only: % refused', TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END;
            $$;
            """,
            f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table};",
            f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {fn}();",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {fn}();",
        ]
    if vendor == "sqlite":
        same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in fixed_columns)
        return [
            f"DROP TRIGGER IF EXISTS {table}_no_update;",
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"WHEN NOT (OLD.seq IS NULL AND NEW.seq IS NOT NULL AND {same}) "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END;",
            f"DROP TRIGGER IF EXISTS {table}_no_delete;",
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END;",
        ]
    raise NotImplementedError(f"append-only triggers are not written for {vendor}")


def run_sql_builder(builder: Any, *args: Any) -> Any:
    """A migration-friendly callable that runs the statements `builder(*args, vendor)` yields."""

    def run(apps: Any, schema_editor: Any) -> None:
        for statement in builder(*args, schema_editor.connection.vendor):
            schema_editor.execute(statement, params=None)

    return run
