"""What must be audited (the CJIS list): every mutating API route records who acted, on what,
and which fields changed; logins, lockouts, tokens, role changes and unlocks; reads of case
content, downloads and exports. New routes cannot escape: a route without a recipe fails."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent, Checkpoint
from audit.sealing import seal_pending
from cases import services
from cases.identifiers import audit_label
from cases.models import (
    AuthToken,
    CaseStatus,
    DeconflictionHit,
    EvidenceItem,
    ExportPacket,
    Handoff,
    HandoffStatus,
    PacketStatus,
    Profile,
    Role,
    TeamRole,
)
from tests.conftest import World, client_for
from tests.factories import TEST_PASSWORD, EvidenceFactory, LeadFactory

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Logins (POST /api/auth/token/) have no acting user yet; they are covered below on their own.
# Walked elsewhere: logins below; machine-client ingest (no acting user: the source is named)
# and conversation snapshots in tests/intercept (test_auth.py, test_conversations.py,
# test_snapshots.py), which assert their events.
NOT_WALKED = {
    ("auth-token", "POST"),
    ("ingest-conversations", "POST"),
    ("ingest-ads", "POST"),
    ("conversation-snapshot", "POST"),
}
DOCUMENTATION_ROUTES = {"schema", "docs"}
HIDDEN_PHONE = "(202) 555-0199"


# ---------------------------------------------------------------- the URL conf


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route, entry


def api_routes(methods: set[str]) -> set[tuple[str, str]]:
    """(route name, METHOD) of every /api/ route whose view answers one of `methods`."""
    found = set()
    for route, pattern in _walk(get_resolver().url_patterns):
        if not route.startswith("api/") or pattern.name in DOCUMENTATION_ROUTES:
            continue
        view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
        assert view is not None and pattern.name, f"/{route}: not a named class-based view"
        for method in view.http_method_names:
            if method.upper() in methods and hasattr(view, method):
                found.add((pattern.name, method.upper()))
    return found


# ---------------------------------------------------------------- objects the recipes act on


@dataclass
class Ctx:
    world: World

    @cached_property
    def lead_obj(self) -> Any:
        return LeadFactory(case=self.world.case, display_name="Buyer on Nightfall")

    @cached_property
    def evidence(self) -> EvidenceItem:
        content = SimpleUploadedFile("chat.txt", b"buyer: how much\nbot: 200\n", content_type="text/plain")
        return EvidenceFactory(case=self.world.case, upload=content)

    def handoff(self, stage: str) -> Handoff:
        """A handoff of the case to the prosecutor, drafted by the lead, taken to `stage`
        (draft, pending_review, sent) through the services."""
        world = self.world
        handoff = services.handoff_create(
            actor=world.lead,
            case=world.case,
            prosecutor=world.prosecutor,
            leads=[self.lead_obj],
            evidence=[self.evidence],
            charges=[{"statute": "F.S. 796.07", "text": "Solicitation"}],
            narrative="First contact through the decoy ad.",
        )
        if stage in (HandoffStatus.PENDING_REVIEW, HandoffStatus.SENT):
            handoff = services.handoff_submit(actor=world.lead, handoff=handoff)
        if stage == HandoffStatus.SENT:
            handoff = services.handoff_review(actor=world.supervisor, handoff=handoff, approve=True)
        return handoff

    @cached_property
    def ready_packet(self) -> ExportPacket:
        packet = services.packet_request(actor=self.world.lead, handoff=self.handoff(HandoffStatus.SENT))
        built = services.packet_build(packet_id=packet.pk)
        assert built.status == PacketStatus.READY, built.error
        return built

    @cached_property
    def hidden_lead(self) -> Any:
        """A lead of agency B's case carrying a phone agency A will check."""
        return LeadFactory(
            case=self.world.other_case, display_name="Hidden", identifiers=[{"kind": "phone", "value": HIDDEN_PHONE}]
        )


@dataclass(frozen=True)
class Expect:
    """One event the call must record: its action, its target (`None`: the action concerns no
    single row, e.g. a verification of the whole log) and the fields its changes must name;
    `exact` pins whole change values."""

    action: str
    target: tuple[str, str] | None
    fields: frozenset[str]
    exact: dict[str, Any] = field(default_factory=dict)
    case_id: Any = None


@dataclass
class Call:
    persona: str
    method: str
    path: str
    body: dict[str, Any] | None
    status: int
    expect: Callable[[Any], list[Expect]]
    format: str = "json"


