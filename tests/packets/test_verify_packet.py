"""verify_packet.py: passes on a fresh packet, fails on every kind of tampering, and runs on
its own with Python and `cryptography` only (also as `manage.py verify_packet`)."""

from __future__ import annotations

import ast
import hashlib
import json
import stat
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit import note, signing
from cases.packets import content
from cases.packets.verify_packet import MANIFEST_NOTE_TITLE, verify
from tests.packets.conftest import Built, rewrite

Entries = list[tuple[zipfile.ZipInfo, bytes]]


def _run(path: Path, key: str) -> tuple[bool, list[str]]:
    lines: list[str] = []
    ok = verify(str(path), key, emit=lines.append)
    return ok, lines


def _failed(lines: list[str]) -> list[str]:
    return [line.split(":", 1)[0].removeprefix("FAIL  ") for line in lines if line.startswith("FAIL")]


def _edit(inner: str, change: Callable[[bytes], bytes]) -> Callable[[Entries], Entries]:
    def apply(entries: Entries) -> Entries:
        return [(info, change(data) if info.filename.endswith("/" + inner) else data) for info, data in entries]

    return apply


def _resign(entries: Entries) -> Entries:
    """What only the key holder could do: a fresh manifest over the entries, signed again."""
    folder = entries[0][0].filename.split("/", 1)[0]
    files = {
        info.filename.split("/", 1)[1]: data
        for info, data in entries
        if not info.filename.endswith(("/manifest.json", "/manifest.sig"))
    }
    manifest = content.dumps(
        {
            "files": [
                {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                for path, data in sorted(files.items())
            ],
            "folder": folder,
            "format": content.PACKET_FORMAT,
            "hash_algorithm": "SHA-256",
        }
    )
    signed = signing.signer().sign(f"{MANIFEST_NOTE_TITLE}\n{folder}\n{hashlib.sha256(manifest).hexdigest()}\n")
    out = []
    for info, data in entries:
        if info.filename.endswith("/manifest.json"):
            data = manifest
        elif info.filename.endswith("/manifest.sig"):
            data = signed.encode()
        out.append((info, data))
    return out


def _first_native(entries: Entries) -> str:
    return next(info.filename.split("/", 1)[1] for info, _ in entries if "/natives/" in info.filename)


def _change_first_native(entries: Entries) -> Entries:
    return _edit(_first_native(entries), lambda data: b"X" + data[1:])(entries)


def _edit_event(data: bytes) -> bytes:
    lines = data.split(b"\n")
    lines[0] = lines[0].replace(b'"actor_name": "lena_lead"', b'"actor_name": "someone_else"', 1)
    assert b"someone_else" in lines[0]
    return b"\n".join(lines)


def test_a_fresh_packet_passes_every_check(built: Built, public_key: str) -> None:
    ok, lines = _run(built.path, public_key)
    assert ok, lines
    assert not _failed(lines)
    assert [line.split(":", 1)[0] for line in lines if not line.startswith("PASS  evidence")] == [
        "PASS  public key",
        "PASS  zip paths",
        "PASS  manifest signature",
        "PASS  files match manifest.json",
        "PASS  audit checkpoint",
        "PASS  audit events",
        "PASS  audit proofs",
        "RESULT",
    ]
    assert len([line for line in lines if line.startswith("PASS  evidence")]) == 3
    assert lines[-1] == "RESULT: PASS (10 checks)"


TAMPERING: dict[str, tuple[Callable[[Entries], Entries], set[str]]] = {
    "changed native": (_change_first_native, {"files match manifest.json"}),
    "changed csv": (_edit("leads.csv", lambda data: data.replace(b"Zo", b"Jo")), {"files match manifest.json"}),
    "removed file": (
        lambda entries: [(i, d) for i, d in entries if not i.filename.endswith("/custody.csv")],
        {"files match manifest.json"},
    ),
    "added file": (
        lambda entries: [*entries, (zipfile.ZipInfo(entries[0][0].filename.split("/")[0] + "/extra.txt"), b"hi")],
        {"files match manifest.json"},
    ),
    "edited audit event": (_edit("audit/events.jsonl", _edit_event), {"files match manifest.json", "audit events"}),
    "forged checkpoint": (
        _edit(
            "audit/checkpoint.txt",
            lambda data: (
                note.Signer.generate(signing.signer().name).sign(data.decode().split("\n\n")[0] + "\n").encode()
            ),
        ),
        {"files match manifest.json", "audit checkpoint", "audit proofs"},
    ),
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_tampering_fails_verification(kind: str, built: Built, public_key: str, tmp_path: Path) -> None:
    change, expected_failures = TAMPERING[kind]
    tampered = rewrite(built.path, tmp_path / "tampered.zip", change)
    ok, lines = _run(tampered, public_key)
    assert not ok
    assert {f for f in _failed(lines) if not f.startswith("evidence")} == expected_failures
    assert lines[-1].startswith("RESULT: FAIL")


def test_a_changed_native_fails_its_evidence_check(built: Built, public_key: str, tmp_path: Path) -> None:
    tampered = rewrite(built.path, tmp_path / "tampered.zip", _change_first_native)
    _, lines = _run(tampered, public_key)
    with zipfile.ZipFile(built.path) as zf:
        native = _first_native([(info, b"") for info in zf.infolist()])
    evidence_id = native.split("/")[1]
    assert [line for line in lines if line.startswith("FAIL  evidence")] == [
        next(line for line in lines if line.startswith(f"FAIL  evidence {evidence_id}"))
    ]


def test_the_wrong_key_fails_both_signatures(built: Built, tmp_path: Path) -> None:
    other = note.Signer.generate(signing.signer().name).verifier.text()
    ok, lines = _run(built.path, other)
    assert not ok
    assert set(_failed(lines)) == {"manifest signature", "audit checkpoint", "audit proofs"}


def test_a_malformed_key_fails(built: Built) -> None:
    ok, lines = _run(built.path, "not a key")
    assert not ok
    assert "public key" in _failed(lines)


def test_deep_checks_catch_what_a_re_signed_manifest_would_hide(built: Built, public_key: str, tmp_path: Path) -> None:
    """Even a manifest signed again with the real key does not hide a changed native, an edited
    event, or an event whose entry hash was recomputed to match its edit."""

    def recompute_first_event(data: bytes) -> bytes:
        lines = data.split(b"\n")
        record = json.loads(lines[0])
        canonical = _edit_event(lines[0]).split(b',"entry_hash":')[0].removeprefix(b'{"canonical":')
        digest = hashlib.sha256(bytes.fromhex(record["prev_hash"]) + canonical).hexdigest()
        lines[0] = (
            b'{"canonical":'
            + canonical
            + f',"entry_hash":"{digest}","prev_hash":"{record["prev_hash"]}","seq":{record["seq"]}}}'.encode()
        )
        return b"\n".join(lines)

    cases = {
        "native": (_change_first_native, "evidence"),
        "event": (_edit("audit/events.jsonl", _edit_event), "audit events"),
        "recomputed event": (_edit("audit/events.jsonl", recompute_first_event), "audit proofs"),
    }
    for name, (change, failing) in cases.items():
        tampered = rewrite(
            built.path, tmp_path / f"{name}.zip", lambda entries, change=change: _resign(change(entries))
        )
        ok, lines = _run(tampered, public_key)
        failed = _failed(lines)
        assert not ok, name
        assert "manifest signature" not in failed and "files match manifest.json" not in failed, name
        assert any(f.startswith(failing) for f in failed), (name, failed)


def _with_entry(name: str, data: bytes = b"#!/bin/sh\n", mode: int = 0o100644) -> Callable[[Entries], Entries]:
    def apply(entries: Entries) -> Entries:
        folder = entries[0][0].filename.split("/")[0]
        info = zipfile.ZipInfo(name.replace("FOLDER", folder))
        info.external_attr = mode << 16
        return [*entries, (info, data)]

    return apply


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("../evil.sh", 0o100644),
        ("/etc/cron.d/evil", 0o100644),
        ("FOLDER/natives/../../evil.sh", 0o100644),
        ("FOLDER\\..\\evil.sh", 0o100644),
        ("C:/evil.sh", 0o100644),
        ("other/evil.sh", 0o100644),
        ("FOLDER/case.json", 0o100644),
        ("FOLDER/CASE.JSON", 0o100644),
        ("FOLDER/link", stat.S_IFLNK | 0o777),
        ("FOLDER/dir/", 0o040755),
    ],
)
def test_an_unsafe_zip_entry_fails_the_path_check(
    name: str, mode: int, built: Built, public_key: str, tmp_path: Path
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tampered = rewrite(built.path, tmp_path / "unsafe.zip", _with_entry(name, mode=mode))
    ok, lines = _run(tampered, public_key)
    assert not ok
    assert "zip paths" in _failed(lines)


def test_the_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    """A prosecutor's machine has Python 3 (perhaps not the newest) and `cryptography`."""
    source = (Path(__file__).parents[2] / "cases/packets/verify_packet.py").read_text()
    modules = set()
    for node in ast.walk(ast.parse(source, feature_version=(3, 8))):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or "").split(".")[0])
    assert modules - set(sys.stdlib_module_names) == {"cryptography"}


