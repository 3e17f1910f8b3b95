"""The service's database connection lost. Between requests: the next request succeeds
(CONN_HEALTH_CHECKS). Mid-request: a clean 503 with a reason, nothing half-written, the audit
chain still verifies, and the request after it succeeds.

The real thing runs on PostgreSQL: the backend is killed with pg_terminate_backend from another
connection, and requests go through Django's WSGI handler, whose request signals drop a broken
connection the way a deployed server does (the test client switches that off). The mapping of
a database error to a 503 is checked on every database."""

from __future__ import annotations

import io
import json
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.core.handlers.wsgi import WSGIHandler
from django.db import OperationalError, connection
from django.utils import timezone

from audit import sealing
from audit.models import AuditAction, AuditEvent
from audit.services import checkpoint_create
from audit.verify import verify_log
from caseapi.dbfaults import DATABASE_UNAVAILABLE, DATABASE_UNAVAILABLE_CODE
from cases import services as case_services
from cases.models import AuthToken, Case, ExportPacket
from cases.tokens import token_digest
from outbox.models import OutboxMessage
from tests.conftest import World, client_for
from tests.factories import UserFactory
from tests.faults.conftest import terminate_backend
from tests.faults.helpers import sent_handoff

MIDDLEWARE = "caseapi.dbfaults.DatabaseUnavailableMiddleware"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


def token_for(user: Any) -> str:
    key = secrets.token_urlsafe(32)
    AuthToken.objects.create(
        user=user, digest=token_digest(key), prefix=key[:8], expires_at=timezone.now() + django_settings.AUTH_TOKEN_TTL
    )
    return key


def wsgi(method: str, path: str, token: str, data: Any = None) -> Answer:
    """One request through the WSGI handler a server would call (request_started and
    request_finished included)."""
    body = b"" if data is None else json.dumps(data).encode()
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "HTTP_AUTHORIZATION": f"Token {token}",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started["status"], started["headers"] = int(status.split()[0]), dict(headers)

    result = WSGIHandler()(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        result.close()
    return Answer(status=started["status"], headers=started["headers"], content=content)


def backend_pid() -> int:
    connection.ensure_connection()
    return connection.connection.info.backend_pid


def assert_clean_503(answer: Answer) -> None:
    assert answer.status == 503, answer.content
    assert answer.json() == {"detail": DATABASE_UNAVAILABLE, "code": DATABASE_UNAVAILABLE_CODE}
    assert answer.headers["Retry-After"] == "1"
    assert b"Traceback" not in answer.content


def assert_audit_chain_verifies() -> None:
    sealing.seal_pending()
    checkpoint_create(actor=None)
    result = verify_log()
    assert result.ok, result.problems


@pytest.fixture
def health_checks_off() -> Iterator[None]:
    """The connection opened next has CONN_HEALTH_CHECKS off (it is read when connecting)."""
    previous = connection.settings_dict["CONN_HEALTH_CHECKS"]
    connection.close()
    connection.settings_dict["CONN_HEALTH_CHECKS"] = False
    try:
        yield
    finally:
        connection.settings_dict["CONN_HEALTH_CHECKS"] = previous
        connection.close()


# ---------------------------------------------------------------- on PostgreSQL, for real


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_connection_killed_between_requests_is_replaced_and_the_next_request_succeeds(world: World) -> None:
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True
    token = token_for(world.lead)
    first = wsgi("GET", "/api/cases/", token)
    assert first.status == 200, first.content
    assert connection.connection is not None, "the connection is kept between requests (CONN_MAX_AGE)"
    pid = backend_pid()

    terminate_backend(pid)

    second = wsgi("GET", "/api/cases/", token)
    assert second.status == 200, second.content
    assert second.json()["count"] == first.json()["count"]
    assert backend_pid() != pid


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_without_health_checks_the_dead_connection_gives_a_clean_503_and_then_recovers(
    world: World, health_checks_off: None
) -> None:
    """What CONN_HEALTH_CHECKS saves the first request from: the same fault, met mid-request."""
    token = token_for(world.lead)
    assert wsgi("GET", "/api/cases/", token).status == 200
    terminate_backend(backend_pid())

    assert_clean_503(wsgi("GET", "/api/cases/", token))
    assert wsgi("GET", "/api/cases/", token).status == 200


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_connection_killed_mid_request_gives_a_clean_503_with_nothing_half_written(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The packet row is written, then the backend dies before its audit event: the transaction
    (packet, audit event, outbox row) is all gone, the chain verifies, and a retry succeeds."""
    handoff = sent_handoff(world)
    token = token_for(world.prosecutor)
    assert_audit_chain_verifies()
    events = AuditEvent.objects.count()
    original = case_services.audit_record
    killed: list[int] = []

    def audit_record(**kwargs: Any) -> Any:
        if kwargs.get("action") == AuditAction.PACKET_REQUESTED and not killed:
            assert ExportPacket.objects.filter(handoff_id=handoff).exists()  # written, not committed
            killed.append(backend_pid())
            terminate_backend(killed[0])
        return original(**kwargs)

    monkeypatch.setattr(case_services, "audit_record", audit_record)

    answer = wsgi("POST", f"/api/handoffs/{handoff}/packets/", token)

    assert_clean_503(answer)
    assert killed
    assert not ExportPacket.objects.filter(handoff_id=handoff).exists()
    assert not OutboxMessage.objects.exists()
    assert AuditEvent.objects.count() == events
    assert not AuditEvent.objects.filter(action=AuditAction.PACKET_REQUESTED).exists()
    assert_audit_chain_verifies()

    retry = wsgi("POST", f"/api/handoffs/{handoff}/packets/", token)
    assert retry.status == 202, retry.content
    packet = ExportPacket.objects.get(handoff_id=handoff)
    assert str(packet.pk) == retry.json()["id"]
    assert OutboxMessage.objects.get().args == [str(packet.pk)]
    assert AuditEvent.objects.filter(action=AuditAction.PACKET_REQUESTED, target_id=str(packet.pk)).count() == 1
    assert_audit_chain_verifies()


# ---------------------------------------------------------------- the mapping, on any database


@pytest.mark.django_db
def test_an_api_view_that_loses_the_database_answers_503_with_a_reason(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lose_connection(**kwargs: Any) -> Case:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(case_services, "case_create", lose_connection)

    response = client_for(world.lead).post("/api/cases/", {"title": "Operation Daybreak"}, format="json")

    assert response.status_code == 503
    assert response.json() == {"detail": DATABASE_UNAVAILABLE, "code": DATABASE_UNAVAILABLE_CODE}
    assert response["Retry-After"] == "1"


@pytest.mark.django_db
def test_an_integrity_error_is_not_mistaken_for_an_outage(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import IntegrityError

    def broken(**kwargs: Any) -> Case:
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(case_services, "case_create", broken)
    client = client_for(world.lead)
    client.raise_request_exception = True
    with pytest.raises(IntegrityError):
        client.post("/api/cases/", {"title": "Operation Daybreak"}, format="json")


@pytest.mark.django_db
def test_a_page_outside_the_api_that_loses_the_database_answers_a_plain_503(
    client: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if MIDDLEWARE not in settings.MIDDLEWARE:
        settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]
    superuser = UserFactory(username="root_admin")
    superuser.is_staff = superuser.is_superuser = True
    superuser.save()
    client.force_login(superuser)

    def lose_connection(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(admin.site, "get_app_list", lose_connection)
    response = client.get("/admin/")

    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == f"Service Unavailable (503). {DATABASE_UNAVAILABLE}"
    assert response["Retry-After"] == "1"
