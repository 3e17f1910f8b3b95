"""`manage.py add_ingest_source NAME --agency CODE --case NUMBER`: create a machine client
bound to an operation and print its id and secret, once. Running it again for an existing
name says so and prints no secret; `--rotate` issues a new one (the old one keeps working for
`--overlap-hours`); `--deactivate` / `--activate` switch the source off and on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.exceptions import APIException

from cases.management import command_error
from cases.models import Case
from intercept import services
from intercept.models import IngestSource

SOURCE_EXISTS = (
    "Ingest source {name} already exists (id {id}); its secret is not shown again. Use --rotate for a new one."
)
NEEDS_CASE = "A new source needs --agency CODE and --case NUMBER (an operation of that agency)."
NO_SUCH_CASE = "No case {number} in agency {agency}."
BOUND_ELSEWHERE = "Ingest source {name} is bound to {number} ({agency}), not to what you gave."


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the source's name: letters, digits, '.', '_' or '-'")
        parser.add_argument("--agency", help="agency code, e.g. MCSO")
        parser.add_argument("--case", help="the operation's case number, e.g. MCSO-2026-00001")
        parser.add_argument("--rotate", action="store_true", help="issue a new secret for an existing source")
        parser.add_argument(
            "--overlap-hours",
            type=float,
            default=services.DEFAULT_OVERLAP.total_seconds() / 3600,
            help="with --rotate: how long the old secret keeps working (default 24; 0 = stop at once)",
        )
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--deactivate", action="store_true", help="refuse the source's requests from now on")
        state.add_argument("--activate", action="store_true", help="accept the source's requests again")

    def handle(self, *args: Any, name: str, agency: str | None, case: str | None, **options: Any) -> None:
        try:
            self._handle(name, agency, case, options)
        except (ValidationError, APIException) as exc:
            raise command_error(exc) from exc

    def _handle(self, name: str, agency: str | None, number: str | None, options: dict[str, Any]) -> None:
        source = IngestSource.objects.select_related("case", "agency").filter(name=name).first()
        if source is None:
            if not (agency and number):
                raise CommandError(NEEDS_CASE)
            case = Case.objects.filter(number=number.strip(), agency__code=agency.strip().upper()).first()
            if case is None:
                raise CommandError(NO_SUCH_CASE.format(number=number, agency=agency.upper()))
            issued = services.ingest_source_create(actor=None, name=name, case=case)
            self._print_secret("Created", issued)
            source = issued.source
        else:
            if (agency and agency.strip().upper() != source.agency.code) or (
                number and number.strip() != source.case.number
            ):
                raise CommandError(
                    BOUND_ELSEWHERE.format(name=name, number=source.case.number, agency=source.agency.code)
                )
            if options["rotate"]:
                overlap = timedelta(hours=options["overlap_hours"])
                self._print_secret("Rotated", services.ingest_source_rotate(actor=None, source=source, overlap=overlap))
            else:
                self.stdout.write(SOURCE_EXISTS.format(name=name, id=source.pk))
        if options["deactivate"] or options["activate"]:
            services.ingest_source_set_active(actor=None, source=source, active=bool(options["activate"]))
            self.stdout.write(f"Ingest source {name} is now {'active' if options['activate'] else 'inactive'}.")

    def _print_secret(self, verb: str, issued: services.IssuedSecret) -> None:
        source = issued.source
        self.stdout.write(self.style.SUCCESS(f"{verb} ingest source {source.name} for {source.case.number}."))
        self.stdout.write(f"  id:     {source.pk}")
        self.stdout.write(f"  secret: {issued.secret}")
        if source.previous_valid_until:
            self.stdout.write(f"  the previous secret keeps working until {source.previous_valid_until.isoformat()}")
        self.stdout.write("The secret is shown only now: put it in the client's configuration (X-Source-Id is the id).")
