"""`centralita simulate`: a conversation simulator and load generator.

Simulated customers (personas with multi-turn scripts, in Spanish and English) write on every channel in
their provider's webhook format, through the gateway over HTTP (signed as the provider signs) or straight onto
the raw topics (as the gateway would publish them). A customer writes the next turn only after the bot
answered the previous one and a think time passed, like a person; a customer handed to a human stops. The
offered rate is held open-loop: every 1/R seconds one message goes out, from a customer who is ready or from a
new one, so a slow system shows up as latency and backlog, not as a quietly lower load.

Replies are followed on `channel.<source>.outbound` (the `in_reply_to` of each payload) and handoffs on
`conversation.handoff`. The report (JSON) gives sent/answered counts, achieved rates, latency percentiles
overall and per channel, a per-second timeline, and a plot. Used for load tests (`--rate 500 --duration 60`)
and soak tests (hours at a steady rate).
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import TopicPartition

from connectors.gateway import conversation_key
from infra.kafka_clients import make_consumer, make_producer
from infra.latency import latency_summary_ms
from infra.settings import Settings
from infra.webhooks import CustomerMessage, gateway_headers, webhook_body
from schemas.codec import AvroCodec, CodecError
from schemas.topics import SOURCES
from streams.ids import message_id as derive_message_id

#: Share of customers per channel (a WhatsApp-first European retailer).
CHANNEL_MIX = {"whatsapp": 0.35, "webchat": 0.2, "twilio": 0.15, "email": 0.1, "messenger": 0.1, "instagram": 0.1}


@dataclass(frozen=True)
class Persona:
    """A kind of customer: what they say, turn after turn ({order} and {amount} are filled per customer)."""

    name: str
    language: str
    turns: tuple[str, ...]
    wants_person: bool = False  # expected to end with a handoff


PERSONAS: tuple[Persona, ...] = (
    Persona("order status", "es", ("Hola, ¿dónde está mi pedido {order}?", "vale, ¿y cuándo llega más o menos?", "gracias")),
    Persona("order status", "en", ("Hi, where is my order {order}?", "ok, thanks")),
    Persona("order status, noisy", "es", ("dnd sta mi pedido {order}", "ok grax")),
    Persona("cancel order", "en", ("I want to cancel my order {order}", "yes, please cancel it", "thank you")),
    Persona("cancel order", "es", ("quiero cancelar el pedido {order}", "sí, cancelarlo por favor")),
    Persona("refund", "es", ("no me ha llegado el reembolso de la devolución", "lo devolví hace dos semanas", "gracias")),
    Persona("refund", "en", ("when will I get my refund of {amount} euros?", "ok")),
    Persona("change address", "en", ("can I change the delivery address?", "it is for order {order}")),
    Persona("payment failed", "en", ("my card payment failed", "I tried twice already")),
    Persona("payment failed", "es", ("me ha fallado el pago con tarjeta", "lo he intentado dos veces")),
    Persona("complaint", "es", ("Esto es una vergüenza, el paquete llegó roto", "quiero una solución ya"), wants_person=True),
    Persona("complaint", "en", ("This is unacceptable, the box arrived broken and nobody answers", "I want this solved today"),
            wants_person=True),
    Persona("asks for a person", "en", ("I'd like to talk to a person please",), wants_person=True),
    Persona("asks for a person", "es", ("quiero hablar con una persona",), wants_person=True),
    Persona("not understood", "es", ("asdf", "hmm qwerty", "???"), wants_person=True),
    Persona("privacy request", "es", ("quiero que borréis todos mis datos personales",), wants_person=True),
    Persona("delivery time", "es", ("¿cuándo llega mi pedido {order}?", "perfecto, gracias")),
    Persona("small talk", "en", ("hello", "thanks, bye")),
)


@dataclass
class Customer:
    """One simulated customer's conversation in progress."""

    persona: Persona
    source: str
    address: str
    values: dict[str, str]
    run: str
    number: int
    turn: int = 0
    waiting_for: str | None = None  # message id of the turn the bot has not answered yet
    ready_at: float = 0.0
    handed_off: bool = False

    def next_message(self) -> CustomerMessage:
        text = self.persona.turns[self.turn].format(**self.values)
        provider_id = f"sim-{self.run}-{self.number}-{self.turn}"
        return CustomerMessage(self.source, self.address, provider_id, text, display_name="Cliente",
                               subject="Consulta" if self.persona.language == "es" else "Question",
                               locale="es-ES" if self.persona.language == "es" else "en-GB")

    @property
    def done(self) -> bool:
        return self.handed_off or self.turn >= len(self.persona.turns)


