"""What the fault-injection tests and benchmarks share: a broker of their own (so it can be stopped), a pool of
real worker processes in slots (each slot its own state directory, like a pod and its volume), and customers who
write through a messaging integration that publishes the providers' raw bodies straight onto the raw topics:
no `centralita.*` headers, keyed by the customer's address or not keyed at all, and redelivered byte for byte.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from infra.kafka_broker import KafkaBroker
from infra.kafka_clients import make_admin, make_producer
from infra.processes import free_port
from infra.settings import Settings
from infra.topic_admin import create_topics
from infra.topic_admin import catalog_for
from infra.webhooks import CustomerMessage, webhook_body
from streams.ids import message_id


def start_own_broker(state: Path, **overrides) -> tuple[KafkaBroker, Settings]:
    """A single-node broker of the test's own, on free ports, with the catalog's topics."""
    port, controller = free_port(), free_port()
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{port}", kafka_port=port, kafka_controller_port=controller,
                        state_dir=state, broker_session_timeout_s=6, **overrides)
    broker = KafkaBroker.from_settings(settings)
    broker.start()
    create_topics(make_admin(settings), settings.kafka_bootstrap, catalog_for(settings))
    return broker, settings


def worker_env(settings: Settings, app_id: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "CENTRALITA_KAFKA_BOOTSTRAP": settings.kafka_bootstrap, "CENTRALITA_APP_ID": app_id,
            "CENTRALITA_BROKER_SESSION_TIMEOUT_S": str(settings.broker_session_timeout_s),
            "CENTRALITA_PARTITIONS": str(settings.partitions), **(extra or {})}


@dataclass
class WorkerPool:
    """Worker processes of one consumer group, by slot. A killed slot restarts on its own state directory."""

    env: dict[str, str]
    root: Path
    processes: dict[int, subprocess.Popen] = field(default_factory=dict)
    kills: list[dict] = field(default_factory=list)
    log_level: str = "info"

    def start(self, slot: int) -> subprocess.Popen:
        state = self.root / f"slot-{slot}"
        state.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = {**self.env, "CENTRALITA_STATE_DIR": str(state), "CENTRALITA_WORKER_WEB_PORT": str(port)}
        log_path = state / "worker.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", "-l", self.log_level], env=env,
                                       stdout=log, stderr=subprocess.STDOUT)
        process.web_port = port  # type: ignore[attr-defined]
        process.log_path = log_path  # type: ignore[attr-defined]
        process.log_start = log_path.stat().st_size if log_path.exists() else 0  # type: ignore[attr-defined]
        self.processes[slot] = process
        return process

    def kill(self, slot: int, why: str) -> None:
        """SIGKILL: no shutdown, no flush, no commit."""
        process = self.processes.pop(slot)
        assert process.poll() is None, f"worker in slot {slot} had exited already ({process.returncode}); see {process.log_path}"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        self.kills.append({"slot": slot, "pid": process.pid, "at": time.time(), "why": why})

    def wait_ready(self, slot: int, timeout_s: float = 90) -> None:
        """Until the slot's current process logs that it joined the group, recovered its tables and consumes."""
        process = self.processes[slot]
        marker = f"[{process.pid}] [INFO] [^Worker]: Ready".encode()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"worker in slot {slot} exited with {process.returncode}; see {process.log_path}")
            if marker in process.log_path.read_bytes():  # type: ignore[attr-defined]
                return
            time.sleep(0.2)
        raise AssertionError(f"worker in slot {slot} not ready in {timeout_s}s; see {process.log_path}")

    def alive(self) -> list[int]:
        return [slot for slot, process in self.processes.items() if process.poll() is None]

    def assert_alive(self) -> None:
        for slot, process in self.processes.items():
            assert process.poll() is None, f"worker in slot {slot} died ({process.returncode}); see {process.log_path}"

    def stop_all(self, timeout_s: float = 30) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


#: What customers say, turn after turn: answered ones, and ones that ask for a person and go on writing.
SCRIPTS = {
    "es-answered": ("hola", "¿dónde está mi pedido 4711-ES?", "vale, ¿y cuándo llega?", "gracias", "adiós"),
    "es-handoff": ("hola", "quiero hablar con una persona", "¿hola?", "sigo esperando", "gracias"),
    "en-answered": ("hi there", "where is my order 5521?", "ok, when will it arrive?", "thanks", "bye"),
    "en-handoff": ("hello", "I'd like to talk to a person please", "hello?", "still waiting", "thanks"),
}
SOURCES = ("whatsapp", "twilio", "messenger")


@dataclass(frozen=True)
class Customer:
    source: str
    address: str
    script: tuple[str, ...]
    keyed: bool  # the integration keys records by the customer's address; otherwise no key at all


def customers(tag: str, per_source: int, rng: random.Random) -> list[Customer]:
    out = []
    for source in SOURCES:
        for i in range(per_source):
            number = f"346{rng.randrange(10**8):08d}"
            address = {"whatsapp": number, "twilio": f"+{number}", "messenger": f"{rng.randrange(10**15, 10**16)}"}[source]
            script = list(SCRIPTS.values())[i % len(SCRIPTS)]
            out.append(Customer(source, address, script, keyed=i % 2 == 0))
    return out


