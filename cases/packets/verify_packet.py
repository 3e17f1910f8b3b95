#!/usr/bin/env python3
"""Standalone verifier of a caseapi export packet; needs only Python 3 and `cryptography`.

    python3 verify_packet.py PACKET.zip --public-key KEY

(Python 3.8 or later.)

KEY is the agency's verifier key text (`<name>+<key hash>+<base64 key>`) or a file holding it.
The checks, one output line each (PASS or FAIL, then what was checked):

1. the ZIP's entry paths are safe: all inside one folder, none absolute, none with `..`, `.`
   or empty parts, no backslashes, drive letters or control characters, no duplicates (also
   ignoring case), no symlinks, directories or encrypted entries;
2. manifest.sig is an Ed25519 signed note by KEY over the folder name and manifest.json's
   SHA-256;
3. every file matches manifest.json (size and SHA-256), none missing, none extra;
4. every evidence item: its native copy re-hashes to the intake SHA-256 of case.json, and
   evidence.csv and loadfile.dat give the same hash and path;
5. audit/checkpoint.txt is a checkpoint signed by KEY;
6. every audit event's entry hash recomputes from its canonical JSON and previous hash;
7. every audit event has an RFC 9162 inclusion proof to the signed checkpoint's root.

The exit status is 0 when every check passed, 1 otherwise (2 for bad arguments). It reads the
archive in place and never extracts anything. It deliberately imports nothing from caseapi:
signed notes and Merkle proofs are re-implemented here from their specifications.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import csv
import hashlib
import io
import json
import os
import re
import stat
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MANIFEST_NOTE_TITLE = "caseapi packet manifest"
CHUNK = 1024 * 1024
SIGNATURE_PREFIX = "\u2014 "
ALG_ED25519 = 0x01
MAX_DETAIL_LINES = 20
EVENT_LINE = re.compile(
    rb'^\{"canonical":(?P<canonical>.*),"entry_hash":"(?P<entry_hash>[0-9a-f]{64})",'
    rb'"prev_hash":"(?P<prev_hash>[0-9a-f]{64})","seq":(?P<seq>[1-9][0-9]*)\}$',
    re.DOTALL,
)
WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
SIGNED_FILES = ("manifest.json", "manifest.sig")


class CheckFailed(Exception):
    """A check that cannot go on; its message is the FAIL line's text."""


# ---------------------------------------------------------------- signed notes (C2SP)


@dataclass(frozen=True)
class VerifierKey:
    name: str
    key_hash: bytes
    public_key: Ed25519PublicKey


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CheckFailed("invalid base64") from exc


def parse_verifier_key(text: str) -> VerifierKey:
    """`<name>+<8 hex digits>+<base64(0x01 || Ed25519 public key)>`; the hex digits must be the
    first 4 bytes of SHA-256(name || "\\n" || 0x01 || public key)."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or not parts[0] or any(c.isspace() for c in parts[0]):
        raise CheckFailed("a verifier key is <name>+<key hash>+<base64 key>")
    name, hash_hex, encoded = parts
    raw = _b64(encoded)
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise CheckFailed("not an Ed25519 verifier key")
    key_hash = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if key_hash.hex() != hash_hex.lower():
        raise CheckFailed("the key hash does not match the key's name and public key")
    return VerifierKey(name=name, key_hash=key_hash, public_key=Ed25519PublicKey.from_public_bytes(raw[1:]))


def open_signed_note(signed: str, key: VerifierKey) -> str:
    """The note's text if one of its signature lines is a valid signature by `key`."""
    split = signed.rfind("\n\n")
    if split < 0 or not signed.endswith("\n"):
        raise CheckFailed("not a signed note")
    text, block = signed[: split + 1], signed[split + 2 :]
    for line in block.split("\n")[:-1]:
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckFailed("malformed signature line")
        name, _, blob = line[len(SIGNATURE_PREFIX) :].partition(" ")
        raw = _b64(blob)
        if name != key.name or len(raw) != 4 + 64 or raw[:4] != key.key_hash:
            continue
        try:
            key.public_key.verify(raw[4:], text.encode())
        except InvalidSignature as exc:
            raise CheckFailed(f"the signature by {key.name} does not verify") from exc
        return text
    raise CheckFailed(f"no signature by the key {key.name}+{key.key_hash.hex()}")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes


