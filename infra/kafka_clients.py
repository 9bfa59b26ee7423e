"""confluent-kafka clients configured from settings, and the one error for an unreachable broker.

Every producer, consumer and admin client in Centralita is built here, so connection settings, TLS and
SASL live in one place. Producers are idempotent with acks=all: a retry never duplicates a message.
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


SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


class KafkaSecurityError(ValueError):
    """The Kafka security settings are inconsistent (named, never with the secret's value)."""


def jaas_config(module: str, username: str, password: str, users: dict[str, str] | None = None) -> str:
    """A Java client's `sasl.jaas.config` line (Spark's Kafka source, the broker's own listeners), values quoted so a
    password holding quotes or backslashes cannot break it. `users` adds PLAIN's `user_<name>="<password>"` entries."""
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    extra = "".join(f" user_{name}={quoted(secret)}" for name, secret in (users or {}).items())
    return (f"org.apache.kafka.common.security.{module} required username={quoted(username)} "
            f"password={quoted(password)}{extra};")


def security_config(settings: Settings) -> dict[str, Any]:
    """librdkafka properties for TLS and SASL from settings; empty for PLAINTEXT."""
    protocol = settings.kafka_security_protocol.upper()
    if protocol not in SECURITY_PROTOCOLS:
        raise KafkaSecurityError(f"CENTRALITA_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(SECURITY_PROTOCOLS)}, not {protocol!r}")
    if protocol == "PLAINTEXT":
        return {}
    config: dict[str, Any] = {"security.protocol": protocol}
    if protocol.startswith("SASL"):
        if settings.kafka_sasl_mechanism not in SASL_MECHANISMS:
            raise KafkaSecurityError(f"CENTRALITA_KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)}")
        if not settings.kafka_sasl_username:
            raise KafkaSecurityError(f"{protocol} needs CENTRALITA_KAFKA_SASL_USERNAME and a password")
        config.update({"sasl.mechanisms": settings.kafka_sasl_mechanism, "sasl.username": settings.kafka_sasl_username,
                       "sasl.password": settings.kafka_password})
    if protocol.endswith("SSL"):
        if settings.kafka_ssl_ca_file is not None:
            config["ssl.ca.location"] = str(settings.kafka_ssl_ca_file)
        if settings.kafka_ssl_cert_file is not None:
            config["ssl.certificate.location"] = str(settings.kafka_ssl_cert_file)
        if settings.kafka_ssl_key_file is not None:
            config["ssl.key.location"] = str(settings.kafka_ssl_key_file)
    return config


def ssl_context(settings: Settings):
    """A TLS context for Python clients (Faust/aiokafka) that trusts the configured CA; None without TLS."""
    import ssl

    if not settings.kafka_security_protocol.upper().endswith("SSL"):
        return None
    context = ssl.create_default_context(cafile=str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else None)
    if settings.kafka_ssl_cert_file is not None:
        context.load_cert_chain(str(settings.kafka_ssl_cert_file),
                                str(settings.kafka_ssl_key_file) if settings.kafka_ssl_key_file else None)
    return context


def client_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Base configuration of every client: where the brokers are, how to authenticate, logs through Python logging."""
    config: dict[str, Any] = {"bootstrap.servers": settings.kafka_bootstrap, "logger": LIBRDKAFKA_LOG,
                              **security_config(settings)}
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


def make_admin(settings: Settings, **overrides: Any) -> AdminClient:
    return AdminClient(client_config(settings, log_level=0, **overrides))


def cluster_metadata(admin: AdminClient, bootstrap: str, timeout_s: float = 10.0) -> ClusterMetadata:
    """Cluster metadata, or BrokerUnreachableError naming the address that did not answer."""
    try:
        return admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise BrokerUnreachableError(
            f"no Kafka broker answered at {bootstrap} within {timeout_s:.0f}s ({exc.args[0].str() if exc.args else exc}); "
            "start the local one with `centralita stack up` or set CENTRALITA_KAFKA_BOOTSTRAP"
        ) from None
