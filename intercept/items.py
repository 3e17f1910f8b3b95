"""Parsing of pushed items: a conversation or an ad as JSON becomes a typed, checked value, or
an ItemError naming each bad field by its path (`messages[2].sent_at`).

Plain Python rather than serializers: a batch holds up to 1,000 items and tens of thousands
of messages, and this runs before any database work. Nothing here touches the database;
identifiers are normalized with cases.identifiers. Strings are kept exactly as sent (a
transcript is evidence); only surrounding whitespace of single-line fields is dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from cases import identifiers as ident
from cases.models import IdentifierKind

CLOCK_SKEW = timedelta(minutes=5)

NOT_AN_OBJECT = "Expected a JSON object."
NOT_A_LIST = "Expected a JSON list."
NOT_A_STRING = "Expected a string."
NOT_A_BOOLEAN = "Expected true or false."
REQUIRED = "This field is required."
UNKNOWN_FIELD = "Unknown field."
TOO_LONG = "At most {max} characters."
EMPTY = "This field cannot be blank."
ID_INVALID = "An id is 1-200 printable ASCII characters without spaces."
SINGLE_LINE = "Control characters (line breaks included) are not allowed here."
NUL_CHARACTER = "NUL characters are not allowed."
DATETIME_INVALID = "Expected an ISO 8601 date-time with a UTC offset, e.g. 2026-01-05T21:14:03Z."
DATETIME_FUTURE = "This time is in the future."
URL_INVALID = "Expected an http or https URL."
DIRECTION_INVALID = "Expected inbound or outbound."
TOO_MANY = "At most {max} entries."
DUPLICATE_MESSAGE = "Message id {external_id} appears twice in this item with different content."
BUYER_NO_IDENTIFIER = "The buyer needs at least one usable identifier: phone, email or handle."
IDENTIFIER_DROPPED = "buyer.{kind} {value!r} was not recorded: {reason}"
PHONE_DROPPED = "phones[{index}] {value!r} was not recorded: {reason}"

MAX_MESSAGES = 5000
MAX_BODY = 20000
MAX_AD_TEXT = 50000
MAX_PHONES = 20

BUYER_FIELDS = ("phone", "email", "handle", "name", "city", "zip", "carrier", "employer")
BUYER_IDENTIFIERS = (IdentifierKind.PHONE, IdentifierKind.EMAIL, IdentifierKind.HANDLE)
SIGNALS = ("minor_age_mentioned", "payment_discussed", "meeting_requested")
CONVERSATION_FIELDS = frozenset(
    {"external_id", "platform", "ad", "bot", "buyer", "messages", "signals", "deterrence_sent_at", "closed"}
)
MESSAGE_FIELDS = frozenset({"external_id", "direction", "sent_at", "body"})
AD_REF_FIELDS = frozenset({"site", "external_id"})
AD_FIELDS = frozenset({"site", "external_id", "url", "title", "posted_at", "city", "region", "phones", "text"})

_ID = re.compile(r"^[\x21-\x7e]{1,200}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ItemError(Exception):
    """Why an item was rejected: `{path: [message, ...]}`."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True)
class MessageIn:
    external_id: str
    direction: str
    sent_at: datetime
    body: str


@dataclass
class ConversationIn:
    external_id: str
    platform: str
    bot: str
    ad_site: str
    ad_external_id: str
    buyer: dict[str, str]
    identifiers: list[tuple[str, str]]
    messages: list[MessageIn]
    minor_age_mentioned: bool
    payment_discussed: bool
    meeting_requested: bool
    deterrence_sent_at: datetime | None
    closed: bool
    warnings: list[str] = field(default_factory=list)


@dataclass
class AdIn:
    site: str
    external_id: str
    url: str
    title: str
    posted_at: datetime | None
    city: str
    region: str
    phones_raw: list[str]
    phones: list[str]
    text: str
    warnings: list[str] = field(default_factory=list)


