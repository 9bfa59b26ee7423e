"""The conversation engine in a real worker process on the real broker and Triton: raw provider bodies in, a whole
conversation with a handoff out; an undeliverable reply is dead-lettered. (Crashes: test_fault_injection.py.)"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import requests

from connectors.channels import RawEvent, normalize
from infra.kafka_clients import make_producer
from infra.webhooks import CustomerMessage, webhook_body
from schemas.codec import AvroCodec
from streams.audit import audit, read_messages, read_topic
from tests.integration.streams.workers import start_worker, stop_worker, wait_ready

CODEC = AvroCodec()


def whatsapp(address: str, provider_id: str, text: str) -> tuple[bytes, dict]:
    """A raw WhatsApp Cloud API body as the provider posts it, and its canonical message."""
    body = webhook_body(CustomerMessage("whatsapp", address, provider_id, text))
    [message] = normalize(RawEvent("whatsapp", body))
    return body, message


def send(producer, topic: str, schema: str, key: str, record: dict) -> None:
    producer.produce(topic, key=key.encode(), value=CODEC.encode(schema, record))


def wait_processed(kafka, conversations: set[str], expected_inbound: int, timeout_s: float, worker=None) -> None:
    """Until every inbound message of these conversations has its log turn."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        report = audit(kafka.settings, conversations)
        missing = [v for v in report.violations if "not processed" in v]
        if report.inbound_messages >= expected_inbound and not missing:
            return
        if worker is not None:
            assert worker.poll() is None, "worker died"
        time.sleep(2)
    raise AssertionError(f"not processed in {timeout_s}s: {audit(kafka.settings, conversations).violations[:5]}")


def records_of(kafka, topic: str, conversations: set[str]) -> list[dict]:
    out = []
    for value in read_topic(kafka.settings, topic):
        record = CODEC.decode(value)
        if record.get("conversation_id") in conversations:
            out.append(record)
    return out


