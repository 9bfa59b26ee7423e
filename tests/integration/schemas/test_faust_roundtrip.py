"""Every schema through a real Faust worker: the agent receives typed records and writes them back."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka.admin import NewTopic

from infra.kafka_clients import make_admin, make_consumer, make_producer
from schemas.codec import AvroCodec
from schemas.records import RECORD_TYPES
from tests.avro_samples import sample_record
from tests.integration.streams.workers import stop_worker

APP = Path(__file__).with_name("faust_echo_app.py")


def test_faust_agents_read_and_write_typed_records(kafka, tmp_path: Path) -> None:
    prefix = f"it.faust.{uuid.uuid4().hex[:8]}"
    names = sorted(RECORD_TYPES)
    admin = make_admin(kafka.settings)
    topics = [f"{prefix}.{n}.{d}" for n in names for d in ("in", "out")]
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in topics]).values():
        future.result(30)

    codec = AvroCodec()
    sent = {n: sample_record(codec.registry.current(n).parsed, seed=7) for n in names}
    producer = make_producer(kafka.settings)
    for name, record in sent.items():
        producer.produce(f"{prefix}.{name}.in", key=name.encode(), value=codec.encode(name, record))
    assert producer.flush(30) == 0

    env = {**kafka.env(), "ECHO_APP_ID": f"echo-{uuid.uuid4().hex[:8]}", "ECHO_TOPIC_PREFIX": prefix,
           "ECHO_DATADIR": str(tmp_path / "faust")}
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen([sys.executable, str(APP), "worker", "-l", "warn", "--without-web"],
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    consumer = make_consumer(kafka.settings, group_id=f"it-{uuid.uuid4().hex}")
    consumer.subscribe([f"{prefix}.{n}.out" for n in names])
    received: dict[str, dict] = {}
    try:
        deadline = time.monotonic() + 120
        while len(received) < len(names) and time.monotonic() < deadline:
            assert worker.poll() is None, f"worker exited:\n{log.read_text()[-3000:]}"
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            name = msg.key().decode()
            received[name] = codec.decode(msg.value(), reader=name)
    finally:
        consumer.close()
        stop_worker(worker)
    assert set(received) == set(names), f"missing {set(names) - set(received)}; worker log:\n{log.read_text()[-3000:]}"
    assert received == sent
