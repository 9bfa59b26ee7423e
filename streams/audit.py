"""The effects audit: reads the topics and checks the engine's promises on whatever traffic they hold.

- every inbound message the bot owned has exactly one reply (distinct OutboundMessage id with in_reply_to);
  a message an agent owned has none; every inbound message has been processed (it has an inbound log turn);
- every escalation has exactly one HandoffEvent REQUESTED;
- no case is created twice;
- a record seen more than once (a replay after a crash) is byte-identical every time.

Duplicates of one id are allowed (at-least-once delivery); consumers deduplicate on the id.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from confluent_kafka import TopicPartition

from infra.kafka_clients import make_consumer
from infra.settings import Settings
from schemas.codec import AvroCodec, CodecError

TOPICS = ("conversation.inbound", "conversation.outbound", "conversation.handoff", "crm.case-events", "conversation.log")


@dataclass
class AuditReport:
    inbound_messages: int = 0
    replies: int = 0
    escalations: int = 0
    cases: int = 0
    duplicates_seen: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def read_messages(settings: Settings, topic: str) -> list:
    """Every record of a topic (confluent-kafka messages: key, value, headers), from the beginning to its current end."""
    consumer = make_consumer(settings, group_id="centralita-audit")
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in meta.partitions}
        todo = {p for p, (low, high) in ends.items() if high > low}
        consumer.assign([TopicPartition(topic, p, ends[p][0]) for p in todo])
        messages = []
        while todo:
            msg = consumer.poll(5)
            if msg is None:
                break
            if msg.error():
                continue
            messages.append(msg)
            if msg.offset() >= ends[msg.partition()][1] - 1:
                todo.discard(msg.partition())
        return messages
    finally:
        consumer.close()


def read_topic(settings: Settings, topic: str) -> list[bytes]:
    """Every value of a topic, from the beginning to its current end."""
    return [message.value() for message in read_messages(settings, topic)]


def audit(settings: Settings, conversations: set[str] | None = None) -> AuditReport:
    """Audit all traffic (or only the given conversation ids)."""
    codec = AvroCodec()
    report = AuditReport()
    records: dict[str, dict] = defaultdict(dict)  # topic -> id -> record
    raw: dict[tuple[str, str], bytes] = {}
    id_field = {"conversation.inbound": "message_id", "conversation.outbound": "message_id",
                "conversation.handoff": "event_id", "crm.case-events": "event_id", "conversation.log": "turn_id"}
    for topic in TOPICS:
        for value in read_topic(settings, topic):
            try:
                record = codec.decode(value)
            except CodecError:
                continue
            if conversations is not None and record.get("conversation_id") not in conversations:
                continue
            rid = record[id_field[topic]]
            if (topic, rid) in raw:
                report.duplicates_seen += 1
                if raw[(topic, rid)] != value:
                    first = codec.decode(raw[(topic, rid)])
                    fields = sorted(k for k in record if record.get(k) != first.get(k))  # names only: values may be personal
                    report.violations.append(f"{topic} {rid}: two different records with one id (fields {', '.join(fields)})")
                continue
            raw[(topic, rid)] = value
            records[topic][rid] = record

    replies = defaultdict(set)
    for rid, record in records["conversation.outbound"].items():
        if record["in_reply_to"]:
            replies[record["in_reply_to"]].add(rid)
    requested = defaultdict(set)
    for rid, record in records["conversation.handoff"].items():
        if record["state"] == "REQUESTED":
            requested[record["in_reply_to"]].add(rid)
    routes = {r["message_id"]: r["route"] for r in records["conversation.log"].values() if r["direction"] == "INBOUND"}
    report.inbound_messages = len(records["conversation.inbound"])
    for message_id in records["conversation.inbound"]:
        route = routes.get(message_id)
        got = len(replies.get(message_id, ()))
        if route is None:
            report.violations.append(f"{message_id}: not processed (no log turn)")
        elif route == "silent" and got:
            report.violations.append(f"{message_id}: {got} replies while an agent owned the conversation")
        elif route != "silent" and got != 1:
            report.violations.append(f"{message_id}: {got} replies, expected exactly 1")
        if route == "handoff":
            report.escalations += 1
            if len(requested.get(message_id, ())) != 1:
                report.violations.append(f"{message_id}: {len(requested.get(message_id, ()))} handoff requests, expected 1")
        report.replies += got
    created = defaultdict(set)
    for rid, record in records["crm.case-events"].items():
        if record["type"] == "CREATED":
            created[record["case_id"]].add(rid)
    report.cases = len(created)
    for case_id, ids in created.items():
        if len(ids) != 1:
            report.violations.append(f"case {case_id} created {len(ids)} times")
    return report
