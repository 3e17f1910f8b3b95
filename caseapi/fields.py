"""Model fields whose values are encrypted at rest (caseapi.crypto): the database holds only
ciphertext; Python code reads and writes plaintext. They cannot be filtered or ordered on in
SQL (each encryption is randomized): look values up through a blind-index column instead."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import FieldError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models, transaction

from caseapi import appendonly, crypto

RESEAL_BATCH = 1000


class _Encrypted:
    """The shared part: the column name is the associated data of every ciphertext. SQL sees
    only ciphertext, so any lookup but `isnull` is refused rather than silently matching nothing."""

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name != "isnull":
            raise FieldError(
                f"{self.model._meta.label}.{self.name} is encrypted: it cannot be filtered with "  # type: ignore[attr-defined]
                f"{lookup_name!r} (look it up through its blind index)"
            )
        return super().get_lookup(lookup_name)  # type: ignore[misc]

    def _column(self) -> str:
        return f"{self.model._meta.db_table}.{self.column}"  # type: ignore[attr-defined]

    def seal(self, plaintext: str) -> str:
        return crypto.encrypt(plaintext, self._column())

    def open(self, stored: str) -> str:
        return crypto.decrypt(stored, self._column())


class EncryptedTextField(_Encrypted, models.TextField):
    """Text stored as ciphertext. Blank stays blank (nothing to hide, and forms can tell)."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return self.open(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return self.seal(value)


class EncryptedJSONField(_Encrypted, models.JSONField):
    """A JSON value (dict, list, ...) stored as the ciphertext of its JSON text, in a text
    column. To Python, forms and serializers it is a JSONField; SQL sees only ciphertext, so
    key transforms (`buyer__name`) are refused like lookups."""

    def __init__(self, *args: Any, encoder: type[json.JSONEncoder] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, encoder=encoder or DjangoJSONEncoder, **kwargs)

    def get_internal_type(self) -> str:
        return "TextField"

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("encoder") is DjangoJSONEncoder:
            del kwargs["encoder"]
        return name, path, args, kwargs

    def get_transform(self, name: str) -> Any:
        raise FieldError(
            f"{self.model._meta.label}.{self.name} is encrypted: its keys cannot be queried ({name!r})"  # type: ignore[attr-defined]
        )

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return json.loads(self.open(value), cls=self.decoder)

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return self.seal(json.dumps(value, cls=self.encoder, sort_keys=True))

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        return value if prepared else self.get_prep_value(value)

    def value_to_string(self, obj: Any) -> str:
        return json.dumps(self.value_from_object(obj), cls=self.encoder, sort_keys=True)


def is_sealed(field: Any) -> bool:
    """Whether `field` is stored encrypted (one of this module's fields)."""
    return isinstance(field, _Encrypted)


def encrypted_columns() -> list[tuple[type[models.Model], models.Field]]:
    """Every encrypted field of every installed model (concrete tables only)."""
    from django.apps import apps

    return [
        (model, field)
        for model in apps.get_models()
        if not model._meta.proxy
        for field in model._meta.local_concrete_fields
        if isinstance(field, _Encrypted)
    ]


def reseal_column(
    table: str,
    pk: str,
    column: str,
    *,
    using: str = "default",
    append_only: bool = False,
    to_plaintext: bool = False,
    batch: int = RESEAL_BATCH,
) -> int:
    """Rewrite `table.column` so that every non-empty value is sealed under the current key
    (values still in plaintext included); returns how many rows changed. With `to_plaintext`,
    the reverse: every value opened (a migration's way back).

    One transaction per `batch` rows, in primary-key order. A row is only rewritten if it still
    holds the value read (compare and set), so a concurrent edit is never overwritten: that edit
    was sealed under the current key anyway. An `append_only` table's triggers are lifted inside
    each batch's transaction and restored before it commits. A value no key opens raises
    crypto.DecryptionError and leaves the batch unchanged."""
    connection = connections[using]
    quote = connection.ops.quote_name
    aad = f"{table}.{column}"
    current = crypto.ring().current
    select = (
        f"SELECT {quote(pk)}, {quote(column)} FROM {quote(table)} "  # noqa: S608 - names from the models
        f"WHERE {quote(column)} IS NOT NULL AND {quote(column)} <> '' AND {{after}} ORDER BY {quote(pk)} LIMIT {int(batch)}"
    )
    update = f"UPDATE {quote(table)} SET {quote(column)} = %s WHERE {quote(pk)} = %s AND {quote(column)} = %s"  # noqa: S608
    changed = 0
    last: Any = None
    while True:
        with transaction.atomic(using=using), connection.cursor() as cursor:
            if last is None:
                cursor.execute(select.format(after="1 = 1"))
            else:
                cursor.execute(select.format(after=f"{quote(pk)} > %s"), [last])
            rows = cursor.fetchall()
            if not rows:
                return changed
            last = rows[-1][0]
            params = []
            for key, stored in rows:
                if to_plaintext:
                    if crypto.is_encrypted(stored):
                        params.append((crypto.decrypt(stored, aad), key, stored))
                elif crypto.key_id_of(stored) != current:
                    params.append((crypto.encrypt(crypto.decrypt(stored, aad), aad), key, stored))
            if not params:
                continue
            if append_only:
                for statement in appendonly.drop_append_only_trigger_sql(table, connection.vendor):
                    cursor.execute(statement)
            cursor.executemany(update, params)
            changed += cursor.rowcount if connection.vendor == "postgresql" else len(params)
            if append_only:
                for statement in appendonly.append_only_trigger_sql(table, connection.vendor):
                    cursor.execute(statement)
