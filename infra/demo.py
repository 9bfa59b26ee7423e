"""`centralita demo`: the README's main job on the local stack, showing what happened.

It brings the stack up (Kafka, the Salesforce emulator), creates the topics, starts a stream worker, and plays
scripted customers on several channels in their providers' real webhook formats, straight onto the raw
topics (as the gateway would publish them): a conversation answered, one clarified then escalated, one
escalated on request, a complaint that continues on another channel, an email. Then it reads what came out of
Kafka (the conversation log, handoffs, case events), streams the cases into Salesforce with the CRM sink,
reads them back with the `salesforce-bulk` client, checks the effects audit, and prints a summary.
Customer addresses are new on every run, so the demo can be repeated on the same stack.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from connectors.gateway import conversation_key
from infra.kafka_clients import make_admin, make_producer
from infra.processes import ManagedProcess, free_port
from infra.settings import Settings
from infra.stack import Stack
from infra.topic_admin import catalog_for, create_topics
from infra.webhooks import CustomerMessage, webhook_body
from schemas.codec import AvroCodec
from streams.audit import audit, read_topic

CASE_TOPIC = "crm.case-events"


@dataclass(frozen=True)
class Customer:
    name: str  # for the summary only; never sent
    source: str
    address: str
    turns: tuple[str, ...]
    first_turn: int = 0  # > 0: writes only after the others were answered (the channel switch comes later)


def customers(run: str) -> list[Customer]:
    phone = f"346{random.randint(10_000_000, 99_999_999)}"
    return [
        Customer("Lucía (WhatsApp, answered)", "whatsapp", f"346{random.randint(10_000_000, 99_999_999)}",
                 ("Hola, ¿dónde está mi pedido 4711-ES?", "vale, gracias")),
        Customer("Tom (SMS, clarified then escalated)", "twilio", f"+447{random.randint(100_000_000, 999_999_999)}",
                 ("Hi, I want to cancel my order 5521", "asdf", "hmm qwerty")),
        Customer("Ana (email, answered)", "email", f"ana.{run}@example.com",
                 ("Buenos días, ¿cuándo me devolvéis el reembolso de la devolución?",)),
        Customer("Visitor (web chat, asks for a person)", "webchat", f"visitor-{run}",
                 ("can I change the delivery address?", "I'd rather talk to a person")),
        Customer("Marta (WhatsApp, complaint)", "whatsapp", phone,
                 ("Esto es una vergüenza, pésimo servicio, el paquete llegó roto",)),
        Customer("Marta (same phone, now by SMS)", "twilio", f"+{phone}", ("¿Alguien me va a contestar?",), first_turn=1),
    ]


def raw_body(customer: Customer, run: str, turn: int, text: str) -> bytes:
    """The provider's webhook body for one customer message."""
    first_name = customer.name.split(" ", 1)[0]
    return webhook_body(CustomerMessage(customer.source, customer.address, f"{run}-{customer.source}-{customer.address}-{turn}",
                                        text, display_name=first_name if customer.source == "email" else "",
                                        subject="Reembolso", locale="en-GB"))


def start_worker(settings: Settings, run: str) -> ManagedProcess:
    """A worker of its own consumer group that starts at the topics' end: traffic left on the stack by earlier
    runs or benchmarks is not the demo's to replay. The demo plays only once the worker consumes."""
    worker = ManagedProcess("demo-worker", settings.state_dir)
    worker.stop()
    env = {**os.environ, "CENTRALITA_APP_ID": f"{settings.app_id}-demo-{run}", "CENTRALITA_AUTO_OFFSET_RESET": "latest"}
    pid = worker.spawn([sys.executable, "-m", "infra.cli", "worker", "-l", "info", "--web-port", str(free_port())], env=env)
    marker = f"[{pid}] [INFO] [^Worker]: Ready".encode()
    worker.wait_until(lambda: marker in worker.log_file.read_bytes(), 120, "ready")
    return worker


