"""Building a handoff's export packet (shared/PACKET.md): one ZIP written as a stream into the
`packets` storage.

Determinism: entries are stored (not compressed, so the bytes do not depend on the zlib
build), in a fixed order (natives first: their bytes do not depend on the report's length, and
while the report is made they are already on their way to disk and through the packet hash),
with a fixed time (1980-01-01 00:00) and mode (0644), and every text in them is produced from
sorted data; the same handoff at the same audit checkpoint gives the
same bytes. Nothing inside the packet names the ExportPacket (its id only names the file).

Memory: natives are copied in 1 MiB chunks and hashed on the way; the audit excerpt is
streamed in chunks; only the report and the small text files are held whole.

Speed: the whole file's SHA-256 is computed on a worker thread while the ZIP is written,
reading back what is already final (hashlib and file reads release the GIL), so the packet
is not read a second time at the end.

The ZIP is written under a temporary name beside its final one and renamed into place when
complete (on a storage other than a local file system: a local temporary file, uploaded when
complete), so a packet file either is complete or does not exist. Must not run inside a
transaction the caller rolls back on error: a hash mismatch is recorded (custody and audit)
before raising.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import tempfile
import threading
import time
import unicodedata
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.db import transaction
from django.utils import timezone

from audit import signing
from audit.models import AuditAction, Checkpoint
from audit.services import audit_record, checkpoint_create
from cases.models import CustodyAction, CustodyEvent, EvidenceItem, ExportPacket
from cases.packets import content, excerpt, report
from cases.packets.verify_packet import MANIFEST_NOTE_TITLE
from cases.services import system_user

CHUNK = 1024 * 1024
TAIL_CHUNK = 8 * CHUNK
STALE_PART_SECONDS = 15 * 60
PROGRESS_INTERVAL = 0.25
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
ZIP_FILE_MODE = 0o100644 << 16
ZIP_UNIX = 3
HERE = Path(__file__).resolve().parent
INTEGRITY_CONTEXT = "packet build"
INTEGRITY_NOTE = "SHA-256 MISMATCH with intake while building an export packet; the packet was not built."
INTEGRITY_MESSAGE = (
    "Evidence {evidence_id}: the stored content hashes to {computed}, not its intake SHA-256 {expected}; "
    "the packet was not built."
)


@dataclass(frozen=True)
class PacketBuild:
    """What a finished build produced: the file in the `packets` storage and what it proves."""

    file_name: str
    sha256: str
    size_bytes: int
    manifest_sha256: str
    checkpoint_size: int
    signature: str


class PacketIntegrityError(Exception):
    """A native's bytes no longer match its intake SHA-256 (or are gone). Already recorded as
    a `verified` custody event (match false) and an audit event when raised."""

    def __init__(self, *, evidence_id: str, expected: str, computed: str) -> None:
        self.evidence_id = evidence_id
        self.expected = expected
        self.computed = computed
        super().__init__(
            INTEGRITY_MESSAGE.format(evidence_id=evidence_id, expected=expected, computed=computed or "nothing")
        )


class UnsafeEntryName(ValueError):
    """A ZIP entry name that could leave the packet's folder when extracted; never written."""


_ENTRY_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
ENTRY_NAME_MAX_BYTES = 1024


def entry_name(folder: str, path: str) -> str:
    """`<folder>/<path>` as a ZIP entry name, refused (UnsafeEntryName) unless every component
    is a plain name: not empty, `.` or `..`, no backslash, drive letter, control or format
    character, NFC-normalized, and the whole under 1 KiB in UTF-8. `folder` is one such
    component. Native file names are made safe before they get here (uploads.safe_filename):
    this is the last check, so no entry of any packet can escape its folder."""
    name = f"{folder}/{path}"
    parts = name.split("/")
    problems = [
        reason
        for reason, bad in (
            ("an empty, '.' or '..' component", any(part in ("", ".", "..") for part in parts)),
            ("a backslash", "\\" in name),
            ("a drive letter", any(_ENTRY_WINDOWS_DRIVE.match(part) for part in parts)),
            ("a control or format character", any(unicodedata.category(c) in ("Cc", "Cf") for c in name)),
            ("a name that is not NFC-normalized", unicodedata.normalize("NFC", name) != name),
            ("more than 1 KiB", len(name.encode()) > ENTRY_NAME_MAX_BYTES),
            ("a folder that is not a single component", "/" in folder),
        )
        if bad
    ]
    if problems:
        raise UnsafeEntryName(f"refusing ZIP entry {name!r}: {', '.join(problems)}")
    return name


class _NativeMismatch(Exception):
    def __init__(self, evidence_id: str, expected: str, computed: str, error: str = "") -> None:
        super().__init__(evidence_id)
        self.evidence_id, self.expected, self.computed, self.error = evidence_id, expected, computed, error


