"""Scoped reads. Every API queryset starts here; children (leads, evidence, custody) are
scoped through their case with one subquery, never per-row permission checks.

A global (model-level) permission never widens scope: only guardian object permissions on
the case, held directly or through a group, put a case in a user's scope.

Prosecutors hold no permission on cases. A prosecutor holds `view_handoff` on each handoff a
supervisor approved for them; through those handoffs, while they stand sent (or later), they
see the leads and evidence the handoff currently includes, their custody, and the packets
built since it was last sent. The case itself stays out of their scope.
"""

from __future__ import annotations

import functools
import json
import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import BooleanField, Exists, F, Func, OuterRef, Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.http import Http404

from cases import identifiers as ident
from cases.models import (
    AgencyKind,
    Case,
    CaseGroupObjectPermission,
    CaseUserObjectPermission,
    CustodyEvent,
    EvidenceItem,
    ExportPacket,
    Handoff,
    HandoffEvidence,
    HandoffLead,
    HandoffStatus,
    HandoffUserObjectPermission,
    Identifier,
    IdentifierKind,
    Lead,
    LeadIdentifier,
    Role,
)
from cases.permissions import CasePerm, HandoffPerm, role_for_perms

User = get_user_model()

HANDOFF_SENT_STATUSES: frozenset[str] = frozenset(
    {HandoffStatus.SENT, HandoffStatus.ACKNOWLEDGED, HandoffStatus.ACCEPTED, HandoffStatus.DECLINED}
)
"""A handoff in one of these has been approved and stands sent: its addressee sees its items
and may have packets built. A returned handoff is back in draft and shows no items until re-sent."""


def user_roles(user: AbstractBaseUser) -> frozenset[str]:
    """Role names (group names) of `user`, cached on the instance for the request."""
    if not user or not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_caseapi_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._caseapi_roles = cached
    return cached


CASEWORK_ROLES: tuple[str, ...] = (Role.INVESTIGATOR, Role.SUPERVISOR)
"""Only these roles work cases. A grant held by a user without one of them (an investigator
made auditor, say) gives nothing: the roles are checked when scope is built, not the grant."""


def _has_role(user: AbstractBaseUser, roles: tuple[str, ...]) -> bool:
    return bool(user_roles(user) & set(roles))


def does_casework(user: AbstractBaseUser) -> bool:
    return _has_role(user, CASEWORK_ROLES)


def _may_be_addressed(user: AbstractBaseUser) -> bool:
    """Whether `user` is a prosecutor, who can be sent handoffs. Other users' scope leaves the
    handoff branches out: they are neither built nor run."""
    return _has_role(user, (Role.PROSECUTOR,))


# Hot reads in raw SQL. The ORM composes and compiles a query with select_related afresh for
# every request: for a lead with its case, agency and assignee (sixty columns), compiling took
# about 0.5 ms of Python, more than running the query. The two reads every request or every
# detail view makes (the token lookup, lead_get) have their SQL text written once per process
# and database vendor instead; the instances are those the ORM would give (`Model.from_db`,
# with the converters the ORM would apply), the related ones cached as select_related caches
# them. tests/cases/test_raw_reads.py compares both with the ORM's.

_Part = tuple[Any, int, int, int, list[tuple[int, Any, Any]]]  # model, start, end, pk index, converters


def _select_parts(connection: Any, tables: tuple[tuple[str, Any], ...]) -> tuple[str, list[_Part]]:
    """The select list of every concrete column of `tables` ((alias, model) pairs), and for each
    model the slice of the row holding its columns, where its primary key is in the slice, and
    the converters the ORM would apply to its columns (compiler.get_converters does the same)."""
    parts: list[_Part] = []
    select: list[str] = []
    start = 0
    for alias, model in tables:
        fields = model._meta.concrete_fields
        select += [f'{alias}."{field.column}"' for field in fields]
        converters = []
        for i, field in enumerate(fields):
            col = field.get_col(model._meta.db_table)
            for converter in connection.ops.get_db_converters(col) + field.get_db_converters(connection):
                converters.append((i, converter, col))
        pk_index = next(i for i, field in enumerate(fields) if field.primary_key)
        parts.append((model, start, start + len(fields), pk_index, converters))
        start += len(fields)
    return ", ".join(select), parts


def _instances(row: tuple[Any, ...], parts: list[_Part], connection: Any) -> list[Any]:
    """The model instance of each part of `row`, None for a LEFT JOINed one with no row."""
    out = []
    for model, start, end, pk_index, converters in parts:
        values = list(row[start:end])
        if values[pk_index] is None:
            out.append(None)
            continue
        for i, converter, col in converters:
            values[i] = converter(values[i], col, connection)
        out.append(model.from_db(connection.alias, None, values))
    return out


_RAW_QUERIES: dict[tuple[str, str], tuple[str, list[_Part]]] = {}


def _raw_query(name: str, connection: Any, build: Any) -> tuple[str, list[_Part]]:
    """`build(connection)` once per process, query name and database vendor."""
    key = (name, connection.vendor)
    cached = _RAW_QUERIES.get(key)
    if cached is None:
        _RAW_QUERIES[key] = cached = build(connection)
    return cached


def _token_query(connection: Any) -> tuple[str, list[_Part]]:
    """The token lookup's SQL (see token_get): token, user and profile, and the user's role
    names as a JSON array in the last column."""
    from cases.models import AuthToken, Profile

    select, parts = _select_parts(connection, (("t", AuthToken), ("u", User), ("p", Profile)))
    groups = "json_group_array(g.name)" if connection.vendor == "sqlite" else "COALESCE(json_agg(g.name)::text, '[]')"
    # Table and column names from the models' metadata; the digest is a parameter.
    sql = (
        f"SELECT {select}, (SELECT {groups} FROM {User.groups.through._meta.db_table} ug"  # noqa: S608
        f' JOIN {Group._meta.db_table} g ON g.id = ug.group_id WHERE ug.user_id = u."id")'
        f' FROM {AuthToken._meta.db_table} t JOIN {User._meta.db_table} u ON u."id" = t."user_id"'
        f' LEFT JOIN {Profile._meta.db_table} p ON p."user_id" = u."id" WHERE t."digest" = %s'
    )
    return sql, parts


