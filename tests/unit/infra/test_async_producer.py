"""The asyncio face of librdkafka: a record Kafka never takes is reported, a tracked one fails its future."""

from __future__ import annotations

import asyncio
import time

import pytest

from infra.async_producer import AsyncProducer, DeliveryFailed
from infra.processes import free_port
from infra.settings import Settings


def unreachable() -> Settings:
    return Settings(kafka_bootstrap=f"127.0.0.1:{free_port()}")  # nothing listens there


def test_an_untracked_record_that_is_never_delivered_is_reported() -> None:
    failures: list[str] = []
    producer = AsyncProducer(unreachable(), failures.append, **{"message.timeout.ms": 300})
    try:
        producer.send("conversation.outbound", b"value", b"key")
        deadline = time.monotonic() + 10
        while not failures and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        producer.close(1)
    assert failures and "conversation.outbound" in failures[0] and "value" not in failures[0]


def test_a_tracked_record_fails_its_future_and_flush_says_what_is_left() -> None:
    failures: list[str] = []
    producer = AsyncProducer(unreachable(), failures.append, **{"message.timeout.ms": 300})

    async def scenario() -> None:
        with pytest.raises(DeliveryFailed, match="sessions-changelog"):
            await asyncio.wait_for(producer.send_tracked("app-sessions-changelog", b"v", b"k", partition=2), 10)
        producer.send("conversation.log", b"v")
        await producer.flush(5)  # reported failed within message.timeout.ms: nothing is left in the queue

    try:
        asyncio.run(scenario())
    finally:
        producer.close(1)
    assert failures == ["a record for conversation.log was not delivered (_MSG_TIMED_OUT)"]
