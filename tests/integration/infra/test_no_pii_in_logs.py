"""Personal data never reaches logs or metric labels. Customers with planted PII (phone numbers, emails, names,
ID and card numbers, an IBAN, an address) write through the real gateway to a worker on real Kafka and Triton;
some messages are escalated (cases go to the Salesforce emulator through the CRM sink), one webhook is malformed
(dead-lettered) and one badly signed (refused). Afterwards no log of any process and no metric label holds any
of the planted values."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

from infra.kafka_clients import make_consumer
from infra.processes import free_port
from infra.settings import Settings
from infra.simulate import provider_message_id
from infra.webhooks import CustomerMessage, gateway_headers, webhook_body
from schemas.topics import SOURCES
from streams.audit import read_messages
from streams.ids import message_id
from tests.integration.connectors.test_gateway import SECRETS, start_gateway
from tests.integration.streams.workers import start_worker, stop_worker, wait_ready


def planted(tag: str) -> dict[str, str]:
    digits = str(int(uuid.uuid4().int % 10**8)).zfill(8)
    return {
        "phone": f"3466{digits[:7]}", "sms_phone": f"+4477{digits}", "email": f"lucia.{tag}@example.org",
        "name": "Lucía Zubizarreta", "surname": "Zubizarreta", "dni": "12345678Z", "card": "4111 1111 1111 1111", "iban": "ES91 2100 0418 4502 0005 1332",
        "street": "Calle de Alcalá 123", "psid": f"7{digits}{digits[:7]}",
    }


def messages(pii: dict[str, str], tag: str) -> list[CustomerMessage]:
    return [
        CustomerMessage("whatsapp", pii["phone"], f"{tag}-1",
                        f"Hola, soy {pii['name']}, mi DNI es {pii['dni']} y vivo en {pii['street']}. ¿Dónde está mi pedido?"),
        CustomerMessage("whatsapp", pii["phone"], f"{tag}-2", "Esto es una vergüenza, quiero hablar con una persona ya"),
        CustomerMessage("twilio", pii["sms_phone"], f"{tag}-3", f"my card {pii['card']} was charged twice, call me at {pii['sms_phone']}"),
        CustomerMessage("email", pii["email"], f"{tag}-4", f"Please refund to {pii['iban']}. Write to {pii['email']}. I want a person.",
                        display_name=pii["name"], subject=f"Refund for {pii['name']}"),
        CustomerMessage("messenger", pii["psid"], f"{tag}-5", f"I'm {pii['name']}, my order has not arrived"),
    ]


def variants(value: str) -> set[str]:
    """The value as written and as digits only (a log line could hold either)."""
    found = {value, value.lower()}
    digits = re.sub(r"\D", "", value)
    if len(digits) >= 7:
        found.add(digits)
    return found


def test_no_personal_data_in_any_log_or_metric_label(kafka, triton, salesforce, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:10]
    pii = planted(tag)
    base = {**kafka.env(), **triton.settings_env(), **salesforce.env()}

    worker = start_worker(base, tmp_path, f"pii-{tag}", loglevel="info")
    gateway, url = start_gateway(base, tmp_path, "gateway")
    sink_port = free_port()
    sink_log = tmp_path / "crm-sink.log"
    sink = subprocess.Popen([sys.executable, "-m", "infra.cli", "crm-sink"], stdout=open(sink_log, "wb"), stderr=subprocess.STDOUT,
                            env={**base, "CENTRALITA_CRM_METRICS_PORT": str(sink_port), "CENTRALITA_CRM_GROUP_ID": f"pii-sink-{tag}",
                                 "CENTRALITA_CRM_BATCH_MAX_WAIT_S": "0.5"})
    settings = Settings(kafka_bootstrap=kafka.bootstrap, meta_app_secret=SECRETS["CENTRALITA_META_APP_SECRET"],
                        twilio_auth_token=SECRETS["CENTRALITA_TWILIO_AUTH_TOKEN"], relay_secret=SECRETS["CENTRALITA_RELAY_SECRET"],
                        public_base_url="https://hooks.example.com")
    replies = make_consumer(kafka.settings, group_id=f"pii-replies-{tag}", **{"auto.offset.reset": "latest"})
    replies.subscribe([f"channel.{s}.outbound" for s in SOURCES])
    try:
        wait_ready(worker, 120)
        deadline = time.monotonic() + 20
        while not replies.assignment() and time.monotonic() < deadline:
            replies.poll(0.5)
        wanted = set()
        for message in messages(pii, tag):
            body = webhook_body(message)
            path = f"/webhooks/{message.source}"
            response = requests.post(url + path, data=body, timeout=15,
                                     headers=gateway_headers(message.source, body, settings, "https://hooks.example.com" + path))
            assert response.status_code == 200, response.text
            wanted.add(message_id(message.source, provider_message_id(message)))
            time.sleep(0.5)  # one conversation's turns in order, as a person types
        # A malformed webhook holding PII (dead-lettered by the stream) and a badly signed one (refused by the gateway).
        broken = f'{{"object": "whatsapp_business_account", "entry": [{{"changes": [{{"value": {{"messages": [{{"from": "{pii["phone"]}", "text": '
        signed = {"X-Hub-Signature-256": gateway_headers("whatsapp", broken.encode(), settings, url)["X-Hub-Signature-256"],
                  "Content-Type": "application/json"}
        assert requests.post(f"{url}/webhooks/whatsapp", data=broken.encode(), headers=signed, timeout=15).status_code == 200
        assert requests.post(f"{url}/webhooks/whatsapp", data=webhook_body(messages(pii, tag + "x")[0]),
                             headers={"X-Hub-Signature-256": "sha256=00", "Content-Type": "application/json"}, timeout=15).status_code == 401

        got, deadline = set(), time.monotonic() + 90
        while not wanted <= got and time.monotonic() < deadline:
            msg = replies.poll(0.5)
            if msg is not None and msg.error() is None:
                got.add(json.loads(msg.value()).get("in_reply_to"))
        assert wanted <= got, f"{len(wanted - got)} messages unanswered"
        cases = []
        deadline = time.monotonic() + 60
        while not cases and time.monotonic() < deadline:
            cases = [c for c in salesforce.cases("case-") if pii["surname"] in (c.get("Description") or "")]
            time.sleep(1)
        assert cases, "the escalated conversation's case did not reach Salesforce (the scan below would prove little)"
        metrics = requests.get(f"http://127.0.0.1:{worker.web_port}/metrics", timeout=5).text \
            + requests.get(f"{url}/metrics", timeout=5).text + requests.get(f"http://127.0.0.1:{sink_port}/metrics", timeout=5).text
    finally:
        replies.close()
        for proc in (sink, gateway):
            proc.terminate()
            proc.wait(20)
        stop_worker(worker)

    dead = [m.value() for m in read_messages(kafka.settings, "channel.whatsapp.inbound.raw.dlq")]
    assert any(pii["phone"].encode() in value for value in dead), "the malformed webhook was not dead-lettered"
    paths = [worker.log_path, tmp_path / "gateway.log", sink_log, salesforce.emulator.process.log_file,
             triton.server.process.log_file] + ([kafka.broker.process.log_file] if kafka.broker else [])
    logs = {path.name: path.read_text(errors="replace") for path in paths}
    assert logs[worker.log_path.name] and logs[sink_log.name], "the worker and the sink log their work: empty logs prove nothing"
    labels = " ".join(re.findall(r"\{[^}]*\}", metrics))
    for kind, value in pii.items():
        for text in variants(value):
            for name, content in logs.items():
                assert text not in content, f"planted {kind} found in {name}"
            assert text not in labels, f"planted {kind} found in a metric label"
