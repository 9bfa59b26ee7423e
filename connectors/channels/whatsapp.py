"""WhatsApp Cloud API webhooks (`object: whatsapp_business_account`) to canonical messages.

One delivery can carry several entries, changes and messages. Customer messages: text, replies (context),
interactive button/list replies, template quick-reply buttons, media with caption (image, audio, video,
document, sticker), location, contacts. Statuses (sent/delivered/read/failed) and reactions are not
customer messages and are ignored.
"""

from __future__ import annotations

from connectors.channels.base import (InvalidPayload, RawEvent, attachment, canonical, epoch_to_datetime, meta_entries,
                                      optional, require)

SOURCE = "whatsapp"
MEDIA = ("image", "audio", "video", "document", "sticker")
IGNORED_TYPES = {"reaction", "unsupported", "system", "ephemeral", "request_welcome"}


def normalize(raw: RawEvent) -> list[dict]:
    out: list[dict] = []
    for e, entry in enumerate(meta_entries(SOURCE, raw.body, "whatsapp_business_account")):
        for c, change in enumerate(require(SOURCE, entry, "changes", list, f"entry[{e}]")):
            where = f"entry[{e}].changes[{c}]"
            if optional(SOURCE, change, "field", str, where) not in (None, "messages"):
                continue  # account/template updates: not customer messages
            value = require(SOURCE, change, "value", dict, where)
            metadata = require(SOURCE, value, "metadata", dict, f"{where}.value")
            business = require(SOURCE, metadata, "phone_number_id", str, f"{where}.value.metadata")
            for m, message in enumerate(optional(SOURCE, value, "messages", list, f"{where}.value") or []):
                converted = _message(raw, message, business, f"{where}.value.messages[{m}]")
                if converted is not None:
                    out.append(converted)
    return out


def _message(raw: RawEvent, message: dict, business: str, where: str) -> dict | None:
    kind = require(SOURCE, message, "type", str, where)
    if kind in IGNORED_TYPES:
        return None
    sender = require(SOURCE, message, "from", str, where)
    wamid = require(SOURCE, message, "id", str, where)
    sent_at = epoch_to_datetime(SOURCE, require(SOURCE, message, "timestamp", (str, int), where), "s", f"{where}.timestamp")
    context = optional(SOURCE, message, "context", dict, where) or {}
    reply_to = context.get("id") if isinstance(context.get("id"), str) else None
    text, attachments, meta = "", [], {"wa_type": kind}
    if kind == "text":
        text = require(SOURCE, require(SOURCE, message, "text", dict, where), "body", str, f"{where}.text")
    elif kind in MEDIA:
        media = require(SOURCE, message, kind, dict, where)
        caption = optional(SOURCE, media, "caption", str, f"{where}.{kind}")
        text = caption or ""
        attachments.append(attachment(kind, media_id=optional(SOURCE, media, "id", str, f"{where}.{kind}"),
                                      mime_type=optional(SOURCE, media, "mime_type", str, f"{where}.{kind}"),
                                      filename=optional(SOURCE, media, "filename", str, f"{where}.{kind}"),
                                      caption=caption))
    elif kind == "location":
        loc = require(SOURCE, message, "location", dict, where)
        lat = require(SOURCE, loc, "latitude", (int, float), f"{where}.location")
        lon = require(SOURCE, loc, "longitude", (int, float), f"{where}.location")
        label = ", ".join(x for x in (optional(SOURCE, loc, "name", str, where), optional(SOURCE, loc, "address", str, where)) if x)
        attachments.append(attachment("location", url=f"geo:{lat},{lon}", caption=label or None))
    elif kind == "interactive":
        interactive = require(SOURCE, message, "interactive", dict, where)
        reply_kind = require(SOURCE, interactive, "type", str, f"{where}.interactive")
        if reply_kind not in ("button_reply", "list_reply"):
            raise InvalidPayload(SOURCE, f"{where}.interactive.type {reply_kind!r} is not a reply")
        reply = require(SOURCE, interactive, reply_kind, dict, f"{where}.interactive")
        text = require(SOURCE, reply, "title", str, f"{where}.interactive.{reply_kind}")
        meta.update({"reply_id": require(SOURCE, reply, "id", str, f"{where}.interactive.{reply_kind}"), "reply_kind": reply_kind})
    elif kind == "button":
        button = require(SOURCE, message, "button", dict, where)
        text = require(SOURCE, button, "text", str, f"{where}.button")
        meta["payload"] = optional(SOURCE, button, "payload", str, f"{where}.button")
    elif kind == "contacts":
        for contact in require(SOURCE, message, "contacts", list, where):
            name = contact.get("name", {}).get("formatted_name") if isinstance(contact, dict) and isinstance(contact.get("name"), dict) else None
            attachments.append(attachment("contact", caption=name if isinstance(name, str) else None))
    else:
        raise InvalidPayload(SOURCE, f"{where}.type {kind!r} is not a known message type")
    return canonical(raw, channel_message_id=wamid, sender_id=sender, recipient_id=business, text=text,
                     sent_at=sent_at, attachments=attachments, reply_to=reply_to, metadata=meta)
