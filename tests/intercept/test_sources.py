"""Ingest sources: made by an agency's admins (admin screen) or operators (add_ingest_source),
bound to an operation of their agency, with a secret shown once and kept only encrypted,
rotated with an overlap, switched off and on; every change audited."""

from __future__ import annotations

import io
import re
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied

from audit.models import AuditEvent
from caseapi.exceptions import Conflict
from cases.models import Role
from intercept import services, signing
from intercept.events import InterceptAction
from intercept.management.commands import add_ingest_source
from intercept.models import IngestSource
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def signs_with(source: IngestSource, secret: str) -> bool:
    body = b'{"items": []}'
    stamp = str(int(time.time()))
    try:
        services.ingest_authenticate(
            source_id=str(source.pk),
            timestamp=stamp,
            signature="sha256=" + signing.signature(secret, stamp, body),
            body=body,
        )
    except services.IngestAuthError:
        return False
    return True


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("add_ingest_source", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def printed_secret(output: str) -> str:
    return re.search(r"secret: (\S+)", output).group(1)


# ---------------------------------------------------------------- services


def test_a_new_source_keeps_its_secret_only_encrypted(op, world):
    issued = services.ingest_source_create(actor=world.admin, name="nightfall-bot", case=op)
    source = IngestSource.objects.get()
    assert issued.secret not in source.secret_encrypted
    assert signing.decrypt_secret(source.secret_encrypted) == issued.secret
    assert (source.agency, source.case, source.is_active, source.created_by) == (world.agency_a, op, True, world.admin)
    event = AuditEvent.objects.get(action=InterceptAction.SOURCE_CREATED)
    assert (event.actor, event.target_id, event.case_id) == (world.admin, str(source.pk), op.pk)
    assert event.changes == {"name": [None, "nightfall-bot"], "case": [None, op.number], "is_active": [None, True]}
    assert issued.secret not in str(event.changes)


def test_a_secret_encrypted_under_an_old_secret_key_still_opens_as_a_fallback(op, settings):
    issued = services.ingest_source_create(actor=None, name="nightfall-bot", case=op)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-rotated-secret-key-" + "x" * 40
    assert signs_with(issued.source, issued.secret)
    settings.SECRET_KEY_FALLBACKS = []
    assert not signs_with(issued.source, issued.secret)


def test_only_the_agencys_admins_manage_its_sources(op, world):
    with pytest.raises(PermissionDenied):
        services.ingest_source_create(actor=world.lead, name="nightfall-bot", case=op)
    other_admin = UserFactory(username="ola_admin", agency=world.agency_b, role=Role.AGENCY_ADMIN)
    with pytest.raises(PermissionDenied):
        services.ingest_source_create(actor=other_admin, name="nightfall-bot", case=op)
    source = services.ingest_source_create(actor=world.admin, name="nightfall-bot", case=op).source
    with pytest.raises(PermissionDenied):
        services.ingest_source_rotate(actor=other_admin, source=source)
    with pytest.raises(PermissionDenied):
        services.ingest_source_set_active(actor=world.supervisor, source=source, active=False)
    assert AuditEvent.objects.filter(action=InterceptAction.SOURCE_CREATED).count() == 1


def test_a_source_name_is_taken_once(op):
    services.ingest_source_create(actor=None, name="nightfall-bot", case=op)
    with pytest.raises(Conflict):
        services.ingest_source_create(actor=None, name="nightfall-bot", case=op)


def test_a_rotation_and_a_deactivation_are_audited(op, world):
    source = services.ingest_source_create(actor=None, name="nightfall-bot", case=op).source
    before = timezone.now()
    rotated = services.ingest_source_rotate(actor=world.admin, source=source, overlap=timedelta(hours=2))
    event = AuditEvent.objects.get(action=InterceptAction.SOURCE_ROTATED)
    assert event.actor == world.admin
    old, new = event.changes["previous_valid_until"]
    assert old is None and new == rotated.source.previous_valid_until.isoformat()
    assert before + timedelta(hours=2) <= rotated.source.previous_valid_until
    services.ingest_source_set_active(actor=world.admin, source=source, active=False)
    assert AuditEvent.objects.get(action=InterceptAction.SOURCE_UPDATED).changes == {"is_active": [True, False]}


# ---------------------------------------------------------------- manage.py add_ingest_source


def test_the_command_prints_the_id_and_secret_once(op):
    output = run("nightfall-bot", "--agency", "mcso", "--case", op.number)
    source = IngestSource.objects.get(name="nightfall-bot")
    assert f"id:     {source.pk}" in output
    secret = printed_secret(output)
    assert signs_with(source, secret)
    again = run("nightfall-bot", "--agency", "MCSO", "--case", op.number)
    assert again.strip() == add_ingest_source.SOURCE_EXISTS.format(name="nightfall-bot", id=source.pk)
    assert secret not in again
    assert IngestSource.objects.count() == 1


def test_the_command_rotates_with_an_overlap(op):
    first = printed_secret(run("nightfall-bot", "--agency", "MCSO", "--case", op.number))
    output = run("nightfall-bot", "--rotate", "--overlap-hours", "1")
    second = printed_secret(output)
    source = IngestSource.objects.get()
    assert second != first
    assert "the previous secret keeps working until" in output
    assert signs_with(source, first) and signs_with(source, second)
    run("nightfall-bot", "--rotate", "--overlap-hours", "0")
    assert not signs_with(source, first) and not signs_with(source, second)


def test_the_command_switches_a_source_off_and_on(op):
    secret = printed_secret(run("nightfall-bot", "--agency", "MCSO", "--case", op.number))
    source = IngestSource.objects.get()
    run("nightfall-bot", "--deactivate")
    assert not signs_with(source, secret)
    run("nightfall-bot", "--activate")
    assert signs_with(source, secret)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["new-bot"], add_ingest_source.NEEDS_CASE),
        (
            ["new-bot", "--agency", "RCPD", "--case", "{op}"],
            add_ingest_source.NO_SUCH_CASE.format(number="{op}", agency="RCPD"),
        ),
        (["bad name!", "--agency", "MCSO", "--case", "{op}"], services.SOURCE_NAME_INVALID),
    ],
)
def test_the_command_explains_what_is_wrong_in_one_line(op, args, message):
    with pytest.raises(CommandError) as exc:
        run(*[a.format(op=op.number) for a in args])
    assert str(exc.value).endswith(message.format(op=op.number))
    assert not IngestSource.objects.exists()


