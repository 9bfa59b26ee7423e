"""The conversation engine's Faust agents: sessions, inference in micro-batches, routing, handoff, case events,
the conversation log, and session timers.

The raw channel topics and `conversation.handoff`, `.agent` and `.timer` share the key (conversation id; a raw record
keyed otherwise is moved to its conversation's partition first, `streams.normalize`) and the partition count with
the durable tables, so a conversation's state is local to every input that reads or writes it. A customer message
is decided where its raw record is read: no second hop through `conversation.inbound`, which the engine writes
(the canonical message, first of what it causes) but does not read.

Every input goes through one path (`decide_batch`, then a `Pipeline`):

1. an input whose effects the session remembers is a replay: those bytes are published again, nothing is decided;
2. otherwise it is decided (pure functions of `streams.conversation`, event time only), its effects are encoded
   and remembered on the session, and the session is staged (decisions are synchronous: agents never interleave
   inside one);
3. the pipeline waits until the broker acknowledged every staged write of the batch (state before effects),
4. then publishes the effects, then lets the batch's input events be acknowledged. A commit of their offsets
   follows the delivery of everything published before it, and then the remembered effects are forgotten.

So a crash at any moment leaves either nothing of a decision outside (it is decided again) or its whole state
durable (its remembered effects are re-emitted byte for byte). Idle timeouts are decided the same way: the sweep
only publishes a `SessionTimer` record, and the engine decides the close when it consumes that record.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import orjson
from prometheus_client import Counter, Histogram

from connectors.channels.outbound import UnroutableOutbound
from inference.nlu import Nlu, NluResult, nlu_from_settings
from infra.dead_letters import dead_letter_headers, dead_letter_topic
from infra.settings import get_settings
from schemas.codec import AvroCodec, CodecError
from streams.app import app, changelog_output, output, partition_for, table_options
from streams.conversation import CHANNEL_PAYLOAD, Effect, Outcome, Session, close_if_idle, decode_session, \
    encode_session, forget_committed, handle_agent_message, handle_handoff, handle_inbound, identity_needs_update, \
    identity_of, identity_summary, remember, remembered_effects, session_deadline, timer_action, was_seen
from streams.ids import derive_id
from streams.knowledge_base import KnowledgeBase
from streams.normalize import dedupe, publish_outputs, raw_topics, read_raw
from streams.policy import Policy, PolicyFile
from streams.state import Pipeline, TimerIndex, active_partitions, code_location, durable_table, guarded, recovered

log = logging.getLogger("centralita.engine")
settings = get_settings()
codec = AvroCodec()
policy_file = PolicyFile(settings.routing_policy_file) if settings.routing_policy_file else PolicyFile()
kb = KnowledgeBase.load()
nlu: Nlu = nlu_from_settings(settings)  # Triton by default; CENTRALITA_NLU_BACKEND=rules for the stand-in
PARTITIONS = settings.partitions
RETENTION_S = settings.session_retention_days * 86_400
SWEEP_SLICE = 200
DECIDE_SLICE = 16  # messages decided between two chances for the event loop to run something else
READ_AHEAD = 16  # batches read and waiting to be decided (backpressure on Faust beyond that)
MERGE_LIMIT = 256  # most messages decided (and classified) as one batch

MESSAGES = Counter("centralita_engine_messages_total", "Inbound messages handled", ["channel", "intent", "route"])
ESCALATIONS = Counter("centralita_engine_escalations_total", "Conversations handed to a human", ["channel", "reason"])
REPLAYS = Counter("centralita_engine_replayed_messages_total", "Inputs seen again after a crash (effects re-emitted)")
SKIPPED = Counter("centralita_engine_redelivered_skipped_total", "Inputs seen again long after they were handled (skipped)")
SESSIONS_CLOSED = Counter("centralita_engine_sessions_closed_total", "Sessions closed", ["resolved_by"])
SESSIONS_PURGED = Counter("centralita_engine_sessions_purged_total", "Sessions deleted after the retention (tombstoned)")
REPEAT_CONTACTS = Counter("centralita_engine_repeat_contacts_total", "Sessions reopened within 24 h of closing")
CSAT = Histogram("centralita_engine_csat_score", "Customer satisfaction answers (1..5)", buckets=(1, 2, 3, 4, 5))
CONFIDENCE = Histogram("centralita_engine_intent_confidence", "Intent confidence of inbound messages",
                       buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0))
LATENCY = Histogram("centralita_engine_reply_latency_seconds", "From receiving a message to publishing its reply",
                    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
FORMATTED = Counter("centralita_outbound_messages_total", "Messages formatted for a channel", ["channel", "kind"])
UNDELIVERABLE = Counter("centralita_outbound_dead_letters_total", "Messages dead-lettered: no channel to deliver them to",
                        ["topic"])
DEAD_LETTERS = Counter("centralita_engine_dead_letters_total", "Events the engine could not handle (dead-lettered)", ["topic"])

# Raw bytes, decoded here with fastavro into plain dicts: Faust's record classes cost more than the engine's decision.
INPUT_TOPICS = {"conversation.handoff": ("HandoffEvent", "event_id"),
                "conversation.agent": ("OutboundMessage", "message_id"),
                "conversation.timer": ("SessionTimer", "timer_id")}
topics = {name: app.topic(name, key_type=bytes, value_type=bytes) for name in INPUT_TOPICS}

sessions = durable_table(app, "sessions", PARTITIONS, changelog_output, options=table_options(settings), help="Conversation id -> session (JSON), and its timer index.")
session_timers = TimerIndex(sessions, bucket_s=settings.session_sweep_interval_s)
# Verified identity (phone, email) -> summary of that customer's latest session, on every worker: how a
# customer who switches channel continues the same session and case.
identities = durable_table(app, "identities", PARTITIONS, changelog_output, is_global=True, options=table_options(settings),
                           help="Verified identity -> the customer's latest session summary (JSON).")
identity_timers = TimerIndex(identities, bucket_s=settings.session_sweep_interval_s)
# Every decision reads and stages state synchronously (no await in between), so agents never interleave inside one;
# what waits (persisting, publishing) goes through a Pipeline per agent, in order.
sweep_pipeline = Pipeline(app, (sessions, identities))
# Idle timers this worker published and has not seen decided yet (timer id -> when), so a sweep does not publish
# them again every time; after a restart they are published again (same id: the engine decides them once).
issued_timers: dict[str, float] = {}

#: Bot replies on conversation.outbound say they were delivered already (the engine formats them and publishes their
#: channel payloads itself): conversation.outbound is the record of replies, not a way in. Other systems reach a
#: customer through conversation.agent.
DELIVERED = [("centralita.delivered", b"engine")]


@dataclass(frozen=True)
class Input:
    """One decoded input record and where it came from."""

    topic: str
    partition: int
    offset: int
    id: str
    record: dict
    raw: bytes | None = None  # the raw provider body a customer message came in (dead-lettered as it came)

    @property
    def conversation_id(self) -> str:
        return self.record["conversation_id"]

    @property
    def source(self) -> tuple[str, int, int]:
        return self.topic, self.partition, self.offset


Decide = Callable[[Session | None, Input], Outcome | None]
Record = tuple[str, bytes, bytes]  # topic, key, value


# -- sessions and identities in their durable tables ----------------------------------------------------------

def session_partition(conversation_id: str) -> int:
    return partition_for(conversation_id.encode(), PARTITIONS)


def load_session(conversation_id: str) -> Session | None:
    value = sessions.read(conversation_id.encode(), session_partition(conversation_id))
    return decode_session(value) if value is not None else None


def committed_offset(topic: str, partition: int) -> int | None:
    """The next offset the group reads from (topic, partition): everything before it was delivered and committed."""
    from faust.types import TP

    return app.consumer._committed_offset.get(TP(topic, partition))  # noqa: SLF001 - Faust keeps no public view of it


def save_session(session: Session, policy: Policy) -> None:
    """Stage the session, its timer moved to its next deadline and the effects of committed inputs forgotten."""
    key, partition = session.conversation_id.encode(), session_partition(session.conversation_id)
    forget_committed(session, committed_offset)
    old = session.timer.encode() if session.timer else None
    timer = session_timers.move(key, partition, old, session_deadline(session, policy, RETENTION_S))
    session.timer = timer.decode() if timer else None
    sessions.stage(key, encode_session(session), partition)


def load_identity(identity: str) -> dict | None:
    value = identities.read(identity.encode(), partition_for(identity.encode(), PARTITIONS))
    return orjson.loads(value) if value is not None else None


def remember_identity(identity: str, summary: dict, policy: Policy) -> None:
    """Keep the customer's latest session summary for other channels (only when it changed: the table is replicated
    to every worker), with a timer that forgets it once no channel switch could use it any more."""
    stored = load_identity(identity)
    if not identity_needs_update(stored, summary):
        return
    key, partition = identity.encode(), partition_for(identity.encode(), PARTITIONS)
    old = stored.get("timer", "").encode() if stored else None
    timer = identity_timers.move(key, partition, old or None, summary["at"] + policy.channel_switch_window_s)
    identities.stage(key, orjson.dumps({**summary, "timer": timer.decode() if timer else None}), partition)


# -- effects --------------------------------------------------------------------------------------------------

def encode_effect(effect: Effect) -> bytes:
    if effect.schema == CHANNEL_PAYLOAD:
        payload = effect.record
        blocked = payload.get("blocked") or payload.get("free_text_blocked")
        FORMATTED.labels(payload["channel"], "blocked" if blocked else "sent").inc()
        return orjson.dumps(payload)
    return codec.encode(effect.schema, effect.record)


# -- the one path every input takes ---------------------------------------------------------------------------

def apply(inp: Input, decide: Decide, policy: Policy) -> list[Record]:
    """Replay what an input produced, or decide it: stage the session, return the records to publish."""
    session = load_session(inp.conversation_id)
    if session is not None:
        forget_committed(session, committed_offset)  # a copy of an input committed since is a duplicate, not a replay
    if session is not None and inp.id in session.handled:
        REPLAYS.inc()
        save_session(session, policy)  # its durable copy must hold the entry too (a local store can be ahead of it)
        return remembered_effects(session, inp.id)
    if session is not None and was_seen(session, inp.id):
        SKIPPED.inc()  # handled long ago; its effects were delivered before its offset was committed
        return []
    outcome = decide(session, inp)
    if outcome is None:
        return []
    records = [(effect.topic, effect.key.encode(), encode_effect(effect)) for effect in outcome.effects]
    if outcome.session is not None:
        remember(outcome.session, inp.id, [[t, k.decode(), base64.b64encode(v).decode()] for t, k, v in records], inp.source)
        save_session(outcome.session, policy)
    return records


def decide_batch(inputs: list[Input], decide: Decide) -> list[Record | tuple]:
    """Apply a batch of inputs (synchronously: no other agent runs in between): stage their state, return the records
    to publish once it is durable. An input that cannot be handled becomes a dead letter; the batch goes on."""
    policy = policy_file.current()
    records: list = []
    for inp in inputs:
        try:
            records += apply(inp, decide, policy)
        except Exception as exc:  # noqa: BLE001 - one bad event must not stop the conversation engine
            value = inp.raw if inp.raw is not None else codec.encode(INPUT_TOPICS[inp.topic][0], inp.record)
            records.append(dead_letter(inp.topic, inp.conversation_id.encode(), value, exc, inp.partition, inp.offset))
    return records


def publisher(records: list) -> Callable[[], None]:
    """Hand the records over in order (engine replies marked delivered, dead letters with their headers)."""
    def publish_all() -> None:
        out = output()
        for record in records:
            if len(record) == 4:
                topic, key, value, headers = record
            else:
                (topic, key, value), headers = record, DELIVERED if record[0] == "conversation.outbound" else None
            out.send(topic, value, key, headers)
    return publish_all


def dead_letter(topic: str, key: bytes, value: bytes, error: Exception, partition: int, offset: int) -> tuple[str, bytes, bytes, list]:
    """The dead letter of an input the engine cannot handle: the reason and the error's type in headers (or, for a
    message naming no channel we deliver to, which field is wrong); never the content."""
    if isinstance(error, UnroutableOutbound):
        UNDELIVERABLE.labels(topic).inc()
        reason, detail = "unroutable", str(error)
    else:
        DEAD_LETTERS.labels(topic).inc()
        log.error("engine could not handle an event of %s (%s at %s); dead-lettered", topic, type(error).__name__,
                  code_location(error))
        reason = "undecodable" if isinstance(error, CodecError) else "engine_error"
        detail = type(error).__name__
    return dead_letter_topic(topic), key, value, dead_letter_headers(reason, detail, "engine", topic, partition, offset)


def decode_events(events) -> tuple[list[Input], list[tuple]]:
    """Inputs of a batch of events, and dead letters for values that are not records of the topic's schema."""
    inputs: list[Input] = []
    dead: list[tuple] = []
    for event in events:
        message = event.message
        schema, id_field = INPUT_TOPICS[message.topic]
        try:
            record = codec.decode(event.value, reader=schema)
            inputs.append(Input(message.topic, message.partition, message.offset, record[id_field], record))
        except (CodecError, TypeError, ValueError, KeyError) as exc:
            dead.append(dead_letter(message.topic, event.key or b"", event.value or b"", exc, message.partition,
                                    message.offset))
    return inputs, dead


