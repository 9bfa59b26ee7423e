"""The Faust application: one per worker process, configured from settings.

Processing guarantee is at-least-once (Faust's exactly-once is unreliable upstream); every effect carries a
deterministic id and is deduplicated where it lands.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any, Mapping

import faust
from aiokafka.partitioner import murmur2
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP

from infra.async_producer import AsyncProducer, DeliveryFailed
from infra.settings import Settings, get_settings
from schemas.topics import TopicSpec
from streams.state import crash


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


_output: AsyncProducer | None = None


def output() -> AsyncProducer:
    """The worker's producer for every record it writes: outputs, dead letters, table changelogs (librdkafka).

    Created on first use, inside the worker. A record Kafka refuses for good stops the worker: committing past its
    input would lose it, and the state may already say it was sent; its inputs are replayed by whoever goes on."""
    global _output
    if _output is None:
        settings = get_settings()
        _output = AsyncProducer(settings, on_failure=crash, **{"linger.ms": int(settings.producer_linger_s * 1000)})
    return _output


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

    async def _commit_offsets(self, offsets: Mapping[TP, int], start_new_transaction: bool = True) -> bool:
        if _output is not None:
            try:
                await _output.flush()
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
    expected = {spec.name: spec.partitions for spec in (*catalog_for(settings), *changelogs)}
    topics = cluster_metadata(admin, settings.kafka_bootstrap).topics
    wrong = [f"{name} has {len(topics[name].partitions)} partitions, settings say {count}"
             for name, count in expected.items() if name in topics and len(topics[name].partitions) != count]
    if wrong:
        raise PartitionCountMismatch("; ".join(wrong[:5]) + " (CENTRALITA_RAW_PARTITIONS / CENTRALITA_CONVERSATION_PARTITIONS)")


app = create_app(get_settings())

# Agents register themselves on `app` when imported.
from streams import engine, metrics, normalize, outbound  # noqa: E402,F401
