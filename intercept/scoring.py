"""The priority of a buyer lead from what the bots saw: the signals of any of its conversations,
how often the buyer came back, and how recently. Each factor that counts is listed with its
weight, so an investigator can see why a lead ranks where it does."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

SIGNAL_WEIGHTS: dict[str, int] = {
    "minor_age_mentioned": 50,
    "payment_discussed": 20,
    "meeting_arranged": 20,
}
REPEAT_WEIGHT_PER_CONVERSATION = 5
REPEAT_WEIGHT_MAX = 20
RECENCY_WEIGHTS: tuple[tuple[timedelta, int], ...] = ((timedelta(days=7), 10), (timedelta(days=30), 5))
MAX_SCORE = 100


def lead_score(
    *,
    minor_age_mentioned: bool,
    payment_discussed: bool,
    meeting_arranged: bool,
    conversations: int,
    last_contact: datetime | None,
    now: datetime,
) -> tuple[int, list[dict[str, Any]]]:
    """(score 0-100, factors). Repeat contact adds 5 per conversation after the first (at
    most 20); a last contact within 7 days adds 10, within 30 days 5 (as of `now`)."""
    signals = {
        "minor_age_mentioned": minor_age_mentioned,
        "payment_discussed": payment_discussed,
        "meeting_arranged": meeting_arranged,
    }
    factors: list[dict[str, Any]] = [
        {"factor": name, "weight": weight} for name, weight in SIGNAL_WEIGHTS.items() if signals[name]
    ]
    if conversations >= 2:
        weight = min(REPEAT_WEIGHT_MAX, REPEAT_WEIGHT_PER_CONVERSATION * (conversations - 1))
        factors.append({"factor": "repeat_contact", "weight": weight, "detail": f"{conversations} conversations"})
    if last_contact is not None:
        for window, weight in RECENCY_WEIGHTS:
            if now - last_contact <= window:
                factors.append(
                    {"factor": "recent_contact", "weight": weight, "detail": f"last contact within {window.days} days"}
                )
                break
    return min(MAX_SCORE, sum(f["weight"] for f in factors)), factors
