"""The conversation engine's decisions, as pure functions: a session and an event in, a session and effects out.

Kept free of Faust and Kafka so every rule is unit-tested directly. Every effect carries a deterministic id
derived from its input (`streams.ids.derive_id`), so replaying an event after a crash produces the same ids
and consumers deduplicate; the agent additionally remembers the effects of recent messages and re-emits them
byte for byte on a replay, so the session itself is never advanced twice.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Callable, Optional

import orjson

from connectors.channels.outbound import format_outbound
from inference.nlu import NluResult
from streams.ids import derive_id
from streams.knowledge_base import KnowledgeBase
from streams.policy import Policy

RECENT_TURNS = 10
# Effects of a session's messages, kept for replays until their input's offset is committed (a commit follows the
# delivery of every output before it, so after it nothing needs re-emitting). The cap only bounds a session whose
# commits stall; in steady state a session holds the effects of its one or two uncommitted messages.
REMEMBERED_MESSAGES = 32
# Digests of a session's last messages, kept after their effects are forgotten: a message that reaches
# conversation.inbound twice (another producer, a replayed repartition) is recognised and skipped instead of
# being decided again against a newer session. 64 x 12 hex characters per session write.
SEEN_MESSAGES = 64
CSAT_ANSWER = re.compile(r"^\s*([1-5])\s*(/\s*5)?\s*[.!]?\s*$")


@dataclass
class Session:
    """One conversation's state (durable table `sessions`, key = conversation id), stored as JSON."""

    conversation_id: str
    channel: str
    source: str
    sender_id: str
    recipient_id: Optional[str] = None
    customer_id: Optional[str] = None
    language: Optional[str] = None
    owner: str = "bot"  # bot | agent
    agent_id: Optional[str] = None
    status: str = "open"  # open | closed
    sequence: int = 1  # the n-th session of this conversation
    turns: int = 0
    not_understood_in_a_row: int = 0
    opened_at: float = 0.0
    last_activity: float = 0.0
    customer_last_at: float = 0.0  # when the customer last wrote (sent_at): channels' messaging windows start there
    closed_at: float = 0.0
    disclosed: bool = False
    escalated: bool = False
    case_id: Optional[str] = None
    case_priority: str = "MEDIUM"
    case_queue: Optional[str] = None
    csat_pending: bool = False
    last_intent: Optional[str] = None
    last_confidence: Optional[float] = None
    last_sentiment: Optional[str] = None
    recent_turns: list = field(default_factory=list)  # "customer: ..." / "bot: ..." lines, newest last
    metadata: dict = field(default_factory=dict)  # channel context for replies (email threading, subject, business address)
    seen: list = field(default_factory=list)  # digests (seen_digest) of the last SEEN_MESSAGES message ids handled, oldest first
    # input id -> {"at": [topic, partition, offset] of the input, "effects": [[topic, key, base64 value], ...]}, oldest first
    handled: dict = field(default_factory=dict)
    timer: Optional[str] = None  # the session's deadline in the timer index (idle close, or purge after retention)


SESSION_FIELDS = {f.name for f in fields(Session)}


def encode_session(session: Session) -> bytes:
    return orjson.dumps(session.__dict__)


def decode_session(value: bytes) -> Session:
    """A session as stored; fields a newer version added are ignored, missing ones take their defaults."""
    data = orjson.loads(value)
    return Session(**{k: v for k, v in data.items() if k in SESSION_FIELDS})


#: Effect.schema of a channel payload: the JSON an integration sends through the provider's API.
CHANNEL_PAYLOAD = "json"


@dataclass(frozen=True)
class Effect:
    """One record to publish: topic, key, schema name and the record (a dict of the schema, or a channel payload's
    JSON object when the schema is CHANNEL_PAYLOAD)."""

    topic: str
    key: str
    schema: str
    record: dict[str, Any]


@dataclass
class Outcome:
    session: Session | None  # None: nothing to keep (an event about a conversation this engine never saw)
    effects: list[Effect] = field(default_factory=list)
    route: str = "none"  # answer | clarify | handoff | csat | silent | none
    reason: str | None = None


def ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc).replace(microsecond=int(seconds * 1000) % 1000 * 1000)


def new_session(message: dict, now: float) -> Session:
    return Session(conversation_id=message["conversation_id"], channel=message["channel"], source=message["source"],
                   sender_id=message["sender_id"], recipient_id=message.get("recipient_id"),
                   customer_id=message.get("customer_id"), language=message.get("language"),
                   opened_at=now, last_activity=now)


