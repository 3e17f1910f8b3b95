"""A batch is `{"items": [...]}` or a bare JSON array of items; anything else is a 400."""

from __future__ import annotations

import json
from typing import Any

from intercept.models import Ad
from tests.intercept.conftest import ad


def test_a_bare_array_of_ads_is_accepted_like_an_items_object(push: Any) -> None:
    response = push.signed("ads", json.dumps([ad("a1"), ad("a2")]).encode())
    assert response.status_code == 200, response.content
    assert [r["status"] for r in response.json()["results"]] == ["created", "created"]
    assert Ad.objects.count() == 2


def test_a_json_scalar_is_a_400_that_names_the_accepted_shapes(push: Any) -> None:
    response = push.signed("ads", b"42")
    assert response.status_code == 400
    assert "JSON array of items" in json.dumps(response.json())
    assert Ad.objects.count() == 0
