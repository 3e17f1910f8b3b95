"""Page-number pagination with a hard cap on page_size (MAX_PAGE_SIZE). A page_size above the
cap is served at the cap; one that is not a whole number of at least 1 is refused with a 400
naming it (it is never silently replaced by the default); an empty one is the default.

A page is read keys first (KeysFirstPaginator): the database sorts and cuts the scoped rows
alone, and joins the related rows of select_related to the page's rows only. Over a wide scope
(a supervisor's 40,000 evidence items) the joins would otherwise be made for every row before
the sort keeps fifty."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.paginator import Page
from django.core.paginator import Paginator as DjangoPaginator
from django.db.models import QuerySet, Subquery
from django.utils.functional import cached_property
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

PAGE_SIZE_INVALID = "A page size is a whole number of at least 1."


def _keys_first_applies(rows: Any) -> bool:
    """Whether `rows` is a plain ordered queryset with joins to move after the cut: no
    annotations, extra SQL, DISTINCT, deferred fields or set operations, which the page's rows
    read again by key would not carry."""
    if not isinstance(rows, QuerySet) or not rows.ordered:
        return False
    query = rows.query
    return bool(
        query.select_related
        and not query.annotations
        and not query.extra
        and not query.extra_order_by
        and not query.distinct
        and not query.combinator
        and query.deferred_loading == (frozenset(), True)
    )


def page_rows(rows: Any, bottom: int, top: int) -> Any:
    """rows[bottom:top], as one query: the page's keys are selected (sorted and cut without
    any join) in a subquery, and the outer query reads those rows with their joins and
    prefetches, in the same order."""
    if not _keys_first_applies(rows):
        return rows[bottom:top]
    keys = rows.values("pk")[bottom:top]  # values() leaves select_related out; the order stays
    page = rows.model._base_manager.filter(pk__in=Subquery(keys))
    page.query.select_related = rows.query.select_related
    ordering = rows.query.order_by or rows.model._meta.ordering
    return page.order_by(*ordering).prefetch_related(*rows._prefetch_related_lookups)


class KeysFirstPaginator(DjangoPaginator):
    @cached_property
    def count(self) -> int:
        """The list's `known_count()` where its selector gave it one (an instance attribute, so
        only the queryset the selector returned has it, not one filtered or sliced since: see
        selectors.case_list), else the count Django's paginator makes."""
        known = getattr(self.object_list, "known_count", None)
        if known is not None:
            return known()
        return DjangoPaginator.count.func(self)

    def page(self, number: Any) -> Page:
        """The page's rows: the list's `known_page(bottom, top, count)` where its selector gave
        it one (as known_count: see selectors.lead_search), else page_rows."""
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        known = getattr(self.object_list, "known_page", None)
        rows = known(bottom, top, self.count) if known is not None else page_rows(self.object_list, bottom, top)
        return self._get_page(rows, number, self)


class CappedPageNumberPagination(PageNumberPagination):
    django_paginator_class = KeysFirstPaginator
    page_size_query_param = "page_size"
    max_page_size = settings.MAX_PAGE_SIZE

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size  # an empty value is no value, as for `page`
        try:
            size = int(raw.strip(), 10)
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationError({self.page_size_query_param: [PAGE_SIZE_INVALID]})
        return min(size, self.max_page_size)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["allowEmptyValue"] = True  # `page=` is page 1, `page_size=` the default
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = (
                    f"Results per page (default {self.page_size}; above {self.max_page_size}, "
                    f"{self.max_page_size}). 400 if it is not a whole number of at least 1."
                )
        return parameters
