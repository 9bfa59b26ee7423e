"""What every channel normalizer shares: the raw event, the one typed error, and the canonical message.

A normalizer turns one provider webhook body (as received, bytes + headers) into zero or more canonical
InboundMessage dicts: zero for provider events that are not customer messages (statuses, echoes), several
when a provider batches messages in one delivery. Anything it cannot read raises `InvalidPayload` with a
reason that names the problem, never the personal data in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from streams.ids import conversation_id, message_id

CHANNEL_OF_SOURCE = {"webchat": "WEBCHAT", "whatsapp": "WHATSAPP", "twilio": "SMS", "messenger": "MESSENGER",
                     "instagram": "INSTAGRAM", "email": "EMAIL"}


class InvalidPayload(ValueError):
    """A provider payload that cannot be normalized; `reason` says why (no personal data)."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"invalid {source} payload: {reason}")
        self.source = source
        self.reason = reason


@dataclass(frozen=True)
class RawEvent:
    """One webhook delivery as the gateway received it."""

    source: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    received_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def decode_text(source: str, body: bytes) -> str:
    """The body as UTF-8 text; InvalidPayload when it is empty or not UTF-8."""
    if not body or not body.strip():
        raise InvalidPayload(source, "empty body")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayload(source, f"body is not valid UTF-8 (byte {exc.start})") from None


def parse_json(source: str, body: bytes) -> Any:
    """The body as JSON, or InvalidPayload saying what is wrong with it."""
    text = decode_text(source, body)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidPayload(source, f"malformed JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def parse_json_object(source: str, body: bytes) -> dict:
    """The body as a JSON object; InvalidPayload for anything else."""
    payload = parse_json(source, body)
    if not isinstance(payload, dict):
        raise InvalidPayload(source, "body is not a JSON object")
    return payload


def meta_entries(source: str, body: bytes, expected_object: str) -> list:
    """The `entry` list of a Meta webhook envelope (`{"object": ..., "entry": [...]}`), shared by the WhatsApp Cloud
    API, Messenger and Instagram; InvalidPayload when the envelope is of another product or malformed."""
    payload = parse_json_object(source, body)
    if require(source, payload, "object", str, "body") != expected_object:
        raise InvalidPayload(source, f"object is not {expected_object}")
    return require(source, payload, "entry", list, "body")


def require(source: str, mapping: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """mapping[key], checked to be of `kind`; InvalidPayload naming the missing or mistyped field."""
    if not isinstance(mapping, dict):
        raise InvalidPayload(source, f"{where} is not an object")
    if key not in mapping or mapping[key] is None:
        raise InvalidPayload(source, f"missing field {where}.{key}")
    value = mapping[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        expected = "/".join(k.__name__ for k in kinds)
        raise InvalidPayload(source, f"field {where}.{key} should be {expected}, not {type(value).__name__}")
    return value


def optional(source: str, mapping: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """mapping[key] when present and not null, type-checked like `require`; None otherwise."""
    if not isinstance(mapping, dict) or mapping.get(key) is None:
        return None
    return require(source, mapping, key, kind, where)


def epoch_to_datetime(source: str, value: Any, unit: str, where: str) -> datetime:
    """A provider timestamp (seconds or milliseconds since the epoch, number or numeric string)."""
    try:
        number = float(value)
        if number != number or number < 0 or number > 1e14 * (1000 if unit == "ms" else 1):  # NaN, absurd
            raise ValueError
        return datetime.fromtimestamp(number / (1000 if unit == "ms" else 1), timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        raise InvalidPayload(source, f"{where} is not a valid timestamp") from None


def millis(dt: datetime) -> datetime:
    """Avro timestamp-millis keeps milliseconds; trim so round trips compare equal."""
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def attachment(kind: str, url: str | None = None, media_id: str | None = None, mime_type: str | None = None,
               filename: str | None = None, size_bytes: int | None = None, caption: str | None = None) -> dict:
    return {"kind": kind, "url": url, "media_id": media_id, "mime_type": mime_type, "filename": filename,
            "size_bytes": size_bytes, "caption": caption}


def canonical(raw: RawEvent, *, channel_message_id: str, sender_id: str, recipient_id: str | None, text: str,
              sent_at: datetime, channel: str | None = None, attachments: list[dict] | None = None,
              reply_to: str | None = None, subject: str | None = None, language: str | None = None,
              metadata: dict[str, str] | None = None) -> dict:
    """One InboundMessage dict with its deterministic ids."""
    if not channel_message_id:
        raise InvalidPayload(raw.source, "empty message id")
    if not sender_id:
        raise InvalidPayload(raw.source, "empty sender id")
    return {
        "message_id": message_id(raw.source, channel_message_id),
        "conversation_id": conversation_id(raw.source, sender_id, recipient_id or ""),
        "channel": channel or CHANNEL_OF_SOURCE[raw.source],
        "source": raw.source,
        "channel_message_id": channel_message_id,
        "sender_id": sender_id,
        "recipient_id": recipient_id,
        "customer_id": None,
        "sent_at": millis(sent_at),
        "received_at": millis(raw.received_at),
        "text": text,
        "language": language,
        "attachments": attachments or [],
        "reply_to_channel_message_id": reply_to,
        "subject": subject,
        "metadata": {k: v for k, v in (metadata or {}).items() if v is not None},
    }
