"""Create the catalog's topics on a broker, idempotently: existing topics are left as they are."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from infra.kafka_clients import cluster_metadata
from infra.settings import Settings
from schemas.topics import TopicSpec, catalog


def catalog_for(settings: Settings) -> tuple[TopicSpec, ...]:
    """The topic catalog with this deployment's partition counts."""
    return catalog(settings.partitions)


def changelog_config(settings: Settings) -> tuple[tuple[str, str], ...]:
    """Topic settings of a table changelog: compacted, with segments that roll often enough for compaction to drop
    overwritten values and, after `changelog_delete_retention_ms`, tombstones (retention then bounds its size)."""
    return (("segment.ms", str(settings.changelog_segment_ms)),
            ("delete.retention.ms", str(settings.changelog_delete_retention_ms)),
            ("min.cleanable.dirty.ratio", "0.1"),
            ("max.compaction.lag.ms", str(max(settings.changelog_segment_ms, 60_000) * 2)))


@dataclass(frozen=True)
class TopicResult:
    name: str
    outcome: str  # created | exists


def create_topics(admin: AdminClient, bootstrap: str, specs: Iterable[TopicSpec], timeout_s: float = 30.0) -> list[TopicResult]:
    """Create every spec that does not exist yet; BrokerUnreachableError when no broker answers."""
    specs = list(specs)
    metadata = cluster_metadata(admin, bootstrap)
    results = [TopicResult(s.name, "exists") for s in specs if s.name in metadata.topics]
    missing = [s for s in specs if s.name not in metadata.topics]
    if missing:
        new = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=min(3, len(metadata.brokers)),
                        config=s.config()) for s in missing]
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
        wait_for_leaders(admin, bootstrap, [s.name for s in missing], timeout_s)
    return sorted(results, key=lambda r: r.name)


def wait_for_leaders(admin: AdminClient, bootstrap: str, names: list[str], timeout_s: float = 30.0) -> None:
    """Block until every partition of `names` has a leader: a new topic is not usable before that."""
    deadline = time.monotonic() + timeout_s
    while True:
        topics = cluster_metadata(admin, bootstrap).topics
        pending = [n for n in names if n not in topics or topics[n].error is not None
                   or any(p.leader < 0 for p in topics[n].partitions.values())]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no leader elected within {timeout_s:.0f}s for {', '.join(pending[:5])}")
        time.sleep(0.2)
