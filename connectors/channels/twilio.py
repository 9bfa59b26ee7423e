"""Twilio Programmable Messaging webhooks (form-encoded) to canonical messages: SMS, long SMS, MMS, and
WhatsApp through Twilio (`From: whatsapp:+...`). Status callbacks (no Body, a MessageStatus) are ignored."""

from __future__ import annotations

from urllib.parse import parse_qs

from connectors.channels.base import InvalidPayload, RawEvent, attachment, canonical, decode_text

SOURCE = "twilio"
STATUS_ONLY = {"queued", "sending", "sent", "delivered", "undelivered", "failed", "read", "accepted", "scheduled", "canceled"}


def parse_form(body: bytes) -> dict[str, str]:
    """An application/x-www-form-urlencoded body as a dict of first values; InvalidPayload when unreadable."""
    text = decode_text(SOURCE, body)
    try:
        fields = parse_qs(text, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise InvalidPayload(SOURCE, "body is not form-encoded") from None
    return {k: v[0] for k, v in fields.items()}


def normalize(raw: RawEvent) -> list[dict]:
    form = parse_form(raw.body)
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
    if not sid:
        raise InvalidPayload(SOURCE, "missing field MessageSid")
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    if "Body" not in form and status in STATUS_ONLY:
        return []  # a status callback, not a customer message
    sender, recipient = form.get("From"), form.get("To")
    if not sender:
        raise InvalidPayload(SOURCE, "missing field From")
    channel = "WHATSAPP" if sender.startswith("whatsapp:") else "SMS"
    try:
        media_count = int(form.get("NumMedia") or 0)
    except ValueError:
        raise InvalidPayload(SOURCE, "field NumMedia is not a number") from None
    if not 0 <= media_count <= 10:
        raise InvalidPayload(SOURCE, "field NumMedia out of range 0..10")
    attachments = []
    for i in range(media_count):
        url = form.get(f"MediaUrl{i}")
        if not url:
            raise InvalidPayload(SOURCE, f"missing field MediaUrl{i} (NumMedia={media_count})")
        mime = form.get(f"MediaContentType{i}") or None
        attachments.append(attachment((mime or "file").split("/")[0] if mime else "file", url=url, mime_type=mime))
    metadata = {"num_segments": form.get("NumSegments"), "account_sid": form.get("AccountSid"),
                "original_replied_message_sid": form.get("OriginalRepliedMessageSid")}
    return [canonical(raw, channel=channel, channel_message_id=sid, sender_id=sender.removeprefix("whatsapp:"),
                      recipient_id=(recipient or "").removeprefix("whatsapp:") or None, text=form.get("Body", ""),
                      sent_at=raw.received_at, attachments=attachments,
                      reply_to=form.get("OriginalRepliedMessageSid"), metadata=metadata)]
