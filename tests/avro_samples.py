"""Sample values for any Avro schema: every field filled (optionals too), deterministic by seed.

Generated from the schema itself, so round-trip tests cover every field of every schema and keep doing so
when a schema gains a field.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

BASE_TIME = datetime(2026, 11, 25, 9, 30, tzinfo=timezone.utc)


def sample_value(schema: Any, seed: int, path: str = "") -> Any:
    if isinstance(schema, list):  # union: the first non-null branch
        branch = next((s for s in schema if s != "null"), "null")
        return sample_value(branch, seed, path)
    if isinstance(schema, str):
        return _primitive(schema, seed, path)
    kind = schema["type"]
    logical = schema.get("logicalType")
    if logical == "timestamp-millis":
        return BASE_TIME + timedelta(seconds=seed, milliseconds=123)
    if kind == "record":
        return {f["name"]: sample_value(f["type"], seed, f"{path}.{f['name']}") for f in schema["fields"]}
    if kind == "enum":
        symbols = schema["symbols"]
        return symbols[seed % len(symbols)]
    if kind == "array":
        return [sample_value(schema["items"], seed + i, f"{path}[{i}]") for i in range(2)]
    if kind == "map":
        return {f"k{seed}": sample_value(schema["values"], seed, f"{path}{{}}")}
    return sample_value(kind, seed, path)


def _primitive(kind: str, seed: int, path: str) -> Any:
    return {
        "string": f"{path.strip('.') or 'v'}-{seed} ñ✓",
        "int": seed + 1,
        "long": 10_000_000_000 + seed,
        "double": 0.25 + seed / 1000,
        "float": 0.5,
        "boolean": bool(seed % 2),
        "null": None,
        "bytes": bytes([seed % 256]),
    }[kind]


def sample_record(parsed_schema: dict, seed: int = 1) -> dict:
    """A record for `parsed_schema` (fastavro-parsed) with every field set."""
    return sample_value(parsed_schema, seed)
