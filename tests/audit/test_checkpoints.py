"""Signed checkpoints: C2SP signed notes made on demand and every minute, the verifier key,
the external sink, consistency between checkpoints, and where the signing key comes from."""

from __future__ import annotations

import base64
import logging
import stat
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any, ClassVar

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from audit import merkle, note, signing, tasks, tree
from audit.models import AuditAction, AuditEvent, ChainHead, Checkpoint
from audit.services import audit_record, checkpoint_create
from audit.sinks import DirectorySink
from audit.verify import verify_log


def record(world: Any, count: int) -> None:
    for n in range(count):
        audit_record(action=AuditAction.CASE_VIEWED, actor=world.lead, target=world.case, changes={"n": n})


def entry_hashes() -> list[bytes]:
    return [
        bytes.fromhex(h)
        for h in AuditEvent.objects.filter(seq__isnull=False).order_by("seq").values_list("entry_hash", flat=True)
    ]


def run(command: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(command, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def open_checkpoint(signed: str, verifier: note.Verifier) -> note.CheckpointBody:
    return note.parse_checkpoint(note.open_note(signed, verifier))


# ---------------------------------------------------------------- on demand


def test_audit_checkpoint_prints_a_signed_note_the_published_key_verifies(
    world, settings, django_capture_on_commit_callbacks
):
    record(world, 5)
    with django_capture_on_commit_callbacks(execute=True):
        signed, _ = run("audit_checkpoint")
    key_text, _ = run("audit_public_key")
    verifier = note.parse_verifier(key_text)
    body = open_checkpoint(signed, verifier)
    size = AuditEvent.objects.count()
    assert body.origin == settings.AUDIT_LOG_ORIGIN
    assert body.tree_size == size == ChainHead.objects.get().size
    assert body.root_hash == merkle.root_hash(entry_hashes()) == tree.root_at(size)
    text, signature = signed.split("\n\n")
    assert text + "\n" == body.text()
    assert signature.startswith(f"\u2014 {verifier.name} ") and signature.endswith("\n")
    assert base64.b64decode(signature.rsplit(" ", 1)[1])[:4] == verifier.key_hash
    stored = Checkpoint.objects.get(tree_size=size)
    assert (stored.signed_note, stored.root_hash, stored.key_name) == (signed, body.root_hash.hex(), verifier.name)


def test_the_published_key_is_in_signed_note_verifier_form(world):
    key_text, _ = run("audit_public_key")
    name, key_hash, encoded = key_text.strip().split("+", 2)
    raw = base64.b64decode(encoded)
    assert len(raw) == 33 and raw[0] == 0x01
    assert key_hash == note.key_hash(name, raw[1:]).hex()
    assert name == signing.signer().name
    assert note.parse_verifier(key_text).raw == raw[1:]


def test_a_note_signed_by_another_key_does_not_open_with_the_published_key(world):
    record(world, 1)
    signed, _ = run("audit_checkpoint")
    other = note.Signer.generate(signing.signer().name)
    with pytest.raises(note.NoteError):
        open_checkpoint(signed, other.verifier)
    tampered = signed.replace(signed.split("\n")[1], str(int(signed.split("\n")[1]) + 1), 1)
    with pytest.raises(note.NoteError):
        open_checkpoint(tampered, note.parse_verifier(run("audit_public_key")[0]))


def test_the_sink_holds_each_checkpoint_and_latest_with_the_same_text(
    world, settings, django_capture_on_commit_callbacks
):
    directory = Path(settings.AUDIT_CHECKPOINT_DIR)
    record(world, 3)
    with django_capture_on_commit_callbacks(execute=True):
        first = checkpoint_create().checkpoint
    record(world, 2)
    with django_capture_on_commit_callbacks(execute=True):
        second = checkpoint_create().checkpoint
    files = {int(p.stem.removeprefix("checkpoint-")): p.read_text() for p in directory.glob("checkpoint-*.txt")}
    assert files == {first.tree_size: first.signed_note, second.tree_size: second.signed_note}
    assert (directory / "latest.txt").read_text() == second.signed_note
    assert DirectorySink().latest() == second.signed_note
    assert not list(directory.glob(".tmp-*")), "a temporary file was left behind"


def test_an_older_checkpoint_written_late_does_not_replace_latest(settings):
    signer = signing.signer()
    seven, five = (
        signer.sign(
            note.CheckpointBody(origin=settings.AUDIT_LOG_ORIGIN, tree_size=n, root_hash=bytes([n]) * 32).text()
        )
        for n in (7, 5)
    )
    sink = DirectorySink()
    sink.write(7, seven)
    sink.write(5, five)
    assert sink.latest() == seven
    assert {p.name: p.read_text() for p in Path(settings.AUDIT_CHECKPOINT_DIR).glob("checkpoint-*.txt")} == {
        "checkpoint-000000000005.txt": five,
        "checkpoint-000000000007.txt": seven,
    }


def test_the_sink_is_written_only_when_the_checkpoint_commits(world, settings):
    record(world, 1)
    checkpoint_create()
    assert DirectorySink().latest() is None, "written before (or without) the commit"


def test_checkpoint_twice_without_new_events_returns_the_same_checkpoint(world):
    record(world, 2)
    first = checkpoint_create()
    again = checkpoint_create()
    assert (first.created, again.created) == (True, False)
    assert again.checkpoint.pk == first.checkpoint.pk
    assert Checkpoint.objects.count() == 1
    out, err = run("audit_checkpoint")
    assert out == first.checkpoint.signed_note
    assert f"no new events since the checkpoint at size {first.checkpoint.tree_size}" in err


def test_a_checkpoint_seals_pending_events_first(world):
    record(world, 4)
    assert AuditEvent.objects.filter(seq__isnull=True).exists()
    result = checkpoint_create()
    assert not AuditEvent.objects.filter(seq__isnull=True).exists()
    assert result.checkpoint.tree_size == AuditEvent.objects.count()


def test_a_checkpoint_made_by_a_person_is_audited_and_one_by_the_system_is_not(world):
    record(world, 1)
    checkpoint_create(actor=None)
    assert not AuditEvent.objects.filter(action=AuditAction.AUDIT_CHECKPOINT_CREATED).exists()
    record(world, 1)
    made = checkpoint_create(actor=world.auditor).checkpoint
    event = AuditEvent.objects.get(action=AuditAction.AUDIT_CHECKPOINT_CREATED)
    assert (event.actor_id, event.target_type, event.target_id) == (world.auditor.pk, "audit.checkpoint", str(made.pk))
    assert event.changes == {"tree_size": made.tree_size, "root_hash": made.root_hash}


def test_checkpoints_are_consistent_with_each_other(world, as_user):
    record(world, 3)
    first = checkpoint_create().checkpoint
    record(world, 6)
    second = checkpoint_create().checkpoint
    verifier = signing.verifier()
    old, new = open_checkpoint(first.signed_note, verifier), open_checkpoint(second.signed_note, verifier)
    assert old.tree_size < new.tree_size
    stored = tree.consistency_proof(old.tree_size, new.tree_size)
    assert merkle.verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, stored)
    assert stored == merkle.consistency_proof(old.tree_size, new.tree_size, entry_hashes())
    response = as_user(world.auditor).get(f"/api/audit/consistency/?from={old.tree_size}&to={new.tree_size}")
    assert response.status_code == 200, response.content
    body = response.json()
    proof = [base64.b64decode(p) for p in body["proof"]]
    assert proof == stored
    assert base64.b64decode(body["from_root"]) == old.root_hash
    assert base64.b64decode(body["to_root"]) == new.root_hash
    assert merkle.verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof)
    assert not merkle.verify_consistency(old.tree_size, new.tree_size, new.root_hash, old.root_hash, proof)