def parse_checkpoint(text: str) -> Checkpoint:
    """C2SP tlog-checkpoint: origin, decimal tree size, base64 root hash (extension lines may
    follow and are ignored)."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise CheckFailed("a checkpoint has an origin, a tree size and a root hash line")
    origin, size, root = lines[0], lines[1], lines[2]
    if not origin or not size.isdigit() or (len(size) > 1 and size[0] == "0"):
        raise CheckFailed("malformed checkpoint origin or tree size")
    root_hash = _b64(root)
    if len(root_hash) != 32:
        raise CheckFailed("a checkpoint's root hash is 32 bytes")
    return Checkpoint(origin=origin, tree_size=int(size), root_hash=root_hash)


# ---------------------------------------------------------------- RFC 9162 Merkle proofs


def leaf_hash(entry_hash: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry_hash).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf: bytes, index: int, tree_size: int, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < tree_size or any(len(p) != 32 for p in proof):
        return False
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# ---------------------------------------------------------------- the packet


def path_problems(infos: list[zipfile.ZipInfo]) -> tuple[str | None, list[str]]:
    """The packet's folder and every unsafe or unexpected entry, in archive order."""
    problems: list[str] = []
    folder: str | None = None
    seen: set[str] = set()
    seen_folded: set[str] = set()
    for info in infos:
        name = info.filename
        shown = repr(name)
        mode = info.external_attr >> 16
        if "\\" in name:
            problems.append(f"{shown}: backslash in path")
        if name.startswith("/") or WINDOWS_DRIVE.match(name):
            problems.append(f"{shown}: absolute path")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
            problems.append(f"{shown}: control character in path")
        parts = name.split("/")
        if name.endswith("/") or info.is_dir():
            problems.append(f"{shown}: directory entry")
        elif any(part in ("", ".", "..") for part in parts):
            problems.append(f"{shown}: '..', '.' or empty path component")
        if mode and stat.S_ISLNK(mode):
            problems.append(f"{shown}: symbolic link")
        elif mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            problems.append(f"{shown}: not a regular file")
        if info.flag_bits & 0x1:
            problems.append(f"{shown}: encrypted entry")
        if name in seen:
            problems.append(f"{shown}: duplicate entry")
        elif name.casefold() in seen_folded:
            problems.append(f"{shown}: duplicate entry (ignoring case)")
        seen.add(name)
        seen_folded.add(name.casefold())
        if folder is None:
            folder = parts[0]
        if len(parts) < 2 or parts[0] != folder:
            problems.append(f"{shown}: outside the packet folder {folder!r}")
    return folder, problems


def _hash_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with zf.open(info) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def _unguard(value: str) -> str:
    """Undo the spreadsheet formula guard (a quote put before = + - @)."""
    return value[1:] if value[:2] in ("'=", "'+", "'-", "'@") else value


def _read_loadfile(data: bytes) -> list[dict[str, str]]:
    text = data.decode("utf-8")
    if not text.startswith("\ufeff"):
        raise CheckFailed("loadfile.dat does not start with a UTF-8 byte order mark")
    rows = []
    for line in text[1:].split("\r\n"):
        if not line:
            continue
        cells = line.split("\u00b6")
        if any(len(c) < 2 or c[0] != "\u00fe" or c[-1] != "\u00fe" for c in cells):
            raise CheckFailed("loadfile.dat has a field not wrapped in the \u00fe qualifier")
        rows.append([c[1:-1] for c in cells])
    if not rows:
        raise CheckFailed("loadfile.dat is empty")
    header, body = rows[0], rows[1:]
    if any(len(row) != len(header) for row in body):
        raise CheckFailed("loadfile.dat has a row with another number of fields than its header")
    return [{name: row[index] for index, name in enumerate(header)} for row in body]


