"""confluent-kafka clients configured from settings, and the one error for an unreachable broker.

Every producer, consumer and admin client in Centralita is built here, so connection settings (and later
TLS/SASL) live in one place. Producers are idempotent with acks=all: a retry never duplicates a message.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ClusterMetadata

from infra.settings import Settings

LIBRDKAFKA_LOG = logging.getLogger("centralita.librdkafka")


class BrokerUnreachableError(ConnectionError):
    """No Kafka broker answered at the configured bootstrap servers."""


def client_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Base configuration of every client: where the brokers are, and logs through Python logging."""
    config: dict[str, Any] = {"bootstrap.servers": settings.kafka_bootstrap, "logger": LIBRDKAFKA_LOG}
    config.update(overrides)
    return config


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    """An idempotent, acks=all producer: a message is durable once its delivery callback reports success."""
    return Producer(client_config(settings, **{
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        # The Java client's partitioner (Faust's too): a key lands on the same partition whoever produced it,
        # which keeps tables co-partitioned with their topics.
        "partitioner": "murmur2_random",
        **overrides,
    }))


def make_consumer(settings: Settings, group_id: str, **overrides: Any) -> Consumer:
    """A consumer that commits only when told to (offsets follow processed results, not reads)."""
    return Consumer(client_config(settings, **{
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        # How soon a crashed member's partitions move to another member.
        "session.timeout.ms": int(settings.broker_session_timeout_s * 1000),
        **overrides,
    }))


def make_admin(settings: Settings) -> AdminClient:
    return AdminClient(client_config(settings, log_level=0))


def cluster_metadata(admin: AdminClient, bootstrap: str, timeout_s: float = 10.0) -> ClusterMetadata:
    """Cluster metadata, or BrokerUnreachableError naming the address that did not answer."""
    try:
        return admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise BrokerUnreachableError(
            f"no Kafka broker answered at {bootstrap} within {timeout_s:.0f}s ({exc.args[0].str() if exc.args else exc}); "
            "start the local one with `centralita stack up` or set CENTRALITA_KAFKA_BOOTSTRAP"
        ) from None