# -- customer messages ----------------------------------------------------------------------------------------

def needs_decision(inp: Input) -> bool:
    session = load_session(inp.conversation_id)
    return session is None or (inp.id not in session.handled and not was_seen(session, inp.id))


async def classify(fresh: list[Input]) -> dict[str, NluResult]:
    if not fresh:
        return {}
    texts, keys = [i.record["text"] for i in fresh], [i.conversation_id for i in fresh]
    try:
        results = await asyncio.wait_for(nlu.classify_batch(texts, keys), settings.nlu_timeout_s * settings.nlu_attempts + 1.0)
    except Exception as exc:  # noqa: BLE001 - inference down: route as not understood, never stall
        log.warning("inference failed (%s): routing %d messages as not understood", type(exc).__name__, len(fresh))
        results = [NluResult.not_understood() for _ in fresh]
    return {inp.id: result for inp, result in zip(fresh, results)}


def decide_inbound(results: dict[str, NluResult], policy: Policy) -> Decide:
    def decide(session: Session | None, inp: Input) -> Outcome:
        message = inp.record
        result = results.get(inp.id) or NluResult.not_understood()
        identity = identity_of(message)
        previous = load_identity(identity) if identity and session is None else None
        at = message["received_at"].timestamp()  # event time: decided again, it yields the same bytes
        outcome = handle_inbound(session, message, result, policy, kb, at, previous)
        # the canonical message itself goes out with what it caused (and is remembered and replayed with it)
        outcome.effects.insert(0, Effect("conversation.inbound", message["conversation_id"], "InboundMessage", message))
        if identity and outcome.session is not None:
            remember_identity(identity, identity_summary(outcome.session, at), policy)
        observe(outcome, message, result)
        return outcome
    return decide


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


