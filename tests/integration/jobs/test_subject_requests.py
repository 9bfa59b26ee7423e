"""Access and erasure requests on the real broker and real Spark: a subject's records are found on the topics
and in the anonymized output; erasure removes their rows, tombstones their changelog keys, leaves an audit
record without their id, and a later anonymization run leaves them out."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from confluent_kafka.admin import NewTopic

from infra.kafka_clients import make_admin, make_producer
from jobs.anonymize import erased_subjects, run_job
from jobs.pseudonymize import Pseudonymizer
from jobs.subject import erase_subject, export_subject
from schemas.codec import AvroCodec
from streams.audit import read_messages
from streams.ids import message_id

KEY = b"subject-test-key-0123456789"


def inbound(conversation: str, sender: str, text: str) -> dict:
    now = datetime.now(timezone.utc)
    return {"message_id": message_id("twilio", f"SM{uuid.uuid4().hex}"), "conversation_id": conversation, "channel": "SMS",
            "source": "twilio", "channel_message_id": "SM1", "sender_id": sender, "recipient_id": "+34900000000",
            "customer_id": None, "sent_at": now, "received_at": now, "text": text, "language": "es", "attachments": [],
            "reply_to_channel_message_id": None, "subject": None, "metadata": {}}


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch):
    """Process settings pointing at a temporary state folder (where the erasure audit lives)."""
    from infra.settings import get_settings

    monkeypatch.setenv("CENTRALITA_STATE_DIR", str(tmp_path / "state"))
    get_settings.cache_clear()
    yield tmp_path / "state"
    get_settings.cache_clear()


def test_export_then_erase(kafka, spark, tmp_path: Path, state_dir: Path) -> None:
    settings = kafka.settings.model_copy(update={"state_dir": state_dir})
    tag = uuid.uuid4().hex[:8]
    subject, other = f"+3461{tag[:7].translate(str.maketrans('abcdef', '123456'))}", f"+3462{tag[:7].translate(str.maketrans('abcdef', '654321'))}"
    mine, theirs = f"conv-subject-{tag}", f"conv-other-{tag}"
    changelog = f"app-{tag}-sessions-changelog"
    admin = make_admin(settings)
    for future in admin.create_topics([NewTopic(changelog, 1, 1, config={"cleanup.policy": "compact"})]).values():
        future.result(30)
    codec, producer = AvroCodec(), make_producer(settings)
    producer.produce("conversation.inbound", key=mine.encode(), value=codec.encode("InboundMessage", inbound(mine, subject, "hola, soy Marta")))
    producer.produce("conversation.inbound", key=theirs.encode(), value=codec.encode("InboundMessage", inbound(theirs, other, "hola")))
    producer.produce(changelog, key=mine.encode(), value=b'{"session": 1}')
    producer.flush(10)
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(json.dumps({"message_id": f"m{i}", "conversation_id": conv, "customer_id": who, "channel": "SMS",
                                         "sent_at": "2026-11-20T10:00:00Z", "text": "hola"})
                             for i, (conv, who) in enumerate([(mine, subject), (mine, subject), (theirs, other)])) + "\n")
    out = tmp_path / "anonymized"
    run_job(spark, log, out, KEY)
    pseudonyms = Pseudonymizer(KEY)

    exported = export_subject(settings, subject, pseudonyms, [out], spark)
    assert exported["conversations"] == [mine]
    assert [r["conversation_id"] for r in exported["records"]["conversation.inbound"]] == [mine]
    assert len(exported["anonymized_rows"]) == 2

    record = erase_subject(settings, subject, pseudonyms, [out], spark)
    assert record["anonymized_rows_removed"] == 2 and record["tombstones"] >= 1 and record["conversations"] == 1
    assert spark.read.parquet(str(out)).count() == 1
    tombstones = [m for m in read_messages(settings, changelog) if m.key() == mine.encode() and m.value() is None]
    assert len(tombstones) == 1
    audit_text = (state_dir / "erasure-audit.jsonl").read_text()
    assert subject not in audit_text and pseudonyms.token("customer", subject) in audit_text
    assert pseudonyms.token("customer", subject) in erased_subjects()  # later runs leave the subject out
    again = run_job(spark, log, tmp_path / "again", KEY, erase=erased_subjects())
    assert again.erased_rows == 2 and again.rows_out == 1
