"""factory_boy factories. Domain objects are created through their services, so the
permissions and audit events of a real create come with them."""

from __future__ import annotations

import hashlib
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from cases import services
from cases.models import Agency, AgencyKind, Case, CaseKind, EvidenceItem, EvidenceKind, Lead, Role

User = get_user_model()
TEST_PASSWORD = "correct horse battery staple"


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"group-{n}")


class AgencyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agency
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"AG{n:03d}")
    name = factory.LazyAttribute(lambda o: f"{o.code} County Sheriff")
    kind = AgencyKind.LAW_ENFORCEMENT
    supervisors = factory.LazyAttribute(lambda o: GroupFactory(name=f"{o.code} supervisors"))


class UserFactory(factory.django.DjangoModelFactory):
    """A user of `agency` with `role` (through the same service as `manage.py add_user`)."""

    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")

    @classmethod
    def _create(
        cls,
        model_class: Any,
        *args: Any,
        agency: Agency | None = None,
        role: str = Role.INVESTIGATOR,
        password: str | None = TEST_PASSWORD,
        title: str = "Detective",
        phone: str = "+15555550100",
        **kwargs: Any,
    ) -> Any:
        agency = agency or AgencyFactory()
        user, _ = services.user_ensure(
            username=kwargs["username"],
            agency=agency,
            role=role,
            password=password,
            first_name=kwargs.get("first_name", ""),
            last_name=kwargs.get("last_name", ""),
            email=kwargs.get("email", ""),
            title=title,
            phone=phone,
        )
        return user


class CaseFactory(factory.django.DjangoModelFactory):
    """Opened by `actor` through `case_create` (actor becomes lead; supervisors get access)."""

    class Meta:
        model = Case

    title = factory.Sequence(lambda n: f"Operation {n}")
    kind = CaseKind.INVESTIGATION

    @classmethod
    def _create(cls, model_class: Any, *args: Any, actor: Any = None, **kwargs: Any) -> Case:
        actor = actor or UserFactory()
        return services.case_create(actor=actor, **kwargs)


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lead

    display_name = factory.Faker("name")

    @classmethod
    def _create(cls, model_class: Any, *args: Any, case: Case, actor: Any = None, **kwargs: Any) -> Lead:
        lead, _ = services.lead_create(actor=actor or case.lead_investigator, case=case, **kwargs)
        return lead


class EvidenceFactory(factory.django.DjangoModelFactory):
    """An external reference by default; pass `upload=` for stored content."""

    class Meta:
        model = EvidenceItem

    kind = EvidenceKind.DOCUMENT
    external_uri = factory.Sequence(lambda n: f"evidence://vault/item-{n}")
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.external_uri.encode()).hexdigest())
    size_bytes = 1234

    @classmethod
    def _create(cls, model_class: Any, *args: Any, case: Case, actor: Any = None, **kwargs: Any) -> EvidenceItem:
        if kwargs.get("upload") is not None:
            kwargs.pop("external_uri", None)
            kwargs.pop("sha256", None)
            kwargs.pop("size_bytes", None)
        return services.evidence_create(actor=actor or case.lead_investigator, case=case, **kwargs)