def test_a_checkpoint_runs_every_minute_from_celery_beat(world, settings):
    schedule = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]
    assert schedule["task"] == "audit.tasks.audit_checkpoint"
    assert schedule["schedule"] == timedelta(minutes=1)
    record(world, 2)
    size = tasks.audit_checkpoint.delay().get()
    assert size == AuditEvent.objects.count()
    assert Checkpoint.objects.filter(tree_size=size).exists()
    assert tasks.audit_checkpoint.delay().get() == size
    assert Checkpoint.objects.count() == 1


class MemorySink:
    """A checkpoint sink that keeps what it is given (AUDIT_CHECKPOINT_SINK is a dotted path)."""

    written: ClassVar[list[tuple[int, str]]] = []

    def write(self, tree_size: int, signed_note: str) -> None:
        self.written.append((tree_size, signed_note))

    def latest(self) -> str | None:
        return self.written[-1][1] if self.written else None


def test_the_sink_is_configurable(world, settings, django_capture_on_commit_callbacks):
    settings.AUDIT_CHECKPOINT_SINK = f"{__name__}.MemorySink"
    MemorySink.written.clear()
    record(world, 1)
    with django_capture_on_commit_callbacks(execute=True):
        made = checkpoint_create().checkpoint
    assert MemorySink.written == [(made.tree_size, made.signed_note)]
    assert not Path(settings.AUDIT_CHECKPOINT_DIR).exists()
    assert verify_log().ok


