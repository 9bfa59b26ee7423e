"""Deterministic ids: same input, same id; different input, different id."""

from __future__ import annotations

import pytest

from streams.ids import conversation_id, derive_id, message_id


def test_same_input_same_id_and_sources_do_not_collide() -> None:
    assert message_id("whatsapp", "wamid.1") == message_id("whatsapp", "wamid.1")
    assert message_id("whatsapp", "wamid.1") != message_id("twilio", "wamid.1")
    assert message_id("whatsapp", "wamid.1").startswith("msg-")


def test_parts_are_separated_unambiguously() -> None:
    assert derive_id("x", "ab", "c") != derive_id("x", "a", "bc")
    assert conversation_id("sms", "+34600", "") == conversation_id("sms", "+34600")


def test_empty_parts_are_refused() -> None:
    with pytest.raises(ValueError):
        message_id("whatsapp", "")