def new_address(source: str, rng: random.Random, run: str, number: int) -> str:
    if source in ("whatsapp",):
        return f"34{rng.randint(600_000_000, 699_999_999)}"
    if source == "twilio":
        return f"+44{rng.randint(7_000_000_000, 7_999_999_999)}"
    if source in ("messenger", "instagram"):
        return str(rng.randint(10**15, 10**16 - 1))
    if source == "email":
        return f"customer{number}.{run}@example.com"
    return f"visitor-{run}-{number}"


@dataclass
class Sent:
    at: float
    source: str
    persona: str
    customer: Customer


@dataclass
class Tracker:
    """What was sent and what came back; shared by the sender and the reply follower (one lock)."""

    think_s: tuple[float, float]
    rng: random.Random
    sent: dict[str, Sent] = field(default_factory=dict)
    replied: dict[str, float] = field(default_factory=dict)
    handoffs: dict[str, float] = field(default_factory=dict)  # conversation -> when the REQUESTED event came
    send_errors: dict[str, int] = field(default_factory=dict)
    ready: list = field(default_factory=list)  # heap of (ready_at, number, customer): the next one ready first
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_reply(self, in_reply_to: str, at: float) -> None:
        with self.lock:
            entry = self.sent.get(in_reply_to)
            if entry is None or in_reply_to in self.replied:
                return
            self.replied[in_reply_to] = at
            customer = entry.customer
            if customer.waiting_for == in_reply_to:
                customer.waiting_for = None
                customer.turn += 1
                if not customer.done:
                    customer.ready_at = at + self.rng.uniform(*self.think_s)
                    heapq.heappush(self.ready, (customer.ready_at, customer.number, customer))

    def on_handoff(self, in_reply_to: str | None, at: float) -> None:
        with self.lock:
            entry = self.sent.get(in_reply_to or "")
            if entry is not None:
                entry.customer.handed_off = True  # a person takes over: this customer stops talking to the bot
                self.handoffs.setdefault(in_reply_to, at)


class ReplyFollower:
    """Reads the channels' outbound topics and conversation.handoff from their current end, on a thread."""

    def __init__(self, settings: Settings, tracker: Tracker) -> None:
        self.tracker = tracker
        self.codec = AvroCodec()
        self.consumer = make_consumer(settings, group_id=f"centralita-simulate-{random.getrandbits(40):x}")
        topics = [f"channel.{s}.outbound" for s in SOURCES] + ["conversation.handoff"]
        partitions = []
        for topic in topics:
            meta = self.consumer.list_topics(topic, timeout=10).topics[topic]
            for p in meta.partitions:
                _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                partitions.append(TopicPartition(topic, p, high))
        self.consumer.assign(partitions)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="simulate-replies", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import json

        while not self._stop.is_set():
            # consume() returns when it has num_messages or the timeout passed: a short timeout, or the wait for a
            # full batch would be counted as latency.
            for msg in self.consumer.consume(500, timeout=0.005):
                if msg.error():
                    continue
                now = time.time()
                if msg.topic() == "conversation.handoff":
                    try:
                        event = self.codec.decode(msg.value())
                    except CodecError:
                        continue
                    if event.get("state") == "REQUESTED":
                        self.tracker.on_handoff(event.get("in_reply_to"), now)
                    continue
                try:
                    payload = json.loads(msg.value())
                except ValueError:
                    continue
                if payload.get("in_reply_to"):
                    self.tracker.on_reply(payload["in_reply_to"], now)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.consumer.close()


class Sender:
    """Publishes customer messages through the gateway (HTTP, signed) or onto the raw topics."""

    def __init__(self, settings: Settings, via: str, gateway_url: str | None, tracker: Tracker, threads: int = 16) -> None:
        self.settings, self.via, self.tracker = settings, via, tracker
        self.gateway_url = (gateway_url or f"http://127.0.0.1:{settings.gateway_port}").rstrip("/")
        self.producer = make_producer(settings, **{"linger.ms": 2}) if via == "kafka" else None
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="simulate-http") if via == "gateway" else None
        self._local = threading.local()

    def send(self, message: CustomerMessage) -> None:
        body = webhook_body(message)
        if self.producer is not None:
            headers = [("centralita.received_at", str(int(time.time() * 1000)).encode())]
            self.producer.produce(f"channel.{message.source}.inbound.raw", key=conversation_key(message.source, body),
                                  value=body, headers=headers)
            self.producer.poll(0)
        else:
            self.pool.submit(self._post, message.source, body)

    def _post(self, source: str, body: bytes) -> None:
        import requests

        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        url = f"{self.gateway_url}/webhooks/{source}"
        public = (self.settings.public_base_url.rstrip("/") + f"/webhooks/{source}") if self.settings.public_base_url else url
        try:
            status = session.post(url, data=body, headers=gateway_headers(source, body, self.settings, public), timeout=15).status_code
            outcome = "ok" if status < 300 else f"http_{status}"
        except requests.RequestException as exc:
            outcome = type(exc).__name__
        if outcome != "ok":
            with self.tracker.lock:
                self.tracker.send_errors[outcome] = self.tracker.send_errors.get(outcome, 0) + 1

    def close(self) -> None:
        if self.producer is not None:
            self.producer.flush(30)
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def pick_source(rng: random.Random, channels: tuple[str, ...]) -> str:
    weights = [CHANNEL_MIX[c] for c in channels]
    return rng.choices(channels, weights)[0]


