"""The anonymization job reading conversation.log-shaped records straight from the real broker with Spark's
Kafka source (connector jars fetched by Maven into the cache), through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

from confluent_kafka.admin import NewTopic

from infra.kafka_clients import make_admin, make_producer
from schemas.codec import AvroCodec


def turn(i: int, conversation: str, customer: str | None, text: str) -> dict:
    return {"turn_id": f"turn-{i}", "message_id": f"msg-{i}", "conversation_id": conversation, "customer_id": customer,
            "agent_id": None, "channel": "WHATSAPP", "direction": "INBOUND", "author": "CUSTOMER",
            "sent_at": datetime(2026, 11, 20, 10, i, tzinfo=timezone.utc), "text": text, "language": "es",
            "intent": "order_status", "confidence": 0.91, "sentiment": "neutral", "sentiment_score": 0.0, "entities": [],
            "model_version": "intent-1", "route": "answer"}


def new_topic(kafka, partitions: int) -> str:
    topic = f"test.{uuid.uuid4().hex[:8]}.conversation-log"
    admin = make_admin(kafka.settings)
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(30)
    return topic


def anonymize(kafka, topic: str, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """`centralita anonymize` on the topic, in its own process (Spark starts with the connector jars)."""
    env = {**kafka.env(), "CENTRALITA_PSEUDONYM_KEY": "kafka-test-key-0123456789"}
    return subprocess.run([sys.executable, "-m", "infra.cli", "anonymize", "--input", f"kafka://{kafka.bootstrap}/{topic}",
                           "--output", str(out), *extra], env=env, capture_output=True, text=True, timeout=600)


def test_conversation_log_from_kafka(kafka, tmp_path: Path) -> None:
    topic = new_topic(kafka, 2)
    codec, producer = AvroCodec(), make_producer(kafka.settings)
    producer.produce(topic, key=b"c1", value=codec.encode("ConversationTurn", turn(1, "c1", "+34612345678", "soy Ana, ana@x.com")))
    producer.produce(topic, key=b"c2", value=codec.encode("ConversationTurn", turn(2, "c2", None, "mi pedido 4711 no llega")))
    producer.produce(topic, key=b"c3", value=b"not avro at all")
    producer.flush(10)
    result = anonymize(kafka, topic, tmp_path / "out", "--master", "local[2]")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["rows_in"] == 3 and report["rows_out"] == 2 and report["skipped"] == {"undecodable_value": 1}
    assert report["pii_found"] == {"EMAIL": 1, "PERSON": 1}
    import pyarrow.parquet as pq

    texts = sorted(pq.read_table(tmp_path / "out").column("text").to_pylist())
    assert texts == ["mi pedido 4711 no llega", "soy <PERSON>, <EMAIL>"]


def test_starting_offsets_skip_what_was_anonymized_before(kafka, tmp_path: Path) -> None:
    topic = new_topic(kafka, 1)
    codec, producer = AvroCodec(), make_producer(kafka.settings)
    for i in range(3):
        producer.produce(topic, key=b"c", value=codec.encode("ConversationTurn", turn(i, "c", "cust", f"mensaje {i}")))
    producer.flush(10)
    result = anonymize(kafka, topic, tmp_path / "out", "--master", "local[1]", "--starting-offsets",
                       json.dumps({topic: {"0": 2}}))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["rows_in"] == 1  # offsets 0 and 1 were read by an earlier run