class _Progress:
    """Forwards (percent, stage) to the callback at most every PROGRESS_INTERVAL seconds (the
    callback usually saves a row), always the first call and 100; the percent never goes back.
    A stage shorter than the interval may go unreported."""

    def __init__(self, callback: Callable[[int, str], None]) -> None:
        self.callback = callback
        self.last: tuple[int, str] | None = None
        self.last_at = 0.0

    def __call__(self, percent: float, stage: str) -> None:
        value = min(100, max(int(percent), self.last[0] if self.last else 0, 0))
        now = time.monotonic()
        if self.last is not None and (
            (value, stage) == self.last or (value < 100 and now - self.last_at < PROGRESS_INTERVAL)
        ):
            return
        self.last, self.last_at = (value, stage), now
        self.callback(value, stage)


class _TailHasher:
    """SHA-256 of the whole packet file, read back through a second handle on a worker thread
    as the writer declares bytes final (all bytes before the end of the last closed entry: the
    ZIP writer only ever goes back to rewrite the header of the entry it is closing). It
    wakes only once TAIL_CHUNK bytes are waiting and reads them into one reused buffer, so it
    rarely takes the GIL from the building thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.final = 0
        self.closing = False
        self.size = 0
        self.digest = hashlib.sha256()
        self.error: BaseException | None = None
        self.ready = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="packet-hash", daemon=True)
        self.thread.start()

    def advance(self, offset: int) -> None:
        with self.ready:
            self.final = offset
            if offset - self.size >= TAIL_CHUNK:
                self.ready.notify()

    def finish(self, offset: int) -> tuple[str, int]:
        self.advance(offset)
        self.stop()
        if self.error is not None:
            raise self.error
        if self.size != offset:
            raise RuntimeError(f"packet hash covered {self.size} of {offset} bytes")
        return self.digest.hexdigest(), self.size

    def stop(self) -> None:
        with self.ready:
            self.closing = True
            self.ready.notify()
        self.thread.join()

    def _run(self) -> None:
        try:
            view = memoryview(bytearray(TAIL_CHUNK))
            with open(self.path, "rb", buffering=0) as handle:  # no read-ahead past `final`
                while True:
                    with self.ready:
                        while self.final - self.size < TAIL_CHUNK and not self.closing:
                            self.ready.wait()
                        target, closing = self.final, self.closing
                    while self.size < target:
                        count = handle.readinto(view[: min(TAIL_CHUNK, target - self.size)])
                        if not count:
                            raise RuntimeError("the packet file is shorter than what was written")
                        self.digest.update(view[:count])
                        self.size += count
                    if closing:
                        return
        except BaseException as exc:  # noqa: BLE001 - handed to the building thread in finish()
            self.error = exc


def _remove_stale_parts(final_path: Path) -> None:
    """Temporary files left by earlier attempts at this packet whose worker died. A build in
    progress keeps writing to its own, so it never looks this old."""
    cutoff = time.time() - STALE_PART_SECONDS
    for part in final_path.parent.glob(f".{final_path.name}.*.part"):
        with contextlib.suppress(FileNotFoundError):
            if part.stat().st_mtime < cutoff:
                part.unlink()


class _Output:
    """The ZIP's temporary file, and moving it to its final name in the storage: renamed into
    place on a local file system storage, uploaded (then removed) on any other."""

    def __init__(self, storage: Storage, name: str) -> None:
        self.storage = storage
        self.name = name
        self.final_path = Path(storage.path(name)) if isinstance(storage, FileSystemStorage) else None
        if self.final_path is not None:
            self.final_path.parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_parts(self.final_path)
            self.temp_path = self.final_path.with_name(f".{self.final_path.name}.{secrets.token_hex(6)}.part")
        else:
            handle, temp = tempfile.mkstemp(suffix=".zip.part", dir=settings.FILE_UPLOAD_TEMP_DIR)
            os.close(handle)
            self.temp_path = Path(temp)

    def commit(self) -> str:
        if self.final_path is not None:
            mode = getattr(self.storage, "file_permissions_mode", None)
            if mode is not None:
                os.chmod(self.temp_path, mode)
            os.replace(self.temp_path, self.final_path)
            return self.name
        if self.storage.exists(self.name):
            self.storage.delete(self.name)
        with open(self.temp_path, "rb") as handle:
            saved = self.storage.save(self.name, File(handle, name=self.name))
        self.temp_path.unlink(missing_ok=True)
        return saved

    def discard(self) -> None:
        self.temp_path.unlink(missing_ok=True)
        if self.final_path is not None:
            self.final_path.unlink(missing_ok=True)
        elif self.storage.exists(self.name):
            self.storage.delete(self.name)


class _Packet:
    """The packet ZIP being written: entries streamed, each hashed on the way and recorded for
    the manifest, and the whole file hashed (on another thread) as it becomes final. Use as a
    context manager; on success `sha256` and `size` describe the closed, synced file."""

    def __init__(self, path: Path, folder: str) -> None:
        self.path = path
        self.folder = folder
        self.records: dict[str, tuple[str, int]] = {}
        self.sha256 = ""
        self.size = 0

    def __enter__(self) -> _Packet:
        self.handle = open(self.path, "w+b")  # noqa: SIM115 - closed in __exit__
        self.zip = zipfile.ZipFile(self.handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self.tail = _TailHasher(self.path)
        self.writeback: threading.Thread | None = None
        return self

    def start_writeback(self) -> None:
        """Start flushing what is written so far to disk, on a worker thread (the syscall
        releases the GIL), so the final fsync has little left to do."""
        self.handle.flush()
        self.writeback = threading.Thread(
            target=os.fdatasync, args=(self.handle.fileno(),), name="packet-writeback", daemon=True
        )
        self.writeback.start()

    def write(
        self,
        path: str,
        chunks: Iterable[bytes | memoryview],
        size_hint: int = 0,
        on_chunk: Callable[[int], None] | None = None,
    ) -> str:
        info = zipfile.ZipInfo(entry_name(self.folder, path), date_time=ZIP_DATE)
        info.compress_type = zipfile.ZIP_STORED
        info.create_system = ZIP_UNIX
        info.external_attr = ZIP_FILE_MODE
        info.file_size = size_hint
        hasher = hashlib.sha256()
        size = 0
        with self.zip.open(info, "w") as dest:
            for chunk in chunks:
                hasher.update(chunk)
                dest.write(chunk)
                size += len(chunk)
                if on_chunk is not None:
                    on_chunk(len(chunk))
        self.handle.flush()
        self.tail.advance(self.handle.tell())
        self.records[path] = (hasher.hexdigest(), size)
        return self.records[path][0]

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        """Close the archive and the file, and stop the workers. After a failure too (the file
        is then discarded), so that no half-written archive is closed later, by the garbage
        collector, on a closed file."""
        try:
            if kind is None:
                self.zip.close()
                self.handle.flush()
                if self.writeback is not None:
                    self.writeback.join()
                os.fsync(self.handle.fileno())
                self.sha256, self.size = self.tail.finish(self.handle.tell())
            else:
                with contextlib.suppress(Exception):
                    self.zip.close()
        finally:
            self.tail.stop()
            if self.writeback is not None:
                self.writeback.join()
            self.handle.close()


def _manifest(folder: str, records: dict[str, tuple[str, int]]) -> bytes:
    return content.dumps(
        {
            "files": [{"path": path, "sha256": sha, "size": size} for path, (sha, size) in sorted(records.items())],
            "folder": folder,
            "format": content.PACKET_FORMAT,
            "hash_algorithm": "SHA-256",
        }
    )


def _read_chunks(handle: BinaryIO, buffer: memoryview) -> Iterable[memoryview]:
    """The file's bytes as views into one reused buffer: each view is valid until the next."""
    while count := handle.readinto(buffer):
        yield buffer[:count]


