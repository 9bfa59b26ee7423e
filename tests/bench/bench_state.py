"""State benchmark: does the worker's state stay bounded, and how long does a restart take with much of it?

- Bounded: one worker (RocksDB store) with short retentions (sessions idle 15 s close, closed sessions are kept 20 s,
  dedupe ids 30 s, identities as long as the channel-switch window says, here 15 s) takes first-contact conversations
  in a closed loop (the backlog never exceeds a few thousand). At 100,000 and 200,000 conversations: the worker's
  RSS, the size on disk of its tables' changelogs (compacted, tombstones dropped after 1 s), live sessions. Bounded
  state levels off: the figures at 200,000 are close to those at 100,000.
- Restart: 100,000 live sessions (long retention), the worker is SIGKILLed and started again, once on its own
  disk (RocksDB kept, only the changelog's tail is read) and once on an empty one (a new node: the whole changelog is
  read); the figure is the time from the process start to the first answer to a message sent at that moment.
Inference is the rule-based stand-in (CENTRALITA_NLU_BACKEND=rules): this measures state, not the model.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests

from infra.kafka_broker import KafkaBroker
from infra.kafka_clients import make_admin, make_producer
from infra.processes import free_port
from infra.settings import get_settings
from infra.stack import Stack
from infra.topic_admin import catalog_for, create_topics
from infra.webhooks import CustomerMessage, webhook_body
from tests.integration.streams.workers import stop_worker

DESCRIPTION = "worker RSS and changelog size after 100k/200k conversations with retention, and restart time with 100k sessions"
POLICY = """
[answer]
min_confidence = 0.6
[escalate]
intents = ["human_agent"]
not_understood_in_a_row = 1000
negative_sentiment_at_or_below = -2
[session]
inactivity_timeout_minutes = 0.25
channel_switch_window_minutes = 0.25
csat_channels = []
"""


def metric(port: int, name: str) -> float:
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except requests.RequestException:
        return -1.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return -1.0


def changelog_mb(data_dir: Path, app_id: str) -> dict[str, float]:
    sizes: dict[str, float] = {}
    for part in data_dir.glob(f"{app_id}-*-changelog-*"):
        table = part.name[len(app_id) + 1:].rsplit("-changelog-", 1)[0]
        sizes[table] = sizes.get(table, 0.0) + sum(f.stat().st_size for f in part.iterdir() if f.is_file()) / 2**20
    return {k: round(v, 2) for k, v in sorted(sizes.items())}


def start_worker(settings, state: Path, app_id: str, port: int, extra: dict) -> subprocess.Popen:
    env = {**os.environ, "CENTRALITA_APP_ID": app_id, "CENTRALITA_STATE_DIR": str(state),
           "CENTRALITA_WORKER_WEB_PORT": str(port), "CENTRALITA_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
           "CENTRALITA_NLU_BACKEND": "rules", **extra}
    state.mkdir(parents=True, exist_ok=True)
    log = open(state / "worker.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", "-l", "warn"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def first_contacts(settings, prefix: str, count: int, start: int = 0) -> None:
    producer = make_producer(settings, **{"linger.ms": 20})
    for i in range(start, start + count):
        body = webhook_body(CustomerMessage("whatsapp", f"{prefix}{i:08d}", f"{prefix}-{i}", "hola, ¿dónde está mi pedido?"))
        producer.produce("channel.whatsapp.inbound.raw", value=body)
        if i % 2000 == 0:
            producer.poll(0)
    producer.flush(120)


def drive(settings, worker: subprocess.Popen, port: int, prefix: str, total: int, checkpoints: tuple[int, ...],
          data_dir: Path, app_id: str, progress) -> list[dict]:
    """Feed first contacts in chunks while the worker keeps up; measure at each checkpoint."""
    chunk, sent, results = 5_000, 0, []
    pending = list(checkpoints)
    started = time.time()
    while pending:
        done = metric(port, "centralita_engine_messages_total")
        if worker.poll() is not None:
            raise RuntimeError("the worker exited")
        if sent < total and sent - done < 2 * chunk:
            first_contacts(settings, prefix, min(chunk, total - sent), sent)
            sent += min(chunk, total - sent)
        if done >= pending[0]:
            time.sleep(3)  # let a sweep and the log cleaner catch up with the last chunk
            results.append({"conversations": pending.pop(0), "worker_rss_mb": rss_mb(worker.pid),
                            "changelog_mb": changelog_mb(data_dir, app_id),
                            "sessions_live": round(metric(port, "centralita_engine_messages_total")
                                                   - metric(port, "centralita_engine_sessions_purged_total")),
                            "sessions_purged": metric(port, "centralita_engine_sessions_purged_total"),
                            "dedupe_expired": metric(port, "centralita_inbound_dedupe_expired_total"),
                            "elapsed_s": round(time.time() - started, 1)})
        progress(done, total)
        time.sleep(1)
    return results


def first_answer_after_start(settings, state: Path, app_id: str, extra: dict, prefix: str, fresh: bool = False) -> dict:
    """Start a worker and, at once, a new customer's message; seconds until the worker answered it. A `fresh` app
    (no committed offsets yet) starts from the end of its topics: its message waits until the worker is up, or it
    would fall before the offsets the worker starts from."""
    port = free_port()
    started = time.time()
    worker = start_worker(settings, state, app_id, port, extra)
    while fresh and metric(port, "centralita_engine_messages_total") < 0:
        if worker.poll() is not None:
            raise RuntimeError("the worker exited")
        time.sleep(1)
    if fresh:
        time.sleep(5)
    answered = threading.Event()
    probe_id = f"{prefix}-probe-{uuid.uuid4().hex[:6]}"

    def follow() -> None:
        from confluent_kafka import TopicPartition

        from infra.kafka_clients import make_consumer
        from streams.ids import message_id
        import json

        consumer = make_consumer(settings, group_id=f"bench-state-{uuid.uuid4().hex[:6]}")
        topic = "channel.whatsapp.outbound"
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                         for p in parts])
        wanted = message_id("whatsapp", f"wamid.{probe_id}")
        while not answered.is_set() and time.time() - started < 600:
            for msg in consumer.consume(100, timeout=0.2):
                if not msg.error() and json.loads(msg.value()).get("in_reply_to") == wanted:
                    answered.set()
        consumer.close()

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    producer = make_producer(settings)
    producer.produce("channel.whatsapp.inbound.raw",
                     value=webhook_body(CustomerMessage("whatsapp", f"{prefix}99999999", probe_id, "hola")))
    producer.flush(30)
    answered.wait(600)
    seconds = round(time.time() - started, 1)
    rss = rss_mb(worker.pid) if worker.poll() is None else -1.0
    return {"worker": worker, "port": port, "first_answer_s": seconds if answered.is_set() else None, "rss_mb": rss}


def run(quick: bool = False) -> dict:
    settings = get_settings()
    Stack.from_settings(settings).up()
    create_topics(make_admin(settings), settings.kafka_bootstrap, catalog_for(settings))
    data_dir = KafkaBroker.from_settings(settings).data_dir
    root = Path(settings.state_dir) / "bench-state"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    policy = root / "policy.toml"
    policy.write_text(POLICY)
    first, second, live = (10_000, 20_000, 10_000) if quick else (100_000, 200_000, 100_000)
    run_id = uuid.uuid4().hex[:6]
    short = {"CENTRALITA_ROUTING_POLICY_FILE": str(policy), "CENTRALITA_SESSION_RETENTION_DAYS": str(20 / 86_400),
             "CENTRALITA_DEDUPE_DAYS": str(30 / 86_400), "CENTRALITA_SESSION_SWEEP_INTERVAL_S": "2",
             "CENTRALITA_CHANGELOG_SEGMENT_MS": "10000", "CENTRALITA_CHANGELOG_DELETE_RETENTION_MS": "1000",
             "CENTRALITA_AUTO_OFFSET_RESET": "latest"}

    def progress(done: float, total: int) -> None:
        print(f"\r  {int(done):>7}/{total} conversations", end="", file=sys.stderr, flush=True)

    bounded_id = f"bench-state-{run_id}"
    port = free_port()
    worker = start_worker(settings, root / "bounded", bounded_id, port, short)
    try:
        while metric(port, "centralita_engine_messages_total") < 0:
            time.sleep(1)
        time.sleep(5)
        bounded = drive(settings, worker, port, str(random.randint(30_000, 39_999)), second, (first, second), data_dir,
                        bounded_id, progress)
    finally:
        stop_worker(worker)
    print(file=sys.stderr)

    restart_id = f"bench-restart-{run_id}"
    long = {"CENTRALITA_AUTO_OFFSET_RESET": "latest"}
    prefix = random.randint(40_000, 49_990)
    started = first_answer_after_start(settings, root / "restart", restart_id, long, str(prefix), fresh=True)
    worker, port = started["worker"], started["port"]
    try:
        drive(settings, worker, port, str(prefix + 1), live, (live,), data_dir, restart_id, progress)
        time.sleep(5)
        loaded = {"sessions": live, "worker_rss_mb": rss_mb(worker.pid), "changelog_mb": changelog_mb(data_dir, restart_id)}
    finally:
        worker.kill()
        worker.wait(10)
    print(file=sys.stderr)
    own_disk = first_answer_after_start(settings, root / "restart", restart_id, long, str(prefix + 2))
    stop_worker(own_disk.pop("worker"))
    new_node = first_answer_after_start(settings, root / "restart-new-node", restart_id, long, str(prefix + 3))
    stop_worker(new_node.pop("worker"))
    growth = {k: round(bounded[1]["worker_rss_mb"] / bounded[0]["worker_rss_mb"], 2) for k in ("worker_rss_mb",)}
    level = sum(bounded[1]["changelog_mb"].values()) / max(0.01, sum(bounded[0]["changelog_mb"].values()))
    return {"bench": "state", "unit": "MB and seconds (one worker, RocksDB store, rule-based inference)",
            "results": {"rss_mb_at_first": bounded[0]["worker_rss_mb"], "rss_mb_at_second": bounded[1]["worker_rss_mb"],
                        "changelog_mb_at_first": round(sum(bounded[0]["changelog_mb"].values()), 2),
                        "changelog_mb_at_second": round(sum(bounded[1]["changelog_mb"].values()), 2),
                        "restart_first_answer_s_own_disk": own_disk["first_answer_s"],
                        "restart_first_answer_s_new_node": new_node["first_answer_s"]},
            "bounded": bounded, "rss_growth_ratio": growth["worker_rss_mb"], "changelog_growth_ratio": round(level, 2),
            "restart": {"loaded": loaded, "own_disk": own_disk, "new_node": new_node},
            "retention": {k.removeprefix("CENTRALITA_").lower(): v for k, v in short.items() if "POLICY" not in k},
            "quick": quick, "plot": plot(bounded, own_disk, new_node)}


def plot(bounded: list[dict], own_disk: dict, new_node: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tests.bench.plots import save_figure

    xs = [b["conversations"] for b in bounded]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(xs, [b["worker_rss_mb"] for b in bounded], marker="o", label="worker RSS (MB)")
    left.plot(xs, [sum(b["changelog_mb"].values()) for b in bounded], marker="o", label="changelogs on disk (MB)")
    left.set_xlabel("conversations handled")
    left.set_ylim(bottom=0)
    left.legend()
    left.set_title("state with retention: levels off")
    right.bar(["own disk", "new node"], [own_disk["first_answer_s"] or 0, new_node["first_answer_s"] or 0])
    right.set_ylabel("seconds from start to first answer")
    right.set_title("restart with live sessions")
    return save_figure(fig, "state")
