"""The `centralita` command: one entry point to every component.

Errors a user can act on (broker unreachable, Java missing, port taken, a breaking schema change) print one
clear line to stderr and exit non-zero; they are never tracebacks.
"""

from __future__ import annotations

import json
import sys
from typing import NoReturn

import click
from rich.console import Console
from rich.table import Table

from infra.settings import get_settings

console = Console(width=None if sys.stdout.isatty() else 120)


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group()
@click.version_option(package_name="centralita")
def main() -> None:
    """Centralita: event-driven backbone for AI customer-service chatbots."""


# -- stack ------------------------------------------------------------------------------------------------

@main.group()
def stack() -> None:
    """The local stack (real Kafka broker; Triton and the Salesforce emulator as they land)."""


@stack.command("up")
def stack_up() -> None:
    """Start every component that is not running yet and wait until each is ready."""
    from infra.processes import StackError
    from infra.stack import Stack

    try:
        for line in Stack.from_settings(get_settings()).up():
            click.echo(line)
    except StackError as exc:
        fail(str(exc))


@stack.command("down")
def stack_down() -> None:
    """Stop the components this stack started (by pid), in reverse order."""
    from infra.stack import Stack

    for line in Stack.from_settings(get_settings()).down():
        click.echo(line)


@stack.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stack_status(as_json: bool) -> None:
    """Say what runs where."""
    from infra.stack import Stack

    rows = Stack.from_settings(get_settings()).status()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("component", "state", "pid", "address", "log")
    for row in rows:
        table.add_row(row["component"], row["state"], row["pid"], row["address"], row["log"])
    console.print(table)


# -- topics -----------------------------------------------------------------------------------------------

@main.group()
def topics() -> None:
    """The topic catalog."""


@topics.command("create")
def topics_create() -> None:
    """Create every catalog topic that does not exist yet (idempotent)."""
    from infra.kafka_clients import BrokerUnreachableError, make_admin
    from infra.topic_admin import catalog_for, create_topics

    settings = get_settings()
    try:
        results = create_topics(make_admin(settings), settings.kafka_bootstrap, catalog_for(settings))
    except BrokerUnreachableError as exc:
        fail(str(exc))
    for result in results:
        click.echo(f"{result.outcome:8} {result.name}")
    click.echo(f"{sum(r.outcome == 'created' for r in results)} created, {sum(r.outcome == 'exists' for r in results)} already existed")


@topics.command("list")
def topics_list() -> None:
    """Show the catalog: partitions (this deployment's settings), retention, schema and dead-letter topic of each topic."""
    from infra.topic_admin import catalog_for

    table = Table("topic", "partitions", "cleanup", "retention (days)", "schema", "key", "dead letters")
    for spec in catalog_for(get_settings()):
        days = "forever" if spec.retention_ms < 0 else f"{spec.retention_ms / 86_400_000:g}"
        table.add_row(spec.name, str(spec.partitions), spec.cleanup_policy, days, spec.schema or "raw bytes",
                      spec.key, spec.dead_letter or "-")
    console.print(table)


@main.command()
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when a generated file is out of date.")
def generate(check: bool) -> None:
    """Write the files made from the catalog, the ACLs, the rules and the dashboard (infra/k8s/base/generated/,
    infra/grafana/centralita.json)."""
    from infra.manifests import stale_files, write_generated

    if check:
        stale = stale_files()
        for path in stale:
            click.echo(f"out of date: {path}")
        if stale:
            fail("run `centralita generate` and commit the result")
        click.echo("generated files are up to date")
        return
    written = write_generated()
    click.echo("\n".join(f"wrote {p}" for p in written) if written else "generated files are up to date")


# -- schemas ----------------------------------------------------------------------------------------------

@main.group()
def schemas() -> None:
    """Avro schemas: compatibility with released versions."""