def run_simulation(settings: Settings, rate: float, duration_s: float, via: str = "kafka", gateway_url: str | None = None,
                   channels: tuple[str, ...] = SOURCES, seed: int | None = None, think_s: tuple[float, float] = (1.0, 4.0),
                   drain_s: float = 20.0, progress=None) -> dict:
    """Offer `rate` customer messages/s for `duration_s`, wait up to `drain_s` for the last replies, report."""
    if rate <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    unknown = set(channels) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown channels: {', '.join(sorted(unknown))}; choose from {', '.join(SOURCES)}")
    rng = random.Random(seed)  # personas, channels, think times: repeatable with --seed
    addresses = random.Random()  # customers: new on every run, or they would continue earlier runs' conversations
    run = f"{int(time.time())}{addresses.randint(1000, 9999)}"
    tracker = Tracker(think_s, rng)
    follower = ReplyFollower(settings, tracker)
    sender = Sender(settings, via, gateway_url, tracker)
    numbers = itertools.count()
    total = int(rate * duration_s)
    start = time.time()
    try:
        for i in range(total):
            delay = start + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
            now = time.time()
            customer = take_ready(tracker, now)
            if customer is None:
                number = next(numbers)
                source = pick_source(rng, channels)
                persona = rng.choice(PERSONAS)
                customer = Customer(persona, source, new_address(source, addresses, run, number),
                                    {"order": f"{rng.randint(100000, 999999)}", "amount": f"{rng.randint(10, 300)}"},
                                    run, number)
            message = customer.next_message()
            mid = derive_message_id(message.source, provider_message_id(message))
            with tracker.lock:
                tracker.sent[mid] = Sent(time.time(), message.source, customer.persona.name, customer)
                customer.waiting_for = mid
            sender.send(message)
            if progress is not None:
                progress(i + 1, total, len(tracker.replied))
        sender.close()
        sent_done = time.time()
        deadline = sent_done + drain_s
        while time.time() < deadline and len(tracker.replied) < len(tracker.sent):
            time.sleep(0.2)
            if progress is not None:
                progress(total, total, len(tracker.replied))
    finally:
        follower.stop()
    return report(tracker, rate, duration_s, via, start, sent_done, next(numbers))


def run_burst(settings: Settings, count: int, channels: tuple[str, ...] = SOURCES, seed: int | None = None,
              drain_s: float = 120.0, progress=None, on_sent=None) -> dict:
    """`count` first messages of new customers, sent as fast as the producer takes them: a backlog the workers drain.
    The answered rate is their capacity (what a worker does when it never waits for traffic). `on_sent` runs once
    the backlog is on Kafka (a benchmark starts its worker there, so production and draining do not overlap)."""
    if count <= 0:
        raise ValueError("count must be positive")
    rng, addresses = random.Random(seed), random.Random()
    run = f"{int(time.time())}{addresses.randint(1000, 9999)}"
    tracker = Tracker((3600.0, 3600.0), rng)  # nobody writes a second turn during a burst
    follower = ReplyFollower(settings, tracker)
    sender = Sender(settings, "kafka", None, tracker)
    start = time.time()
    try:
        for number in range(count):
            source = pick_source(rng, channels)
            persona = rng.choice(PERSONAS)
            customer = Customer(persona, source, new_address(source, addresses, run, number),
                                {"order": f"{rng.randint(100000, 999999)}", "amount": f"{rng.randint(10, 300)}"}, run, number)
            message = customer.next_message()
            mid = derive_message_id(message.source, provider_message_id(message))
            with tracker.lock:
                tracker.sent[mid] = Sent(time.time(), message.source, persona.name, customer)
                customer.waiting_for = mid
            sender.send(message)
        sender.close()
        sent_done = time.time()
        if on_sent is not None:
            on_sent()
        deadline = time.time() + drain_s
        while time.time() < deadline and len(tracker.replied) < len(tracker.sent):
            time.sleep(0.2)
            if progress is not None:
                progress(len(tracker.replied), count, len(tracker.replied))
    finally:
        follower.stop()
    result = report(tracker, count / max(1e-9, sent_done - start), sent_done - start, "kafka", start, sent_done, count)
    answered = sorted(tracker.replied.values())
    result["simulate"]["burst"] = count
    result["drain_msg_per_s"] = round(len(answered) / max(1e-9, answered[-1] - answered[0]), 1) if len(answered) > 1 else 0.0
    return result