def _turn(message_id: str, session: Session, direction: str, author: str, sent_at: datetime, text: str,
          nlu: NluResult | None = None, route: str | None = None, agent_id: str | None = None) -> Effect:
    record = {
        "turn_id": derive_id("turn", message_id, direction), "message_id": message_id,
        "conversation_id": session.conversation_id, "customer_id": session.customer_id, "agent_id": agent_id,
        "channel": session.channel, "direction": direction, "author": author, "sent_at": sent_at, "text": text,
        "language": session.language, "intent": nlu.intent if nlu else None,
        "confidence": nlu.confidence if nlu else None, "sentiment": nlu.sentiment if nlu else None,
        "sentiment_score": nlu.sentiment_score if nlu else None,
        "entities": [{"label": e.label, "value": e.value, "start": e.start, "end": e.end} for e in (nlu.entities if nlu else ())],
        "model_version": nlu.model_version if nlu else None, "route": route,
    }
    return Effect("conversation.log", session.conversation_id, "ConversationTurn", record)


def _reply(session: Session, in_reply_to: str, role: str, text: str, now: float,
           quick_replies: list[str] | None = None) -> Effect:
    record = {
        "message_id": derive_id("reply", in_reply_to, role), "in_reply_to": in_reply_to,
        "conversation_id": session.conversation_id, "channel": session.channel, "recipient_id": session.sender_id,
        "author": "BOT", "agent_id": None, "created_at": ts(now), "text": text, "language": session.language,
        "quick_replies": quick_replies or [], "template": None,
        "metadata": {"source": session.source, **{k: v for k, v in session.metadata.items() if isinstance(v, str)}},
    }
    return Effect("conversation.outbound", session.conversation_id, "OutboundMessage", record)


def deliveries(session: Session | None, message: dict, now: float) -> list[Effect]:
    """An OutboundMessage (bot reply or agent message) formatted for its channel's limits and windows: the payloads on
    `channel.<source>.outbound`. Made here, with the reply, so a reply reaches its channel without another Kafka hop,
    and deterministically (event time), so a message decided again yields the same bytes. Without a session the
    customer's last message is unknown (the channels' windows then count as closed)."""
    last = ts(session.customer_last_at) if session is not None and session.customer_last_at else None
    source, payloads = format_outbound(message, customer_last_message_at=last, now=ts(now))
    return [Effect(f"channel.{source}.outbound", message["conversation_id"], CHANNEL_PAYLOAD, payload) for payload in payloads]


def _case_event(session: Session, kind: str, status: str, priority: str, now: float, cause: str,
                queue: str | None) -> Effect:
    assert session.case_id is not None
    excerpt = "\n".join(session.recent_turns[-RECENT_TURNS:])
    record = {
        "event_id": derive_id("case-event", session.case_id, kind, cause), "case_id": session.case_id,
        "conversation_id": session.conversation_id, "customer_id": session.customer_id, "type": kind,
        "occurred_at": ts(now), "channel": session.channel,
        "subject": f"{(session.last_intent or 'conversation').replace('_', ' ')} ({session.channel.lower()})",
        "transcript_excerpt": excerpt, "priority": priority, "status": status, "intent": session.last_intent,
        "confidence": session.last_confidence, "sentiment": session.last_sentiment, "queue": queue,
    }
    return Effect("crm.case-events", session.case_id, "CaseEvent", record)


def _session_event(session: Session, kind: str, now: float, cause: str, reason: str | None = None,
                   csat: int | None = None) -> Effect:
    record = {"event_id": derive_id("session", session.conversation_id, str(session.sequence), kind, cause),
              "conversation_id": session.conversation_id, "customer_id": session.customer_id, "channel": session.channel,
              "type": kind, "occurred_at": ts(now), "reason": reason, "turns": session.turns, "csat_score": csat}
    return Effect("conversation.session", session.conversation_id, "SessionEvent", record)


def escalation_reason(session: Session, nlu: NluResult, policy: Policy, understood: bool) -> str | None:
    """Why this message needs a human, or None."""
    if nlu.intent == "human_agent" and "human_agent" in policy.escalate_intents:
        return "human_request"
    if nlu.intent in policy.escalate_intents and understood:
        return nlu.intent
    if session.customer_id and session.customer_id in policy.priority_customers:
        return "priority_customer"
    if nlu.sentiment_score <= policy.negative_sentiment_at_or_below:
        return "negative_sentiment"
    if not understood and session.not_understood_in_a_row + 1 >= policy.not_understood_in_a_row:
        return "not_understood"
    return None


VERIFIED_SOURCES = {"whatsapp": "phone", "twilio": "phone", "email": "email"}