@schemas.command("check")
@click.option("--schemas-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder holding avro/ and released/ (default: the shipped schemas).")
def schemas_check(schemas_dir: str | None) -> None:
    """Fail when a current schema cannot read data written with its latest released version."""
    from pathlib import Path

    from schemas.compatibility import check_registry
    from schemas.registry import SchemaFileError, SchemaRegistry

    try:
        registry = SchemaRegistry(Path(schemas_dir) / "avro", Path(schemas_dir) / "released") if schemas_dir else SchemaRegistry()
    except SchemaFileError as exc:
        fail(str(exc))
    reports = check_registry(registry)
    for report in reports:
        against = f"v{report.against_version}" if report.against_version else "-"
        click.echo(f"{report.status:10} {report.name} (against {against})")
        for problem in report.problems:
            click.echo(f"           {problem}")
    breaking = [r.name for r in reports if not r.ok]
    if breaking:
        fail(f"breaking schema change in {', '.join(breaking)}: add defaults to new fields or release a new topic")
    click.echo(f"{len(reports)} schemas compatible with their released versions")


@schemas.command("release")
def schemas_release() -> None:
    """Record every changed, compatible schema as a new released version."""
    from schemas.compatibility import release_changed
    from schemas.registry import SchemaRegistry

    try:
        written = release_changed(SchemaRegistry())
    except ValueError as exc:
        fail(str(exc))
    click.echo("\n".join(written) if written else "nothing to release: every schema equals its latest release")


# -- channels ---------------------------------------------------------------------------------------------

