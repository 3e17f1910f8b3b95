"""Evidence: references and hashed uploads (streamed, size-limited, refused on a hash mismatch),
fixed hashes, withdrawal, streamed downloads, verification against tampering, and custody."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.models import AuditAction, AuditEvent
from cases import services
from cases.api.serializers import READ_ONLY_FIELD
from cases.models import CustodyAction, CustodyEvent, EvidenceItem, EvidenceStatus
from cases.uploads import UPLOAD_TOO_LARGE
from tests.factories import CaseFactory, EvidenceFactory, LeadFactory

CONTENT = b"buyer: how much for an hour\nbot: 200 roses\n" * 40


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def evidence_url(item: Any, tail: str = "") -> str:
    pk = item["id"] if isinstance(item, dict) else item.pk
    return f"/api/evidence/{pk}/{tail}"


def upload(client: Any, case: Any, content: bytes, name: str = "chat.txt", **fields: Any) -> Any:
    return client.post(
        "/api/evidence/",
        {"case": str(case.pk), "kind": "chat_transcript", "content": SimpleUploadedFile(name, content), **fields},
        format="multipart",
    )


def reference_body(case: Any, /, **overrides: Any) -> dict[str, Any]:
    return {
        "case": str(case.pk),
        "kind": "subpoena_return",
        "external_uri": "evidence-vault://returns/4411",
        "sha256": sha(b"the return"),
        "size_bytes": 10,
        **overrides,
    }


def stored_files(settings: Any) -> list[Path]:
    root = Path(settings.STORAGES["evidence"]["OPTIONS"]["location"])
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def stored_path(item: EvidenceItem) -> str:
    return storages["evidence"].path(item.content_name)


def pk_param(item: EvidenceItem) -> Any:
    return EvidenceItem._meta.pk.get_db_prep_value(item.pk, connection)


@pytest.fixture
def upload_temp_dir(settings: Any, tmp_path: Path) -> Path:
    folder = tmp_path / "uploads"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


@pytest.fixture
def stored_item(world: Any) -> EvidenceItem:
    return EvidenceFactory(case=world.case, upload=SimpleUploadedFile("chat.txt", CONTENT))


# ---------------------------------------------------------------- intake


def test_json_reference_is_created_with_its_declared_hash(world, as_user):
    body = reference_body(world.case, sha256=sha(b"the return").upper())
    r = as_user(world.teammate).post("/api/evidence/", body)
    assert r.status_code == 201, r.content
    item = r.json()
    assert item["stored"] is False
    assert item["sha256"] == sha(b"the return")
    assert item["size_bytes"] == 10
    assert item["external_uri"] == "evidence-vault://returns/4411"
    assert item["status"] == "active"
    events = list(CustodyEvent.objects.filter(evidence_id=item["id"]).values_list("action", "actor_id"))
    assert events == [(CustodyAction.COLLECTED, world.teammate.pk)]


def test_upload_is_hashed_by_the_server(world, as_user, settings):
    r = upload(as_user(world.lead), world.case, CONTENT)
    assert r.status_code == 201, r.content
    item = r.json()
    assert item["stored"] is True
    assert item["sha256"] == sha(CONTENT)
    assert item["size_bytes"] == len(CONTENT)
    assert item["original_filename"] == "chat.txt"
    assert [p.read_bytes() for p in stored_files(settings)] == [CONTENT]


def test_upload_with_the_matching_declared_hash_is_accepted(world, as_user):
    r = upload(as_user(world.lead), world.case, CONTENT, sha256=sha(CONTENT))
    assert r.status_code == 201
    assert r.json()["sha256"] == sha(CONTENT)


def test_declared_hash_that_differs_is_400_and_nothing_is_kept(world, as_user, settings, upload_temp_dir):
    wrong = sha(b"something else")
    r = upload(as_user(world.lead), world.case, CONTENT, sha256=wrong)
    assert r.status_code == 400
    assert r.json() == {"sha256": [services.EVIDENCE_SHA256_MISMATCH.format(computed=sha(CONTENT))]}
    assert not EvidenceItem.objects.exists()
    assert not CustodyEvent.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.EVIDENCE_CREATED).exists()
    assert stored_files(settings) == []
    assert list(upload_temp_dir.iterdir()) == []


def test_upload_larger_than_the_memory_threshold_streams_to_a_temporary_file(world, as_user, settings, monkeypatch):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    content = b"%PDF-1.7\n" + os.urandom(3 * 1024 * 1024)
    seen: list[tuple[type, str | None]] = []
    original = services.evidence_create

    def capturing(**kwargs: Any) -> EvidenceItem:
        received = kwargs.get("upload")
        seen.append((type(received), getattr(received, "sha256", None)))
        return original(**kwargs)

    monkeypatch.setattr(services, "evidence_create", capturing)
    r = upload(as_user(world.lead), world.case, content, name="extraction.bin")
    assert r.status_code == 201, r.content
    assert r.json()["sha256"] == sha(content)
    assert r.json()["size_bytes"] == len(content)
    assert seen == [(TemporaryUploadedFile, sha(content))]
    assert [p.read_bytes() == content for p in stored_files(settings)] == [True]


def test_upload_over_the_size_limit_is_413_and_nothing_is_kept(world, as_user, settings, upload_temp_dir):
    settings.EVIDENCE_MAX_UPLOAD_BYTES = 1000
    client = as_user(world.lead)
    for size in (200 * 1024, 1001):
        r = upload(client, world.case, b"x" * size)
        assert r.status_code == 413, (size, r.content)
        assert r.json() == {"detail": UPLOAD_TOO_LARGE.format(limit=1000), "code": "payload_too_large"}
    assert not EvidenceItem.objects.exists()
    assert stored_files(settings) == []
    assert list(upload_temp_dir.iterdir()) == []
    assert upload(client, world.case, b"x" * 1000).status_code == 201


def test_json_body_over_the_request_limit_is_413_in_the_error_shape(world, as_user, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    r = as_user(world.lead).post("/api/evidence/", reference_body(world.case, description="x" * 10_000))
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"
    assert not EvidenceItem.objects.exists()


def test_empty_upload_is_hashed_too(world, as_user):
    r = upload(as_user(world.lead), world.case, b"", name="empty.txt")
    assert r.status_code == 201, r.content
    assert (r.json()["sha256"], r.json()["size_bytes"]) == (sha(b""), 0)


def test_evidence_lead_must_belong_to_the_same_case(world, as_user):
    other_lead = LeadFactory(case=CaseFactory(actor=world.lead))
    r = as_user(world.lead).post("/api/evidence/", reference_body(world.case, lead=str(other_lead.pk)))
    assert r.status_code == 400
    assert r.json() == {"lead": [services.EVIDENCE_LEAD_OTHER_CASE]}
    own_lead = LeadFactory(case=world.case)
    r = as_user(world.lead).post("/api/evidence/", reference_body(world.case, lead=str(own_lead.pk)))
    assert r.status_code == 201
    assert r.json()["lead"] == str(own_lead.pk)


def test_viewer_and_outsider_cannot_add_evidence(world, as_user):
    assert as_user(world.viewer).post("/api/evidence/", reference_body(world.case)).status_code == 403
    assert as_user(world.outsider).post("/api/evidence/", reference_body(world.case)).status_code == 400
    assert not EvidenceItem.objects.exists()


MALFORMED_EVIDENCE_OVERRIDES = [
    {"case": "not-a-uuid"},
    {"case": "00000000-0000-0000-0000-000000000001"},
    {"kind": "selfie"},
    {"kind": None},
    {"size_bytes": -1},
    {"size_bytes": "ten"},
    {"size_bytes": 2**63},
    {"sha256": "z" * 64},
    {"sha256": "a" * 63},
    {"sha256": "a" * 65},
    {"sha256": ""},
    {"lead": "not-a-uuid"},
    {"collected_at": "tomorrow"},
    {"external_uri": ""},
    {"external_uri": "x" * 2001},
    {"content": "not a file"},
    {"status": "withdrawn"},
    {"stored": True},
    {"original_filename": "evil.exe"},
    {"content_name": "../../etc/passwd"},
]


def test_malformed_evidence_input_is_400(world, as_user):
    client = as_user(world.lead)
    for overrides in MALFORMED_EVIDENCE_OVERRIDES:
        body = {k: v for k, v in reference_body(world.case, **overrides).items() if v is not None}
        r = client.post("/api/evidence/", body)
        assert r.status_code == 400, (overrides, r.content)
    assert not EvidenceItem.objects.exists()


def test_reference_without_size_is_400(world, as_user):
    body = reference_body(world.case)
    del body["size_bytes"]
    r = as_user(world.lead).post("/api/evidence/", body)
    assert r.status_code == 400
    assert "size_bytes" in r.json()


def test_both_content_and_reference_is_400(world, as_user):
    r = upload(as_user(world.lead), world.case, CONTENT, external_uri="vault://x")
    assert r.status_code == 400
    assert r.json() == {"non_field_errors": [services.EVIDENCE_CONTENT_OR_REFERENCE]}
    assert not EvidenceItem.objects.exists()


def test_non_json_body_is_400(world, as_user):
    client = as_user(world.lead)
    r = client.post("/api/evidence/", "{not json", content_type="application/json")
    assert r.status_code == 400
    r = client.post("/api/evidence/", [1, 2], format="json")
    assert r.status_code == 400


def test_unknown_or_malformed_evidence_ids_are_404(world, as_user):
    client = as_user(world.lead)
    for tail in ("", "content/", "custody/", "verify/"):
        method = client.post if tail == "verify/" else client.get
        assert method(f"/api/evidence/00000000-0000-0000-0000-000000000001/{tail}").status_code == 404, tail
        assert method(f"/api/evidence/not-a-uuid/{tail}").status_code == 404, tail


# ---------------------------------------------------------------- the hash never changes


FIXED_EVIDENCE_FIELDS = {
    "sha256": "0" * 64,
    "size_bytes": 1,
    "external_uri": "vault://elsewhere",
    "content_name": "MCSO/other",
    "content": "replacement",
    "case": "00000000-0000-0000-0000-000000000001",
    "kind": "other",
    "collected_at": "2001-01-01T00:00:00Z",
    "withdrawn_by": 1,
}


def assert_hash_and_content_unchanged(item: EvidenceItem) -> None:
    fresh = EvidenceItem.objects.get(pk=item.pk)
    assert (fresh.sha256, fresh.size_bytes, fresh.content_name) == (sha(CONTENT), len(CONTENT), item.content_name)
    assert Path(stored_path(fresh)).read_bytes() == CONTENT


def test_patching_a_fixed_evidence_field_is_400(world, as_user, stored_item):
    client = as_user(world.lead)
    for field, value in FIXED_EVIDENCE_FIELDS.items():
        r = client.patch(evidence_url(stored_item), {field: value})
        assert r.status_code == 400, field
        assert r.json() == {field: [READ_ONLY_FIELD]}
    assert_hash_and_content_unchanged(stored_item)


def test_database_refuses_raw_update_of_fixed_columns(world, stored_item):
    for column, value in (("sha256", "0" * 64), ("size_bytes", 1), ("content_name", "x"), ("external_uri", "v://x")):
        with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"UPDATE cases_evidenceitem SET {column} = %s WHERE id = %s", [value, pk_param(stored_item)])
        assert "never change" in str(refused.value), column
    assert_hash_and_content_unchanged(stored_item)


def test_database_still_allows_updating_the_description(world, stored_item):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE cases_evidenceitem SET description = %s WHERE id = %s", ["relabelled", pk_param(stored_item)]
        )
    assert EvidenceItem.objects.get(pk=stored_item.pk).description == "relabelled"


def test_orm_save_of_a_changed_hash_is_refused(world, stored_item):
    stored_item.sha256 = "0" * 64
    with pytest.raises(DatabaseError), transaction.atomic():
        stored_item.save()
    assert EvidenceItem.objects.get(pk=stored_item.pk).sha256 == sha(CONTENT)


# ---------------------------------------------------------------- editing and withdrawal


def test_description_edit_is_allowed(world, as_user, stored_item):
    r = as_user(world.teammate).patch(evidence_url(stored_item), {"description": "Night 1 transcript"})
    assert r.status_code == 200
    assert r.json()["description"] == "Night 1 transcript"
    assert r.json()["sha256"] == sha(CONTENT)


def test_withdrawal_needs_a_reason_and_then_freezes_the_item(world, as_user, stored_item):
    client = as_user(world.lead)
    for body in ({"status": "withdrawn"}, {"status": "withdrawn", "withdrawn_reason": "   "}):
        r = client.patch(evidence_url(stored_item), body)
        assert r.status_code == 400
        assert r.json() == {"withdrawn_reason": [services.EVIDENCE_WITHDRAW_REASON]}
    assert EvidenceItem.objects.get(pk=stored_item.pk).status == EvidenceStatus.ACTIVE
    r = client.patch(
        evidence_url(stored_item), {"status": "withdrawn", "withdrawn_reason": "Suppressed by court order"}
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "withdrawn"
    assert body["withdrawn_reason"] == "Suppressed by court order"
    assert body["withdrawn_by"]["username"] == "lena_lead"
    assert body["withdrawn_at"] is not None
    assert body["sha256"] == sha(CONTENT)
    r = client.patch(evidence_url(stored_item), {"description": "after withdrawal"})
    assert r.status_code == 409
    assert r.json()["detail"] == services.EVIDENCE_WITHDRAWN
    r = client.patch(evidence_url(stored_item), {"status": "withdrawn", "withdrawn_reason": "again"})
    assert r.status_code == 409


def test_other_status_changes_are_400(world, as_user, stored_item):
    client = as_user(world.lead)
    for body in ({"status": "active"}, {"status": "deleted"}, {"withdrawn_reason": "no status"}):
        assert client.patch(evidence_url(stored_item), body).status_code == 400, body
    assert EvidenceItem.objects.get(pk=stored_item.pk).status == EvidenceStatus.ACTIVE


def test_evidence_cannot_be_deleted(world, as_user, stored_item):
    assert as_user(world.lead).delete(evidence_url(stored_item)).status_code == 405
    assert EvidenceItem.objects.filter(pk=stored_item.pk).exists()


# ---------------------------------------------------------------- download


def test_content_download_streams_exact_bytes_with_hash_headers(world, as_user, stored_item):
    r = as_user(world.viewer).get(evidence_url(stored_item, "content/"))
    assert r.status_code == 200
    assert r.streaming
    assert b"".join(r.streaming_content) == CONTENT
    assert r["ETag"] == f'"{sha(CONTENT)}"'
    assert r["Digest"] == "sha-256=" + base64.b64encode(hashlib.sha256(CONTENT).digest()).decode()
    assert r["Content-Disposition"] == 'attachment; filename="chat.txt"'
    event = AuditEvent.objects.get(action=AuditAction.EVIDENCE_DOWNLOADED)
    assert (event.actor_id, event.target_id, event.case_id) == (world.viewer.pk, str(stored_item.pk), world.case.pk)
    assert event.changes == {"sha256": sha(CONTENT), "size_bytes": len(CONTENT)}


def test_download_filename_cannot_inject_headers_or_paths(world, as_user):
    item = EvidenceFactory(case=world.case, upload=SimpleUploadedFile('..\\evil";x=y\r\n.txt', CONTENT))
    r = as_user(world.lead).get(evidence_url(item, "content/"))
    disposition = r["Content-Disposition"]
    assert disposition.count('"') == 2
    assert "\r" not in disposition
    assert "\n" not in disposition
    assert "\\" not in disposition


def test_download_of_a_reference_is_409(world, as_user):
    item = EvidenceFactory(case=world.case)
    r = as_user(world.lead).get(evidence_url(item, "content/"))
    assert r.status_code == 409
    assert r.json()["detail"] == services.EVIDENCE_NOT_STORED
    assert not AuditEvent.objects.filter(action=AuditAction.EVIDENCE_DOWNLOADED).exists()


def test_outsider_download_is_404_and_not_audited_as_a_download(world, as_user, stored_item):
    assert as_user(world.outsider).get(evidence_url(stored_item, "content/")).status_code == 404
    assert not AuditEvent.objects.filter(action=AuditAction.EVIDENCE_DOWNLOADED).exists()


# ---------------------------------------------------------------- verify


def test_verify_appends_a_matching_verified_event(world, as_user, stored_item):
    r = as_user(world.teammate).post(evidence_url(stored_item, "verify/"))
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["action"] == "verified"
    assert body["details"] == {"expected": sha(CONTENT), "computed": sha(CONTENT), "match": True}
    actions = list(CustodyEvent.objects.filter(evidence=stored_item).values_list("action", flat=True))
    assert actions == [CustodyAction.COLLECTED, CustodyAction.VERIFIED]


def test_verify_after_tampering_on_disk_records_a_mismatch(world, as_user, stored_item):
    path = stored_path(stored_item)
    os.chmod(path, 0o600)
    tampered = CONTENT.replace(b"200", b"900")
    Path(path).write_bytes(tampered)
    r = as_user(world.lead).post(evidence_url(stored_item, "verify/"))
    assert r.status_code == 200
    assert r.json()["details"] == {"expected": sha(CONTENT), "computed": sha(tampered), "match": False}
    event = CustodyEvent.objects.get(evidence=stored_item, action=CustodyAction.VERIFIED)
    assert event.details["match"] is False
    assert EvidenceItem.objects.get(pk=stored_item.pk).sha256 == sha(CONTENT)
    audit = AuditEvent.objects.get(action=AuditAction.EVIDENCE_VERIFIED)
    assert audit.changes == {"match": False, "computed": sha(tampered)}


def test_verify_of_missing_content_records_a_mismatch(world, as_user, stored_item):
    os.remove(stored_path(stored_item))
    r = as_user(world.lead).post(evidence_url(stored_item, "verify/"))
    assert r.status_code == 200
    assert r.json()["details"]["match"] is False
    assert r.json()["details"]["error"].startswith("content unreadable")


def test_verify_of_a_reference_is_409(world, as_user):
    item = EvidenceFactory(case=world.case)
    r = as_user(world.lead).post(evidence_url(item, "verify/"))
    assert r.status_code == 409
    assert r.json()["detail"] == services.EVIDENCE_NOT_STORED
    assert not CustodyEvent.objects.filter(evidence=item, action=CustodyAction.VERIFIED).exists()


def test_viewer_cannot_verify(world, as_user, stored_item):
    assert as_user(world.viewer).post(evidence_url(stored_item, "verify/")).status_code == 403
    assert not CustodyEvent.objects.filter(action=CustodyAction.VERIFIED).exists()


# ---------------------------------------------------------------- custody


def test_custody_post_appends_an_event(world, as_user, stored_item):
    body = {"action": "transferred", "from_party": "Det. Lead", "to_party": "Lab", "location": "Locker 3", "note": "x"}
    r = as_user(world.teammate).post(evidence_url(stored_item, "custody/"), body)
    assert r.status_code == 201, r.content
    event = r.json()
    assert {k: event[k] for k in body} == body
    assert event["actor"]["username"] == "tom_team"
    assert event["evidence"] == str(stored_item.pk)
    assert CustodyEvent.objects.filter(evidence=stored_item).count() == 2


def test_custody_post_of_verified_is_400(world, as_user, stored_item):
    r = as_user(world.lead).post(evidence_url(stored_item, "custody/"), {"action": "verified"})
    assert r.status_code == 400
    assert r.json() == {"action": [services.CUSTODY_ACTION_RESERVED]}
    assert CustodyEvent.objects.filter(evidence=stored_item).count() == 1


def test_malformed_custody_input_is_400(world, as_user, stored_item):
    client = as_user(world.lead)
    bodies = [
        {},
        {"action": "burned"},
        {"action": "received", "occurred_at": "last week"},
        {"action": "received", "details": {"match": True}},
        {"action": "received", "actor": 1},
        {"action": "received", "evidence": str(stored_item.pk)},
        {"action": "received", "location": "x" * 201},
        {"action": ["received"]},
    ]
    for body in bodies:
        assert client.post(evidence_url(stored_item, "custody/"), body).status_code == 400, body
    assert CustodyEvent.objects.filter(evidence=stored_item).count() == 1


def test_viewer_cannot_record_custody(world, as_user, stored_item):
    assert as_user(world.viewer).post(evidence_url(stored_item, "custody/"), {"action": "received"}).status_code == 403


def test_custody_list_is_in_order_of_occurrence(world, as_user):
    client = as_user(world.lead)
    now = timezone.now()
    body = reference_body(world.case, collected_at=(now - timedelta(days=2)).isoformat())
    item = client.post("/api/evidence/", body).json()
    transferred = {"action": "transferred", "occurred_at": now.isoformat()}
    received = {"action": "received", "occurred_at": (now - timedelta(days=1)).isoformat()}
    assert client.post(evidence_url(item, "custody/"), transferred).status_code == 201
    assert client.post(evidence_url(item, "custody/"), received).status_code == 201
    assert client.post(evidence_url(item, "custody/"), {"action": "checked_out"}).status_code == 201
    r = client.get(evidence_url(item, "custody/"))
    assert r.status_code == 200
    assert [e["action"] for e in r.json()["results"]] == ["collected", "received", "transferred", "checked_out"]


def test_custody_cannot_be_changed_over_http(world, as_user, stored_item):
    client = as_user(world.lead)
    url = evidence_url(stored_item, "custody/")
    for method in (client.put, client.patch, client.delete):
        assert method(url, {"action": "disposed"}).status_code == 405
    assert CustodyEvent.objects.filter(evidence=stored_item).count() == 1
