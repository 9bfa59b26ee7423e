"""The Messenger Platform webhook format, shared by Facebook Messenger (`object: page`) and Instagram
messaging (`object: instagram`): text, quick replies, postbacks, attachments, replies. Echoes of our own
messages, deliveries, reads, reactions and other non-message events are ignored."""

from __future__ import annotations

from connectors.channels.base import (InvalidPayload, RawEvent, attachment, canonical, epoch_to_datetime, meta_entries,
                                      optional, require)

IGNORED_EVENTS = ("delivery", "read", "reaction", "optin", "referral", "account_linking", "message_edit",
                  "policy_enforcement", "standby", "pass_thread_control", "take_thread_control")


def normalize_meta(raw: RawEvent, source: str, expected_object: str) -> list[dict]:
    out = []
    for e, entry in enumerate(meta_entries(source, raw.body, expected_object)):
        for m, event in enumerate(optional(source, entry, "messaging", list, f"entry[{e}]") or []):
            converted = _event(raw, source, event, f"entry[{e}].messaging[{m}]")
            if converted is not None:
                out.append(converted)
    return out


def _event(raw: RawEvent, source: str, event: dict, where: str) -> dict | None:
    sender = require(source, require(source, event, "sender", dict, where), "id", str, f"{where}.sender")
    recipient = require(source, require(source, event, "recipient", dict, where), "id", str, f"{where}.recipient")
    sent_at = epoch_to_datetime(source, require(source, event, "timestamp", (int, float, str), where), "ms", f"{where}.timestamp")
    if "message" in event:
        message = require(source, event, "message", dict, where)
        if message.get("is_echo") or message.get("is_deleted"):
            return None
        mid = require(source, message, "mid", str, f"{where}.message")
        text = optional(source, message, "text", str, f"{where}.message") or ""
        meta: dict[str, str] = {}
        quick = optional(source, message, "quick_reply", dict, f"{where}.message")
        if quick is not None:
            meta["quick_reply_payload"] = require(source, quick, "payload", str, f"{where}.message.quick_reply")
        attachments = []
        for a, item in enumerate(optional(source, message, "attachments", list, f"{where}.message") or []):
            kind = require(source, item, "type", str, f"{where}.message.attachments[{a}]")
            body = item.get("payload") if isinstance(item.get("payload"), dict) else {}
            url = body.get("url") if isinstance(body.get("url"), str) else None
            attachments.append(attachment(kind, url=url, caption=item.get("title") if isinstance(item.get("title"), str) else None))
        reply = optional(source, message, "reply_to", dict, f"{where}.message") or {}
        reply_to = reply.get("mid") if isinstance(reply.get("mid"), str) else None
        if not text and not attachments:
            return None  # e.g. an unsupported message kind the platform sends without content
        return canonical(raw, channel_message_id=mid, sender_id=sender, recipient_id=recipient, text=text,
                         sent_at=sent_at, attachments=attachments, reply_to=reply_to, metadata=meta)
    if "postback" in event:
        postback = require(source, event, "postback", dict, where)
        title = optional(source, postback, "title", str, f"{where}.postback") or ""
        payload = optional(source, postback, "payload", str, f"{where}.postback") or ""
        mid = optional(source, postback, "mid", str, f"{where}.postback") or f"postback-{sender}-{event['timestamp']}"
        return canonical(raw, channel_message_id=mid, sender_id=sender, recipient_id=recipient, text=title,
                         sent_at=sent_at, subject=title or None, metadata={"postback_payload": payload})
    if any(key in event for key in IGNORED_EVENTS):
        return None
    raise InvalidPayload(source, f"{where} is neither a message, a postback nor a known event")
