"""The yardstick of `bench e2e`: a bare Faust agent that parses each raw WhatsApp body and writes one reply.

Configured as Faust's documentation sets an app up (defaults, `at_least_once`), on the same broker, reading the same
raw records as the engine: what Faust itself costs per message, so the engine's capacity is given as a ratio to it.
Run as `python -m tests.bench.bare_agent worker -l warn` with CENTRALITA_KAFKA_BOOTSTRAP and BARE_AGENT_ID set.
"""

from __future__ import annotations

import json
import os

import faust

REPLIES = "bench.bare-agent.replies"

app = faust.App(os.environ.get("BARE_AGENT_ID", "bench-bare-agent"),
                broker=[f"kafka://{s}" for s in os.environ.get("CENTRALITA_KAFKA_BOOTSTRAP", "127.0.0.1:9092").split(",")],
                store="memory://", key_serializer="raw", value_serializer="raw", topic_disable_leader=True,
                consumer_auto_offset_reset="earliest", web_port=int(os.environ.get("BARE_AGENT_WEB_PORT", "6099")),
                web_bind="127.0.0.1", web_host="127.0.0.1")
raw = app.topic("channel.whatsapp.inbound.raw", key_type=bytes, value_type=bytes)
replies = app.topic(REPLIES, key_type=bytes, value_type=bytes)


@app.agent(raw)
async def answer(stream):
    async for key, body in stream.items():
        payload = json.loads(body)
        for entry in payload.get("entry", []):
            for change in entry.get("changes", []):
                for message in change.get("value", {}).get("messages", []):
                    reply = {"in_reply_to": message["id"], "to": message["from"], "text": "Hola, ¿en qué puedo ayudarte?"}
                    await replies.send(key=key, value=json.dumps(reply).encode())


if __name__ == "__main__":
    app.main()