@app.agent(raw_topics, name="conversation-engine")
async def conversation_engine(stream):
    """Raw provider records in, everything a customer message causes out (the canonical message first).

    Two stages. This loop reads each batch Faust hands over (normalize, dedupe) and queues it; `decide_batches`
    takes everything queued at once, so under load its batches grow by themselves (Triton's cost per text falls
    threefold from batches of 8 to 64), classifies them, and decides one while Triton classifies the next."""
    pipeline = Pipeline(app, (dedupe, sessions, identities))
    read: asyncio.Queue = asyncio.Queue(maxsize=READ_AHEAD)
    decider = asyncio.ensure_future(decide_batches(read, pipeline))
    try:
        async for events in stream.take_events(settings.engine_batch_size, within=settings.engine_batch_wait_s):
            await guarded(read_batch(await pipeline.admit(events), read))
    finally:
        decider.cancel()


@dataclass
class ReadBatch:
    """Records read and normalized, waiting to be decided."""

    events: list
    inputs: list[Input]
    passthrough: list  # forwards and dead letters of unreadable bodies


async def read_batch(events, read: asyncio.Queue) -> None:
    batch = ReadBatch(list(events), [], [])
    for event in events:
        raw = read_raw(event)
        batch.passthrough += raw.outputs
        message = event.message
        batch.inputs += [Input(message.topic, message.partition, message.offset, m["message_id"], m, event.value)
                         for m in raw.messages]
    await read.put(batch)


