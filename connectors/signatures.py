"""Webhook signature checks, as each provider documents them. All comparisons are constant-time.

- Meta (WhatsApp Cloud API, Messenger, Instagram): `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>`.
- Twilio: `X-Twilio-Signature: base64(HMAC-SHA1(auth token, full URL + each POST param name+value, sorted by name))`.
- Web chat widget backends and email relays: `X-Centralita-Signature: sha256=<hex HMAC-SHA256(shared secret, body)>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Mapping


def _hex_hmac_sha256(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_sha256(secret: str, body: bytes) -> str:
    """The `sha256=<hex>` header value for body (used by Meta and by our relays)."""
    return "sha256=" + _hex_hmac_sha256(secret, body)


def verify_sha256(secret: str, body: bytes, header: str | None) -> bool:
    if not secret or not header:
        return False
    return hmac.compare_digest(sign_sha256(secret, body), header.strip())


def sign_twilio(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    payload = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def verify_twilio(auth_token: str, url: str, params: Mapping[str, str], header: str | None) -> bool:
    if not auth_token or not header:
        return False
    return hmac.compare_digest(sign_twilio(auth_token, url, params), header.strip())