def identity_of(message: dict) -> str | None:
    """The customer's verified identity (a phone number the carrier vouches for, an email address), or None
    where the channel does not verify one (web chat visitors, page-scoped ids)."""
    kind = VERIFIED_SOURCES.get(message["source"])
    if kind == "phone":
        digits = re.sub(r"\D", "", message["sender_id"])
        return f"phone:{digits}" if len(digits) >= 8 else None
    if kind == "email":
        return f"email:{message['sender_id'].strip().lower()}"
    return None


def identity_summary(session: Session, now: float) -> dict:
    """What another channel needs to continue this session (kept in the global `identities` table)."""
    return {"conversation_id": session.conversation_id, "channel": session.channel, "case_id": session.case_id,
            "owner": session.owner, "language": session.language, "recent_turns": session.recent_turns[-5:],
            "case_priority": session.case_priority, "case_queue": session.case_queue, "last_intent": session.last_intent,
            "status": session.status, "at": now}


IDENTITY_REFRESH_S = 60.0


def identity_needs_update(stored: dict | None, summary: dict) -> bool:
    """Whether a customer's identity summary must be written again: when anything but its time and recent turns
    changed, else at most once a minute (a channel switch is decided on a window of hours)."""
    if stored is None:
        return True
    same = all(stored.get(k) == v for k, v in summary.items() if k not in ("at", "recent_turns"))
    return not same or summary["at"] - float(stored.get("at", 0)) >= IDENTITY_REFRESH_S


def _continued(message: dict, previous: dict | None, policy: Policy, now: float) -> Session | None:
    """A new session that continues the customer's recent session on another channel, or None."""
    if not previous or previous.get("conversation_id") == message["conversation_id"] or previous.get("status") != "open":
        return None
    if now - float(previous.get("at", 0)) > policy.channel_switch_window_s:
        return None
    session = new_session(message, now)
    session.case_id, session.owner = previous.get("case_id"), previous.get("owner") or "bot"
    session.case_priority = previous.get("case_priority") or "MEDIUM"
    session.case_queue, session.last_intent = previous.get("case_queue"), previous.get("last_intent")
    session.language, session.disclosed = previous.get("language"), True
    session.escalated = session.case_id is not None
    session.recent_turns = list(previous.get("recent_turns") or [])
    session.metadata = {"continued_from": previous["conversation_id"]}
    return session


def handle_inbound(session: Session | None, message: dict, nlu: NluResult, policy: Policy, kb: KnowledgeBase,
                   now: float, previous: dict | None = None) -> Outcome:
    """Decide what one customer message gets. While the bot owns the conversation: exactly one reply.

    `previous` is the identity summary of the same verified customer's latest session (any channel): a new
    conversation within the policy's channel-switch window continues it (same case, context, ownership).
    """
    effects: list[Effect] = []
    if session is None:
        session = _continued(message, previous, policy, now)
        if session is not None:
            effects.append(_session_event(session, "CHANNEL_SWITCHED", now, message["message_id"],
                                          reason=f"continues {previous['channel']} conversation"))
        else:
            session = new_session(message, now)
            effects.append(_session_event(session, "OPENED", now, message["message_id"]))
    elif session.status == "closed":
        session = _reopen(session, message, now)
        effects.append(_session_event(session, "RESUMED", now, message["message_id"], reason="new message after close"))
    session.turns += 1
    session.last_activity = now
    session.customer_last_at = max(session.customer_last_at, message["sent_at"].timestamp())
    session.language = nlu.language or session.language or message.get("language")
    _remember_context(session, message)
    session.recent_turns = (session.recent_turns + [f"customer: {message['text'][:500]}"])[-RECENT_TURNS:]
    mid = message["message_id"]

    if session.owner == "agent":  # a person has it: the bot stays silent, keeps the log and the case current
        effects.append(_turn(mid, session, "INBOUND", "CUSTOMER", message["sent_at"], message["text"], nlu, "silent"))
        if session.case_id:
            effects.append(_case_event(session, "UPDATED", "WORKING", session.case_priority, now, mid, session.case_queue))
        return Outcome(session, effects, "silent")

    csat = CSAT_ANSWER.match(message["text"]) if session.csat_pending else None
    if csat:
        session.csat_pending = False
        effects.append(_turn(mid, session, "INBOUND", "CUSTOMER", message["sent_at"], message["text"], nlu, "csat"))
        effects.append(_session_event(session, "CSAT_RECEIVED", now, mid, csat=int(csat.group(1))))
        effects += _bot_says(session, kb, mid, "answer", kb.text("csat_thanks", session.language), now)
        return Outcome(session, effects, "csat")

    if nlu.intent is not None or session.last_intent is None:
        session.last_intent, session.last_confidence, session.last_sentiment = nlu.intent, nlu.confidence, nlu.sentiment
    understood = nlu.intent is not None and nlu.confidence >= policy.min_confidence and kb.has_answer(nlu.intent) \
        or (nlu.intent in policy.escalate_intents and nlu.confidence >= policy.min_confidence)
    reason = escalation_reason(session, nlu, policy, understood)
    if reason:
        route = "handoff"
        effects.append(_turn(mid, session, "INBOUND", "CUSTOMER", message["sent_at"], message["text"], nlu, route))
        effects += _escalate(session, mid, reason, policy, kb, now)
        return Outcome(session, effects, route, reason)
    if understood:
        session.not_understood_in_a_row = 0
        text, route = kb.answer(nlu.intent, session.language, nlu.entities), "answer"
    else:
        session.not_understood_in_a_row += 1
        text, route = kb.text("clarify", session.language), "clarify"
    effects.append(_turn(mid, session, "INBOUND", "CUSTOMER", message["sent_at"], message["text"], nlu, route))
    effects += _bot_says(session, kb, mid, route, text, now)
    return Outcome(session, effects, route)


