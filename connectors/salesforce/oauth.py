"""OAuth 2.0 access tokens for the Salesforce integration user: client credentials or JWT bearer.

The username-password flow is being retired by Salesforce, so it is not offered. Tokens are cached until the
API says the session is invalid; then `refresh()` gets a new one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class OAuthError(RuntimeError):
    """The token endpoint refused; the message carries Salesforce's error code, never a secret."""


@dataclass
class TokenProvider:
    login_url: str
    client_id: str
    client_secret: str = field(repr=False, default="")
    flow: str = "client_credentials"  # or "jwt"
    username: str = ""
    jwt_key_file: Path | None = None
    audience: str | None = None  # JWT aud: https://login.salesforce.com in production
    timeout_s: float = 10.0
    _token: str | None = field(default=None, repr=False)
    instance_url: str | None = None

    def token(self) -> str:
        return self._token or self.refresh()

    def refresh(self) -> str:
        """Ask the token endpoint for a new access token."""
        if self.flow == "client_credentials":
            form = {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret}
        elif self.flow == "jwt":
            form = {"grant_type": JWT_BEARER, "assertion": self._assertion()}
        else:
            raise OAuthError(f"unknown OAuth flow {self.flow!r} (client_credentials or jwt)")
        try:
            response = requests.post(f"{self.login_url.rstrip('/')}/services/oauth2/token", data=form, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise OAuthError(f"token endpoint {self.login_url} unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            try:
                body = response.json()
                reason = f"{body.get('error')}: {body.get('error_description')}"
            except ValueError:
                reason = f"HTTP {response.status_code}"
            raise OAuthError(f"token request refused ({reason})")
        body = response.json()
        self._token = body["access_token"]
        self.instance_url = body.get("instance_url")
        return self._token

    def _assertion(self) -> str:
        import jwt

        if self.jwt_key_file is None:
            raise OAuthError("the JWT flow needs CENTRALITA_SF_JWT_KEY_FILE (the connected app's private key)")
        claims = {"iss": self.client_id, "sub": self.username, "aud": self.audience or self.login_url,
                  "exp": int(time.time()) + 180}
        return jwt.encode(claims, self.jwt_key_file.read_text(), algorithm="RS256")
