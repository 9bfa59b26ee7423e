"""`centralita demo`: the README's main job on the local stack, showing what happened.

For now: bring the stack up, create the topics, publish a handful of canonical inbound messages from every
channel to `conversation.inbound` as single-object Avro, read exactly those offsets back from the real broker
and show them as typed records; then stream case events for the conversations that need a human into the
Salesforce emulator with the CRM sink and read the Cases back. Later capabilities extend this into whole
conversations.
"""

from __future__ import annotations

import json
import time
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
from streams.ids import conversation_id, derive_id, message_id

INBOUND_TOPIC = "conversation.inbound"
CASE_TOPIC = "crm.case-events"

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
    show_crm(settings, codec, messages, console)
    console.print("The stack keeps running; stop it with `centralita stack down`.")


def demo_case_events(messages: list[InboundMessage]) -> list[dict]:
    """Case events for the two sample conversations that need a human (until the engine emits them itself)."""
    events = []
    for message, intent, priority in ((messages[4], "human_agent", "MEDIUM"), (messages[3], "complaint", "HIGH")):
        case_id = derive_id("case", message.conversation_id, message.message_id)
        for step, (kind, status) in enumerate((("CREATED", "ESCALATED"), ("UPDATED", "WORKING"))):
            events.append({
                "event_id": derive_id("case-event", case_id, kind), "case_id": case_id,
                "conversation_id": message.conversation_id, "customer_id": None, "type": kind,
                "occurred_at": message.received_at + timedelta(seconds=step), "channel": message.channel,
                "subject": f"{intent.replace('_', ' ')} ({message.channel.lower()})",
                "transcript_excerpt": f"customer: {message.text}", "priority": priority, "status": status,
                "intent": intent, "confidence": 0.93, "sentiment": "negative", "queue": f"{message.language}-support"})
    return events


def show_crm(settings: Settings, codec: AvroCodec, messages: list[InboundMessage], console: Console) -> None:
    """Publish case events, stream them to Salesforce with the CRM sink, read the Cases back with the client."""
    from salesforce_bulk import SalesforceBulk

    from connectors.crm.salesforce import SalesforceCrm
    from connectors.crm.sink import CaseSink

    events = demo_case_events(messages)
    producer = make_producer(settings)
    for event in events:
        producer.produce(CASE_TOPIC, key=event["case_id"].encode(), value=codec.encode("CaseEvent", event))
    if producer.flush(30):
        raise RuntimeError("case events not acknowledged by the broker")
    console.print(f"[green]crm[/]    {len(events)} CaseEvent records to {CASE_TOPIC}; the CRM sink upserts them into Salesforce")
    crm = SalesforceCrm.from_settings(settings)
    sink_settings = settings.model_copy(update={"crm_group_id": f"{settings.app_id}-demo-crm-sink", "crm_batch_max_wait_s": 1.0})
    CaseSink(sink_settings, crm, topic=CASE_TOPIC).run(stop_when_idle_s=2.0)

    bulk = SalesforceBulk(sessionId=crm.tokens.token(), host=settings.sf_host)
    case_ids = sorted({e["case_id"] for e in events})
    table = Table(title=f"Cases in Salesforce ({settings.sf_host}, read with the salesforce-bulk client)")
    for column in ("Case Id", "external id", "Origin", "Priority", "Status", "Subject"):
        table.add_column(column, no_wrap=column != "Subject")
    for case_id in case_ids:
        job = bulk.create_query_job("Case", contentType="JSON")
        batch = bulk.query(job, "SELECT Id, Centralita_Case_Id__c, Origin, Priority, Status, Subject FROM Case "
                                f"WHERE Centralita_Case_Id__c = '{case_id}'")
        bulk.close_job(job)
        deadline = time.monotonic() + 30
        while not bulk.is_batch_done(batch, job) and time.monotonic() < deadline:
            time.sleep(0.1)
        for result in bulk.get_all_results_for_query_batch(batch, job):
            for row in json.load(result):
                table.add_row(row["Id"], row["Centralita_Case_Id__c"][:21] + "…", row["Origin"], row["Priority"],
                              row["Status"], row["Subject"])
    console.print(table)
    if table.row_count != len(case_ids):
        raise RuntimeError(f"{len(case_ids) - table.row_count} cases did not reach Salesforce")