def _cover(data: content.PacketData) -> list[tuple[str, report.Text]]:
    handoff = data.handoff
    prosecutor = content.person_label(handoff["prosecutor"])
    return [
        ("Addressed to", f"{prosecutor}, {handoff['prosecutor_office']['name']}"),
        ("Prepared by", content.person_label(handoff["created_by"]) or "-"),
        ("Reviewed by", content.person_label(handoff["reviewed_by"]) or "-"),
        ("Sent", report.when(handoff["sent_at"])),
        ("Bates numbers", lambda: f"{data.bates(1)} to {data.last_bates}"),
        ("Audit checkpoint", f"{data.checkpoint['origin']}, tree size {data.checkpoint['tree_size']}"),
    ]


def build_packet(
    *, packet: ExportPacket, on_progress: Callable[[int, str], None], checkpoint_size: int | None = None
) -> PacketBuild:
    """Build the ZIP of `packet.handoff` into the `packets` storage as `<packet id>.zip`,
    against the latest audit checkpoint (made now if events were sealed since the last one),
    or against the existing checkpoint of `checkpoint_size` (to rebuild an earlier packet's
    bytes: its audit excerpt stops there even when the case has newer events).
    Calls `on_progress(percent, stage)` as it goes (at most four times a second, always at
    0 and 100); does not change the packet row. Raises PacketIntegrityError (recorded, no file left) when a
    native's hash has changed, PacketAuditError when the audit log does not recompute."""
    progress = _Progress(on_progress)
    progress(0, "collecting")
    if checkpoint_size is None:
        checkpoint = checkpoint_create().checkpoint
    else:
        checkpoint = Checkpoint.objects.get(tree_size=checkpoint_size)
    origin = checkpoint.signed_note.split("\n", 1)[0]
    root = bytes.fromhex(checkpoint.root_hash)
    handoff = packet.handoff
    data = content.collect(handoff=handoff, checkpoint=checkpoint, checkpoint_origin=origin, root_b64=excerpt.b64(root))
    case_id = handoff.case_id
    events = excerpt.event_count(case_id, checkpoint.tree_size)
    signer = signing.signer()

    verify_txt = Template((HERE / "VERIFY.txt").read_text()).substitute(
        folder=data.folder,
        agency=data.agency_name,
        key_name=signer.name,
        key_hash=signer.verifier.key_hash.hex(),
        tree_size=checkpoint.tree_size,
    )

    output = _Output(storages["packets"], f"{packet.pk}.zip")
    try:
        with _Packet(output.temp_path, data.folder) as entries:
            progress(5, "natives")
            _write_natives(entries, data, progress)
            entries.start_writeback()
            progress(80, "report")
            entries.write("report.pdf", [report.render(data, _cover(data))])
            entries.write("case.json", [content.case_json(data, audit_events=events)])
            entries.write("leads.csv", [content.leads_csv(data)])
            entries.write("evidence.csv", [content.evidence_csv(data)])
            entries.write("custody.csv", [content.custody_csv(data)])
            entries.write("loadfile.dat", [content.loadfile_dat(data)])
            progress(85, "audit")
            entries.write("audit/events.jsonl", excerpt.event_lines(case_id, checkpoint.tree_size))
            entries.write("audit/proofs.json", excerpt.proofs_json(case_id, checkpoint.tree_size, root, origin))
            entries.write("audit/checkpoint.txt", [checkpoint.signed_note.encode()])
            progress(95, "manifest")
            entries.write("VERIFY.txt", [verify_txt.encode()])
            entries.write("verify_packet.py", [(HERE / "verify_packet.py").read_bytes()])
            manifest = _manifest(data.folder, entries.records)
            manifest_sha256 = hashlib.sha256(manifest).hexdigest()
            signature = signer.sign(f"{MANIFEST_NOTE_TITLE}\n{data.folder}\n{manifest_sha256}\n")
            entries.write("manifest.json", [manifest])
            entries.write("manifest.sig", [signature.encode()])
            progress(97, "finishing")
        file_name = output.commit()
    except _NativeMismatch as exc:
        output.discard()
        _record_mismatch(packet, exc)
        raise PacketIntegrityError(evidence_id=exc.evidence_id, expected=exc.expected, computed=exc.computed) from None
    except BaseException:
        output.discard()
        raise
    progress(100, "finishing")
    return PacketBuild(
        file_name=file_name,
        sha256=entries.sha256,
        size_bytes=entries.size,
        manifest_sha256=manifest_sha256,
        checkpoint_size=checkpoint.tree_size,
        signature=signature,
    )