def test_the_command_refuses_an_investigation(world):
    with pytest.raises(CommandError) as exc:
        run("nightfall-bot", "--agency", "MCSO", "--case", world.case.number)
    assert str(exc.value) == "case: " + services.SOURCE_CASE_NOT_OPERATION.format(number=world.case.number)


# ---------------------------------------------------------------- the admin


def admin_client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_agency_admin_creates_a_source_in_the_admin_and_sees_the_secret_once(op, other_op, world):
    client = admin_client(world.admin)
    form = client.get("/admin/intercept/ingestsource/add/")
    assert form.status_code == 200
    assert op.number.encode() in form.content and other_op.number.encode() not in form.content
    response = client.post("/admin/intercept/ingestsource/add/", {"name": "nightfall-bot", "case": str(op.pk)})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    source = IngestSource.objects.get()
    secret = re.search(rb'<code class="secret">([^<]+)</code>', response.content).group(1).decode()
    assert signs_with(source, secret)
    listing = client.get("/admin/intercept/ingestsource/")
    detail = client.get(f"/admin/intercept/ingestsource/{source.pk}/change/")
    assert listing.status_code == detail.status_code == 200
    assert secret.encode() not in listing.content + detail.content
    assert AuditEvent.objects.get(action=InterceptAction.SOURCE_CREATED).actor == world.admin


def test_an_agency_admin_cannot_bind_a_source_to_another_agencys_operation(op, other_op, world):
    client = admin_client(world.admin)
    response = client.post("/admin/intercept/ingestsource/add/", {"name": "sneaky", "case": str(other_op.pk)})
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    assert not IngestSource.objects.exists()


def test_the_rotate_action_shows_the_new_secret_once(op, world):
    issued = services.ingest_source_create(actor=None, name="nightfall-bot", case=op)
    client = admin_client(world.admin)
    response = client.post(
        "/admin/intercept/ingestsource/",
        {"action": "rotate_secrets", "_selected_action": [str(issued.source.pk)]},
    )
    assert response.status_code == 200
    secret = re.search(rb'<code class="secret">([^<]+)</code>', response.content).group(1).decode()
    assert secret != issued.secret
    assert signs_with(issued.source, secret) and signs_with(issued.source, issued.secret)
    assert AuditEvent.objects.get(action=InterceptAction.SOURCE_ROTATED).actor == world.admin


def test_sources_are_scoped_to_the_admins_agency(op, other_op, world):
    services.ingest_source_create(actor=None, name="river-bot", case=other_op)
    assert b"river-bot" not in admin_client(world.admin).get("/admin/intercept/ingestsource/").content
    for person in (world.supervisor, world.lead):
        assert admin_client(person).get("/admin/intercept/ingestsource/").status_code == 403
        assert admin_client(person).get("/admin/intercept/ingestsource/add/").status_code == 403