def target(obj: Any) -> tuple[str, str]:
    return obj._meta.label_lower, str(obj.pk)


def fields(*names: str) -> frozenset[str]:
    return frozenset(names)


RECIPES: dict[tuple[str, str], Callable[[Ctx], Call]] = {}


def recipe(name: str, method: str) -> Callable[[Callable[[Ctx], Call]], Callable[[Ctx], Call]]:
    def register(make: Callable[[Ctx], Call]) -> Callable[[Ctx], Call]:
        RECIPES[(name, method)] = make
        return make

    return register


@recipe("auth-logout", "POST")
def _logout(ctx: Ctx) -> Call:
    def expect(response: Any) -> list[Expect]:
        token = AuthToken.objects.get(user=ctx.world.lead, revoked_at__isnull=False)
        return [Expect(AuditAction.TOKEN_REVOKED, target(token), fields("revoked_at", "owner"))]

    return Call("lead", "POST", reverse("auth-logout"), None, 204, expect)


@recipe("case-list", "POST")
def _case_create(ctx: Ctx) -> Call:
    def expect(response: Any) -> list[Expect]:
        case_id = response.json()["id"]
        return [
            Expect(
                AuditAction.CASE_CREATED,
                ("cases.case", case_id),
                fields("number", "title", "kind", "priority", "team"),
                exact={"title": [None, "Operation Daybreak"], "kind": [None, "operation"]},
                case_id=case_id,
            )
        ]

    return Call("lead", "POST", reverse("case-list"), {"title": "Operation Daybreak", "kind": "operation"}, 201, expect)


@recipe("case-detail", "PATCH")
def _case_update(ctx: Ctx) -> Call:
    case = ctx.world.case
    body = {"summary": "Buyers answer the decoy ad within minutes.", "status": CaseStatus.ACTIVE}

    def expect(response: Any) -> list[Expect]:
        return [
            Expect(
                AuditAction.CASE_UPDATED,
                target(case),
                fields("summary"),
                exact={"summary": ["", body["summary"]]},
                case_id=case.pk,
            ),
            Expect(
                AuditAction.CASE_STATUS_CHANGED,
                target(case),
                fields("status"),
                exact={"status": ["open", "active"]},
                case_id=case.pk,
            ),
        ]

    return Call("lead", "PATCH", reverse("case-detail", kwargs={"pk": case.pk}), body, 200, expect)


@recipe("case-team", "POST")
def _team_add(ctx: Ctx) -> Call:
    case, newcomer = ctx.world.case, ctx.world.investigator

    def expect(response: Any) -> list[Expect]:
        return [
            Expect(
                AuditAction.TEAM_MEMBER_SET,
                target(case),
                fields("member", "member_id", "role"),
                exact={"member_id": newcomer.pk, "role": [None, TeamRole.VIEWER]},
                case_id=case.pk,
            )
        ]

    body = {"user": newcomer.pk, "role": TeamRole.VIEWER}
    return Call("lead", "POST", reverse("case-team", kwargs={"pk": case.pk}), body, 201, expect)


@recipe("case-team-member", "DELETE")
def _team_remove(ctx: Ctx) -> Call:
    case, member = ctx.world.case, ctx.world.viewer

    def expect(response: Any) -> list[Expect]:
        return [
            Expect(
                AuditAction.TEAM_MEMBER_REMOVED,
                target(case),
                fields("member", "member_id", "role"),
                exact={"member_id": member.pk, "role": [TeamRole.VIEWER, None]},
                case_id=case.pk,
            )
        ]

    path = reverse("case-team-member", kwargs={"pk": case.pk, "user_id": member.pk})
    return Call("lead", "DELETE", path, None, 204, expect)


@recipe("lead-list", "POST")
def _lead_create(ctx: Ctx) -> Call:
    case = ctx.world.case
    body = {
        "case": str(case.pk),
        "display_name": "Buyer 2",
        "identifiers": [{"kind": "email", "value": "buyer2@example.org"}],
    }

    def expect(response: Any) -> list[Expect]:
        return [
            Expect(
                AuditAction.LEAD_CREATED,
                ("cases.lead", response.json()["id"]),
                fields("display_name", "status", "identifiers"),
                exact={"display_name": "changed", "identifiers": [[], [audit_label("email", "buyer2@example.org")]]},
                case_id=case.pk,
            )
        ]

    return Call("teammate", "POST", reverse("lead-list"), body, 201, expect)


