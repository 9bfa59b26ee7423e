"""The Faust application: one per worker process, configured from settings.

Processing guarantee is at-least-once (Faust's exactly-once is unreliable upstream); every effect carries a
deterministic id and is deduplicated where it lands.
"""

from __future__ import annotations

import logging
import random
import time
from functools import lru_cache
from typing import Any, Callable, Mapping

import faust
from aiokafka.partitioner import murmur2
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.transport.consumer import ensure_TP
from faust.types import TP

from infra.async_producer import AsyncProducer, DeliveryFailed
from infra.settings import Settings, get_settings
from schemas.topics import TopicSpec
from streams.state import crash

log = logging.getLogger("centralita.worker")


@lru_cache(maxsize=65_536)
def _key_hash(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


def partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """The Java client's partitioner (murmur2 of the key, as Faust's and confluent-kafka's murmur2_random), with the
    hash remembered per key: a message's effects all carry its conversation's key, and pure-Python murmur2 on
    every send was a few percent of the worker."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[_key_hash(key) % len(all_partitions)]


def partition_for(key: bytes, partitions: int) -> int:
    """The partition a record keyed `key` lands on in a topic of `partitions` partitions (every Kafka client that
    uses the default partitioner agrees): where a conversation's records, and its state, live."""
    return _key_hash(key) % partitions


_outputs: dict[str, AsyncProducer] = {}


def output() -> AsyncProducer:
    """The worker's producer for what it publishes (effects, forwards, dead letters): librdkafka, reporting only
    failures (a Python callback per record would compete with the agents for the interpreter).

    Created on first use, inside the worker. A record Kafka refuses for good stops the worker: committing past its
    input would lose it, and the state may already say it was sent; its inputs are replayed by whoever goes on."""
    return _producer("effects", failures_only=True)


def changelog_output() -> AsyncProducer:
    """The worker's producer for its tables' changelogs, whose deliveries are awaited (state before effects)."""
    return _producer("changelogs", failures_only=False)


def _producer(name: str, failures_only: bool) -> AsyncProducer:
    if name not in _outputs:
        settings = get_settings()
        _outputs[name] = AsyncProducer(settings, on_failure=crash, failures_only=failures_only,
                                       **{"linger.ms": settings.producer_linger_s * 1000})
    return _outputs[name]


def table_options(settings: Settings) -> dict:
    """RocksDB options of the worker's tables: memory bounded per partition (Faust's defaults grow to gigabytes)."""
    return {"write_buffer_size": settings.rocksdb_write_buffer_bytes, "max_write_buffer_number": 2,
            "target_file_size_base": 16 * 1024 * 1024, "block_cache_size": settings.rocksdb_block_cache_bytes,
            "block_cache_compressed_size": 0}


async def send_record(topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None = None,
                      partition: int | None = None) -> None:
    """Hand one encoded record to the worker's producer (not awaited: delivered before the next commit)."""
    output().send(topic, value, key, headers, partition)


class ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer with a short fetch wait.

    Faust hard-codes fetch_max_wait_ms=1500. aiokafka leaves a partition with undelivered records out of the next
    fetch request; when that request then waits on the broker for its other, idle partitions, new records of the
    left-out partition wait for it too: up to 1.5 s at every hop, at low traffic. The broker answers as soon as any
    data arrives, so a short wait costs a few more empty fetches and keeps each hop in milliseconds.
    """

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = int(get_settings().consumer_fetch_max_wait_s * 1000)  # noqa: SLF001 - read in start()
        return consumer


def committable_end(committed: int | None, acked: list[int], acked_index: set[int], gaps: Any) -> int | None:
    """The next offset to commit for one partition, or None: the end of the run of acknowledged offsets (and of
    offsets the log does not have, `gaps`) that starts exactly at `committed`, the next offset to read. Consumes the
    run from `acked`/`acked_index`, and drops acknowledgements of offsets below `committed` (read again after a seek)."""
    if committed is None or not acked:
        return None
    if gaps:  # offsets the log does not have (compaction, transaction markers): count them as acknowledged
        top = max(acked) + 1
        for interval in sorted(gaps.overlap(0, top), key=lambda x: x.begin):
            acked.extend(o for o in range(interval.begin, min(interval.end, top)) if o not in acked_index)
        gaps.chop(0, top)
    acked.sort()
    stale = 0
    while stale < len(acked) and acked[stale] < committed:
        stale += 1
    if stale:
        acked_index.difference_update(acked[:stale])
        del acked[:stale]
    end = committed
    for offset in acked:
        if offset > end:
            break
        end = offset + 1  # duplicates (the same offset twice) do not break the run
    if end == committed:
        return None
    run = [o for o in acked if o < end]
    del acked[:len(run)]
    acked_index.difference_update(run)
    return end


class PartitionOrder:
    """Which offset of each partition an agent must handle next: in order, none skipped.

    Faust can hand a stream records fetched before a seek (a rebalance seeks back to the committed offsets), and then
    drops the records read again after it as already read, or counts the jump as a gap in the log: either way they
    were never handled, and a commit went past them. Here a record past the next offset is held back and the
    partition is sought back to the next offset (at most once a second); a record before it was handled already (its
    replay re-emits the same records). Only when the same jump is still there after GIVE_UP_S and three seeks are the
    missing offsets taken as absent from the log (a transaction marker, compaction: neither happens on the topics
    Centralita writes).
    """

    GIVE_UP_S = 30.0

    STALL_S = 3.0

    def __init__(self) -> None:
        self.expected: dict[TP, int] = {}
        self.seeking: dict[TP, tuple[int, int, float, float]] = {}  # tp -> (offset, seeks, first seek, last seek)
        self.progress: dict[TP, float] = {}  # tp -> when it last admitted a record (or was sought back)

    def admit(self, tp: TP, offset: int, committed: int | None, now: float | None = None) -> tuple[str, int | None]:
        """("next" | "again" | "absent", None) to handle it, ("seek", offset to read again from) or ("wait", None)."""
        now = time.monotonic() if now is None else now
        expected = self.expected.get(tp, committed)
        if expected is None or offset == expected:
            self.expected[tp] = offset + 1
            self.seeking.pop(tp, None)
            self.progress[tp] = now
            return "next", None
        if offset < expected:
            return "again", None
        sought, seeks, first, last = self.seeking.get(tp, (expected, 0, now, float("-inf")))
        if sought != expected:
            seeks, first, last = 0, now, float("-inf")
        if seeks >= 3 and now - first >= self.GIVE_UP_S:
            self.expected[tp] = offset + 1
            self.seeking.pop(tp, None)
            return "absent", expected
        if now - last >= 1.0:
            self.seeking[tp] = (expected, seeks + 1, first, now)
            return "seek", expected
        self.seeking[tp] = (sought, seeks, first, last)
        return "wait", None

    def stalled(self, highwater: Callable[[TP], int | None], now: float | None = None) -> list[tuple[TP, int]]:
        """Partitions whose next offset exists on the broker but has not come for STALL_S (a seek whose records
        Faust dropped, with nothing arriving after them to ask again): (tp, offset to read again from)."""
        now = time.monotonic() if now is None else now
        stuck = []
        for tp, expected in self.expected.items():
            end = highwater(tp)
            if end is not None and end > expected and now - self.progress.get(tp, now) >= self.STALL_S:
                stuck.append((tp, expected))
                self.progress[tp] = now  # once per STALL_S at most
        return stuck

    def restart(self, committed: dict) -> None:
        """After a seek to the committed offsets: handling starts again there."""
        self.expected.update(committed)
        now = time.monotonic()
        for tp in committed:
            self.seeking.pop(tp, None)
            self.progress[tp] = now

    def forget(self, tps) -> None:
        for tp in tps:
            self.expected.pop(tp, None)
            self.seeking.pop(tp, None)
            self.progress.pop(tp, None)


class FlushBeforeCommitConsumer(aiokafka_driver.Consumer):
    """Faust's Kafka consumer, except that everything the worker produced is delivered before it commits.

    Faust sends agent outputs and table changelog records asynchronously and, unless it holds every output
    until commit (`stream_publish_on_commit`, which would add the commit interval to every reply), may commit
    an input's offset while the outputs it caused are still in the producer's buffer. A crash then loses
    them: at-most-once. Flushing the producer first makes a commit imply delivery (at-least-once), which the
    deterministic ids turn into exactly-once effects. One flush per commit, not per message.
    """

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    _decided: set | None = None
    _order: "PartitionOrder | None" = None

    @property
    def order(self) -> "PartitionOrder":
        if self._order is None:
            self._order = PartitionOrder()
        return self._order

    async def admit(self, message: Any) -> bool:
        """Whether an agent may handle this message now (see PartitionOrder); seeks back when offsets were skipped."""
        verdict, offset = self.order.admit(message.tp, message.offset, self._committed_offset[message.tp])
        if verdict == "seek":
            log.info("%s[%d]: offset %d arrived before %d; reading again from %d", message.tp.topic,
                     message.tp.partition, message.offset, offset, offset)
            await self.seek_back(message.tp, offset)
        elif verdict == "absent":
            log.warning("%s[%d]: offsets %d-%d are not in the log; going on from %d", message.tp.topic,
                        message.tp.partition, offset, message.offset - 1, message.offset)
            self.mark_absent(message.tp, offset, message.offset)
        return verdict in ("next", "again", "absent")

    async def seek_back(self, tp: TP, offset: int) -> None:
        """Read `tp` again from `offset`. Through the consumer's own thread: Faust's `seek` calls aiokafka from the
        caller's thread, where it raced the fetcher (a KeyError that stopped the worker)."""
        try:
            await self._thread.seek_wait({tp: offset})
        except Exception as exc:  # noqa: BLE001 - revoked meanwhile (IllegalStateError): the next owner reads it
            log.info("%s[%d]: not sought back (%s)", tp.topic, tp.partition, type(exc).__name__)

    def mark_absent(self, tp: TP, start: int, end: int) -> None:
        """Offsets start..end-1 do not exist: count them as handled for the commit."""
        index, acked = self._acked_index[tp], self._acked[tp]
        for offset in range(start, end):
            if offset not in index:
                index.add(offset)
                acked.append(offset)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Faust takes a jump in fetched offsets for a gap in the log and counts the gap as acknowledged; after a
        seek the jump was records fetched before it, which were then lost. Gaps are `admit`'s to decide."""

    def mark_decided(self, message: Any) -> None:
        """An agent has handled this message and published what it caused: its acknowledgement may count."""
        if self._decided is None:
            self._decided = set()
        self._decided.add((message.tp, message.offset))

    def ack(self, message: Any) -> bool:
        """Count an acknowledgement only for a message an agent handled.

        Faust's stream also acknowledges the messages it skips during a rebalance (fetched in the previous generation,
        or while the flow was stopped: "otherwise the lag would increase"), counting on reading them again after the
        seek; counted, they were committed unprocessed. Refused here, they hold the commit back until they are read
        again and handled."""
        key = (message.tp, message.offset)
        if self._decided is None or key not in self._decided:
            self._unacked_messages.discard(message)  # not in flight any more: this copy will not be handled
            return False
        self._decided.discard(key)
        return super().ack(message)

    async def on_partitions_revoked(self, revoked: set) -> None:
        if self._decided:
            self._decided = {key for key in self._decided if key[0] not in revoked}
        self.order.forget(revoked)
        await super().on_partitions_revoked(revoked)

    async def perform_seek(self) -> None:
        """Faust's seek to the committed offsets, remembering a committed offset of 0 as well (Faust keeps it as
        "nothing committed", and then commits past messages it never processed: see `_new_offset`)."""
        committed = await self.seek_to_committed()
        known = {ensure_TP(tp): offset for tp, offset in committed.items() if offset is not None and offset >= 0}
        self._read_offset.update({tp: offset or None for tp, offset in known.items()})
        self._committed_offset.update(known)
        self.order.restart(known)

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit next: the end of the run of acknowledged offsets that starts exactly at the committed
        one (the next offset to read).

        Faust's own accepts a run that starts one past the committed offset, and anywhere when the partition has no
        committed offset yet. After a rebalance, a message fetched in the previous generation is skipped by the stream
        and read again only after the seek, so its successors could be acknowledged first and their commit skip it
        for good. A partition without a committed offset does not commit here (the worker commits a start offset
        for every partition before it starts, `initialize_group_offsets`)."""
        return committable_end(self._committed_offset[tp], self._acked[tp], self._acked_index[tp], self._gap[tp])

    async def _commit_offsets(self, offsets: Mapping[TP, int], start_new_transaction: bool = True) -> bool:
        for producer in list(_outputs.values()):
            try:
                await producer.flush()
            except DeliveryFailed as exc:
                crash(f"not committing: {exc}")
        await self.app.producer.flush()
        return await super()._commit_offsets(offsets, start_new_transaction=start_new_transaction)


class Transport(aiokafka_driver.Transport):
    Consumer = FlushBeforeCommitConsumer


class Worker(faust.Worker):
    """Faust's worker without its terminal spinner. To spin it on every log record, Faust sets the root logger to
    DEBUG whenever the level is WARN or above, and then every debug call of aiokafka's fetcher and sender (several per
    message) builds a log record: a few percent of the worker's CPU at -l warn, for a spinner nobody sees in a log
    file or a container."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spinner = None


