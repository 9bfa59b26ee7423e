"""Monitoring on real processes: a real Prometheus (Debian's) scrapes a worker, the gateway, the CRM sink and
Triton while `centralita simulate` sends customers through the gateway; the alerting rules load and evaluate,
no component alert fires, and every dashboard query runs against the scraped data."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.dashboard import build_dashboard, expressions
from infra.processes import free_port
from infra.prometheus_server import PrometheusServer
from infra.settings import Settings
from infra.simulate import run_simulation
from tests.integration.connectors.test_gateway import SECRETS, start_gateway
from tests.integration.streams.workers import start_worker, stop_worker, wait_ready
from tests.unit.infra.test_dashboard import concrete

JOBS = ("centralita-worker", "centralita-gateway", "centralita-crm-sink", "triton")


def wait_for(query, condition, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    result = None
    while time.monotonic() < deadline:
        result = query()
        if condition(result):
            return result
        time.sleep(1)
    raise AssertionError(f"condition not met within {timeout_s}s; last result: {result}")


@pytest.fixture
def monitored(kafka, triton, salesforce, tmp_path: Path):
    """Worker, gateway and CRM sink processes, each on its own metrics port, and Prometheus scraping them."""
    base = {**kafka.env(), **triton.settings_env(), **salesforce.env()}

    worker = start_worker(base, tmp_path, f"monitoring-{free_port()}")
    gateway, gateway_url = start_gateway(base, tmp_path, "gateway")
    sink_port = free_port()
    sink_log = open(tmp_path / "crm-sink.log", "wb")
    sink = subprocess.Popen([sys.executable, "-m", "infra.cli", "crm-sink"], stdout=sink_log, stderr=subprocess.STDOUT,
                            env={**base, "CENTRALITA_CRM_METRICS_PORT": str(sink_port),
                                 "CENTRALITA_CRM_GROUP_ID": f"monitoring-sink-{sink_port}", "CENTRALITA_CRM_BATCH_MAX_WAIT_S": "0.5"})
    prometheus = PrometheusServer(free_port(), tmp_path / "prometheus-state", targets={
        "centralita-worker": [f"127.0.0.1:{worker.web_port}"], "centralita-gateway": [gateway_url.removeprefix("http://")],
        "centralita-crm-sink": [f"127.0.0.1:{sink_port}"], "triton": [f"127.0.0.1:{triton.server.metrics_port}"]},
        scrape_interval_s=1.0)
    try:
        wait_ready(worker, 120)
        prometheus.start()
        yield prometheus, gateway_url
    finally:
        prometheus.stop()
        for proc in (sink, gateway):
            proc.terminate()
            proc.wait(20)
        stop_worker(worker)


def test_prometheus_scrapes_every_process_and_the_rules_and_dashboard_work(kafka, monitored) -> None:
    prometheus, gateway_url = monitored
    up = wait_for(lambda: {r["metric"]["job"]: r["value"][1] for r in prometheus.query("up")},
                  lambda jobs: all(jobs.get(job) == "1" for job in JOBS))
    assert set(JOBS) <= set(up)

    settings = Settings(kafka_bootstrap=kafka.bootstrap, meta_app_secret=SECRETS["CENTRALITA_META_APP_SECRET"],
                        twilio_auth_token=SECRETS["CENTRALITA_TWILIO_AUTH_TOKEN"], relay_secret=SECRETS["CENTRALITA_RELAY_SECRET"],
                        public_base_url="https://hooks.example.com")
    result = run_simulation(settings, rate=10, duration_s=6, via="gateway", gateway_url=gateway_url, seed=7,
                            think_s=(0.2, 0.5), drain_s=30)
    assert result["sent"] == 60 and result["send_errors"] == {}
    assert result["answered"] == result["sent"], result
    assert len(result["by_channel"]) >= 4 and result["handoffs"] >= 1

    accepted = wait_for(lambda: prometheus.query('sum(centralita_gateway_webhooks_total{outcome="accepted"})'),
                        lambda r: r and float(r[0]["value"][1]) >= 60)
    assert float(accepted[0]["value"][1]) == 60
    wait_for(lambda: prometheus.query("sum(centralita_engine_messages_total)"), lambda r: r and float(r[0]["value"][1]) >= 60)
    wait_for(lambda: prometheus.query('sum(nv_inference_request_success{model="intent"})'), lambda r: r and float(r[0]["value"][1]) > 0)
    wait_for(lambda: prometheus.query('sum(centralita_crm_cases_written_total{result="ok"})'),
             lambda r: r and float(r[0]["value"][1]) >= 1, timeout_s=90)
    wait_for(lambda: prometheus.query("centralita_engine_reply_latency_seconds_count"), lambda r: bool(r))

    groups = {g["name"]: g for g in prometheus.get("/api/v1/rules")["groups"]}
    assert {"centralita-recording", "centralita-alerts"} <= set(groups)
    for group in groups.values():
        for rule in group["rules"]:
            assert rule["health"] in ("ok", "unknown"), (rule["name"], rule.get("lastError"))
    wait_for(lambda: prometheus.query("centralita:engine_messages:rate5m"), bool)
    firing = {a["labels"]["alertname"] for a in prometheus.get("/api/v1/alerts")["alerts"]}
    assert not firing & {"CentralitaTritonDown", "CentralitaWorkerDown", "CentralitaCrmSinkDown", "CentralitaInferenceBreakerOpen"}

    answered = {}
    for title, expr in expressions(build_dashboard()):
        answered[expr] = bool(prometheus.query(concrete(expr)))  # raises if Prometheus refuses the query
    for must in ("centralita_engine_reply_latency_seconds_bucket", "centralita_inbound_messages_total",
                 "centralita_nlu_predictions_total", "nv_inference_request_success", "centralita_gateway_webhooks_total"):
        assert any(ok for expr, ok in answered.items() if must in expr), f"no data behind the panels on {must}"
