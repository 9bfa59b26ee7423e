"""End to end in a real browser: Debian's headless Chromium types into the web chat page served by the real
gateway; the message goes through Kafka and the real worker; a reply comes back through Kafka and appears.

The conversation engine (routing, answers) is its own issue; here the test plays its part by reading the
canonical message from `conversation.inbound` and publishing an OutboundMessage to `conversation.outbound`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from infra.kafka_clients import make_consumer, make_producer
from infra.processes import free_port
from schemas.codec import AvroCodec
from tests.integration.streams.workers import stop_worker
from tests.integration.connectors.test_gateway import start_gateway

CHROMIUM = "/usr/bin/chromium"
CODEC = AvroCodec()
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is installed by `make test`")


def test_customer_types_in_the_web_chat_and_sees_the_reply(kafka, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    tag = uuid.uuid4().hex[:8]
    consumer = make_consumer(kafka.settings, group_id=f"e2e-bot-{tag}")  # the stand-in engine, from the end
    consumer.subscribe(["conversation.inbound"])
    consumer.poll(1)
    env = {**kafka.env(), "CENTRALITA_APP_ID": f"e2e-{tag}", "CENTRALITA_STATE_DIR": str(tmp_path / "state"),
           "CENTRALITA_WORKER_WEB_PORT": str(free_port()), "CENTRALITA_NLU_BACKEND": "rules"}
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", "-l", "warn"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    gateway, url = start_gateway(env, tmp_path, "gateway")
    text = f"Hola, ¿dónde está mi pedido {tag}?"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page()
            page.goto(f"{url}/webchat")
            page.wait_for_selector("text=conectado")
            page.fill("#text", text)
            page.keyboard.press("Enter")
            page.wait_for_selector("text=enviado", timeout=30_000)

            inbound = None
            deadline = time.monotonic() + 90
            while inbound is None and time.monotonic() < deadline:
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
                msg = consumer.poll(0.5)
                if msg is not None and not msg.error():
                    record = CODEC.decode(msg.value())
                    if record["text"] == text:
                        inbound = record
            assert inbound is not None, "the browser's message did not reach conversation.inbound"
            assert inbound["channel"] == "WEBCHAT" and inbound["source"] == "webchat"

            reply_text = f"Tu pedido {tag} está en camino y llega mañana."
            producer = make_producer(kafka.settings)
            producer.produce("conversation.outbound", key=inbound["conversation_id"].encode(),
                             value=CODEC.encode("OutboundMessage", {
                                 "message_id": f"reply-{inbound['message_id']}", "in_reply_to": inbound["message_id"],
                                 "conversation_id": inbound["conversation_id"], "channel": "WEBCHAT",
                                 "recipient_id": inbound["sender_id"], "author": "BOT", "agent_id": None,
                                 "created_at": datetime.now(timezone.utc), "text": reply_text, "language": "es",
                                 "quick_replies": ["Ver seguimiento"], "template": None, "metadata": {}}))
            assert producer.flush(30) == 0

            page.wait_for_selector(f".msg.bot >> text={reply_text}", timeout=60_000)
            assert page.locator(".quick button").first.inner_text() == "Ver seguimiento"
            page.screenshot(path=str(tmp_path / "webchat.png"))
            browser.close()
    finally:
        consumer.close()
        gateway.terminate()
        gateway.wait(10)
        stop_worker(worker)
