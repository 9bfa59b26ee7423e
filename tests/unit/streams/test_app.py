"""The worker's Kafka plumbing: the partitioner matches the Java client's, a lost output stops the commit."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiokafka.partitioner import DefaultPartitioner

from streams import app as worker_app


def test_partitioner_is_the_java_clients_murmur2() -> None:
    rng = random.Random(3)
    for _ in range(500):
        key = f"conv-{rng.getrandbits(64):x}".encode()
        partitions = list(range(rng.choice([3, 6, 12])))
        assert worker_app.partitioner(key, partitions, partitions) == DefaultPartitioner()(key, partitions, partitions)
    assert worker_app.partitioner(None, [0, 1, 2], [1]) == 1


def test_a_failed_delivery_stops_the_next_commit() -> None:
    loop = asyncio.new_event_loop()
    try:
        ok, failed = loop.create_future(), loop.create_future()
        ok.set_result("metadata")
        failed.set_exception(TimeoutError("no acks"))
        worker_app.DELIVERY_FAILURES.clear()
        worker_app._check_delivery(ok)
        worker_app.ensure_outputs_delivered()  # nothing failed: the commit may go ahead
        worker_app._check_delivery(failed)
        with pytest.raises(worker_app.OutputLost, match="1 outputs were not delivered"):
            worker_app.ensure_outputs_delivered()
    finally:
        worker_app.DELIVERY_FAILURES.clear()
        loop.close()
