"""End-to-end benchmark on the local stack: customer messages from the raw channel topics to formatted replies on
`channel.<source>.outbound`, through one real worker (normalize, sessions, inference through the local Triton on
CPU, routing, replies, formatting), with the simulator's customers (every channel, multi-turn personas).

- Offered loads: `infra.simulate.run_simulation` at several rates (open loop); achieved answered msg/s and
  p50/p99 latency (sent to reply received) per load.
- Capacity: a backlog of first messages is put on the raw topics while the worker's consumer group stands at
  their end (its offsets committed there), then the worker starts and drains it: messages/s of one worker
  process that never waits for traffic.
Targets (issue): >= 1,000 msg/s per worker process, p99 <= 250 ms at 500 msg/s offered.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import TopicPartition

from infra.kafka_clients import make_admin, make_consumer
from infra.processes import free_port
from infra.settings import get_settings
from infra.simulate import run_burst, run_simulation
from infra.stack import Stack
from infra.topic_admin import catalog_for, create_topics
from schemas.topics import SOURCES
from tests.integration.streams.workers import stop_worker

DESCRIPTION = "end-to-end msg/s and p50/p99 latency at several offered loads, and one worker's capacity (backlog drain)"
#: The topics a worker's consumer group reads (Faust's agents); changelogs are read by recovery, not by the group.
WORKER_TOPICS = (*(f"channel.{source}.inbound.raw" for source in SOURCES), "conversation.inbound", "conversation.outbound",
                 "conversation.handoff", "conversation.agent")


def start_worker(settings, state: Path, app_id: str, name: str) -> subprocess.Popen:
    env = {**os.environ, "CENTRALITA_APP_ID": app_id, "CENTRALITA_STATE_DIR": str(state),
           "CENTRALITA_WORKER_WEB_PORT": str(free_port()), "CENTRALITA_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
           "CENTRALITA_AUTO_OFFSET_RESET": "latest"}  # a fresh group skips the topics' history
    log = open(state / f"{name}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", "-l", "warn"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def commit_group_at_end(settings, group: str) -> None:
    """Make `group` start where the worker's topics end now (so a backlog written next is all it reads)."""
    consumer = make_consumer(settings, group_id=group)
    try:
        offsets = []
        for topic in WORKER_TOPICS:
            for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                offsets.append(TopicPartition(topic, partition, high))
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


def warm_up(settings, worker: subprocess.Popen, log: Path) -> None:
    """Until the worker answers (its group has joined, Triton and the code paths are warm)."""
    deadline = time.time() + 180
    while time.time() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited; see {log}")
        if run_simulation(settings, 50, 2, seed=1, drain_s=5)["answered"] >= 90:
            return
    raise RuntimeError(f"the worker did not answer within 180 s; see {log}")


def summary(result: dict) -> dict:
    return {"answered_msg_per_s": result["answered_msg_per_s"], "p50_ms": result["latency_ms"]["p50"],
            "p99_ms": result["latency_ms"]["p99"], "sent": result["sent"], "answered": result["answered"]}


def run(quick: bool = False) -> dict:
    settings = get_settings()
    Stack.from_settings(settings).up()
    create_topics(make_admin(settings), settings.kafka_bootstrap, catalog_for(settings))
    loads = (100, 300) if quick else (100, 250, 500, 750, 1000)
    seconds = 5 if quick else 20
    backlog = 2_000 if quick else 20_000
    state = Path(settings.state_dir) / "bench-e2e"
    state.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:6]

    worker = start_worker(settings, state, f"bench-e2e-{run_id}", "worker-offered")
    details = {}
    try:
        warm_up(settings, worker, state / "worker-offered.log")
        for rate in loads:
            details[f"offered_{rate}"] = summary(run_simulation(settings, rate, seconds, seed=rate, drain_s=30))
    finally:
        stop_worker(worker)

    capacity_id = f"bench-e2e-capacity-{run_id}"
    commit_group_at_end(settings, capacity_id)
    started: list[subprocess.Popen] = []
    try:
        drained = run_burst(settings, backlog, seed=7, drain_s=300,
                            on_sent=lambda: started.append(start_worker(settings, state, capacity_id, "worker-capacity")))
    finally:
        for process in started:
            stop_worker(process)
    capacity = {"backlog": backlog, "answered": drained["answered"], "drain_msg_per_s": drained["drain_msg_per_s"]}

    at_500 = details.get("offered_500", {})
    return {"bench": "e2e", "unit": "msg/s answered (raw topics to channel outbound topics, one worker, inference through Triton on CPU)",
            "results": {**{k: v["answered_msg_per_s"] for k, v in details.items()}, "capacity": capacity["drain_msg_per_s"]},
            "latency": {k: {"p50_ms": v["p50_ms"], "p99_ms": v["p99_ms"]} for k, v in details.items()},
            "details": details, "capacity": capacity, "seconds_per_load": seconds, "quick": quick,
            "targets": {"capacity_msg_per_s>=1000": capacity["drain_msg_per_s"] >= 1000,
                        "p99_ms<=250_at_500": at_500.get("p99_ms") is not None and at_500["p99_ms"] <= 250},
            "plot": plot(details, capacity)}


def plot(details: dict, capacity: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tests.bench.plots import save_figure

    offered = [int(k.split("_")[1]) for k in details]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(offered, [d["answered_msg_per_s"] for d in details.values()], marker="o", label="answered")
    left.plot(offered, offered, linestyle="--", color="grey", label="offered")
    left.axhline(capacity["drain_msg_per_s"], color="green", linestyle=":", label=f"capacity (backlog) {capacity['drain_msg_per_s']:.0f}")
    left.set_xlabel("offered msg/s")
    left.set_ylabel("answered msg/s")
    left.legend()
    right.plot(offered, [d["p50_ms"] for d in details.values()], marker="o", label="p50")
    right.plot(offered, [d["p99_ms"] for d in details.values()], marker="o", label="p99")
    right.axhline(250, color="red", linestyle=":", label="p99 target 250 ms")
    right.set_xlabel("offered msg/s")
    right.set_ylabel("latency ms")
    right.set_yscale("log")
    right.legend()
    fig.suptitle("centralita bench e2e (one worker; Kafka, Triton and the load generator on the same machine)")
    return save_figure(fig, "e2e")