def token_get(digest: str) -> Any:
    """The AuthToken of `digest` with its user, the user's profile and the user's role names
    loaded, in one query (None if there is none). Every API request starts here."""
    from django.db import connection

    sql, parts = _raw_query("token", connection, _token_query)
    with connection.cursor() as cursor:
        cursor.execute(sql, [digest])
        row = cursor.fetchone()
    if row is None:
        return None
    token, user, profile = _instances(row, parts, connection)
    if profile is not None:
        profile._state.fields_cache["user"] = user
    user._state.fields_cache["profile"] = profile
    token._state.fields_cache["user"] = user
    user._caseapi_roles = frozenset(json.loads(row[-1]))
    return token


def _order_sql(alias: str, model: Any) -> str:
    """`model`'s Meta.ordering as an ORDER BY list over the table aliased `alias`."""
    return ", ".join(
        f'{alias}."{model._meta.get_field(name.lstrip("-")).column}"' + (" DESC" if name.startswith("-") else "")
        for name in model._meta.ordering
    )


def _lead_rows_sql(connection: Any, where: str, tail: str = "") -> tuple[str, list[_Part]]:
    """Leads with their case, the case's agency and the assignee (what _lead_rows selects)
    where `where` holds of the lead `l` and the user holds `view` on its case (_grant_probe's
    two index probes), then `tail` (an ORDER BY and a LIMIT)."""
    from cases.models import Agency

    select, parts = _select_parts(connection, (("l", Lead), ("c", Case), ("a", Agency), ("u", User)))
    probe = _grant_probe_sql_text().format(case='l."case_id"')
    sql = (
        f"SELECT {select} FROM {Lead._meta.db_table} l"  # noqa: S608 - names from the models
        f' JOIN {Case._meta.db_table} c ON c."id" = l."case_id"'
        f' JOIN {Agency._meta.db_table} a ON a."id" = c."agency_id"'
        f' LEFT JOIN {User._meta.db_table} u ON u."id" = l."assignee_id"'
        f" WHERE {where} AND {probe}{tail}"
    )
    return sql, parts


def _lead_query(connection: Any) -> tuple[str, list[_Part]]:
    """lead_get's SQL for a casework user (see _lead_by_probe): the lead of one id, if in scope."""
    return _lead_rows_sql(connection, 'l."id" = %s')


def _identifiers_of_leads_query(connection: Any, leads: int) -> tuple[str, list[_Part]]:
    """The identifiers of `leads` leads (their ids the parameters), each row ending with the
    lead's id, in Identifier's order: the query prefetch_related("identifiers") makes."""
    select, parts = _select_parts(connection, (("i", Identifier),))
    links = LeadIdentifier._meta
    lead = f'li."{links.get_field("lead").column}"'
    sql = (
        f"SELECT {select}, {lead} FROM {Identifier._meta.db_table} i"  # noqa: S608 - names from the models
        f' JOIN {links.db_table} li ON li."{links.get_field("identifier").column}" = i."id"'
        f" WHERE {lead} IN ({', '.join(['%s'] * leads)}) ORDER BY {_order_sql('i', Identifier)}"
    )
    return sql, parts


def _leads_of_rows(rows: list[tuple[Any, ...]], parts: list[_Part], connection: Any) -> list[Lead]:
    """The leads of _lead_rows_sql's `rows`, each with its case, agency and assignee cached as
    select_related caches them, and its identifiers (read in one query) as
    prefetch_related("identifiers") caches them: the serializer reads it all without a query."""
    leads = []
    for row in rows:
        lead, case, agency, assignee = _instances(row, parts, connection)
        case._state.fields_cache["agency"] = agency
        lead._state.fields_cache["case"] = case
        lead._state.fields_cache["assignee"] = assignee
        leads.append(lead)
    if not leads:
        return leads
    found: dict[Any, list[Identifier]] = {lead.pk: [] for lead in leads}
    sql, parts = _raw_query(
        f"identifiers of {len(found)} leads",
        connection,
        functools.partial(_identifiers_of_leads_query, leads=len(found)),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [Lead._meta.pk.get_db_prep_value(pk, connection) for pk in found])
        for row in cursor.fetchall():
            found[Lead._meta.pk.to_python(row[-1])].append(_instances(row, parts, connection)[0])
    for lead in leads:
        identifiers = lead.identifiers.get_queryset()
        identifiers._result_cache, identifiers._prefetch_done = found[lead.pk], True
        lead._prefetched_objects_cache = {"identifiers": identifiers}
    return leads


def user_agency_id(user: AbstractBaseUser) -> int | None:
    profile = getattr(user, "profile", None) if user and user.is_authenticated else None
    return profile.agency_id if profile is not None else None


def _grant_tables(user: AbstractBaseUser, perm: CasePerm) -> tuple[QuerySet, QuerySet]:
    """The ids of the cases `user` holds `perm` on directly, and through a group, as the grant
    tables record them: two subqueries, by holder and permission."""
    perm_filter = {"permission__codename": perm, "permission__content_type__app_label": "cases"}
    direct = CaseUserObjectPermission.objects.filter(user_id=user.pk, **perm_filter)
    via_group = CaseGroupObjectPermission.objects.filter(group__in=user.groups.all().values("id"), **perm_filter)
    # Unordered: the members of a UNION carry no ORDER BY (SQLite refuses one).
    return direct.order_by().values("content_object_id"), via_group.order_by().values("content_object_id")


def _permission_sql() -> str:
    """The id of the permission (codename %s, app %s) as a scalar subquery, run once per query:
    grant rows are then found by their (holder, permission, case) index alone."""
    perms, types = Permission._meta.db_table, ContentType._meta.db_table
    return (
        f"(SELECT p.id FROM {perms} p JOIN {types} t ON t.id = p.content_type_id "  # noqa: S608
        "WHERE p.codename = %s AND t.app_label = %s)"
    )


