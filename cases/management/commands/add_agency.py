"""`manage.py add_agency CODE NAME --kind KIND`: create an agency or rename it; idempotent."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandParser

from caseapi.exceptions import Conflict
from cases import services
from cases.management import command_error
from cases.models import Agency, AgencyKind


class Command(BaseCommand):
    help = (
        "Create an agency (and its supervisors group), or update its name. Running it again with "
        "the same values changes nothing; a different kind for an existing code is refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("code", help="2-10 upper-case letters or digits, starting with a letter (e.g. MCSO)")
        parser.add_argument("name", help='full name, e.g. "Metro County Sheriff\'s Office"')
        parser.add_argument("--kind", required=True, choices=AgencyKind.values)

    def handle(self, *args: Any, code: str, name: str, kind: str, **options: Any) -> None:
        name = name.strip()
        if not name:
            raise command_error(ValidationError({"name": ["An agency needs a name."]}))
        before = Agency.objects.filter(code=code.strip().upper()).values_list("name", flat=True).first()
        try:
            agency, created = services.agency_ensure(code=code, name=name, kind=kind, actor=None)
        except (ValidationError, Conflict) as exc:
            raise command_error(exc) from exc
        if created:
            self.stdout.write(self.style.SUCCESS(f"Created agency {agency.code} ({agency.kind}): {agency.name}"))
        elif before != agency.name:
            self.stdout.write(self.style.SUCCESS(f"Updated agency {agency.code}: name {before!r} -> {agency.name!r}"))
        else:
            self.stdout.write(f"Agency {agency.code} already exists with these values; nothing changed.")
