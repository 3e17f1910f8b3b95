"""The audit API over HTTP: scoped and filtered events with their chain fields, signed
checkpoints and the verifier key, inclusion and consistency proofs anyone can check, on-demand
checkpoints and verification for auditors, and refused, recorded attempts to change the log."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest

from audit import chain, merkle, note, signing, tree
from audit.models import AuditAction, AuditEvent, Checkpoint
from audit.sealing import seal_pending
from audit.services import audit_record
from tests.audit.test_tamper import execute, triggers_disabled

EVENTS = "/api/audit/events/"
LATEST = "/api/audit/checkpoints/latest/"
KEY = "/api/audit/checkpoints/key/"
CHECKPOINTS = "/api/audit/checkpoints/"
CONSISTENCY = "/api/audit/consistency/"
VERIFY = "/api/audit/verify/"


def events(client: Any, **params: Any) -> list[dict[str, Any]]:
    response = client.get(EVENTS, {"page_size": 200, **params})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == len(body["results"]), "the whole list must fit on one page"
    return body["results"]


def verifier_from_api(client: Any) -> note.Verifier:
    response = client.get(KEY)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return note.parse_verifier(response.content.decode())


def make_checkpoint(client: Any) -> dict[str, Any]:
    response = client.post(CHECKPOINTS)
    assert response.status_code in (200, 201), response.content
    return response.json()


def sealed_hashes() -> list[bytes]:
    return [
        bytes.fromhex(h)
        for h in AuditEvent.objects.filter(seq__isnull=False).order_by("seq").values_list("entry_hash", flat=True)
    ]


def last_event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).order_by("-id").first()


# ---------------------------------------------------------------- events


def test_events_carry_seq_and_entry_hash_once_sealed(world, as_user):
    client = as_user(world.auditor)
    assert all(row["seq"] is None and row["entry_hash"] == "" for row in events(client))
    seal_pending()
    rows = [row for row in events(client) if row["seq"] is not None]
    assert rows
    stored = dict(AuditEvent.objects.filter(seq__isnull=False).values_list("seq", "entry_hash"))
    for row in rows:
        assert row["entry_hash"] == stored[row["seq"]]
        assert len(row["entry_hash"]) == 64 and len(row["prev_hash"]) == 64


def test_an_event_served_by_the_api_can_be_rehashed_by_a_reader(world, as_user):
    """Everything the entry hash covers is served, in a form that recomputes it."""
    client = as_user(world.lead)
    client.get(f"/api/cases/{world.case.pk}/", HTTP_USER_AGENT="reader/1.0", HTTP_X_REQUEST_ID="req-42")
    seal_pending()
    rows = [row for row in events(client, case=str(world.case.pk)) if row["seq"] is not None]
    assert any(row["request_id"] == "req-42" and row["user_agent"] == "reader/1.0" for row in rows)
    for row in rows:
        values = {
            **row,
            "actor_id": row["actor"],
            "agency_id": row["agency"],
            "created_at": dt.datetime.fromisoformat(row["created_at"].replace("Z", "+00:00")),
        }
        assert chain.entry_hash(row["prev_hash"], chain.canonical_entry(values)) == row["entry_hash"], row["action"]


def test_events_filter_by_case_actor_and_action(world, as_user):
    client = as_user(world.auditor)
    by_case = events(client, case=str(world.case.pk))
    assert by_case and all(row["case_id"] == str(world.case.pk) for row in by_case)
    assert {row["action"] for row in by_case} >= {AuditAction.CASE_CREATED, AuditAction.TEAM_MEMBER_SET}
    by_actor = events(client, actor=world.teammate.pk)
    assert by_actor == []
    client_t = as_user(world.teammate)
    client_t.get(f"/api/cases/{world.case.pk}/")
    by_actor = events(client, actor=world.teammate.pk)
    assert [(row["action"], row["actor"]) for row in by_actor] == [(AuditAction.CASE_VIEWED, world.teammate.pk)]
    by_action = events(client, action=AuditAction.TEAM_MEMBER_SET)
    assert len(by_action) == 2 and all(row["action"] == AuditAction.TEAM_MEMBER_SET for row in by_action)
    assert client.get(EVENTS, {"action": "no.such_action"}).status_code == 400
    assert client.get(EVENTS, {"case": "not-a-uuid"}).status_code == 400


def test_events_filter_by_time_window(world, as_user):
    client = as_user(world.auditor)
    rows = events(client)
    middle = sorted(rows, key=lambda row: row["created_at"])[len(rows) // 2]
    at = dt.datetime.fromisoformat(middle["created_at"].replace("Z", "+00:00"))
    since = events(client, since=at.isoformat())
    until = events(client, until=at.isoformat())
    assert middle["id"] in {row["id"] for row in since}
    assert middle["id"] not in {row["id"] for row in until}
    assert all(dt.datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")) >= at for r in since)
    assert all(dt.datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")) < at for r in until)
    assert {r["id"] for r in since} | {r["id"] for r in until} >= {r["id"] for r in rows}
    assert client.get(EVENTS, {"since": "yesterday"}).status_code == 400


def test_an_auditor_sees_every_event_of_their_agency_and_none_of_another(world, as_user):
    client = as_user(world.auditor)
    agency_a = set(AuditEvent.objects.filter(agency_id=world.agency_a.pk).values_list("id", flat=True))
    assert AuditEvent.objects.filter(agency_id=world.agency_b.pk).exists()
    rows = events(client)
    assert {row["id"] for row in rows} == agency_a
    assert all(row["agency"] == world.agency_a.pk for row in rows)
    assert not any(row["case_id"] == str(world.other_case.pk) for row in rows)


def test_a_case_lead_sees_their_case_events_only(world, as_user):
    client = as_user(world.lead)
    case_events = set(AuditEvent.objects.filter(case_id=world.case.pk).values_list("id", flat=True))
    rows = events(client)
    assert {row["id"] for row in rows} == case_events
    assert not AuditEvent.objects.filter(agency_id=world.agency_a.pk, case_id=None, id__in=[r["id"] for r in rows])


@pytest.mark.parametrize("persona", ["outsider", "outsider_supervisor", "prosecutor", "investigator", "teammate"])
def test_people_without_audit_scope_see_no_event_of_agency_a(world, as_user, persona):
    rows = events(as_user(getattr(world, persona)))
    assert not [row for row in rows if row["agency"] == world.agency_a.pk or row["case_id"] == str(world.case.pk)]


def test_anonymous_gets_401_from_every_audit_route(world, api):
    for path in (EVENTS, LATEST, KEY, f"{EVENTS}1/proof/", f"{CONSISTENCY}?from=1&to=1"):
        assert api.get(path).status_code == 401, path
    for path in (CHECKPOINTS, VERIFY):
        assert api.post(path).status_code == 401, path


# ---------------------------------------------------------------- checkpoints and the key


def test_latest_checkpoint_is_404_before_any_and_then_the_signed_note(world, as_user):
    client = as_user(world.auditor)
    missing = client.get(LATEST)
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    made = make_checkpoint(client)
    response = client.get(LATEST)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    text = response.content.decode()
    assert text == made["signed_note"] == Checkpoint.objects.get().signed_note
    body = note.parse_checkpoint(note.open_note(text, verifier_from_api(client)))
    assert body.tree_size == made["tree_size"]
    assert body.root_hash == base64.b64decode(made["root_hash"]) == merkle.root_hash(sealed_hashes()[: body.tree_size])


def test_the_key_endpoint_serves_the_verifier_key(world, as_user):
    verifier = verifier_from_api(as_user(world.viewer))
    assert verifier.text() == signing.verifier().text()


def test_an_auditor_makes_a_checkpoint_201_then_200_when_nothing_is_new(world, as_user):
    client = as_user(world.auditor)
    first = client.post(CHECKPOINTS)
    assert first.status_code == 201, first.content
    event = last_event(AuditAction.AUDIT_CHECKPOINT_CREATED)
    made = Checkpoint.objects.get()
    assert (event.actor_id, event.target_type, event.target_id) == (world.auditor.pk, "audit.checkpoint", str(made.pk))
    assert event.changes == {"tree_size": made.tree_size, "root_hash": made.root_hash}
    again = client.post(CHECKPOINTS)
    assert again.status_code == 200, "a checkpoint request with nothing new must not make another checkpoint"
    assert again.json()["tree_size"] == first.json()["tree_size"]


def test_a_new_checkpoint_after_new_events_is_201(world, as_user):
    client = as_user(world.auditor)
    first = make_checkpoint(client)
    as_user(world.lead).get(f"/api/cases/{world.case.pk}/")
    second = client.post(CHECKPOINTS)
    assert second.status_code == 201
    assert second.json()["tree_size"] > first["tree_size"]


@pytest.mark.parametrize("persona", ["investigator", "supervisor", "lead", "admin", "prosecutor"])
def test_only_auditors_make_checkpoints(world, as_user, persona):
    response = as_user(getattr(world, persona)).post(CHECKPOINTS)
    assert response.status_code == 403
    assert response.json()["detail"] == "Only auditors can do this."
    assert not Checkpoint.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.AUDIT_CHECKPOINT_CREATED).exists()


# ---------------------------------------------------------------- inclusion proofs


def _proof(client: Any, seq: int, tree_size: int | None = None) -> Any:
    query = "" if tree_size is None else f"?tree_size={tree_size}"
    return client.get(f"{EVENTS}{seq}/proof/{query}")


def test_inclusion_proofs_verify_against_the_signed_checkpoint(world, as_user):
    client = as_user(world.auditor)
    made = make_checkpoint(client)
    size = made["tree_size"]
    verifier = verifier_from_api(client)
    visible = sorted(row["seq"] for row in events(client) if row["seq"] is not None)
    assert len(visible) >= 5
    for seq in {visible[0], visible[len(visible) // 2], visible[-1]}:
        response = _proof(client, seq, size)
        assert response.status_code == 200, response.content
        body = response.json()
        entry_hash = AuditEvent.objects.values_list("entry_hash", flat=True).get(seq=seq)
        leaf = merkle.leaf_hash(bytes.fromhex(entry_hash))
        assert (body["seq"], body["leaf_index"], body["tree_size"], body["entry_hash"]) == (
            seq,
            seq - 1,
            size,
            entry_hash,
        )
        assert base64.b64decode(body["leaf_hash"]) == leaf
        signed = note.parse_checkpoint(note.open_note(body["checkpoint"], verifier))
        assert signed.tree_size == size
        assert base64.b64decode(body["root_hash"]) == signed.root_hash
        proof = [base64.b64decode(p) for p in body["proof"]]
        assert all(len(p) == 32 for p in proof)
        assert merkle.verify_inclusion(leaf, seq - 1, size, proof, signed.root_hash)
        assert not merkle.verify_inclusion(merkle.leaf_hash(b"forged"), seq - 1, size, proof, signed.root_hash)
        event = last_event(AuditAction.AUDIT_PROOF_READ)
        assert (event.actor_id, event.target_type, event.changes) == (
            world.auditor.pk,
            "audit.auditevent",
            {"seq": seq, "tree_size": size},
        )


def test_inclusion_proof_defaults_to_the_latest_checkpoint(world, as_user):
    client = as_user(world.auditor)
    made = make_checkpoint(client)
    seal_pending()
    seq = max(row["seq"] for row in events(client) if row["seq"] is not None and row["seq"] <= made["tree_size"])
    body = _proof(client, seq).json()
    assert body["tree_size"] == made["tree_size"]
    assert body["checkpoint"] == made["signed_note"]


def test_inclusion_proof_at_a_size_without_checkpoint_verifies_against_the_tree(world, as_user):
    seal_pending()
    client = as_user(world.auditor)
    seq = min(row["seq"] for row in events(client) if row["seq"] is not None)
    size = seq + 2
    body = _proof(client, seq, size).json()
    assert body["checkpoint"] is None
    root = merkle.root_hash(sealed_hashes()[:size])
    assert base64.b64decode(body["root_hash"]) == root == tree.root_at(size)
    proof = [base64.b64decode(p) for p in body["proof"]]
    assert merkle.verify_inclusion(base64.b64decode(body["leaf_hash"]), seq - 1, size, proof, root)


def test_a_proof_for_an_event_outside_scope_is_404(world, as_user):
    audit_record(
        action=AuditAction.CASE_VIEWED, actor=world.outsider, target=world.other_case, case_id=world.other_case.pk
    )
    seal_pending()
    b_seq = AuditEvent.objects.filter(agency_id=world.agency_b.pk).values_list("seq", flat=True).last()
    a_seq = AuditEvent.objects.filter(agency_id=world.agency_a.pk, case_id=None).values_list("seq", flat=True).first()
    assert _proof(as_user(world.auditor), b_seq).status_code == 404
    assert _proof(as_user(world.lead), a_seq).status_code == 404
    assert _proof(as_user(world.outsider), a_seq).status_code == 404
    assert _proof(as_user(world.auditor), 10**9).status_code == 404
    assert _proof(as_user(world.outsider), b_seq).status_code == 200


def test_a_proof_for_an_unsealed_event_is_404_by_seq(world, as_user):
    assert _proof(as_user(world.auditor), 1).status_code == 404


@pytest.mark.parametrize("tree_size", ["0", "-1", "abc", "before", "beyond"])
def test_a_proof_with_tree_size_out_of_range_is_400(world, as_user, tree_size):
    seal_pending()
    client = as_user(world.auditor)
    seq = max(row["seq"] for row in events(client) if row["seq"] is not None)
    size = AuditEvent.objects.filter(seq__isnull=False).count()
    value = {"before": str(seq - 1), "beyond": str(size + 1)}.get(tree_size, tree_size)
    response = client.get(f"{EVENTS}{seq}/proof/", {"tree_size": value})
    assert response.status_code == 400, response.content
    assert "tree_size" in response.json()


# ---------------------------------------------------------------- consistency proofs


def test_consistency_proof_between_two_checkpoints_verifies(world, as_user):
    client = as_user(world.auditor)
    first = make_checkpoint(client)
    as_user(world.lead).get(f"/api/cases/{world.case.pk}/")
    second = make_checkpoint(client)
    m, n = first["tree_size"], second["tree_size"]
    assert m < n
    response = client.get(CONSISTENCY, {"from": m, "to": n})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["from_size"], body["to_size"]) == (m, n)
    old_root, new_root = base64.b64decode(first["root_hash"]), base64.b64decode(second["root_hash"])
    assert base64.b64decode(body["from_root"]) == old_root and base64.b64decode(body["to_root"]) == new_root
    proof = [base64.b64decode(p) for p in body["proof"]]
    assert merkle.verify_consistency(m, n, old_root, new_root, proof)
    assert not merkle.verify_consistency(m, n, old_root, old_root, proof)


def test_consistency_of_a_size_with_itself_is_an_empty_proof(world, as_user):
    seal_pending()
    size = AuditEvent.objects.filter(seq__isnull=False).count()
    body = as_user(world.auditor).get(CONSISTENCY, {"from": size, "to": size}).json()
    assert body["proof"] == []
    assert body["from_root"] == body["to_root"] == base64.b64encode(tree.root_at(size)).decode()


@pytest.mark.parametrize(
    "params",
    [
        {"from": 5, "to": 3},
        {"from": 0, "to": 3},
        {"from": 1, "to": "beyond"},
        {"to": 3},
        {"from": 2},
        {"from": "x", "to": 3},
    ],
    ids=["from-after-to", "from-zero", "to-beyond", "no-from", "no-to", "not-a-number"],
)
def test_consistency_with_bad_parameters_is_400(world, as_user, params):
    seal_pending()
    size = AuditEvent.objects.filter(seq__isnull=False).count()
    query = {k: (size + 1 if v == "beyond" else v) for k, v in params.items()}
    response = as_user(world.auditor).get(CONSISTENCY, query)
    assert response.status_code == 400, response.content


# ---------------------------------------------------------------- verification


def test_an_auditor_verifies_the_log(world, as_user):
    client = as_user(world.auditor)
    made = make_checkpoint(client)
    response = client.post(VERIFY)
    assert response.status_code == 200, response.content
    body = response.json()
    sealed = AuditEvent.objects.filter(seq__isnull=False).count()
    assert sealed >= made["tree_size"]
    assert (body["ok"], body["checked"], body["first_bad_seq"]) == (True, sealed, None)
    event = last_event(AuditAction.AUDIT_VERIFIED)
    assert event.actor_id == world.auditor.pk
    assert event.changes == {"ok": True, "checked": body["checked"], "first_bad_seq": None}


def test_verification_over_http_names_the_first_bad_seq(world, as_user):
    client = as_user(world.auditor)
    make_checkpoint(client)
    with triggers_disabled("audit_auditevent"):
        execute("UPDATE audit_auditevent SET actor_name = 'rewritten' WHERE seq = 3")
    body = client.post(VERIFY).json()
    assert (body["ok"], body["first_bad_seq"]) == (False, 3)
    assert last_event(AuditAction.AUDIT_VERIFIED).changes["first_bad_seq"] == 3


@pytest.mark.parametrize("persona", ["lead", "supervisor", "investigator", "admin", "outsider", "prosecutor"])
def test_only_auditors_verify(world, as_user, persona):
    response = as_user(getattr(world, persona)).post(VERIFY)
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action=AuditAction.AUDIT_VERIFIED).exists()


# ---------------------------------------------------------------- attempts on the log


@pytest.mark.parametrize("method", ["put", "patch", "delete", "post"])
@pytest.mark.parametrize("persona", ["auditor", "lead", "admin"])
def test_writing_to_the_event_list_is_405_and_recorded(world, as_user, method, persona):
    user = getattr(world, persona)
    seal_pending()
    before = list(AuditEvent.objects.filter(seq__isnull=False).values_list("seq", "entry_hash"))
    response = getattr(as_user(user), method)(EVENTS, {"action": "case.created"}, format="json")
    assert response.status_code == 405
    attempt = last_event(AuditAction.AUDIT_TAMPER_ATTEMPT)
    assert attempt is not None
    assert (attempt.actor_id, attempt.agency_id) == (user.pk, world.agency_a.pk)
    assert attempt.changes == {"method": method.upper(), "path": EVENTS}
    assert list(AuditEvent.objects.filter(seq__in=[s for s, _ in before]).values_list("seq", "entry_hash")) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("delete", LATEST),
        ("put", KEY),
        ("delete", "/api/audit/events/1/proof/"),
        ("get", VERIFY),
        ("delete", CHECKPOINTS),
    ],
)
def test_writing_to_other_audit_routes_is_405_and_recorded(world, as_user, method, path):
    response = getattr(as_user(world.auditor), method)(path)
    assert response.status_code == 405
    attempt = last_event(AuditAction.AUDIT_TAMPER_ATTEMPT)
    assert attempt.changes == {"method": method.upper(), "path": path}
