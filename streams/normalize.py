"""Normalization agent: `channel.<source>.inbound.raw` to `conversation.inbound`, once per provider message.

Raw topics are keyed by conversation (the gateway computes it), so a conversation's events stay in order on
one partition and a redelivery lands where the first delivery did: the dedupe table (a changelog-backed
windowed table of message ids) is local to that partition. Invalid events go to the raw topic's dead-letter
topic, unchanged, with the reason in headers.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from prometheus_client import Counter

from connectors.channels import InvalidPayload, RawEvent, normalize as normalize_raw
from infra.dead_letters import dead_letter_headers, dead_letter_topic
from infra.settings import get_settings
from schemas.codec import AvroCodec
from schemas.topics import SOURCES, topic as catalog_topic
from streams.app import app, send_record

log = logging.getLogger("centralita.normalize")
settings = get_settings()

NORMALIZED = Counter("centralita_inbound_messages_total", "Canonical inbound messages", ["channel"])
DUPLICATES = Counter("centralita_inbound_duplicates_total", "Provider redeliveries dropped", ["source"])
IGNORED = Counter("centralita_inbound_ignored_total", "Provider events that are not customer messages", ["source"])
INVALID = Counter("centralita_inbound_dead_letters_total", "Raw events dead-lettered", ["source"])

RECEIVED_AT_HEADER = "centralita.received_at"
HTTP_HEADER_PREFIX = "http."

codec = AvroCodec()
raw_topics = {source: app.topic(f"channel.{source}.inbound.raw", key_type=bytes, value_type=bytes) for source in SOURCES}
dead_letter_topics = {source: app.topic(dead_letter_topic(f"channel.{source}.inbound.raw"), key_type=bytes,
                                        value_type=bytes) for source in SOURCES}
# message id -> when it was first seen (epoch seconds). A plain changelog-backed table: its lookups are local
# to the partition the conversation's raw events live on. (Faust's windowed tables would expire old ids, but
# their reads disagreed with their writes in tests here, so they are not used.)
seen = app.Table("inbound-message-ids", default=float, partitions=catalog_topic("channel.webchat.inbound.raw").partitions)


def raw_event(source: str, body: bytes, headers: dict[str, bytes]) -> RawEvent:
    """Rebuild the RawEvent the gateway saw from a raw topic record."""
    received_ms = headers.get(RECEIVED_AT_HEADER)
    try:
        received_at = datetime.fromtimestamp(int(received_ms) / 1000, timezone.utc) if received_ms else datetime.now(timezone.utc)
    except ValueError:
        received_at = datetime.now(timezone.utc)
    http = {k[len(HTTP_HEADER_PREFIX):]: v.decode("latin-1") for k, v in headers.items() if k.startswith(HTTP_HEADER_PREFIX)}
    return RawEvent(source=source, body=body or b"", headers=http, received_at=received_at)


def already_seen(message_id: str, now: float) -> bool:
    """True when the id was seen within the dedupe window (providers redeliver for days)."""
    first_seen = seen[message_id]
    return bool(first_seen) and now - first_seen < settings.dedupe_days * 86_400


def make_agent(source: str):
    async def normalize_source(stream):
        async for event in stream.events():
            headers = {k: v for k, v in (event.headers or {}).items()} if isinstance(event.headers, dict) \
                else {k: v for k, v in (event.headers or [])}
            try:
                messages = normalize_raw(raw_event(source, event.value, headers))
            except InvalidPayload as exc:
                INVALID.labels(source).inc()
                await dead_letter_topics[source].send(
                    key=event.key, value=event.value,
                    headers=dead_letter_headers("invalid_payload", exc.reason, "normalize", event.message.topic,
                                                event.message.partition, event.message.offset))
                continue
            if not messages:
                IGNORED.labels(source).inc()
            for message in messages:
                now = time.time()
                if already_seen(message["message_id"], now):
                    DUPLICATES.labels(source).inc()
                    continue
                seen[message["message_id"]] = now
                await send_record("conversation.inbound", message["conversation_id"].encode(),
                                  codec.encode("InboundMessage", message))
                NORMALIZED.labels(message["channel"]).inc()
    normalize_source.__name__ = f"normalize_{source}"
    return normalize_source


for _source, _topic in raw_topics.items():
    app.agent(_topic, name=f"normalize-{_source}")(make_agent(_source))
