"""Typed records for Faust agents, one per Avro schema.

The `.avsc` files are the contract; these classes are how Python code holds a decoded value. A unit test
checks that every class has exactly the fields (and which are optional) of its schema, so they cannot drift.
Enums travel as their symbol strings (e.g. ``channel="WHATSAPP"``); timestamps as aware UTC datetimes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

import faust


class _AvroRecord(faust.Record, abstract=True, include_metadata=False, serializer=None):
    """Base of the records below; Faust metadata stays out of the payload (Avro carries the schema)."""


class Attachment(_AvroRecord):
    kind: str
    url: Optional[str] = None
    media_id: Optional[str] = None
    mime_type: Optional[str] = None
    filename: Optional[str] = None
    size_bytes: Optional[int] = None
    caption: Optional[str] = None


class Entity(_AvroRecord):
    label: str
    value: str
    start: int
    end: int


class InboundMessage(_AvroRecord):
    message_id: str
    conversation_id: str
    channel: str
    source: str
    channel_message_id: str
    sender_id: str
    sent_at: datetime
    received_at: datetime
    text: str
    recipient_id: Optional[str] = None
    customer_id: Optional[str] = None
    language: Optional[str] = None
    attachments: list[Attachment] = []
    reply_to_channel_message_id: Optional[str] = None
    subject: Optional[str] = None
    metadata: dict[str, str] = {}


class OutboundMessage(_AvroRecord):
    message_id: str
    conversation_id: str
    channel: str
    recipient_id: str
    author: str
    created_at: datetime
    text: str
    in_reply_to: Optional[str] = None
    agent_id: Optional[str] = None
    language: Optional[str] = None
    quick_replies: list[str] = []
    template: Optional[str] = None
    metadata: dict[str, str] = {}


class ConversationTurn(_AvroRecord):
    turn_id: str
    message_id: str
    conversation_id: str
    channel: str
    direction: str
    author: str
    sent_at: datetime
    text: str
    customer_id: Optional[str] = None
    agent_id: Optional[str] = None
    language: Optional[str] = None
    intent: Optional[str] = None
    confidence: Optional[float] = None
    sentiment: Optional[str] = None
    sentiment_score: Optional[float] = None
    entities: list[Entity] = []
    model_version: Optional[str] = None
    route: Optional[str] = None


class SessionEvent(_AvroRecord):
    event_id: str
    conversation_id: str
    channel: str
    type: str
    occurred_at: datetime
    customer_id: Optional[str] = None
    reason: Optional[str] = None
    turns: int = 0
    csat_score: Optional[int] = None


class HandoffEvent(_AvroRecord):
    event_id: str
    conversation_id: str
    case_id: str
    state: str
    occurred_at: datetime
    channel: str
    in_reply_to: Optional[str] = None
    reason: Optional[str] = None
    queue: Optional[str] = None
    agent_id: Optional[str] = None
    language: Optional[str] = None


class SessionTimer(_AvroRecord):
    timer_id: str
    conversation_id: str
    channel: str
    kind: str
    sequence: int
    due_at: datetime


class CaseEvent(_AvroRecord):
    event_id: str
    case_id: str
    conversation_id: str
    type: str
    occurred_at: datetime
    channel: str
    subject: str
    transcript_excerpt: str
    priority: str
    status: str
    customer_id: Optional[str] = None
    intent: Optional[str] = None
    confidence: Optional[float] = None
    sentiment: Optional[str] = None
    queue: Optional[str] = None


#: Record class of each schema, by the schema's short name.
RECORD_TYPES: dict[str, type[_AvroRecord]] = {
    cls.__name__: cls
    for cls in (InboundMessage, OutboundMessage, ConversationTurn, SessionEvent, HandoffEvent, SessionTimer, CaseEvent)
}
