"""Raw records to canonical messages, once per provider message: the first step of the conversation engine.

Raw records come from the gateway (keyed by conversation id, with `centralita.*` headers) or straight from a
messaging integration (any key or none, no headers). Both are first-class:

- **Time** is the gateway's `centralita.received_at` header, else the Kafka record's timestamp: never the clock of
  the worker, so a record read again after a crash yields the same bytes.
- **Where a message is decided**: on the partition its conversation id hashes to, where its session lives (every
  topic the worker reads has the same partition count). A record that arrived on another partition (an integration
  keyed it otherwise, or not at all) is forwarded there once, byte for byte, with its time and a
  `centralita.forwarded` header; the copy is the one decided. So a provider's redelivery always meets the first
  delivery's dedupe entry, whichever partition it was published to.
- **Dedupe** (durable table `inbound-message-ids`, co-partitioned with the raw topics): the entry names the raw
  record that first carried the message. That record, read again after a crash, is a replay and goes on to the
  engine (which re-emits what it decided); any other record carrying the message is a redelivery and is dropped.
  The entry is durable before anything the message causes leaves (the engine persists it with the session), and
  it expires after CENTRALITA_DEDUPE_DAYS (a tombstone).

Invalid events go to the raw topic's dead-letter topic, unchanged, with the reason in headers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson
from prometheus_client import Counter

from connectors.channels import InvalidPayload, RawEvent, normalize as normalize_raw
from infra.dead_letters import dead_letter_headers, dead_letter_topic
from infra.settings import get_settings
from schemas.topics import SOURCES
from streams.app import app, changelog_output, output, partition_for, table_options
from streams.state import Pipeline, TimerIndex, active_partitions, durable_table, recovered

log = logging.getLogger("centralita.normalize")
settings = get_settings()

NORMALIZED = Counter("centralita_inbound_messages_total", "Canonical inbound messages", ["channel"])
DUPLICATES = Counter("centralita_inbound_duplicates_total", "Provider redeliveries dropped", ["source"])
IGNORED = Counter("centralita_inbound_ignored_total", "Provider events that are not customer messages", ["source"])
INVALID = Counter("centralita_inbound_dead_letters_total", "Raw events dead-lettered", ["source"])
FORWARDED = Counter("centralita_inbound_forwarded_total", "Raw records moved to their conversation's partition", ["source"])
EXPIRED = Counter("centralita_inbound_dedupe_expired_total", "Dedupe entries past CENTRALITA_DEDUPE_DAYS, tombstoned")

RECEIVED_AT_HEADER = "centralita.received_at"
FORWARDED_HEADER = "centralita.forwarded"
HTTP_HEADER_PREFIX = "http."
DEDUPE_WINDOW_S = settings.dedupe_days * 86_400
SWEEP_SLICE = 500

SOURCE_OF_TOPIC = {f"channel.{source}.inbound.raw": source for source in SOURCES}
raw_topics = app.topic(*SOURCE_OF_TOPIC, key_type=bytes, value_type=bytes)
dedupe = durable_table(app, "inbound-message-ids", settings.partitions, changelog_output, options=table_options(settings),
                       help="Provider message id -> the raw record that first carried it; expires after the dedupe window.")
dedupe_timers = TimerIndex(dedupe, bucket_s=max(1.0, DEDUPE_WINDOW_S / 64))
expiry_pipeline = Pipeline(app, (dedupe,))


@dataclass(frozen=True)
class Output:
    """A record to publish as it is (a forward to another partition, a dead letter)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None = None
    partition: int | None = None


@dataclass
class RawRead:
    """What one raw record holds for this partition: canonical messages to decide (new ones and replays), and
    records to publish as they are."""

    messages: list[dict] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)


def header_map(event) -> dict[str, bytes]:
    headers = event.headers or {}
    return dict(headers.items()) if isinstance(headers, dict) else dict(headers)


def received_ms(headers: dict[str, bytes], record_timestamp_s: float | None) -> int:
    """When the message reached us: the gateway's header, else the Kafka record's timestamp (deterministic)."""
    value = headers.get(RECEIVED_AT_HEADER)
    if value:
        try:
            return int(value)
        except ValueError:
            pass
    return round((record_timestamp_s or 0.0) * 1000)


