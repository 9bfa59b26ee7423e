"""Channel limits of outbound formatting."""

from __future__ import annotations

import email
from datetime import datetime, timedelta, timezone

import pytest
from email import policy

from connectors.channels.outbound import (SMS_MAX_CHARS, WHATSAPP_MAX_CHARS, format_outbound, sms_encoding,
                                          split_text)

NOW = datetime(2026, 11, 25, 12, tzinfo=timezone.utc)


def outbound(channel: str, text: str, **extra) -> dict:
    return {"message_id": "out-1", "in_reply_to": "msg-1", "conversation_id": "conv-1", "channel": channel,
            "recipient_id": "+34600111222", "author": "BOT", "agent_id": None, "created_at": NOW, "text": text,
            "language": "es", "quick_replies": [], "template": None, "metadata": {}, **extra}


@pytest.mark.parametrize(("text", "encoding", "units", "segments"), [
    ("Hello", "GSM-7", 5, 1),
    ("a" * 160, "GSM-7", 160, 1),
    ("a" * 161, "GSM-7", 161, 2),
    ("a" * 306, "GSM-7", 306, 2),
    ("a" * 307, "GSM-7", 307, 3),
    ("€" * 80, "GSM-7", 160, 1),  # extension table: two septets each
    ("€" * 81, "GSM-7", 162, 2),
    ("ñandú ¿qué?", "UCS-2", 11, 1),  # ú is not in GSM-7
    ("é" * 160, "GSM-7", 160, 1),  # é is
    ("a" * 70 + "í", "UCS-2", 71, 2),
    ("😀" * 35, "UCS-2", 70, 1),  # surrogate pairs count two units
    ("😀" * 36, "UCS-2", 72, 2),
])
def test_sms_encoding_and_segments(text: str, encoding: str, units: int, segments: int) -> None:
    result = sms_encoding(text)
    assert (result.encoding, result.units, result.segments) == (encoding, units, segments)


def test_sms_is_capped_at_1600_characters_at_a_word_boundary() -> None:
    text = "palabra " * 300
    source, [payload] = format_outbound(outbound("SMS", text), NOW - timedelta(minutes=1), NOW)
    assert source == "twilio" and payload["truncated"] is True
    assert len(payload["body"]) <= SMS_MAX_CHARS and payload["body"].endswith("palabra…")
    _, [short] = format_outbound(outbound("SMS", "Hola"), None, NOW)
    assert short["truncated"] is False and short["segments"] == 1


def test_whatsapp_long_text_is_split_under_4096_inside_the_window() -> None:
    text = ("Primera frase del párrafo. " * 100 + "\n\n") * 3
    _, payloads = format_outbound(outbound("WHATSAPP", text), NOW - timedelta(hours=2), NOW)
    assert len(payloads) >= 2 and all(len(p["text"]) <= WHATSAPP_MAX_CHARS for p in payloads)
    assert [p["part"] for p in payloads] == list(range(1, len(payloads) + 1))
    assert " ".join(p["text"] for p in payloads).split() == text.split()


def test_whatsapp_outside_24_hours_sends_only_a_template() -> None:
    _, [late] = format_outbound(outbound("WHATSAPP", "free text"), NOW - timedelta(hours=25), NOW)
    assert late["type"] == "template" and late["free_text_blocked"] is True and "text" not in late
    _, [never] = format_outbound(outbound("WHATSAPP", "free text"), None, NOW)
    assert never["free_text_blocked"] is True
    _, [template] = format_outbound(outbound("WHATSAPP", "", template="order_update"), NOW - timedelta(days=3), NOW)
    assert template["template"] == "order_update" and template["free_text_blocked"] is False


def test_messenger_limits_window_and_human_agent_tag() -> None:
    _, payloads = format_outbound(outbound("MESSENGER", "x " * 1500, quick_replies=[f"opción número {i}" for i in range(20)]),
                                  NOW - timedelta(hours=1), NOW)
    assert all(len(p["message"]["text"]) <= 2000 for p in payloads) and payloads[0]["messaging_type"] == "RESPONSE"
    quick = payloads[-1]["message"]["quick_replies"]
    assert len(quick) == 13 and all(len(q["title"]) <= 20 for q in quick)
    _, [agent] = format_outbound(outbound("MESSENGER", "hola", author="AGENT"), NOW - timedelta(days=3), NOW)
    assert agent["messaging_type"] == "MESSAGE_TAG" and agent["tag"] == "HUMAN_AGENT"
    _, [bot] = format_outbound(outbound("INSTAGRAM", "hola"), NOW - timedelta(days=3), NOW)
    assert bot["blocked"] is True


def test_email_reply_is_threaded() -> None:
    message = outbound("EMAIL", "Hemos emitido el reembolso.", recipient_id="ana.demo@example.com", metadata={
        "email_message_id": "<CAF=demo-3@mail.example.com>", "references": "<case-77@support.example.com>",
        "subject": "Devolución del pedido 4711", "business_address": "support@example.com"})
    source, [payload] = format_outbound(message, NOW, NOW)
    mail = payload["rfc822"]
    assert source == "email"
    assert "In-Reply-To: <CAF=demo-3@mail.example.com>" in mail
    assert "References: <case-77@support.example.com> <CAF=demo-3@mail.example.com>" in mail
    parsed = email.message_from_string(mail, policy=policy.default)
    assert parsed["Subject"] == "Re: Devolución del pedido 4711" and parsed["To"] == "ana.demo@example.com"
    assert parsed["Message-ID"] == "<out-1@centralita>" and parsed.get_content().strip() == "Hemos emitido el reembolso."


def test_split_text_never_loses_words() -> None:
    text = "word " * 1000
    parts = split_text(text, 333)
    assert all(len(p) <= 333 for p in parts) and " ".join(parts).split() == text.split()


def test_a_message_for_a_channel_integration_we_do_not_serve_is_refused() -> None:
    from connectors.channels.outbound import UnroutableOutbound

    with pytest.raises(UnroutableOutbound, match="metadata.source is not one of"):
        format_outbound(outbound("SMS", "hola", metadata={"source": "carrier-pigeon"}), now=NOW)
