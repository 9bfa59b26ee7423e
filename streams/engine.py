"""The conversation engine's Faust agents: sessions, inference in micro-batches, routing, handoff, case events,
the conversation log, and session timeouts.

`conversation.inbound`, `conversation.handoff` and `conversation.agent` share the key (conversation id) and the
partition count, so the `sessions` table is local to every event that reads or writes it. Effects are
published as single-object Avro with deterministic ids; the effects of the last messages of each session are
kept in the session and re-emitted, not recomputed, when a message is delivered again after a crash.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from typing import Callable

from prometheus_client import Counter, Histogram

from inference.nlu import Nlu, NluResult, nlu_from_settings
from infra.dead_letters import dead_letter_headers, dead_letter_topic
from infra.settings import get_settings
from schemas.codec import AvroCodec, CodecError
from schemas.faust_codec import codec_for, to_plain
from schemas.records import HandoffEvent, OutboundMessage
from schemas.topics import topic as catalog_topic
from streams.app import app, send_record
from streams.conversation import CHANNEL_PAYLOAD, Effect, Outcome, Session, close_if_idle, handle_agent_message, handle_handoff, \
    handle_inbound, identity_needs_update, identity_of, identity_summary, remember, was_seen
from streams.knowledge_base import KnowledgeBase
from streams.policy import Policy, PolicyFile

log = logging.getLogger("centralita.engine")
settings = get_settings()
codec = AvroCodec()
policy_file = PolicyFile(settings.routing_policy_file) if settings.routing_policy_file else PolicyFile()
kb = KnowledgeBase.load()
nlu: Nlu = nlu_from_settings(settings)  # Triton by default; CENTRALITA_NLU_BACKEND=rules for the stand-in

MESSAGES = Counter("centralita_engine_messages_total", "Inbound messages handled", ["channel", "intent", "route"])
ESCALATIONS = Counter("centralita_engine_escalations_total", "Conversations handed to a human", ["channel", "reason"])
REPLAYS = Counter("centralita_engine_replayed_messages_total", "Messages seen again after a crash (effects re-emitted)")
SKIPPED = Counter("centralita_engine_redelivered_skipped_total", "Messages seen again long after they were handled (skipped)")
SESSIONS_CLOSED = Counter("centralita_engine_sessions_closed_total", "Sessions closed", ["resolved_by"])
REPEAT_CONTACTS = Counter("centralita_engine_repeat_contacts_total", "Sessions reopened within 24 h of closing")
CSAT = Histogram("centralita_engine_csat_score", "Customer satisfaction answers (1..5)", buckets=(1, 2, 3, 4, 5))
CONFIDENCE = Histogram("centralita_engine_intent_confidence", "Intent confidence of inbound messages",
                       buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0))
LATENCY = Histogram("centralita_engine_reply_latency_seconds", "From receiving a message to publishing its reply",
                    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

# Raw bytes, decoded here with fastavro into plain dicts: Faust's record classes cost more than the engine's decision.
inbound = app.topic("conversation.inbound", key_type=bytes, value_type=bytes)
handoffs = app.topic("conversation.handoff", key_type=bytes, value_type=HandoffEvent,
                     value_serializer=codec_for("HandoffEvent"))
agent_messages = app.topic("conversation.agent", key_type=bytes, value_type=OutboundMessage,
                           value_serializer=codec_for("OutboundMessage"))
dead_letters = {name: app.topic(dead_letter_topic(name), key_type=bytes, value_type=bytes)
                for name in ("conversation.inbound", "conversation.handoff", "conversation.agent")}
FORMATTED = Counter("centralita_outbound_messages_total", "Messages formatted for a channel", ["channel", "kind"])
DEAD_LETTERS = Counter("centralita_engine_dead_letters_total", "Events the engine could not handle (dead-lettered)", ["topic"])


async def dead_letter(topic: str, schema: str, record, error: Exception) -> None:
    """An event the engine cannot handle goes to the topic's dead-letter topic with the error's type; the agent
    goes on (a crashing agent would stall its partitions). Only the type is logged: messages may hold text."""
    plain = record if isinstance(record, dict) else to_plain(record)
    await dead_letter_raw(topic, plain["conversation_id"].encode(), codec.encode(schema, plain), error)


async def dead_letter_raw(topic: str, key: bytes, value: bytes, error: Exception) -> None:
    DEAD_LETTERS.labels(topic).inc()
    log.error("engine could not handle an event of %s (%s); dead-lettered", topic, type(error).__name__)
    reason = "undecodable" if isinstance(error, CodecError) else "engine_error"
    await dead_letters[topic].send(key=key, value=value,
                                   headers=dead_letter_headers(reason, type(error).__name__, "engine", topic, -1, -1))
sessions = app.Table("sessions", value_type=Session, partitions=catalog_topic("conversation.inbound").partitions,
                     use_partitioner=True)
# Verified identity (phone, email) -> summary of that customer's latest session, on every worker: how a
# customer who switches channel continues the same session and case.
identities = app.GlobalTable("identities", key_type=str, value_type=bytes, use_partitioner=True,
                             partitions=catalog_topic("conversation.inbound").partitions)
# The engine, the handoff and agent-message agents and the idle-session timer all read-modify-write sessions
# across awaits (sends); one lock per worker makes each of those steps atomic. Partitions are never shared
# between workers, so a process-wide lock is enough.
session_lock = asyncio.Lock()


#: Bot replies on conversation.outbound say they were delivered already (the engine formats them itself), so the
#: outbound agent leaves them alone and formats only replies other systems publish there.
DELIVERED = [("centralita.delivered", b"engine")]


def count_formatted(payload: dict) -> None:
    blocked = payload.get("blocked") or payload.get("free_text_blocked")
    FORMATTED.labels(payload["channel"], "blocked" if blocked else "sent").inc()


def encode(effect: Effect) -> bytes:
    if effect.schema == CHANNEL_PAYLOAD:
        return json.dumps(effect.record, ensure_ascii=False).encode()
    return codec.encode(effect.schema, effect.record)


async def emit(topic: str, key: str, value: bytes) -> None:
    await send_record(topic, key.encode(), value, DELIVERED if topic == "conversation.outbound" else None)


async def publish(outcome: Outcome, message_id: str) -> None:
    """Encode and send the effects, and remember them on the session for replays."""
    emitted = []
    for effect in outcome.effects:
        value = encode(effect)
        if effect.schema == CHANNEL_PAYLOAD:
            count_formatted(effect.record)
        emitted.append([effect.topic, effect.key, base64.b64encode(value).decode()])
        await emit(effect.topic, effect.key, value)
    if outcome.session is not None:
        remember(outcome.session, message_id, emitted)
        sessions[outcome.session.conversation_id] = outcome.session


async def replay(session: Session, message_id: str) -> None:
    """Send again exactly what a message produced the first time (same bytes, same ids)."""
    REPLAYS.inc()
    for topic, key, value in session.handled[message_id]:
        await emit(topic, key, base64.b64decode(value))


def observe(outcome: Outcome, message: dict, result: NluResult) -> None:
    MESSAGES.labels(message["channel"], result.intent or "none", outcome.route).inc()
    CONFIDENCE.observe(result.confidence)
    if outcome.route == "handoff":
        ESCALATIONS.labels(message["channel"], outcome.reason or "unknown").inc()
    if outcome.route in ("answer", "clarify", "handoff", "csat"):
        LATENCY.observe(max(0.0, time.time() - message["received_at"].timestamp()))
    for effect in outcome.effects:
        if effect.schema == "SessionEvent" and effect.record["type"] == "CSAT_RECEIVED":
            CSAT.observe(effect.record["csat_score"])
        if effect.schema == "SessionEvent" and effect.record["type"] == "RESUMED" and outcome.session is not None \
                and outcome.session.closed_at and time.time() - outcome.session.closed_at < 86_400:
            REPEAT_CONTACTS.inc()


def decode_inbound(values: list[bytes]) -> tuple[list[dict], list[tuple[bytes, Exception]]]:
    """InboundMessage records, and the values that are not one (dead-lettered as they are)."""
    messages, broken = [], []
    for value in values:
        try:
            messages.append(codec.decode(value, reader="InboundMessage"))
        except (CodecError, TypeError, ValueError) as exc:
            broken.append((value, exc))
    return messages, broken


@app.agent(inbound, name="conversation-engine")
async def conversation_engine(stream):
    async for batch in stream.take(settings.engine_batch_size, within=settings.engine_batch_wait_s):
        messages, broken = decode_inbound(batch)
        for value, exc in broken:
            await dead_letter_raw("conversation.inbound", b"", value, exc)
        fresh = []
        for message in messages:
            session = sessions.get(message["conversation_id"])
            if session is not None and message["message_id"] in session.handled:
                await replay(session, message["message_id"])
            elif session is not None and was_seen(session, message["message_id"]):
                SKIPPED.inc()  # handled long ago; its effects were delivered before any later message's
            else:
                fresh.append(message)
        if not fresh:
            continue
        try:
            results = await asyncio.wait_for(nlu.classify_batch([m["text"] for m in fresh], [m["conversation_id"] for m in fresh]),
                                             settings.nlu_timeout_s * settings.nlu_attempts + 1.0)
        except Exception as exc:  # noqa: BLE001 - inference down: route as not understood, never stall
            log.warning("inference failed (%s): routing %d messages as not understood", type(exc).__name__, len(fresh))
            results = [NluResult.not_understood() for _ in fresh]
        policy = policy_file.current()
        for message, result in zip(fresh, results):
            async with session_lock:
                try:
                    await handle_one(message, result, policy)
                except Exception as exc:  # noqa: BLE001 - one bad event must not stop the conversation engine
                    await dead_letter("conversation.inbound", "InboundMessage", message, exc)


async def handle_one(message: dict, result: NluResult, policy: Policy) -> None:
    """One inbound message, under the session lock: replay what it produced before, or decide and publish."""
    session = sessions.get(message["conversation_id"])
    if session is not None and message["message_id"] in session.handled:  # twice in one batch
        await replay(session, message["message_id"])
        return
    if session is not None and was_seen(session, message["message_id"]):
        SKIPPED.inc()
        return
    identity = identity_of(message)
    stored = identities.get(identity) if identity and session is None else None
    previous = json.loads(stored) if stored else None
    # Event time, not wall time: a message decided again after a crash yields byte-identical effects.
    at = message["received_at"].timestamp()
    outcome = handle_inbound(session, message, result, policy, kb, at, previous)
    await publish(outcome, message["message_id"])
    if identity and outcome.session is not None:
        remember_identity(identity, identity_summary(outcome.session, at))
    observe(outcome, message, result)


def remember_identity(identity: str, summary: dict) -> None:
    """Keep the customer's latest session summary for other channels (only when it changed: the table is replicated
    to every worker)."""
    stored = identities.get(identity)
    if identity_needs_update(json.loads(stored) if stored is not None else None, summary):
        identities[identity] = json.dumps(summary).encode()


async def apply_event(conversation_id: str, event_id: str, decide: Callable[[Session | None], Outcome]) -> Outcome | None:
    """A handoff step or an agent message, under the session lock: replay it if seen, else decide and publish."""
    async with session_lock:
        session = sessions.get(conversation_id)
        if session is not None and event_id in session.handled:
            await replay(session, event_id)
            return None
        if session is not None and was_seen(session, event_id):
            SKIPPED.inc()
            return None
        outcome = decide(session)
        if outcome.effects or (outcome.session is not None and outcome.route != "none"):
            await publish(outcome, event_id)
        return outcome


@app.agent(handoffs, name="handoff-lifecycle")
async def handoff_lifecycle(stream):
    async for event in stream:
        try:
            outcome = await apply_event(event.conversation_id, event.event_id,
                                        lambda session: handle_handoff(session, to_plain(event), event.occurred_at.timestamp()))
        except Exception as exc:  # noqa: BLE001
            await dead_letter("conversation.handoff", "HandoffEvent", event, exc)
            continue
        if outcome is not None and outcome.route == "completed":
            SESSIONS_CLOSED.labels("agent").inc()


@app.agent(agent_messages, name="agent-messages")
async def agent_message_log(stream):
    async for message in stream:
        try:
            await apply_event(message.conversation_id, message.message_id,
                              lambda session: handle_agent_message(session, to_plain(message), message.created_at.timestamp()))
        except Exception as exc:  # noqa: BLE001
            await dead_letter("conversation.agent", "OutboundMessage", message, exc)


SWEEP_SLICE = 200


@app.timer(interval=settings.session_sweep_interval_s)
async def close_idle_sessions() -> None:
    """Close sessions idle past the policy's timeout (only those of partitions this worker owns)."""
    policy = policy_file.current()
    now = time.time()
    for checked, conversation_id in enumerate(list(sessions.keys())):
        if checked % SWEEP_SLICE == SWEEP_SLICE - 1:
            await asyncio.sleep(0)  # tens of thousands of sessions: let messages through between slices
        async with session_lock:
            session = sessions.get(conversation_id)
            if session is None:
                continue
            outcome = close_if_idle(session, policy, kb, now)
            if outcome.route == "closed":
                SESSIONS_CLOSED.labels("bot" if not session.escalated else "agent").inc()
                await publish(outcome, f"close-{conversation_id}-{session.sequence}")


__all__ = ["conversation_engine", "handoff_lifecycle", "agent_message_log", "close_idle_sessions", "Effect"]