def _bot_says(session: Session, kb: KnowledgeBase, in_reply_to: str, role: str, text: str, now: float) -> list[Effect]:
    """The one reply to a message (with the automated-assistant notice the first time) and its log turn."""
    if not session.disclosed:
        text = f"{kb.text('disclosure', session.language)}\n\n{text}"
        session.disclosed = True
    reply = _reply(session, in_reply_to, role, text, now)
    session.recent_turns = (session.recent_turns + [f"bot: {text[:500]}"])[-RECENT_TURNS:]
    return [reply, *deliveries(session, reply.record, now),
            _turn(reply.record["message_id"], session, "OUTBOUND", "BOT", ts(now), text, route=role)]


def _escalate(session: Session, mid: str, reason: str, policy: Policy, kb: KnowledgeBase, now: float) -> list[Effect]:
    priority = policy.priority_for(reason)
    queue = policy.queue_for(session.last_intent, session.language, priority)
    effects = _bot_says(session, kb, mid, "handoff", kb.text("handoff", session.language), now)
    first_case = session.case_id is None
    if first_case:
        session.case_id = derive_id("case", session.conversation_id, mid)
    session.case_priority, session.case_queue = priority, queue
    session.owner, session.escalated, session.not_understood_in_a_row = "agent", True, 0
    handoff = {"event_id": derive_id("handoff", session.case_id, "REQUESTED", mid), "in_reply_to": mid,
               "conversation_id": session.conversation_id, "case_id": session.case_id, "state": "REQUESTED",
               "occurred_at": ts(now), "reason": reason, "queue": queue, "agent_id": None, "channel": session.channel,
               "language": session.language}
    effects.append(Effect("conversation.handoff", session.conversation_id, "HandoffEvent", handoff))
    effects.append(_case_event(session, "CREATED" if first_case else "UPDATED", "ESCALATED", priority, now, mid, queue))
    return effects


def handle_handoff(session: Session | None, event: dict, now: float) -> Outcome:
    """An agent desk's ACCEPTED / RELEASED / COMPLETED (our own REQUESTED is ignored)."""
    if session is None or event["state"] == "REQUESTED":
        return Outcome(session, [], "none")
    effects: list[Effect] = []
    state = event["state"]
    if state == "ACCEPTED":
        session.owner, session.agent_id = "agent", event.get("agent_id")
        session.case_queue = event.get("queue") or session.case_queue
        if session.case_id:
            effects.append(_case_event(session, "UPDATED", "WORKING", session.case_priority, now, event["event_id"], session.case_queue))
    elif state == "RELEASED":
        session.owner, session.agent_id, session.not_understood_in_a_row = "bot", None, 0
    elif state == "COMPLETED":
        if session.case_id:
            effects.append(_case_event(session, "CLOSED", "CLOSED", session.case_priority, now, event["event_id"], session.case_queue))
        session.owner, session.agent_id, session.case_id = "bot", None, None
    return Outcome(session, effects, state.lower())