def play(settings: Settings, run: str, people: list[Customer]) -> int:
    """Publish every customer's turns, one turn of everybody at a time, like people typing."""
    producer = make_producer(settings)
    sent = 0
    for turn in range(max(len(c.turns) for c in people)):
        for customer in people:
            if turn < len(customer.turns):
                body = raw_body(customer, run, turn, customer.turns[turn])
                producer.produce(f"channel.{customer.source}.inbound.raw", key=conversation_key(customer.source, body),
                                 value=body)
                sent += 1
        producer.flush(30)
        time.sleep(1.0)
    return sent


def conversations_of(settings: Settings, run: str, codec: AvroCodec) -> dict[str, list[dict]]:
    """Turns of this run's conversations, by conversation, in order."""
    turns: dict[str, list[dict]] = defaultdict(list)
    for value in read_topic(settings, "conversation.log"):
        record = codec.decode(value)
        turns[record["conversation_id"]].append(record)
    inbound = [codec.decode(v) for v in read_topic(settings, "conversation.inbound")]
    mine = {m["conversation_id"] for m in inbound if run in m["channel_message_id"]}
    # A conversation lives on one partition: the log's order is the conversation's order (replays deduplicated).
    return {c: list({t["turn_id"]: t for t in turns[c]}.values()) for c in mine}


def run_demo(settings: Settings, console: Console) -> None:
    console.rule("[bold]Centralita demo")
    for line in Stack.from_settings(settings).up():
        console.print(f"[green]stack[/]   {line}")
    results = create_topics(make_admin(settings), settings.kafka_bootstrap, catalog_for(settings))
    console.print(f"[green]topics[/]  {len(results)} in the catalog ({sum(r.outcome == 'created' for r in results)} created)")
    run = f"{int(time.time())}{random.randint(100, 999)}"
    with console.status("starting a stream worker…"):
        worker = start_worker(settings, run)
    console.print(f"[green]worker[/]  stream worker running (pid {worker.pid()}, log {worker.log_file})")
    codec = AvroCodec()
    people = customers(run)
    try:
        # Customers who come back on another channel write once their first conversation has been handled.
        first = [c for c in people if c.first_turn == 0]
        sent = play(settings, run, first)
        wait_for_conversations(settings, run, codec, sent, console)
        sent += play(settings, run, [c for c in people if c.first_turn > 0])
        console.print(f"[green]publish[/] {sent} customer messages from {len(people)} customers in their providers' webhook formats")
        conversations = wait_for_conversations(settings, run, codec, sent, console)
        show_transcripts(conversations, console)
        cases = show_cases(settings, set(conversations), codec, console)
        report = audit(settings, set(conversations))
        switches = [e for e in (codec.decode(v) for v in read_topic(settings, "conversation.session"))
                    if e["conversation_id"] in conversations and e["type"] == "CHANNEL_SWITCHED"]
        show_summary(conversations, cases, report, len({e["conversation_id"] for e in switches}), console)
        if not report.ok:
            raise RuntimeError(f"effects audit failed: {report.violations[:3]}")
    finally:
        worker.stop()
    console.print("The stack keeps running; stop it with `centralita stack down`.")


def wait_for_conversations(settings: Settings, run: str, codec: AvroCodec, sent: int, console: Console,
                           timeout_s: float = 120) -> dict[str, list[dict]]:
    deadline = time.monotonic() + timeout_s
    with console.status("waiting for the worker to answer…"):
        while time.monotonic() < deadline:
            conversations = conversations_of(settings, run, codec)
            answered = sum(1 for turns in conversations.values() for t in turns if t["direction"] == "INBOUND")
            if answered >= sent:
                return conversations
            time.sleep(1)
    raise RuntimeError(f"the worker handled fewer than {sent} messages in {timeout_s:.0f}s; see .centralita/demo-worker.log")


