"""audit.note against the golang.org/x/mod/sumdb/note reference example (Ed25519 signatures
are deterministic, so our signer must reproduce the published note byte for byte)."""

from __future__ import annotations

import pytest

from audit import note

GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (
    GO_TEXT
    + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_signer_reproduces_the_go_reference_note_byte_for_byte() -> None:
    assert note.parse_signer(GO_SIGNER).sign(GO_TEXT) == GO_NOTE


def test_signer_key_derives_the_go_reference_verifier_key() -> None:
    assert note.parse_signer(GO_SIGNER).verifier.text() == GO_VERIFIER


def test_open_note_returns_the_text_of_the_go_reference_note() -> None:
    assert note.open_note(GO_NOTE, note.parse_verifier(GO_VERIFIER)) == GO_TEXT


def test_open_note_refuses_an_edited_text() -> None:
    with pytest.raises(note.NoteError):
        note.open_note(GO_NOTE.replace("cryptography", "cryptographY"), note.parse_verifier(GO_VERIFIER))


def test_open_note_refuses_a_note_signed_by_another_key() -> None:
    other = note.Signer.generate("PeterNeumann")
    with pytest.raises(note.NoteError, match="no signature by the expected key"):
        note.open_note(other.sign(GO_TEXT), note.parse_verifier(GO_VERIFIER))


@pytest.mark.parametrize(
    "key",
    [
        GO_VERIFIER.replace("c74f20a3", "c74f20a4"),
        GO_VERIFIER[:-2],
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+!!!",
    ],
)
def test_parse_verifier_refuses_mangled_keys(key: str) -> None:
    with pytest.raises(note.NoteError):
        note.parse_verifier(key)


def test_checkpoint_body_round_trips() -> None:
    body = note.CheckpointBody(origin="caseapi.example/audit", tree_size=42, root_hash=bytes(range(32)))
    assert body.text() == "caseapi.example/audit\n42\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    assert note.parse_checkpoint(body.text()) == body


@pytest.mark.parametrize(
    "text",
    [
        "origin\n42\n",
        "origin\n-1\nAAEC\n",
        "origin\n042\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        "\n1\nAA==\n",
    ],
)
def test_parse_checkpoint_refuses_malformed_bodies(text: str) -> None:
    with pytest.raises(note.NoteError):
        note.parse_checkpoint(text)
