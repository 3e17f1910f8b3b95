"""Uploaded evidence files: the upload handler that hashes each file while it streams to a
temporary file (content is never whole in memory and its SHA-256 is known before anything is
kept), the media type sniffed from the first bytes and checked against EVIDENCE_ALLOWED_TYPES,
and file names made safe wherever an original name leaves the server (downloads, packets)."""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import filetype
from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from caseapi.exceptions import PayloadTooLarge

UPLOAD_TOO_LARGE = "The upload is larger than the limit of {limit} bytes."

# ---------------------------------------------------------------- streaming and hashing


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Adds `.sha256` to each uploaded file; refuses (413) a body or file over
    EVIDENCE_MAX_UPLOAD_BYTES as soon as the size is known."""

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: Any = None
    ) -> None:
        limit = settings.EVIDENCE_MAX_UPLOAD_BYTES
        # Multipart framing adds a little; allow 64 KiB of it.
        if content_length and content_length > limit + 64 * 1024:
            raise PayloadTooLarge(UPLOAD_TOO_LARGE.format(limit=limit))
        return None

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self._digest = hashlib.sha256()
        self._received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self._received += len(raw_data)
        if self._received > settings.EVIDENCE_MAX_UPLOAD_BYTES:
            self.file.close()
            raise PayloadTooLarge(UPLOAD_TOO_LARGE.format(limit=settings.EVIDENCE_MAX_UPLOAD_BYTES))
        self._digest.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size: int) -> Any:
        uploaded = super().file_complete(file_size)
        uploaded.sha256 = self._digest.hexdigest()
        return uploaded


# ---------------------------------------------------------------- media type from the bytes

SNIFF_BYTES = 8192
EMPTY = "application/x-empty"
UNKNOWN = "application/octet-stream"
# Binary signatures that a plain text can also start with ("BM...", "MZ..."): when the head is
# all text, a match is believed only for these formats, which are text themselves.
TEXT_BASED_FORMATS = frozenset({"application/pdf", "application/rtf", "application/postscript"})
# C0 controls other than tab, line feed, form feed, carriage return and escape; and DEL.
# Kinds of plain text that bytes cannot tell apart: a declared one refines a sniffed text/plain.
PLAIN_TEXT_SUBTYPES = frozenset(
    {"text/csv", "text/tab-separated-values", "text/markdown", "text/calendar", "text/vcard"}
)
_BINARY_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")
_JSON_START = re.compile(
    r"""\{\s*["}]"""  # an object: a key or nothing
    r"""|\[\s*(?:[\[{"\]]|(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)\s*[,\]])"""
)


def read_head(fileobj: Any, size: int = SNIFF_BYTES) -> bytes:
    """The first `size` bytes of a file, leaving it at its start."""
    fileobj.seek(0)
    head = fileobj.read(size)
    fileobj.seek(0)
    return bytes(head)


def _text(head: bytes, complete: bool) -> str | None:
    """The head decoded as UTF-8 (any BOM), UTF-16 with a BOM or Windows-1252, or None when it
    holds control bytes that no text has. A multi-byte character cut off by the end of an
    incomplete head does not count against it."""
    utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    candidates = ["utf-16"] if utf16 else ["utf-8-sig", "cp1252"]
    for encoding in candidates:
        try:
            text = codecs.getincrementaldecoder(encoding)().decode(head, final=complete)
        except UnicodeDecodeError:
            continue
        return None if _BINARY_CHARS.search(text) else text
    return None


def _text_type(text: str) -> str:
    start = text.lstrip("\ufeff \t\r\n\f")
    opening = start[:32].lower()
    if opening.startswith(("<!doctype html", "<html")):
        return "text/html"
    if opening.startswith("<?xml"):
        return "application/xml"
    if _JSON_START.match(start):
        return "application/json"
    return "text/plain"


def sniff_media_type(head: bytes, *, complete: bool) -> str:
    """The media type of content that starts with `head` (its first SNIFF_BYTES bytes;
    `complete` when that is the whole content), from signatures (the `filetype` library) and,
    failing those, a text check: text/plain, text/html, application/xml or application/json.
    EMPTY for no bytes, UNKNOWN when nothing matches."""
    if not head:
        return EMPTY
    if head.startswith(b"WARC/1."):
        return "application/warc"
    detected = filetype.guess_mime(head)
    text = _text(head, complete)
    if detected is not None and (text is None or detected in TEXT_BASED_FORMATS):
        return detected
    if text is not None:
        return _text_type(text)
    return UNKNOWN


def media_type_allowed(media_type: str, allowed: Iterable[str] | None = None) -> bool:
    """Whether `media_type` is in the allow-list (EVIDENCE_ALLOWED_TYPES by default), where an
    entry `family/*` accepts the whole family."""
    entries = settings.EVIDENCE_ALLOWED_TYPES if allowed is None else allowed
    family = media_type.split("/", 1)[0] + "/*"
    return any(entry in (media_type, family) for entry in entries)


# ---------------------------------------------------------------- file names

WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(1, 10)), *(f"LPT{n}" for n in range(1, 10))}
# Path separators, characters Windows refuses, and the Concordance load-file delimiters þ ¶.
UNSAFE_FILENAME_CHARS = re.compile(r'[<>:"/\\|?*\u00fe\u00b6]')
# Unicode categories that never belong in a file name: controls, format characters (bidi
# overrides that reverse how an extension reads, zero-width characters), line and paragraph
# separators, surrogates, private use and unassigned code points.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
MAX_FILENAME_BYTES = 150
MAX_EXTENSION_BYTES = 16
MAX_ORIGINAL_FILENAME = 255