@recipe("lead-detail", "PATCH")
def _lead_update(ctx: Ctx) -> Call:
    lead = ctx.lead_obj

    def expect(response: Any) -> list[Expect]:
        return [
            Expect(
                AuditAction.LEAD_UPDATED,
                target(lead),
                fields("notes"),
                exact={"notes": "changed"},
                case_id=lead.case_id,
            )
        ]

    body = {"notes": "Asked twice about price."}
    return Call("teammate", "PATCH", reverse("lead-detail", kwargs={"pk": lead.pk}), body, 200, expect)


@recipe("deconfliction-check", "POST")
def _deconfliction(ctx: Ctx) -> Call:
    hidden = ctx.hidden_lead

    def expect(response: Any) -> list[Expect]:
        hit = DeconflictionHit.objects.get(requested_by=ctx.world.lead)
        identifier = audit_label("phone", "+12025550199")
        return [
            Expect(AuditAction.DECONFLICTION_CHECKED, None, fields("identifiers"), exact={"identifiers": [identifier]}),
            Expect(
                AuditAction.DECONFLICTION_HIT,
                target(hit),
                fields("identifier", "matched_agency"),
                exact={"identifier": identifier, "matched_agency": "RCPD"},
            ),
            Expect(
                AuditAction.DECONFLICTION_NOTIFIED,
                target(hit),
                fields("identifier", "requesting_agency_id", "requested_by"),
                case_id=hidden.case_id,
            ),
        ]

    body = {"identifiers": [{"kind": "phone", "value": HIDDEN_PHONE}]}
    return Call("lead", "POST", reverse("deconfliction-check"), body, 200, expect)


@recipe("evidence-list", "POST")
def _evidence_create(ctx: Ctx) -> Call:
    case = ctx.world.case
    body = {
        "case": str(case.pk),
        "kind": "subpoena_return",
        "external_uri": "evidence://vault/subpoena-7",
        "sha256": "ab" * 32,
        "size_bytes": 2048,
    }

    def expect(response: Any) -> list[Expect]:
        return [
            Expect(
                AuditAction.EVIDENCE_CREATED,
                ("cases.evidenceitem", response.json()["id"]),
                fields("kind", "sha256", "size_bytes", "external_uri"),
                exact={"sha256": [None, "ab" * 32], "size_bytes": [None, 2048]},
                case_id=case.pk,
            )
        ]

    return Call("teammate", "POST", reverse("evidence-list"), body, 201, expect)


@recipe("evidence-detail", "PATCH")
def _evidence_update(ctx: Ctx) -> Call:
    item = ctx.evidence

    def expect(response: Any) -> list[Expect]:
        return [
            Expect(
                AuditAction.EVIDENCE_UPDATED,
                target(item),
                fields("description"),
                exact={"description": ["", "Transcript of the first contact."]},
                case_id=item.case_id,
            )
        ]

    body = {"description": "Transcript of the first contact."}
    return Call("teammate", "PATCH", reverse("evidence-detail", kwargs={"pk": item.pk}), body, 200, expect)


@recipe("evidence-custody", "POST")
def _custody(ctx: Ctx) -> Call:
    item = ctx.evidence
    body = {"action": "transferred", "from_party": "Property room", "to_party": "Forensics lab", "location": "HQ"}

    def expect(response: Any) -> list[Expect]:
        return [
            Expect(
                AuditAction.CUSTODY_RECORDED,
                ("cases.custodyevent", str(response.json()["id"])),
                fields("evidence", "action", "from", "to", "location"),
                exact={"evidence": str(item.pk), "action": "transferred", "to": "Forensics lab"},
                case_id=item.case_id,
            )
        ]

    return Call("teammate", "POST", reverse("evidence-custody", kwargs={"pk": item.pk}), body, 201, expect)


@recipe("evidence-verify", "POST")
def _evidence_verify(ctx: Ctx) -> Call:
    item = ctx.evidence

    def expect(response: Any) -> list[Expect]:
        return [
            Expect(
                AuditAction.EVIDENCE_VERIFIED,
                target(item),
                fields("match", "computed"),
                exact={"match": True, "computed": item.sha256},
                case_id=item.case_id,
            )
        ]

    return Call("lead", "POST", reverse("evidence-verify", kwargs={"pk": item.pk}), None, 200, expect)


