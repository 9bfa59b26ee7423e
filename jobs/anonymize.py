"""The anonymization job: conversation log in, training data without personal data out.

Run it as `centralita anonymize --input PATH --output PATH [--master URL] [--key-file F] [--erase-list F]`
or with `spark-submit jobs/anonymize.py --input ... --output ...` on any cluster.

- Input: JSON Lines or Parquet (by extension, or a folder of either) with at least message_id,
  conversation_id, customer_id, channel, sent_at and text. Rows that cannot be used are counted by reason
  (malformed JSON, missing field, not UTF-8) in the report, never dropped silently.
- Each row: text masked with typed tags (`jobs/pii.py`), customer/conversation/agent ids replaced by keyed
  pseudonyms (`jobs/pseudonymize.py`), `sent_at` generalized to the hour (configurable), raw identifiers
  dropped; rows of subjects on the erase list are left out and counted.
- Output: Parquet partitioned by `date`, and `_report.json` (rows in/out, skips, erasures, PII masked by type
  in the rows written, duration) next to it, also printed. One pass over the input: the counts are Spark
  observed metrics of the rows as they stream through. Progress is shown on stderr while Spark runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

REQUIRED = ("message_id", "conversation_id", "customer_id", "channel", "sent_at", "text")
OPTIONAL = ("agent_id", "intent", "confidence", "language", "direction", "author")
#: Why a row cannot be used: every value `_skip` can take (parse_jsonl, decode_turns, with_skip_reasons).
SKIP_REASONS = ("empty_line", "not_utf8", "malformed_json", "undecodable_value", *(f"missing_{name}" for name in REQUIRED),
                "bad_sent_at")
GRANULARITIES = {"minute": "yyyy-MM-dd HH:mm:00", "hour": "yyyy-MM-dd HH:00:00", "day": "yyyy-MM-dd 00:00:00"}


class AnonymizeError(ValueError):
    """The job cannot run on this input (empty, unreadable, wrong format); the message says why."""


@dataclass
class Report:
    input: str
    output: str
    rows_in: int = 0
    rows_out: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    erased_rows: int = 0
    pii_found: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def spark_session(master: str | None, app_name: str = "centralita-anonymize", jars: list[str] | None = None):
    """A session for `master`. Local masters keep the driver on 127.0.0.1; on a cluster (k8s://, spark://, yarn)
    executors must reach the driver, so its address comes from SPARK_LOCAL_IP (the pod IP in Kubernetes) and
    spark-defaults.conf (SPARK_CONF_DIR), as Spark documents."""
    from pyspark.sql import SparkSession

    local = master is None or master.startswith("local")
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers run this interpreter (with this environment's packages), not whatever `python3` is on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name).config("spark.sql.session.timeZone", "UTC") \
        .config("spark.ui.enabled", "false").config("spark.sql.execution.arrow.pyspark.enabled", "true") \
        .config("spark.ui.showConsoleProgress", "false") \
        .config("spark.sql.maxConcurrentOutputFileWriters", "32")  # a task writes its few dates without sorting its rows first
    if local:
        builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
    if jars:
        builder = builder.config("spark.jars", ",".join(jars))
    if master:
        builder = builder.master(master)
    return builder.getOrCreate()


KAFKA_PREFIX = "kafka://"


def read_kafka(spark, source: str, starting_offsets: str):
    """conversation.log (or another ConversationTurn topic) read by offsets with Spark's Kafka source, values
    decoded from Avro single-object encoding in the Python workers. `source` is kafka://host:port[,host:port]/topic."""
    from pyspark.sql.types import StringType, StructField, StructType

    from infra.kafka_acls import ANONYMIZER_GROUP
    from infra.settings import get_settings

    address, _, topic = source[len(KAFKA_PREFIX):].partition("/")
    if not address or not topic:
        raise AnonymizeError(f"a Kafka input looks like kafka://host:port/topic, not {source}")
    reader = spark.read.format("kafka").option("kafka.bootstrap.servers", address).option("subscribe", topic) \
        .option("groupIdPrefix", ANONYMIZER_GROUP) \
        .option("startingOffsets", starting_offsets).option("endingOffsets", "latest").option("failOnDataLoss", "false")
    for name, value in kafka_security_options(get_settings()).items():
        reader = reader.option(name, value)
    raw = reader.load()
    schema = StructType([StructField(n, StringType()) for n in (*REQUIRED, *OPTIONAL, "_skip")])
    return raw.select("value").mapInPandas(decode_turns, schema)


def kafka_security_options(settings) -> dict[str, str]:
    """The CENTRALITA_KAFKA_* TLS/SASL settings as options of Spark's Kafka source (the Java client's names).

    The JAAS line holds the password; Spark redacts option values that match `spark.redaction.regex`
    ("password" among them) in plans and the UI.
    """
    from infra.kafka_clients import jaas_config, security_config

    librdkafka = security_config(settings)
    if not librdkafka:
        return {}
    options = {"kafka.security.protocol": librdkafka["security.protocol"]}
    if "sasl.mechanisms" in librdkafka:
        module = "plain.PlainLoginModule" if librdkafka["sasl.mechanisms"] == "PLAIN" else "scram.ScramLoginModule"
        options.update({"kafka.sasl.mechanism": librdkafka["sasl.mechanisms"],
                        "kafka.sasl.jaas.config": jaas_config(module, librdkafka["sasl.username"], librdkafka["sasl.password"])})
    if "ssl.ca.location" in librdkafka:
        options.update({"kafka.ssl.truststore.type": "PEM", "kafka.ssl.truststore.location": librdkafka["ssl.ca.location"]})
    return options


def decode_turns(batches):
    """Avro ConversationTurn bytes -> the job's columns; a value that does not decode is a counted skip."""
    import pandas as pd

    from schemas.codec import AvroCodec, CodecError

    codec = AvroCodec()
    for batch in batches:
        rows = []
        for value in batch["value"]:
            try:
                turn = codec.decode(bytes(value))
            except (CodecError, TypeError, ValueError):
                rows.append({"_skip": "undecodable_value"})
                continue
            # A customer the channels could not identify is known by their conversation.
            rows.append({"message_id": turn.get("message_id") or turn.get("turn_id"), "conversation_id": turn.get("conversation_id"),
                         "customer_id": turn.get("customer_id") or turn.get("conversation_id"), "channel": turn.get("channel"),
                         "sent_at": turn["sent_at"].isoformat() if turn.get("sent_at") else None, "text": turn.get("text"),
                         "agent_id": turn.get("agent_id"), "intent": turn.get("intent"),
                         "confidence": None if turn.get("confidence") is None else str(turn["confidence"]),
                         "language": turn.get("language"), "direction": turn.get("direction"), "author": turn.get("author"),
                         "_skip": None})
        if rows:  # an empty frame does not convert back to Arrow
            yield pd.DataFrame(rows, columns=[*REQUIRED, *OPTIONAL, "_skip"]).astype(object).where(lambda f: f.notna(), None)


def read_rows(spark, path: Path | str, starting_offsets: str = "earliest"):
    """A DataFrame with one string column `raw` (JSON Lines) or the Parquet columns, plus the input format."""
    if str(path).startswith(KAFKA_PREFIX):
        return read_kafka(spark, str(path), starting_offsets), "kafka"
    if not path.exists():
        raise AnonymizeError(f"{path} does not exist")
    files = [p for p in (path.rglob("*") if path.is_dir() else [path]) if p.is_file() and not p.name.startswith(("_", "."))]
    if not files or all(p.stat().st_size == 0 for p in files):
        raise AnonymizeError(f"{path} is empty: nothing to anonymize")
    if all(p.suffix == ".parquet" for p in files):
        return spark.read.parquet(str(path)), "parquet"
    return spark.read.option("wholetext", "false").text(str(path)).withColumnRenamed("value", "raw"), "jsonl"


def parse_jsonl(frame):
    """JSON Lines -> typed columns plus `_skip` (why a row cannot be used, or null)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField(name, StringType()) for name in REQUIRED + OPTIONAL])
    parsed = frame.withColumn("_json", F.from_json("raw", schema, {"mode": "PERMISSIVE"}))
    empty = F.length(F.trim("raw")) == 0
    not_json = F.col("_json").isNull() | ~F.trim("raw").startswith("{")
    bad_utf8 = ~F.is_valid_utf8("raw")  # the text source keeps the file's bytes; invalid sequences survive to here
    columns = [F.col(f"_json.{name}").alias(name) for name in REQUIRED + OPTIONAL]
    return parsed.select(*columns, F.when(empty, "empty_line").when(bad_utf8, "not_utf8")
                         .when(not_json, "malformed_json").alias("_skip"))


def with_skip_reasons(frame):
    from pyspark.sql import functions as F

    missing = None
    for name in REQUIRED:
        condition = F.col(name).isNull() | (F.trim(F.col(name).cast("string")) == "")
        missing = F.when(condition, f"missing_{name}") if missing is None else missing.when(condition, f"missing_{name}")
    if "_skip" not in frame.columns:
        frame = frame.withColumn("_skip", F.lit(None).cast("string"))
    for name in OPTIONAL:
        if name not in frame.columns:
            frame = frame.withColumn(name, F.lit(None).cast("string"))
    ts = F.try_to_timestamp(F.col("sent_at").cast("string"))
    return frame.withColumn("_skip", F.coalesce("_skip", missing, F.when(ts.isNull(), "bad_sent_at"))).withColumn("_ts", ts)


def anonymize_batches(key: bytes, known_names: list[str], erase: set[str]):
    """The function mapInPandas runs on each batch of rows (in the Python workers). `erase` holds customer ids
    and customer pseudonyms (from the erasure audit) whose rows are left out before anything else is done with
    them: their text is not even scanned."""
    import pandas as pd

    from jobs.pii import TYPES, PiiDetector
    from jobs.pseudonymize import Pseudonymizer

    def run(batches: Iterator) -> Iterator:
        import numpy as np

        column = {kind: i for i, kind in enumerate(TYPES)}
        detector = PiiDetector(known_names)
        pseudonyms = Pseudonymizer(key)
        for batch in batches:
            customers = pd.Series(tokens(pseudonyms, "customer", batch["customer_id"].astype(str)), index=batch.index)
            kept = ~(batch["customer_id"].astype(str).isin(erase) | customers.isin(erase))
            batch, customers = batch[kept], customers[kept]
            if batch.empty:
                continue
            masked = []
            counts = np.zeros((len(batch), len(TYPES)), dtype=np.int32)
            for row, text in enumerate(batch["text"].astype(str)):
                out, found = detector.mask(text)
                masked.append(out)
                for kind, count in found.items():
                    counts[row, column[kind]] = count
            result = batch[["message_id", "channel", "intent", "language", "direction", "author"]].copy()
            result["confidence"] = pd.to_numeric(batch["confidence"], errors="coerce")
            result["text"] = masked
            result["customer"] = customers.values
            result["conversation"] = tokens(pseudonyms, "conversation", batch["conversation_id"].astype(str))
            result["agent"] = tokens(pseudonyms, "agent", batch["agent_id"])
            result["sent_at"] = batch["sent_at"]
            for kind, i in column.items():
                result[f"pii_{kind}"] = counts[:, i]
            yield result
    return run


def tokens(pseudonyms, kind: str, values) -> list:
    """Pseudonyms of a batch's ids, each distinct id hashed once (a conversation's messages share their ids)."""
    distinct = {v: pseudonyms.token(kind, v) if isinstance(v, str) else None for v in set(values)}
    return [distinct[v] for v in values]


def output_schema():
    from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType, TimestampType

    from jobs.pii import TYPES

    fields = [StructField(n, StringType()) for n in ("message_id", "channel", "intent", "language", "direction", "author",
                                                     "text", "customer", "conversation", "agent")]
    fields.append(StructField("confidence", DoubleType()))
    fields.append(StructField("sent_at", TimestampType()))
    fields += [StructField(f"pii_{t}", IntegerType()) for t in TYPES]
    return StructType(fields)


def run_job(spark, input_path: Path | str, output_path: Path, key: bytes, erase: set[str] | None = None,
            known_names: list[str] | None = None, granularity: str = "hour", starting_offsets: str = "earliest") -> Report:
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from jobs.pii import TYPES

    if granularity not in GRANULARITIES:
        raise AnonymizeError(f"granularity must be one of {', '.join(GRANULARITIES)}")
    started = time.monotonic()
    report = Report(str(input_path), str(output_path))
    frame, kind = read_rows(spark, input_path, starting_offsets)
    if kind == "jsonl":
        frame = parse_jsonl(frame)
    elif kind == "parquet":
        frame = frame.select(*[F.col(c).cast("string").alias(c) for c in REQUIRED + OPTIONAL if c in frame.columns])
    # One pass over the input: rows and skip reasons are counted as they stream by (Spark's observed metrics,
    # collected from the tasks that succeed), the usable rows masked and written to Parquet.
    counted = Observation("anonymize-input")
    rows = with_skip_reasons(frame).observe(counted, F.count(F.lit(1)).alias("rows"),
                                            *[F.sum(F.when(F.col("_skip") == reason, 1).otherwise(0)).alias(reason)
                                              for reason in SKIP_REASONS],
                                            F.sum(F.when(~F.col("_skip").isin(*SKIP_REASONS), 1).otherwise(0)).alias("other"))
    usable = rows.where(F.col("_skip").isNull()).withColumn("sent_at", F.col("_ts"))
    columns = ["message_id", "conversation_id", "customer_id", "agent_id", "channel", "sent_at", "text", *OPTIONAL[1:]]
    result = usable.select(*columns).mapInPandas(anonymize_batches(key, known_names or [], erase or set()), output_schema())
    # The masks per type are counted as the rows stream to Parquet, then dropped: the output holds the data only.
    produced = Observation("anonymize-output")
    result.observe(produced, F.count(F.lit(1)).alias("rows"), *[F.sum(f"pii_{t}").alias(t) for t in TYPES]) \
        .drop(*[f"pii_{t}" for t in TYPES]) \
        .withColumn("sent_at", F.date_trunc(granularity, "sent_at")).withColumn("date", F.to_date("sent_at")) \
        .write.mode("overwrite").partitionBy("date").parquet(str(output_path))
    observed, totals = counted.get, produced.get
    report.rows_in = int(observed["rows"] or 0)
    report.skipped = {reason: int(observed[reason]) for reason in (*SKIP_REASONS, "other") if observed[reason]}
    report.rows_out = int(totals["rows"] or 0)
    report.erased_rows = report.rows_in - sum(report.skipped.values()) - report.rows_out  # erasure is the only filter left
    report.pii_found = {t: int(totals[t]) for t in TYPES if totals[t]}
    report.duration_s = round(time.monotonic() - started, 2)
    (output_path / "_report.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return report


class Progress(threading.Thread):
    """Prints Spark's task progress to stderr every second while the job runs."""

    def __init__(self, spark) -> None:
        super().__init__(daemon=True)
        self.tracker = spark.sparkContext.statusTracker()
        self.done = threading.Event()

    def run(self) -> None:
        last = ""
        while not self.done.wait(1.0):
            stages = [self.tracker.getStageInfo(s) for s in self.tracker.getActiveStageIds()]
            line = ", ".join(f"stage {s.stageId}: {s.numCompletedTasks}/{s.numTasks} tasks" for s in stages if s)
            if line and line != last:
                print(f"anonymize: {line}", file=sys.stderr, flush=True)
                last = line


