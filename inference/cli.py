"""`centralita train`, `centralita models` and `centralita classify`: the inference commands.

Registered on the main `centralita` group in infra/cli.py. Errors a user can act on (a malformed
training file, an unknown version, a file that is not UTF-8) print one line and exit non-zero.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Iterator

import click
from rich.console import Console
from rich.table import Table

from infra.settings import get_settings

console = Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _repository():
    from inference.model_repository import ModelRepository

    return ModelRepository(get_settings().triton_model_repository)


def _triton_http():
    """An HTTP client of the configured Triton, or None when none answers (model control is then skipped)."""
    import tritonclient.http as httpclient

    settings = get_settings()
    client = httpclient.InferenceServerClient(f"127.0.0.1:{settings.triton_http_port}", connection_timeout=2.0)
    try:
        return client if client.is_server_live() else None
    except Exception:  # noqa: BLE001 - unreachable server: nothing to tell it
        return None


@click.group()
def train() -> None:
    """Train a model and write a new version into the Triton model repository."""


@train.command("intent")
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Labeled JSON Lines (text, intent, language). Default: the bundled seeds with noise.")
@click.option("--canary-share", type=click.FloatRange(0, 1), default=None,
              help="Share of conversations the new version gets as canary (default CENTRALITA_CANARY_SHARE).")
def train_intent_cmd(data: Path | None, canary_share: float | None) -> None:
    """Train the intent model; the new version becomes the canary (or stable, if it is the first)."""
    from inference.releases import Release, Releases
    from inference.training import share_text, train_intent
    from inference.training_data import DatasetError, read_labeled

    repository = _repository()
    releases = Releases(repository)
    before = releases.get("intent") if repository.versions("intent") else None  # before the new folder exists
    try:
        labeled = read_labeled(data) if data else None
    except DatasetError as error:
        fail(str(error), code=2)
    with console.status("training the intent model") as status:
        try:
            report = train_intent(repository, labeled, progress=lambda line: status.update(line) or console.log(line))
        except DatasetError as error:
            fail(str(error), code=2)
    share = get_settings().canary_share if canary_share is None else canary_share
    release = releases.save("intent", Release(before.stable, report.version, share) if before else Release(report.version))
    test = report.metrics["test"]
    table = Table("held-out", "examples", "accuracy", "macro-F1")
    for language, m in test["per_language"].items():
        table.add_row(language, str(m["examples"]), share_text(m["accuracy"]), share_text(m["macro_f1"]))
    table.add_row("all", str(test["examples"]), f"{test['accuracy']:.3f}", f"{test['macro_f1']:.3f}")
    console.print(table)
    console.print(f"calibration error {test['expected_calibration_error']:.3f}; model card: {report.directory / 'MODEL_CARD.md'}")
    console.print(f"release: stable {release.stable}, canary {release.canary} ({release.canary_share:.0%})")
    _load("intent")


def _load(model: str) -> None:
    client = _triton_http()
    if client is None:
        console.print("Triton is not running; it serves the new version when it starts")
        return
    client.load_model(model)
    console.print(f"Triton reloaded {model}: versions {_ready_versions(client, model)}")


def _ready_versions(client, model: str) -> list[int]:
    return sorted(int(m["version"]) for m in client.get_model_repository_index()
                  if m.get("name") == model and m.get("state") == "READY" and m.get("version"))


@click.group()
def models() -> None:
    """Model versions and releases: status, load, promote, rollback."""


@models.command("status")
def models_status() -> None:
    """Versions on disk, the release of each model, and what Triton serves."""
    from inference.model_repository import MODELS
    from inference.releases import ReleaseError, Releases

    repository = _repository()
    releases = Releases(repository)
    client = _triton_http()
    table = Table("model", "versions", "stable", "canary", "share", "Triton ready")
    for model in MODELS:
        try:
            release = releases.get(model)
        except ReleaseError:
            continue
        ready = _ready_versions(client, model) if client else "not running"
        table.add_row(model, str(repository.versions(model)), str(release.stable), str(release.canary or "-"),
                      f"{release.canary_share:.0%}", str(ready))
    Console().print(table)


@models.command("load")
@click.argument("model", default="intent")
def models_load(model: str) -> None:
    """Ask the running Triton to (re)load MODEL, picking up new version folders."""
    if _triton_http() is None:
        fail("Triton is not running (start it with `centralita stack up`)")
    _load(model)


@models.command("promote")
@click.argument("model", default="intent")
def models_promote(model: str) -> None:
    """Make the canary version stable for every conversation."""
    from inference.releases import ReleaseError, Releases

    try:
        release = Releases(_repository()).promote(model)
    except ReleaseError as error:
        fail(str(error))
    click.echo(f"{model}: version {release.stable} is stable for every conversation")


@models.command("rollback")
@click.argument("model", default="intent")
def models_rollback(model: str) -> None:
    """Drop the canary; without one, go back to the previous version."""
    from inference.releases import ReleaseError, Releases

    try:
        release = Releases(_repository()).rollback(model)
    except ReleaseError as error:
        fail(str(error))
    click.echo(f"{model}: version {release.stable} is stable, no canary")


def _lines(stream: IO[bytes], name: str) -> Iterator[str]:
    for number, raw in enumerate(stream, 1):
        try:
            yield raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as error:
            fail(f"{name}:{number}: not UTF-8 (byte {error.start} of the line)", code=2)


@click.command()
@click.argument("file", type=click.File("rb"), default="-")
@click.option("--version", "version", type=int, default=None, help="Intent model version (default: the stable one).")
@click.option("--batch", type=click.IntRange(1, 4096), default=256, show_default=True, help="Texts per model call.")
def classify(file: IO[bytes], version: int | None, batch: int) -> None:
    """Classify one text per line of FILE (or stdin); print one JSON object per line.

    Runs the same model code Triton serves, in this process (no server needed)."""
    from inference.local import LocalNlu
    from inference.releases import ReleaseError

    try:
        nlu = LocalNlu.load(_repository(), version)
    except (ReleaseError, FileNotFoundError) as error:
        fail(str(error))
    count = 0
    chunk: list[str] = []
    for line in _lines(file, getattr(file, "name", "-")):
        chunk.append(line)
        if len(chunk) == batch:
            count += _emit(nlu, chunk)
            chunk = []
    count += _emit(nlu, chunk)
    console.print(f"classified {count} texts with intent version {nlu.version}") if count >= 1000 else None


def _emit(nlu, texts: list[str]) -> int:
    for result in nlu.classify(texts):
        click.echo(json.dumps(result, ensure_ascii=False))
    return len(texts)