@recipe("audit-checkpoint-create", "POST")
def _checkpoint(ctx: Ctx) -> Call:
    def expect(response: Any) -> list[Expect]:
        made = Checkpoint.objects.get(tree_size=response.json()["tree_size"])
        return [
            Expect(
                AuditAction.AUDIT_CHECKPOINT_CREATED,
                target(made),
                fields("tree_size", "root_hash"),
                exact={"tree_size": made.tree_size, "root_hash": made.root_hash},
            )
        ]

    return Call("auditor", "POST", reverse("audit-checkpoint-create"), None, 201, expect)


@recipe("audit-verify", "POST")
def _verify(ctx: Ctx) -> Call:
    def expect(response: Any) -> list[Expect]:
        body = response.json()
        return [
            Expect(
                AuditAction.AUDIT_VERIFIED,
                None,
                fields("ok", "checked", "first_bad_seq"),
                exact={"ok": body["ok"], "checked": body["checked"], "first_bad_seq": body["first_bad_seq"]},
            )
        ]

    return Call("auditor", "POST", reverse("audit-verify"), None, 200, expect)


def _handoff_step(
    name: str, persona: str, stage: str, body: dict[str, Any] | None, action: str, *names: str, **exact: Any
) -> Callable[[Ctx], Call]:
    """A POST of one workflow step on a handoff taken to `stage` first."""

    def make(ctx: Ctx) -> Call:
        handoff = ctx.handoff(stage)

        def expect(response: Any) -> list[Expect]:
            return [Expect(action, target(handoff), fields("number", *names), exact=exact, case_id=handoff.case_id)]

        return Call(persona, "POST", reverse(name, kwargs={"pk": handoff.pk}), body, 200, expect)

    return make


@recipe("handoff-list", "POST")
def _handoff_create(ctx: Ctx) -> Call:
    world = ctx.world
    body = {
        "case": str(world.case.pk),
        "prosecutor": world.prosecutor.pk,
        "leads": [str(ctx.lead_obj.pk)],
        "evidence": [str(ctx.evidence.pk)],
        "charges": [{"statute": "F.S. 796.07", "text": "Solicitation"}],
        "narrative": "First contact through the decoy ad.",
    }

    def expect(response: Any) -> list[Expect]:
        return [
            Expect(
                AuditAction.HANDOFF_CREATED,
                ("cases.handoff", response.json()["id"]),
                fields("number", "status", "prosecutor", "leads", "evidence", "charges", "narrative"),
                exact={
                    "prosecutor": [None, world.prosecutor.username],
                    "leads": [[], [str(ctx.lead_obj.pk)]],
                    "evidence": [[], [str(ctx.evidence.pk)]],
                },
                case_id=world.case.pk,
            )
        ]

    return Call("lead", "POST", reverse("handoff-list"), body, 201, expect)


@recipe("handoff-detail", "PATCH")
def _handoff_update(ctx: Ctx) -> Call:
    handoff = ctx.handoff(HandoffStatus.DRAFT)

    def expect(response: Any) -> list[Expect]:
        return [
            Expect(
                AuditAction.HANDOFF_UPDATED,
                target(handoff),
                fields("narrative"),
                exact={"narrative": ["First contact through the decoy ad.", "Two contacts, one meeting."]},
                case_id=handoff.case_id,
            )
        ]

    body = {"narrative": "Two contacts, one meeting."}
    return Call("teammate", "PATCH", reverse("handoff-detail", kwargs={"pk": handoff.pk}), body, 200, expect)


RECIPES[("handoff-submit", "POST")] = _handoff_step(
    "handoff-submit",
    "lead",
    HandoffStatus.DRAFT,
    {"note": "Ready for review."},
    AuditAction.HANDOFF_SUBMITTED,
    "status",
    "note",
    status=[HandoffStatus.DRAFT, HandoffStatus.PENDING_REVIEW],
)
RECIPES[("handoff-review", "POST")] = _handoff_step(
    "handoff-review",
    "supervisor",
    HandoffStatus.PENDING_REVIEW,
    {"approve": True},
    AuditAction.HANDOFF_APPROVED,
    "status",
    "access_granted",
    status=[HandoffStatus.PENDING_REVIEW, HandoffStatus.SENT],
    access_granted="pat_pros",
)
RECIPES[("handoff-acknowledge", "POST")] = _handoff_step(
    "handoff-acknowledge",
    "prosecutor",
    HandoffStatus.SENT,
    None,
    AuditAction.HANDOFF_ACKNOWLEDGED,
    "status",
    status=[HandoffStatus.SENT, HandoffStatus.ACKNOWLEDGED],
)
RECIPES[("handoff-decision", "POST")] = _handoff_step(
    "handoff-decision",
    "prosecutor",
    HandoffStatus.SENT,
    {"decision": HandoffStatus.DECLINED, "note": "Not enough on the meeting."},
    AuditAction.HANDOFF_DECLINED,
    "status",
    "decision",
    "note",
    status=[HandoffStatus.SENT, HandoffStatus.DECLINED],
    note="Not enough on the meeting.",
)