@dataclass
class Report:
    emit: Callable[[str], None]
    checks: int = 0
    failures: int = 0
    details: list[str] = field(default_factory=list)

    def result(self, ok: bool, what: str, problems: list[str] | None = None) -> bool:
        self.checks += 1
        if not ok:
            self.failures += 1
        self.emit(f"{'PASS' if ok else 'FAIL'}  {what}")
        for problem in (problems or [])[:MAX_DETAIL_LINES]:
            self.emit(f"      - {problem}")
        if problems and len(problems) > MAX_DETAIL_LINES:
            self.emit(f"      - ... and {len(problems) - MAX_DETAIL_LINES} more")
        return ok


class Packet:
    """Read access to the packet's entries by path inside its folder."""

    def __init__(self, zf: zipfile.ZipFile, folder: str) -> None:
        self.zf = zf
        self.folder = folder
        self.infos: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            if info.filename.startswith(folder + "/") and not info.filename.endswith("/"):
                self.infos.setdefault(info.filename[len(folder) + 1 :], info)
        self.hashes: dict[str, tuple[str, int]] = {}

    def read(self, path: str) -> bytes:
        info = self.infos.get(path)
        if info is None:
            raise CheckFailed(f"{path} is missing")
        try:
            return self.zf.read(info)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise CheckFailed(f"{path} cannot be read: {exc}") from exc

    def digest(self, path: str) -> tuple[str, int]:
        if path not in self.hashes:
            info = self.infos.get(path)
            if info is None:
                raise CheckFailed(f"{path} is missing")
            try:
                self.hashes[path] = _hash_entry(self.zf, info)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                raise CheckFailed(f"{path} cannot be read: {exc}") from exc
        return self.hashes[path]


def check_manifest_signature(packet: Packet, key: VerifierKey | None, report: Report) -> None:
    what = "manifest signature"
    try:
        if key is None:
            raise CheckFailed("no usable public key")
        manifest = packet.read("manifest.json")
        text = open_signed_note(packet.read("manifest.sig").decode("utf-8"), key)
        expected = f"{MANIFEST_NOTE_TITLE}\n{packet.folder}\n{hashlib.sha256(manifest).hexdigest()}\n"
        if text != expected:
            raise CheckFailed("the signed note does not name this folder and this manifest.json's SHA-256")
    except (CheckFailed, UnicodeDecodeError) as exc:
        report.result(False, f"{what}: {exc}")
        return
    report.result(True, f"{what}: Ed25519 by {key.name}+{key.key_hash.hex()} over manifest.json")


def check_manifest_files(packet: Packet, report: Report) -> None:
    what = "files match manifest.json"
    try:
        manifest = json.loads(packet.read("manifest.json"))
        listed = {entry["path"]: (entry["sha256"], entry["size"]) for entry in manifest["files"]}
        if len(listed) != len(manifest["files"]):
            raise CheckFailed("manifest.json lists a path twice")
    except (CheckFailed, ValueError, KeyError, TypeError) as exc:
        report.result(False, f"{what}: manifest.json unusable: {exc}")
        return
    problems = []
    for path, (sha256, size) in sorted(listed.items()):
        if path in SIGNED_FILES:
            problems.append(f"{path}: listed, but the manifest cannot list itself or its signature")
            continue
        if path not in packet.infos:
            problems.append(f"{path}: missing from the packet")
            continue
        try:
            got_sha, got_size = packet.digest(path)
        except CheckFailed as exc:
            problems.append(str(exc))
            continue
        if got_size != size:
            problems.append(f"{path}: size {got_size}, manifest says {size}")
        if got_sha != sha256:
            problems.append(f"{path}: SHA-256 {got_sha}, manifest says {sha256}")
    for path in sorted(set(packet.infos) - set(listed) - set(SIGNED_FILES)):
        problems.append(f"{path}: in the packet but not in the manifest")
    report.result(
        not problems,
        f"{what}: {len(listed)} files listed" + ("" if problems else ", each with its size and SHA-256, none extra"),
        problems,
    )


