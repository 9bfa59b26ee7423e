"""Reading helpers the tests and benchmarks share."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import KafkaException, TopicPartition

from infra.kafka_clients import make_consumer
from infra.settings import Settings


def end_offsets(settings: Settings, topic: str, timeout_s: float = 30) -> dict[int, int]:
    """Partition -> next offset to be written, so a reader can start exactly after what is there now."""
    consumer = make_consumer(settings, group_id=f"offsets-{uuid.uuid4().hex}")
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:  # a new topic's leaders may still be settling
                return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions}
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()
