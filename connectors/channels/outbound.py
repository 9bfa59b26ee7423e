"""Outbound formatting: one OutboundMessage to what each channel's send API accepts, within its limits.

- SMS (Twilio): GSM-7 or UCS-2 encoding decides the segment size (160/153 or 70/67 units); Twilio refuses
  bodies over 1,600 characters, so longer text is cut at a word boundary and marked `truncated`.
- WhatsApp: 4,096 characters per text message (longer text is split at paragraph or sentence boundaries);
  free text only inside the 24-hour customer-service window, outside it only a pre-approved template.
- Messenger (2,000 characters) and Instagram (1,000): split likewise; 24-hour standard messaging window, after
  which only a human agent may answer (HUMAN_AGENT tag, 7 days).
- Email: a reply threaded with In-Reply-To and References, subject "Re: ...".
- Web chat: the widget's JSON.

The output is JSON (email: the RFC 5322 text inside JSON) for the integration that delivers it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.header import Header
from email.mime.text import MIMEText
from email.utils import format_datetime
from typing import Any

from schemas.topics import SOURCES

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")
SMS_MAX_CHARS = 1600
WHATSAPP_MAX_CHARS = 4096
MESSENGER_MAX_CHARS = 2000
INSTAGRAM_MAX_CHARS = 1000
CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
DEFAULT_SOURCE = {"SMS": "twilio", "WHATSAPP": "whatsapp", "MESSENGER": "messenger", "INSTAGRAM": "instagram",
                  "EMAIL": "email", "WEBCHAT": "webchat"}


@dataclass(frozen=True)
class SmsEncoding:
    encoding: str  # GSM-7 or UCS-2
    units: int  # septets (GSM-7, extended characters count 2) or UTF-16 code units (UCS-2)
    segments: int


def sms_encoding(text: str) -> SmsEncoding:
    """Encoding and segment count of an SMS body, as carriers count them."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text):
        units = sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    segments = 1 if units <= single else -(-units // multi)
    return SmsEncoding(encoding, units, segments)


def cut_at_word(text: str, limit: int, marker: str = "…") -> str:
    """text shortened to at most `limit` characters, at a word boundary when there is one."""
    if len(text) <= limit:
        return text
    head = text[: limit - len(marker)]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head).rstrip() + marker


def split_text(text: str, limit: int) -> list[str]:
    """Split into parts of at most `limit` characters at paragraph, then sentence, then word boundaries."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), -1)
        if cut < limit // 2:
            cut = max((m.end() for m in re.finditer(r"[.!?…]\s", window)), default=-1)
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            cut = limit
        parts.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        parts.append(rest)
    return parts or [""]


def _since_customer(message: dict, now: datetime) -> timedelta | None:
    last = message.get("customer_last_message_at")
    if last is None:
        return None
    return now - last


class UnroutableOutbound(ValueError):
    """An OutboundMessage names no channel integration we deliver to; the message says which field."""


def format_outbound(message: dict, customer_last_message_at: datetime | None = None,
                    now: datetime | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(source, payloads) for one OutboundMessage dict; payloads go to channel.<source>.outbound in order."""
    now = now or datetime.now(timezone.utc)
    channel = message["channel"]
    source = message.get("metadata", {}).get("source") or DEFAULT_SOURCE[channel]
    if source not in SOURCES:
        raise UnroutableOutbound(f"metadata.source is not one of {', '.join(SOURCES)}")
    context = {**message, "customer_last_message_at": customer_last_message_at}
    # By channel, not source: WhatsApp through Twilio keeps WhatsApp's limits and window.
    formatter = {"SMS": _sms, "WHATSAPP": _whatsapp, "MESSENGER": _messenger, "INSTAGRAM": _instagram,
                 "EMAIL": _email, "WEBCHAT": _webchat}[channel]
    return source, formatter(context, now)


