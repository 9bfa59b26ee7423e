"""The worker's Kafka plumbing: the partitioner matches the Java client's, a lost output stops the worker."""

from __future__ import annotations

import asyncio
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


def test_a_failed_delivery_stops_the_worker_before_anything_commits(monkeypatch) -> None:
    stops: list[str] = []
    monkeypatch.setattr(worker_app, "crash", stops.append)
    loop = asyncio.new_event_loop()
    try:
        ok, failed = loop.create_future(), loop.create_future()
        ok.set_result("metadata")
        failed.set_exception(TimeoutError("no acks"))
        worker_app._check_delivery(ok)
        assert stops == []  # delivered: nothing to do
        worker_app._check_delivery(failed)
        assert stops == ["an output was not delivered (TimeoutError)"]
        failed.exception()  # retrieved
    finally:
        loop.close()
