"""End to end in a real browser: Debian's headless Chromium types into the web chat page served by the real
gateway; the message goes through Kafka and the real worker; a reply comes back through Kafka and appears.

The worker's conversation engine answers with its rules NLU (no Triton in this test); the test reads the canonical
message on `conversation.inbound` and the reply on `conversation.outbound`, and waits for the reply in the page.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from infra.kafka_clients import make_consumer
from infra.processes import free_port
from schemas.codec import AvroCodec
from tests.integration.streams.workers import stop_worker
from tests.integration.connectors.test_gateway import start_gateway

CHROMIUM = "/usr/bin/chromium"
CODEC = AvroCodec()
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is installed by `make test`")


def wait_reply(kafka, conversation_id: str, message_id: str, timeout_s: float) -> dict:
    """The engine's reply to one message, read from conversation.outbound."""
    from streams.audit import read_topic

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for value in read_topic(kafka.settings, "conversation.outbound"):
            record = CODEC.decode(value)
            if record["conversation_id"] == conversation_id and record["in_reply_to"] == message_id:
                return record
        time.sleep(1)
    raise AssertionError(f"no reply to the browser's message in {timeout_s}s")


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

            # The real engine in the worker answers it (rules NLU: no Triton here); its reply is on the record of
            # replies, conversation.outbound, and the gateway pushes its channel payload to the browser.
            reply = wait_reply(kafka, inbound["conversation_id"], inbound["message_id"], 90)
            assert reply["channel"] == "WEBCHAT" and reply["author"] == "BOT"
            first_line = reply["text"].splitlines()[0][:40]
            page.locator(".msg.bot", has_text=first_line).first.wait_for(timeout=60_000)
            if reply["quick_replies"]:
                assert page.locator(".quick button").first.inner_text() == reply["quick_replies"][0]
            page.screenshot(path=str(tmp_path / "webchat.png"))
            browser.close()
    finally:
        consumer.close()
        gateway.terminate()
        gateway.wait(10)
        stop_worker(worker)