def handle_agent_message(session: Session | None, message: dict, now: float) -> Outcome:
    """A human agent's message: deliver it on the customer's channel, log it and keep the case current."""
    if session is None:  # a conversation this engine does not hold: deliver it, nothing to log it against
        return Outcome(None, deliveries(None, message, now), "agent")
    session.recent_turns = (session.recent_turns + [f"agent: {message['text'][:500]}"])[-RECENT_TURNS:]
    session.last_activity = now
    effects = [*deliveries(session, message, now), _turn(message["message_id"], session, "OUTBOUND", "AGENT", message["created_at"], message["text"],
                     route="agent", agent_id=message.get("agent_id"))]
    if session.case_id:
        effects.append(_case_event(session, "UPDATED", "WORKING", session.case_priority, now, message["message_id"], session.case_queue))
    return Outcome(session, effects, "agent")


def close_if_idle(session: Session, policy: Policy, kb: KnowledgeBase, now: float) -> Outcome:
    """Close a bot-owned session after the inactivity timeout, asking for CSAT where the channel allows."""
    if session.status != "open" or session.owner != "bot" or now - session.last_activity < policy.inactivity_timeout_s:
        return Outcome(session, [], "none")
    cause = f"idle-{session.sequence}"
    session.status, session.closed_at = "closed", now
    effects = [_session_event(session, "CLOSED", now, cause, reason="inactivity")]
    if session.channel in policy.csat_channels:
        reply = _reply(session, derive_id("csat", session.conversation_id, str(session.sequence)), "csat",
                       kb.text("csat", session.language), now, quick_replies=["1", "2", "3", "4", "5"])
        reply.record["in_reply_to"] = None
        session.csat_pending = True
        effects += [_session_event(session, "CSAT_REQUESTED", now, cause), reply, *deliveries(session, reply.record, now)]
    return Outcome(session, effects, "closed")


def session_deadline(session: Session, policy: Policy, retention_s: float) -> float:
    """When the session's timer falls due: a bot-owned open session closes after the inactivity timeout; a closed
    one is deleted after the retention; one a person holds is given up after the retention without activity."""
    if session.status == "open" and session.owner == "bot":
        return session.last_activity + policy.inactivity_timeout_s
    if session.status == "open":
        return session.last_activity + retention_s
    return session.closed_at + retention_s


def timer_action(session: Session, policy: Policy, retention_s: float, now: float) -> str:
    """What a due timer means now: `close` (idle, ask the engine), `purge` (forget the session), or `wait`."""
    if now < session_deadline(session, policy, retention_s):
        return "wait"
    return "close" if session.status == "open" and session.owner == "bot" else "purge"


def _reopen(session: Session, message: dict, now: float) -> Session:
    session.status, session.sequence, session.turns = "open", session.sequence + 1, 0
    session.opened_at, session.not_understood_in_a_row, session.escalated = now, 0, False
    return session


def _remember_context(session: Session, message: dict) -> None:
    meta = message.get("metadata") or {}
    if session.channel == "EMAIL":
        session.metadata = {**session.metadata, "email_message_id": meta.get("email_message_id") or message["channel_message_id"],
                            "references": meta.get("references") or "", "subject": message.get("subject") or "",
                            "business_address": message.get("recipient_id") or ""}


def seen_digest(message_id: str) -> str:
    return hashlib.blake2s(message_id.encode(), digest_size=6).hexdigest()


def was_seen(session: Session, message_id: str) -> bool:
    """True when this message was handled, even if its effects are no longer remembered."""
    return seen_digest(message_id) in session.seen


def remember(session: Session, message_id: str, emitted: list[list[Any]], source: tuple[str, int, int] | None) -> None:
    """Keep what an input produced (the exact bytes), so a replay of it re-emits them instead of deciding again.

    `source` is the input's (topic, partition, offset): `forget_committed` drops the entry once that offset is
    committed. Inputs without one (none today) are kept until the cap pushes them out."""
    session.handled = {**session.handled, message_id: {"at": list(source) if source else None, "effects": emitted}}
    while len(session.handled) > REMEMBERED_MESSAGES:
        session.handled.pop(next(iter(session.handled)))
    session.seen = (session.seen + [seen_digest(message_id)])[-SEEN_MESSAGES:]


def forget_committed(session: Session, committed: Callable[[str, int], Optional[int]]) -> None:
    """Drop the remembered effects of inputs whose offset is committed (`committed(topic, partition)` is the next
    offset the group will read): they were delivered before that commit and are never consumed again."""
    keep = {}
    for message_id, entry in session.handled.items():
        at = entry.get("at")
        if at:
            next_offset = committed(at[0], at[1])
            if next_offset is not None and at[2] < next_offset:
                continue
        keep[message_id] = entry
    if len(keep) != len(session.handled):
        session.handled = keep


def remembered_effects(session: Session, message_id: str) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) of what an input produced, as first emitted."""
    return [(topic, key.encode(), base64.b64decode(value)) for topic, key, value in session.handled[message_id]["effects"]]