class _Reader:
    """Collects every error of one item instead of stopping at the first."""

    def __init__(self, now: datetime) -> None:
        self.errors: dict[str, list[str]] = {}
        self.now = now

    def fail(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)

    def obj(self, value: Any, path: str, allowed: frozenset[str]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(path or "item", NOT_AN_OBJECT)
            return None
        for key in value:
            if key not in allowed:
                self.fail(f"{path}.{key}" if path else str(key), UNKNOWN_FIELD)
        return value

    def text(
        self, data: dict[str, Any], key: str, path: str, *, max_length: int, required: bool, single_line: bool = True
    ) -> str:
        value = data.get(key)
        if value is None:
            if required:
                self.fail(path, REQUIRED)
            return ""
        if not isinstance(value, str):
            self.fail(path, NOT_A_STRING)
            return ""
        if single_line:
            value = value.strip()
            if _CONTROL.search(value):
                self.fail(path, SINGLE_LINE)
                return ""
        elif "\x00" in value:
            self.fail(path, NUL_CHARACTER)
            return ""
        if required and not value:
            self.fail(path, EMPTY)
        if len(value) > max_length:
            self.fail(path, TOO_LONG.format(max=max_length))
            return ""
        return value

    def ident(self, data: dict[str, Any], key: str, path: str) -> str:
        value = data.get(key)
        if value is None:
            self.fail(path, REQUIRED)
            return ""
        if not isinstance(value, str) or not _ID.match(value):
            self.fail(path, ID_INVALID)
            return ""
        return value

    def boolean(self, data: dict[str, Any], key: str, path: str) -> bool:
        value = data.get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            self.fail(path, NOT_A_BOOLEAN)
            return False
        return value

    def when(self, data: dict[str, Any], key: str, path: str, *, required: bool) -> datetime | None:
        value = data.get(key)
        if value is None:
            if required:
                self.fail(path, REQUIRED)
            return None
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
            if parsed is not None and parsed.tzinfo is not None:
                # In UTC, as stored: an offset can carry a time out of the calendar
                # (0001-01-01T00:00:00+14:00), which no database column can hold.
                parsed = parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            self.fail(path, DATETIME_INVALID)
            return None
        if parsed > self.now + CLOCK_SKEW:
            self.fail(path, DATETIME_FUTURE)
            return None
        return parsed

    def raise_if_failed(self) -> None:
        if self.errors:
            raise ItemError(self.errors)


class Normalizer:
    """cases.identifiers.normalize with a cache for one batch (repeat buyers repeat numbers)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[str | None, str]] = {}

    def __call__(self, kind: str, value: str) -> str:
        key = (kind, value)
        if key not in self._cache:
            try:
                self._cache[key] = (ident.normalize(kind, value), "")
            except ValidationError as exc:
                self._cache[key] = (None, " ".join(exc.messages))
        normalized, reason = self._cache[key]
        if normalized is None:
            raise ValidationError(reason)
        return normalized


def parse_conversation(raw: Any, *, now: datetime, normalize: Normalizer) -> ConversationIn:
    r = _Reader(now)
    data = r.obj(raw, "", CONVERSATION_FIELDS)
    if data is None:
        r.raise_if_failed()
    external_id = r.ident(data, "external_id", "external_id")
    platform = r.text(data, "platform", "platform", max_length=50, required=True)
    bot = r.text(data, "bot", "bot", max_length=100, required=False)
    ad_site = ad_external_id = ""
    if data.get("ad") is not None:
        ad = r.obj(data["ad"], "ad", AD_REF_FIELDS)
        if ad is not None:
            ad_site = r.text(ad, "site", "ad.site", max_length=100, required=True)
            ad_external_id = r.ident(ad, "external_id", "ad.external_id")
    buyer: dict[str, str] = {}
    pairs: list[tuple[str, str]] = []
    warnings: list[str] = []
    buyer_raw = r.obj(data.get("buyer"), "buyer", frozenset(BUYER_FIELDS)) if "buyer" in data else None
    if "buyer" not in data:
        r.fail("buyer", REQUIRED)
    if buyer_raw is not None:
        for key in BUYER_FIELDS:
            value = r.text(buyer_raw, key, f"buyer.{key}", max_length=200, required=False)
            if value:
                buyer[key] = value
        for kind in BUYER_IDENTIFIERS:
            if kind not in buyer:
                continue
            try:
                pair = (str(kind), normalize(kind, buyer[kind]))
            except ValidationError as exc:
                warnings.append(IDENTIFIER_DROPPED.format(kind=kind, value=buyer[kind], reason=" ".join(exc.messages)))
                continue
            pairs.append(pair)
        if not pairs and not any(f"buyer.{kind}" in r.errors for kind in BUYER_IDENTIFIERS):
            r.fail("buyer", BUYER_NO_IDENTIFIER)
    messages = _messages(r, data.get("messages"))
    signals = {name: False for name in SIGNALS}
    if data.get("signals") is not None:
        raw_signals = r.obj(data["signals"], "signals", frozenset(SIGNALS))
        if raw_signals is not None:
            for name in SIGNALS:
                signals[name] = r.boolean(raw_signals, name, f"signals.{name}")
    deterrence = r.when(data, "deterrence_sent_at", "deterrence_sent_at", required=False)
    closed = r.boolean(data, "closed", "closed")
    r.raise_if_failed()
    return ConversationIn(
        external_id=external_id,
        platform=platform,
        bot=bot,
        ad_site=ad_site,
        ad_external_id=ad_external_id,
        buyer=buyer,
        identifiers=pairs,
        messages=messages,
        deterrence_sent_at=deterrence,
        closed=closed,
        warnings=warnings,
        **signals,
    )


def _messages(r: _Reader, raw: Any) -> list[MessageIn]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        r.fail("messages", NOT_A_LIST)
        return []
    if len(raw) > MAX_MESSAGES:
        r.fail("messages", TOO_MANY.format(max=MAX_MESSAGES))
        return []
    out: list[MessageIn] = []
    seen: dict[str, MessageIn] = {}
    for index, entry in enumerate(raw):
        path = f"messages[{index}]"
        data = r.obj(entry, path, MESSAGE_FIELDS)
        if data is None:
            continue
        external_id = r.ident(data, "external_id", f"{path}.external_id")
        direction = data.get("direction")
        if direction not in ("inbound", "outbound"):
            r.fail(f"{path}.direction", DIRECTION_INVALID)
        sent_at = r.when(data, "sent_at", f"{path}.sent_at", required=True)
        body = r.text(data, "body", f"{path}.body", max_length=MAX_BODY, required=False, single_line=False)
        if not external_id or direction not in ("inbound", "outbound") or sent_at is None:
            continue
        message = MessageIn(external_id=external_id, direction=direction, sent_at=sent_at, body=body)
        earlier = seen.get(external_id)
        if earlier is not None:
            if earlier != message:
                r.fail(path, DUPLICATE_MESSAGE.format(external_id=external_id))
            continue
        seen[external_id] = message
        out.append(message)
    return out


def _url_scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:
        return ""


def parse_ad(raw: Any, *, now: datetime, normalize: Normalizer) -> AdIn:
    r = _Reader(now)
    data = r.obj(raw, "", AD_FIELDS)
    if data is None:
        r.raise_if_failed()
    site = r.text(data, "site", "site", max_length=100, required=True)
    external_id = r.ident(data, "external_id", "external_id")
    url = r.text(data, "url", "url", max_length=2000, required=False)
    if url and _url_scheme(url) not in ("http", "https"):
        # A `javascript:` or `data:` link would run in any client that renders the ad's link.
        r.fail("url", URL_INVALID)
        url = ""
    title = r.text(data, "title", "title", max_length=500, required=False)
    posted_at = r.when(data, "posted_at", "posted_at", required=False)
    city = r.text(data, "city", "city", max_length=100, required=False)
    region = r.text(data, "region", "region", max_length=100, required=False)
    text = r.text(data, "text", "text", max_length=MAX_AD_TEXT, required=False, single_line=False)
    phones_raw: list[str] = []
    phones: list[str] = []
    warnings: list[str] = []
    raw_phones = data.get("phones")
    if raw_phones is not None:
        if not isinstance(raw_phones, list):
            r.fail("phones", NOT_A_LIST)
        elif len(raw_phones) > MAX_PHONES:
            r.fail("phones", TOO_MANY.format(max=MAX_PHONES))
        else:
            for index, value in enumerate(raw_phones):
                problem = (
                    NOT_A_STRING
                    if not isinstance(value, str)
                    else SINGLE_LINE
                    if _CONTROL.search(value)
                    else TOO_LONG.format(max=64)
                    if len(value) > 64
                    else ""
                )
                if problem:
                    r.fail(f"phones[{index}]", problem)
                    continue
                phones_raw.append(value)
                try:
                    normalized = normalize(IdentifierKind.PHONE, value)
                except ValidationError as exc:
                    warnings.append(PHONE_DROPPED.format(index=index, value=value, reason=" ".join(exc.messages)))
                    continue
                if normalized not in phones:
                    phones.append(normalized)
    r.raise_if_failed()
    return AdIn(
        site=site,
        external_id=external_id,
        url=url,
        title=title,
        posted_at=posted_at,
        city=city,
        region=region,
        phones_raw=phones_raw,
        phones=phones,
        text=text,
        warnings=warnings,
    )
