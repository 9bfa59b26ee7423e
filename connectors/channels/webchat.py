"""Centralita's own web chat format (what the widget served by the gateway sends):

    {"type": "message", "message_id": "wc-...", "visitor_id": "v-...", "site_id": "main",
     "text": "hola", "sent_at": 1764064800000, "locale": "es-ES",
     "attachments": [{"kind": "image", "url": "https://...", "mime_type": "image/png", "filename": "x.png"}]}

`type` "typing" and "read" are widget signals, not messages, and are ignored.
"""

from __future__ import annotations

from connectors.channels.base import (InvalidPayload, RawEvent, attachment, canonical, epoch_to_datetime, optional,
                                      parse_json_object, require)

SOURCE = "webchat"
SIGNALS = {"typing", "read", "opened", "closed"}
MAX_TEXT = 10_000


def normalize(raw: RawEvent) -> list[dict]:
    payload = parse_json_object(SOURCE, raw.body)
    kind = require(SOURCE, payload, "type", str, "body")
    if kind in SIGNALS:
        return []
    if kind != "message":
        raise InvalidPayload(SOURCE, f"unknown event type {kind!r}")
    text = optional(SOURCE, payload, "text", str, "body") or ""
    if len(text) > MAX_TEXT:
        raise InvalidPayload(SOURCE, f"text longer than {MAX_TEXT} characters")
    attachments = []
    for i, item in enumerate(optional(SOURCE, payload, "attachments", list, "body") or []):
        where = f"body.attachments[{i}]"
        attachments.append(attachment(require(SOURCE, item, "kind", str, where), url=optional(SOURCE, item, "url", str, where),
                                      mime_type=optional(SOURCE, item, "mime_type", str, where),
                                      filename=optional(SOURCE, item, "filename", str, where)))
    if not text.strip() and not attachments:
        raise InvalidPayload(SOURCE, "message without text or attachments")
    sent_raw = optional(SOURCE, payload, "sent_at", (int, float), "body")
    locale = optional(SOURCE, payload, "locale", str, "body")
    return [canonical(raw, channel_message_id=require(SOURCE, payload, "message_id", str, "body"),
                      sender_id=require(SOURCE, payload, "visitor_id", str, "body"),
                      recipient_id=optional(SOURCE, payload, "site_id", str, "body") or "main", text=text,
                      sent_at=epoch_to_datetime(SOURCE, sent_raw, "ms", "body.sent_at") if sent_raw is not None else raw.received_at,
                      attachments=attachments, language=locale.split("-")[0].lower() if locale else None,
                      reply_to=optional(SOURCE, payload, "reply_to", str, "body"))]
