"""Customer messages as each provider's webhook would deliver them, and signed as the gateway expects.

The demo and the simulator speak to Centralita exactly as WhatsApp Cloud API, Twilio, the Messenger Platform
(Messenger and Instagram), an email relay posting raw MIME, and the web chat widget do: the same bodies the
normalizers are tested on, so nothing about them is special to tests.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formataddr
from urllib.parse import parse_qsl, urlencode

from connectors.signatures import sign_sha256, sign_twilio
from infra.settings import Settings

BUSINESS_PHONE = "34910000000"
PAGE_ID = "1122334455"
INSTAGRAM_ACCOUNT = "17841405822304914"
SUPPORT_ADDRESS = "support@example.com"


@dataclass(frozen=True)
class CustomerMessage:
    """One message a customer sends: on which provider, from which address, with the provider's own id."""

    source: str  # whatsapp | twilio | messenger | instagram | email | webchat
    address: str  # phone number, page-scoped id, email address or web chat visitor id
    provider_id: str  # unique per message: the provider's message id
    text: str
    display_name: str = ""
    subject: str = "Consulta"
    locale: str = "es-ES"


def webhook_body(message: CustomerMessage, now: float | None = None) -> bytes:
    """The provider's webhook body for one customer message."""
    at = int(now if now is not None else time.time())
    if message.source == "whatsapp":
        return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": BUSINESS_PHONE, "phone_number_id": "106540352242922"},
                "contacts": [{"profile": {"name": message.display_name or "Cliente"}, "wa_id": message.address}],
                "messages": [{"from": message.address, "id": f"wamid.{message.provider_id}", "timestamp": str(at),
                              "type": "text", "text": {"body": message.text}}]}}]}]}).encode()
    if message.source == "twilio":
        return urlencode({"MessageSid": f"SM{message.provider_id}", "AccountSid": "AC00000000000000000000000000000000",
                          "From": message.address, "To": f"+{BUSINESS_PHONE}", "Body": message.text,
                          "NumMedia": "0", "NumSegments": "1"}).encode()
    if message.source in ("messenger", "instagram"):
        recipient = PAGE_ID if message.source == "messenger" else INSTAGRAM_ACCOUNT
        return json.dumps({"object": "page" if message.source == "messenger" else "instagram", "entry": [{
            "id": recipient, "time": at * 1000, "messaging": [{
                "sender": {"id": message.address}, "recipient": {"id": recipient}, "timestamp": at * 1000,
                "message": {"mid": f"m_{message.provider_id}", "text": message.text}}]}]}).encode()
    if message.source == "email":
        mail = MIMEText(f"{message.text}\n\n--\n{message.display_name or ''}\n", "plain", "utf-8")  # compat32: cheap
        mail["Message-ID"] = f"<{message.provider_id}@mail.example.com>"
        mail["From"] = formataddr((message.display_name, message.address)) if message.display_name else message.address
        mail["To"] = SUPPORT_ADDRESS
        mail["Subject"] = Header(message.subject, "utf-8")
        mail["Date"] = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(at))
        return mail.as_bytes()
    if message.source == "webchat":
        return json.dumps({"type": "message", "message_id": message.provider_id, "visitor_id": message.address,
                           "text": message.text, "locale": message.locale, "sent_at": at * 1000}).encode()
    raise ValueError(f"unknown source {message.source!r}")


def gateway_headers(source: str, body: bytes, settings: Settings, url: str) -> dict[str, str]:
    """Content type and signature the gateway checks for `source` (Meta, Twilio, or the relay HMAC).

    `url` is the full URL the provider calls (Twilio signs it). Without the secret, no signature: the
    gateway will refuse the webhook with 401, as it should.
    """
    if source in ("whatsapp", "messenger", "instagram"):
        headers = {"Content-Type": "application/json"}
        secret = settings.meta_app_secret.get_secret_value()
        if secret:
            headers["X-Hub-Signature-256"] = sign_sha256(secret, body)
        return headers
    if source == "twilio":
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        token = settings.twilio_auth_token.get_secret_value()
        if token:
            headers["X-Twilio-Signature"] = sign_twilio(token, url, dict(parse_qsl(body.decode(), keep_blank_values=True)))
        return headers
    headers = {"Content-Type": "message/rfc822" if source == "email" else "application/json"}
    secret = settings.relay_secret.get_secret_value()
    if secret:
        headers["X-Centralita-Signature"] = sign_sha256(secret, body)
    return headers