def _grant_branches() -> tuple[str, str]:
    """The two SELECTs of the case ids `user` holds `perm` on, directly and through a group;
    table names from the models, every value a parameter (_grant_params)."""
    memberships = User.groups.through._meta.db_table
    permission = _permission_sql()
    direct = (
        f"SELECT g.content_object_id FROM {CaseUserObjectPermission._meta.db_table} g "  # noqa: S608
        f"WHERE g.user_id = %s AND g.permission_id = {permission}"
    )
    via_group = (
        f"SELECT g.content_object_id FROM {CaseGroupObjectPermission._meta.db_table} g "  # noqa: S608
        f"JOIN {memberships} m ON m.group_id = g.group_id WHERE m.user_id = %s AND g.permission_id = {permission}"
    )
    return direct, via_group


@functools.cache
def _grant_sql_text() -> str:
    """The SQL of _grant_sql."""
    direct, via_group = _grant_branches()
    # UNION ALL: an IN needs no duplicates removed, and PostgreSQL can then probe each table
    # by its index for a few rows (a detail) instead of collecting every grant first.
    return f"{direct} UNION ALL {via_group}"


@functools.cache
def _grant_count_sql_text() -> str:
    """The SQL of case_count: the distinct case ids of the grants, counted."""
    direct, via_group = _grant_branches()
    return f"SELECT COUNT(*) FROM ({direct} UNION {via_group}) granted"  # noqa: S608 - names from the models


@functools.cache
def _grant_probe_sql_text() -> str:
    """The SQL of _grant_probe, with `{case}` where the row's case id column goes."""
    memberships = User.groups.through._meta.db_table
    permission = _permission_sql()
    return (
        f"(EXISTS (SELECT 1 FROM {CaseUserObjectPermission._meta.db_table} g "  # noqa: S608
        f"WHERE g.user_id = %s AND g.permission_id = {permission} AND g.content_object_id = {{case}}) "
        f"OR EXISTS (SELECT 1 FROM {CaseGroupObjectPermission._meta.db_table} g "
        f"JOIN {memberships} m ON m.group_id = g.group_id "
        f"WHERE m.user_id = %s AND g.permission_id = {permission} AND g.content_object_id = {{case}}))"
    )


class _GrantProbe(Func):
    """The SQL of _grant_probe over a case id column. A column expression, so it stays right
    when the query is nested and its tables renamed (the keys-first page)."""

    output_field = BooleanField()
    arity = 1

    def __init__(self, column: Any, params: tuple[Any, ...]) -> None:
        super().__init__(column)
        self.grant_params = params

    def as_sql(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, list[Any]]:
        case, case_params = compiler.compile(self.source_expressions[0])
        direct, via_group = self.grant_params[:3], self.grant_params[3:]
        return _grant_probe_sql_text().format(case=case), [*direct, *case_params, *via_group, *case_params]


def _grant_probe(user: AbstractBaseUser, perm: CasePerm = CasePerm.VIEW) -> Any:
    """A condition on a row with a `case_id` column: `user` holds `perm` on the row's case,
    directly or through a group, checked by two index lookups for that row. For a row read by
    its key, or a few rows found by key (a search): the IN (grants) of case_scope is the better
    plan for a list, but for each row found otherwise PostgreSQL compares it with every grant
    in turn, two thousand for a supervisor."""
    return _GrantProbe(F("case_id"), _grant_params(user, perm))


def _grant_params(user: AbstractBaseUser, perm: CasePerm) -> tuple[Any, ...]:
    return (user.pk, perm, "cases", user.pk, perm, "cases")


def _grant_sql(user: AbstractBaseUser, perm: CasePerm) -> RawSQL:
    """The ids of the cases `user` holds `perm` on, directly or through a group: the two grant
    tables of _grant_tables as a UNION ALL, written once as SQL. Built through the ORM for every
    request, the same subquery cost about 3 ms of Python to compose and compile, more than
    the database takes to run it; this costs nothing. Same rows as _grant_tables (a test
    compares them)."""
    return RawSQL(_grant_sql_text(), _grant_params(user, perm))  # noqa: S611


def _is_active_user(user: AbstractBaseUser) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def _works_cases(user: AbstractBaseUser) -> bool:
    """An active user with a casework role: only their grants put cases in scope."""
    return _is_active_user(user) and does_casework(user)


@functools.cache
def _case_scope_sql_text() -> str:
    """The SQL of case_scope: the grants, read through the case table."""
    return f"SELECT c.id FROM {Case._meta.db_table} c WHERE c.id IN ({_grant_sql_text()})"  # noqa: S608 - names from the models


def case_scope(user: AbstractBaseUser, perm: CasePerm = CasePerm.VIEW) -> Any:
    """For `filter(<case id>__in=case_scope(user))`: the ids of the cases on which `user` holds
    `perm` as an object permission, as SQL text with parameters (see _grant_sql), or an empty
    list, which the ORM answers without a query, for a user who works no cases.

    The direct and group grants are a UNION ALL, not an OR of two IN subqueries: PostgreSQL turns
    `x IN (a UNION ALL b)` into a semi-join it can estimate and drive from the grants, while an OR
    of subqueries is a filter it can only apply row by row after reading every row (at scale, a
    sequential scan of the table being scoped). The grants are read through the case table, as
    `Case.objects.filter(id__in=grants).values("id")` would compile: with the case table's
    statistics in the plan, PostgreSQL reads the scoped rows through their (case, ...) index."""
    if not _works_cases(user):
        return []
    return RawSQL(_case_scope_sql_text(), _grant_params(user, perm))  # noqa: S611


