"""The effects audit: reads the topics and checks the engine's promises on whatever traffic they hold.

Checked from the records alone, never from what the engine says about itself where the records can tell:

- a record seen more than once (a replay after a crash, a redelivery) is byte-identical every time: Avro records
  by their id, channel payloads by (message id, part);
- every inbound message has been processed (one inbound log turn); while the bot owns the conversation it gets
  exactly one reply, while a person owns it none. Who owns it is worked out from the conversation's own history
  in `conversation.inbound` order (a message that asked for a person hands it over; an agent desk's RELEASED or
  COMPLETED hands it back), not from the route the engine logged;
- every escalation has exactly one HandoffEvent REQUESTED; no case is created twice;
- the automated-assistant disclosure reaches each conversation exactly once (never in a conversation that
  continues another one on a new channel, which was told already);
- each session's turn count (the sessions changelog of `settings.app_id`) equals the conversation's messages.

Duplicates of one id are allowed (at-least-once delivery); consumers deduplicate on the id.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from confluent_kafka import TopicPartition

from infra.kafka_clients import make_consumer
from infra.settings import Settings
from schemas.codec import AvroCodec, CodecError
from schemas.topics import SOURCES
from streams.knowledge_base import KnowledgeBase

#: Avro topics the engine writes (and the inbound one it reads), with the field that identifies a record.
ID_FIELDS = {"conversation.inbound": "message_id", "conversation.outbound": "message_id",
             "conversation.handoff": "event_id", "crm.case-events": "event_id", "conversation.log": "turn_id",
             "conversation.session": "event_id"}
TOPICS = tuple(ID_FIELDS)
CHANNEL_TOPICS = tuple(f"channel.{source}.outbound" for source in SOURCES)


@dataclass
class AuditReport:
    inbound_messages: int = 0
    replies: int = 0
    escalations: int = 0
    cases: int = 0
    duplicates_seen: int = 0
    sessions_checked: int = 0
    violations: list[str] = field(default_factory=list)
    message_ids: set[str] = field(default_factory=set)  # distinct InboundMessage ids audited

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict:
        return {"inbound_messages": self.inbound_messages, "replies": self.replies, "escalations": self.escalations,
                "cases": self.cases, "duplicates_seen": self.duplicates_seen, "sessions_checked": self.sessions_checked,
                "violations": len(self.violations), "first_violations": self.violations[:50]}


def read_messages(settings: Settings, topic: str) -> list:
    """Every record of a topic (confluent-kafka messages: key, value, headers), from the beginning to its current end,
    in offset order within each partition."""
    consumer = make_consumer(settings, group_id="centralita-audit")
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
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


@dataclass
class Traffic:
    """The first copy of every record, by topic and id, and the order inbound messages arrived in."""

    records: dict[str, dict[str, dict]] = field(default_factory=lambda: defaultdict(dict))
    inbound_order: list[str] = field(default_factory=list)  # message ids, in conversation.inbound offset order


def _collect(report: AuditReport, first: dict[tuple[str, str], bytes], topic: str, rid: str, value: bytes,
             decoded: dict, decode) -> bool:
    """Remember the first copy of (topic, id); a later copy must be byte-identical. True for a first copy."""
    if (topic, rid) not in first:
        first[(topic, rid)] = value
        return True
    report.duplicates_seen += 1
    if first[(topic, rid)] != value:
        earlier = decode(first[(topic, rid)])
        fields = sorted(k for k in set(decoded) | set(earlier) if decoded.get(k) != earlier.get(k))  # names only
        report.violations.append(f"{topic} {rid}: two different records with one id (fields {', '.join(fields)})")
    return False


def read_traffic(settings: Settings, report: AuditReport, conversations: set[str] | None) -> Traffic:
    codec = AvroCodec()
    traffic = Traffic()
    first: dict[tuple[str, str], bytes] = {}
    for topic in TOPICS:
        for message in read_messages(settings, topic):
            try:
                record = codec.decode(message.value())
            except CodecError:
                continue  # not ours to judge: the engine dead-letters undecodable values
            if conversations is not None and record.get("conversation_id") not in conversations:
                continue
            rid = record[ID_FIELDS[topic]]
            if _collect(report, first, topic, rid, message.value(), record, codec.decode):
                traffic.records[topic][rid] = record
                if topic == "conversation.inbound":
                    traffic.inbound_order.append(rid)
    for topic in CHANNEL_TOPICS:
        for message in read_messages(settings, topic):
            try:
                payload = json.loads(message.value())
            except (TypeError, ValueError):
                report.violations.append(f"{topic}: a payload that is not JSON")
                continue
            if conversations is not None and payload.get("conversation_id") not in conversations:
                continue
            rid = f"{payload.get('message_id')}#{payload.get('part', 1)}"
            if _collect(report, first, topic, rid, message.value(), payload, json.loads):
                traffic.records[topic][rid] = payload
    return traffic


def check_replies(report: AuditReport, traffic: Traffic) -> None:
    """One processed turn per inbound message; one reply while the bot owns it, none while a person does."""
    records = traffic.records
    replies: dict[str, set[str]] = defaultdict(set)
    for rid, record in records["conversation.outbound"].items():
        if record["in_reply_to"] and record["author"] == "BOT":
            replies[record["in_reply_to"]].add(rid)
    requested: dict[str, set[str]] = defaultdict(set)
    for rid, record in records["conversation.handoff"].items():
        if record["state"] == "REQUESTED":
            requested[record["in_reply_to"]].add(rid)
    routes = {r["message_id"]: r["route"] for r in records["conversation.log"].values() if r["direction"] == "INBOUND"}
    owner_changes = _desk_events(records["conversation.handoff"].values())
    owned_by_agent: dict[str, bool] = defaultdict(bool)
    continued = continued_conversations(traffic)  # may start owned by a person, from the channel it continues
    report.inbound_messages = len(records["conversation.inbound"])
    report.message_ids = set(records["conversation.inbound"])
    for message_id in traffic.inbound_order:
        message = records["conversation.inbound"][message_id]
        conversation = message["conversation_id"]
        agent_owns = _owner_is_agent(owned_by_agent[conversation], owner_changes.get(conversation, ()), message["received_at"])
        route = routes.get(message_id)
        got = len(replies.get(message_id, ()))
        report.replies += got
        if route is None:
            report.violations.append(f"{message_id}: not processed (no log turn)")
            continue
        if agent_owns:
            if got or route != "silent":
                report.violations.append(f"{message_id}: a bot reply ({got}, route {route}) while an agent owned the conversation")
        elif route == "silent":
            if got or conversation not in continued:
                report.violations.append(f"{message_id}: logged silent ({got} replies) while the bot owned the conversation")
        elif got != 1:
            report.violations.append(f"{message_id}: {got} replies, expected exactly 1")
        if route == "handoff":
            report.escalations += 1
            if len(requested.get(message_id, ())) != 1:
                report.violations.append(f"{message_id}: {len(requested.get(message_id, ()))} handoff requests, expected 1")
        owned_by_agent[conversation] = agent_owns or route == "handoff"


def _desk_events(handoffs) -> dict[str, list[tuple[datetime, bool]]]:
    """Per conversation, the agent desk's ownership changes: (when, the agent owns it after)."""
    changes: dict[str, list[tuple[datetime, bool]]] = defaultdict(list)
    for record in handoffs:
        if record["state"] in ("ACCEPTED", "RELEASED", "COMPLETED"):
            changes[record["conversation_id"]].append((record["occurred_at"], record["state"] == "ACCEPTED"))
    for events in changes.values():
        events.sort()
    return changes