def _write_natives(entries: _Packet, data: content.PacketData, progress: _Progress) -> None:
    stored = data.stored
    total = sum(item["size_bytes"] for item in stored) or 1
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        progress(5 + 75 * done / total, "natives")

    evidence_storage = storages["evidence"]
    buffer = memoryview(bytearray(CHUNK))
    for item in stored:
        try:
            source = evidence_storage.open(data.content_names[item["id"]], "rb")
        except FileNotFoundError as exc:
            raise _NativeMismatch(item["id"], item["sha256"], "", "content missing") from exc
        with source:
            computed = entries.write(item["native_path"], _read_chunks(source, buffer), item["size_bytes"], advance)
        if computed != item["sha256"]:
            raise _NativeMismatch(item["id"], item["sha256"], computed)


def _record_mismatch(packet: ExportPacket, mismatch: _NativeMismatch) -> None:
    item = EvidenceItem.objects.select_related("case").get(pk=mismatch.evidence_id)
    actor = system_user()
    details = {
        "expected": mismatch.expected,
        "computed": mismatch.computed,
        "match": False,
        "context": INTEGRITY_CONTEXT,
        "packet": str(packet.pk),
    }
    if mismatch.error:
        details["error"] = mismatch.error
    with transaction.atomic():
        CustodyEvent.objects.create(
            evidence=item,
            action=CustodyAction.VERIFIED,
            actor=actor,
            occurred_at=timezone.now(),
            note=INTEGRITY_NOTE,
            details=details,
        )
        audit_record(
            action=AuditAction.EVIDENCE_VERIFIED,
            actor=actor,
            agency_id=item.case.agency_id,
            target=item,
            case_id=item.case_id,
            changes={k: v for k, v in details.items() if k != "expected"},
        )
