"""Where signed checkpoints are written outside the database, so that a rewrite of the whole
database (events and checkpoint table alike) is still caught by comparing against them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class CheckpointSink(Protocol):
    def write(self, tree_size: int, signed_note: str) -> None: ...

    def latest(self) -> str | None: ...


class DirectorySink:
    """One file per checkpoint (`checkpoint-<size>.txt`) plus `latest.txt`, each written
    atomically (temporary file, fsync, rename)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory or settings.AUDIT_CHECKPOINT_DIR)

    def _write_atomic(self, name: str, text: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.directory / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def write(self, tree_size: int, signed_note: str) -> None:
        self._write_atomic(f"checkpoint-{tree_size:012d}.txt", signed_note)
        current = self.latest()
        if current is None or _size_of(current) <= tree_size:
            self._write_atomic("latest.txt", signed_note)

    def latest(self) -> str | None:
        try:
            return (self.directory / "latest.txt").read_text(encoding="utf-8")
        except FileNotFoundError:
            return None


def _size_of(signed_note: str) -> int:
    lines = signed_note.split("\n")
    return int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else -1


def get_sink() -> CheckpointSink:
    return import_string(settings.AUDIT_CHECKPOINT_SINK)()
