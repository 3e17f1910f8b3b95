"""C2SP signed notes with Ed25519 keys, and C2SP tlog-checkpoint bodies.

A signed note is the note text (UTF-8, ending in a newline), a blank line, then one line per
signature: an em dash, a space, the key name, a space, and base64(key hash (4 bytes) ||
signature). The Ed25519 key hash is the first 4 bytes of SHA-256(name || "\\n" || 0x01 ||
public key). The signature is over the note text alone.

Keys travel in the Go `note` package's text forms:
  verifier key: <name>+<8 hex digits of the key hash>+<base64(0x01 || 32-byte public key)>
  signer key:   PRIVATE+KEY+<name>+<8 hex digits>+<base64(0x01 || 32-byte private seed)>

A checkpoint body is: origin line, decimal tree size, base64 root hash, each ending in "\\n".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

ALG_ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "


class NoteError(ValueError):
    """A malformed key, note or checkpoint."""


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def key_hash(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _b64decode(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError("invalid base64") from exc


@dataclass(frozen=True)
class Verifier:
    name: str
    public_key: Ed25519PublicKey

    @property
    def raw(self) -> bytes:
        return self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_hash(self) -> bytes:
        return key_hash(self.name, self.raw)

    def text(self) -> str:
        raw = base64.b64encode(bytes([ALG_ED25519]) + self.raw).decode()
        return f"{self.name}+{self.key_hash.hex()}+{raw}"


@dataclass(frozen=True)
class Signer:
    name: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, name: str) -> Signer:
        if not _valid_name(name):
            raise NoteError(f"invalid key name {name!r}")
        return cls(name=name, private_key=Ed25519PrivateKey.generate())

    @property
    def verifier(self) -> Verifier:
        return Verifier(name=self.name, public_key=self.private_key.public_key())

    def text(self) -> str:
        seed = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        raw = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_hash.hex()}+{raw}"

    def sign(self, text: str) -> str:
        """The signed note: `text` (must end in a newline), a blank line, the signature line."""
        if not text.endswith("\n"):
            raise NoteError("a note's text must end with a newline")
        signature = self.private_key.sign(text.encode())
        blob = base64.b64encode(self.verifier.key_hash + signature).decode()
        return f"{text}\n{SIGNATURE_PREFIX}{self.name} {blob}\n"


def parse_verifier(text: str) -> Verifier:
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or not _valid_name(parts[0]):
        raise NoteError("a verifier key is <name>+<hash>+<key>")
    name, hash_hex, encoded = parts
    raw = _b64decode(encoded)
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise NoteError("only Ed25519 verifier keys are supported")
    public = Ed25519PublicKey.from_public_bytes(raw[1:])
    verifier = Verifier(name=name, public_key=public)
    if verifier.key_hash.hex() != hash_hex.lower():
        raise NoteError("the verifier key's hash does not match its name and key")
    return verifier


def parse_signer(text: str) -> Signer:
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not _valid_name(parts[2]):
        raise NoteError("a signer key is PRIVATE+KEY+<name>+<hash>+<key>")
    _, _, name, hash_hex, encoded = parts
    raw = _b64decode(encoded)
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise NoteError("only Ed25519 signer keys are supported")
    signer = Signer(name=name, private_key=Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if signer.verifier.key_hash.hex() != hash_hex.lower():
        raise NoteError("the signer key's hash does not match its name and key")
    return signer


def open_note(signed: str, verifier: Verifier) -> str:
    """The note text, if `signed` carries a valid signature by `verifier`; NoteError otherwise.
    Signatures by other keys are ignored; at least one by `verifier` must verify."""
    split = signed.rfind("\n\n")
    if split < 0 or not signed.endswith("\n"):
        raise NoteError("not a signed note")
    text, sig_block = signed[: split + 1], signed[split + 2 :]
    found = False
    for line in sig_block.splitlines():
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("malformed signature line")
        try:
            name, blob = line[len(SIGNATURE_PREFIX) :].split(" ")
        except ValueError as exc:
            raise NoteError("malformed signature line") from exc
        raw = _b64decode(blob)
        if name != verifier.name or len(raw) < 5 or raw[:4] != verifier.key_hash:
            continue
        try:
            verifier.public_key.verify(raw[4:], text.encode())
        except InvalidSignature as exc:
            raise NoteError("invalid signature") from exc
        found = True
    if not found:
        raise NoteError("no signature by the expected key")
    return text


@dataclass(frozen=True)
class CheckpointBody:
    origin: str
    tree_size: int
    root_hash: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.tree_size}\n{base64.b64encode(self.root_hash).decode()}\n"


def parse_checkpoint(text: str) -> CheckpointBody:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("a checkpoint has an origin, a size and a root hash line")
    origin, size, root = lines[0], lines[1], lines[2]
    if not origin or not size.isdigit() or (len(size) > 1 and size[0] == "0"):
        raise NoteError("malformed checkpoint origin or size")
    root_hash = _b64decode(root)
    if len(root_hash) != 32:
        raise NoteError("a checkpoint root hash is 32 bytes")
    return CheckpointBody(origin=origin, tree_size=int(size), root_hash=root_hash)
