"""Every schema through the real broker with confluent-kafka, on the catalog topic that carries it."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import TopicPartition

from infra.kafka_clients import make_consumer, make_producer
from schemas.codec import AvroCodec
from schemas.topics import CATALOG
from tests.avro_samples import sample_record

TOPICS_BY_SCHEMA = {}
for _spec in CATALOG:
    if _spec.schema:
        TOPICS_BY_SCHEMA.setdefault(_spec.schema, _spec.name)


@pytest.mark.parametrize("schema_name", sorted(TOPICS_BY_SCHEMA))
def test_schema_round_trips_through_the_broker(kafka, schema_name: str) -> None:
    topic = TOPICS_BY_SCHEMA[schema_name]
    codec = AvroCodec()
    records = [sample_record(codec.registry.current(schema_name).parsed, seed=i) for i in range(5)]
    key = f"it-{uuid.uuid4().hex}".encode()  # one key: all on one partition, in order

    producer = make_producer(kafka.settings)
    placed: list[tuple[int, int]] = []
    for record in records:
        producer.produce(topic, key=key, value=codec.encode(schema_name, record),
                         on_delivery=lambda err, msg: placed.append((msg.partition(), msg.offset())) if err is None else None)
    assert producer.flush(30) == 0
    assert len(placed) == len(records)
    partition = placed[0][0]
    assert all(p == partition for p, _ in placed)

    consumer = make_consumer(kafka.settings, group_id=f"it-{uuid.uuid4().hex}")
    consumer.assign([TopicPartition(topic, partition, placed[0][1])])
    got = []
    deadline = time.monotonic() + 30
    try:
        while len(got) < len(records) and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error() and msg.key() == key:
                got.append(codec.decode(msg.value(), reader=schema_name))
    finally:
        consumer.close()
    assert got == records