def test_a_conversation_answered_escalated_silenced_and_closed(kafka, triton, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    address = f"3460{int(tag, 16) % 10**7:07d}"
    worker = start_worker(kafka, tmp_path, f"it-engine-{tag}", triton.settings_env())
    # A live worker: an integration that publishes without a key spreads one customer's messages over the raw
    # topic's partitions, so their order is kept only as well as they arrive apart (a backlog read at start-up
    # is read partition by partition; see README, "Delivery guarantees").
    wait_ready(worker)
    producer = make_producer(kafka.settings)
    conv = None
    try:
        for i, text in enumerate(["Hola, ¿dónde está mi pedido 4711-ES?", "quiero hablar con una persona", "¿hola? ¿alguien?"]):
            body, message = whatsapp(address, f"{tag}{i}", text)
            conv = message["conversation_id"]
            producer.produce("channel.whatsapp.inbound.raw", value=body)  # as an integration publishes it: no key, no headers
            producer.flush(10)
            time.sleep(0.3)  # a customer types one message after another
        wait_processed(kafka, {conv}, 3, 90, worker)
        [handoff] = [h for h in records_of(kafka, "conversation.handoff", {conv}) if h["state"] == "REQUESTED"]
        case_id = handoff["case_id"]
        now = datetime.now(timezone.utc)
        base = {"conversation_id": conv, "case_id": case_id, "occurred_at": now, "reason": None, "queue": "es-general",
                "agent_id": "agent-7", "channel": "WHATSAPP", "language": "es", "in_reply_to": None}
        send(producer, "conversation.handoff", "HandoffEvent", conv, {**base, "event_id": f"acc-{tag}", "state": "ACCEPTED"})
        send(producer, "conversation.agent", "OutboundMessage", conv, {
            "message_id": f"agent-msg-{tag}", "in_reply_to": None, "conversation_id": conv, "channel": "WHATSAPP",
            "recipient_id": address, "author": "AGENT", "agent_id": "agent-7", "created_at": now,
            "text": "Hola, soy Marta. Reviso tu pedido.", "language": "es", "quick_replies": [], "template": None, "metadata": {}})
        send(producer, "conversation.handoff", "HandoffEvent", conv, {**base, "event_id": f"done-{tag}", "state": "COMPLETED"})
        producer.flush(10)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            cases = records_of(kafka, "crm.case-events", {conv})
            if any(c["type"] == "CLOSED" for c in cases):
                break
            time.sleep(1)
        metrics = requests.get(f"http://127.0.0.1:{worker.web_port}/metrics", timeout=10).text
    finally:
        stop_worker(worker)
    inbound = records_of(kafka, "conversation.inbound", {conv})
    assert [m["text"] for m in inbound][0].startswith("Hola") and len({m["message_id"] for m in inbound}) == 3
    replies = records_of(kafka, "conversation.outbound", {conv})  # the record of the bot's replies
    assert len(replies) == 2 and "asistente automático" in replies[0]["text"] and "4711-ES" in replies[0]["text"], \
        [(m["in_reply_to"], m["text"][:60]) for m in replies]
    assert "persona del equipo" in replies[1]["text"]
    delivered = [m.value() for m in read_messages(kafka.settings, "channel.whatsapp.outbound") if m.key() == conv.encode()]
    assert sum(b"Soy Marta" in v or b"soy Marta" in v for v in delivered) == 1  # the agent's message reached the customer
    log = records_of(kafka, "conversation.log", {conv})
    assert [t["route"] for t in log if t["direction"] == "INBOUND"] == ["answer", "handoff", "silent"]
    assert any(t["author"] == "AGENT" for t in log)
    cases = records_of(kafka, "crm.case-events", {conv})
    assert [c["type"] for c in cases][0] == "CREATED" and cases[-1]["type"] == "CLOSED"
    assert {c["case_id"] for c in cases} == {case_id}
    report = audit(kafka.settings.model_copy(update={"app_id": f"it-engine-{tag}"}), {conv})
    assert report.ok, report.violations
    for name in ("centralita_engine_reply_latency_seconds_bucket", 'centralita_engine_escalations_total{channel="WHATSAPP",reason="human_request"}',
                 "centralita_engine_intent_confidence_bucket", 'centralita_engine_messages_total{channel="WHATSAPP",intent="order_status",route="answer"}'):
        assert name in metrics, name
    assert 'centralita_nlu_predictions_total{intent="order_status",model_version="intent-1"}' in metrics  # Triton answered
    assert address[:6] not in metrics and "4711" not in metrics  # no personal data in labels


def test_a_message_for_no_known_channel_is_dead_lettered_and_the_next_one_still_goes_out(kafka, triton, tmp_path: Path) -> None:
    """Another system reaches a customer through conversation.agent; a message naming a channel integration we do not
    deliver to is dead-lettered with the reason, and the engine goes on."""
    from infra.dead_letters import headers_dict

    tag = uuid.uuid4().hex[:8]
    conv = f"conv-dlq-{tag}"
    now = datetime.now(timezone.utc)
    notice = {"message_id": f"out-{tag}", "in_reply_to": None, "conversation_id": conv, "channel": "SMS",
              "recipient_id": "+34600111222", "author": "AGENT", "agent_id": "notices", "created_at": now, "text": "hola",
              "language": "es", "quick_replies": [], "template": None, "metadata": {"source": "carrier-pigeon"}}
    worker = start_worker(kafka, tmp_path, f"it-outbound-{tag}", triton.settings_env())
    producer = make_producer(kafka.settings)
    try:
        send(producer, "conversation.agent", "OutboundMessage", conv, notice)
        send(producer, "conversation.agent", "OutboundMessage", conv, {**notice, "message_id": f"out2-{tag}", "metadata": {}})
        producer.flush(10)
        deadline = time.monotonic() + 60
        delivered, dead = [], []
        while time.monotonic() < deadline and not (delivered and dead):
            delivered = [m for m in read_messages(kafka.settings, "channel.twilio.outbound") if m.key() == conv.encode()]
            dead = [m for m in read_messages(kafka.settings, "conversation.agent.dlq") if m.key() == conv.encode()]
            time.sleep(1)
    finally:
        stop_worker(worker)
    assert len(dead) == 1 and CODEC.decode(dead[0].value())["message_id"] == f"out-{tag}"
    headers = headers_dict(dead[0].headers())
    assert headers["centralita.dlq.reason"] == "unroutable" and "metadata.source" in headers["centralita.dlq.detail"]
    assert len(delivered) == 1  # the engine did not stop at the first one
