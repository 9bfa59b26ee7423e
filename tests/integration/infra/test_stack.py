"""The local stack and the CLI against a real broker: idempotent up, status, clean stop, topics, demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inference.triton_server import TritonServer
from infra.kafka_clients import cluster_metadata, make_admin
from infra.processes import free_port, pid_is_alive
from infra.prometheus_server import PrometheusServer
from infra.salesforce_emulator import SalesforceEmulator
from infra.settings import PROJECT_ROOT, Settings
from schemas.topics import CATALOG

CLI = [sys.executable, "-m", "infra.cli"]


def run_cli(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + args, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def test_second_start_reports_the_running_broker(kafka) -> None:
    if kafka.broker is None:
        pytest.skip("external broker given")
    assert kafka.broker.start().startswith(f"Kafka {kafka.broker.version} already running on {kafka.bootstrap}")
    status = kafka.broker.status()
    assert status["state"] == "ready" and status["address"] == kafka.bootstrap


def test_catalog_topics_exist_with_their_partitions(kafka) -> None:
    topics = cluster_metadata(make_admin(kafka.settings), kafka.bootstrap).topics
    for spec in CATALOG:
        assert spec.name in topics, spec.name
        assert len(topics[spec.name].partitions) == spec.partitions, spec.name


def test_topics_create_is_idempotent(kafka) -> None:
    result = run_cli(["topics", "create"], kafka.env())
    assert result.returncode == 0, result.stderr
    assert f"0 created, {len(CATALOG)} already existed" in result.stdout


def test_demo_plays_conversations_across_channels(kafka) -> None:
    if kafka.broker is None:
        pytest.skip("the demo brings its own stack up; it is tested with the fixture's broker")
    port = free_port()
    emulator = SalesforceEmulator(port=port, state_dir=kafka.broker.state_dir)  # the demo's stack starts it
    triton = TritonServer(free_port(), free_port(), free_port(), PROJECT_ROOT / "triton_models", kafka.broker.state_dir,
                          Settings().cache_dir, name="triton")  # and this one
    prometheus = PrometheusServer(free_port(), kafka.broker.state_dir, targets={})  # and Prometheus
    env = {**kafka.env(), "CENTRALITA_SF_EMULATOR_PORT": str(port), "CENTRALITA_SF_HOST": emulator.url,
           "CENTRALITA_PROMETHEUS_PORT": str(prometheus.port),
           "CENTRALITA_SF_LOGIN_URL": emulator.url, "CENTRALITA_APP_ID": f"demo-{free_port()}",
           "CENTRALITA_TRITON_HTTP_PORT": str(triton.http_port), "CENTRALITA_TRITON_GRPC_PORT": str(triton.grpc_port),
           "CENTRALITA_TRITON_METRICS_PORT": str(triton.metrics_port), "CENTRALITA_TRITON_URL": triton.grpc_address}
    try:
        result = run_cli(["demo"], env, timeout=300)
    finally:
        emulator.stop()
        triton.stop()
        prometheus.stop()
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Kafka 4.1.1 already running" in out and f"Salesforce emulator started on {emulator.url}" in out
    assert f"Triton started on {triton.grpc_address}" in out
    assert f"Prometheus started on {prometheus.url}" in out
    for channel in ("WHATSAPP", "SMS", "EMAIL", "WEBCHAT"):
        assert f"{channel} conversation" in out
    assert "→ answer" in out and "→ clarify" in out and "→ handoff" in out and "→ silent" in out
    assert "every message got exactly one reply or handoff" in out
    assert "6 conversations on 4 channels, 10 customer messages" in out
    assert "1 customer(s) switched channel and continued the same session and case" in out
    cases = [line for line in out.splitlines() if line.startswith("│ 500")]
    assert len(cases) == 3  # the channel switch continues a case: no new one


def test_stack_up_status_down_cycle(tmp_path: Path) -> None:
    """A separate broker, through the CLI: up, up again, status, down; state and jars reused."""
    port, controller = free_port(), free_port()
    env = {
        **os.environ,
        "CENTRALITA_STATE_DIR": str(tmp_path / "state"),
        "CENTRALITA_KAFKA_PORT": str(port),
        "CENTRALITA_KAFKA_CONTROLLER_PORT": str(controller),
        "CENTRALITA_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
        "CENTRALITA_SF_EMULATOR_PORT": str(free_port()),
        "CENTRALITA_TRITON_HTTP_PORT": str(free_port()),
        "CENTRALITA_TRITON_GRPC_PORT": str(free_port()),
        "CENTRALITA_TRITON_METRICS_PORT": str(free_port()),
        "CENTRALITA_PROMETHEUS_PORT": str(free_port()),
    }
    up = run_cli(["stack", "up"], env)
    assert up.returncode == 0, up.stderr
    assert f"started on 127.0.0.1:{port}" in up.stdout
    try:
        again = run_cli(["stack", "up"], env)
        assert again.returncode == 0 and f"already running on 127.0.0.1:{port}" in again.stdout
        status = json.loads(run_cli(["stack", "status", "--json"], env).stdout)
        assert [(s["component"], s["state"]) for s in status] == [("kafka", "ready"), ("salesforce-emulator", "ready"),
                                                                  ("triton", "ready"), ("prometheus", "ready")]
        pid = int(status[0]["pid"])
        assert (tmp_path / "state" / "kafka" / "data" / "meta.properties").exists()
        assert "Kafka Server started" in (tmp_path / "state" / "kafka.log").read_text()
    finally:
        down = run_cli(["stack", "down"], env)
    assert down.returncode == 0 and "Kafka stopped" in down.stdout and "Salesforce emulator stopped" in down.stdout
    assert "Triton stopped" in down.stdout and "Prometheus stopped" in down.stdout
    assert not pid_is_alive(pid)
    assert {s["state"] for s in json.loads(run_cli(["stack", "status", "--json"], env).stdout)} == {"stopped"}
    assert run_cli(["stack", "down"], env).stdout.splitlines() == ["Prometheus was not running", "Triton was not running", "Salesforce emulator was not running",
                                                                  "Kafka was not running"]