class _AnyOfCases(Func):
    """`<case id column> = ANY(ARRAY(<case ids subquery>))` on PostgreSQL (IN elsewhere): the
    subquery runs once, as an init plan, and its ids are the keys of one index scan of the
    table's (case, ...) index, sorted and searched together. A column expression, so it stays
    right when the query is nested and its tables renamed (the keys-first page)."""

    output_field = BooleanField()
    arity = 2

    def as_sql(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, list[Any]]:
        column, ids, params = self._compiled(compiler)
        return f"{column} IN {ids}", params

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, list[Any]]:
        column, ids, params = self._compiled(compiler)
        return f"{column} = ANY(ARRAY{ids})", params

    def _compiled(self, compiler: Any) -> tuple[str, str, list[Any]]:
        column, column_params = compiler.compile(self.source_expressions[0])
        ids, ids_params = compiler.compile(self.source_expressions[1])  # RawSQL: "(SELECT ...)"
        return column, ids, [*column_params, *ids_params]


def in_scope(column: str, user: AbstractBaseUser, perm: CasePerm = CasePerm.VIEW, *, keys: bool = False) -> Q:
    """For `filter(in_scope("case_id", user))`: rows whose `column` is the id of a case on which
    `user` holds `perm` as an object permission; a condition the ORM answers without a query
    for a user who works no cases. The lists' scope, in one of two forms:

    - `IN (case_scope)`, a semi-join: PostgreSQL can stop at the first grant that matches, so
      it suits lists that a filter narrows to one case (leads of a case, the audit events of a
      case). Rows found by key instead (a search) are better checked one by one
      (_grant_probe, as lead_search does): there the semi-join reads the grants for each row.
    - `keys=True`: `= ANY(ARRAY(grants))`, for lists read across the whole scope (cases,
      evidence). The grants are read once and are the keys of one index scan, where the
      semi-join, planned from a guess of how many grants a user holds, hashed a supervisor's
      2,000 grants and then read every case, or probed an index 2,000 times one by one: at
      scale 1 the supervisor's case list took 1 ms less of the database per request and the
      evidence list 9 ms less, and an investigator's 20 cases were no longer found by reading
      every case. As a filter on rows found otherwise, though, PostgreSQL compares each row
      with the whole array, which is why the narrow lists keep the semi-join."""
    if not _works_cases(user):
        return Q(pk__in=[])
    if keys:
        return Q(_AnyOfCases(F(column), _grant_sql(user, perm)))
    return Q(**{f"{column}__in": case_scope(user, perm)})


def case_ids_for(user: AbstractBaseUser, perm: CasePerm = CasePerm.VIEW) -> QuerySet:
    """A subquery of the ids of cases on which `user` holds `perm` (see case_scope)."""
    if not _works_cases(user):
        return Case.objects.none().values("id")
    return Case.objects.filter(id__in=_grant_sql(user, perm)).values("id")


def case_perms(user: AbstractBaseUser, case: Case) -> frozenset[str]:
    """Codenames `user` holds on `case`, direct or through groups: one query, cached per case."""
    cache = getattr(user, "_caseapi_case_perms", None)
    if cache is None:
        cache = {}
        user._caseapi_case_perms = cache
    if case.pk not in cache:
        if not does_casework(user):
            cache[case.pk] = frozenset()
            return cache[case.pk]
        direct = CaseUserObjectPermission.objects.filter(user_id=user.pk, content_object_id=case.pk).values_list(
            "permission__codename", flat=True
        )
        via_group = CaseGroupObjectPermission.objects.filter(
            group__in=user.groups.all().values("id"), content_object_id=case.pk
        ).values_list("permission__codename", flat=True)
        cache[case.pk] = frozenset(direct.union(via_group))
    return cache[case.pk]


def has_case_perm(user: AbstractBaseUser, case: Case, perm: CasePerm) -> bool:
    return perm in case_perms(user, case)


def _get_or_404(qs: QuerySet, pk: Any) -> Any:
    """The object with `pk` in `qs`, or Http404: out of scope and nonexistent look the same."""
    try:
        return qs.get(pk=pk)
    except (qs.model.DoesNotExist, ValueError, TypeError, DjangoValidationError) as exc:
        raise Http404 from exc


_CASE_RELATED = ("agency", "lead_investigator", "lead_investigator__profile", "parent")


def case_list(*, user: AbstractBaseUser) -> QuerySet[Case]:
    """The cases in `user`'s scope. The queryset as returned knows its count from the grants
    alone (`known_count`, see case_count) and reads its pages through SQL written once
    (`known_page`, see _case_page); a clone (a filter, a slice) does neither."""
    cases = Case.objects.filter(in_scope("id", user, keys=True)).select_related(*_CASE_RELATED)
    cases.known_count = functools.partial(case_count, user=user)
    if _works_cases(user):
        cases.known_page = functools.partial(_case_page, user)
    return cases


def _case_page_query(connection: Any, walked: bool) -> tuple[str, list[_Part]]:
    """The SQL of _case_page: the page's keys, then those cases read with what _CASE_RELATED
    selects. The keys are sorted and cut among the granted cases alone (in_scope's `keys=True`
    form; parameters: the grants', LIMIT, OFFSET), or `walked` (walked_page's; parameters: the
    rows to walk, the grants', LIMIT, OFFSET)."""
    from cases.models import Agency, Profile

    tables = (("c", Case), ("a", Agency), ("u", User), ("p", Profile), ("pc", Case))
    select, parts = _select_parts(connection, tables)
    table = Case._meta.db_table
    if walked:
        keys = _walk_keys_sql_text(Case, "id")
    else:
        grants = _grant_sql_text()
        granted = f'k."id" = ANY(ARRAY({grants}))' if connection.vendor == "postgresql" else f'k."id" IN ({grants})'
        keys = f'SELECT k."id" FROM {table} k WHERE {granted} ORDER BY {_order_sql("k", Case)} LIMIT %s OFFSET %s'  # noqa: S608
    sql = (
        f"SELECT {select} FROM {table} c"  # noqa: S608 - names from the models
        f' JOIN {Agency._meta.db_table} a ON a."id" = c."agency_id"'
        f' JOIN {User._meta.db_table} u ON u."id" = c."lead_investigator_id"'
        f' LEFT JOIN {Profile._meta.db_table} p ON p."user_id" = u."id"'
        f' LEFT JOIN {table} pc ON pc."id" = c."parent_id"'
        f' WHERE c."id" IN ({keys}) ORDER BY {_order_sql("c", Case)}'
    )
    return sql, parts


