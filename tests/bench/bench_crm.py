"""CRM benchmark: cases/s from `crm.case-events`-shaped topic to the Salesforce emulator, and API calls per
1,000 cases, for several sink job sizes, on the local stack (real Kafka broker, emulator over HTTP)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone

import requests
from confluent_kafka.admin import NewTopic

from connectors.crm.salesforce import SalesforceCrm
from connectors.crm.sink import CaseSink
from infra.kafka_clients import make_admin, make_producer
from infra.settings import get_settings
from infra.stack import Stack
from schemas.codec import AvroCodec
from tests.bench.plots import bar_chart

DESCRIPTION = "cases/s from topic to the Salesforce emulator and API calls per 1,000 cases, by sink job size"


def _publish(settings, topic: str, prefix: str, n: int) -> None:
    codec = AvroCodec()
    producer = make_producer(settings)
    now = datetime.now(timezone.utc)
    for i in range(n):
        case_id = f"{prefix}-{i}"
        producer.produce(topic, key=case_id.encode(), value=codec.encode("CaseEvent", {
            "event_id": f"{case_id}-0", "case_id": case_id, "conversation_id": f"conv-{i}", "customer_id": None,
            "type": "CREATED", "occurred_at": now, "channel": "EMAIL", "subject": "Refund not received",
            "transcript_excerpt": "customer: no me ha llegado el reembolso\nbot: te paso con un agente",
            "priority": "MEDIUM", "status": "ESCALATED", "intent": "refund_status", "confidence": 0.87,
            "sentiment": "negative", "queue": "es-billing"}))
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(60)


def _run_variant(settings, emulator_url: str, job_size: int, n: int) -> dict:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    topic = f"bench.{prefix}.case-events"
    admin = make_admin(settings)
    for future in admin.create_topics([NewTopic(topic, 6, 1), NewTopic(f"{topic}.dlq", 1, 1)]).values():
        future.result(30)
    _publish(settings, topic, prefix, n)
    variant_settings = settings.model_copy(update={
        "crm_batch_max_records": job_size, "crm_batch_max_wait_s": 0.5, "crm_poll_interval_s": 0.05,
        "crm_group_id": f"bench-{prefix}", "sf_host": emulator_url, "sf_login_url": emulator_url})
    crm = SalesforceCrm.from_settings(variant_settings)
    server_calls_before = requests.get(f"{emulator_url}/__emulator/stats", timeout=10).json()["api_calls"]
    done: dict[str, float] = {}

    def watch() -> None:
        while "t" not in done:
            if len(requests.get(f"{emulator_url}/__emulator/cases", params={"prefix": prefix}, timeout=30).json()) >= n:
                done["t"] = time.perf_counter()
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    start = time.perf_counter()
    watcher.start()
    CaseSink(variant_settings, crm, topic=topic).run(stop_when_idle_s=2.0)
    watcher.join(timeout=60)
    elapsed = done.get("t", time.perf_counter()) - start
    server_calls = requests.get(f"{emulator_url}/__emulator/stats", timeout=10).json()["api_calls"] - server_calls_before
    return {"cases_per_s": round(n / elapsed, 1), "api_calls_per_1000_cases": round(1000 * server_calls / n, 1),
            "client_api_calls": crm.api_calls(), "seconds": round(elapsed, 2), "complete": "t" in done}


def run(quick: bool = False) -> dict:
    settings = get_settings()
    Stack.from_settings(settings).up()
    emulator_url = f"http://127.0.0.1:{settings.sf_emulator_port}"
    n = 500 if quick else 10_000
    sizes = (100,) if quick else (100, 1000, 5000)
    variants = {f"job_size_{size}": _run_variant(settings, emulator_url, size, n) for size in sizes}
    throughput = {name: v["cases_per_s"] for name, v in variants.items()}
    calls = {name: v["api_calls_per_1000_cases"] for name, v in variants.items()}
    return {
        "bench": "crm",
        "unit": "cases/s (topic to Salesforce emulator, Bulk API upserts)",
        "results": throughput,
        "api_calls_per_1000_cases": calls,
        "details": variants,
        "cases": n,
        "quick": quick,
        "plot": bar_chart("crm", throughput, "cases/s"),
        "plot_api_calls": bar_chart("crm-api-calls", calls, "API calls per 1,000 cases"),
    }
