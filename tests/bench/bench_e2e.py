"""End-to-end benchmark on the local stack: customer messages from the raw channel topics to formatted replies on
`channel.<source>.outbound`, through one real worker (normalize, sessions, inference through the local Triton on
CPU, routing, replies, formatting).

- Capacity, and what it is worth: a backlog of first-contact WhatsApp messages (raw Cloud API bodies, no headers)
  is drained by one engine worker and, on the same broker in the same run, by a bare Faust agent that parses each
  body and writes one reply (`tests/bench/bare_agent.py`). Same records, same count, both warm (a warm-up part of
  the backlog goes first); rates come from the timestamps of the replies they write. The engine's figure counts
  only replies Triton classified: replies the fallback path made (inference failed or timed out) are counted apart.
- Offered loads: `infra.simulate.run_simulation` at several rates (open loop, the simulator's customers on every
  channel); answered msg/s and p50/p99 latency (sent to reply received) per load.
Targets (issue 13): capacity >= 0.4x the bare Faust agent on first-contact traffic; p99 <= 250 ms at 500 msg/s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from infra.kafka_clients import make_admin
from infra.processes import free_port
from infra.settings import PROJECT_ROOT, get_settings
from infra.simulate import run_simulation
from infra.stack import Stack
from infra.topic_admin import catalog_for, create_topics
from schemas.topics import SOURCES, TopicSpec
from tests.bench import capacity
from tests.bench.bare_agent import REPLIES
from tests.integration.streams.workers import stop_worker

DESCRIPTION = "engine capacity vs a bare Faust agent on the same backlog, and p50/p99 latency at several offered loads"
#: The topics a worker's consumer group reads; changelogs are read by recovery, not by the group.
WORKER_TOPICS = (*(f"channel.{source}.inbound.raw" for source in SOURCES), "conversation.handoff", "conversation.agent",
                 "conversation.timer")


def start_worker(settings, state: Path, app_id: str, name: str, env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "CENTRALITA_APP_ID": app_id, "CENTRALITA_STATE_DIR": str(state),
           "CENTRALITA_WORKER_WEB_PORT": str(free_port()), "CENTRALITA_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
           "CENTRALITA_AUTO_OFFSET_RESET": "latest", **(env or {})}  # a fresh group skips the topics' history
    log = open(state / f"{name}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", "-l", "warn"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def start_bare_agent(settings, state: Path, app_id: str) -> subprocess.Popen:
    env = {**os.environ, "BARE_AGENT_ID": app_id, "CENTRALITA_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
           "BARE_AGENT_WEB_PORT": str(free_port())}
    log = open(state / "bare-agent.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "tests.bench.bare_agent", "worker", "-l", "warn"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=str(PROJECT_ROOT))


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


def measure_capacity(settings, state: Path, warm: int, measured: int) -> dict:
    """The engine and the bare agent, one after the other, each draining the same backlog from its start."""
    run_id = uuid.uuid4().hex[:6]
    create_topics(make_admin(settings), settings.kafka_bootstrap, [TopicSpec(REPLIES, settings.partitions, 86_400_000,
                                                                            None, "conversation_id")])
    engine_group, bare_group = f"bench-capacity-{run_id}", f"bench-bare-{run_id}"
    worker_start = capacity.end_offsets(settings, WORKER_TOPICS)
    outputs_start = capacity.end_offsets(settings, ("channel.whatsapp.outbound", "conversation.log", REPLIES))
    capacity.commit_group(settings, engine_group, worker_start)
    capacity.commit_group(settings, bare_group, {k: v for k, v in worker_start.items() if k[0] == capacity.RAW_TOPIC})
    backlog = capacity.produce_backlog(settings, warm, measured)
    timeout = 120 + (warm + measured) / 100

    bare = start_bare_agent(settings, state, bare_group)
    try:
        bare_times = capacity.reply_times(settings, REPLIES, outputs_start, capacity.in_reply_to,
                                          set(backlog.warm + backlog.measured), timeout, lambda: bare.poll() is None)
        if bare.poll() is not None:
            raise RuntimeError(f"the bare Faust agent exited ({bare.returncode}); see {state / 'bare-agent.log'}")
    finally:
        stop_worker(bare)
    engine = start_worker(settings, state, engine_group, "worker-capacity")
    ids = {capacity.message_id("whatsapp", pid): pid for pid in backlog.warm + backlog.measured}
    try:
        engine_times = capacity.reply_times(settings, "channel.whatsapp.outbound", outputs_start, capacity.in_reply_to,
                                            set(ids), timeout, lambda: engine.poll() is None)
        if engine.poll() is not None:
            raise RuntimeError(f"the engine worker exited ({engine.returncode}); see {state / 'worker-capacity.log'}")
    finally:
        stop_worker(engine)
    measured_ids = backlog.measured_message_ids
    models = capacity.inbound_models(settings, outputs_start, set(measured_ids))
    by_model = {mid: t for mid, t in engine_times.items() if mid in measured_ids and models.get(mid)}
    fallback = sum(1 for mid in engine_times if mid in measured_ids and not models.get(mid))
    bare_measured = {pid: t for pid, t in bare_times.items() if pid in set(backlog.measured)}
    engine_rate, bare_rate = capacity.rate(by_model), capacity.rate(bare_measured)
    return {"backlog": {"warm_up": warm, "measured": measured, "source": "whatsapp, first contact, no headers"},
            "engine": {"answered_by_model": len(by_model), "answered_by_fallback": fallback,
                       "unanswered": measured - len(by_model) - fallback, "msg_per_s": engine_rate,
                       "model_versions": sorted({v for v in models.values() if v})},
            "bare_faust_agent": {"replied": len(bare_measured), "msg_per_s": bare_rate},
            "ratio": round(engine_rate / bare_rate, 3) if bare_rate else None}


def run(quick: bool = False) -> dict:
    settings = get_settings()
    Stack.from_settings(settings).up()
    create_topics(make_admin(settings), settings.kafka_bootstrap, catalog_for(settings))
    loads = (100, 300) if quick else (100, 250, 500, 750, 1000)
    seconds = 5 if quick else 20
    warm, measured = (1_000, 3_000) if quick else (4_000, 20_000)
    state = Path(settings.state_dir) / "bench-e2e"
    state.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:6]

    cap = measure_capacity(settings, state, warm, measured)
    worker = start_worker(settings, state, f"bench-e2e-{run_id}", "worker-offered")
    details = {}
    try:
        warm_up(settings, worker, state / "worker-offered.log")
        for rate in loads:
            details[f"offered_{rate}"] = summary(run_simulation(settings, rate, seconds, seed=rate, drain_s=30))
    finally:
        stop_worker(worker)

    at_500 = details.get("offered_500", {})
    return {"bench": "e2e", "unit": "msg/s answered (raw topics to channel outbound topics, one worker, inference through Triton on CPU)",
            "results": {**{k: v["answered_msg_per_s"] for k, v in details.items()}, "capacity": cap["engine"]["msg_per_s"],
                        "bare_faust_agent": cap["bare_faust_agent"]["msg_per_s"], "capacity_ratio": cap["ratio"]},
            "latency": {k: {"p50_ms": v["p50_ms"], "p99_ms": v["p99_ms"]} for k, v in details.items()},
            "details": details, "capacity": cap, "seconds_per_load": seconds, "quick": quick,
            "targets": {"capacity_ratio>=0.4": cap["ratio"] is not None and cap["ratio"] >= 0.4,
                        "p99_ms<=250_at_500": at_500.get("p99_ms") is not None and at_500["p99_ms"] <= 250},
            "plot": plot(details, cap)}


def plot(details: dict, cap: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tests.bench.plots import save_figure

    offered = [int(k.split("_")[1]) for k in details]
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4))
    left.bar(["engine", "bare Faust agent"], [cap["engine"]["msg_per_s"], cap["bare_faust_agent"]["msg_per_s"]],
             color=["tab:blue", "tab:grey"])
    left.set_ylabel("msg/s draining the same backlog")
    left.set_title(f"capacity: {cap['ratio']}x the bare agent (target 0.4x)")
    middle.plot(offered, [d["answered_msg_per_s"] for d in details.values()], marker="o", label="answered")
    middle.plot(offered, offered, linestyle="--", color="grey", label="offered")
    middle.set_xlabel("offered msg/s")
    middle.set_ylabel("answered msg/s")
    middle.legend()
    right.plot(offered, [d["p50_ms"] for d in details.values()], marker="o", label="p50")
    right.plot(offered, [d["p99_ms"] for d in details.values()], marker="o", label="p99")
    right.axhline(250, color="red", linestyle=":", label="p99 target 250 ms")
    right.set_xlabel("offered msg/s")
    right.set_ylabel("latency ms")
    right.set_yscale("log")
    right.legend()
    fig.suptitle("centralita bench e2e (one worker; Kafka, Triton and the load generator on the same machine)")
    return save_figure(fig, "e2e")
