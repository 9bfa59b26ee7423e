"""The Avro schemas of every topic: current versions, released versions, and lookup by fingerprint.

`schemas/avro/<name>.avsc` is the contract a producer writes with today. `schemas/released/<name>/<n>.avsc`
keeps every released version, so that (a) a consumer can still decode what an older producer wrote (the
writer schema is found by the fingerprint in the message) and (b) `centralita schemas check` can prove a
change is backward compatible before it ships.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

SCHEMAS_DIR = Path(__file__).resolve().parent
CURRENT_DIR = SCHEMAS_DIR / "avro"
RELEASED_DIR = SCHEMAS_DIR / "released"


class SchemaFileError(ValueError):
    """A schema file cannot be read or is not a valid Avro schema."""


@dataclass(frozen=True)
class SchemaVersion:
    """One version of one schema, parsed and fingerprinted."""

    name: str  # full name, e.g. io.centralita.InboundMessage
    stem: str  # file stem, e.g. inbound_message
    version: int | None  # released version number; None for the current working copy
    raw: dict[str, Any]
    parsed: dict[str, Any]
    fingerprint: bytes  # CRC-64-AVRO of the parsing canonical form, little-endian, as in the message header

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def json(self) -> str:
        return json.dumps(self.raw)


def load_schema_file(path: Path, version: int | None = None) -> SchemaVersion:
    """Read and parse one .avsc file; SchemaFileError says which file and why it is not valid."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaFileError(f"{path}: not readable JSON ({exc})") from exc
    try:
        parsed = parse_schema(raw)
    except Exception as exc:  # fastavro raises several types for invalid schemas
        raise SchemaFileError(f"{path}: not a valid Avro schema ({exc})") from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        raise SchemaFileError(f"{path}: a topic schema must be an Avro record")
    canonical = to_parsing_canonical_form(parsed)
    return SchemaVersion(
        name=parsed["name"],
        stem=path.parent.name if version is not None else path.stem,
        version=version,
        raw=raw,
        parsed=parsed,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )


class SchemaRegistry:
    """All schemas of one schema folder pair, indexed by name and by fingerprint."""

    def __init__(self, current_dir: Path = CURRENT_DIR, released_dir: Path = RELEASED_DIR) -> None:
        self.current_dir = current_dir
        self.released_dir = released_dir
        self._current: dict[str, SchemaVersion] = {}
        self._released: dict[str, list[SchemaVersion]] = {}
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        for path in sorted(current_dir.glob("*.avsc")):
            schema = load_schema_file(path)
            self._current[schema.name] = schema
        for folder in sorted(p for p in released_dir.glob("*") if p.is_dir()):
            versions = []
            for path in folder.glob("*.avsc"):
                if not path.stem.isdigit():
                    raise SchemaFileError(f"{path}: released schema files are named <version>.avsc")
                versions.append(load_schema_file(path, int(path.stem)))
            versions.sort(key=lambda s: s.version or 0)
            if versions:
                self._released[versions[0].name] = versions
        # Released first, current last: the current version wins a fingerprint they share (same writer schema).
        for versions in self._released.values():
            for schema in versions:
                self._by_fingerprint[schema.fingerprint] = schema
        for schema in self._current.values():
            self._by_fingerprint[schema.fingerprint] = schema

    def names(self) -> list[str]:
        """Full names of every current schema."""
        return sorted(self._current)

    def current(self, name: str) -> SchemaVersion:
        """The current version of a schema, by full name (io.centralita.X) or short name (X)."""
        full = name if "." in name else f"io.centralita.{name}"
        try:
            return self._current[full]
        except KeyError:
            raise KeyError(f"no schema named {name!r}; known: {', '.join(self.names())}") from None

    def released(self, name: str) -> list[SchemaVersion]:
        """Released versions of a schema, oldest first (empty when never released)."""
        return list(self._released.get(self.current(name).name, []))

    def by_fingerprint(self, fp: bytes) -> SchemaVersion | None:
        return self._by_fingerprint.get(fp)


@lru_cache(maxsize=1)
def default_registry() -> SchemaRegistry:
    """The registry of the schemas shipped in this package."""
    return SchemaRegistry()