def take_queued(read: asyncio.Queue, first: ReadBatch | None) -> ReadBatch | None:
    """`first` and everything queued behind it, as one batch (at most MERGE_LIMIT inputs)."""
    merged = first
    while not read.empty() and (merged is None or len(merged.inputs) < MERGE_LIMIT):
        batch = read.get_nowait()
        if merged is None:
            merged = batch
        else:
            merged = ReadBatch(merged.events + batch.events, merged.inputs + batch.inputs,
                               merged.passthrough + batch.passthrough)
    return merged


def start_inference(batch: ReadBatch) -> asyncio.Future:
    return asyncio.ensure_future(classify([i for i in batch.inputs if needs_decision(i)]))


async def decide_batches(read: asyncio.Queue, pipeline: Pipeline) -> None:
    current = take_queued(read, await read.get())
    inference = start_inference(current)
    while True:
        results = await inference
        upcoming = take_queued(read, None)
        upcoming_inference = start_inference(upcoming) if upcoming is not None else None  # Triton works meanwhile
        await guarded(decide_and_submit(current, results, pipeline))
        if upcoming is None:
            upcoming = take_queued(read, await read.get())
            upcoming_inference = start_inference(upcoming)
        current, inference = upcoming, upcoming_inference


async def decide_and_submit(batch: ReadBatch, results: dict[str, NluResult], pipeline: Pipeline) -> None:
    decide = decide_inbound(results, policy_file.current())
    records: list = []
    for start in range(0, len(batch.inputs), DECIDE_SLICE):
        records += decide_batch(batch.inputs[start:start + DECIDE_SLICE], decide)
        await asyncio.sleep(0)  # acknowledgements and other agents go through between slices
    publish_records = publisher(records)

    def publish_all() -> None:
        publish_outputs(batch.passthrough)
        publish_records()
    await pipeline.submit(batch.events, publish_all)