class CentralitaApp(faust.App):
    """faust.App with the consumer above."""

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Faust's (aiokafka's) view of the same TLS/SASL settings the confluent-kafka clients use."""
    from infra.kafka_clients import security_config, ssl_context

    security_config(settings)  # the same validation and errors as every other client
    protocol = settings.kafka_security_protocol.upper()
    context = ssl_context(settings)
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(username=settings.kafka_sasl_username, password=settings.kafka_password,
                                     ssl_context=context, mechanism=settings.kafka_sasl_mechanism)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return None


def create_app(settings: Settings) -> CentralitaApp:
    datadir = settings.state_dir / "faust" / settings.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return CentralitaApp(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        broker_credentials=broker_credentials(settings),
        store=settings.store,
        processing_guarantee="at_least_once",
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.broker_session_timeout_s / 5),
        web_bind=settings.bind_host,
        web_port=settings.worker_web_port,
        web_host=settings.bind_host,
        datadir=str(datadir),
        topic_disable_leader=True,
        consumer_auto_offset_reset=settings.auto_offset_reset,
        producer_acks=-1,
        producer_linger=settings.producer_linger_s,
        producer_partitioner=partitioner,
        key_serializer="raw",
        value_serializer="raw",
        Worker=Worker,
    )


def changelog_topics(faust_app: faust.App, settings: Settings) -> list[TopicSpec]:
    """The changelog topic of every table of the app, as catalog entries (compacted; tombstones expire)."""
    from infra.topic_admin import changelog_config

    return [TopicSpec(table.changelog_topic.get_topic_name(), table.changelog_topic.partitions or table.partitions,
                      -1, None, "table key", cleanup_policy="compact", extra_config=changelog_config(settings),
                      description=f"Changelog of the {name} table of {faust_app.conf.id}.")
            for name, table in faust_app.tables.items()]


def input_topics(faust_app: faust.App) -> list[str]:
    """Every topic the app's agents read (not the tables' changelogs, which recovery reads)."""
    return sorted({name for agent in faust_app.agents.values() for name in agent.channel.topics})


def initialize_group_offsets(settings: Settings, group: str, topics: list[str]) -> None:
    """Commit a start offset for every partition of `topics` the group has none for (the log's start, or its end
    with CENTRALITA_AUTO_OFFSET_RESET=latest), so that every partition a worker is given has a committed offset to
    seek back to and to count acknowledgements from (and none that the log no longer has)."""
    from confluent_kafka import TopicPartition

    from infra.kafka_clients import make_consumer

    consumer = make_consumer(settings, group_id=group)
    try:
        partitions = [TopicPartition(topic, p) for topic in topics
                      for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions]
        starts = []
        for tp in _committed(consumer, partitions):
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if tp.offset < 0:
                starts.append(TopicPartition(tp.topic, tp.partition, high if settings.auto_offset_reset == "latest" else low))
            elif tp.offset < low:  # retention deleted records nobody read: the log starts later now
                log.warning("%s[%d]: committed offset %d is before the log start %d; records were lost to retention",
                            tp.topic, tp.partition, tp.offset, low)
                starts.append(TopicPartition(tp.topic, tp.partition, low))
        if starts:
            consumer.commit(offsets=starts, asynchronous=False)
    finally:
        consumer.close()


def _committed(consumer, partitions: list, timeout_s: float = 60.0) -> list:
    """The group's committed offsets, waiting while the broker's group coordinator is not ready (a fresh broker)."""
    from confluent_kafka import KafkaException

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return consumer.committed(partitions, timeout=10)
        except KafkaException as exc:
            if time.monotonic() > deadline or not exc.args[0].retriable() and exc.args[0].name() not in RETRY_ERRORS:
                raise
            time.sleep(0.5)


#: Group coordinator errors a broker answers while it loads or moves the coordinator: worth waiting for.
RETRY_ERRORS = {"NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE"}


class PartitionCountMismatch(RuntimeError):
    """A topic's partition count on the broker differs from the one this worker was configured with."""


