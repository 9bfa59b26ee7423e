"""The case sink: `crm.case-events` into a CRM, in jobs bounded by size and time, offsets after results.

Loop: poll up to `crm_batch_max_records` events or `crm_batch_max_wait_s`; keep the latest event per case (the
CRM upsert is by case id, so the last state is the one that matters); upsert; dead-letter the events the CRM
rejected (with its error code in headers) and those that do not decode; flush the dead letters; only then
commit the offsets. A crash anywhere before the commit replays the batch, and the upsert makes the replay
harmless: no duplicate and no missing case.
"""

from __future__ import annotations

import logging
import random
import signal
import time
from dataclasses import dataclass, field
from typing import Callable

from confluent_kafka import Message, TopicPartition
from prometheus_client import Counter, Histogram

from connectors.crm.base import Crm, TransientCrmError
from infra.dead_letters import send_dead_letter
from infra.kafka_clients import make_consumer, make_producer
from infra.metrics import set_consumer_lag
from infra.settings import Settings
from schemas.codec import AvroCodec, CodecError
from schemas.records import CaseEvent

log = logging.getLogger("centralita.crm_sink")
TOPIC = "crm.case-events"
LAG_INTERVAL_S = 10.0

CASES_WRITTEN = Counter("centralita_crm_cases_written_total", "Cases upserted into the CRM", ["crm", "result"])
DEAD_LETTERS = Counter("centralita_crm_dead_letters_total", "Case events sent to the dead-letter topic", ["crm", "reason"])
CRM_ERRORS = Counter("centralita_crm_transient_errors_total", "Transient CRM failures (retried)", ["crm"])
JOB_SECONDS = Histogram("centralita_crm_job_seconds", "Time to upsert one batch of cases", ["crm"],
                        buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120))


class SinkStopped(RuntimeError):
    """The CRM kept failing past the retry budget; offsets were not committed."""


@dataclass
class BatchOutcome:
    events: int = 0
    cases: int = 0
    written: int = 0
    dead_lettered: int = 0


@dataclass
class CaseSink:
    settings: Settings
    crm: Crm
    topic: str = TOPIC
    codec: AvroCodec = field(default_factory=AvroCodec)
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.consumer = make_consumer(self.settings, self.settings.crm_group_id)
        self.producer = make_producer(self.settings)
        self._running = True

    def run(self, stop_when_idle_s: float | None = None) -> None:
        """Consume until stopped (SIGTERM/SIGINT), or until no event came for `stop_when_idle_s`."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        assigned: list[bool] = []
        self.consumer.subscribe([self.topic], on_assign=lambda consumer, partitions: assigned.append(True))
        idle_since = time.monotonic()
        lag_measured = 0.0
        try:
            while self._running:
                outcome = self.run_once()
                if time.monotonic() - lag_measured > LAG_INTERVAL_S:
                    lag_measured = time.monotonic()
                    set_consumer_lag(self.lag())
                if outcome.events or not assigned:  # idle counts from the first partition assignment
                    idle_since = time.monotonic()
                elif stop_when_idle_s is not None and time.monotonic() - idle_since > stop_when_idle_s:
                    break
        finally:
            self.consumer.close()
            self.producer.flush(30)
            self.crm.close()

    def lag(self) -> dict[str, int]:
        """Events not yet read on the partitions this sink owns (high watermark minus position), per topic."""
        lag: dict[str, int] = {}
        for tp in self.consumer.position(self.consumer.assignment()):
            _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high is None or high < 0:
                continue
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - max(tp.offset, 0))
        return lag

    def run_once(self) -> BatchOutcome:
        """One batch: poll, upsert, dead-letter, commit."""
        messages = self._poll_batch()
        if not messages:
            return BatchOutcome()
        latest: dict[str, tuple[CaseEvent, list[Message]]] = {}
        outcome = BatchOutcome(events=len(messages))
        for msg in messages:
            try:
                event = CaseEvent.from_data(self.codec.decode(msg.value(), reader="CaseEvent"))
            except CodecError as exc:
                self._dead_letter(msg, "undecodable", str(exc))
                outcome.dead_lettered += 1
                continue
            previous = latest.get(event.case_id)
            latest[event.case_id] = (event, (previous[1] if previous else []) + [msg])
        outcome.cases = len(latest)
        results = self._upsert_with_retries([event for event, _ in latest.values()])
        for result, (_, sources) in zip(results, latest.values()):
            CASES_WRITTEN.labels(self.crm.name, "ok" if result.ok else "rejected").inc()
            if result.ok:
                outcome.written += 1
                continue
            for msg in sources:  # every event folded into the rejected case: nothing is dropped
                self._dead_letter(msg, result.error_code or "REJECTED", result.error_message or "")
                outcome.dead_lettered += 1
        if self.producer.flush(30):
            raise SinkStopped("dead letters not acknowledged by Kafka; not committing")
        self.consumer.commit(offsets=_next_offsets(messages), asynchronous=False)
        log.info("%d case events: %d cases written to %s, %d dead-lettered", outcome.events, outcome.written,
                 self.crm.name, outcome.dead_lettered)
        return outcome

    def _poll_batch(self) -> list[Message]:
        deadline = time.monotonic() + self.settings.crm_batch_max_wait_s
        messages: list[Message] = []
        while len(messages) < self.settings.crm_batch_max_records:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            batch = self.consumer.consume(min(500, self.settings.crm_batch_max_records - len(messages)), timeout=min(remaining, 0.5))
            for msg in batch:
                if msg.error():
                    log.warning("consumer error: %s", msg.error())
                    continue
                messages.append(msg)
            if not batch and messages and remaining < self.settings.crm_batch_max_wait_s / 2:
                break  # a quiet topic: send what we have rather than wait out the whole window
        return messages

    def _upsert_with_retries(self, events: list[CaseEvent]):
        attempts = self.settings.crm_max_attempts
        for attempt in range(1, attempts + 1):
            started = time.monotonic()
            try:
                results = self.crm.upsert_cases(events)
                JOB_SECONDS.labels(self.crm.name).observe(time.monotonic() - started)
                return results
            except TransientCrmError as exc:
                CRM_ERRORS.labels(self.crm.name).inc()
                if attempt == attempts:
                    raise SinkStopped(f"{self.crm.name} still failing after {attempts} attempts: {exc}") from None
                delay = min(30.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
                log.warning("%s transient failure (%s); retry %d/%d in %.1fs", self.crm.name, exc, attempt, attempts - 1, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")

    def _dead_letter(self, msg: Message, reason: str, detail: str) -> None:
        DEAD_LETTERS.labels(self.crm.name, reason).inc()
        send_dead_letter(self.producer, msg.topic(), msg.key(), msg.value(), msg.partition(), msg.offset(),
                         reason, detail, source=f"crm-sink:{self.crm.name}")

    def _stop(self, *_: object) -> None:
        self._running = False


def _next_offsets(messages: list[Message]) -> list[TopicPartition]:
    """The offsets to commit: one past the last message of each partition."""
    last: dict[tuple[str, int], int] = {}
    for msg in messages:
        key = (msg.topic(), msg.partition())
        last[key] = max(last.get(key, -1), msg.offset())
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
