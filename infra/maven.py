"""Jars from Maven Central, fetched once into the cache: the Kafka broker's and Spark's Kafka connector."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from infra.processes import StackError


def maven_jars(pom: Path, target: Path, properties: dict[str, str], what: str) -> Path:
    """Run `mvn dependency:copy-dependencies` (runtime scope) on `pom` into `target` unless done before."""
    marker = target / ".complete"
    if marker.exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(f"Maven (mvn) is needed once to fetch {what}; apt-get install maven or run ./infra/bootstrap.sh")
    target.mkdir(parents=True, exist_ok=True)
    cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={target}",
           "-DincludeScope=runtime", *(f"-D{k}={v}" for k, v in properties.items())]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise StackError(f"Maven could not fetch {what}:\n{tail}")
    marker.write_text(" ".join(f"{k}={v}" for k, v in properties.items()))
    return target
