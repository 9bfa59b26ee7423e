"""A Faust codec per schema, so agents read and write typed records as single-object Avro.

Faust calls the codec with the record's dict form on the way out and hands the decoded dict to the topic's
`value_type` (a record class from `schemas.records`) on the way in. One codec instance per schema, because
encoding needs to know which schema to write with.
"""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from schemas.codec import AvroCodec


def to_plain(value: Any) -> Any:
    """Faust records (also nested ones, in lists and maps) to plain dicts that fastavro can write."""
    if hasattr(value, "asdict") and callable(value.asdict):
        return {k: to_plain(v) for k, v in value.asdict().items()}
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


class FaustAvroCodec(codecs.Codec):
    """Faust codec bound to one schema (by short name, e.g. "InboundMessage")."""

    def __init__(self, schema_name: str, avro: AvroCodec | None = None, **kwargs: Any) -> None:
        super().__init__(schema_name=schema_name, **kwargs)
        self.schema_name = schema_name
        self.avro = avro or AvroCodec()

    def _dumps(self, obj: Any) -> bytes:
        return self.avro.encode(self.schema_name, to_plain(obj))

    def _loads(self, s: bytes) -> Any:
        return self.avro.decode(s, reader=self.schema_name)


def codec_for(schema_name: str) -> FaustAvroCodec:
    """The codec of a schema, registered with Faust as ``avro:<schema>`` so topics may name it too."""
    name = f"avro:{schema_name}"
    existing = codecs.codecs.get(name)
    if isinstance(existing, FaustAvroCodec):
        return existing
    codec = FaustAvroCodec(schema_name)
    codecs.register(name, codec)
    return codec
