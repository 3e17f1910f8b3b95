"""Query filters shared by the list endpoints, whose published schema states what the server
accepts (so a client, or a schema fuzzer, is never told a value is valid that is refused, nor
that one is invalid that is accepted)."""

from __future__ import annotations

import copy
from typing import Any

import django_filters
from django import forms
from django_filters.constants import EMPTY_VALUES
from drf_spectacular.contrib.django_filters import DjangoFilterExtension

MAX_ID = 2**63 - 1


class IntegerFilter(django_filters.NumberFilter):
    """A whole-number filter; its schema is an integer with the filter's `min_value` and
    `max_value` as minimum and maximum."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema: dict[str, Any] = {"type": "integer"}
        if kwargs.get("min_value") is not None:
            schema["minimum"] = kwargs["min_value"]
        if kwargs.get("max_value") is not None:
            schema["maximum"] = kwargs["max_value"]
        # drf-spectacular reads a filter's schema override from this attribute
        # (what @extend_schema_field sets on a class).
        self._spectacular_annotation = {"field": schema}


class IdFilter(IntegerFilter):
    """A user id (1 to 2**63 - 1)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


BOOLEAN_INVALID = "Expected true or false."
_BOOLEAN_WORDS = {"true": True, "1": True, "false": False, "0": False}


class StrictBooleanWidget(forms.Widget):
    """Reads `true`/`false` (`1`/`0`, any case) as booleans and hands anything else to the field
    as sent, where django-filter's widgets would read it as "no filter"."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        value = data.get(name)
        if isinstance(value, str):
            return _BOOLEAN_WORDS.get(value.strip().lower(), value)
        return value


class StrictBooleanField(forms.NullBooleanField):
    """A boolean filter's value: true, false, or absent (empty); anything else is invalid (400)
    instead of silently ignored."""

    widget = StrictBooleanWidget

    def to_python(self, value: Any) -> bool | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return value
        raise forms.ValidationError(BOOLEAN_INVALID, code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", StrictBooleanWidget)
        super().__init__(*args, **kwargs)


class EmptyMeansAbsentFilterExtension(DjangoFilterExtension):
    """django-filter reads an empty query value (`?case=`, as a browser form sends for a blank
    field) as no filter: the schema says so (`allowEmptyValue`), so a client or a schema fuzzer
    is not told that `case=` is invalid for a uuid filter."""

    priority = 1

    def get_schema_operation_parameters(self, auto_schema: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(auto_schema, *args, **kwargs)
        for parameter in parameters:
            if parameter.get("in") == "query" and not parameter.get("required"):
                parameter["allowEmptyValue"] = True
        return parameters


class _FilterCopies(dict):
    """A filter set's declared filters, copied for each instance one by one rather than deeply.

    django-filter deep-copies every filter, with its form field, widget and validators, for
    each request (about half a millisecond for a dozen filters). A filter's own attributes are
    all a request needs of its own (the instance sets `model` and `parent` on it); a filter
    with a `method` gets its method proxy bound anew, to the copy."""

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        copies = {}
        for name, declared in self.items():
            filter_ = copy.copy(declared)
            if getattr(filter_, "_method", None) is not None:
                filter_.method = filter_._method  # a FilterMethod of the copy, not of the declaration
            copies[name] = filter_
        return copies


class _SharedFields(dict):
    """A filter form's fields, which its instances share instead of each deep-copying them:
    nothing changes a filter form's field or widget after the class is made."""

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return dict(self)


class FilterSet(django_filters.FilterSet):
    """django-filter's FilterSet, made for a request without rebuilding what the declaration
    fixes.

    For every request django-filter deep-copies the declared filters, builds a new Form class
    from their fields (a class creation and its metaclass's work) and deep-copies that form's
    fields: about a millisecond for a dozen filters, as much as reading and serializing a small
    page. Here the form class is made once per filter set, its fields are shared by its
    instances, and the filters are copied one level deep (_FilterCopies). No filter here takes a
    queryset or choices from the request, which is what would make the form depend on it;
    tests/test_filters.py checks that concurrent requests each keep their own values."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        if not isinstance(cls.__dict__.get("base_filters"), _FilterCopies):
            cls.base_filters = _FilterCopies(cls.base_filters)
        super().__init__(*args, **kwargs)

    @property
    def qs(self) -> Any:
        """The queryset given, itself, when no filter has a value to narrow it (django-filter
        would return a copy, filtered by nothing): what its selector attached to it stays with
        it, such as the case list's count from the grants (selectors.case_list)."""
        if not hasattr(self, "_qs") and self.is_bound and not self.errors and self._narrows_nothing():
            self._qs = self.queryset
        return super().qs

    def _narrows_nothing(self) -> bool:
        return all(value in EMPTY_VALUES for value in self.form.cleaned_data.values())

    def get_form_class(self) -> Any:
        form_class = type(self).__dict__.get("_form_class")
        if form_class is None:
            form_class = super().get_form_class()
            form_class.base_fields = _SharedFields(form_class.base_fields)
            type(self)._form_class = form_class
        return form_class
