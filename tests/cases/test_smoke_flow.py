"""End-to-end walk of the main investigator flow over HTTP."""

from __future__ import annotations

import hashlib

from django.core.files.uploadedfile import SimpleUploadedFile


def test_investigator_flow_over_http(world, as_user):
    client = as_user(world.lead)
    r = client.post("/api/cases/", {"title": "Op Test", "kind": "operation"})
    assert r.status_code == 201, r.content
    case_id = r.json()["id"]
    assert r.json()["number"].startswith("MCSO-")
    r = client.post(
        "/api/leads/",
        {
            "case": case_id,
            "display_name": "Buyer 1",
            "identifiers": [{"kind": "phone", "value": "(202) 555-0143"}],
            "signals": {"payment_discussed": True},
        },
    )
    assert r.status_code == 201, r.content
    assert r.json()["identifiers"] == [{"kind": "phone", "value": "+12025550143"}]
    assert r.json()["priority"] == 20
    content = b"chat transcript bytes" * 100
    r = client.post(
        "/api/evidence/",
        {"case": case_id, "kind": "chat_transcript", "content": SimpleUploadedFile("chat.txt", content)},
        format="multipart",
    )
    assert r.status_code == 201, r.content
    item = r.json()
    assert item["sha256"] == hashlib.sha256(content).hexdigest()
    r = client.get(f"/api/evidence/{item['id']}/content/")
    assert r.status_code == 200
    assert b"".join(r.streaming_content) == content
    r = client.post(f"/api/evidence/{item['id']}/verify/")
    assert r.status_code == 200, r.content
    assert r.json()["details"]["match"] is True
    r = client.get(f"/api/evidence/{item['id']}/custody/")
    assert [e["action"] for e in r.json()["results"]] == ["collected", "verified"]
    assert as_user(world.outsider).get(f"/api/cases/{case_id}/").status_code == 404
