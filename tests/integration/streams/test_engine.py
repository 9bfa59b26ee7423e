"""The conversation engine in real worker processes on the real broker: a whole conversation with a handoff,
and SIGKILL fault injection after which every promise of the effects audit still holds."""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import requests

from infra.kafka_clients import make_producer
from schemas.codec import AvroCodec
from streams.audit import audit
from streams.ids import message_id
from tests.integration.streams.workers import start_worker, stop_worker, wait_ready

CODEC = AvroCodec()


def inbound(conversation: str, i: int, text: str, channel: str = "WHATSAPP") -> dict:
    now = datetime.now(timezone.utc)
    return {"message_id": message_id("whatsapp", f"wamid.{conversation}.{i}"), "conversation_id": conversation,
            "channel": channel, "source": "whatsapp", "channel_message_id": f"wamid.{conversation}.{i}",
            "sender_id": f"346{abs(hash(conversation)) % 10**8:08d}", "recipient_id": "1065", "customer_id": None, "sent_at": now, "received_at": now,
            "text": text, "language": None, "attachments": [], "reply_to_channel_message_id": None, "subject": None,
            "metadata": {}}


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
    from streams.audit import read_topic

    out = []
    for value in read_topic(kafka.settings, topic):
        record = CODEC.decode(value)
        if record.get("conversation_id") in conversations:
            out.append(record)
    return out


def test_a_conversation_answered_escalated_silenced_and_closed(kafka, triton, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    conv = f"conv-flow-{tag}"
    worker = start_worker(kafka, tmp_path, f"it-engine-{tag}", triton.settings_env())
    producer = make_producer(kafka.settings)
    try:
        for i, text in enumerate(["Hola, ¿dónde está mi pedido 4711-ES?", "quiero hablar con una persona", "¿hola? ¿alguien?"]):
            send(producer, "conversation.inbound", "InboundMessage", conv, inbound(conv, i, text))
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
            "recipient_id": "34600111222", "author": "AGENT", "agent_id": "agent-7", "created_at": now,
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
    replies = records_of(kafka, "conversation.outbound", {conv})
    assert len(replies) == 2 and "asistente automático" in replies[0]["text"] and "4711-ES" in replies[0]["text"]
    assert "persona del equipo" in replies[1]["text"]
    log = records_of(kafka, "conversation.log", {conv})
    assert [t["route"] for t in log if t["direction"] == "INBOUND"] == ["answer", "handoff", "silent"]
    assert any(t["author"] == "AGENT" for t in log)
    cases = records_of(kafka, "crm.case-events", {conv})
    assert [c["type"] for c in cases][0] == "CREATED" and cases[-1]["type"] == "CLOSED"
    assert {c["case_id"] for c in cases} == {case_id}
    assert audit(kafka.settings, {conv}).ok
    for name in ("centralita_engine_reply_latency_seconds_bucket", 'centralita_engine_escalations_total{channel="WHATSAPP",reason="human_request"}',
                 "centralita_engine_intent_confidence_bucket", 'centralita_engine_messages_total{channel="WHATSAPP",intent="order_status",route="answer"}'):
        assert name in metrics, name
    assert 'centralita_nlu_predictions_total{intent="order_status",model_version="intent-1"}' in metrics  # Triton answered
    assert "34600" not in metrics and "4711" not in metrics  # no personal data in labels


SCRIPT = ["hola", "¿dónde está mi pedido 4711?", "asdf", "gracias", "quiero cancelar mi pedido 5521",
          "mi tarjeta rechazada", "quiero hablar con una persona", "¿hola?", "sigo esperando", "gracias"]


def test_sigkill_mid_stream_keeps_exactly_once_effects_and_session_state(kafka, triton, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    conversations = [f"conv-kill-{tag}-{c}" for c in range(24)]
    total = len(conversations) * len(SCRIPT)
    app_id = f"it-kill-{tag}"
    producer = make_producer(kafka.settings)
    stop = threading.Event()

    def customers() -> None:  # every conversation follows the script, interleaved, at a steady pace
        for i, text in enumerate(SCRIPT):
            for conv in conversations:
                send(producer, "conversation.inbound", "InboundMessage", conv, inbound(conv, i, text))
            producer.flush(10)
            if stop.wait(0.6):
                return

    feeder = threading.Thread(target=customers, daemon=True)
    worker = start_worker(kafka, tmp_path, app_id, triton.settings_env())
    feeder.start()
    kills = 0
    try:
        for _ in range(3):
            wait_ready(worker)  # killed mid-stream: while it consumes, not before it has joined
            time.sleep(random.uniform(0.5, 2.0))
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            kills += 1
            worker = start_worker(kafka, tmp_path, app_id, triton.settings_env())
        feeder.join(60)
        wait_processed(kafka, set(conversations), total, 180, worker)
    finally:
        stop.set()
        stop_worker(worker)
    report = audit(kafka.settings, set(conversations))
    assert kills == 3 and report.inbound_messages == total
    assert report.ok, report.violations[:10]
    assert report.escalations == len(conversations)  # "quiero hablar con una persona" once per conversation
    assert report.cases == len(conversations)
    replies = records_of(kafka, "conversation.outbound", set(conversations))
    distinct = {r["message_id"]: r for r in replies}
    for conv in conversations:  # session state survived the kills: one disclosure, silence after the handoff
        mine = [r for r in distinct.values() if r["conversation_id"] == conv]
        assert sum("asistente automático" in r["text"] for r in mine) == 1, conv
        assert len(mine) == SCRIPT.index("quiero hablar con una persona") + 1, conv


def test_an_undeliverable_reply_is_dead_lettered_and_the_next_one_still_goes_out(kafka, triton, tmp_path: Path) -> None:
    from infra.dead_letters import headers_dict
    from streams.audit import read_messages

    tag = uuid.uuid4().hex[:8]
    conv = f"conv-dlq-{tag}"
    now = datetime.now(timezone.utc)
    reply = {"message_id": f"out-{tag}", "in_reply_to": None, "conversation_id": conv, "channel": "SMS",
             "recipient_id": "+34600111222", "author": "BOT", "agent_id": None, "created_at": now, "text": "hola",
             "language": "es", "quick_replies": [], "template": None, "metadata": {"source": "carrier-pigeon"}}
    worker = start_worker(kafka, tmp_path, f"it-outbound-{tag}", triton.settings_env())
    producer = make_producer(kafka.settings)
    try:
        send(producer, "conversation.outbound", "OutboundMessage", conv, reply)
        send(producer, "conversation.outbound", "OutboundMessage", conv, {**reply, "message_id": f"out2-{tag}", "metadata": {}})
        producer.flush(10)
        deadline = time.monotonic() + 60
        delivered, dead = [], []
        while time.monotonic() < deadline and not (delivered and dead):
            delivered = [m for m in read_messages(kafka.settings, "channel.twilio.outbound") if m.key() == conv.encode()]
            dead = [m for m in read_messages(kafka.settings, "conversation.outbound.dlq") if m.key() == conv.encode()]
            time.sleep(1)
    finally:
        stop_worker(worker)
    assert len(dead) == 1 and CODEC.decode(dead[0].value())["message_id"] == f"out-{tag}"
    headers = headers_dict(dead[0].headers())
    assert headers["centralita.dlq.reason"] == "unroutable" and "metadata.source" in headers["centralita.dlq.detail"]
    assert len(delivered) == 1  # the agent did not crash on the first one
