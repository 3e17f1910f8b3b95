"""Synthetic, deterministic intercept data: the ad captures and bot conversations of an
operation, as the ingest endpoints take them. Fictional throughout: every phone number is in
the 555-0100..0199 block reserved for fiction, every site and email domain is `.example`.

Realistic in shape: ad posters reuse their numbers across ads and sites and some ads are
captured twice; buyers come back (repeat buyers), a share mention minors, most conversations
end with a deterrence message and close; some conversations arrive in two pushes (open with
the first messages, then complete and closed). The same seed and end time give the same data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import phonenumbers

SITES = ("nightlist.example", "cityvibe.example", "datehub.example", "escortpages.example", "backroom.example")
SITE_WEIGHTS = (34, 26, 18, 14, 8)
PLATFORMS = ("sms", "whatsapp", "telegram", "textnow")
BOTS = ("decoy-bot-1", "decoy-bot-2", "decoy-bot-3")
CITIES = (
    ("Miami", "FL", "331"),
    ("Hialeah", "FL", "330"),
    ("Fort Lauderdale", "FL", "333"),
    ("Hollywood", "FL", "330"),
    ("Homestead", "FL", "330"),
    ("Coral Gables", "FL", "331"),
)
CARRIERS = ("T-Mobile", "Verizon", "AT&T", "Metro by T-Mobile", "Cricket", "Google Voice")
EMPLOYERS = ("a logistics company", "the county school district", "a hospital", "a bank", "a construction firm")
FIRST_NAMES = ("Mike", "Chris", "Dave", "Jay", "Rob", "Tony", "Steve", "Carlos", "Luis", "Matt", "Kevin", "Eric")
HANDLE_WORDS = ("night", "owl", "visitor", "lonely", "guy", "miami", "traveler", "fun", "discreet", "gent")
DECOY_ADS = 12
MINOR_SHARE = 0.08
PAYMENT_SHARE = 0.45
MEETING_SHARE = 0.30
REPEAT_SHARE = 0.25
DETERRENCE_SHARE = 0.88
CLOSED_SHARE = 0.92
TWO_PUSH_SHARE = 0.10
RECAPTURE_SHARE = 0.05
BUYER_ON_AD_SHARE = 0.03
DETERRENCE_TEXT = (
    "This is a message from law enforcement. The ad you answered was placed by police. Buying sex is a crime and "
    "many people in these ads are trafficked, some of them children. Your number has been recorded."
)
INBOUND = (
    "hey saw ur ad, u available?",
    "how much for an hour",
    "are you real? send a pic",
    "what area are you in",
    "can you do tonight",
    "is this still available",
    "whats your rate for 30 min",
    "are you independent",
)
OUTBOUND = (
    "hi hun yes im available",
    "depends what u want",
    "im in the area, where r u",
    "im real, whats ur name",
    "tonight works",
    "what are you looking for",
)
MINOR_INBOUND = ("how young are you really", "u look young, are u 16?", "do you have a younger friend")
MINOR_OUTBOUND = ("im 15, is that ok", "16 but i look older")
PAYMENT_INBOUND = ("200 ok? i can cashapp", "ill bring cash", "can i pay with zelle")
MEETING_INBOUND = ("send me the address", "ill be there at 10", "meet at the motel on 8th?")


@lru_cache(maxsize=1)
def fiction_area_codes() -> tuple[str, ...]:
    """US area codes where 555-01XX numbers are valid for phonenumbers (reserved for fiction)."""
    return tuple(
        str(code)
        for code in range(201, 990)
        if phonenumbers.is_valid_number(phonenumbers.parse(f"+1{code}5550100", None))
    )


@dataclass(frozen=True)
class Plan:
    ads: int
    conversations: int
    days: int
    seed: int
    end: datetime


@dataclass
class DataSet:
    """Sent in this order: `ads`, then `recaptures` (ads captured again, some edited), then
    `conversations`, then `updates` (the second push of conversations that arrive in two:
    all their messages, closed). A batch must not name the same item twice."""

    ads: list[dict[str, Any]]
    recaptures: list[dict[str, Any]]
    conversations: list[dict[str, Any]]
    updates: list[dict[str, Any]]

    @property
    def messages(self) -> int:
        """Distinct messages (a conversation pushed twice counts once)."""
        latest: dict[str, int] = {}
        for item in self.conversations + self.updates:
            latest[item["external_id"]] = max(latest.get(item["external_id"], 0), len(item["messages"]))
        return sum(latest.values())

    @property
    def unique_ads(self) -> int:
        return len({(ad["site"], ad["external_id"]) for ad in self.ads + self.recaptures})


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _Numbers:
    """Fictional E.164 numbers, handed out without repetition, in seeded order."""

    def __init__(self, rng: random.Random) -> None:
        pool = [f"+1{code}555{suffix:04d}" for code in fiction_area_codes() for suffix in range(100, 200)]
        rng.shuffle(pool)
        self.pool = pool
        self.next = 0

    def take(self) -> str:
        number = self.pool[self.next % len(self.pool)]
        self.next += 1
        return number


def _spoken(number: str, rng: random.Random) -> str:
    """A number the way people type it in an ad or a chat."""
    area, exchange, line = number[2:5], number[5:8], number[8:]
    style = rng.randrange(4)
    if style == 0:
        return f"({area}) {exchange}-{line}"
    if style == 1:
        return f"{area}.{exchange}.{line}"
    if style == 2:
        return f"{area}-{exchange}-{line}"
    return number


def generate(plan: Plan) -> DataSet:
    rng = random.Random(plan.seed)  # noqa: S311 - synthetic data, not security
    numbers = _Numbers(rng)
    start = plan.end - timedelta(days=plan.days)
    span = (plan.end - start).total_seconds()
    ads, recaptures = _ads(plan, rng, numbers, start, span)
    poster_numbers = sorted({p for ad in ads for p in ad.pop("_numbers")})
    conversations, updates = _conversations(plan, rng, numbers, start, span, ads[:DECOY_ADS], poster_numbers)
    return DataSet(ads=ads, recaptures=recaptures, conversations=conversations, updates=updates)


def _ads(
    plan: Plan, rng: random.Random, numbers: _Numbers, start: datetime, span: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    posters = [
        {"numbers": [numbers.take() for _ in range(1 + (rng.random() < 0.3))], "city": rng.choice(CITIES)}
        for _ in range(max(1, plan.ads // 6))
    ]
    ads: list[dict[str, Any]] = []
    for i in range(plan.ads):
        poster = posters[0] if i < DECOY_ADS else rng.choice(posters)
        site = rng.choices(SITES, SITE_WEIGHTS)[0]
        city, region, _ = poster["city"]
        posted = start + timedelta(seconds=rng.uniform(0, span))
        shown = [_spoken(n, rng) for n in poster["numbers"]]
        ads.append(
            {
                "site": site,
                "external_id": f"s{plan.seed}-ad{i:06d}",
                "url": f"https://{site}/{city.lower().replace(' ', '-')}/ad/{plan.seed}-{i}",
                "title": f"{'New in town' if rng.random() < 0.4 else 'Available now'} - {city} - call {shown[0]}",
                "posted_at": _iso(posted),
                "city": city,
                "region": region,
                "phones": shown,
                "text": f"Sweet and discreet, {city} incall/outcall. Text {' or '.join(shown)}. No police.",
                "_numbers": poster["numbers"],
            }
        )
    recaptures = [{k: v for k, v in ad.items() if k != "_numbers"} for ad in ads if rng.random() < RECAPTURE_SHARE]
    for ad in recaptures:
        if rng.random() < 0.3:
            ad["title"] = "UPDATED " + ad["title"]
    return ads, recaptures


def _buyer(rng: random.Random, numbers: _Numbers, poster_numbers: list[str], n: int) -> dict[str, str]:
    buyer: dict[str, str] = {}
    city, _, zip_prefix = rng.choice(CITIES)
    if rng.random() < 0.92:
        on_ad = poster_numbers and rng.random() < BUYER_ON_AD_SHARE
        buyer["phone"] = _spoken(rng.choice(poster_numbers) if on_ad else numbers.take(), rng)
    if rng.random() < 0.45 or "phone" not in buyer:
        buyer["handle"] = f"@{rng.choice(HANDLE_WORDS)}_{rng.choice(HANDLE_WORDS)}{n % 1000}"
    if rng.random() < 0.15:
        buyer["email"] = f"{rng.choice(HANDLE_WORDS)}.{n}@mail.example"
    if rng.random() < 0.35:
        buyer["name"] = f"{rng.choice(FIRST_NAMES)} {chr(65 + rng.randrange(26))}."
    buyer["city"] = city
    buyer["zip"] = f"{zip_prefix}{rng.randrange(100):02d}"
    if rng.random() < 0.5:
        buyer["carrier"] = rng.choice(CARRIERS)
    if rng.random() < 0.08:
        buyer["employer"] = rng.choice(EMPLOYERS)
    return buyer


def _conversations(
    plan: Plan,
    rng: random.Random,
    numbers: _Numbers,
    start: datetime,
    span: float,
    decoys: list[dict[str, Any]],
    poster_numbers: list[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    buyers: list[dict[str, str]] = []
    items: list[dict[str, Any]] = []
    later: list[dict[str, Any]] = []
    for i in range(plan.conversations):
        if buyers and rng.random() < REPEAT_SHARE:
            buyer = rng.choice(buyers)
        else:
            buyer = _buyer(rng, numbers, poster_numbers, len(buyers))
            buyers.append(buyer)
        minor = rng.random() < MINOR_SHARE
        payment = rng.random() < PAYMENT_SHARE
        meeting = rng.random() < MEETING_SHARE
        began = start + timedelta(seconds=rng.uniform(0, span - 3600))
        external_id = f"s{plan.seed}-conv{i:06d}"
        lines = [rng.choice(INBOUND)]
        for _ in range(rng.randint(2, 10)):
            lines += [rng.choice(OUTBOUND), rng.choice(INBOUND)]
        if minor:
            lines += [rng.choice(MINOR_INBOUND), rng.choice(MINOR_OUTBOUND)]
        if payment:
            lines.append(rng.choice(PAYMENT_INBOUND))
        if meeting:
            lines.append(rng.choice(MEETING_INBOUND))
        deterrence = rng.random() < DETERRENCE_SHARE
        if deterrence:
            lines.append(DETERRENCE_TEXT)
        moment = began
        messages = []
        for n, body in enumerate(lines):
            moment += timedelta(seconds=rng.randint(8, 180))
            direction = (
                "outbound" if body in OUTBOUND or body in MINOR_OUTBOUND or body == DETERRENCE_TEXT else "inbound"
            )
            messages.append(
                {
                    "external_id": f"{external_id}-m{n:03d}",
                    "direction": direction,
                    "sent_at": _iso(moment),
                    "body": body,
                }
            )
        decoy = rng.choice(decoys) if decoys else None
        item = {
            "external_id": external_id,
            "platform": rng.choice(PLATFORMS),
            "bot": rng.choice(BOTS),
            "buyer": dict(buyer),
            "messages": messages,
            "signals": {"minor_age_mentioned": minor, "payment_discussed": payment, "meeting_requested": meeting},
            "deterrence_sent_at": messages[-1]["sent_at"] if deterrence else None,
            "closed": rng.random() < CLOSED_SHARE,
        }
        if decoy is not None:
            item["ad"] = {"site": decoy["site"], "external_id": decoy["external_id"]}
        if rng.random() < TWO_PUSH_SHARE and len(messages) > 4:
            half = len(messages) // 2
            items.append(
                {
                    **item,
                    "messages": messages[:half],
                    "signals": {"minor_age_mentioned": False, "payment_discussed": False, "meeting_requested": False},
                    "deterrence_sent_at": None,
                    "closed": False,
                }
            )
            later.append(item)
        else:
            items.append(item)
    return items, later


def batches(items: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
