"""`manage.py simulate_intercepts`: deterministic, realistic synthetic data (repeat buyers,
minors mentioned, deterrence, conversations in two pushes, recaptured ads), pushed through the
service layer or the signed HTTP endpoints, with a progress bar."""

from __future__ import annotations

import io
import re
from collections import Counter
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count

from cases.identifiers import normalize
from cases.models import CaseKind, EvidenceItem, Lead, Role
from intercept import services, simulation
from intercept.models import Ad, Conversation, Message
from tests.factories import CaseFactory, UserFactory

END = "2026-03-20T00:00:00Z"
PLAN = simulation.Plan(ads=60, conversations=40, days=14, seed=3, end=datetime(2026, 3, 20, tzinfo=UTC))
FICTIONAL = re.compile(r"^\+1\d{3}55501\d\d$")


def run(*args: str, **options: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("simulate_intercepts", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def make_source(name: str = "sim-bot") -> services.IssuedSecret:
    lead = UserFactory(username=f"{name}-lead", role=Role.INVESTIGATOR)
    op = CaseFactory(actor=lead, title="Simulated operation", kind=CaseKind.OPERATION)
    return services.ingest_source_create(actor=None, name=name, case=op)


def test_the_generator_is_deterministic_and_shaped_like_an_operation():
    data = simulation.generate(PLAN)
    assert simulation.generate(PLAN) == data
    assert data.unique_ads == 60 and len(data.recaptures) > 0
    assert len({c["external_id"] for c in data.conversations}) == 40
    assert {c["external_id"] for c in data.updates} <= {c["external_id"] for c in data.conversations}
    buyers = Counter(c["buyer"].get("phone") or c["buyer"].get("handle") for c in data.conversations)
    assert max(buyers.values()) >= 2, "some buyers come back"
    flags = Counter(k for c in data.conversations + data.updates for k, v in c["signals"].items() if v)
    assert flags["minor_age_mentioned"] >= 1 and flags["payment_discussed"] >= 5
    assert sum(1 for c in data.conversations if c["deterrence_sent_at"]) >= 20
    for item in data.ads + data.recaptures:
        assert item["site"].endswith(".example")
    phones = {p for c in data.conversations for p in [c["buyer"].get("phone")] if p}
    assert all(FICTIONAL.match(normalize("phone", p)) for p in phones)
    assert all(datetime.fromisoformat(m["sent_at"]) <= PLAN.end for c in data.conversations for m in c["messages"])


@pytest.mark.django_db
def test_simulating_through_the_services_stores_the_data_set_and_draws_progress():
    make_source()
    out, err = run(source="sim-bot", ads=60, conversations=40, days=14, seed=3, end=END)
    data = simulation.generate(PLAN)
    assert Ad.objects.count() == data.unique_ads
    assert Conversation.objects.count() == 40
    assert Message.objects.count() == data.messages
    closed = Conversation.objects.filter(closed=True).count()
    assert closed and EvidenceItem.objects.count() >= closed
    assert Lead.objects.annotate(n=Count("conversations")).filter(n__gte=2).exists()
    assert Conversation.objects.filter(minor_age_mentioned=True).exists()
    assert "conversations  [##############################] 40/40" in err
    assert f"{data.messages} messages: 40 created, {len(data.updates)} updated" in out

    again, _ = run(source="sim-bot", ads=60, conversations=40, days=14, seed=3, end=END)
    assert f"{data.messages} messages: {40 + len(data.updates)} unchanged" in again
    assert Message.objects.count() == data.messages


@pytest.mark.django_db(transaction=True)
def test_simulating_over_http_signs_every_request(live_server, monkeypatch):
    issued = make_source("http-bot")
    monkeypatch.setenv("INGEST_SECRET", issued.secret)
    out, err = run(source="http-bot", ads=20, conversations=10, days=7, seed=4, end=END, url=live_server.url, clients=2)
    assert Conversation.objects.filter(source=issued.source).count() == 10
    assert Ad.objects.filter(source=issued.source).count() == 20
    assert "10 created" in out
    monkeypatch.setenv("INGEST_SECRET", "wrong")
    with pytest.raises(CommandError) as exc:
        run(source="http-bot", ads=1, conversations=0, days=7, seed=5, end=END, url=live_server.url)
    assert "answered 401" in str(exc.value)


@pytest.mark.django_db
def test_simulating_needs_a_known_source_and_for_http_a_secret(monkeypatch):
    with pytest.raises(CommandError) as exc:
        run(source="nobody", ads=1, conversations=1, end=END)
    assert str(exc.value) == "No ingest source named nobody."
    make_source()
    monkeypatch.delenv("INGEST_SECRET", raising=False)
    with pytest.raises(CommandError) as exc:
        run(source="sim-bot", ads=1, conversations=1, end=END, url="http://127.0.0.1:9")
    assert "INGEST_SECRET" in str(exc.value)
