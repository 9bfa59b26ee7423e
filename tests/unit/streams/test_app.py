"""The worker's Kafka plumbing: the partitioner matches the Java client's (and librdkafka's murmur2_random)."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner

from streams import app as worker_app


def test_partitioner_is_the_java_clients_murmur2() -> None:
    rng = random.Random(3)
    for _ in range(500):
        key = f"conv-{rng.getrandbits(64):x}".encode()
        partitions = list(range(rng.choice([3, 6, 12])))
        assert worker_app.partitioner(key, partitions, partitions) == DefaultPartitioner()(key, partitions, partitions)
        assert worker_app.partition_for(key, len(partitions)) == worker_app.partitioner(key, partitions, partitions)
    assert worker_app.partitioner(None, [0, 1, 2], [1]) == 1
