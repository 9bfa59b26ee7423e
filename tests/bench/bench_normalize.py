"""Normalization benchmark: raw provider events/s through the normalizing agent (a real Faust worker) on the
local stack's broker, per source, topic to topic (raw topic in, conversation.inbound out)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

from confluent_kafka import TopicPartition

from connectors.gateway import conversation_key
from infra.kafka_clients import make_admin, make_consumer, make_producer
from infra.processes import free_port
from infra.settings import PROJECT_ROOT, get_settings
from infra.stack import Stack
from infra.topic_admin import catalog_for, create_topics
from schemas.codec import AvroCodec
from tests.bench.plots import bar_chart
from tests.integration.streams.workers import stop_worker
from tests.kafka_reading import end_offsets

DESCRIPTION = "raw events/s through the normalizing agent on the real broker, per source"
FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "channels"


def raw_body(source: str, tag: str, i: int) -> bytes:
    """A realistic raw body of `source` with a unique provider message id (and one customer per 50 events)."""
    uid, customer = f"{tag}-{i}", f"{tag}-c{i % 50}"
    if source == "webchat":
        return json.dumps({"type": "message", "message_id": uid, "visitor_id": customer, "text": f"hola {i}"}).encode()
    if source == "twilio":
        return urlencode({"MessageSid": f"SM{uid}", "From": f"+3460{i % 50:07d}", "To": "+34910000000",
                          "Body": "Quiero cancelar mi pedido", "NumMedia": "0"}).encode()
    if source == "email":
        eml = (FIXTURES / "email" / "plain_en_sent_from_phone.eml").read_text()
        return eml.replace("<plain-en-7@mail.example.org>", f"<{uid}@mail.example.org>") \
                  .replace("kim@example.org", f"{customer}@example.org").encode()
    if source == "whatsapp":
        payload = json.loads((FIXTURES / "whatsapp" / "text_with_context.json").read_text())
        message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
        message.update(id=f"wamid.{uid}", **{"from": f"3460{i % 50:07d}"})
        return json.dumps(payload).encode()
    name = "text.json" if source == "messenger" else "text_and_story_mention.json"
    payload = json.loads((FIXTURES / source / name).read_text())
    event = payload["entry"][0]["messaging"][0]
    event["message"]["mid"] = f"m_{uid}"
    event["sender"]["id"] = customer
    payload["entry"][0]["messaging"] = [event]
    return json.dumps(payload).encode()


def _measure(settings, source: str, n: int, worker: subprocess.Popen, timeout_s: float = 300) -> float:
    tag = uuid.uuid4().hex[:10]
    start_offsets = end_offsets(settings, "conversation.inbound")
    consumer = make_consumer(settings, group_id=f"bench-read-{tag}")
    consumer.assign([TopicPartition("conversation.inbound", p, o) for p, o in start_offsets.items()])
    bodies = [raw_body(source, tag, i) for i in range(n)]
    keys = [conversation_key(source, body) for body in bodies]
    codec = AvroCodec()
    producer = make_producer(settings)
    started = time.perf_counter()
    for key, body in zip(keys, bodies):
        producer.produce(f"channel.{source}.inbound.raw", key=key, value=body)
        producer.poll(0)
    producer.flush(60)
    seen = 0
    deadline = time.monotonic() + timeout_s
    while seen < n and time.monotonic() < deadline and worker.poll() is None:
        for msg in consumer.consume(500, timeout=0.5):
            if not msg.error() and tag in codec.decode(msg.value())["channel_message_id"]:
                seen += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    if seen < n:
        raise RuntimeError(f"{source}: only {seen} of {n} events came out")
    return n / elapsed


def run(quick: bool = False) -> dict:
    settings = get_settings()
    Stack.from_settings(settings).up()
    create_topics(make_admin(settings), settings.kafka_bootstrap, catalog_for(settings))
    n = 200 if quick else 5000
    state = Path(settings.state_dir) / "bench-normalize"
    env = {**os.environ, "CENTRALITA_APP_ID": f"bench-normalize-{uuid.uuid4().hex[:6]}", "CENTRALITA_STATE_DIR": str(state),
           "CENTRALITA_WORKER_WEB_PORT": str(free_port()), "CENTRALITA_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
           "CENTRALITA_AUTO_OFFSET_RESET": "latest"}  # a fresh group skips the topics' history
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "worker.log", "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", "-l", "warn"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        for _ in range(10):  # warm-up until the worker's group has joined (it starts from the topics' end)
            try:
                _measure(settings, "webchat", 20, worker, timeout_s=10)
                break
            except RuntimeError:
                continue
        results = {source: round(_measure(settings, source, n, worker), 1)
                   for source in ("webchat", "whatsapp", "twilio", "messenger", "instagram", "email")}
    finally:
        stop_worker(worker)
    return {"bench": "normalize", "unit": "events/s (raw topic to conversation.inbound, one worker)",
            "results": results, "events_per_source": n, "quick": quick,
            "plot": bar_chart("normalize", results, "events/s")}