@recipe("handoff-packets", "POST")
def _packet_request(ctx: Ctx) -> Call:
    handoff = ctx.handoff(HandoffStatus.SENT)

    def expect(response: Any) -> list[Expect]:
        return [
            Expect(
                AuditAction.PACKET_REQUESTED,
                ("cases.exportpacket", response.json()["id"]),
                fields("handoff", "number", "status"),
                exact={"handoff": str(handoff.pk)},
                case_id=handoff.case_id,
            )
        ]

    return Call("prosecutor", "POST", reverse("handoff-packets", kwargs={"pk": handoff.pk}), None, 202, expect)


# ---------------------------------------------------------------- the walk


def new_events_since(marker: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(id__gt=marker).order_by("id"))


def marker() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_every_mutating_route_has_a_recipe_and_every_recipe_a_route():
    routes = api_routes(MUTATING) - NOT_WALKED
    assert routes, "no mutating routes found: the walk is broken"
    missing = sorted(f"{method} {name}" for name, method in routes - set(RECIPES))
    stale = sorted(f"{method} {name}" for name, method in set(RECIPES) - routes)
    assert not missing, "mutating routes without an audit recipe: " + ", ".join(missing)
    assert not stale, "recipes for routes that do not exist: " + ", ".join(stale)


def _route_params() -> list[Any]:
    return [
        pytest.param(name, method, id=f"{method}-{name}") for name, method in sorted(api_routes(MUTATING) - NOT_WALKED)
    ]


@pytest.mark.parametrize(("name", "method"), _route_params())
def test_a_mutating_route_records_actor_target_and_changed_fields(world, name, method):
    assert (name, method) in RECIPES, f"{method} {name} has no audit recipe: add one to RECIPES"
    ctx = Ctx(world)
    call = RECIPES[(name, method)](ctx)
    actor = getattr(world, call.persona)
    client = client_for(actor)
    start = marker()
    send = getattr(client, call.method.lower())
    response = send(call.path) if call.body is None else send(call.path, call.body, format=call.format)
    assert response.status_code == call.status, response.content
    recorded = new_events_since(start)
    mine = [e for e in recorded if e.actor_id == actor.pk]
    assert mine, f"{method} {name} recorded no event by the acting user"
    for expected in call.expect(response):
        matches = [
            e
            for e in mine
            if e.action == expected.action
            and (e.target_type, e.target_id) == (expected.target or ("", ""))
            and expected.fields <= set(e.changes)
        ]
        assert matches, (expected, [(e.action, e.target_type, e.target_id, e.changes) for e in mine])
        event = matches[0]
        assert event.actor_name == actor.username
        assert event.request_id == response["X-Request-ID"]
        for key, value in expected.exact.items():
            assert event.changes[key] == value, (key, event.changes)
        if expected.case_id is not None:
            assert str(event.case_id) == str(expected.case_id)


# ---------------------------------------------------------------- authentication and people


def only(action: str, since: int) -> AuditEvent:
    found = [e for e in new_events_since(since) if e.action == action]
    assert len(found) == 1, [(e.action, e.changes) for e in new_events_since(since)]
    return found[0]


def login(username: str, password: str) -> Any:
    return APIClient().post(reverse("auth-token"), {"username": username, "password": password}, format="json")


