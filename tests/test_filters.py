"""caseapi.filters.FilterSet: each filter set instance works on filters of its own, copied one
level deep from the declaration, with a form class made once and fields shared read-only. These
tests try to make instances leak into each other: method filters bound to the wrong instance,
errors or values of one request seen by another, declarations changed by a request."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.http import QueryDict

from audit.api.filters import AuditEventFilter
from audit.models import AuditEvent
from caseapi.filters import FilterSet
from cases.api.filters import CaseFilter, EvidenceFilter, HandoffFilter, LeadFilter
from cases.models import Case, EvidenceItem, Handoff, Lead
from intercept.api.filters import AdFilter, ConversationFilter
from intercept.models import Ad, Conversation
from tests.factories import LeadFactory

MODELS = {
    AuditEventFilter: AuditEvent,
    CaseFilter: Case,
    EvidenceFilter: EvidenceItem,
    HandoffFilter: Handoff,
    LeadFilter: Lead,
    AdFilter: Ad,
    ConversationFilter: Conversation,
}
FILTER_SETS = list(MODELS)


def unbound(filter_set):
    return filter_set(QueryDict(""), queryset=MODELS[filter_set].objects.none())


@pytest.mark.parametrize("filter_set", FILTER_SETS, ids=lambda cls: cls.__name__)
def test_every_filter_set_gets_the_copying_base(filter_set):
    assert issubclass(filter_set, FilterSet)


@pytest.mark.parametrize("filter_set", FILTER_SETS, ids=lambda cls: cls.__name__)
def test_each_instance_has_filters_of_its_own_bound_to_it(filter_set):
    first, second = unbound(filter_set), unbound(filter_set)
    for name, declared in filter_set.base_filters.items():
        mine, theirs = first.filters[name], second.filters[name]
        assert mine is not declared and mine is not theirs
        assert mine.parent is first and theirs.parent is second
        assert not hasattr(declared, "parent")  # the declaration is never given a request's filter set
        if getattr(declared, "_method", None) is not None:
            assert mine.filter.f is mine and theirs.filter.f is theirs


@pytest.mark.parametrize("filter_set", FILTER_SETS, ids=lambda cls: cls.__name__)
def test_the_form_class_is_made_once_with_the_fields_django_filter_would_make(filter_set):
    first, second = unbound(filter_set), unbound(filter_set)
    assert type(first.form) is type(second.form)
    assert first.form is not second.form
    assert list(first.form.fields) == list(django_filter_form_fields(filter_set))


def django_filter_form_fields(filter_set):
    import django_filters

    instance = unbound(filter_set)
    return django_filters.FilterSet.get_form_class(instance).base_fields


@pytest.mark.django_db
def test_a_method_filter_reads_its_own_request(world):
    """Two requests with different values of a method filter (the identifier search), built
    before either is evaluated: each finds what its own value means."""
    lead_with = LeadFactory(case=world.case, identifiers=[{"kind": "handle", "value": "night_owl"}])
    found = LeadFilter(QueryDict("identifier=@Night_Owl"), queryset=Lead.objects.all())
    nothing = LeadFilter(QueryDict("identifier=nobody-has-this-handle"), queryset=Lead.objects.all())
    assert lead_with in list(found.qs)
    assert list(nothing.qs) == []
    assert lead_with in list(found.qs)


def test_one_requests_invalid_value_is_not_another_requests_error():
    bad = LeadFilter(QueryDict("case=not-a-uuid"), queryset=Lead.objects.none())
    good = LeadFilter(QueryDict(f"case={uuid.uuid4()}"), queryset=Lead.objects.none())
    assert not bad.is_valid() and "case" in bad.errors
    assert good.is_valid() and not good.errors
    assert "case" in LeadFilter(QueryDict("case=still-not"), queryset=Lead.objects.none()).errors


def test_concurrent_requests_each_keep_their_own_values():
    """Threads build and validate filter sets at once, each with its own case id (some
    invalid): every one sees its own value, none another's."""
    failures: list[str] = []
    start = threading.Barrier(8)

    def work(n: int) -> None:
        start.wait()
        for i in range(200):
            value = "bad-value" if (n + i) % 5 == 0 else str(uuid.UUID(int=n * 1000 + i))
            filters = LeadFilter(QueryDict(f"case={value}"), queryset=Lead.objects.none())
            valid = filters.is_valid()
            if value == "bad-value":
                if valid or "case" not in filters.errors:
                    failures.append(f"{n}/{i}: an invalid value passed")
            elif not valid or str(filters.form.cleaned_data["case"]) != value:
                failures.append(f"{n}/{i}: read {filters.form.cleaned_data.get('case')} for {value}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