def test_the_packets_own_verifier_runs_standalone(built: Built, public_key: str, tmp_path: Path) -> None:
    script = tmp_path / "verify_packet.py"
    script.write_bytes(built.read("verify_packet.py"))
    key_file = tmp_path / "agency.pub"
    key_file.write_text(public_key + "\n")
    command = [sys.executable, "-I", str(script), str(built.path), "--public-key", str(key_file)]
    passed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)  # noqa: S603
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.splitlines()[-1] == "RESULT: PASS (10 checks)"
    tampered = rewrite(built.path, tmp_path / "tampered.zip", _change_first_native)
    command[3] = str(tampered)
    failed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)  # noqa: S603
    assert failed.returncode == 1
    assert "FAIL  files match manifest.json" in failed.stdout


def test_manage_verify_packet_passes_and_fails_with_an_exit_status(
    built: Built, public_key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("verify_packet", str(built.path), public_key=public_key)
    assert capsys.readouterr().out.splitlines()[-1] == "RESULT: PASS (10 checks)"
    call_command("verify_packet", str(built.path))
    assert "Using this deployment's verifier key" in capsys.readouterr().out
    tampered = rewrite(built.path, tmp_path / "tampered.zip", _edit("case.json", lambda data: data + b" "))
    with pytest.raises(CommandError) as caught:
        call_command("verify_packet", str(tampered), public_key=public_key)
    assert caught.value.returncode == 1
    assert "FAIL  files match manifest.json" in capsys.readouterr().out