# ---------------------------------------------------------------- the signing key


def test_the_key_from_audit_signing_key_signs_checkpoints(world, settings):
    key = note.Signer.generate("task-force.example/audit")
    settings.AUDIT_SIGNING_KEY = key.text()
    signing.signer.cache_clear()
    record(world, 1)
    signed, _ = run("audit_checkpoint")
    assert open_checkpoint(signed, key.verifier).tree_size == AuditEvent.objects.count()
    assert run("audit_public_key")[0].strip() == key.verifier.text()
    assert signed.split("\n\n")[1].startswith("\u2014 task-force.example/audit ")
    assert not Path(settings.AUDIT_SIGNING_KEY_FILE).exists(), "a key file was generated although a key is set"
    assert verify_log().ok


def test_the_key_file_is_used_when_no_key_is_set(world, settings, tmp_path):
    key = note.Signer.generate("file.example/audit")
    path = tmp_path / "mounted.key"
    path.write_text(key.text() + "\n")
    settings.AUDIT_SIGNING_KEY_FILE = str(path)
    signing.signer.cache_clear()
    assert signing.verifier().text() == key.verifier.text()


@pytest.mark.parametrize(
    "bad",
    [
        "not a key",
        "PRIVATE+KEY+name+00000000+AAAA",
        "verifier-form+12345678+" + base64.b64encode(b"\x01" + b"\0" * 32).decode(),
        "PRIVATE+KEY+bad name+00000000+" + base64.b64encode(b"\x01" + b"\0" * 32).decode(),
    ],
    ids=["garbage", "short-key", "verifier-key", "space-in-name"],
)
def test_a_malformed_audit_signing_key_is_improperly_configured(settings, bad):
    settings.AUDIT_SIGNING_KEY = bad
    signing.signer.cache_clear()
    with pytest.raises(ImproperlyConfigured, match="AUDIT_SIGNING_KEY is not a signer key"):
        signing.signer()


def test_a_signing_key_whose_hash_does_not_match_is_improperly_configured(settings):
    key = note.Signer.generate("a.example/audit").text()
    name_swapped = key.replace("a.example/audit", "b.example/audit")
    settings.AUDIT_SIGNING_KEY = name_swapped
    signing.signer.cache_clear()
    with pytest.raises(ImproperlyConfigured, match="hash does not match"):
        signing.signer()


def test_a_malformed_key_file_is_improperly_configured(settings, tmp_path):
    path = tmp_path / "broken.key"
    path.write_text("PRIVATE+KEY+oops\n")
    settings.AUDIT_SIGNING_KEY_FILE = str(path)
    signing.signer.cache_clear()
    with pytest.raises(ImproperlyConfigured, match="key file is not a signer key"):
        signing.signer()


def test_without_debug_a_missing_key_is_improperly_configured(settings, tmp_path):
    settings.DEBUG = False
    settings.TESTING = False
    settings.AUDIT_SIGNING_KEY = None
    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "absent.key")
    signing.signer.cache_clear()
    with pytest.raises(ImproperlyConfigured, match="AUDIT_SIGNING_KEY or AUDIT_SIGNING_KEY_FILE is required"):
        signing.signer()
    assert not (tmp_path / "absent.key").exists()


def test_in_development_a_key_is_generated_once_private_to_its_owner(settings, tmp_path, caplog):
    path = tmp_path / "var" / "dev.key"
    settings.AUDIT_SIGNING_KEY_FILE = str(path)
    signing.signer.cache_clear()
    with caplog.at_level(logging.WARNING, logger="audit.signing"):
        generated = signing.signer()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert note.parse_signer(path.read_text()).verifier.text() == generated.verifier.text()
    assert generated.name == settings.AUDIT_LOG_ORIGIN
    assert any("set AUDIT_SIGNING_KEY in production" in r.getMessage() for r in caplog.records)
    signing.signer.cache_clear()
    assert signing.signer().verifier.text() == generated.verifier.text(), "a second start made another key"
