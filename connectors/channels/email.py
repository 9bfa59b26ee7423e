"""Inbound email (raw RFC 5322 / MIME, as a relay such as SES, Mailgun or Postfix hands it over) to a
canonical message.

Parsing is the standard library's `email` package with its compat32 policy (raw headers, decoded here only for
the headers we read: the modern policy's structured headers cost a millisecond per message): multipart,
quoted-printable and base64, any charset, RFC 2047 encoded headers. The new text is separated from the quoted previous message and
the signature with `mail-parser-reply` (English and Spanish reply headers); both are kept in metadata.
Attachments become metadata (name, type, size), never content. HTML-only mail is turned into text.
"""

from __future__ import annotations

import email
import hashlib
import re
from datetime import timezone
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

from mailparser_reply import EmailReplyParser

from connectors.channels.base import InvalidPayload, RawEvent, attachment, canonical

SOURCE = "email"
QUOTE_START = re.compile(
    r"^(>|On .+wrote:|El .+escribi[oó]:|-{2,}\s*(Original Message|Mensaje original)\s*-{2,}|"
    r"(From|De):\s.+|_{5,})", re.IGNORECASE)
BLOCK_TAGS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "blockquote", "table"}
_REPLIES = EmailReplyParser(languages=["en", "es"])


class _HtmlText(HTMLParser):
    """Visible text of an HTML body, with line breaks at block elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head") and self._skip:
            self._skip -= 1
        elif tag in BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)

    def text(self) -> str:
        lines = [" ".join(line.split()) for line in "".join(self.parts).splitlines()]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    return parser.text()


def _decoded(part: Message) -> str:
    """A text part's content in its declared charset; unknown charsets fall back to a lossless-enough decode."""
    payload = part.get_payload(decode=True) or b""
    try:
        return payload.decode(part.get_content_charset() or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return payload.decode("utf-8", errors="replace")


def _decode_words(value: object) -> str:
    """RFC 2047 encoded words decoded; a value whose encoding is broken is kept as it came."""
    try:
        return str(make_header(decode_header(str(value))))
    except (MessageError, LookupError, UnicodeError, ValueError):  # MessageError: HeaderParseError, CharsetError
        return str(value)


def _header(message: Message, name: str) -> str:
    """A header's value with RFC 2047 encoded words decoded ('' when absent)."""
    value = message.get(name)
    return "" if value is None else _decode_words(value)


def _headers(message: Message, name: str) -> list[str]:
    return [_decode_words(v) for v in message.get_all(name, [])]


def split_reply(text: str) -> tuple[str, str, str]:
    """(new text, signature, quoted history) of a plain-text email body."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        return "", "", ""
    replies = _REPLIES.read(text=text).replies
    new = replies[0].body.strip() if replies else text
    rest = text[len(new):].strip() if text.startswith(new) else ""
    lines = rest.splitlines()
    cut = next((i for i, line in enumerate(lines) if QUOTE_START.match(line.strip())), len(lines))
    signature = "\n".join(lines[:cut]).strip()
    quoted = "\n".join(lines[cut:]).strip()
    return new or text, signature, quoted


def normalize(raw: RawEvent) -> list[dict]:
    if not raw.body or not raw.body.strip():
        raise InvalidPayload(SOURCE, "empty body")
    message = email.message_from_bytes(raw.body)
    if message.defects and not message.keys():
        raise InvalidPayload(SOURCE, "not an RFC 5322 message")
    try:
        senders = getaddresses(_headers(message, "From"))
        recipients = getaddresses(_headers(message, "To"))
        subject = " ".join(_header(message, "Subject").split()) or None
        message_id = _header(message, "Message-ID").strip()
        in_reply_to = _header(message, "In-Reply-To").strip() or None
        references = " ".join(_header(message, "References").split()) or None
        date = message.get("Date")
    except (ValueError, TypeError, IndexError, LookupError, UnicodeError) as exc:
        raise InvalidPayload(SOURCE, f"unreadable header ({type(exc).__name__})") from None
    sender = next((addr.lower() for _, addr in senders if "@" in addr), None)
    if sender is None:
        raise InvalidPayload(SOURCE, "missing or invalid From header")
    recipient = next((addr.lower() for _, addr in recipients if "@" in addr), None)
    if not message_id:  # relays add one; without it, the content identifies the message
        message_id = "<sha256-" + hashlib.sha256(raw.body).hexdigest() + ">"
    sent_at = raw.received_at
    if date is not None:
        try:
            parsed = parsedate_to_datetime(str(date))
            sent_at = parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        except (TypeError, ValueError, IndexError):
            pass  # a broken Date header is common; the receive time stands in
    plain, html, attachments = _walk(message)
    body = plain if plain is not None else (html_to_text(html) if html is not None else "")
    text, signature, quoted = split_reply(body)
    metadata = {"email_message_id": message_id, "in_reply_to": in_reply_to,
                "references": references[:2000] if references else None,
                "email_signature": signature or None, "email_quoted": quoted[:10_000] or None,
                "html_only": "true" if plain is None and html is not None else None}
    return [canonical(raw, channel_message_id=message_id, sender_id=sender, recipient_id=recipient, text=text,
                      sent_at=sent_at, attachments=attachments, subject=subject, reply_to=in_reply_to,
                      metadata=metadata)]


def _walk(message: Message) -> tuple[str | None, str | None, list[dict]]:
    plain = html = None
    attachments = []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        filename = part.get_filename()
        disposition = part.get_content_disposition()
        if disposition == "attachment" or filename or not content_type.startswith("text/"):
            payload = part.get_payload(decode=True) or b""
            attachments.append(attachment(content_type.split("/")[0] if content_type.split("/")[0] in
                                          ("image", "audio", "video") else "document",
                                          mime_type=content_type, filename=filename, size_bytes=len(payload)))
        elif content_type == "text/plain" and plain is None:
            plain = _decoded(part)
        elif content_type == "text/html" and html is None:
            html = _decoded(part)
    return plain, html, attachments