def _case_page(user: AbstractBaseUser, bottom: int, top: int, count: int) -> list[Case]:
    """Cases number `bottom` to `top` (excluded) of case_list(user), known to hold `count`, as
    its keys-first page (caseapi.pagination.page_rows) reads them, or walked where the scope is
    wide (as walked_page walks), with the same related objects cached; written once, where
    composing and compiling that page through the ORM cost about a millisecond of Python.
    tests/cases/test_raw_reads.py compares the two."""
    from django.db import connection

    wanted = min(top, count) - bottom
    if top <= bottom:
        return []
    grants = _grant_params(user, CasePerm.VIEW)
    rows: list[tuple[Any, ...]] = []
    walk = _walk_rows(top, count) if wanted > 0 else None
    if walk is not None:
        sql, parts = _raw_query("case page walked", connection, functools.partial(_case_page_query, walked=True))
        with connection.cursor() as cursor:
            cursor.execute(sql, [walk, *grants, top - bottom, bottom])
            rows = cursor.fetchall()
    if walk is None or len(rows) < wanted:  # not walked, or the scope's cases lie deeper
        sql, parts = _raw_query("case page", connection, functools.partial(_case_page_query, walked=False))
        with connection.cursor() as cursor:
            cursor.execute(sql, [*grants, top - bottom, bottom])
            rows = cursor.fetchall()
    cases = []
    for row in rows:
        case, agency, investigator, profile, parent = _instances(row, parts, connection)
        if profile is not None:
            profile._state.fields_cache["user"] = investigator
        investigator._state.fields_cache["profile"] = profile
        case._state.fields_cache.update(agency=agency, lead_investigator=investigator, parent=parent)
        cases.append(case)
    return cases


def case_count(*, user: AbstractBaseUser) -> int:
    """How many cases case_list(user) holds, counted in the grant tables without reading a case:
    the distinct case ids `user` holds `view` on. Exact because every grant row names an
    existing case (a foreign key, deleted with it), and the case list is its grants and nothing
    else. Counting the list itself looked each granted id up in the case table: a supervisor's
    2,000 index probes at scale 1, the most expensive part of the case list's request in the
    database, where the bare view counts one agency's range of an index."""
    if not _works_cases(user):
        return 0
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_grant_count_sql_text(), _grant_params(user, CasePerm.VIEW))
        return cursor.fetchone()[0]


def case_get(*, user: AbstractBaseUser, case_id: uuid.UUID | str) -> Case:
    return _get_or_404(case_list(user=user), case_id)


def case_team(*, case: Case) -> list[dict[str, Any]]:
    """Members holding object permissions directly on `case`, with their strongest role."""
    rows = (
        CaseUserObjectPermission.objects.filter(content_object_id=case.pk)
        .select_related("user", "user__profile__agency")
        .values_list("user_id", "permission__codename")
    )
    perms: dict[int, set[str]] = {}
    for user_id, codename in rows:
        perms.setdefault(user_id, set()).add(codename)
    users = User.objects.filter(pk__in=perms).select_related("profile__agency").order_by("username")
    members = []
    for user in users:
        role = role_for_perms(perms[user.pk])
        if role is None:
            continue
        members.append({"user": user, "role": role})
    return members


def handoff_ids_addressed_to(user: AbstractBaseUser) -> QuerySet:
    """A subquery of the ids of handoffs on which `user` holds `view_handoff` and which are still
    addressed to them (a handoff re-addressed in draft drops out even before its grant is gone)."""
    if not user or not user.is_authenticated or not user.is_active:
        return Handoff.objects.none().values("id")
    grants = HandoffUserObjectPermission.objects.filter(
        user_id=user.pk, permission__codename=HandoffPerm.VIEW, permission__content_type__app_label="cases"
    ).values("content_object_id")
    return Handoff.objects.filter(id__in=grants, prosecutor_id=user.pk).values("id")


def sent_handoff_ids_addressed_to(user: AbstractBaseUser) -> QuerySet:
    """As `handoff_ids_addressed_to`, limited to handoffs that stand sent (HANDOFF_SENT_STATUSES):
    the ones whose items and packets the prosecutor may read."""
    return Handoff.objects.filter(id__in=handoff_ids_addressed_to(user), status__in=HANDOFF_SENT_STATUSES).values("id")


def _in_scope_or_handed_off(
    through: type[HandoffLead] | type[HandoffEvidence], column: str, user: AbstractBaseUser, *, keys: bool = False
) -> tuple[Q, Q]:
    """Rows of a case in scope, or (for a prosecutor) included in a handoff that stands sent to
    `user`, as two conditions to AND: subqueries only, no query of their own.

    The first, `case_id IN (grants UNION cases of the handoffs sent to user)`, is the one an
    index serves: a semi-join driven by the few cases the caller can reach, through the
    table's (case, ...) indexes. The second then keeps, of those rows, the ones of a case in
    scope or handed off; on its own (an OR of two subqueries) it would be a filter over every
    row of the table.

    Most users are not prosecutors: their scope is the case grants alone, and the handoff
    branches are left out. For a prosecutor the first condition is built from the grant tables
    as recorded (even grants that a role without casework makes worthless): it only narrows, and
    as a UNION it is what PostgreSQL drives the plan from; the second decides."""
    if not _is_active_user(user):
        return Q(pk__in=[]), Q()
    if not _may_be_addressed(user):
        return in_scope("case_id", user, keys=keys), Q()
    direct, via_group = _grant_tables(user, CasePerm.VIEW)
    handed_off_cases = Handoff.objects.filter(id__in=sent_handoff_ids_addressed_to(user)).order_by().values("case_id")
    reachable = Q(case_id__in=direct.union(via_group, handed_off_cases))
    included = through.objects.filter(handoff_id__in=sent_handoff_ids_addressed_to(user)).values(column)
    return reachable, Q(case_id__in=case_ids_for(user)) | Q(id__in=included)


