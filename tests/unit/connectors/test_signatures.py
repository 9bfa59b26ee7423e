"""Signature checks against the providers' documented schemes."""

from __future__ import annotations

from connectors.signatures import sign_sha256, sign_twilio, verify_sha256, verify_twilio

TWILIO_DOC_PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
                     "From": "+12349013030", "To": "+18005551212"}


def test_twilio_signature_matches_twilios_documented_example() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert sign_twilio("12345", url, TWILIO_DOC_PARAMS) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert verify_twilio("12345", url, TWILIO_DOC_PARAMS, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not verify_twilio("12345", url, {**TWILIO_DOC_PARAMS, "Digits": "9999"}, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not verify_twilio("", url, TWILIO_DOC_PARAMS, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


def test_meta_style_sha256_signature() -> None:
    body = b'{"object":"page"}'
    header = sign_sha256("app-secret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_sha256("app-secret", body, header)
    assert not verify_sha256("app-secret", body + b" ", header)
    assert not verify_sha256("other-secret", body, header)
    assert not verify_sha256("app-secret", body, None)
    assert not verify_sha256("", body, sign_sha256("", body))  # an unset secret never verifies
