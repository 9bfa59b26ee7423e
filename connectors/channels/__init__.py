"""Channel normalizers, one module per provider, and the one entry point the stream and the CLI share."""

from __future__ import annotations

from typing import Callable

from connectors.channels import email, instagram, messenger, twilio, webchat, whatsapp
from connectors.channels.base import InvalidPayload, RawEvent

NORMALIZERS: dict[str, Callable[[RawEvent], list[dict]]] = {
    "whatsapp": whatsapp.normalize,
    "twilio": twilio.normalize,
    "messenger": messenger.normalize,
    "instagram": instagram.normalize,
    "email": email.normalize,
    "webchat": webchat.normalize,
}


def normalize(raw: RawEvent) -> list[dict]:
    """Canonical InboundMessage dicts of one raw event: [] for ignored events, InvalidPayload for bad ones.

    Normalizers check what they read and raise InvalidPayload themselves; the net below turns a slip they did
    not foresee into the same typed error, so a stream never dies on a payload.
    """
    normalizer = NORMALIZERS.get(raw.source)
    if normalizer is None:
        raise InvalidPayload(raw.source, f"unknown source; known: {', '.join(NORMALIZERS)}")
    try:
        return normalizer(raw)
    except InvalidPayload:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, UnicodeError, RecursionError) as exc:
        raise InvalidPayload(raw.source, f"unreadable payload ({type(exc).__name__})") from None


__all__ = ["NORMALIZERS", "InvalidPayload", "RawEvent", "normalize"]
