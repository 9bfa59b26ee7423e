"""Avro single-object encoding on fastavro: the bytes of every Centralita topic value.

Wire format (Avro specification, "Single-object encoding"):

    C3 01 | 8-byte CRC-64-AVRO fingerprint of the writer schema (little-endian) | Avro binary body

The fingerprint makes each message self-describing without a registry round trip: the decoder finds the
writer schema among the current and released versions and resolves it to the reader's (current) version.
Errors never quote field values, which may be personal data: only schema and field names.
"""

from __future__ import annotations

import io
from typing import Any, Mapping

from fastavro import schemaless_reader, schemaless_writer
from fastavro.validation import validate

from schemas.registry import SchemaRegistry, SchemaVersion, default_registry

MAGIC = b"\xc3\x01"
HEADER_SIZE = len(MAGIC) + 8


class CodecError(ValueError):
    """Bytes or a record the codec cannot handle; the message says why (never with field values)."""


class CorruptMessageError(CodecError):
    """The bytes are not a valid single-object encoded Avro value."""


class UnknownSchemaError(CodecError):
    """The fingerprint names a schema this process does not know."""


class SchemaMismatchError(CodecError):
    """A record does not fit its schema, or a message holds another schema than the one expected."""


class AvroCodec:
    """Encode records to and decode records from single-object encoded Avro."""

    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        self.registry = registry or default_registry()

    def encode(self, schema_name: str, record: Mapping[str, Any]) -> bytes:
        """Encode `record` with the current version of `schema_name`."""
        schema = self.registry.current(schema_name)
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(schema.fingerprint)
        try:
            schemaless_writer(buf, schema.parsed, record)
        except Exception as exc:  # fastavro raises ValueError, TypeError, AttributeError, KeyError, ...
            raise SchemaMismatchError(
                f"record does not match {schema.short_name}: invalid field(s) {', '.join(invalid_fields(schema, record)) or '?'}"
            ) from _without_values(exc)
        return buf.getvalue()

    def writer_schema(self, data: bytes) -> SchemaVersion:
        """The schema the bytes were written with, from the header."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CorruptMessageError(f"expected bytes, got {type(data).__name__}")
        if len(data) < HEADER_SIZE:
            raise CorruptMessageError(f"too short for Avro single-object encoding ({len(data)} bytes, need >= {HEADER_SIZE})")
        if bytes(data[:2]) != MAGIC:
            raise CorruptMessageError("not Avro single-object encoding: the C3 01 marker is missing")
        fp = bytes(data[2:HEADER_SIZE])
        schema = self.registry.by_fingerprint(fp)
        if schema is None:
            raise UnknownSchemaError(f"unknown schema fingerprint {fp.hex()}: written with a schema this build does not have")
        return schema

    def decode(self, data: bytes, reader: str | None = None) -> dict[str, Any]:
        """Decode to a dict in the current version of the writer's schema (or of `reader`, which must match)."""
        writer = self.writer_schema(data)
        target = self.registry.current(reader) if reader else self.registry.current(writer.name)
        if target.name != writer.name:
            raise SchemaMismatchError(f"expected {target.short_name}, the message holds {writer.short_name}")
        body = io.BytesIO(bytes(data[HEADER_SIZE:]))
        try:
            if writer.fingerprint == target.fingerprint:
                record = schemaless_reader(body, writer.parsed, None)
            else:
                record = schemaless_reader(body, writer.parsed, target.parsed)
        except Exception as exc:  # EOFError, UnicodeDecodeError, IndexError (bad enum/union index), ...
            raise CorruptMessageError(f"body does not decode as {writer.short_name} ({type(exc).__name__})") from None
        if body.tell() != len(data) - HEADER_SIZE:
            raise CorruptMessageError(f"{len(data) - HEADER_SIZE - body.tell()} trailing bytes after the {writer.short_name} body")
        if not isinstance(record, dict):
            raise CorruptMessageError(f"body of {writer.short_name} is not a record")
        return record


def invalid_fields(schema: SchemaVersion, record: Mapping[str, Any]) -> list[str]:
    """Names of the top-level fields of `record` that do not validate against `schema` (no values)."""
    if not isinstance(record, Mapping):
        return [f"<record is {type(record).__name__}, not a mapping>"]
    bad = []
    for field in schema.parsed["fields"]:
        name = field["name"]
        if name not in record and "default" not in field:
            bad.append(f"{name} (missing)")
            continue
        value = record.get(name, field.get("default"))
        try:
            ok = validate(value, field["type"], raise_errors=False)
        except Exception:  # noqa: BLE001 - a crash in validation is as good as "invalid"
            ok = False
        if not ok:
            bad.append(name)
    return bad


def _without_values(exc: Exception) -> Exception | None:
    """fastavro's messages can quote the datum; keep only its type so no personal data reaches logs."""
    return CodecError(type(exc).__name__)