def take_ready(tracker: Tracker, now: float) -> Customer | None:
    """A customer whose think time is over, or None (then a new customer writes)."""
    with tracker.lock:
        while tracker.ready and tracker.ready[0][0] <= now:
            customer = heapq.heappop(tracker.ready)[2]
            if not customer.done:
                return customer
        return None


def provider_message_id(message: CustomerMessage) -> str:
    """The provider's message id as the normalizer reads it (the message id is derived from it)."""
    return {"whatsapp": f"wamid.{message.provider_id}", "twilio": f"SM{message.provider_id}",
            "messenger": f"m_{message.provider_id}", "instagram": f"m_{message.provider_id}",
            "email": f"<{message.provider_id}@mail.example.com>", "webchat": message.provider_id}[message.source]


def report(tracker: Tracker, rate: float, duration_s: float, via: str, start: float, sent_done: float, customers: int) -> dict:
    with tracker.lock:
        sent = dict(tracker.sent)
        replied = dict(tracker.replied)
        handoffs = dict(tracker.handoffs)
        errors = dict(tracker.send_errors)
    latencies = {mid: replied[mid] - entry.at for mid, entry in sent.items() if mid in replied}
    by_channel = {}
    for source in sorted({e.source for e in sent.values()}):
        mine = [mid for mid, e in sent.items() if e.source == source]
        lat = [latencies[m] for m in mine if m in latencies]
        by_channel[source] = {"sent": len(mine), "answered": len(lat), **{f"{k}_ms": v for k, v in latency_summary_ms(lat).items()}}
    seconds = int(max(1, (max(replied.values(), default=sent_done) - start) + 1))
    timeline = [{"second": s, "sent": 0, "answered": 0, "latencies": []} for s in range(seconds)]
    for mid, entry in sent.items():
        timeline[min(seconds - 1, int(entry.at - start))]["sent"] += 1
    for mid, at in replied.items():
        slot = timeline[min(seconds - 1, int(at - start))]
        slot["answered"] += 1
        if mid in latencies:
            slot["latencies"].append(latencies[mid])
    for slot in timeline:
        summary = latency_summary_ms(slot.pop("latencies"))
        slot["p50_ms"], slot["p99_ms"] = summary["p50"], summary["p99"]
    unanswered = [mid for mid in sent if mid not in replied]
    last_reply = max(replied.values(), default=start)
    return {
        "simulate": {"offered_msg_per_s": rate, "duration_s": duration_s, "via": via},
        "sent": len(sent), "answered": len(replied), "unanswered": len(unanswered),
        "customers": customers, "handoffs": len(handoffs),
        "achieved_send_msg_per_s": round(len(sent) / max(1e-9, sent_done - start), 1),
        "answered_msg_per_s": round(len(replied) / max(1e-9, last_reply - start), 1) if replied else 0.0,
        "latency_ms": latency_summary_ms(list(latencies.values())),
        "by_channel": by_channel, "send_errors": errors, "timeline": timeline,
    }


def plot(result: dict, out_dir: Path | None = None) -> str:
    """Throughput and latency over time, and latency by channel, as a PNG next to the benchmark plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from infra.plots import save_figure

    timeline = result["timeline"]
    seconds = [slot["second"] for slot in timeline]
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(10, 10))
    top.plot(seconds, [s["sent"] for s in timeline], label="sent")
    top.plot(seconds, [s["answered"] for s in timeline], label="answered")
    top.axhline(result["simulate"]["offered_msg_per_s"], color="grey", linestyle="--", label="offered")
    top.set_ylabel("messages / s")
    top.legend()
    middle.plot(seconds, [s["p50_ms"] for s in timeline], label="p50")
    middle.plot(seconds, [s["p99_ms"] for s in timeline], label="p99")
    middle.set_ylabel("latency of replies answered in that second (ms)")
    middle.set_xlabel("seconds since start")
    middle.legend()
    channels = list(result["by_channel"])
    x = range(len(channels))
    bottom.bar([i - 0.2 for i in x], [result["by_channel"][c]["p50_ms"] or 0 for c in channels], width=0.4, label="p50")
    bottom.bar([i + 0.2 for i in x], [result["by_channel"][c]["p99_ms"] or 0 for c in channels], width=0.4, label="p99")
    bottom.set_xticks(list(x), channels)
    bottom.set_ylabel("latency (ms)")
    bottom.legend()
    cfg = result["simulate"]
    fig.suptitle(f"centralita simulate: {cfg['offered_msg_per_s']:g} msg/s for {cfg['duration_s']:g} s via {cfg['via']} "
                 f"({result['answered']}/{result['sent']} answered, p99 {result['latency_ms']['p99']} ms)")
    return save_figure(fig, f"simulate-{int(time.time())}", out_dir)
