"""`centralita demo`: the README's main job on the local stack, showing what happened.

For now: bring the stack up, create the topics, publish a handful of canonical inbound messages from every
channel to `conversation.inbound` as single-object Avro, then read exactly those offsets back from the real
broker and show them as typed records. Later capabilities extend this into whole conversations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from confluent_kafka import TopicPartition
from rich.console import Console
from rich.table import Table

from infra.kafka_clients import make_admin, make_consumer, make_producer
from infra.settings import Settings
from infra.stack import Stack
from infra.topic_admin import create_topics
from schemas.codec import AvroCodec
from schemas.records import InboundMessage
from schemas.topics import CATALOG
from streams.ids import conversation_id, message_id

INBOUND_TOPIC = "conversation.inbound"

# (channel, source, provider message id, customer address, business address, text, language)
SAMPLES = [
    ("WHATSAPP", "whatsapp", "wamid.HBgLMzQ2MDAwMDAwMDEVAgA", "34600000001", "34910000000",
     "Hola, ¿dónde está mi pedido 4711-ES?", "es"),
    ("SMS", "twilio", "SM0d4a2c8e0f1b4d6a9c3e5f7a8b9c0d1e", "+447700900123", "+447700900000",
     "Hi, I want to cancel my order please", "en"),
    ("EMAIL", "email", "<CAF=demo-3@mail.example.com>", "ana.demo@example.com", "support@example.com",
     "Buenos días, no me ha llegado el reembolso de la devolución.", "es"),
    ("MESSENGER", "messenger", "m_AbCdEfGhIjKlMnOp", "6543210987654321", "1122334455",
     "my package arrived damaged, what can I do?", "en"),
    ("INSTAGRAM", "instagram", "aWdfZAG1faXRlbToxOklHTWVzc2FnZUlE", "17841400000000000", "17841405822304914",
     "quiero hablar con una persona", "es"),
    ("WEBCHAT", "webchat", "wc-7f3a9b2e", "visitor-5be1c0", "site-main",
     "can I change the delivery address?", "en"),
]


@dataclass(frozen=True)
class Delivered:
    """Where the broker put one message."""

    partition: int
    offset: int


def sample_messages(now: datetime) -> list[InboundMessage]:
    """The demo's canonical inbound messages, one per channel."""
    messages = []
    for i, (channel, source, provider_id, sender, business, text, lang) in enumerate(SAMPLES):
        messages.append(InboundMessage(
            message_id=message_id(source, provider_id),
            conversation_id=conversation_id(source, sender, business),
            channel=channel,
            source=source,
            channel_message_id=provider_id,
            sender_id=sender,
            recipient_id=business,
            sent_at=now - timedelta(seconds=30 - i),
            received_at=now,
            text=text,
            language=lang,
        ))
    return messages


def publish(settings: Settings, codec: AvroCodec, messages: list[InboundMessage]) -> list[Delivered]:
    """Publish with acks=all and wait for every delivery report; raise if any failed."""
    producer = make_producer(settings)
    reports: dict[int, Delivered] = {}
    errors: list[str] = []

    def on_delivery(index: int):
        def report(err, msg) -> None:
            if err is not None:
                errors.append(f"message {index}: {err}")
            else:
                reports[index] = Delivered(msg.partition(), msg.offset())
        return report

    for index, message in enumerate(messages):
        value = codec.encode("InboundMessage", message.asdict())
        producer.produce(INBOUND_TOPIC, key=message.conversation_id.encode(), value=value,
                         on_delivery=on_delivery(index))
    remaining = producer.flush(30)
    if errors or remaining:
        raise RuntimeError(f"publishing failed: {errors or f'{remaining} messages undelivered'}")
    return [reports[i] for i in range(len(messages))]


def read_back(settings: Settings, codec: AvroCodec, delivered: list[Delivered], timeout_s: float = 30.0) -> dict[tuple[int, int], InboundMessage]:
    """Read exactly the delivered offsets from the broker and decode them into typed records."""
    wanted = {(d.partition, d.offset) for d in delivered}
    consumer = make_consumer(settings, group_id=f"{settings.app_id}-demo-reader")
    first: dict[int, int] = {}
    for d in delivered:
        first[d.partition] = min(d.offset, first.get(d.partition, d.offset))
    consumer.assign([TopicPartition(INBOUND_TOPIC, p, o) for p, o in first.items()])
    found: dict[tuple[int, int], InboundMessage] = {}
    deadline = datetime.now(timezone.utc) + timedelta(seconds=timeout_s)
    try:
        while wanted - found.keys() and datetime.now(timezone.utc) < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            place = (msg.partition(), msg.offset())
            if place in wanted:
                found[place] = InboundMessage.from_data(codec.decode(msg.value(), reader="InboundMessage"))
    finally:
        consumer.close()
    if wanted - found.keys():
        raise RuntimeError(f"{len(wanted - found.keys())} published messages were not read back within {timeout_s:.0f}s")
    return found


def run_demo(settings: Settings, console: Console) -> None:
    console.rule("[bold]Centralita demo")
    for line in Stack.from_settings(settings).up():
        console.print(f"[green]stack[/]  {line}")
    results = create_topics(make_admin(settings), settings.kafka_bootstrap, CATALOG)
    created = sum(r.outcome == "created" for r in results)
    console.print(f"[green]topics[/] {len(results)} in the catalog ({created} created, {len(results) - created} already there)")

    codec = AvroCodec()
    now = datetime.now(timezone.utc)
    messages = sample_messages(now.replace(microsecond=now.microsecond // 1000 * 1000))  # Avro keeps millis
    delivered = publish(settings, codec, messages)
    console.print(f"[green]publish[/] {len(messages)} InboundMessage records to {INBOUND_TOPIC} on {settings.kafka_bootstrap} (acks=all)")
    records = read_back(settings, codec, delivered)

    table = Table(title=f"Read back from {INBOUND_TOPIC} (single-object Avro, decoded to typed records)")
    table.add_column("part@offset", no_wrap=True)
    table.add_column("channel", no_wrap=True)
    table.add_column("lang", no_wrap=True)
    table.add_column("text", overflow="fold")
    for d in delivered:
        record = records[(d.partition, d.offset)]
        table.add_row(f"{d.partition}@{d.offset}", record.channel, record.language or "-", record.text)
    console.print(table)
    same = all(records[(d.partition, d.offset)] == m for d, m in zip(delivered, messages))
    console.print(f"[bold]{len(records)} of {len(messages)} records came back through the broker, "
                  f"{'identical to what was sent' if same else '[red]DIFFERENT from what was sent[/]'}.")
    if not same:
        raise RuntimeError("a record read back differs from the one published")
    console.print("The stack keeps running; stop it with `centralita stack down`.")
