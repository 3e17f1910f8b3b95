"""Upload handler that hashes each file while it streams to a temporary file, so content is
never whole in memory and its SHA-256 is known before anything is kept."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from caseapi.exceptions import PayloadTooLarge

UPLOAD_TOO_LARGE = "The upload is larger than the limit of {limit} bytes."


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
