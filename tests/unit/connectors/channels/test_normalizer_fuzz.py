"""Property-based fuzzing: whatever bytes or JSON arrive, a normalizer returns messages or raises InvalidPayload."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.channels import NORMALIZERS, InvalidPayload, RawEvent, normalize

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "channels"
SOURCES = sorted(NORMALIZERS)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def _only_typed_errors(source: str, body: bytes) -> None:
    try:
        messages = normalize(RawEvent(source, body))
    except InvalidPayload as exc:
        assert exc.reason
        return
    assert isinstance(messages, list)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SOURCES), st.binary(max_size=512))
def test_random_bytes(source: str, body: bytes) -> None:
    _only_typed_errors(source, body)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SOURCES), json_values)
def test_random_json(source: str, value) -> None:
    _only_typed_errors(source, json.dumps(value).encode())


def _paths(value, prefix=()):
    if isinstance(value, dict):
        for key, child in value.items():
            yield prefix + (key,)
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield prefix + (i,)
            yield from _paths(child, prefix + (i,))


REAL_JSON = [(d.name, f) for d in FIXTURES.iterdir() for f in d.glob("*.json")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(REAL_JSON), st.data(), json_values)
def test_real_payloads_with_one_field_replaced(fixture, data, replacement) -> None:
    source, path = fixture
    payload = json.loads(path.read_text())
    paths = list(_paths(payload))
    target = data.draw(st.sampled_from(paths))
    node = payload
    for key in target[:-1]:
        node = node[key]
    node[target[-1]] = replacement
    _only_typed_errors(source, json.dumps(payload).encode())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted((FIXTURES / "email").glob("*.eml"))), st.integers(0, 5000), st.binary(max_size=64))
def test_mangled_emails(path: Path, cut: int, junk: bytes) -> None:
    body = path.read_bytes()
    position = cut % max(1, len(body))
    _only_typed_errors("email", body[:position] + junk + body[position + len(junk):])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["MessageSid", "From", "To", "Body", "NumMedia", "MediaUrl0", "MediaContentType0",
                                        "SmsStatus", "MessageStatus"]), st.text(max_size=30)))
def test_random_twilio_forms(form: dict) -> None:
    from urllib.parse import urlencode

    _only_typed_errors("twilio", urlencode(form).encode())