def test_a_successful_login_records_the_login_and_the_token_issued(world):
    start = marker()
    response = login("lena_lead", TEST_PASSWORD)
    assert response.status_code == 200
    succeeded = only(AuditAction.LOGIN_SUCCEEDED, start)
    assert (succeeded.actor_id, succeeded.target_type, succeeded.target_id) == (
        world.lead.pk,
        "auth.user",
        str(world.lead.pk),
    )
    assert succeeded.changes == {"via": "api"}
    issued = only(AuditAction.TOKEN_ISSUED, start)
    token = AuthToken.objects.get(prefix=response.json()["token"][:8])
    assert (issued.actor_id, issued.target_type, issued.target_id) == (world.lead.pk, "cases.authtoken", str(token.pk))
    assert issued.changes == {"expires_at": [None, token.expires_at.isoformat()]}
    assert issued.agency_id == world.agency_a.pk


def test_a_failed_login_records_the_reason_and_the_count(world):
    start = marker()
    assert login("lena_lead", "wrong password").status_code == 401
    failed = only(AuditAction.LOGIN_FAILED, start)
    assert (failed.actor_id, failed.target_id) == (world.lead.pk, str(world.lead.pk))
    assert failed.changes == {"reason": "bad_password", "via": "api", "failed_logins": 1}
    assert not AuditEvent.objects.filter(id__gt=start, action=AuditAction.TOKEN_ISSUED).exists()


def test_a_login_as_an_unknown_user_records_the_typed_name(world):
    start = marker()
    assert login("mallory", "guess").status_code == 401
    failed = only(AuditAction.LOGIN_FAILED, start)
    assert (failed.actor_id, failed.actor_name, failed.target_id) == (None, "mallory", "")
    assert failed.changes == {"reason": "unknown_or_inactive_user", "via": "api"}