@main.command("normalize")
@click.argument("source", type=click.Choice(["whatsapp", "twilio", "messenger", "instagram", "email", "webchat"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
def normalize_cmd(source: str, file: str) -> None:
    """Print the canonical messages of one raw provider body (FILE, or - for stdin), one JSON object per line.

    Runs the same code as the stream. Prints nothing for an event that is not a customer message; exits 2 with
    the reason on stderr for an invalid one.
    """
    from connectors.channels import InvalidPayload, RawEvent, normalize

    body = sys.stdin.buffer.read() if file == "-" else open(file, "rb").read()
    try:
        messages = normalize(RawEvent(source=source, body=body))
    except InvalidPayload as exc:
        fail(str(exc), code=2)
    for message in messages:
        click.echo(json.dumps(message, ensure_ascii=False, default=lambda v: v.isoformat()))


@main.command()
@click.option("--port", type=int, default=None, help="Port (default CENTRALITA_GATEWAY_PORT), on CENTRALITA_BIND_HOST.")
def gateway(port: int | None) -> None:
    """Run the webhook gateway (an ASGI server on CENTRALITA_BIND_HOST; put a TLS proxy in front in production)."""
    import uvicorn

    from connectors.gateway import GatewayConfig, RawPublisher, create_app
    from infra.prometheus_server import register_process

    settings = get_settings()
    config = GatewayConfig.from_settings(settings)
    for name, secret in (("CENTRALITA_META_APP_SECRET", config.meta_app_secret),
                         ("CENTRALITA_TWILIO_AUTH_TOKEN", config.twilio_auth_token),
                         ("CENTRALITA_RELAY_SECRET", config.relay_secret)):
        if not secret:
            click.echo(f"warning: {name} is not set: webhooks that need it are refused with 401", err=True)
    publisher = RawPublisher(settings, timeout_s=settings.gateway_publish_timeout_s)
    register_process(settings, "centralita-gateway", port or settings.gateway_port)
    try:
        uvicorn.run(create_app(config, publisher, settings), host=settings.bind_host, port=port or settings.gateway_port,
                    log_level="warning", access_log=False)
    finally:
        publisher.close()


@main.command()
@click.option("--loglevel", "-l", default="info", type=click.Choice(["crit", "error", "warn", "info", "debug"]))
@click.option("--web-port", type=int, default=None, help="Worker web port (metrics); give each worker its own.")
def worker(loglevel: str, web_port: int | None) -> None:
    """Run a Faust stream worker (several can run side by side; partitions are shared among them)."""
    import gc

    from infra.kafka_clients import BrokerUnreachableError
    from infra.prometheus_server import register_process
    from streams.app import PartitionCountMismatch, app, declare_changelog_topics

    settings = get_settings()
    try:
        declare_changelog_topics(app, settings)
    except (BrokerUnreachableError, PartitionCountMismatch) as exc:
        fail(str(exc))
    register_process(settings, "centralita-worker", web_port or settings.worker_web_port)
    # The worker holds every session of its partitions: with the default thresholds the cyclic garbage collector
    # walks that whole heap often, pausing every agent for tens to hundreds of milliseconds (reply latency's tail).
    gc.set_threshold(settings.worker_gc_threshold, 50, 100)
    gc.freeze()  # what start-up allocated (modules, models, tables recovered) is never collected again
    argv = ["centralita worker", "worker", "-l", loglevel]
    if web_port is not None:
        argv += ["--web-port", str(web_port)]
    sys.argv = argv
    app.main()


@main.command("audit")
def audit_cmd() -> None:
    """Check the engine's exactly-once effects on all traffic in the topics; exit 1 on a violation."""
    from infra.kafka_clients import BrokerUnreachableError, cluster_metadata, make_admin
    from streams.audit import audit

    settings = get_settings()
    try:
        cluster_metadata(make_admin(settings), settings.kafka_bootstrap)
    except BrokerUnreachableError as exc:
        fail(str(exc))
    report = audit(settings)
    click.echo(json.dumps({"inbound_messages": report.inbound_messages, "replies": report.replies,
                           "escalations": report.escalations, "cases": report.cases,
                           "duplicates_seen": report.duplicates_seen, "violations": report.violations[:50]}, indent=2))
    if not report.ok:
        fail(f"{len(report.violations)} violations")


# -- CRM ---------------------------------------------------------------------------------------------------

@main.command("salesforce-emulator")
@click.option("--port", type=int, default=None, help="Port (default CENTRALITA_SF_EMULATOR_PORT), on CENTRALITA_BIND_HOST.")
@click.option("--db", type=click.Path(dir_okay=False), default=None, help="SQLite file (default <state>/salesforce.sqlite).")
def salesforce_emulator(port: int | None, db: str | None) -> None:
    """Run the local Salesforce emulator (logins + Bulk API 1.0) in the foreground."""
    from pathlib import Path

    import uvicorn

    from connectors.salesforce.emulator import EmulatorConfig, create_app

    settings = get_settings()
    db_path = Path(db) if db else settings.state_dir / "salesforce.sqlite"
    db_path.parent.mkdir(parents=True, exist_ok=True)
    public_key = settings.sf_jwt_public_key_file.read_text() if settings.sf_jwt_public_key_file else None
    config = EmulatorConfig(db_path=db_path, client_id=settings.sf_client_id,
                            client_secret=settings.sf_client_secret.get_secret_value(),
                            username=settings.sf_username, password=settings.sf_password.get_secret_value(),
                            jwt_public_key=public_key, session_ttl_s=settings.sf_session_ttl_s)
    uvicorn.run(create_app(config), host=settings.bind_host, port=port or settings.sf_emulator_port,
                log_level="warning", access_log=False)


@main.command("crm-sink")
@click.option("--topic", default="crm.case-events", show_default=True, help="Topic of CaseEvent records.")
def crm_sink(topic: str) -> None:
    """Stream crm.case-events into Salesforce (Bulk API upserts by Centralita_Case_Id__c)."""
    import logging

    from connectors.crm.salesforce import SalesforceCrm
    from connectors.crm.sink import CaseSink, SinkStopped
    from infra.metrics import serve_metrics
    from infra.prometheus_server import register_process

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    serve_metrics(settings.crm_metrics_port, settings.bind_host)
    register_process(settings, "centralita-crm-sink", settings.crm_metrics_port)
    try:
        CaseSink(settings, SalesforceCrm.from_settings(settings), topic=topic).run()
    except SinkStopped as exc:
        fail(str(exc))


# -- demo and benchmarks ----------------------------------------------------------------------------------

@main.command()
def demo() -> None:
    """The main job on the local stack: publish sample messages and show them read back."""
    from infra.demo import run_demo
    from infra.kafka_clients import BrokerUnreachableError
    from infra.processes import StackError

    try:
        run_demo(get_settings(), console)
    except (StackError, BrokerUnreachableError, RuntimeError) as exc:
        fail(str(exc))


@main.command()
@click.option("--rate", type=float, default=None, help="Customer messages per second offered (open loop).")
@click.option("--duration", type=float, default=None, help="Seconds to offer them for.")
@click.option("--burst", type=int, default=None, help="Instead: this many messages at once (a backlog); reports the drain rate.")
@click.option("--via", type=click.Choice(["kafka", "gateway"]), default="kafka", show_default=True,
              help="Straight onto the raw topics, or through the webhook gateway over HTTP (signed).")
@click.option("--gateway-url", default=None, help="Gateway base URL (default http://127.0.0.1:CENTRALITA_GATEWAY_PORT).")
@click.option("--channels", default=",".join(("webchat", "whatsapp", "twilio", "messenger", "instagram", "email")),
              show_default=True, help="Comma-separated sources to simulate customers on.")
@click.option("--seed", type=int, default=None, help="Random seed (same personas and think times).")
@click.option("--drain", type=float, default=20.0, show_default=True, help="Seconds to wait for the last replies.")
@click.option("--output", type=click.Path(file_okay=False), default=None, help="Folder for the JSON report and plot (default bench-results/).")
def simulate(rate: float | None, duration: float | None, burst: int | None, via: str, gateway_url: str | None, channels: str,
             seed: int | None, drain: float, output: str | None) -> None:
    """Simulate customers on every channel at RATE msg/s for DURATION s (or a BURST backlog); print a latency and
    throughput report and save a plot."""
    from pathlib import Path

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from infra.kafka_clients import BrokerUnreachableError, cluster_metadata, make_admin
    from infra.simulate import plot, run_burst, run_simulation

    if burst is None and (rate is None or duration is None):
        fail("give --rate and --duration, or --burst", code=2)
    settings = get_settings()
    try:
        cluster_metadata(make_admin(settings), settings.kafka_bootstrap)
    except BrokerUnreachableError as exc:
        fail(str(exc))
    with Progress(TextColumn("[bold]simulate"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[answered]} answered"),
                  TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task("sent", total=burst or int(rate * duration), answered=0)
        update = lambda done, total, answered: bar.update(task, completed=done, answered=answered)  # noqa: E731
        picked = tuple(c.strip() for c in channels.split(",") if c.strip())
        try:
            if burst is not None:
                result = run_burst(settings, burst, channels=picked, seed=seed, drain_s=max(drain, 60.0), progress=update)
            else:
                result = run_simulation(settings, rate, duration, via=via, gateway_url=gateway_url, channels=picked,
                                        seed=seed, drain_s=drain, progress=update)
        except ValueError as exc:
            fail(str(exc), code=2)
    out = Path(output) if output else None
    result["plot"] = plot(result, out)
    text = json.dumps(result, indent=2)
    if out is not None:
        (out / f"{Path(result['plot']).stem}.json").write_text(text)
    click.echo(json.dumps({k: v for k, v in result.items() if k != "timeline"}, indent=2))
    if result["sent"] and not result["answered"]:
        fail("no message was answered: is a worker running (`centralita worker`)?")


@main.command()
@click.argument("name", required=False)
@click.option("--list", "list_", is_flag=True, help="Name the available benchmarks.")
@click.option("--quick", is_flag=True, help="A short run (smoke test), not for reporting.")
def bench(name: str | None, list_: bool, quick: bool) -> None:
    """Run benchmark NAME and print one JSON object."""
    from infra import bench as benches

    if list_ or not name:
        for bench_name in benches.available():
            click.echo(f"{bench_name:12} {benches.load(bench_name).DESCRIPTION}")
        return
    try:
        module = benches.load(name)
    except KeyError as exc:
        fail(exc.args[0], code=2)
    click.echo(json.dumps(module.run(quick=quick), indent=2))


@main.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def anonymize(args: tuple[str, ...]) -> None:
    """Anonymize the conversation log with Spark (see `centralita anonymize --help`)."""
    from jobs.anonymize import main as anonymize_main

    sys.exit(anonymize_main(list(args)))


def _subject_command(action: str, subject: str, outputs: tuple[str, ...], key_file: str | None) -> None:
    from pathlib import Path

    from jobs.anonymize import spark_session
    from jobs.pseudonymize import PseudonymKeyError, Pseudonymizer, load_key
    from jobs.subject import erase_subject, export_subject
    from infra.kafka_clients import BrokerUnreachableError

    try:
        pseudonyms = Pseudonymizer(load_key(Path(key_file) if key_file else None))
    except PseudonymKeyError as exc:
        fail(str(exc), code=2)
    spark = spark_session("local[*]") if outputs else None
    try:
        run = erase_subject if action == "erase" else export_subject
        result = run(get_settings(), subject, pseudonyms, [Path(o) for o in outputs], spark)
    except BrokerUnreachableError as exc:
        fail(str(exc))
    finally:
        if spark is not None:
            spark.stop()
    click.echo(json.dumps(result, indent=2, default=str, ensure_ascii=False))


def subject_options(command):
    """--subject, --output (repeatable) and --key-file, shared by erase and export."""
    command = click.option("--key-file", type=click.Path(exists=True, dir_okay=False), default=None,
                           help="Pseudonymization key (else CENTRALITA_PSEUDONYM_KEY).")(command)
    command = click.option("--output", "outputs", multiple=True, type=click.Path(file_okay=False),
                           help="Anonymized dataset (repeatable).")(command)
    return click.option("--subject", required=True, help="The customer id (phone, email or CRM id).")(command)


@main.command()
@subject_options
def erase(subject: str, outputs: tuple[str, ...], key_file: str | None) -> None:
    """Right to erasure: remove a subject from anonymized outputs, tombstone their keys, record an audit line."""
    _subject_command("erase", subject, outputs, key_file)


@main.command()
@subject_options
def export(subject: str, outputs: tuple[str, ...], key_file: str | None) -> None:
    """Right of access: everything held about a subject, as JSON."""
    _subject_command("export", subject, outputs, key_file)


@main.command("pii-quality")
@click.option("--set", "labeled", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Labeled JSON Lines (text, pii: [[type, substring]], keep: [look-alikes]); default: the bundled sets.")
@click.option("--name-model/--no-name-model", default=False, help="Also find names with the spaCy NER models (jobs/names.py).")
def pii_quality(labeled: str | None, name_model: bool) -> None:
    """Precision and recall per PII type, look-alikes preserved and PII-free rows changed, as JSON."""
    from pathlib import Path

    from jobs.pii import PiiDetector
    from jobs.pii_quality import EVAL_FILE, HOLDOUT_A_FILE, TEST_FILE, evaluate

    detector = PiiDetector(use_model=name_model)
    if labeled:
        click.echo(json.dumps(evaluate(Path(labeled), detector), indent=2))
    else:
        click.echo(json.dumps({"development": evaluate(EVAL_FILE, detector), "test": evaluate(TEST_FILE, detector),
                               "holdout_a": evaluate(HOLDOUT_A_FILE, detector)}, indent=2))


from inference.cli import classify, models, train  # noqa: E402  (registered after the group exists)

main.add_command(train)
main.add_command(models)
main.add_command(classify)


if __name__ == "__main__":
    main()