def original_filename(name: str | None) -> str:
    """The uploader's file name as recorded: unchanged but for characters that cannot be stored
    or printed (NUL, controls), at most 255 characters. Never used as a path."""
    return "".join(c for c in (name or "") if c.isprintable())[:MAX_ORIGINAL_FILENAME]


def safe_filename(original: str, fallback: str) -> str:
    """A file name that is safe as one path component on every platform and in a header: the
    last component of `original` (either slash), NFC-normalized, with separators, reserved,
    control, format and load-file delimiter characters replaced by `_`, no leading or trailing
    dots or spaces, not a Windows device name, at most 150 UTF-8 bytes (the extension kept).
    `fallback` when nothing is left (it must be safe itself)."""
    name = unicodedata.normalize("NFC", original.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join("_" if unicodedata.category(c) in UNSAFE_CATEGORIES else c for c in name)
    name = UNSAFE_FILENAME_CHARS.sub("_", name).strip(" .")
    if not name:
        return fallback
    if name.split(".", 1)[0].upper() in WINDOWS_RESERVED:
        name = "_" + name
    if len(name.encode()) > MAX_FILENAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = f".{ext}" if dot and 0 < len(ext.encode()) <= MAX_EXTENSION_BYTES else ""
        stem = stem if ext else name
        budget = MAX_FILENAME_BYTES - len(ext.encode())
        stem = stem.encode()[:budget].decode("utf-8", "ignore").rstrip(" .")
        name = (stem or fallback.rsplit(".", 1)[0]) + ext
    return name


def _ascii_fallback(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c if ord(c) < 128 else ("" if unicodedata.combining(c) else "_") for c in decomposed)


def attachment_disposition(filename: str, fallback: str = "download") -> str:
    """A Content-Disposition header value for a download (RFC 6266): `filename` made safe;
    a non-ASCII name goes in `filename*` (RFC 8187, UTF-8, percent-encoded) after an ASCII
    `filename` for old clients. No quote, backslash, separator or control character survives."""
    name = safe_filename(filename, fallback)
    plain = _ascii_fallback(name)
    if plain == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{safe_filename(plain, fallback)}\"; filename*=UTF-8''{quote(name, safe='')}"
