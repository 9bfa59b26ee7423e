"""Outbound agent: replies that other systems publish on `conversation.outbound`, formatted for their channel.

The engine formats its own replies and agent messages and publishes their channel payloads itself (one Kafka hop
fewer per message); its records on conversation.outbound carry the `centralita.delivered` header and are left
alone here. Anything else published there (a proactive notice, another bot) is formatted for the channel's
limits and windows with the customer's last message time from the `sessions` table, which is co-partitioned
with conversation.outbound (same key, same partition count), so the lookup is local.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from prometheus_client import Counter

from connectors.channels.outbound import UnroutableOutbound, format_outbound
from infra.dead_letters import dead_letter_headers, dead_letter_topic
from schemas.codec import AvroCodec, CodecError
from streams.app import app, send_record
from streams.engine import DELIVERED, FORMATTED, load_session
from streams.state import guarded

UNDELIVERABLE = Counter("centralita_outbound_dead_letters_total", "Outbound messages dead-lettered (no channel to deliver to)",
                        ["topic"])
codec = AvroCodec()

replies = app.topic("conversation.outbound", key_type=bytes, value_type=bytes)
dead_letters = app.topic(dead_letter_topic("conversation.outbound"), key_type=bytes, value_type=bytes)


async def deliver(message: dict) -> None:
    """Format as of the message's own creation time (a replay formats the same), with the customer's last message
    time from the session for the channels' windows."""
    session = load_session(message["conversation_id"])
    last = session.customer_last_at if session is not None else 0.0
    last_at = datetime.fromtimestamp(last, timezone.utc) if last else None
    source, payloads = format_outbound(message, customer_last_message_at=last_at, now=message["created_at"])
    for payload in payloads:
        blocked = payload.get("blocked") or payload.get("free_text_blocked")
        FORMATTED.labels(payload["channel"], "blocked" if blocked else "sent").inc()
        await send_record(f"channel.{source}.outbound", message["conversation_id"].encode(),
                          json.dumps(payload, ensure_ascii=False).encode())


async def deliver_or_dead_letter(event) -> None:
    """Deliver one outbound record; one that does not decode or names no channel we serve goes to the topic's
    dead-letter topic with the reason, instead of crashing the agent (which would stall its partition)."""
    try:
        await deliver(codec.decode(event.value, reader="OutboundMessage"))
    except (UnroutableOutbound, CodecError) as exc:
        topic = event.message.topic
        UNDELIVERABLE.labels(topic).inc()
        reason = "unroutable" if isinstance(exc, UnroutableOutbound) else "undecodable"
        await dead_letters.send(key=event.key, value=event.value,
                                headers=dead_letter_headers(reason, str(exc), "outbound", topic, event.message.partition,
                                                            event.message.offset))


@app.agent(replies, name="format-replies")
async def format_replies(stream):
    async for event in stream.events():
        headers = dict(event.headers) if not isinstance(event.headers, dict) else event.headers
        if headers.get(DELIVERED[0][0]) != DELIVERED[0][1]:  # else the engine's own reply, its payloads are out
            await guarded(deliver_or_dead_letter(event))
        app.consumer.mark_decided(event.message)  # Faust acknowledges it when the loop moves on
