"""Data-subject requests: access (`centralita export --subject ID`) and erasure (`centralita erase --subject ID`).

A subject is a customer id as the channels know it (a phone number, an email address) or the CRM's customer id.
- Access gathers what is held about them: every record on the conversation topics of their conversations
  (inbound and outbound messages, turns, handoffs, session events, case events) and their rows in the
  anonymized outputs (found through their keyed pseudonym).
- Erasure removes their rows from the anonymized outputs (each Parquet dataset is rewritten without them),
  writes tombstones for their keys on the compacted topics (the engine's session and identity changelogs),
  and appends an audit record (the subject's pseudonym, never the id) to `<state>/erasure-audit.jsonl`.
  Records on the retention-based topics (conversation.*, crm.case-events: 7 to 30 days, see
  `centralita topics list`) cannot be deleted one by one in Kafka; they expire with their retention, and
  the anonymized outputs never receive them again because the erase list is applied on every run.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from jobs.pseudonymize import Pseudonymizer
from infra.settings import Settings

TOPICS = ("conversation.inbound", "conversation.outbound", "conversation.agent", "conversation.log",
          "conversation.handoff", "conversation.session", "crm.case-events")
CHANGELOG_SUFFIXES = ("-sessions-changelog", "-identities-changelog")


@dataclass
class SubjectRecords:
    subject_token: str
    conversations: set[str] = field(default_factory=set)
    records: dict[str, list[dict]] = field(default_factory=dict)
    anonymized_rows: list[dict] = field(default_factory=list)


def _decoded(settings: Settings, topic: str) -> list[dict]:
    from schemas.codec import AvroCodec, CodecError
    from streams.audit import read_messages

    codec = AvroCodec()
    out = []
    for message in read_messages(settings, topic):
        try:
            out.append(codec.decode(message.value()))
        except (CodecError, TypeError):
            continue
    return out


def _identities(subject: str) -> set[str]:
    """The identity keys the engine may hold for this subject (see streams.conversation.identity_of)."""
    digits = re.sub(r"\D", "", subject)
    keys = {f"email:{subject.strip().lower()}"} if "@" in subject else set()
    if len(digits) >= 8:
        keys.add(f"phone:{digits}")
    return keys


def collect(settings: Settings, subject: str, pseudonyms: Pseudonymizer, outputs: list[Path], spark=None) -> SubjectRecords:
    """Everything held about `subject` on the topics and in the anonymized outputs."""
    found = SubjectRecords(pseudonyms.token("customer", subject) or "")
    by_topic = {topic: _decoded(settings, topic) for topic in TOPICS}
    for record in by_topic["conversation.inbound"] + by_topic["conversation.log"]:
        if subject in (record.get("sender_id"), record.get("customer_id")):
            found.conversations.add(record["conversation_id"])
    for topic, records in by_topic.items():
        mine = [r for r in records if r.get("conversation_id") in found.conversations or r.get("customer_id") == subject]
        if mine:
            found.records[topic] = mine
    if spark is not None:
        for path in outputs:
            if path.exists():
                rows = spark.read.parquet(str(path)).where(f"customer = '{found.subject_token}'").collect()
                found.anonymized_rows += [{**r.asDict(), "dataset": str(path)} for r in rows]
    return found


def export_subject(settings: Settings, subject: str, pseudonyms: Pseudonymizer, outputs: list[Path], spark=None) -> dict:
    found = collect(settings, subject, pseudonyms, outputs, spark)
    return {"subject": subject, "conversations": sorted(found.conversations), "records": found.records,
            "anonymized_rows": found.anonymized_rows}


def erase_subject(settings: Settings, subject: str, pseudonyms: Pseudonymizer, outputs: list[Path], spark=None) -> dict:
    """Remove the subject where it can be removed now; record what was done (without the id)."""
    from infra.kafka_clients import make_admin, make_producer

    found = collect(settings, subject, pseudonyms, [], None)
    removed = 0
    if spark is not None:
        for path in outputs:
            if not path.exists():
                continue
            frame = spark.read.parquet(str(path))
            before = frame.count()
            remaining = frame.where(f"customer IS NULL OR customer != '{found.subject_token}'")
            staging = path.with_name(path.name + ".erasing")
            remaining.write.mode("overwrite").partitionBy("date").parquet(str(staging))
            removed += before - spark.read.parquet(str(staging)).count()
            shutil.rmtree(path)
            staging.rename(path)
    topics = make_admin(settings).list_topics(timeout=10).topics
    producer = make_producer(settings)
    tombstones = 0
    for topic in topics:
        if topic.endswith(CHANGELOG_SUFFIXES[0]):
            keys = found.conversations
        elif topic.endswith(CHANGELOG_SUFFIXES[1]):
            keys = _identities(subject)
        else:
            continue
        for key in keys:
            producer.produce(topic, key=key.encode(), value=None)
            tombstones += 1
    producer.flush(30)
    record = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "subject": found.subject_token,
              "conversations": len(found.conversations), "anonymized_rows_removed": removed, "tombstones": tombstones,
              "expires_with_retention": {t: len(r) for t, r in found.records.items()}}
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.state_dir / "erasure-audit.jsonl", "a", encoding="utf-8") as audit_log:
        audit_log.write(json.dumps(record) + "\n")
    return record