def _owner_is_agent(by_history: bool, desk: list[tuple[datetime, bool]], received_at: datetime) -> bool:
    """Who owns the conversation when a message arrives: the latest desk event before it wins over the history
    (ordering across topics is known only by time, so only desk events before the message count)."""
    earlier = [agent for at, agent in desk if at <= received_at]
    if not earlier:
        return by_history
    if earlier[-1] is False:  # released or completed: the bot again, until a later message asks for a person
        return False
    return True


def check_cases(report: AuditReport, traffic: Traffic) -> None:
    created: dict[str, set[str]] = defaultdict(set)
    for rid, record in traffic.records["crm.case-events"].items():
        if record["type"] == "CREATED":
            created[record["case_id"]].add(rid)
    report.cases = len(created)
    for case_id, ids in created.items():
        if len(ids) != 1:
            report.violations.append(f"case {case_id} created {len(ids)} times")


def continued_conversations(traffic: Traffic) -> set[str]:
    """Conversations whose session continues a session of the same customer on another channel."""
    return {r["conversation_id"] for r in traffic.records["conversation.session"].values() if r["type"] == "CHANNEL_SWITCHED"}


def disclosure_texts() -> tuple[str, ...]:
    data = KnowledgeBase.load().data["disclosure"]
    return tuple(data.values())


def check_disclosures(report: AuditReport, traffic: Traffic) -> None:
    """Exactly one disclosure per conversation with bot replies; none where a session continues another channel's."""
    texts = disclosure_texts()
    disclosed: dict[str, set[str]] = defaultdict(set)
    answered: set[str] = set()
    for rid, record in traffic.records["conversation.outbound"].items():
        if record["author"] != "BOT":
            continue
        answered.add(record["conversation_id"])
        if any(text in record["text"] for text in texts):
            disclosed[record["conversation_id"]].add(rid)
    continued = continued_conversations(traffic)
    for conversation in sorted(answered):
        expected = 0 if conversation in continued else 1
        if len(disclosed[conversation]) != expected:
            report.violations.append(f"conversation {conversation}: {len(disclosed[conversation])} AI disclosures, "
                                     f"expected {expected}")


def sessions_changelog(settings: Settings) -> str:
    return f"{settings.app_id}-sessions-changelog"


def latest_sessions(settings: Settings) -> dict[str, dict]:
    """The latest value of every session on the engine's compacted changelog (tombstones remove it)."""
    latest: dict[str, dict] = {}
    for message in read_messages(settings, sessions_changelog(settings)):
        key = message.key().decode("utf-8", "replace") if message.key() else ""
        if message.value() is None:
            latest.pop(key, None)
            continue
        try:
            latest[key] = json.loads(message.value())
        except (TypeError, ValueError):
            continue
    return latest


def check_session_turns(report: AuditReport, traffic: Traffic, settings: Settings) -> None:
    """A first session's turn count equals its conversation's distinct messages (later sessions count from their
    reopening, which the topics do not pin down: they are left out)."""
    messages: dict[str, int] = defaultdict(int)
    for record in traffic.records["conversation.inbound"].values():
        messages[record["conversation_id"]] += 1
    sessions = latest_sessions(settings)
    for conversation, count in sorted(messages.items()):
        session = sessions.get(conversation)
        if session is None or int(session.get("sequence", 1)) != 1:
            continue
        report.sessions_checked += 1
        if int(session.get("turns", -1)) != count:
            report.violations.append(f"conversation {conversation}: session has {session.get('turns')} turns, "
                                     f"{count} messages arrived")


def audit(settings: Settings, conversations: set[str] | None = None) -> AuditReport:
    """Audit all traffic (or only the given conversation ids)."""
    report = AuditReport()
    traffic = read_traffic(settings, report, conversations)
    check_replies(report, traffic)
    check_cases(report, traffic)
    check_disclosures(report, traffic)
    check_session_turns(report, traffic, settings)
    return report
