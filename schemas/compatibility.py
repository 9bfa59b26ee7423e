"""Schema evolution guard: every current schema must read what its latest released version wrote.

BACKWARD compatibility (the consumer upgrades first): data written with released version N must decode with
the current schema. Checked with the `avro` package's `ReaderWriterCompatibilityChecker`, the Python port of
the Java implementation that schema registries use, so our verdict matches theirs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from schemas.registry import SchemaRegistry, SchemaVersion


@dataclass(frozen=True)
class CompatibilityReport:
    """The verdict for one schema."""

    name: str
    status: str  # unchanged | compatible | breaking | unreleased
    against_version: int | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status != "breaking"


def check_pair(reader: SchemaVersion, writer: SchemaVersion) -> list[str]:
    """Problems that stop `reader` from reading data written with `writer` (empty when compatible)."""
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        avro.schema.parse(reader.json), avro.schema.parse(writer.json)
    )
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    kinds = sorted({str(getattr(kind, "value", kind)) for kind in result.incompatibilities}) or ["incompatible"]
    where = ", ".join(sorted(result.locations))
    names = ", ".join(sorted(str(m) for m in result.messages))
    return [f"{', '.join(kinds)} at {where or '/'} ({names})"]


def check_registry(registry: SchemaRegistry) -> list[CompatibilityReport]:
    """Check every current schema against its latest released version."""
    reports = []
    for name in registry.names():
        current = registry.current(name)
        released = registry.released(name)
        if not released:
            reports.append(CompatibilityReport(current.short_name, "unreleased", None))
            continue
        latest = released[-1]
        if latest.fingerprint == current.fingerprint:
            reports.append(CompatibilityReport(current.short_name, "unchanged", latest.version))
            continue
        problems = check_pair(current, latest)
        status = "breaking" if problems else "compatible"
        reports.append(CompatibilityReport(current.short_name, status, latest.version, problems))
    return reports


def release_changed(registry: SchemaRegistry) -> list[str]:
    """Copy every changed, compatible current schema to released/<stem>/<n+1>.avsc; refuse on a break."""
    reports = check_registry(registry)
    breaking = [r.name for r in reports if not r.ok]
    if breaking:
        raise ValueError(f"not releasing: breaking change in {', '.join(breaking)}")
    written = []
    for report in reports:
        if report.status not in ("compatible", "unreleased"):
            continue
        current = registry.current(report.name)
        version = (report.against_version or 0) + 1
        target = registry.released_dir / current.stem / f"{version}.avsc"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(registry.current_dir / f"{current.stem}.avsc", target)
        written.append(str(target))
    return written