# What the lead serializer reads; _lead_rows_sql and _identifiers_of_leads_query read the same.
_LEAD_RELATED = ("case", "case__agency", "assignee")
_LEAD_PREFETCH = ("identifiers",)


def _lead_rows(leads: QuerySet[Lead]) -> QuerySet[Lead]:
    """Leads with what their serializer reads loaded."""
    return leads.select_related(*_LEAD_RELATED).prefetch_related(*_LEAD_PREFETCH)


def lead_list(*, user: AbstractBaseUser) -> QuerySet[Lead]:
    """Leads of cases in scope, plus (for a prosecutor) the leads of handoffs sent to them."""
    reachable, allowed = _in_scope_or_handed_off(HandoffLead, "lead_id", user)
    leads = _lead_rows(Lead.objects.filter(reachable).filter(allowed))
    leads._lead_list_of = user.pk  # only this instance: a clone (a filter, a slice) is no longer the whole list
    return leads


def is_lead_list_of(leads: Any, user: AbstractBaseUser) -> bool:
    """Whether `leads` is lead_list(user=user) itself, as returned (not narrowed since)."""
    return user.pk is not None and getattr(leads, "_lead_list_of", None) == user.pk


def lead_get(*, user: AbstractBaseUser, lead_id: uuid.UUID | str) -> Lead:
    if _works_cases(user) and not _may_be_addressed(user):
        return _lead_by_probe(user, lead_id)
    return _get_or_404(lead_list(user=user), lead_id)


def _lead_by_probe(user: AbstractBaseUser, lead_id: uuid.UUID | str) -> Lead:
    """lead_get for a casework user: what `_lead_rows(Lead.objects.filter(_grant_probe(user)))
    .get(pk=lead_id)` reads, in the same two queries (the lead with its case, agency and
    assignee; then its identifiers), both written once per process (_lead_query,
    _identifiers_of_leads_query)."""
    from django.db import connection

    try:
        key = Lead._meta.pk.get_db_prep_value(Lead._meta.pk.to_python(lead_id), connection)
    except DjangoValidationError as exc:
        raise Http404 from exc
    sql, parts = _raw_query("lead", connection, _lead_query)
    with connection.cursor() as cursor:
        cursor.execute(sql, [key, *_grant_params(user, CasePerm.VIEW)])
        rows = cursor.fetchall()
    if not rows:
        raise Http404
    return _leads_of_rows(rows, parts, connection)[0]


def lead_search(*, user: AbstractBaseUser, term: str, kind: str | None = None) -> QuerySet[Lead]:
    """The leads of lead_list that carry an identifier the typed term means (identifier_lead_ids),
    found from the identifier and each checked against the scope by two index probes
    (_grant_probe). Joined to the scope instead, as a filter on lead_list does, each lead found
    was compared with every grant of the searcher's in turn (a supervisor's two thousand), once
    for the page and once for its count: a search cost more the more cases its user works.
    Prosecutors' reach (handoffs) is lead_list's, narrowed the same way.

    For a casework user, the queryset as returned also reads its count and its pages through
    SQL written once per process (`known_count`, `known_page`: see _lead_search_count and
    _lead_search_page); a clone (another filter, a slice) does not."""
    digests = _identifier_digests(term, kind)
    found = _lead_ids_of_digests(digests)
    if not (_works_cases(user) and not _may_be_addressed(user)):
        return lead_list(user=user).filter(id__in=found)
    leads = _lead_rows(Lead.objects.filter(id__in=found).filter(_grant_probe(user)))
    if digests:  # else the queryset is answered without a query
        leads.known_count = functools.partial(_lead_search_count, user, digests)
        leads.known_page = functools.partial(_lead_search_page, user, digests)
    return leads


# The identifier search of a casework user (lead_search), its count and its pages, through SQL
# written once: built through the ORM, composing and compiling them cost about a millisecond of
# Python, for a search whose rows the database finds in a few index probes. The same leads in
# the same order as the queryset; tests/cases/test_raw_reads.py compares the two.


def _lead_search_where(terms: int) -> str:
    return f'l."id" IN ({_identifier_lead_ids_sql_text(terms)})'


def _lead_search_count_query(connection: Any, terms: int) -> tuple[str, list[_Part]]:
    probe = _grant_probe_sql_text().format(case='l."case_id"')
    where = _lead_search_where(terms)
    return f"SELECT COUNT(*) FROM {Lead._meta.db_table} l WHERE {where} AND {probe}", []  # noqa: S608


def _lead_search_page_query(connection: Any, terms: int) -> tuple[str, list[_Part]]:
    tail = f" ORDER BY {_order_sql('l', Lead)} LIMIT %s OFFSET %s"
    return _lead_rows_sql(connection, _lead_search_where(terms), tail)


def _lead_search_count(user: AbstractBaseUser, digests: list[str]) -> int:
    from django.db import connection

    build = functools.partial(_lead_search_count_query, terms=len(digests))
    sql, _ = _raw_query(f"lead search count {len(digests)}", connection, build)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*digests, *_grant_params(user, CasePerm.VIEW)])
        return cursor.fetchone()[0]


def _lead_search_page(user: AbstractBaseUser, digests: list[str], bottom: int, top: int, count: int) -> list[Lead]:
    """Leads number `bottom` to `top` (excluded) of the search, as `leads[bottom:top]` reads them
    (`count`, what the search holds, is not needed: a search finds its leads by key)."""
    from django.db import connection

    if top <= bottom:
        return []
    build = functools.partial(_lead_search_page_query, terms=len(digests))
    sql, parts = _raw_query(f"lead search page {len(digests)}", connection, build)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*digests, *_grant_params(user, CasePerm.VIEW), top - bottom, bottom])
        rows = cursor.fetchall()
    return _leads_of_rows(rows, parts, connection)


def _evidence_rows(items: QuerySet[EvidenceItem]) -> QuerySet[EvidenceItem]:
    """Evidence items with what their serializer reads loaded."""
    return items.select_related("case", "collected_by", "created_by", "withdrawn_by")