def show_transcripts(conversations: dict[str, list[dict]], console: Console) -> None:
    for turns in sorted(conversations.values(), key=lambda t: t[0]["sent_at"]):
        table = Table(title=f"{turns[0]['channel']} conversation", show_header=False, title_justify="left")
        table.add_column("who", no_wrap=True)
        table.add_column("text", overflow="fold")
        table.add_column("what happened", no_wrap=True)
        for turn in turns:
            who = "customer" if turn["direction"] == "INBOUND" else turn["author"].lower()
            detail = f"{turn['intent'] or '?'} {turn['confidence'] or 0:.2f} → {turn['route']}" if turn["direction"] == "INBOUND" else ""
            table.add_row(who, turn["text"], detail)
        console.print(table)


def show_cases(settings: Settings, conversations: set[str], codec: AvroCodec, console: Console) -> list[dict]:
    """Stream the case events to Salesforce with the CRM sink and read the Cases back with the client."""
    from salesforce_bulk import SalesforceBulk

    from connectors.crm.salesforce import SalesforceCrm
    from connectors.crm.sink import CaseSink

    events = [e for e in (codec.decode(v) for v in read_topic(settings, CASE_TOPIC)) if e["conversation_id"] in conversations]
    crm = SalesforceCrm.from_settings(settings)
    sink_settings = settings.model_copy(update={"crm_group_id": f"{settings.app_id}-demo-crm-sink", "crm_batch_max_wait_s": 1.0})
    CaseSink(sink_settings, crm, topic=CASE_TOPIC).run(stop_when_idle_s=2.0)
    bulk = SalesforceBulk(sessionId=crm.tokens.token(), host=settings.sf_host)
    cases = []
    for case_id in sorted({e["case_id"] for e in events}):
        job = bulk.create_query_job("Case", contentType="JSON")
        batch = bulk.query(job, "SELECT Id, Centralita_Case_Id__c, Origin, Priority, Status, Subject, Centralita_Queue__c "
                                f"FROM Case WHERE Centralita_Case_Id__c = '{case_id}'")
        bulk.close_job(job)
        deadline = time.monotonic() + 30
        while not bulk.is_batch_done(batch, job) and time.monotonic() < deadline:
            time.sleep(0.1)
        for result in bulk.get_all_results_for_query_batch(batch, job):
            cases.extend(json.load(result))
    table = Table(title=f"Cases in Salesforce ({settings.sf_host}, read with the salesforce-bulk client)")
    for column in ("Case Id", "Origin", "Priority", "Status", "queue", "Subject"):
        table.add_column(column, no_wrap=column != "Subject")
    for row in cases:
        table.add_row(row["Id"], row["Origin"], row["Priority"], row["Status"], row["Centralita_Queue__c"] or "-", row["Subject"])
    console.print(table)
    if len(cases) != len({e["case_id"] for e in events}):
        raise RuntimeError("some cases did not reach Salesforce")
    return cases


def show_summary(conversations: dict[str, list[dict]], cases: list[dict], report, switches: int, console: Console) -> None:
    routes = defaultdict(int)
    for turns in conversations.values():
        for turn in turns:
            if turn["direction"] == "INBOUND":
                routes[turn["route"]] += 1
    console.rule("[bold]What happened")
    console.print(f"{len(conversations)} conversations on {len({t[0]['channel'] for t in conversations.values()})} channels, "
                  f"{report.inbound_messages} customer messages: {routes['answer']} answered, {routes['clarify']} clarified, "
                  f"{routes['handoff']} handed to a person, {routes['silent']} kept for the person (bot silent)")
    console.print(f"{switches} customer(s) switched channel and continued the same session and case")
    console.print(f"{len(cases)} cases in Salesforce; effects audit: "
                  f"{'[green]every message got exactly one reply or handoff[/]' if report.ok else '[red]VIOLATIONS[/]'} "
                  f"({report.replies} replies, {report.escalations} escalations)")
