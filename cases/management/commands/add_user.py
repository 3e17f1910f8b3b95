"""`manage.py add_user USERNAME --agency CODE --role ROLE [--password P]`: create a user or
bring one to that agency, role and password; idempotent. Never prints the password."""

from __future__ import annotations

import getpass
import sys
from typing import Any, TextIO

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from caseapi.exceptions import Conflict
from cases import services
from cases.management import command_error
from cases.models import Agency, Profile, Role

User = get_user_model()

PASSWORD_EMPTY = "The password cannot be empty."  # noqa: S105
PASSWORD_MISMATCH = "The two passwords do not match."  # noqa: S105
PASSWORD_REJECTED = "Password rejected: {reasons}"  # noqa: S105
AGENCY_UNKNOWN = "Unknown agency code {code!r}; create it first with `manage.py add_agency` (known: {known})."

USER_FIELDS = {"first_name": "--first-name", "last_name": "--last-name", "email": "--email"}
PROFILE_FIELDS = {"title": "--title", "phone": "--phone"}


class Command(BaseCommand):
    help = (
        "Create a user in an agency with one role, or bring an existing user to that agency, role "
        "and password. Without --password it prompts twice on a terminal, or reads one line from "
        "standard input (so scripts can pipe it in). Running it again with the same values changes "
        "nothing. Names, email, title and phone are set when the user is created."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--agency", required=True, metavar="CODE", help="code of an existing agency")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument(
            "--password",
            help="avoid on shared machines (visible in the process list); omit it to be prompted or to pipe it in",
        )
        parser.add_argument("--first-name", dest="first_name", default="")
        parser.add_argument("--last-name", dest="last_name", default="")
        parser.add_argument("--email", default="")
        parser.add_argument("--title", default="", help="job title shown to deconfliction contacts")
        parser.add_argument("--phone", default="", help="contact phone shown to deconfliction contacts")

    def handle(self, *args: Any, username: str, agency: str, role: str, password: str | None, **options: Any) -> None:
        agency_obj = Agency.objects.filter(code=agency.strip().upper()).first()
        if agency_obj is None:
            known = ", ".join(Agency.objects.values_list("code", flat=True)) or "none yet"
            raise CommandError(AGENCY_UNKNOWN.format(code=agency, known=known))
        fields = {name: options[name].strip() for name in (*USER_FIELDS, *PROFILE_FIELDS)}
        existing = User.objects.filter(username=username).first()
        candidate = existing or User(
            username=username, first_name=fields["first_name"], last_name=fields["last_name"], email=fields["email"]
        )
        if existing is None:
            self._check_new_user(candidate)
        if password is None:
            password = self._read_password(options.get("stdin") or sys.stdin)
        if not password:
            raise CommandError(PASSWORD_EMPTY)
        try:
            validate_password(password, user=candidate)
        except ValidationError as exc:
            raise CommandError(PASSWORD_REJECTED.format(reasons=" ".join(exc.messages))) from exc

        before = self._state(existing, password) if existing else None
        try:
            user, created = services.user_ensure(
                username=username, agency=agency_obj, role=role, password=password, actor=None, **fields
            )
        except (ValidationError, Conflict) as exc:
            raise command_error(exc) from exc

        if created:
            self.stdout.write(self.style.SUCCESS(f"Created user {user.get_username()} in {agency_obj.code} as {role}."))
            return
        self._warn_ignored(user, fields)
        after = self._state(user, None)
        changes = []
        if before["agency"] != after["agency"]:
            changes.append(f"agency {before['agency'] or '-'} -> {after['agency']}")
        if before["roles"] != after["roles"]:
            changes.append(f"role {', '.join(before['roles']) or '-'} -> {', '.join(after['roles'])}")
        if not before["password_same"]:
            changes.append("password changed")
        if changes:
            self.stdout.write(self.style.SUCCESS(f"Updated user {user.get_username()}: {'; '.join(changes)}."))
        else:
            self.stdout.write(
                f"User {user.get_username()} already exists in {agency_obj.code} as {role}; nothing changed."
            )

    def _check_new_user(self, candidate: AbstractBaseUser) -> None:
        """Refuse a bad username or email before asking for a password."""
        checked = {"username", "email"}
        try:
            candidate.clean_fields(exclude=[f.name for f in User._meta.fields if f.name not in checked])
        except ValidationError as exc:
            raise command_error(exc) from exc

    def _read_password(self, stdin: TextIO) -> str:
        if stdin.isatty():
            password = getpass.getpass("Password: ")
            if password and password != getpass.getpass("Password (again): "):
                raise CommandError(PASSWORD_MISMATCH)
            return password
        return stdin.readline().rstrip("\r\n")

    def _state(self, user: AbstractBaseUser, password: str | None) -> dict[str, Any]:
        profile = Profile.objects.select_related("agency").filter(user=user).first()
        return {
            "agency": profile.agency.code if profile else None,
            "roles": sorted(user.groups.filter(name__in=Role.values).values_list("name", flat=True)),
            "password_same": password is not None and user.check_password(password),
        }

    def _warn_ignored(self, user: AbstractBaseUser, fields: dict[str, str]) -> None:
        """Names and contact details are set at creation only; say so rather than pretend."""
        profile = Profile.objects.filter(user=user).first()
        for name, flag in {**USER_FIELDS, **PROFILE_FIELDS}.items():
            current = getattr(user, name) if name in USER_FIELDS else getattr(profile, name, "")
            if fields[name] and fields[name] != current:
                self.stderr.write(f"{flag} is applied only when a user is created; kept {current!r}.")
