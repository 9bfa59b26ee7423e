"""End-to-end benchmark: customer messages from the raw web chat topic to formatted replies on
`channel.webchat.outbound`, through one real worker (normalize, sessions, inference through the local Triton on CPU, routing,
replies, formatting), at several offered loads. Reports achieved messages/s and p50/p99 latency per load."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import OFFSET_END, TopicPartition

from infra.kafka_clients import make_admin, make_consumer, make_producer
from infra.processes import free_port
from infra.settings import get_settings
from infra.stack import Stack
from infra.topic_admin import create_topics
from schemas.topics import CATALOG
from streams.ids import message_id
from tests.bench.stats import percentile
from tests.integration.streams.workers import stop_worker

DESCRIPTION = "end-to-end msg/s and p50/p99 latency, raw topic to outbound topic, one worker, several offered loads"
TEXTS = ["hola, ¿dónde está mi pedido 4711?", "quiero cancelar mi pedido 5521", "can I change the delivery address?",
         "no me ha llegado el reembolso", "gracias", "my card payment failed", "¿cuándo llega?"]


class Replies:
    """Follows channel.webchat.outbound from its end and records when each reply arrived."""

    def __init__(self, settings) -> None:
        self.consumer = make_consumer(settings, group_id=f"bench-e2e-{uuid.uuid4().hex}")
        meta = self.consumer.list_topics("channel.webchat.outbound", timeout=10).topics["channel.webchat.outbound"]
        self.consumer.assign([TopicPartition("channel.webchat.outbound", p, OFFSET_END) for p in meta.partitions])
        self.arrived: dict[str, float] = {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self.consumer.consume(1000, timeout=0.1):
                if not msg.error():
                    payload = json.loads(msg.value())
                    self.arrived.setdefault(payload.get("in_reply_to") or "", time.time())

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.consumer.close()


def offer(settings, rate: float, seconds: float, tag: str) -> dict[str, float]:
    """Send `rate` messages/s for `seconds`; 200 visitors, so conversations have several turns."""
    producer = make_producer(settings, **{"linger.ms": 2})
    sent: dict[str, float] = {}
    total = int(rate * seconds)
    start = time.time()
    for i in range(total):
        due = start + i / rate
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        provider_id = f"{tag}-{i}"
        visitor = f"v-{tag}-{i % 200}"
        body = json.dumps({"type": "message", "message_id": provider_id, "visitor_id": visitor, "text": TEXTS[i % len(TEXTS)]})
        producer.produce("channel.webchat.inbound.raw", key=visitor.encode(), value=body.encode())
        sent[message_id("webchat", provider_id)] = time.time()
        producer.poll(0)
    producer.flush(30)
    return sent


def run(quick: bool = False) -> dict:
    settings = get_settings()
    Stack.from_settings(settings).up()
    create_topics(make_admin(settings), settings.kafka_bootstrap, CATALOG)
    loads = (100, 300) if quick else (100, 250, 500, 1000, 1500, 2000)
    seconds = 5 if quick else 15
    state = Path(settings.state_dir) / "bench-e2e"
    state.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CENTRALITA_APP_ID": f"bench-e2e-{uuid.uuid4().hex[:6]}", "CENTRALITA_STATE_DIR": str(state),
           "CENTRALITA_WORKER_WEB_PORT": str(free_port()), "CENTRALITA_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
           "CENTRALITA_AUTO_OFFSET_RESET": "latest"}  # a fresh group skips the topics' history
    with open(state / "worker.log", "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", "-l", "warn"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    replies = Replies(settings)
    results, details = {}, {}
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # warm up until the worker answers (its group has joined)
            warm = offer(settings, 50, 1, f"warm-{uuid.uuid4().hex[:6]}")
            time.sleep(3)
            if any(m in replies.arrived for m in warm):
                break
        else:
            raise RuntimeError(f"the worker did not answer within 120 s; see {state / 'worker.log'}")
        for rate in loads:
            tag = f"r{rate}-{uuid.uuid4().hex[:6]}"
            sent = offer(settings, rate, seconds, tag)
            end = time.time() + 30
            while time.time() < end and sum(m in replies.arrived for m in sent) < len(sent):
                time.sleep(0.2)
            latencies = [replies.arrived[m] - t for m, t in sent.items() if m in replies.arrived]
            done = [replies.arrived[m] for m in sent if m in replies.arrived]
            span = (max(done) - min(sent.values())) if done else float("nan")
            details[f"offered_{rate}"] = {
                "achieved_msg_per_s": round(len(done) / span, 1) if done else 0.0,
                "p50_ms": round(1000 * percentile(latencies, 0.5), 1), "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
                "mean_ms": round(1000 * statistics.fmean(latencies), 1) if latencies else None,
                "replied": len(done), "sent": len(sent)}
            results[f"offered_{rate}"] = details[f"offered_{rate}"]["achieved_msg_per_s"]
    finally:
        replies.stop()
        stop_worker(worker)
    return {"bench": "e2e", "unit": "msg/s achieved (raw topic to channel outbound topic, one worker, inference through Triton on CPU)",
            "results": results, "latency": {k: {"p50_ms": v["p50_ms"], "p99_ms": v["p99_ms"]} for k, v in details.items()},
            "details": details, "seconds_per_load": seconds, "quick": quick, "plot": plot(details)}


def plot(details: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tests.bench.plots import save_figure

    offered = [int(k.split("_")[1]) for k in details]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(offered, [d["achieved_msg_per_s"] for d in details.values()], marker="o", label="achieved")
    left.plot(offered, offered, linestyle="--", color="grey", label="offered")
    left.set_xlabel("offered msg/s")
    left.set_ylabel("achieved msg/s")
    left.legend()
    right.plot(offered, [d["p50_ms"] for d in details.values()], marker="o", label="p50")
    right.plot(offered, [d["p99_ms"] for d in details.values()], marker="o", label="p99")
    right.axhline(250, color="red", linestyle=":", label="p99 target 250 ms")
    right.set_xlabel("offered msg/s")
    right.set_ylabel("latency ms")
    right.set_yscale("log")
    right.legend()
    fig.suptitle("centralita bench e2e (one worker)")
    return save_figure(fig, "e2e")