def evidence_list(*, user: AbstractBaseUser) -> QuerySet[EvidenceItem]:
    """Evidence of cases in scope, plus (for a prosecutor) the items of handoffs sent to them;
    custody and content are read through an item of this list. For a casework user, the
    queryset as returned finds a page of a wide scope by walking the list's order
    (`known_page`, see walked_page); a clone (a filter, a slice) does not."""
    # Read across the scope (a supervisor's 40,000 items at scale 1): the grants as index keys.
    reachable, allowed = _in_scope_or_handed_off(HandoffEvidence, "evidence_id", user, keys=True)
    items = _evidence_rows(EvidenceItem.objects.filter(reachable).filter(allowed))
    if _works_cases(user) and not _may_be_addressed(user):
        items.known_page = functools.partial(walked_page, items, user, "case_id")
    return items


# ---------------------------------------------------------------- a wide scope's page, walked
#
# A page of a list read across the whole scope (cases, evidence) is found by the scope's keys:
# every row of every case in scope is read from the table's (case, order) index and sorted, and
# the page kept. That costs as much as the scope is wide: a supervisor's 40,000 evidence items
# at scale 1, where the page needs fifty. Where the scope holds a fair share of the table, the
# page is found sooner by walking the table's order index from its start and keeping the rows
# of a case in scope (the grants hashed once), stopping when the page is full: about
# (end of the page) / (share of the table in scope) rows, whatever the size of the table.
# A walk is bounded (WALK_ROWS_PER_ROW rows per row up to the page's end, at least
# WALK_MIN_ROWS) and tried only where the scope holds more than twice that many rows; when the
# rows of the scope lie deeper than the walk went (a scope of old cases), the page is read by
# keys after all, so a walk costs at most a bounded read more than the keys would.

WALK_ROWS_PER_ROW = 10
WALK_MIN_ROWS = 500


def _walk_rows(top: int, count: int) -> int | None:
    """How many rows of the table's order to walk for a page ending at row `top` of a scope of
    `count` rows; None where reading the scope by its keys costs less."""
    rows = max(WALK_ROWS_PER_ROW * top, WALK_MIN_ROWS)
    return rows if count > 2 * rows else None


@functools.cache
def _walk_keys_sql_text(model: Any, column: str) -> str:
    """The keys of a walked page of `model`'s table, in its Meta.ordering: the first %s rows of
    that order, those whose `column` is a case the user holds (%s x 6, the grants), then LIMIT
    %s OFFSET %s. Names from the models."""
    table, pk = model._meta.db_table, model._meta.pk.column
    ordered = [model._meta.get_field(name.lstrip("-")).column for name in model._meta.ordering]
    walked = ", ".join(f'k."{name}"' for name in dict.fromkeys([pk, column, *ordered]))
    return (
        f'SELECT w."{pk}" FROM (SELECT {walked} FROM {table} k ORDER BY {_order_sql("k", model)} LIMIT %s) w'  # noqa: S608
        f' WHERE w."{column}" IN ({_grant_sql_text()}) ORDER BY {_order_sql("w", model)} LIMIT %s OFFSET %s'
    )


def walked_page(rows: QuerySet, user: AbstractBaseUser, column: str, bottom: int, top: int, count: int) -> Any:
    """Rows `bottom` to `top` (excluded) of `rows`, a casework user's list scoped by the case
    in `column` and known to hold `count` rows, in the model's order: walked where the scope
    is wide (see above), else (or where the walk did not reach the page) the keys-first page
    (caseapi.pagination.page_rows). Either way the same rows, with the same related rows."""
    from caseapi.pagination import page_rows

    walk = _walk_rows(top, count)
    wanted = min(top, count) - bottom
    if walk is None or wanted <= 0:
        return page_rows(rows, bottom, top)
    model = rows.model
    sql = _walk_keys_sql_text(model, column)
    keys = RawSQL(sql, [walk, *_grant_params(user, CasePerm.VIEW), top - bottom, bottom])  # noqa: S611
    page = model._base_manager.filter(pk__in=keys)
    page.query.select_related = rows.query.select_related
    found = list(page.order_by(*model._meta.ordering).prefetch_related(*rows._prefetch_related_lookups))
    if len(found) >= wanted:
        return found
    return page_rows(rows, bottom, top)  # the scope's rows lie deeper than the walk went


def evidence_get(*, user: AbstractBaseUser, evidence_id: uuid.UUID | str) -> EvidenceItem:
    if _works_cases(user) and not _may_be_addressed(user):
        return _get_or_404(_evidence_rows(EvidenceItem.objects.filter(_grant_probe(user))), evidence_id)
    return _get_or_404(evidence_list(user=user), evidence_id)


def custody_list(*, evidence: EvidenceItem) -> QuerySet[CustodyEvent]:
    return CustodyEvent.objects.filter(evidence=evidence).select_related("actor")


def handoff_list(*, user: AbstractBaseUser) -> QuerySet[Handoff]:
    """Handoffs of cases in scope, plus those addressed to `user` as a prosecutor (in any status
    since first sent). `in_case_scope` says whether the case itself is in scope: the serializer
    shows a prosecutor-only reader no internal review note, and no items unless the handoff
    stands sent. Item ids come in two prefetch queries, whatever the page size."""
    scope = case_ids_for(user)
    return (
        Handoff.objects.filter(Q(case_id__in=scope) | Q(id__in=handoff_ids_addressed_to(user)))
        .annotate(in_case_scope=Exists(scope.filter(id=OuterRef("case_id"))))
        .select_related(
            "case",
            "prosecutor",
            "prosecutor_office",
            "created_by",
            "submitted_by",
            "reviewed_by",
        )
        .prefetch_related(
            Prefetch("handoff_leads", queryset=HandoffLead.objects.order_by("id").only("id", "handoff_id", "lead_id")),
            Prefetch(
                "handoff_evidence",
                queryset=HandoffEvidence.objects.order_by("id").only("id", "handoff_id", "evidence_id"),
            ),
        )
    )