def declare_changelog_topics(faust_app: faust.App, settings: Settings) -> None:
    """Create the tables' changelog topics before the worker starts, wait for their leaders, and check that every
    topic the worker reads has the partition count of the settings.

    Faust declares changelogs itself on start-up, but then reads their partition count from consumer metadata that
    may not know them yet; on a fresh broker an agent's first table write crashed it with PartitionsMismatch
    ("... changelog topic has 0 partitions") and its partitions stalled. Topics that exist before the
    consumer's first metadata request are known from the start. A count that differs from the settings would put
    a conversation's state on another partition than its messages: refuse to start, saying which topic.
    """
    from infra.kafka_clients import cluster_metadata, make_admin
    from infra.topic_admin import catalog_for, create_topics

    admin = make_admin(settings)
    changelogs = changelog_topics(faust_app, settings)
    create_topics(admin, settings.kafka_bootstrap, changelogs)
    initialize_group_offsets(settings, faust_app.conf.id, input_topics(faust_app))
    expected = {spec.name: spec.partitions for spec in (*catalog_for(settings), *changelogs)}
    topics = cluster_metadata(admin, settings.kafka_bootstrap).topics
    wrong = [f"{name} has {len(topics[name].partitions)} partitions, settings say {count}"
             for name, count in expected.items() if name in topics and len(topics[name].partitions) != count]
    if wrong:
        raise PartitionCountMismatch("; ".join(wrong[:5]) + " (CENTRALITA_PARTITIONS; the count is fixed when a topic is created)")


app = create_app(get_settings())


@app.timer(interval=1.0)
async def unstick_partitions() -> None:
    """Seek back a partition whose next record exists but has not come (see PartitionOrder.stalled)."""
    from streams.state import recovered

    consumer = app.consumer
    if not recovered(app) or not isinstance(consumer, FlushBeforeCommitConsumer):
        return
    assigned = consumer.assignment()

    def highwater(tp: TP) -> int | None:
        if tp not in assigned:
            return None  # revoked meanwhile: not ours to look at
        try:
            return consumer.highwater(tp)
        except AssertionError:  # aiokafka: "Partition is not assigned" (a rebalance began)
            return None

    for tp, offset in consumer.order.stalled(highwater):
        log.info("%s[%d]: offset %d has not come; reading again from it", tp.topic, tp.partition, offset)
        await consumer.seek_back(tp, offset)

# Agents register themselves on `app` when imported.
from streams import engine, metrics, normalize  # noqa: E402,F401
