"""The single-object Avro codec: round trips, the wire format, evolution, and clear errors on bad bytes."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import MAGIC, AvroCodec, CodecError, CorruptMessageError, SchemaMismatchError, UnknownSchemaError
from schemas.registry import SCHEMAS_DIR, SchemaRegistry, default_registry
from tests.avro_samples import sample_record

SCHEMA_NAMES = [name.rsplit(".", 1)[1] for name in default_registry().names()]


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec()


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_schema_round_trips_every_field(codec: AvroCodec, name: str) -> None:
    record = sample_record(default_registry().current(name).parsed, seed=3)
    data = codec.encode(name, record)
    assert codec.decode(data) == record
    assert codec.decode(data, reader=name) == record


def test_header_is_marker_plus_little_endian_crc64_fingerprint(codec: AvroCodec) -> None:
    schema = default_registry().current("InboundMessage")
    data = codec.encode("InboundMessage", sample_record(schema.parsed))
    assert data[:2] == MAGIC == b"\xc3\x01"
    assert data[2:10] == schema.fingerprint
    assert codec.writer_schema(data).name == "io.centralita.InboundMessage"


def test_fingerprint_matches_the_avro_specification_vector() -> None:
    # Avro's schema-tests vector: the CRC-64-AVRO fingerprint of "int" is 8247732601305521295,
    # written little-endian in the single-object header.
    from fastavro.schema import fingerprint

    assert bytes.fromhex(fingerprint('"int"', "CRC-64-AVRO")) == struct.pack("<Q", 8247732601305521295)


@pytest.mark.parametrize(
    ("data", "error", "says"),
    [
        (b"", CorruptMessageError, "too short"),
        (b"\xc3\x01\x00", CorruptMessageError, "too short"),
        (b'{"text": "hola"}', CorruptMessageError, "marker is missing"),
        (MAGIC + b"\x00" * 8 + b"\x02", UnknownSchemaError, "unknown schema fingerprint 0000000000000000"),
    ],
)
def test_bad_bytes_get_a_typed_error_that_says_why(codec: AvroCodec, data: bytes, error: type, says: str) -> None:
    with pytest.raises(error, match=says):
        codec.decode(data)


def test_truncated_body_and_trailing_bytes_are_corrupt(codec: AvroCodec) -> None:
    data = codec.encode("SessionEvent", sample_record(default_registry().current("SessionEvent").parsed))
    with pytest.raises(CorruptMessageError, match="does not decode as SessionEvent"):
        codec.decode(data[:-5])
    with pytest.raises(CorruptMessageError, match="trailing bytes"):
        codec.decode(data + b"\x00\x00")


def test_reading_the_wrong_schema_is_refused(codec: AvroCodec) -> None:
    data = codec.encode("CaseEvent", sample_record(default_registry().current("CaseEvent").parsed))
    with pytest.raises(SchemaMismatchError, match="expected InboundMessage, the message holds CaseEvent"):
        codec.decode(data, reader="InboundMessage")


def test_invalid_record_names_the_fields_but_never_their_values(codec: AvroCodec) -> None:
    record = sample_record(default_registry().current("InboundMessage").parsed)
    record["channel"] = "CARRIER_PIGEON"
    record["sender_id"] = 34600111222  # not a string
    del record["text"]
    with pytest.raises(SchemaMismatchError) as info:
        codec.encode("InboundMessage", record)
    message = str(info.value)
    assert "channel" in message and "sender_id" in message and "text (missing)" in message
    assert "CARRIER_PIGEON" not in message and "34600111222" not in message
    assert "CARRIER_PIGEON" not in repr(info.value.__cause__)


def test_data_written_with_a_released_version_decodes_with_the_current_one(tmp_path: Path) -> None:
    # Evolve SessionEvent: v1 is released, the current version adds a field with a default.
    shutil.copytree(SCHEMAS_DIR / "avro", tmp_path / "avro")
    shutil.copytree(SCHEMAS_DIR / "released", tmp_path / "released")
    current = tmp_path / "avro" / "session_event.avsc"
    schema = json.loads(current.read_text())
    schema["fields"].append({"name": "agent_id", "type": ["null", "string"], "default": None, "doc": "Agent."})
    current.write_text(json.dumps(schema))

    old_codec = AvroCodec(_registry_of_released(tmp_path))  # a producer that still writes v1
    new_codec = AvroCodec(SchemaRegistry(tmp_path / "avro", tmp_path / "released"))
    old_record = sample_record(old_codec.registry.current("SessionEvent").parsed)
    old_bytes = old_codec.encode("SessionEvent", old_record)

    assert new_codec.writer_schema(old_bytes).version == 1
    assert new_codec.decode(old_bytes) == {**old_record, "agent_id": None}


def _registry_of_released(root: Path) -> SchemaRegistry:
    folder = root / "v1-only"
    folder.mkdir()
    shutil.copyfile(root / "released" / "session_event" / "1.avsc", folder / "session_event.avsc")
    return SchemaRegistry(folder, root / "none")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_arbitrary_bytes_raise_only_codec_errors(data: bytes) -> None:
    codec = AvroCodec()
    try:
        codec.decode(data)
    except CodecError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SCHEMA_NAMES), st.integers(min_value=0, max_value=1000), st.binary(max_size=64))
def test_mangled_valid_messages_raise_only_codec_errors(name: str, position: int, junk: bytes) -> None:
    codec = AvroCodec()
    data = codec.encode(name, sample_record(codec.registry.current(name).parsed))
    cut = 10 + position % (len(data) - 10)
    try:
        codec.decode(data[:cut] + junk)
    except CodecError:
        pass
