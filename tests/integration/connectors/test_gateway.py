"""The real gateway process over HTTP, publishing to the real broker: signatures, limits, 503, OpenAPI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from confluent_kafka import TopicPartition

from connectors.signatures import sign_sha256, sign_twilio
from infra.dead_letters import headers_dict
from infra.kafka_clients import make_consumer
from infra.processes import free_port

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "channels"
SECRETS = {"CENTRALITA_META_APP_SECRET": "meta-test-secret", "CENTRALITA_META_VERIFY_TOKEN": "verify-me",
           "CENTRALITA_TWILIO_AUTH_TOKEN": "twilio-test-token", "CENTRALITA_RELAY_SECRET": "relay-test-secret"}


def start_gateway(env: dict, tmp_path: Path, name: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(tmp_path / f"{name}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "infra.cli", "gateway", "--port", str(port)],
                            env={**env, **SECRETS, "CENTRALITA_PUBLIC_BASE_URL": "https://hooks.example.com"},
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                return proc, url
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError((tmp_path / f"{name}.log").read_text())


@pytest.fixture(scope="module")
def gateway(kafka, tmp_path_factory):
    proc, url = start_gateway(kafka.env(), tmp_path_factory.mktemp("gateway"), "gateway")
    yield url
    proc.terminate()
    proc.wait(10)


def last_raw(kafka, topic: str, key: bytes | None = None):
    consumer = make_consumer(kafka.settings, group_id=f"read-{uuid.uuid4().hex}")
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    found = None
    for partition in meta.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high > low:
            consumer.assign([TopicPartition(topic, partition, high - 1)])
            msg = consumer.poll(5)
            if msg is not None and not msg.error() and (key is None or msg.key() == key):
                if found is None or msg.timestamp()[1] > found.timestamp()[1]:
                    found = msg
    consumer.close()
    return found


def test_signed_whatsapp_webhook_is_published_with_its_headers(kafka, gateway) -> None:
    body = (FIXTURES / "whatsapp" / "text_with_context.json").read_bytes()
    response = requests.post(f"{gateway}/webhooks/whatsapp", data=body,
                             headers={"Content-Type": "application/json",
                                      "X-Hub-Signature-256": sign_sha256("meta-test-secret", body)})
    assert response.status_code == 200
    from connectors.channels import RawEvent, normalize

    key = normalize(RawEvent("whatsapp", body))[0]["conversation_id"].encode()
    msg = last_raw(kafka, "channel.whatsapp.inbound.raw", key)
    assert msg is not None and msg.value() == body
    headers = headers_dict(msg.headers())
    assert headers["http.content-type"] == "application/json" and "centralita.received_at" in headers


def test_bad_or_missing_signature_is_401(gateway) -> None:
    body = (FIXTURES / "messenger" / "text.json").read_bytes()
    assert requests.post(f"{gateway}/webhooks/messenger", data=body).status_code == 401
    wrong = requests.post(f"{gateway}/webhooks/messenger", data=body, headers={"X-Hub-Signature-256": sign_sha256("nope", body)})
    assert wrong.status_code == 401


def test_twilio_signature_over_the_public_url(kafka, gateway) -> None:
    params = {"MessageSid": f"SM{uuid.uuid4().hex}", "From": "+34600999888", "To": "+34910000000", "Body": "hola", "NumMedia": "0"}
    signature = sign_twilio("twilio-test-token", "https://hooks.example.com/webhooks/twilio", params)
    ok = requests.post(f"{gateway}/webhooks/twilio", data=urlencode(params),
                       headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
    assert ok.status_code == 200 and "<Response></Response>" in ok.text
    tampered = {**params, "Body": "adios"}
    assert requests.post(f"{gateway}/webhooks/twilio", data=urlencode(tampered),
                         headers={"X-Twilio-Signature": signature}).status_code == 401


def test_relay_hmac_for_email_and_webchat(gateway) -> None:
    body = (FIXTURES / "email" / "plain_en_sent_from_phone.eml").read_bytes()
    assert requests.post(f"{gateway}/webhooks/email", data=body,
                         headers={"X-Centralita-Signature": sign_sha256("relay-test-secret", body)}).status_code == 200
    assert requests.post(f"{gateway}/webhooks/email", data=body).status_code == 401


def test_meta_verification_handshake(gateway) -> None:
    ok = requests.get(f"{gateway}/webhooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "verify-me",
                                                              "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    bad = requests.get(f"{gateway}/webhooks/messenger", params={"hub.mode": "subscribe", "hub.verify_token": "guess",
                                                                "hub.challenge": "1"})
    assert bad.status_code == 403


def test_body_limit_is_413_and_invalid_payloads_still_reach_the_stream(kafka, gateway) -> None:
    big = b"x" * (1_048_576 + 1)
    assert requests.post(f"{gateway}/webhooks/webchat", data=big,
                         headers={"X-Centralita-Signature": sign_sha256("relay-test-secret", big)}).status_code == 413
    five_mb = b"{" + b" " * (5 * 1024 * 1024) + b"}"
    assert requests.post(f"{gateway}/webhooks/webchat", data=five_mb).status_code == 413
    garbage = f'{{"type": "message", "nonce": "{uuid.uuid4().hex}", "text": '.encode()
    response = requests.post(f"{gateway}/webhooks/webchat", data=garbage,
                             headers={"X-Centralita-Signature": sign_sha256("relay-test-secret", garbage)})
    assert response.status_code == 200  # signed by our relay: accepted; the stream dead-letters it with the reason
    assert last_raw(kafka, "channel.webchat.inbound.raw", b"").value() == garbage


def test_unknown_source_is_404_and_openapi_is_served(gateway) -> None:
    assert requests.post(f"{gateway}/webhooks/telegraph", data=b"{}").status_code == 404
    spec = requests.get(f"{gateway}/openapi.json").json()
    assert "/webhooks/{source}" in spec["paths"] and {"get", "post"} <= set(spec["paths"]["/webhooks/{source}"])


def test_kafka_unavailable_is_503_so_the_provider_retries(tmp_path: Path) -> None:
    env = {**os.environ, "CENTRALITA_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}", "CENTRALITA_GATEWAY_PUBLISH_TIMEOUT_S": "2"}
    proc, url = start_gateway(env, tmp_path, "gateway-no-kafka")
    try:
        body = json.dumps({"type": "message", "message_id": "wc-1", "visitor_id": "v-1", "text": "hola"}).encode()
        response = requests.post(f"{url}/webhooks/webchat", data=body,
                                 headers={"X-Centralita-Signature": sign_sha256("relay-test-secret", body)}, timeout=30)
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    finally:
        proc.terminate()
        proc.wait(10)