def test_a_lockout_is_recorded_and_so_is_every_login_tried_while_locked(world, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    start = marker()
    for _ in range(3):
        login("lena_lead", "wrong password")
    locked = only(AuditAction.ACCOUNT_LOCKED, start)
    profile = Profile.objects.get(user=world.lead)
    assert (locked.actor_id, locked.target_id) == (world.lead.pk, str(world.lead.pk))
    assert locked.changes == {"locked_until": [None, profile.locked_until.isoformat()]}
    after_lock = marker()
    assert login("lena_lead", TEST_PASSWORD).status_code == 403
    assert only(AuditAction.LOGIN_FAILED, after_lock).changes == {"reason": "account_locked", "via": "api"}


def test_an_unlock_is_recorded_with_the_admin_as_actor(world, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    for _ in range(2):
        login("lena_lead", "wrong password")
    locked_until = Profile.objects.get(user=world.lead).locked_until
    start = marker()
    services.account_unlock(user=world.lead, actor=world.admin)
    unlocked = only(AuditAction.ACCOUNT_UNLOCKED, start)
    assert (unlocked.actor_id, unlocked.target_type, unlocked.target_id) == (
        world.admin.pk,
        "auth.user",
        str(world.lead.pk),
    )
    assert unlocked.changes == {"failed_logins": [2, 0], "locked_until": [locked_until.isoformat(), None]}


def test_a_token_revoked_by_an_admin_is_recorded_with_its_owner(world):
    login("lena_lead", TEST_PASSWORD)
    token = AuthToken.objects.get(user=world.lead)
    start = marker()
    services.token_revoke(token=token, actor=world.admin)
    revoked = only(AuditAction.TOKEN_REVOKED, start)
    token.refresh_from_db()
    assert (revoked.actor_id, revoked.target_id, revoked.agency_id) == (
        world.admin.pk,
        str(token.pk),
        world.agency_a.pk,
    )
    assert revoked.changes == {"revoked_at": [None, token.revoked_at.isoformat()], "owner": "lena_lead"}


def test_a_role_change_is_recorded_with_old_and_new_roles(world):
    start = marker()
    services.user_ensure(
        username=world.viewer.username, agency=world.agency_a, role=Role.SUPERVISOR, password=None, actor=world.admin
    )
    changed = only(AuditAction.USER_ROLE_CHANGED, start)
    assert (changed.actor_id, changed.target_type, changed.target_id) == (
        world.admin.pk,
        "auth.user",
        str(world.viewer.pk),
    )
    assert changed.changes == {"roles": [[Role.INVESTIGATOR], [Role.SUPERVISOR]]}
    assert changed.agency_id == world.agency_a.pk


def test_a_new_user_a_password_change_and_a_deactivation_are_recorded(world):
    start = marker()
    user, created = services.user_ensure(
        username="nina_new", agency=world.agency_a, role=Role.INVESTIGATOR, password=TEST_PASSWORD, actor=world.admin
    )
    assert created
    made = only(AuditAction.USER_CREATED, start)
    assert (made.actor_id, made.target_id) == (world.admin.pk, str(user.pk))
    assert made.changes == {"username": [None, "nina_new"], "agency": [None, "MCSO"], "role": [None, Role.INVESTIGATOR]}
    start = marker()
    services.user_ensure(
        username="nina_new",
        agency=world.agency_a,
        role=Role.INVESTIGATOR,
        password="another long passphrase",
        actor=world.admin,
    )
    password = only(AuditAction.USER_PASSWORD_CHANGED, start)
    assert (password.actor_id, password.target_id) == (world.admin.pk, str(user.pk))
    assert "another long passphrase" not in str(password.changes)
    start = marker()
    services.user_set_active(actor=world.admin, user=user, active=False)
    assert only(AuditAction.USER_UPDATED, start).changes == {"is_active": [True, False]}


# ---------------------------------------------------------------- reads and downloads

READ_EXEMPT = {
    ("me", "GET"): "the caller's own profile, no case content",
    ("audit-checkpoint-latest", "GET"): "a public signed note",
    ("audit-checkpoint-key", "GET"): "a public key",
    ("audit-consistency", "GET"): "hashes only, no event content",
    ("handoff-packets", "GET"): "build status of packets (progress, hash, size); the download is recorded",
    ("packet-detail", "GET"): "build status of a packet (progress, hash, size); the download is recorded",
    # Recorded, and asserted in tests/intercept (test_api.py, test_analytics.py):
    ("conversation-list", "GET"): "recorded as conversation.listed; asserted in tests/intercept/test_api.py",
    ("conversation-detail", "GET"): "recorded as conversation.viewed; asserted in tests/intercept/test_api.py",
    ("ad-list", "GET"): "recorded as ad.listed; asserted in tests/intercept/test_api.py",
    ("analytics-summary", "GET"): "recorded as analytics.viewed; asserted in tests/intercept/test_analytics.py",
}


@dataclass(frozen=True)
class Read:
    persona: str
    path: str
    action: str
    target: tuple[str, str] | None = None
    case_id: Any = None


def _proof_read(ctx: Ctx) -> Read:
    seal_pending()
    proved = AuditEvent.objects.get(action=AuditAction.CASE_CREATED, case_id=ctx.world.case.pk)
    path = reverse("audit-event-proof", kwargs={"seq": proved.seq})
    return Read("auditor", path, AuditAction.AUDIT_PROOF_READ, target(proved), proved.case_id)


def _handoff_read(ctx: Ctx) -> Read:
    handoff = ctx.handoff(HandoffStatus.SENT)
    path = reverse("handoff-detail", kwargs={"pk": handoff.pk})
    return Read("prosecutor", path, AuditAction.HANDOFF_VIEWED, target(handoff), handoff.case_id)


def _packet_download(ctx: Ctx) -> Read:
    packet = ctx.ready_packet
    path = reverse("packet-download", kwargs={"pk": packet.pk})
    return Read("prosecutor", path, AuditAction.PACKET_DOWNLOADED, target(packet), packet.handoff.case_id)


def _on_case(name: str, persona: str, action: str, obj: Callable[[Ctx], Any], with_target: bool = True) -> Any:
    def make(ctx: Ctx) -> Read:
        item = obj(ctx)
        case_id = getattr(item, "case_id", None) or item.pk
        return Read(
            persona, reverse(name, kwargs={"pk": item.pk}), action, target(item) if with_target else None, case_id
        )

    return make


READS: dict[tuple[str, str], Callable[[Ctx], Read]] = {
    ("user-list", "GET"): lambda ctx: Read("lead", reverse("user-list"), AuditAction.USER_LISTED),
    ("prosecutor-list", "GET"): lambda ctx: Read("lead", reverse("prosecutor-list"), AuditAction.USER_LISTED),
    ("case-list", "GET"): lambda ctx: Read("lead", reverse("case-list"), AuditAction.CASE_LISTED),
    ("case-detail", "GET"): _on_case("case-detail", "lead", AuditAction.CASE_VIEWED, lambda ctx: ctx.world.case),
    ("case-team", "GET"): _on_case("case-team", "lead", AuditAction.TEAM_VIEWED, lambda ctx: ctx.world.case, False),
    ("lead-list", "GET"): lambda ctx: Read("lead", reverse("lead-list"), AuditAction.LEAD_LISTED),
    ("lead-detail", "GET"): _on_case("lead-detail", "lead", AuditAction.LEAD_VIEWED, lambda ctx: ctx.lead_obj),
    ("evidence-list", "GET"): lambda ctx: Read("lead", reverse("evidence-list"), AuditAction.EVIDENCE_LISTED),
    ("evidence-detail", "GET"): _on_case(
        "evidence-detail", "lead", AuditAction.EVIDENCE_VIEWED, lambda ctx: ctx.evidence
    ),
    ("evidence-content", "GET"): _on_case(
        "evidence-content", "viewer", AuditAction.EVIDENCE_DOWNLOADED, lambda ctx: ctx.evidence
    ),
    ("evidence-custody", "GET"): _on_case(
        "evidence-custody", "lead", AuditAction.CUSTODY_LISTED, lambda ctx: ctx.evidence, False
    ),
    ("handoff-list", "GET"): lambda ctx: Read("lead", reverse("handoff-list"), AuditAction.HANDOFF_LISTED),
    ("handoff-detail", "GET"): _handoff_read,
    ("packet-download", "GET"): _packet_download,
    ("audit-event-list", "GET"): lambda ctx: Read("auditor", reverse("audit-event-list"), AuditAction.AUDIT_LISTED),
    ("audit-event-proof", "GET"): _proof_read,
}


def test_every_read_route_is_recorded_or_exempt_with_a_reason():
    reads = api_routes({"GET"})
    covered = set(READS) | set(READ_EXEMPT)
    assert not sorted(reads - covered), "GET routes neither audited nor exempt: " + str(sorted(reads - covered))
    assert not sorted(covered - reads), "read entries for routes that do not exist: " + str(sorted(covered - reads))


@pytest.mark.parametrize("name", sorted(name for name, _ in READS))
def test_a_read_is_recorded_with_the_reader_and_what_was_read(world, name):
    read = READS[(name, "GET")](Ctx(world))
    reader = getattr(world, read.persona)
    start = marker()
    listing = name.endswith("-list")
    response = client_for(reader).get(read.path, {"page_size": 5} if listing else None)
    assert response.status_code == 200, response.content
    if response.streaming:
        b"".join(response.streaming_content)
    event = only(read.action, start)
    assert (event.actor_id, event.actor_name) == (reader.pk, reader.username)
    assert event.request_id == response["X-Request-ID"]
    if read.target is not None:
        assert (event.target_type, event.target_id) == read.target
    if read.case_id is not None:
        assert event.case_id == read.case_id
    if listing:
        assert event.changes == {"query": {"page_size": ["5"]}}


def test_a_download_records_the_hash_and_size_of_what_left(world):
    item = Ctx(world).evidence
    start = marker()
    response = client_for(world.viewer).get(reverse("evidence-content", kwargs={"pk": item.pk}))
    content = b"".join(response.streaming_content)
    downloaded = only(AuditAction.EVIDENCE_DOWNLOADED, start)
    assert downloaded.changes == {"sha256": hashlib.sha256(content).hexdigest(), "size_bytes": len(content)}
    assert downloaded.agency_id == world.agency_a.pk


def test_a_refused_read_records_no_content_event(world):
    item = Ctx(world).evidence
    start = marker()
    assert client_for(world.outsider).get(reverse("evidence-content", kwargs={"pk": item.pk})).status_code == 404
    assert client_for(world.investigator).get(reverse("case-detail", kwargs={"pk": world.case.pk})).status_code == 404
    assert not [
        e for e in new_events_since(start) if e.action in {AuditAction.EVIDENCE_DOWNLOADED, AuditAction.CASE_VIEWED}
    ]


def test_an_export_download_records_the_packet_hash_and_size_of_what_left(world):
    packet = Ctx(world).ready_packet
    start = marker()
    response = client_for(world.prosecutor).get(reverse("packet-download", kwargs={"pk": packet.pk}))
    content = b"".join(response.streaming_content)
    downloaded = only(AuditAction.PACKET_DOWNLOADED, start)
    assert downloaded.changes == {
        "handoff": str(packet.handoff_id),
        "number": packet.handoff.number,
        "sha256": hashlib.sha256(content).hexdigest(),
        "size_bytes": len(content),
    }
    assert (downloaded.actor_id, downloaded.agency_id) == (world.prosecutor.pk, world.agency_a.pk)