def read_list(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise AnonymizeError(f"cannot read {path}: {error}") from None
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def erased_subjects() -> set[str]:
    """Pseudonyms of subjects erased before (`centralita erase`): their rows never come back in a later run."""
    from infra.settings import get_settings

    path = get_settings().state_dir / "erasure-audit.jsonl"
    if not path.exists():
        return set()
    return {json.loads(line)["subject"] for line in path.read_text().splitlines() if line.strip()}


def main(argv: list[str] | None = None) -> int:
    from infra.processes import StackError
    from jobs.pseudonymize import PseudonymKeyError, load_key
    from jobs.spark_jars import kafka_connector_jars

    parser = argparse.ArgumentParser(prog="anonymize", description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="JSON Lines or Parquet file/folder, or kafka://host:port/topic")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--master", default=None, help="Spark master (default local[*] or spark-submit's)")
    parser.add_argument("--key-file", type=Path, default=None, help="pseudonymization key (else CENTRALITA_PSEUDONYM_KEY)")
    parser.add_argument("--erase-list", type=Path, default=None, help="customer ids to leave out, one per line")
    parser.add_argument("--known-names", type=Path, default=None, help="names the CRM knows, one per line")
    parser.add_argument("--starting-offsets", default="earliest",
                        help='Kafka input: earliest, or per partition as JSON: {"conversation.log": {"0": 120, "1": -2}}')
    parser.add_argument("--granularity", choices=list(GRANULARITIES), default="hour", help="how sent_at is generalized")
    args = parser.parse_args(argv)
    try:
        key = load_key(args.key_file)
        erase, names = set(read_list(args.erase_list)) | erased_subjects(), read_list(args.known_names)
        kafka_input = args.input.startswith(KAFKA_PREFIX)
        jars = kafka_connector_jars() if kafka_input else None
        spark = spark_session(args.master or ("local[*]" if "pyspark.shell" not in sys.modules else None), jars=jars)
        spark.sparkContext.setLogLevel("ERROR")
        progress = Progress(spark)
        progress.start()
        try:
            report = run_job(spark, args.input if kafka_input else Path(args.input), args.output, key, erase, names,
                             args.granularity, args.starting_offsets)
        finally:
            progress.done.set()
    except (AnonymizeError, PseudonymKeyError, StackError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # spark-submit runs this file directly
    sys.exit(main())
