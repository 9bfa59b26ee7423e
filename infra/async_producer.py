"""A confluent-kafka (librdkafka) producer for asyncio code.

librdkafka batches, compresses, retries and talks to the brokers on its own threads, in C: handing it a record
costs a few microseconds of Python, where aiokafka's producer spends tens in Python per record. Asyncio code
produces without awaiting, awaits the deliveries that something depends on (`send_tracked`: the state an effect
needs), and flushes before it commits offsets. A record librdkafka gives up on (after its own retries, within
`message.timeout.ms`) is reported to `on_failure`: the caller decides what that means (a stream worker stops).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Callable

from confluent_kafka import KafkaError, KafkaException

from infra.kafka_clients import make_producer
from infra.settings import Settings

Headers = list[tuple[str, bytes]] | None


class DeliveryFailed(RuntimeError):
    """Kafka refused a record for good; the message names the error code, never the record."""


class AsyncProducer:
    """One idempotent, acks=all librdkafka producer, polled from the event loop that uses it.

    Delivery reports are served by `poll()`. A poller thread would take the interpreter lock for every report and
    push it off the loop's thread at each switch interval (a busy worker's replies then waited on their state for
    tens of milliseconds); polled from the loop (every couple of milliseconds while a delivery is awaited, else
    every 50 ms), reports are read where they are used. Without a running loop (scripts, the gateway's threads),
    a thread polls instead."""

    def __init__(self, settings: Settings, on_failure: Callable[[str], None], failures_only: bool = False,
                 **overrides: object) -> None:
        """`failures_only`: librdkafka reports only failed deliveries (no Python callback per record: for a producer
        whose records are never awaited one by one; `send_tracked` is then not available)."""
        self.on_failure = on_failure
        self.failures_only = failures_only
        if failures_only:
            overrides = {"delivery.report.only.error": True, **overrides}
        self.producer = make_producer(settings, on_delivery=self._on_delivery, **overrides)
        self._stop = threading.Event()
        self._awaited = 0  # tracked deliveries not reported yet: poll often while there are some
        self._poller: threading.Thread | asyncio.Task | None = None

    def _ensure_poller(self) -> None:
        if self._poller is not None:
            return
        try:
            self._poller = asyncio.get_running_loop().create_task(self._poll_in_loop())
        except RuntimeError:  # no loop in this thread
            self._poller = threading.Thread(target=self._poll_in_thread, name="producer-poll", daemon=True)
            self._poller.start()

    async def _poll_in_loop(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0)
            await asyncio.sleep(0.002 if self._awaited else 0.05)

    def _poll_in_thread(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    def _on_delivery(self, err: KafkaError | None, msg) -> None:
        """Every record without a callback of its own: only failures matter."""
        if err is not None:
            self.on_failure(f"a record for {msg.topic()} was not delivered ({err.name()})")

    def _produce(self, topic: str, value: bytes | None, key: bytes | None, headers: Headers, partition: int | None,
                 **callback: object) -> None:
        args = {"key": key, "value": value, **callback}
        if headers:
            args["headers"] = headers
        if partition is not None:
            args["partition"] = partition
        self._ensure_poller()
        while True:
            try:
                self.producer.produce(topic, **args)
                return
            except BufferError:  # librdkafka's queue is full: let it drain (backpressure)
                self.producer.poll(0.05)

    def send(self, topic: str, value: bytes | None, key: bytes | None = None, headers: Headers = None,
             partition: int | None = None) -> None:
        """Hand a record over; its delivery is checked, not awaited (a failure goes to `on_failure`)."""
        self._produce(topic, value, key, headers, partition)

    def send_tracked(self, topic: str, value: bytes | None, key: bytes | None = None, headers: Headers = None,
                     partition: int | None = None) -> asyncio.Future:
        """Hand a record over; the future resolves to (partition, offset) once the brokers have it, or fails."""
        if self.failures_only:
            raise RuntimeError("this producer reports failures only: its deliveries cannot be awaited")
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()

        def on_delivery(err: KafkaError | None, msg) -> None:
            self._awaited -= 1
            if err is not None:
                loop.call_soon_threadsafe(_fail, done, DeliveryFailed(f"{msg.topic()}: {err.name()}"))
            else:
                loop.call_soon_threadsafe(_resolve, done, (msg.partition(), msg.offset()))

        self._awaited += 1
        self._produce(topic, value, key, headers, partition, on_delivery=on_delivery)
        return done

    async def flush(self, timeout_s: float = 60.0) -> None:
        """Return once every record handed over so far is delivered (or reported failed)."""
        left = await asyncio.get_running_loop().run_in_executor(None, self.producer.flush, timeout_s)
        if left:
            raise DeliveryFailed(f"{left} records still undelivered after {timeout_s:.0f}s")

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if isinstance(self._poller, threading.Thread):
            self._poller.join(1)
        self.producer.flush(timeout_s)


def _resolve(future: asyncio.Future, value: object) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future, error: Exception) -> None:
    if not future.done():
        future.set_exception(error)


__all__ = ["AsyncProducer", "DeliveryFailed", "KafkaException"]