def handoff_get(*, user: AbstractBaseUser, handoff_id: uuid.UUID | str, with_items: bool = True) -> Handoff:
    """A handoff in scope; `with_items=False` skips the two prefetches of its item ids, for
    callers that only need the handoff itself (its packets)."""
    handoffs = handoff_list(user=user)
    return _get_or_404(handoffs if with_items else handoffs.prefetch_related(None), handoff_id)


def packet_list(*, user: AbstractBaseUser) -> QuerySet[ExportPacket]:
    """Packets for the case's leads and supervisors (manage_team on the case), and for the
    addressed prosecutor those of a handoff standing sent that were requested since it was
    last sent (a packet built before a return may hold items since removed)."""
    staff = Q(handoff__case_id__in=case_scope(user, CasePerm.MANAGE_TEAM))
    addressee = Q(handoff_id__in=sent_handoff_ids_addressed_to(user), created_at__gte=F("handoff__sent_at"))
    return ExportPacket.objects.filter(staff | addressee).select_related("handoff", "handoff__case", "requested_by")


def packet_get(*, user: AbstractBaseUser, packet_id: uuid.UUID | str) -> ExportPacket:
    return _get_or_404(packet_list(user=user), packet_id)


def prosecutor_directory() -> QuerySet:
    """Active prosecutors of prosecutor's offices: who a handoff can be addressed to."""
    return (
        User.objects.filter(is_active=True, groups__name=Role.PROSECUTOR, profile__agency__kind=AgencyKind.PROSECUTOR)
        .select_related("profile", "profile__agency")
        .prefetch_related("groups")
        .order_by("profile__agency__code", "username")
    )


def agency_people(*, user: AbstractBaseUser) -> QuerySet:
    """Active people of the caller's agency (for assigning and staffing)."""
    agency_id = user_agency_id(user)
    if agency_id is None:
        return User.objects.none()
    return (
        User.objects.filter(profile__agency_id=agency_id, is_active=True)
        .select_related("profile", "profile__agency")
        .prefetch_related("groups")
        .order_by("username")
    )


HANDLE_KINDS: tuple[str, ...] = (IdentifierKind.HANDLE, IdentifierKind.PAYMENT_HANDLE)


def identifier_search_terms(raw: str, kind: str | None = None) -> list[tuple[str, str]]:
    """The (kind, normalized value) pairs a typed search term plausibly means.

    With `kind`, the term normalized as that kind (nothing if it is not one). Without: a phone
    if it is a valid number in any format ("(202) 555-0143", "202.555.0143", "+1 202 555 0143";
    national numbers in PHONE_DEFAULT_REGION); else an email if it has an @ and is a valid
    address (any case, surrounding spaces dropped); else a handle or a payment handle (a leading
    @ or $ dropped, any case). A term that is none of these means nothing."""
    if kind is not None:
        try:
            return [(kind, ident.normalize(kind, raw))]
        except DjangoValidationError:
            return []
    for plausible in (IdentifierKind.PHONE, IdentifierKind.EMAIL):  # an email without an @ is invalid
        try:
            return [(plausible, ident.normalize(plausible, raw))]
        except DjangoValidationError:
            continue
    try:
        handle = ident.normalize(IdentifierKind.HANDLE, raw)
    except DjangoValidationError:
        return []
    return [(handle_kind, handle) for handle_kind in HANDLE_KINDS]


def identifier_matches(raw: str, kind: str | None = None) -> QuerySet[Identifier]:
    """Identifiers a typed term means (identifier_search_terms): `value_index IN (...)`, the
    blind index of each plausible (kind, value), answered from its unique index (values are
    stored encrypted); none at all, without a query, when the term means nothing."""
    digests = _identifier_digests(raw, kind)
    if not digests:
        return Identifier.objects.none()
    return Identifier.objects.filter(value_index__in=digests)


def _identifier_digests(raw: str, kind: str | None) -> list[str]:
    """The blind index of each plausible (kind, value) of a typed term (identifier_search_terms)."""
    return [Identifier.index_of(k, v) for k, v in identifier_search_terms(raw, kind)]


@functools.cache
def _identifier_lead_ids_sql_text(terms: int) -> str:
    """The SQL of identifier_lead_ids for `terms` blind indexes; names from the models."""
    links, identifiers = LeadIdentifier._meta.db_table, Identifier._meta.db_table
    placeholders = ", ".join(["%s"] * terms)
    return (
        f"SELECT li.lead_id FROM {links} li JOIN {identifiers} i ON i.id = li.identifier_id "  # noqa: S608
        f"WHERE i.value_index IN ({placeholders})"
    )


def identifier_lead_ids(raw: str, kind: str | None = None) -> Any:
    """For `filter(id__in=...)`: the ids of the leads carrying an identifier the typed term means
    (identifier_matches), as SQL text with the blind indexes as parameters, answered from the
    unique index on value_index and the (identifier, lead) index of the links; or an empty
    list, which the ORM answers without a query, when the term means nothing. The same
    subquery composed through the ORM (links of identifiers of blind indexes) cost about half a
    millisecond of Python to build and again to compile, for every search and its count; a
    test compares the two."""
    return _lead_ids_of_digests(_identifier_digests(raw, kind))


def _lead_ids_of_digests(digests: list[str]) -> Any:
    """identifier_lead_ids of the blind indexes `digests`."""
    if not digests:
        return []
    return RawSQL(_identifier_lead_ids_sql_text(len(digests)), digests)  # noqa: S611


def leads_with_identifiers_outside_scope(
    *, user: AbstractBaseUser, identifier_ids: list[int]
) -> QuerySet[LeadIdentifier]:
    """Links of `identifier_ids` to leads on cases `user` cannot view (deconfliction)."""
    return (
        LeadIdentifier.objects.filter(identifier_id__in=identifier_ids)
        .exclude(lead__case_id__in=case_scope(user))
        .select_related(
            "identifier",
            "lead__case__agency",
            "lead__case__lead_investigator__profile",
        )
        .order_by("identifier_id", "lead__case_id")
    )
