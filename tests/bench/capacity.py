"""Capacity of a consumer group on a backlog: the same raw records for every contender, both warm, measured by the
timestamps of the records they write (so neither a reader's lag nor start-up counts).

A backlog is a warm-up part followed by a measured part, produced at once as an integration would (raw WhatsApp
Cloud API bodies, keyed by conversation id, no headers). Each contender's consumer group starts at the backlog and
drains all of it; its rate is the measured part's replies over the time between its first and last reply.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from confluent_kafka import TopicPartition

from connectors.gateway import conversation_key
from infra.kafka_clients import make_consumer, make_producer
from infra.settings import Settings
from infra.webhooks import CustomerMessage, webhook_body
from schemas.codec import AvroCodec, CodecError
from streams.ids import message_id

RAW_TOPIC = "channel.whatsapp.inbound.raw"
GREETINGS = ("Hola, ¿dónde está mi pedido {n}?", "Hi, where is my order {n}?", "quiero cancelar el pedido {n}",
             "I want to cancel my order {n}", "¿cuándo llega mi pedido {n}?", "my card payment failed")


@dataclass
class Backlog:
    tag: str
    warm: list[str] = field(default_factory=list)  # provider message ids (wamid.*) of the warm-up part
    measured: list[str] = field(default_factory=list)

    @property
    def measured_message_ids(self) -> dict[str, str]:
        """Centralita message id -> provider message id, for the measured part."""
        return {message_id("whatsapp", pid): pid for pid in self.measured}


def produce_backlog(settings: Settings, warm: int, measured: int) -> Backlog:
    """First messages of new WhatsApp customers, as fast as the producer takes them."""
    backlog = Backlog(uuid.uuid4().hex[:8])
    run = random.randint(10_000, 99_999)  # new customers in every run: a reused broker has older conversations
    producer = make_producer(settings, **{"linger.ms": 20})
    for i in range(warm + measured):
        provider_id = f"{backlog.tag}{i}"
        text = GREETINGS[i % len(GREETINGS)].format(n=100_000 + i)
        body = webhook_body(CustomerMessage("whatsapp", f"3{run}{i:07d}", provider_id, text))
        producer.produce(RAW_TOPIC, key=conversation_key("whatsapp", body), value=body)
        (backlog.warm if i < warm else backlog.measured).append(f"wamid.{provider_id}")
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(120)
    return backlog


def end_offsets(settings: Settings, topics: tuple[str, ...]) -> dict[tuple[str, int], int]:
    consumer = make_consumer(settings, group_id=f"bench-offsets-{uuid.uuid4().hex[:6]}")
    try:
        out = {}
        for topic in topics:
            for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                out[(topic, partition)] = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
        return out
    finally:
        consumer.close()


def commit_group(settings: Settings, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Make `group` start at these offsets (a group that has never run would otherwise start at its reset policy)."""
    consumer = make_consumer(settings, group_id=group)
    try:
        consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()


def reply_times(settings: Settings, topic: str, start: dict[tuple[str, int], int], key_of: Callable[[bytes], str | None],
                wanted: set[str], timeout_s: float, alive: Callable[[], bool]) -> dict[str, float]:
    """Timestamp (s) of the first record on `topic` after `start` for each wanted key, until all came or time ran out."""
    consumer = make_consumer(settings, group_id=f"bench-replies-{uuid.uuid4().hex[:6]}")
    consumer.assign([TopicPartition(t, p, o) for (t, p), o in start.items() if t == topic])
    got: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < len(wanted) and time.monotonic() < deadline and alive():
            for msg in consumer.consume(1000, timeout=0.5):
                if msg.error():
                    continue
                key = key_of(msg.value())
                if key in wanted and key not in got:
                    got[key] = msg.timestamp()[1] / 1000
        return got
    finally:
        consumer.close()


def in_reply_to(value: bytes) -> str | None:
    try:
        return json.loads(value).get("in_reply_to")
    except ValueError:
        return None


def inbound_models(settings: Settings, start: dict[tuple[str, int], int], wanted: set[str]) -> dict[str, str | None]:
    """Model version that classified each wanted message (None: the fallback answered), from conversation.log."""
    codec = AvroCodec()
    consumer = make_consumer(settings, group_id=f"bench-log-{uuid.uuid4().hex[:6]}")
    consumer.assign([TopicPartition(t, p, o) for (t, p), o in start.items() if t == "conversation.log"])
    ends = {p: consumer.get_watermark_offsets(TopicPartition("conversation.log", p), timeout=10)[1]
            for (t, p) in start if t == "conversation.log"}
    done = {p for (t, p), o in start.items() if t == "conversation.log" and o >= ends[p]}
    models: dict[str, str | None] = {}
    try:
        while len(done) < len(ends):
            msgs = consumer.consume(1000, timeout=2)
            if not msgs:
                break
            for msg in msgs:
                if msg.error():
                    continue
                if msg.offset() >= ends[msg.partition()] - 1:
                    done.add(msg.partition())
                try:
                    turn = codec.decode(msg.value())
                except CodecError:
                    continue
                if turn["direction"] == "INBOUND" and turn["message_id"] in wanted:
                    models[turn["message_id"]] = turn["model_version"]
        return models
    finally:
        consumer.close()


def rate(times: dict[str, float]) -> float:
    if len(times) < 2:
        return 0.0
    values = sorted(times.values())
    return round(len(values) / max(1e-6, values[-1] - values[0]), 1)
