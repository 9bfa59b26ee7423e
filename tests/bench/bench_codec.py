"""Codec benchmark: encode+decode of InboundMessage, records/s, fastavro single-object vs avro vs JSON.

All variants run in one process on the same records, so the ratios are comparable. Expect fastavro >= 5x
the `avro` package (the reason the hot path uses fastavro).
"""

from __future__ import annotations

import io
import json
import platform
import sys
import time
from datetime import datetime, timedelta, timezone

import avro.io
import avro.schema

from schemas.codec import AvroCodec
from schemas.registry import default_registry
from tests.bench.plots import bar_chart

DESCRIPTION = "encode+decode records/s of InboundMessage: fastavro single-object vs the avro package vs JSON"



def sample_records(n: int) -> list[dict]:
    """Varied, realistic InboundMessage dicts (synthetic addresses, no real person's data)."""
    base = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
    texts = ["Hola, ¿dónde está mi pedido 4711?", "I want to cancel my order please",
             "no me ha llegado el reembolso", "package arrived damaged, can you help?"]
    return [{
        "message_id": f"msg-{i:032x}",
        "conversation_id": f"conv-{i % 997:032x}",
        "channel": ("WHATSAPP", "SMS", "EMAIL", "WEBCHAT")[i % 4],
        "source": ("whatsapp", "twilio", "email", "webchat")[i % 4],
        "channel_message_id": f"wamid.{i:020d}",
        "sender_id": f"34600{i % 100000:06d}",
        "recipient_id": "34910000000",
        "customer_id": None if i % 3 else f"cust-{i}",
        "sent_at": base + timedelta(seconds=i),
        "received_at": base + timedelta(seconds=i, milliseconds=120),
        "text": texts[i % len(texts)] * (1 + i % 3),
        "language": ("es", "en")[i % 2],
        "attachments": [] if i % 5 else [{"kind": "image", "url": None, "media_id": f"m{i}", "mime_type": "image/jpeg",
                                           "filename": None, "size_bytes": 1024 * i, "caption": "foto"}],
        "reply_to_channel_message_id": None,
        "subject": None,
        "metadata": {"k": "v"},
    } for i in range(n)]


def _rate(n: int, fn) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def run(quick: bool = False) -> dict:
    n = 500 if quick else 20_000
    records = sample_records(n)
    codec = AvroCodec()

    def fastavro_roundtrip() -> None:
        for r in records:
            codec.decode(codec.encode("InboundMessage", r))

    schema = avro.schema.parse(default_registry().current("InboundMessage").json)
    writer, reader = avro.io.DatumWriter(schema), avro.io.DatumReader(schema)

    def avro_roundtrip() -> None:
        for r in records:
            buf = io.BytesIO()
            writer.write(r, avro.io.BinaryEncoder(buf))
            buf.seek(0)
            reader.read(avro.io.BinaryDecoder(buf))

    def json_roundtrip() -> None:
        for r in records:
            json.loads(json.dumps(r, default=lambda v: v.isoformat()).encode())

    results = {
        "fastavro_single_object": round(_rate(n, fastavro_roundtrip)),
        "avro_package": round(_rate(n, avro_roundtrip)),
        "json": round(_rate(n, json_roundtrip)),
    }
    return {
        "bench": "codec",
        "unit": "records/s (encode+decode)",
        "results": results,
        "fastavro_vs_avro": round(results["fastavro_single_object"] / results["avro_package"], 1),
        "records": n,
        "quick": quick,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "plot": bar_chart("codec", results, "records/s (encode+decode)"),
    }
