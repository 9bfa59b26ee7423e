"""Create the catalog's topics on a broker, idempotently: existing topics are left as they are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from infra.kafka_clients import cluster_metadata
from schemas.topics import TopicSpec


@dataclass(frozen=True)
class TopicResult:
    name: str
    outcome: str  # created | exists


def create_topics(admin: AdminClient, bootstrap: str, specs: Iterable[TopicSpec], timeout_s: float = 30.0) -> list[TopicResult]:
    """Create every spec that does not exist yet; BrokerUnreachableError when no broker answers."""
    specs = list(specs)
    existing = set(cluster_metadata(admin, bootstrap).topics)
    results = [TopicResult(s.name, "exists") for s in specs if s.name in existing]
    missing = [s for s in specs if s.name not in existing]
    if not missing:
        return sorted(results, key=lambda r: r.name)
    brokers = len(cluster_metadata(admin, bootstrap).brokers)
    new = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=min(3, brokers), config=s.config())
           for s in missing]
    futures = admin.create_topics(new, operation_timeout=timeout_s, request_timeout=timeout_s)
    for name, future in futures.items():
        try:
            future.result()
            results.append(TopicResult(name, "created"))
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                results.append(TopicResult(name, "exists"))  # created concurrently by someone else
            else:
                raise
    return sorted(results, key=lambda r: r.name)