def _base(message: dict) -> dict[str, Any]:
    return {"message_id": message["message_id"], "conversation_id": message["conversation_id"],
            "to": message["recipient_id"], "in_reply_to": message.get("in_reply_to")}


def _sms(message: dict, now: datetime) -> list[dict]:
    body = cut_at_word(message["text"], SMS_MAX_CHARS)
    encoding = sms_encoding(body)
    return [{**_base(message), "channel": "SMS", "body": body, "encoding": encoding.encoding,
             "segments": encoding.segments, "truncated": body != message["text"]}]


def _whatsapp(message: dict, now: datetime) -> list[dict]:
    since = _since_customer(message, now)
    if message.get("template") or since is None or since > CUSTOMER_SERVICE_WINDOW:
        return [{**_base(message), "channel": "WHATSAPP", "type": "template",
                 "template": message.get("template") or "customer_care_reopen",
                 "free_text_blocked": not message.get("template"),
                 "reason": None if message.get("template") else "outside the 24-hour customer-service window"}]
    parts = split_text(message["text"], WHATSAPP_MAX_CHARS)
    return [{**_base(message), "channel": "WHATSAPP", "type": "text", "text": part, "part": i + 1, "parts": len(parts)}
            for i, part in enumerate(parts)]


def _meta(message: dict, now: datetime, channel: str, limit: int) -> list[dict]:
    since = _since_customer(message, now)
    if since is not None and since <= CUSTOMER_SERVICE_WINDOW:
        messaging_type, tag = "RESPONSE", None
    elif since is not None and since <= HUMAN_AGENT_WINDOW and message.get("author") == "AGENT":
        messaging_type, tag = "MESSAGE_TAG", "HUMAN_AGENT"
    else:
        return [{**_base(message), "channel": channel, "blocked": True,
                 "reason": "outside the messaging window: the customer has to write first"}]
    parts = split_text(message["text"], limit)
    quick = [{"content_type": "text", "title": title[:20], "payload": title} for title in message.get("quick_replies", [])[:13]]
    payloads = []
    for i, part in enumerate(parts):
        payload = {**_base(message), "channel": channel, "messaging_type": messaging_type, "tag": tag,
                   "message": {"text": part}, "part": i + 1, "parts": len(parts)}
        if quick and i == len(parts) - 1:
            payload["message"]["quick_replies"] = quick
        payloads.append(payload)
    return payloads


def _messenger(message: dict, now: datetime) -> list[dict]:
    return _meta(message, now, "MESSENGER", MESSENGER_MAX_CHARS)


def _instagram(message: dict, now: datetime) -> list[dict]:
    return _meta(message, now, "INSTAGRAM", INSTAGRAM_MAX_CHARS)


def _email(message: dict, now: datetime) -> list[dict]:
    meta = message.get("metadata", {})
    original_id = meta.get("email_message_id")
    references = " ".join(x for x in (meta.get("references"), original_id) if x)
    subject = meta.get("subject") or "Your request"
    # compat32 MIMEText: the modern EmailMessage builds structured headers, over a millisecond per reply.
    mail = MIMEText(message["text"], "plain", "utf-8")
    mail["To"] = message["recipient_id"]
    mail["From"] = meta.get("business_address") or "support@localhost"
    mail["Subject"] = Header(subject if subject.lower().startswith("re:") else f"Re: {subject}", "utf-8")
    mail["Message-ID"] = f"<{message['message_id']}@centralita>"
    mail["Date"] = format_datetime(now)
    if original_id:
        mail["In-Reply-To"] = original_id
    if references:
        mail["References"] = references
    return [{**_base(message), "channel": "EMAIL", "rfc822": mail.as_string()}]


def _webchat(message: dict, now: datetime) -> list[dict]:
    return [{**_base(message), "channel": "WEBCHAT", "type": "message", "text": message["text"],
             "quick_replies": message.get("quick_replies", []), "author": message.get("author")}]