@dataclass
class RawIntegration:
    """Publishes raw provider bodies the way a messaging integration does, and remembers what it published."""

    settings: Settings
    tag: str
    rng: random.Random
    published: dict[str, tuple[str, bytes, bytes | None]] = field(default_factory=dict)  # message id -> (topic, body, key)
    redeliveries: int = 0

    def __post_init__(self) -> None:
        self.producer = make_producer(self.settings)
        self.lock = threading.Lock()

    def send(self, customer: Customer, turn: int) -> str:
        provider_id = f"{self.tag}{customer.source[:2]}{customer.address[-6:]}t{turn}"
        body = webhook_body(CustomerMessage(customer.source, customer.address, provider_id, customer.script[turn]))
        channel_id = {"whatsapp": f"wamid.{provider_id}", "twilio": f"SM{provider_id}", "messenger": f"m_{provider_id}"}
        mid = message_id(customer.source, channel_id[customer.source])
        key = customer.address.encode() if customer.keyed else None
        topic = f"channel.{customer.source}.inbound.raw"
        with self.lock:
            self.producer.produce(topic, key=key, value=body)
            self.published[mid] = (topic, body, key)
        return mid

    def redeliver(self, mid: str) -> None:
        """The provider delivers the same webhook again: the same bytes, a new Kafka record."""
        topic, body, key = self.published[mid]
        with self.lock:
            self.producer.produce(topic, key=key, value=body)
            self.redeliveries += 1

    def flush(self) -> None:
        self.producer.flush(120)


def converse(integration: RawIntegration, people: list[Customer], round_s: float, redeliver_share: float,
             stop: threading.Event) -> None:
    """Every customer writes turn after turn, one round every `round_s` seconds, spread over the round; a share of
    the messages is redelivered byte-identical a few seconds later."""
    rng = integration.rng
    pending: list[tuple[float, str]] = []
    turns = max(len(c.script) for c in people)
    for turn in range(turns):
        start = time.monotonic()
        order = list(people)
        rng.shuffle(order)
        for i, customer in enumerate(order):
            if stop.is_set():
                return
            target = start + round_s * i / len(order)
            while time.monotonic() < target:
                _redeliver_due(integration, pending)
                time.sleep(0.01)
            mid = integration.send(customer, turn)
            if rng.random() < redeliver_share:
                pending.append((time.monotonic() + rng.uniform(1.0, 8.0), mid))
        integration.producer.poll(0)
    while pending and not stop.is_set():
        _redeliver_due(integration, pending)
        time.sleep(0.05)
    integration.flush()


def _redeliver_due(integration: RawIntegration, pending: list[tuple[float, str]]) -> None:
    now = time.monotonic()
    for item in [p for p in pending if p[0] <= now]:
        pending.remove(item)
        integration.redeliver(item[1])


class Probes:
    """One WhatsApp customer per partition, writing every `interval_s`; replies followed on the channel's outbound
    topic. Tells when each partition answered, so a failover's gap can be measured from the outside."""

    def __init__(self, settings: Settings, tag: str, interval_s: float = 0.5) -> None:
        from confluent_kafka import TopicPartition

        from infra.kafka_clients import make_consumer
        from streams.app import partition_for

        self.settings, self.tag, self.interval_s = settings, tag, interval_s
        self.addresses: dict[int, str] = {}
        n = 0
        while len(self.addresses) < settings.partitions:
            address = f"3469{int(tag[:6], 16) % 1000:03d}{n:04d}"
            conversation = conversation_of("whatsapp", address)
            self.addresses.setdefault(partition_for(conversation.encode(), settings.partitions), address)
            n += 1
        self.sent: dict[str, tuple[int, float]] = {}  # message id -> (partition, sent at)
        self.replied: dict[str, float] = {}
        self.producer = make_producer(settings)
        self.consumer = make_consumer(settings, group_id=f"probes-{tag}")
        topic = "channel.whatsapp.outbound"
        parts = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                              for p in parts])
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._send, daemon=True), threading.Thread(target=self._follow, daemon=True)]

    def start(self) -> "Probes":
        for thread in self.threads:
            thread.start()
        return self

    def _send(self) -> None:
        i = 0
        while not self.stop.wait(self.interval_s):
            for partition, address in self.addresses.items():
                provider_id = f"probe{self.tag}{partition}n{i}"
                body = webhook_body(CustomerMessage("whatsapp", address, provider_id, "hola"))
                self.producer.produce("channel.whatsapp.inbound.raw", key=conversation_of("whatsapp", address).encode(),
                                      value=body)
                with self.lock:
                    self.sent[message_id("whatsapp", f"wamid.{provider_id}")] = (partition, time.time())
            self.producer.poll(0)
            i += 1

    def _follow(self) -> None:
        import json

        while not self.stop.is_set():
            for msg in self.consumer.consume(200, timeout=0.1):
                if msg.error():
                    continue
                reply_to = json.loads(msg.value()).get("in_reply_to")
                with self.lock:
                    if reply_to in self.sent and reply_to not in self.replied:
                        self.replied[reply_to] = time.time()

    def answered_after(self, since: float) -> dict[int, float]:
        """Per partition, when the first probe sent after `since` was answered (partitions still silent are missing)."""
        first: dict[int, float] = {}
        with self.lock:
            for mid, (partition, at) in self.sent.items():
                if at >= since and mid in self.replied:
                    first[partition] = min(first.get(partition, float("inf")), self.replied[mid])
        return first

    def wait_all_answer(self, since: float, timeout_s: float) -> float | None:
        """Seconds from `since` until every partition answered a probe sent after it, or None on timeout."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            first = self.answered_after(since)
            if len(first) == len(self.addresses):
                return max(first.values()) - since
            time.sleep(0.1)
        return None

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(5)
        self.producer.flush(10)
        self.consumer.close()


def conversation_of(source: str, address: str) -> str:
    """The conversation id the normalizer gives this customer's messages."""
    from connectors.channels import RawEvent, normalize

    body = webhook_body(CustomerMessage(source, address, "x", "x"))
    return normalize(RawEvent(source, body))[0]["conversation_id"]


def worker_messages(port: int) -> float:
    """Messages this worker's engine decided (its /metrics)."""
    import requests

    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("centralita_engine_messages_total{"))