def check_evidence(packet: Packet, report: Report) -> str | None:
    """One line per evidence item; returns the case id from case.json."""
    try:
        case_json = json.loads(packet.read("case.json"))
        evidence = case_json["evidence"]
        case_id = case_json["case"]["id"]
        by_csv = {row["evidence_id"]: row for row in _read_csv(packet.read("evidence.csv"))}
        by_dat = {row["DOCID"]: row for row in _read_loadfile(packet.read("loadfile.dat"))}
    except (CheckFailed, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        report.result(False, f"evidence hashes: case.json, evidence.csv or loadfile.dat unusable: {exc}")
        return None
    natives_seen = set()
    for item in evidence:
        try:
            item_id, expected, native = item["id"], item["sha256"], item["native_path"]
            external = item.get("external_uri") or ""
        except (KeyError, TypeError) as exc:
            report.result(False, f"evidence entry malformed in case.json: {exc}")
            continue
        problems = []
        csv_row, dat_row = by_csv.get(item_id), by_dat.get(item_id)
        if csv_row is None or _unguard(csv_row.get("sha256", "")) != expected:
            problems.append("evidence.csv does not give the same SHA-256")
        elif _unguard(csv_row.get("native_path", "")) != (native or ""):
            problems.append("evidence.csv does not give the same native path")
        if dat_row is None or dat_row.get("SHA256") != expected:
            problems.append("loadfile.dat does not give the same SHA-256")
        elif dat_row.get("NATIVEPATH") != (native or ""):
            problems.append("loadfile.dat does not give the same native path")
        if native:
            natives_seen.add(native)
            try:
                computed, size = packet.digest(native)
                if computed != expected:
                    problems.append(f"native {native} hashes to {computed}")
                elif size != item.get("size_bytes"):
                    problems.append(f"native {native} is {size} bytes, intake recorded {item.get('size_bytes')}")
            except CheckFailed as exc:
                problems.append(str(exc))
            what = f"evidence {item_id}: {native} SHA-256 {expected}"
        else:
            what = f"evidence {item_id}: reference {external}, declared SHA-256 {expected} (not copied)"
        report.result(not problems, what + ("" if problems else " matches"), problems)
    strays = sorted(p for p in packet.infos if p.startswith("natives/") and p not in natives_seen)
    if strays:
        report.result(False, "natives: files that belong to no evidence item", strays)
    return case_id


def check_audit(packet: Packet, key: VerifierKey | None, case_id: str | None, report: Report) -> None:
    checkpoint: Checkpoint | None = None
    try:
        if key is None:
            raise CheckFailed("no usable public key")
        text = open_signed_note(packet.read("audit/checkpoint.txt").decode("utf-8"), key)
        checkpoint = parse_checkpoint(text)
        report.result(
            True,
            f"audit checkpoint: signed by {key.name}, {checkpoint.origin} tree size {checkpoint.tree_size}, "
            f"root {base64.b64encode(checkpoint.root_hash).decode()}",
        )
    except (CheckFailed, UnicodeDecodeError) as exc:
        report.result(False, f"audit checkpoint: {exc}")

    events: dict[int, bytes] = {}
    problems: list[str] = []
    try:
        raw = packet.read("audit/events.jsonl")
    except CheckFailed as exc:
        report.result(False, f"audit events: {exc}")
        return
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        match = EVENT_LINE.match(line)
        if match is None:
            problems.append(f"line {number}: not in the documented line format")
            continue
        canonical = match["canonical"]
        seq = int(match["seq"])
        try:
            entry = json.loads(canonical)
            json.loads(line)
        except ValueError:
            problems.append(f"line {number} (seq {seq}): not valid JSON")
            continue
        if not isinstance(entry, dict) or entry.get("seq") != seq:
            problems.append(f"line {number} (seq {seq}): the event's own seq differs")
        elif case_id is not None and entry.get("case_id") != case_id:
            problems.append(f"line {number} (seq {seq}): the event belongs to another case")
        computed = hashlib.sha256(bytes.fromhex(match["prev_hash"].decode()) + canonical).hexdigest()
        if computed != match["entry_hash"].decode():
            problems.append(f"seq {seq}: entry hash does not recompute from its canonical JSON (got {computed})")
        if seq in events:
            problems.append(f"seq {seq}: listed twice")
        events[seq] = bytes.fromhex(match["entry_hash"].decode())
    report.result(
        not problems and bool(events),
        f"audit events: {len(events)} events, each entry hash recomputed from its canonical JSON"
        if not problems and events
        else "audit events: entry hashes",
        problems or ([] if events else ["no events"]),
    )

    problems = []
    try:
        proofs_doc = json.loads(packet.read("audit/proofs.json"))
        proofs = {int(p["seq"]): p for p in proofs_doc["proofs"]}
    except (CheckFailed, ValueError, KeyError, TypeError) as exc:
        report.result(False, f"audit proofs: proofs.json unusable: {exc}")
        return
    if checkpoint is None:
        report.result(False, "audit proofs: no trusted checkpoint to check them against")
        return
    for seq, entry_hash in sorted(events.items()):
        proof = proofs.get(seq)
        if proof is None:
            problems.append(f"seq {seq}: no inclusion proof")
            continue
        try:
            hashes = [_b64(h) for h in proof["proof"]]
            ok = (
                proof["entry_hash"] == entry_hash.hex()
                and proof["tree_size"] == checkpoint.tree_size
                and verify_inclusion(leaf_hash(entry_hash), seq - 1, checkpoint.tree_size, hashes, checkpoint.root_hash)
            )
        except (CheckFailed, KeyError, TypeError) as exc:
            problems.append(f"seq {seq}: malformed proof: {exc}")
            continue
        if not ok:
            problems.append(f"seq {seq}: inclusion proof does not lead to the checkpoint root")
    for seq in sorted(set(proofs) - set(events)):
        problems.append(f"seq {seq}: a proof for an event that is not in events.jsonl")
    report.result(
        not problems and bool(events),
        f"audit proofs: {len(events)} RFC 9162 inclusion proofs verified against the signed checkpoint"
        if not problems and events
        else "audit proofs: inclusion in the signed checkpoint",
        problems,
    )


def read_key_argument(value: str) -> str:
    """The key text itself, or the contents of the file it names."""
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as handle:
            return handle.read().strip()
    return value.strip()


def verify(packet_path: str, key_text: str, emit: Callable[[str], None] = print) -> bool:
    """Run every check, emitting one line per check; True when all passed."""
    report = Report(emit=emit)
    key: VerifierKey | None = None
    try:
        key = parse_verifier_key(key_text)
        report.result(True, f"public key: {key.name}+{key.key_hash.hex()} (Ed25519)")
    except CheckFailed as exc:
        report.result(False, f"public key: {exc}")
    try:
        zf = zipfile.ZipFile(packet_path)
    except (OSError, zipfile.BadZipFile) as exc:
        report.result(False, f"zip: cannot open {packet_path}: {exc}")
        return _finish(report)
    with zf:
        infos = zf.infolist()
        folder, problems = path_problems(infos)
        report.result(
            not problems and folder is not None,
            f"zip paths: {len(infos)} entries, all regular files inside {folder}/, none unsafe"
            if not problems and folder
            else "zip paths: unsafe or unexpected entries",
            problems or ([] if folder else ["the archive is empty"]),
        )
        if folder is None:
            return _finish(report)
        packet = Packet(zf, folder)
        check_manifest_signature(packet, key, report)
        check_manifest_files(packet, report)
        case_id = check_evidence(packet, report)
        check_audit(packet, key, case_id, report)
    return _finish(report)


def _finish(report: Report) -> bool:
    ok = report.failures == 0
    if ok:
        report.emit(f"RESULT: PASS ({report.checks} checks)")
    else:
        report.emit(f"RESULT: FAIL ({report.failures} of {report.checks} checks failed)")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a caseapi export packet.")
    parser.add_argument("packet", help="the packet ZIP file")
    parser.add_argument("--public-key", required=True, help="the verifier key text, or a file containing it")
    args = parser.parse_args(argv)
    try:
        key_text = read_key_argument(args.public_key)
    except OSError as exc:
        print(f"cannot read the public key file: {exc}", file=sys.stderr)
        return 2
    return 0 if verify(args.packet, key_text) else 1


if __name__ == "__main__":
    sys.exit(main())
