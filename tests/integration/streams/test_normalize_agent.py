"""The normalization agent in a real worker on the real broker: canonical records, dedupe, dead letters, order."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from infra.dead_letters import headers_dict
from infra.kafka_clients import make_consumer, make_producer
from infra.processes import free_port
from schemas.codec import AvroCodec
from tests.integration.streams.workers import stop_worker
from tests.kafka_reading import end_offsets

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "channels"
CODEC = AvroCodec()


def consume_new(kafka, topic: str, start: dict, predicate, expect: int, timeout_s: float = 90, alive=lambda: True) -> list:
    from confluent_kafka import TopicPartition

    consumer = make_consumer(kafka.settings, group_id=f"read-{uuid.uuid4().hex}")
    consumer.assign([TopicPartition(topic, p, o) for p, o in start.items()])
    got = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < expect and time.monotonic() < deadline and alive():
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error() and predicate(msg):
                got.append(msg)
        end = time.monotonic() + 3  # and nothing more
        while time.monotonic() < end:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error() and predicate(msg):
                got.append(msg)
    finally:
        consumer.close()
    return got


def test_raw_events_become_canonical_once_and_invalid_ones_are_dead_lettered(kafka, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    inbound_start = end_offsets(kafka.settings, "conversation.inbound")
    dlq_start = end_offsets(kafka.settings, "channel.webchat.inbound.raw.dlq")
    producer = make_producer(kafka.settings)
    sent_ids = []
    for i in range(5):  # one conversation, in order
        body = {"type": "message", "message_id": f"wc-{tag}-{i}", "visitor_id": f"visitor-{tag}", "text": f"mensaje {i}"}
        producer.produce("channel.webchat.inbound.raw", key=f"visitor-{tag}".encode(), value=json.dumps(body).encode(),
                         headers=[("centralita.received_at", b"1764064800000")])
        sent_ids.append(f"wc-{tag}-{i}")
    duplicate = {"type": "message", "message_id": f"wc-{tag}-0", "visitor_id": f"visitor-{tag}", "text": "mensaje 0"}
    producer.produce("channel.webchat.inbound.raw", key=f"visitor-{tag}".encode(), value=json.dumps(duplicate).encode())
    producer.produce("channel.webchat.inbound.raw", key=f"bad-{tag}".encode(), value=b'{"type": "message", "text": ')
    producer.produce("channel.webchat.inbound.raw", key=f"visitor-{tag}".encode(),
                     value=json.dumps({"type": "typing", "visitor_id": f"visitor-{tag}"}).encode())
    producer.produce("channel.whatsapp.inbound.raw", key=f"wa-{tag}".encode(),
                     value=(FIXTURES / "whatsapp" / "status_only.json").read_bytes())
    assert producer.flush(30) == 0

    env = {**kafka.env(), "CENTRALITA_APP_ID": f"it-normalize-{tag}", "CENTRALITA_STATE_DIR": str(tmp_path),
           "CENTRALITA_WORKER_WEB_PORT": str(free_port()), "CENTRALITA_NLU_BACKEND": "rules"}  # normalization is the point
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", "-l", "warn"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        mine = consume_new(kafka, "conversation.inbound", inbound_start,
                           lambda m: CODEC.decode(m.value())["channel_message_id"].startswith(f"wc-{tag}-"), expect=5,
                           alive=lambda: worker.poll() is None)
        dead = consume_new(kafka, "channel.webchat.inbound.raw.dlq", dlq_start, lambda m: m.key() == f"bad-{tag}".encode(), expect=1,
                           alive=lambda: worker.poll() is None)
    finally:
        stop_worker(worker)
    records = [CODEC.decode(m.value()) for m in mine]
    assert [r["channel_message_id"] for r in records] == sent_ids, ([r["channel_message_id"] for r in records], [(m.partition(), m.offset()) for m in mine])
    assert len({m.partition() for m in mine}) == 1 and all(m.key() == records[0]["conversation_id"].encode() for m in mine)
    assert records[0]["received_at"].timestamp() == 1764064800
    [letter] = dead
    headers = headers_dict(letter.headers())
    assert headers["centralita.dlq.reason"] == "invalid_payload" and "malformed JSON" in headers["centralita.dlq.detail"]
    assert letter.value() == b'{"type": "message", "text": '
