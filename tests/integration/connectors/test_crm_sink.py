"""The case sink on the real broker against the emulator: upserts, dead letters, retries, re-auth, crashes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from confluent_kafka.admin import NewTopic

from connectors.crm.salesforce import SalesforceCrm
from connectors.crm.sink import CaseSink
from infra.dead_letters import headers_dict
from infra.kafka_clients import make_admin, make_consumer, make_producer
from infra.settings import Settings
from schemas.codec import AvroCodec

CODEC = AvroCodec()
STATUSES = ["NEW", "ESCALATED", "WORKING", "CLOSED"]


def make_topic(kafka, name: str, partitions: int = 3) -> str:
    admin = make_admin(kafka.settings)
    for future in admin.create_topics([NewTopic(name, partitions, 1), NewTopic(f"{name}.dlq", 1, 1)]).values():
        future.result(30)
    return name


def case_event(case_id: str, step: int, **overrides) -> dict:
    return {
        "event_id": f"{case_id}-e{step}", "case_id": case_id, "conversation_id": f"conv-{case_id}",
        "customer_id": None, "type": "CREATED" if step == 0 else ("CLOSED" if step == 3 else "UPDATED"),
        "occurred_at": datetime(2026, 11, 25, 10, tzinfo=timezone.utc) + timedelta(seconds=step),
        "channel": "WHATSAPP", "subject": "Pedido no llegado", "transcript_excerpt": f"turn {step}",
        "priority": "HIGH", "status": STATUSES[step], "intent": "delivery_problem", "confidence": 0.91,
        "sentiment": "negative", "queue": "es-logistics", **overrides,
    }


def publish(kafka, topic: str, events: list[dict], extra: list[bytes] = ()) -> None:
    producer = make_producer(kafka.settings)
    for event in events:
        producer.produce(topic, key=event["case_id"].encode(), value=CODEC.encode("CaseEvent", event))
    for raw in extra:
        producer.produce(topic, key=b"garbage", value=raw)
    assert producer.flush(30) == 0


def sink_settings(kafka, salesforce, **overrides) -> Settings:
    return Settings(kafka_bootstrap=kafka.bootstrap, sf_host=salesforce.url, sf_login_url=salesforce.url,
                    crm_group_id=f"sink-{uuid.uuid4().hex[:8]}", crm_batch_max_wait_s=1.0, crm_poll_interval_s=0.05,
                    **overrides)


def read_all(kafka, topic: str, expect: int, timeout_s: float = 30) -> list:
    consumer = make_consumer(kafka.settings, group_id=f"read-{uuid.uuid4().hex}")
    consumer.subscribe([topic])
    got = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < expect and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got.append(msg)
        extra = consumer.poll(1.0)  # nothing more should arrive
        if extra is not None and not extra.error():
            got.append(extra)
    finally:
        consumer.close()
    return got


def test_events_become_cases_latest_state_wins_and_rejects_are_dead_lettered(kafka, salesforce) -> None:
    prefix = f"sink-{uuid.uuid4().hex[:8]}"
    topic = make_topic(kafka, f"it.{prefix}.case-events")
    cases = [f"{prefix}-{i}" for i in range(20)]
    events = [case_event(c, step) for step in range(4) for c in cases]
    rejected = cases[5]
    salesforce.faults(reject_external_ids=[rejected])
    publish(kafka, topic, events, extra=[b"\x00not avro"])
    try:
        sink = CaseSink(sink_settings(kafka, salesforce), SalesforceCrm.from_settings(sink_settings(kafka, salesforce)), topic=topic)
        sink.run(stop_when_idle_s=3)
    finally:
        salesforce.faults(reject_external_ids=[])

    stored = {c["Centralita_Case_Id__c"]: c for c in salesforce.cases(prefix)}
    assert set(stored) == set(cases) - {rejected}
    first = stored[cases[0]]
    assert first["Status"] == "Closed" and first["Origin"] == "WhatsApp" and first["Priority"] == "High"
    assert first["Description"] == "turn 3" and first["Centralita_Intent__c"] == "delivery_problem"
    assert float(first["Centralita_Confidence__c"]) == 0.91 and first["Centralita_Sentiment__c"] == "negative"

    dead = read_all(kafka, f"{topic}.dlq", expect=5)
    reasons = sorted(headers_dict(m.headers())["centralita.dlq.reason"] for m in dead)
    assert reasons == ["FIELD_CUSTOM_VALIDATION_EXCEPTION"] * 4 + ["undecodable"]
    rejected_values = [m.value() for m in dead if m.key() == rejected.encode()]
    assert sorted(CODEC.decode(v)["status"] for v in rejected_values) == sorted(STATUSES)
    assert all(headers_dict(m.headers())["centralita.dlq.topic"] == topic for m in dead)


def test_transient_5xx_and_expired_session_are_retried(kafka, salesforce) -> None:
    prefix = f"retry-{uuid.uuid4().hex[:8]}"
    topic = make_topic(kafka, f"it.{prefix}.case-events")
    publish(kafka, topic, [case_event(f"{prefix}-{i}", 0) for i in range(10)])
    settings = sink_settings(kafka, salesforce)
    crm = SalesforceCrm.from_settings(settings)
    crm.tokens.token()  # a session exists before it expires
    salesforce.faults(expire_sessions=True)
    failures_before = salesforce.stats()["injected_failures"]
    salesforce.faults(fail_next=2, fail_status=503)
    sleeps: list[float] = []
    CaseSink(settings, crm, topic=topic, sleep=sleeps.append).run(stop_when_idle_s=3)
    assert len(salesforce.cases(prefix)) == 10
    assert salesforce.stats()["injected_failures"] - failures_before == 2
    assert len(sleeps) >= 1  # backed off before retrying


def _start_sink(kafka, salesforce, topic: str, group: str, log: Path) -> subprocess.Popen:
    env = {**kafka.env(), **salesforce.env(), "CENTRALITA_CRM_GROUP_ID": group, "CENTRALITA_CRM_BATCH_MAX_RECORDS": "100",
           "CENTRALITA_CRM_BATCH_MAX_WAIT_S": "0.5", "CENTRALITA_CRM_POLL_INTERVAL_S": "0.05",
           "CENTRALITA_BROKER_SESSION_TIMEOUT_S": "6"}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "infra.cli", "crm-sink", "--topic", topic], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def test_sink_killed_mid_job_leaves_no_duplicate_and_no_missing_case(kafka, salesforce, tmp_path: Path) -> None:
    prefix = f"kill-{uuid.uuid4().hex[:8]}"
    topic = make_topic(kafka, f"it.{prefix}.case-events")
    cases = [f"{prefix}-{i}" for i in range(150)]
    events = [case_event(c, step) for step in range(4) for c in cases]
    publish(kafka, topic, events)
    group = f"sink-{prefix}"
    log = tmp_path / "sink.log"
    salesforce.faults(batch_delay_s=0.4)  # jobs take long enough to be killed in the middle
    kills = 0
    try:
        for _ in range(3):
            calls = salesforce.stats()["api_calls"]
            sink = _start_sink(kafka, salesforce, topic, group, log)
            deadline = time.monotonic() + 60
            while salesforce.stats()["api_calls"] < calls + 2 and time.monotonic() < deadline:
                time.sleep(0.05)  # a job was created and a batch posted: now it is mid-job
            sink.send_signal(signal.SIGKILL)
            sink.wait(10)
            kills += 1
        salesforce.faults(batch_delay_s=0.05)
        sink = _start_sink(kafka, salesforce, topic, group, log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            stored = salesforce.cases(prefix)
            if len(stored) == len(cases) and all(c["Status"] == "Closed" for c in stored):
                break
            time.sleep(0.5)
        sink.send_signal(signal.SIGTERM)
        sink.wait(30)
    finally:
        salesforce.faults(batch_delay_s=0.05)
    stored = salesforce.cases(prefix)
    ids = [c["Centralita_Case_Id__c"] for c in stored]
    assert kills == 3
    assert sorted(ids) == sorted(cases), f"sink log:\n{log.read_text()[-2000:]}"
    assert len({c["Id"] for c in stored}) == len(cases)
    assert all(c["Status"] == "Closed" and c["Description"] == "turn 3" for c in stored)
    assert read_all(kafka, f"{topic}.dlq", expect=0, timeout_s=2) == []
