"""The canonical text of a chat transcript (docs/ingest.md, "Transcript snapshots"): the bytes
an evidence item of kind chat_transcript stores and hashes. The same conversation state always
gives the same bytes; every message body is kept exactly, one `| ` prefixed line per line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from intercept.items import BUYER_FIELDS

FORMAT_LINE = "caseapi chat transcript v1"
MEDIA_TYPE = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class TranscriptHeader:
    conversation_id: str
    operation: str
    source: str
    platform: str
    bot: str
    external_id: str
    ad_site: str
    ad_external_id: str
    buyer: dict[str, str]
    snapshot: int
    previous_sha256: str


@dataclass(frozen=True)
class TranscriptLine:
    seq: int
    sent_at: datetime
    direction: str
    external_id: str
    body: str


def utc_text(moment: datetime) -> str:
    """`2026-01-05T21:14:03Z`, with `.ffffff` only when there are microseconds."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


def render(header: TranscriptHeader, messages: Iterable[TranscriptLine]) -> bytes:
    messages = list(messages)
    lines = [
        FORMAT_LINE,
        f"conversation: {header.conversation_id}",
        f"operation: {header.operation}",
        f"source: {header.source}",
        f"platform: {header.platform}",
        f"bot: {header.bot or '-'}",
        f"external-id: {header.external_id}",
        f"ad: {header.ad_site} {header.ad_external_id}" if header.ad_site else "ad: -",
    ]
    lines += [f"buyer-{key}: {header.buyer[key]}" for key in BUYER_FIELDS if header.buyer.get(key)]
    lines += [
        f"snapshot: {header.snapshot}",
        f"previous-snapshot-sha256: {header.previous_sha256 or '-'}",
        f"messages: {len(messages)}",
    ]
    for message in messages:
        lines.append("")
        lines.append(f"#{message.seq} {utc_text(message.sent_at)} {message.direction} {message.external_id}")
        lines += ["| " + part for part in message.body.split("\n")]
    return ("\n".join(lines) + "\n").encode()
