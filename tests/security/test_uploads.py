"""Uploads: the media type comes from the bytes and must be on the allow-list (else 415 and
nothing kept), stored names are random, and download names are safe in a header and a path."""

from __future__ import annotations

import codecs
import io
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.exceptions import UnsupportedMediaType

from audit.models import AuditAction, AuditEvent
from cases import services, uploads
from cases.models import CustodyEvent, EvidenceItem
from tests.factories import EvidenceFactory

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + bytes(range(256))
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(32)
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + bytes(range(64))
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(range(64))
ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(range(64))
ROOT = Path(__file__).resolve().parents[2]
CHAT = b"[12:01] buyer: how much for an hour\n[12:02] bot: 200 roses\n"


def zipped(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in names:
            zf.writestr(name, "<x/>")
    return buffer.getvalue()


def upload(client: Any, case: Any, content: bytes, name: str, content_type: str = "text/plain", **fields: Any) -> Any:
    return client.post(
        "/api/evidence/",
        {
            "case": str(case.pk),
            "kind": "document",
            "content": SimpleUploadedFile(name, content, content_type=content_type),
            **fields,
        },
        format="multipart",
    )


def stored_files(settings: Any) -> list[Path]:
    root = Path(settings.STORAGES["evidence"]["OPTIONS"]["location"])
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# ---------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (PDF, "application/pdf"),
        (MP4, "video/mp4"),
        (WAV, "audio/x-wav"),
        (zipped("WhatsApp Chat with Buyer.txt", "IMG-0001.jpg"), "application/zip"),
        (
            zipped("[Content_Types].xml", "_rels/.rels", "word/document.xml"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + bytes(16), "application/gzip"),
        (b"WARC/1.1\r\nWARC-Type: response\r\n\r\n\x00\x01binary", "application/warc"),
        (EXE, "application/x-msdownload"),
        (ELF, "application/x-executable"),
        (CHAT, "text/plain"),
        ("buyer: ¿cuánto? 200 🌹\n".encode(), "text/plain"),
        (codecs.BOM_UTF16_LE + "buyer: how much\n".encode("utf-16-le"), "text/plain"),
        ("caf\u00e9 r\u00e9sum\u00e9\n".encode("cp1252"), "text/plain"),
        (b'  {"messages": [{"from": "buyer", "text": "hi"}]}', "application/json"),
        (b'[{"from": "buyer"}]', "application/json"),
        (b"[]", "application/json"),
        (b"<!DOCTYPE html>\n<html><body>ad</body></html>", "text/html"),
        (b"<?xml version='1.0'?><report/>", "application/xml"),
        (b"BMW seen at the motel at nine\n", "text/plain"),  # not image/bmp
        (b"MZ reported the buyer\n", "text/plain"),  # not an executable
        (bytes(range(256)) * 4, "application/octet-stream"),
        (b"", "application/x-empty"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_media_type_is_sniffed_from_the_bytes(content, expected):
    head = content[: uploads.SNIFF_BYTES]
    assert uploads.sniff_media_type(head, complete=len(content) <= uploads.SNIFF_BYTES) == expected


def test_a_character_cut_off_by_the_sniffed_head_does_not_make_text_binary():
    content = ("x" * (uploads.SNIFF_BYTES - 1) + "é and more").encode()
    head = content[: uploads.SNIFF_BYTES]  # ends inside the two bytes of "é"
    assert uploads.sniff_media_type(head, complete=False) == "text/plain"


@pytest.mark.parametrize(
    ("media_type", "allowed", "expected"),
    [
        ("image/png", ["image/png"], True),
        ("image/png", ["image/*"], True),
        ("image/png", ["image/jpeg", "video/*"], False),
        ("application/x-msdownload", ["application/pdf"], False),
    ],
)
def test_allow_list_takes_exact_types_and_families(media_type, allowed, expected):
    assert uploads.media_type_allowed(media_type, allowed) is expected


def test_a_malformed_allow_list_entry_fails_at_start(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "DEBUG": "1",
        "CASEAPI_VAR_DIR": str(tmp_path),
        "EVIDENCE_ALLOWED_TYPES": "image/png, image/*, pictures",
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "EVIDENCE_ALLOWED_TYPES: 'pictures' is not valid" in result.stderr


# ---------------------------------------------------------------- intake


@pytest.fixture
def upload_temp_dir(settings: Any, tmp_path: Path) -> Path:
    folder = tmp_path / "uploads"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    return folder


def test_a_disallowed_type_is_415_naming_it_and_nothing_is_kept(world, as_user, settings, upload_temp_dir):
    r = upload(as_user(world.lead), world.case, EXE, "holiday-photo.jpg", content_type="image/jpeg")
    assert r.status_code == 415
    assert r.json() == {
        "detail": services.EVIDENCE_TYPE_NOT_ALLOWED.format(detected="application/x-msdownload"),
        "code": "unsupported_media_type",
    }
    assert not EvidenceItem.objects.exists()
    assert not CustodyEvent.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.EVIDENCE_CREATED).exists()
    assert stored_files(settings) == []
    assert list(upload_temp_dir.iterdir()) == []


def test_the_allow_list_is_a_setting(world, as_user, settings):
    settings.EVIDENCE_ALLOWED_TYPES = ["image/*"]
    client = as_user(world.lead)
    r = upload(client, world.case, CHAT, "chat.txt")
    assert r.status_code == 415
    assert r.json()["detail"] == services.EVIDENCE_TYPE_NOT_ALLOWED.format(detected="text/plain")
    assert upload(client, world.case, PNG, "screen.png", content_type="image/png").status_code == 201


def test_the_sniffed_type_is_recorded_whatever_the_name_and_declared_type_say(world, as_user):
    client = as_user(world.lead)
    r = upload(client, world.case, PNG, "notes.txt", content_type="text/plain", media_type="application/pdf")
    assert r.status_code == 201, r.content
    assert r.json()["media_type"] == "image/png"
    assert EvidenceItem.objects.get(pk=r.json()["id"]).media_type == "image/png"


def test_a_declared_kind_of_plain_text_refines_text_plain_only(world, as_user):
    client = as_user(world.lead)
    csv_text = upload(client, world.case, b"time,from,text\n12:01,buyer,hi\n", "chat.csv", content_type="text/csv")
    assert csv_text.json()["media_type"] == "text/csv"
    pdf_as_csv = upload(client, world.case, PDF, "chat.csv", content_type="text/csv")
    assert pdf_as_csv.json()["media_type"] == "application/pdf"
    text_as_html = upload(client, world.case, CHAT, "chat.html", content_type="text/html")
    assert text_as_html.json()["media_type"] == "text/plain"


def test_service_intake_is_checked_too(world):
    with pytest.raises(UnsupportedMediaType) as caught:
        services.evidence_create(
            actor=world.lead, case=world.case, kind="other", upload=SimpleUploadedFile("x.bin", ELF)
        )
    assert caught.value.status_code == 415
    assert str(caught.value.detail) == services.EVIDENCE_TYPE_NOT_ALLOWED.format(detected="application/x-executable")


def test_stored_names_are_random_and_owe_nothing_to_the_upload_name(world, as_user, settings):
    client = as_user(world.lead)
    first = upload(client, world.case, CHAT, "../../etc/passwd")
    second = upload(client, world.case, CHAT, "../../etc/passwd")
    names = [EvidenceItem.objects.get(pk=r.json()["id"]).content_name for r in (first, second)]
    for name in names:
        assert re.fullmatch(r"MCSO/[0-9a-f]{32}", name), name
    assert names[0] != names[1]
    root = Path(settings.STORAGES["evidence"]["OPTIONS"]["location"]).resolve()
    assert sorted(p.relative_to(root).as_posix() for p in stored_files(settings)) == sorted(names)


def test_the_recorded_original_name_keeps_what_was_given_but_unprintable_characters(world):
    item = EvidenceFactory(
        case=world.case, upload=SimpleUploadedFile("..\\chat\x00 log\x1b\u2028.txt", CHAT, content_type="text/plain")
    )
    item.refresh_from_db()
    assert item.original_filename == "..\\chat log.txt"


# ---------------------------------------------------------------- download names


HOSTILE_NAMES = [
    "../../etc/passwd",
    "..\\..\\windows\\system32\\x.txt",
    "a/../../b",
    "\x00.pdf",
    'evil";x=y\r\nSet-Cookie: a=b.txt',
    "report\u202egpj.exe",  # right-to-left override: shows as "reportexe.jpg"
    "zero\u200bwidth.txt",
    "CON.txt",
    "...",
    "",
    "x" * 400 + ".jpeg",
    "Zo\u0065\u0308 \u00c5ngstr\u00f6m \u8a3c\u62e0.pdf",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_download_disposition_is_safe_for_any_name(name):
    header = uploads.attachment_disposition(name, "fallback.bin")
    assert header.startswith('attachment; filename="')
    assert header.count('"') == 2
    for bad in ("\r", "\n", "\x00", "\\", "/", "\u202e", "\u200b"):
        assert bad not in header
    plain = header.split('"')[1]
    assert plain.isascii() and plain.isprintable() and plain not in ("", ".", "..")
    assert len(plain.encode()) <= uploads.MAX_FILENAME_BYTES


def test_a_non_ascii_name_is_offered_as_rfc_6266_filename_star_with_an_ascii_fallback():
    header = uploads.attachment_disposition("Zoe\u0308 \u8a3c\u62e0.pdf")
    assert header == ("attachment; filename=\"Zoe __.pdf\"; filename*=UTF-8''Zo%C3%AB%20%E8%A8%BC%E6%8B%A0.pdf")


def test_an_ascii_name_keeps_the_plain_form():
    assert uploads.attachment_disposition("chat log.txt") == 'attachment; filename="chat log.txt"'


def test_download_name_falls_back_to_the_id_with_the_types_extension(world):
    item = EvidenceFactory(case=world.case, upload=SimpleUploadedFile("...", PDF))
    assert services.evidence_download_name(item=item) == f"{item.pk}.pdf"
    named = EvidenceFactory(case=world.case, upload=SimpleUploadedFile("..\\x.txt", CHAT))
    assert services.evidence_download_name(item=named) == "x.txt"


def test_download_of_a_unicode_name_carries_filename_star(world, as_user):
    item = EvidenceFactory(case=world.case, upload=SimpleUploadedFile("\u8a3c\u62e0 chat.txt", CHAT))
    r = as_user(world.lead).get(f"/api/evidence/{item.pk}/content/")
    assert r.status_code == 200
    assert r["Content-Disposition"] == (
        "attachment; filename=\"__ chat.txt\"; filename*=UTF-8''%E8%A8%BC%E6%8B%A0%20chat.txt"
    )