# -- agent desk, agents' messages, timers ---------------------------------------------------------------------

def decide_handoff(session: Session | None, inp: Input) -> Outcome | None:
    outcome = handle_handoff(session, inp.record, inp.record["occurred_at"].timestamp())
    if outcome.route == "completed":
        SESSIONS_CLOSED.labels("agent").inc()
    return outcome if outcome.effects or (outcome.session is not None and outcome.route != "none") else None


def decide_agent_message(session: Session | None, inp: Input) -> Outcome:
    return handle_agent_message(session, inp.record, inp.record["created_at"].timestamp())


def decide_timer(session: Session | None, inp: Input) -> Outcome | None:
    """An idle timer, decided as of when the sweep found it due (a replay decides the same)."""
    issued_timers.pop(inp.id, None)
    timer = inp.record
    if session is None or session.sequence != timer["sequence"] or session.status != "open":
        return None
    outcome = close_if_idle(session, policy_file.current(), kb, timer["due_at"].timestamp())
    if outcome.route != "closed":
        return None
    SESSIONS_CLOSED.labels("bot" if not session.escalated else "agent").inc()
    return outcome


def make_agent(topic: str, decide: Decide):
    async def agent(stream):
        pipeline = Pipeline(app, (dedupe, sessions, identities))
        async for events in stream.take_events(settings.engine_batch_size, within=settings.engine_batch_wait_s):
            await guarded(handle(await pipeline.admit(events), pipeline))

    async def handle(events, pipeline: Pipeline) -> None:
        inputs, dead = decode_events(events)
        await pipeline.submit(events, publisher(dead + decide_batch(inputs, decide)))
    agent.__name__ = f"engine_{topic.split('.')[-1]}"
    return agent


