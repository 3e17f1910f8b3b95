"""Encryption of personal data at rest (caseapi.crypto, caseapi.fields): ciphertext bound to
its column, keys that rotate, and blind indexes that find values without decrypting."""

from __future__ import annotations

import base64

import pytest
from django.core.exceptions import ImproperlyConfigured

from caseapi import crypto

KEY_A = base64.urlsafe_b64encode(b"a" * 32).decode()
KEY_B = base64.urlsafe_b64encode(b"b" * 32).decode()


@pytest.fixture
def ring_a(settings):
    settings.FIELD_ENCRYPTION_KEYS = crypto.parse_keys(f"a1:{KEY_A}")
    return settings


def test_a_value_round_trips_and_the_stored_form_holds_no_plaintext(ring_a):
    stored = crypto.encrypt("John Buyer +13055550142", "intercept_message.body")
    assert stored.startswith("enc:v1:a1:")
    assert "John" not in stored and "3055550142" not in stored
    assert crypto.decrypt(stored, "intercept_message.body") == "John Buyer +13055550142"


def test_the_same_value_encrypts_differently_each_time(ring_a):
    assert crypto.encrypt("same", "t.c") != crypto.encrypt("same", "t.c")


def test_a_ciphertext_moved_to_another_column_does_not_open(ring_a):
    stored = crypto.encrypt("secret", "cases_lead.display_name")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(stored, "intercept_message.body")


@pytest.mark.parametrize("position", [12, 20, -5, -1])
def test_a_tampered_ciphertext_does_not_open(ring_a, position):
    stored = crypto.encrypt("the buyer said he is 40", "t.c")
    chars = list(stored)
    chars[position] = "A" if chars[position] != "A" else "B"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt("".join(chars), "t.c")


def test_a_new_first_key_encrypts_and_the_old_one_still_opens(settings):
    settings.FIELD_ENCRYPTION_KEYS = crypto.parse_keys(f"a1:{KEY_A}")
    old = crypto.encrypt("before rotation", "t.c")
    settings.FIELD_ENCRYPTION_KEYS = crypto.parse_keys(f"b2:{KEY_B},a1:{KEY_A}")
    assert crypto.decrypt(old, "t.c") == "before rotation"
    assert crypto.key_id_of(crypto.encrypt("after", "t.c")) == "b2"
    settings.FIELD_ENCRYPTION_KEYS = crypto.parse_keys(f"b2:{KEY_B}")
    with pytest.raises(crypto.DecryptionError, match="no key 'a1'"):
        crypto.decrypt(old, "t.c")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "holds no key"),
        ("nokey", "<id>:<base64 key>"),
        ("a1:!!!", "not base64"),
        ("a1:" + base64.urlsafe_b64encode(b"short").decode(), "must be 32 bytes"),
        (f"a1:{KEY_A},a1:{KEY_B}", "appears twice"),
        (f"bad-id:{KEY_A}", "<id>:<base64 key>"),
    ],
)
def test_a_bad_key_ring_fails_loudly_with_the_reason(raw, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        crypto.parse_keys(raw)


def test_a_generated_key_is_accepted_by_the_ring():
    assert len(crypto.parse_keys(f"k1:{crypto.new_key()}")[0][1]) == 32


def test_the_blind_index_is_deterministic_keyed_and_kind_bound(settings):
    settings.BLIND_INDEX_KEY = b"k" * 32
    digest = crypto.blind_index("phone", "+13055550142")
    assert digest == crypto.blind_index("phone", "+13055550142")
    assert len(digest) == 64 and "3055550142" not in digest
    assert digest != crypto.blind_index("handle", "+13055550142")
    settings.BLIND_INDEX_KEY = b"j" * 32
    assert digest != crypto.blind_index("phone", "+13055550142")