def raw_event(source: str, body: bytes, headers: dict[str, bytes], at_ms: int) -> RawEvent:
    """Rebuild the RawEvent the gateway saw from a raw topic record."""
    http = {k[len(HTTP_HEADER_PREFIX):]: v.decode("latin-1") for k, v in headers.items() if k.startswith(HTTP_HEADER_PREFIX)}
    return RawEvent(source=source, body=body or b"", headers=http,
                    received_at=datetime.fromtimestamp(at_ms / 1000, timezone.utc))


def first_delivery(message: dict, partition: int, source_record: str, at_ms: int) -> bool:
    """Whether this record is the one that first carried the message (new, or read again after a crash); stages the
    dedupe entry of a new one. False for a redelivery."""
    key = message["message_id"].encode()
    stored = dedupe.read(key, partition)
    if stored is not None:
        if orjson.loads(stored)["src"] != source_record:
            DUPLICATES.labels(message["source"]).inc()
            return False
        return True
    timer = dedupe_timers.move(key, partition, None, at_ms / 1000 + DEDUPE_WINDOW_S)
    dedupe.stage(key, orjson.dumps({"src": source_record, "at": at_ms, "timer": timer.decode()}), partition)
    NORMALIZED.labels(message["channel"]).inc()
    return True


def read_raw(event) -> RawRead:
    """Canonical messages of one raw record that belong to this partition, a forward of the others, or a dead letter."""
    topic, partition, offset = event.message.topic, event.message.partition, event.message.offset
    source = SOURCE_OF_TOPIC[topic]
    headers = header_map(event)
    at_ms = received_ms(headers, event.message.timestamp)
    read = RawRead()
    try:
        messages = normalize_raw(raw_event(source, event.value, headers, at_ms))
    except InvalidPayload as exc:
        INVALID.labels(source).inc()
        read.outputs.append(Output(dead_letter_topic(topic), event.key, event.value or b"",
                                   dead_letter_headers("invalid_payload", exc.reason, "normalize", topic, partition, offset)))
        return read
    if not messages:
        IGNORED.labels(source).inc()
    elsewhere: dict[int, bytes] = {}
    for message in messages:
        home = partition_for(message["conversation_id"].encode(), settings.partitions)
        if home == partition:
            if first_delivery(message, partition, f"{partition}/{offset}", at_ms):
                read.messages.append(message)
        elif FORWARDED_HEADER not in headers:  # a forwarded copy leaves its other messages to their own copies
            elsewhere.setdefault(home, message["conversation_id"].encode())
    for home, key in elsewhere.items():
        FORWARDED.labels(source).inc()
        kept = [(k, v) for k, v in headers.items() if k not in (RECEIVED_AT_HEADER, FORWARDED_HEADER)]
        read.outputs.append(Output(topic, key, event.value, [*kept, (RECEIVED_AT_HEADER, str(at_ms).encode()),
                                                             (FORWARDED_HEADER, f"{partition}/{offset}".encode())], home))
    return read


def publish_outputs(outputs: list[Output]) -> None:
    out = output()
    for item in outputs:
        out.send(item.topic, item.value, item.key, item.headers, item.partition)


@app.timer(interval=settings.session_sweep_interval_s)
async def expire_dedupe_entries() -> None:
    """Tombstone dedupe entries older than the window (only in the partitions this worker owns)."""
    if not recovered(app):
        return
    now = time.time()
    for partition in sorted(active_partitions(app, dedupe)):
        after = None
        while True:
            due = list(dedupe_timers.due(partition, now, after=after, limit=SWEEP_SLICE))
            if not due:
                break
            for index_key, key in due:
                stored = dedupe.read(key, partition)
                entry = orjson.loads(stored) if stored is not None else None
                if entry is not None and entry.get("timer") == index_key.decode():
                    if entry["at"] / 1000 + DEDUPE_WINDOW_S > now:
                        continue  # in the current bucket, not quite due
                    dedupe.stage(key, None, partition)
                    EXPIRED.inc()
                dedupe.stage(index_key, None, partition)
            after = due[-1][0]
            await expiry_pipeline.submit((), lambda: None)
        await expiry_pipeline.drain()
