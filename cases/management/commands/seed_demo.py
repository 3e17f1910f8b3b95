"""`manage.py seed_demo`: demo agencies, people, an operation with leads, identifiers, evidence
and custody, all made through the services (so audited). Refuses to run without DEBUG unless
--force; prints the demo credentials."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import APIException

from cases import services
from cases.management import command_error
from cases.models import (
    Agency,
    AgencyKind,
    Case,
    CaseKind,
    CasePriority,
    CustodyAction,
    EvidenceKind,
    Lead,
    LeadSource,
    LeadStatus,
    Role,
    TeamRole,
)
from intercept import services as intercept_services

DEMO_OPERATION_TITLE = "Operation Safe Harbor"
REFUSE_WITHOUT_DEBUG = (
    "seed_demo creates accounts whose passwords are printed and published; it runs only with "
    "DEBUG=1 (or --force on a disposable database)."
)

DEMO_SOURCE = "safe-harbor-bot"
DEMO_ADS = 300
DEMO_CONVERSATIONS = 100
DEMO_DAYS = 60

AGENCIES = [
    ("MCSO", "Metro County Sheriff's Office", AgencyKind.LAW_ENFORCEMENT),
    ("SAO", "State Attorney's Office", AgencyKind.PROSECUTOR),
]


@dataclass(frozen=True)
class Person:
    username: str
    agency: str
    role: str
    first_name: str
    last_name: str
    title: str
    phone: str

    @property
    def password(self) -> str:
        """Deterministic and plainly demo-only; long and unlike the username so that Django's
        password validators accept it."""
        return f"demo-{self.username}-not-for-production"


PEOPLE = [
    Person("mcso_investigator", "MCSO", Role.INVESTIGATOR, "Maria", "Alvarez", "Detective, Vice Unit", "+13055550101"),
    Person("mcso_investigator2", "MCSO", Role.INVESTIGATOR, "Dev", "Patel", "Detective, Vice Unit", "+13055550102"),
    Person("mcso_supervisor", "MCSO", Role.SUPERVISOR, "Ray", "Thompson", "Sergeant, Vice Unit", "+13055550103"),
    Person("mcso_prosecutor", "MCSO", Role.PROSECUTOR, "Lena", "Brooks", "Legal Advisor", "+13055550104"),
    Person("mcso_auditor", "MCSO", Role.AUDITOR, "Omar", "Haddad", "Internal Affairs Auditor", "+13055550105"),
    Person("mcso_agency_admin", "MCSO", Role.AGENCY_ADMIN, "Grace", "Kim", "Systems Administrator", "+13055550106"),
    Person("sao_investigator", "SAO", Role.INVESTIGATOR, "Tomas", "Reyes", "SAO Investigator", "+17865550111"),
    Person("sao_supervisor", "SAO", Role.SUPERVISOR, "Helen", "Carter", "Chief Investigator", "+17865550112"),
    Person("sao_prosecutor", "SAO", Role.PROSECUTOR, "Jordan", "Wells", "Assistant State Attorney", "+17865550113"),
    Person("sao_auditor", "SAO", Role.AUDITOR, "Priya", "Nair", "Compliance Auditor", "+17865550114"),
    Person("sao_agency_admin", "SAO", Role.AGENCY_ADMIN, "Sam", "Ortiz", "Systems Administrator", "+17865550115"),
]

TRANSCRIPT = """\
Decoy ad #14 - intercept bot transcript (DEMO DATA, fictional)
Channel: SMS to decoy number +1 305 555 0100, {day}
[21:14:03] buyer (+1 305-555-0142): hey saw ur ad, u available tonight?
[21:14:40] bot: maybe. how old r u looking for
[21:15:22] buyer: younger is better. ur 16 right?
[21:16:05] bot: 16, yes. what r u offering
[21:16:51] buyer: 200 cashapp $tjvisitor ok?
[21:17:30] bot: ok. where
[21:18:12] buyer: motel on 8th st, room 12, 11pm
"""


class Command(BaseCommand):
    help = (
        "Load demo data for a local run: agencies MCSO and SAO, a user for every role in each, "
        f"and the operation {DEMO_OPERATION_TITLE!r} with an investigation, leads, identifiers, "
        "evidence and custody. Safe to run again: existing demo data is kept and passwords are "
        "reset to the printed demo values. Refuses to run with DEBUG off unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="run even with DEBUG off (only on a throwaway database)"
        )

    def handle(self, *args: Any, force: bool, **options: Any) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(REFUSE_WITHOUT_DEBUG)
        try:
            with transaction.atomic():
                agencies = self._agencies()
                users = self._people(agencies)
                existing = Case.objects.filter(
                    agency=agencies["MCSO"], kind=CaseKind.OPERATION, title=DEMO_OPERATION_TITLE
                ).first()
                if existing is None:
                    operation = self._domain(users)
                    self._intercepts(operation)
                else:
                    self.stdout.write(
                        f"Demo operation {existing.number} {DEMO_OPERATION_TITLE!r} already exists; "
                        "leaving its cases, leads and evidence as they are."
                    )
        except (ValidationError, APIException) as exc:
            raise command_error(exc) from exc
        self._credentials()

    def _agencies(self) -> dict[str, Agency]:
        out = {}
        for code, name, kind in AGENCIES:
            agency, created = services.agency_ensure(code=code, name=name, kind=kind, actor=None)
            out[code] = agency
            self.stdout.write(f"Agency {code}: {'created' if created else 'already there'}.")
        return out

    def _people(self, agencies: dict[str, Agency]) -> dict[str, AbstractBaseUser]:
        out = {}
        created_count = 0
        for person in PEOPLE:
            user, created = services.user_ensure(
                username=person.username,
                agency=agencies[person.agency],
                role=person.role,
                password=person.password,
                actor=None,
                first_name=person.first_name,
                last_name=person.last_name,
                email=f"{person.username}@example.org",
                title=person.title,
                phone=person.phone,
            )
            out[person.username] = user
            created_count += created
        self.stdout.write(
            f"Users: {created_count} created, {len(PEOPLE) - created_count} already there (passwords set to the demo values)."
        )
        return out

    def _domain(self, users: dict[str, AbstractBaseUser]) -> Case:
        det = users["mcso_investigator"]
        partner = users["mcso_investigator2"]
        sergeant = users["mcso_supervisor"]
        now = timezone.now()

        operation = services.case_create(
            actor=det,
            title=DEMO_OPERATION_TITLE,
            kind=CaseKind.OPERATION,
            priority=CasePriority.HIGH,
            summary=(
                "DEMO DATA (fictional). Decoy ads on two escort sites answered by the intercept bot; "
                "buyers who ask for minors or arrange a meeting are triaged as leads."
            ),
        )
        services.team_member_set(actor=det, case=operation, user=partner, role=TeamRole.INVESTIGATOR)
        investigation = services.case_create(
            actor=det,
            title="Buyer tj_visitor (decoy ad #14)",
            kind=CaseKind.INVESTIGATION,
            priority=CasePriority.URGENT,
            summary="DEMO DATA (fictional). Buyer asked for a 16-year-old and set a meeting.",
            parent=operation,
        )
        services.team_member_set(actor=det, case=investigation, user=partner, role=TeamRole.INVESTIGATOR)

        def lead(case: Case, days_ago: int, identifiers: list[tuple[str, str]], **fields: Any) -> Any:
            created, _ = services.lead_create(
                actor=det,
                case=case,
                identifiers=[{"kind": k, "value": v} for k, v in identifiers],
                first_seen_at=now - timedelta(days=days_ago),
                last_seen_at=now - timedelta(days=max(days_ago - 2, 0)),
                **fields,
            )
            return created

        tj = lead(
            operation,
            9,
            [("phone", "(305) 555-0142"), ("handle", "@TJ_Visitor"), ("payment_handle", "$tjvisitor")],
            display_name="Buyer tj_visitor (decoy ad #14)",
            source=LeadSource.INTERCEPT_BOT,
            minor_age_mentioned=True,
            payment_discussed=True,
            meeting_arranged=True,
        )
        services.lead_update(actor=det, lead=tj, status=LeadStatus.TRIAGED)
        tj, _ = services.lead_update(actor=sergeant, lead=tj, status=LeadStatus.ASSIGNED, assignee=partner)
        owl = lead(
            operation,
            20,
            [("phone", "305.555.0188"), ("email", "Night.Owl77@Example.com"), ("payment_handle", "$nightowl77")],
            display_name="Repeat buyer nightowl77 (decoy ad #9)",
            source=LeadSource.INTERCEPT_BOT,
            payment_discussed=True,
            repeat_contact=True,
        )
        services.lead_update(actor=det, lead=owl, status=LeadStatus.TRIAGED)
        lead(
            operation,
            4,
            [("phone", "+1 786 555 0123")],
            display_name="Hotel clerk tip: caller booking by the hour",
            source=LeadSource.TIP,
            meeting_arranged=True,
            notes="Front desk reports the same caller booking rooms by the hour; no name given.",
        )
        lead(
            operation,
            12,
            [("phone", "1-954-555-0199"), ("handle", "sunny.days.954")],
            display_name="Number reused across 6 escort ads",
            source=LeadSource.AD_ANALYSIS,
            priority_override=40,
            notes="Ad analysis: one number in six ads over two sites; possible organizer, not a buyer.",
        )
        quiet = lead(
            operation,
            15,
            [("handle", "quiet_buyer")],
            display_name="Buyer quiet_buyer (decoy ad #3)",
            source=LeadSource.INTERCEPT_BOT,
        )
        services.lead_update(actor=det, lead=quiet, status=LeadStatus.CLOSED_NO_ACTION)
        target = lead(
            investigation,
            9,
            [("phone", "305-555-0142"), ("email", "tj.visitor@example.net")],
            display_name="Target: tj_visitor",
            source=LeadSource.INVESTIGATOR,
            minor_age_mentioned=True,
            meeting_arranged=True,
            notes="Same phone as the operation lead, typed differently; identifiers link the two.",
        )

        collected = now - timedelta(days=8)
        transcript = services.evidence_create(
            actor=det,
            case=operation,
            lead=tj,
            kind=EvidenceKind.CHAT_TRANSCRIPT,
            upload=SimpleUploadedFile(
                "decoy-ad-14-transcript.txt",
                TRANSCRIPT.format(day=collected.date().isoformat()).encode(),
                content_type="text/plain",
            ),
            description="Intercept bot transcript, decoy ad #14, buyer tj_visitor.",
            collected_at=collected,
            location="Intercept bot export",
        )
        ad_uri = "evidence://mcso-vault/ad-captures/decoy-14.warc"
        services.evidence_create(
            actor=det,
            case=operation,
            lead=tj,
            kind=EvidenceKind.AD_CAPTURE,
            external_uri=ad_uri,
            sha256=hashlib.sha256(ad_uri.encode()).hexdigest(),
            size_bytes=734_208,
            media_type="application/warc",
            description="Capture of decoy ad #14 as it was published (held in the MCSO evidence vault).",
            collected_at=collected - timedelta(days=2),
        )
        subpoena_uri = "evidence://mcso-vault/subpoena-returns/carrier-3055550142.pdf"
        services.evidence_create(
            actor=det,
            case=investigation,
            lead=target,
            kind=EvidenceKind.SUBPOENA_RETURN,
            external_uri=subpoena_uri,
            sha256=hashlib.sha256(subpoena_uri.encode()).hexdigest(),
            size_bytes=48_213,
            media_type="application/pdf",
            description="Carrier subscriber records for +13055550142.",
            collected_at=now - timedelta(days=3),
        )

        unit = "MCSO Digital Evidence Unit"
        custody = [
            (det, CustodyAction.RECEIVED, 1, det.get_full_name(), unit, "Logged into the evidence system"),
            (partner, CustodyAction.CHECKED_OUT, 24, unit, partner.get_full_name(), "Review for the PC affidavit"),
            (partner, CustodyAction.CHECKED_IN, 28, partner.get_full_name(), unit, "Returned after review"),
            (det, CustodyAction.TRANSFERRED, 48, unit, "MCSO Forensic Lab", "Working copy for phone correlation"),
        ]
        for actor, action, hours, from_party, to_party, note in custody:
            services.custody_record(
                actor=actor,
                item=transcript,
                action=action,
                occurred_at=collected + timedelta(hours=hours),
                from_party=from_party,
                to_party=to_party,
                location="MCSO HQ, 1200 Harbor Blvd",
                note=note,
            )
        verified = services.evidence_verify(actor=sergeant, item=transcript)

        priorities = Lead.objects.filter(case__in=[operation, investigation]).values_list("priority", flat=True)
        self.stdout.write(self.style.SUCCESS(f"Created operation {operation.number} {operation.title!r}"))
        self.stdout.write(f"  investigation {investigation.number} {investigation.title!r} (child of the operation)")
        self.stdout.write(f"  {len(priorities)} leads, priorities {', '.join(map(str, priorities))}")
        self.stdout.write(f"  lead {tj.display_name!r} assigned to {partner.get_username()}")
        self.stdout.write(
            f"  3 evidence items: 1 stored transcript ({transcript.sha256[:12]}...), 2 external references"
        )
        self.stdout.write(
            "  custody of the transcript: collected, received, checked out, checked in, transferred, "
            f"verified ({'match' if verified.details['match'] else 'MISMATCH'})"
        )
        return operation

    def _intercepts(self, operation: Case) -> None:
        """An ingest source bound to the operation, and a modest synthetic data set pushed
        through it by `simulate_intercepts` (service layer): ads, bot conversations, the
        buyer leads and transcript evidence they produce."""
        issued = intercept_services.ingest_source_create(actor=None, name=DEMO_SOURCE, case=operation)
        summary = io.StringIO()
        call_command(
            "simulate_intercepts",
            source=DEMO_SOURCE,
            ads=DEMO_ADS,
            conversations=DEMO_CONVERSATIONS,
            days=DEMO_DAYS,
            seed=1,
            stdout=summary,
            stderr=io.StringIO(),
        )
        self.stdout.write(f"  intercepts (simulate_intercepts, {DEMO_DAYS} days):")
        for line in summary.getvalue().splitlines():
            self.stdout.write(f"    {line}")
        self.stdout.write(
            f"  ingest source {DEMO_SOURCE}: id {issued.source.pk}, secret {issued.secret} "
            "(DEMO ONLY; push more with: manage.py simulate_intercepts --source "
            f"{DEMO_SOURCE} --url http://127.0.0.1:8000 --secret <secret> --seed 2)"
        )

    def _credentials(self) -> None:
        rows = [("username", "role", "agency", "password")] + [
            (p.username, p.role, p.agency, p.password) for p in PEOPLE
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        self.stdout.write("")
        self.stdout.write(self.style.WARNING("Demo accounts (DEMO ONLY - never use these on real data):"))
        for index, row in enumerate(rows):
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            self.stdout.write(("  " + line).rstrip())
            if index == 0:
                self.stdout.write("  " + "  ".join("-" * width for width in widths))
        self.stdout.write("")
        self.stdout.write("Sign in at /admin/, or get an API token: POST /api/auth/token/ {username, password}.")
