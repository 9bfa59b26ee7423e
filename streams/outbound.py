"""Outbound agent: OutboundMessage (bot replies on `conversation.outbound`, agent messages on
`conversation.agent`) to `channel.<source>.outbound`, formatted for the channel's limits.

The channel rules that depend on time (WhatsApp's 24-hour window, Messenger's messaging window) need the time
of the customer's last message: a table fed from `conversation.inbound`, co-partitioned with the outbound
topics (same key, same partition count), so each lookup is local.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from prometheus_client import Counter

from connectors.channels.outbound import UnroutableOutbound, format_outbound
from infra.dead_letters import dead_letter_headers, dead_letter_topic
from schemas.codec import AvroCodec
from schemas.faust_codec import codec_for, to_plain
from schemas.records import InboundMessage, OutboundMessage
from schemas.topics import SOURCES, topic as catalog_topic
from streams.app import app

FORMATTED = Counter("centralita_outbound_messages_total", "Messages formatted for a channel", ["channel", "kind"])
UNDELIVERABLE = Counter("centralita_outbound_dead_letters_total", "Outbound messages dead-lettered (no channel to deliver to)",
                        ["topic"])
codec = AvroCodec()

inbound = app.topic("conversation.inbound", key_type=bytes, value_type=InboundMessage, value_serializer=codec_for("InboundMessage"))
replies = app.topic("conversation.outbound", key_type=bytes, value_type=OutboundMessage, value_serializer=codec_for("OutboundMessage"))
agent_messages = app.topic("conversation.agent", key_type=bytes, value_type=OutboundMessage, value_serializer=codec_for("OutboundMessage"))
channel_topics = {source: app.topic(f"channel.{source}.outbound", key_type=bytes, value_type=bytes) for source in SOURCES}
dead_letter_topics = {name: app.topic(dead_letter_topic(name), key_type=bytes, value_type=bytes)
                      for name in ("conversation.outbound", "conversation.agent")}
last_customer_message = app.Table("last-customer-message", default=float,
                                  partitions=catalog_topic("conversation.inbound").partitions)


@app.agent(inbound, name="track-customer-messages")
async def track_customer_messages(stream):
    async for message in stream:
        sent = message.sent_at.timestamp()
        if sent > last_customer_message[message.conversation_id]:
            last_customer_message[message.conversation_id] = sent


async def deliver(message: OutboundMessage) -> None:
    last = last_customer_message[message.conversation_id]
    last_at = datetime.fromtimestamp(last, timezone.utc) if last else None
    source, payloads = format_outbound(to_plain(message), customer_last_message_at=last_at)
    for payload in payloads:
        kind = "blocked" if payload.get("blocked") or payload.get("free_text_blocked") else "sent"
        FORMATTED.labels(message.channel, kind).inc()
        await channel_topics[source].send(key=message.conversation_id.encode(),
                                          value=json.dumps(payload, ensure_ascii=False).encode())


async def deliver_or_dead_letter(event) -> None:
    """Deliver one outbound event; one that names no channel we serve goes to the topic's dead-letter topic with
    the reason, instead of crashing the agent (which would stall its partition)."""
    try:
        await deliver(event.value)
    except UnroutableOutbound as exc:
        topic = event.message.topic
        UNDELIVERABLE.labels(topic).inc()
        await dead_letter_topics[topic].send(
            key=event.key, value=codec.encode("OutboundMessage", to_plain(event.value)),
            headers=dead_letter_headers("unroutable", str(exc), "outbound", topic, event.message.partition,
                                        event.message.offset))


@app.agent(replies, name="format-replies")
async def format_replies(stream):
    async for event in stream.events():
        await deliver_or_dead_letter(event)


@app.agent(agent_messages, name="format-agent-messages")
async def format_agent_messages(stream):
    async for event in stream.events():
        await deliver_or_dead_letter(event)