handoff_lifecycle = app.agent(topics["conversation.handoff"], name="handoff-lifecycle")(
    make_agent("conversation.handoff", decide_handoff))
agent_message_log = app.agent(topics["conversation.agent"], name="agent-messages")(
    make_agent("conversation.agent", decide_agent_message))
session_timer_agent = app.agent(topics["conversation.timer"], name="session-timers")(
    make_agent("conversation.timer", decide_timer))


# -- the sweep: timers that fell due --------------------------------------------------------------------------

def timer_record(session: Session, now: float) -> Record:
    timer_id = derive_id("timer", session.conversation_id, str(session.sequence), "IDLE")
    record = {"timer_id": timer_id, "conversation_id": session.conversation_id, "channel": session.channel, "kind": "IDLE",
              "sequence": session.sequence, "due_at": datetime.fromtimestamp(now, timezone.utc)}
    return "conversation.timer", session.conversation_id.encode(), codec.encode("SessionTimer", record)


def sweep_due_sessions(partition: int, due: list[tuple[bytes, bytes]], policy: Policy, now: float) -> list[Record]:
    """Stage what the due timers mean (purge, move) and return the idle timers to publish."""
    timers: list[Record] = []
    for index_key, key in due:
        value = sessions.read(key, partition)
        session = decode_session(value) if value is not None else None
        if session is None or session.timer != index_key.decode():
            sessions.stage(index_key, None, partition)  # a deadline that moved on
            continue
        action = timer_action(session, policy, RETENTION_S, now)
        if action == "close":
            timer_id = derive_id("timer", session.conversation_id, str(session.sequence), "IDLE")
            if now - issued_timers.get(timer_id, 0.0) > max(60.0, 2 * settings.session_sweep_interval_s):
                issued_timers[timer_id] = now
                timers.append(timer_record(session, now))
        elif action == "purge":
            sessions.stage(key, None, partition)
            sessions.stage(index_key, None, partition)
            SESSIONS_PURGED.inc()
        elif session_timers.key(session_deadline(session, policy, RETENTION_S), key) != index_key:
            save_session(session, policy)  # the policy's timeout changed: move the deadline
    return timers


def sweep_due_identities(partition: int, due: list[tuple[bytes, bytes]], policy: Policy, now: float) -> None:
    for index_key, key in due:
        stored = identities.read(key, partition)
        summary = orjson.loads(stored) if stored is not None else None
        if summary is not None and summary.get("timer") == index_key.decode():
            if float(summary.get("at", 0)) + policy.channel_switch_window_s > now:
                continue
            identities.stage(key, None, partition)
        identities.stage(index_key, None, partition)


async def sweep_partition(partition: int, index: TimerIndex, sweep: Callable, policy: Policy, now: float) -> None:
    """The due timers of one partition, a slice at a time (messages go through between slices)."""
    after = None
    while True:
        due = list(index.due(partition, now, after=after, limit=SWEEP_SLICE))
        if not due:
            break
        timers = sweep(partition, due, policy, now) or []
        await sweep_pipeline.submit((), publisher(timers))
        after = due[-1][0]
        await asyncio.sleep(0)
    await sweep_pipeline.drain()


@app.timer(interval=settings.session_sweep_interval_s)
async def sweep_timers() -> None:
    """Timers that fell due in the partitions this worker owns: idle sessions (a SessionTimer each), sessions and
    identities past their retention (tombstoned)."""
    if not recovered(app):
        return
    policy, now = policy_file.current(), time.time()
    for partition in sorted(active_partitions(app, sessions)):
        await sweep_partition(partition, session_timers, sweep_due_sessions, policy, now)
        await sweep_partition(partition, identity_timers, sweep_due_identities, policy, now)


__all__ = ["conversation_engine", "handoff_lifecycle", "agent_message_log", "session_timer_agent", "sweep_timers",
           "load_session", "sessions", "identities", "DELIVERED"]
