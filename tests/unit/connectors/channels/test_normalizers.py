"""Every normalizer on real-format provider payloads, and every kind of bad input: one typed error, a reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.channels import NORMALIZERS, InvalidPayload, RawEvent, normalize
from schemas.codec import AvroCodec
from streams.ids import message_id

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "channels"
CODEC = AvroCodec()


def run(source: str, name: str) -> list[dict]:
    messages = normalize(RawEvent(source, (FIXTURES / source / name).read_bytes()))
    for message in messages:  # every output is a valid InboundMessage
        assert CODEC.decode(CODEC.encode("InboundMessage", message)) == message
    return messages


# -- WhatsApp Cloud API --------------------------------------------------------------------------------------

def test_whatsapp_text_reply_with_context() -> None:
    [m] = run("whatsapp", "text_with_context.json")
    assert (m["channel"], m["source"], m["sender_id"], m["recipient_id"]) == ("WHATSAPP", "whatsapp", "16505551234", "106540352242922")
    assert m["text"] == "Hola, ¿dónde está mi pedido 4711?"
    assert m["reply_to_channel_message_id"] == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDNjQ2QjFGODlBMTE0MTY2RjIA"
    assert m["sent_at"].timestamp() == 1749416383
    assert m["message_id"] == message_id("whatsapp", m["channel_message_id"])


def test_whatsapp_several_messages_in_one_delivery() -> None:
    messages = run("whatsapp", "batch_interactive_media_location.json")
    assert [m["channel_message_id"] for m in messages] == ["wamid.BUTTON1", "wamid.LIST1", "wamid.IMAGE1", "wamid.LOC1", "wamid.DOC1"]
    button, listed, image, location, document = messages
    assert button["text"] == "Seguir mi pedido" and button["metadata"]["reply_id"] == "track-order"
    assert listed["text"] == "Reembolso" and listed["metadata"]["reply_kind"] == "list_reply"
    assert image["text"] == "Así llegó la caja"
    assert image["attachments"][0]["kind"] == "image" and image["attachments"][0]["media_id"] == "1003383421387256"
    assert location["attachments"][0]["url"] == "geo:40.4168,-3.7038"
    assert document["attachments"][0]["filename"] == "factura.pdf" and document["text"] == ""
    assert len({m["conversation_id"] for m in messages}) == 1


def test_whatsapp_statuses_are_ignored() -> None:
    assert run("whatsapp", "status_only.json") == []


# -- Twilio --------------------------------------------------------------------------------------------------

def test_twilio_sms_long_sms_mms_and_whatsapp() -> None:
    [sms] = run("twilio", "sms.txt")
    assert (sms["channel"], sms["sender_id"], sms["text"]) == ("SMS", "+34600111222", "Quiero cancelar mi pedido 4711, por favor")
    [long] = run("twilio", "long_sms.txt")
    assert len(long["text"]) > 160 and long["metadata"]["num_segments"] == "3"
    [mms] = run("twilio", "mms.txt")
    assert [(a["kind"], a["mime_type"]) for a in mms["attachments"]] == [("image", "image/jpeg"), ("video", "video/mp4")]
    [wa] = run("twilio", "whatsapp.txt")
    assert (wa["channel"], wa["sender_id"], wa["recipient_id"]) == ("WHATSAPP", "+34600444555", "+14155238886")


def test_twilio_status_callbacks_are_ignored() -> None:
    assert run("twilio", "status_callback.txt") == []


# -- Messenger and Instagram ---------------------------------------------------------------------------------

def test_messenger_text_quick_reply_postback_attachment_reply() -> None:
    [text] = run("messenger", "text.json")
    assert (text["channel"], text["text"]) == ("MESSENGER", "my package arrived damaged")
    quick, postback, image, reply = run("messenger", "batch_quick_reply_postback_attachment.json")
    assert quick["metadata"] == {"quick_reply_payload": "TRACK_ORDER"}
    assert postback["text"] == "Talk to a person" and postback["metadata"]["postback_payload"] == "HUMAN_AGENT"
    assert image["attachments"][0]["url"].endswith("photo.jpg")
    assert reply["reply_to_channel_message_id"] == "m_OUT77"


def test_messenger_echoes_deliveries_and_reads_are_ignored() -> None:
    assert run("messenger", "echo_delivery_read.json") == []


def test_instagram_messages() -> None:
    text, mention = run("instagram", "text_and_story_mention.json")
    assert (text["channel"], text["text"]) == ("INSTAGRAM", "quiero hablar con una persona")
    assert mention["attachments"][0]["kind"] == "story_mention"


def test_instagram_payload_sent_to_messenger_is_refused() -> None:
    body = (FIXTURES / "instagram" / "text_and_story_mention.json").read_bytes()
    with pytest.raises(InvalidPayload, match="object is not page"):
        normalize(RawEvent("messenger", body))


# -- email ---------------------------------------------------------------------------------------------------

def test_email_multipart_quoted_printable_encoded_headers_quote_and_signature() -> None:
    [m] = run("email", "multipart_quoted_signature.eml")
    assert m["channel"] == "EMAIL" and m["sender_id"] == "ana.demo@example.com" and m["recipient_id"] == "support@example.com"
    assert m["subject"] == "Re: Devolución del pedido 4711"
    assert m["text"] == "Buenos días, todavía no me ha llegado el reembolso de la devolución."
    assert m["metadata"]["email_signature"].startswith("Gracias,\nAna") and "Tel. 600" in m["metadata"]["email_signature"]
    assert m["metadata"]["email_quoted"].startswith("El lun, 24 nov 2026") and "hemos recibido" in m["metadata"]["email_quoted"]
    assert m["metadata"]["in_reply_to"] == "<reply-1@support.example.com>"
    assert m["metadata"]["references"] == "<case-77@support.example.com> <reply-1@support.example.com>"
    assert m["attachments"] == [{"kind": "document", "url": None, "media_id": None, "mime_type": "application/pdf",
                                 "filename": "ticket-devolucion.pdf", "size_bytes": 78, "caption": None}]
    assert m["sent_at"].isoformat() == "2026-11-25T08:12:44+00:00"


def test_email_html_only_in_another_charset() -> None:
    [m] = run("email", "html_only_latin1.eml")
    assert m["text"].startswith("Hello,\n\nmy card payment failed twice")
    assert "Señor García" in m["text"] and "color:red" not in m["text"]
    assert m["metadata"]["html_only"] == "true" and "Thanks for your order" in m["metadata"]["email_quoted"]


def test_email_sent_from_phone_signature_and_english_quote() -> None:
    [m] = run("email", "plain_en_sent_from_phone.eml")
    assert m["text"] == "I want a refund for order 5521."
    assert m["metadata"]["email_signature"] == "Sent from my iPhone"
    assert m["metadata"]["email_quoted"].startswith("On Mon, Nov 24, 2026")


def test_email_without_from_is_invalid() -> None:
    with pytest.raises(InvalidPayload, match="missing or invalid From header"):
        normalize(RawEvent("email", b"Subject: hi\r\n\r\nhello"))


# -- web chat ------------------------------------------------------------------------------------------------

def test_webchat_message_and_signals() -> None:
    [m] = run("webchat", "message.json")
    assert (m["channel"], m["sender_id"], m["language"], m["text"]) == ("WEBCHAT", "visitor-5be1c0", "en", "can I change the delivery address?")
    assert run("webchat", "typing.json") == []


# -- bad input, every source ---------------------------------------------------------------------------------

BAD_BODIES = {
    "empty": (b"", "empty body"),
    "malformed_json": (b'{"object": "page", "entry": [', "malformed JSON"),
    "invalid_utf8": (b'{"object": "\xff\xfe"}', "not valid UTF-8"),
    "json_array": (b"[1, 2, 3]", "not a JSON object"),
}


@pytest.mark.parametrize("source", ["whatsapp", "messenger", "instagram", "webchat"])
@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_json_bodies_get_one_typed_error_with_a_reason(source: str, case: str) -> None:
    body, reason = BAD_BODIES[case]
    with pytest.raises(InvalidPayload, match=reason) as info:
        normalize(RawEvent(source, body))
    assert info.value.source == source


@pytest.mark.parametrize(("source", "mutate", "reason"), [
    ("whatsapp", lambda p: p["entry"][0]["changes"][0]["value"]["messages"][0].pop("from"), r"missing field .*messages\[0\]\.from"),
    ("whatsapp", lambda p: p["entry"][0]["changes"][0]["value"]["messages"][0].update(timestamp="yesterday"), "not a valid timestamp"),
    ("whatsapp", lambda p: p["entry"][0]["changes"][0]["value"]["messages"][0]["text"].update(body=42), "should be str, not int"),
    ("whatsapp", lambda p: p["entry"][0]["changes"][0]["value"]["messages"][0].update(type="hologram"), "not a known message type"),
    ("messenger", lambda p: p["entry"][0]["messaging"][0].pop("sender"), r"missing field .*messaging\[0\]\.sender"),
    ("messenger", lambda p: p["entry"][0]["messaging"][0]["message"].update(mid=["x"]), "should be str, not list"),
    ("webchat", lambda p: p.pop("visitor_id"), "missing field body.visitor_id"),
    ("webchat", lambda p: p.update(text="", attachments=[]), "without text or attachments"),
    ("webchat", lambda p: p.update(type="dance"), "unknown event type"),
])
def test_missing_fields_and_wrong_types_are_named(source: str, mutate, reason: str) -> None:
    name = {"whatsapp": "text_with_context.json", "messenger": "text.json", "webchat": "message.json"}[source]
    payload = json.loads((FIXTURES / source / name).read_text())
    mutate(payload)
    with pytest.raises(InvalidPayload, match=reason):
        normalize(RawEvent(source, json.dumps(payload).encode()))


@pytest.mark.parametrize(("body", "reason"), [
    (b"", "empty body"),
    (b"Body=hi&From=%2B34600", "missing field MessageSid"),
    (b"MessageSid=SM1&Body=hi", "missing field From"),
    (b"MessageSid=SM1&From=%2B34600&NumMedia=2&MediaUrl0=https%3A%2F%2Fx", "missing field MediaUrl1"),
    (b"MessageSid=SM1&From=%2B34600&NumMedia=lots", "NumMedia is not a number"),
    (b"MessageSid=SM1&From=%FF%FE&Body=x", "not form-encoded"),
    (b"\xff\xfe", "not valid UTF-8"),
])
def test_twilio_bad_forms(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidPayload, match=reason):
        normalize(RawEvent("twilio", body))


@pytest.mark.parametrize("source", sorted(NORMALIZERS))
def test_five_megabyte_body_is_refused_or_read_but_never_crashes(source: str) -> None:
    body = b"{" + b'"a":' * (5 * 1024 * 1024 // 4) + b"1}"
    with pytest.raises(InvalidPayload):
        normalize(RawEvent(source, body))


def test_unknown_source() -> None:
    with pytest.raises(InvalidPayload, match="unknown source"):
        normalize(RawEvent("carrier-pigeon", b"{}"))


def test_redelivery_gives_the_same_ids() -> None:
    body = (FIXTURES / "whatsapp" / "text_with_context.json").read_bytes()
    first, second = normalize(RawEvent("whatsapp", body)), normalize(RawEvent("whatsapp", body))
    assert first[0]["message_id"] == second[0]["message_id"]
    assert first[0]["conversation_id"] == second[0]["conversation_id"]
