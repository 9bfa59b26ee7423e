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


def test_ids_are_the_uuid5_of_their_parts_and_never_change() -> None:
    import random
    import uuid

    from streams.ids import NAMESPACE

    rng = random.Random(5)
    for _ in range(2000):
        parts = ["".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(160, 0x2FFF)])) for _ in range(rng.randrange(1, 30)))
                 for _ in range(rng.randrange(1, 4))]
        expected = uuid.uuid5(NAMESPACE, "k" + chr(31) + chr(31).join(parts)).hex
        assert derive_id("k", *parts) == f"k-{expected}"
    assert message_id("whatsapp", "wamid.1") == "msg-" + uuid.uuid5(NAMESPACE, "msg\x1fwhatsapp\x1fwamid.1").hex
