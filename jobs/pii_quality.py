"""Precision and recall of `jobs/pii.py` per type on a labeled set, and how many look-alikes stay unmasked.

The set (`jobs/data/pii_eval.jsonl`, or any file of the same shape) holds texts with their personal data as
[type, exact substring] and the look-alikes that must stay ('keep'). A finding counts when it overlaps a
labeled span of its type; a look-alike is preserved when no finding touches it. `centralita pii-quality`
prints the figures as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from jobs.pii import TYPES, PiiDetector

EVAL_FILE = Path(__file__).resolve().parent / "data" / "pii_eval.jsonl"
TEST_FILE = Path(__file__).resolve().parent / "data" / "pii_test.jsonl"
HOLDOUT_A_FILE = Path(__file__).resolve().parent / "data" / "pii_holdout_a.jsonl"  # tests/pii_sets/holdout_a.py


def _spans(text: str, value: str) -> tuple[int, int]:
    start = text.index(value)
    return start, start + len(value)


def evaluate(path: Path = EVAL_FILE, detector: PiiDetector | None = None) -> dict:
    detector = detector or PiiDetector()
    tp = {t: 0 for t in TYPES}
    fp = {t: 0 for t in TYPES}
    fn = {t: 0 for t in TYPES}
    kept = total_keep = 0
    clean_rows = clean_changed = rows = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if "text" not in row:
            continue
        text = row["text"]
        rows += 1
        gold = [(kind, *_spans(text, value)) for kind, value in row["pii"]]
        found = detector.find(text)
        if not gold:
            clean_rows += 1
            clean_changed += bool(found)
        for kind, start, end in gold:
            if any(f.type == kind and f.start < end and start < f.end for f in found):
                tp[kind] += 1
            else:
                fn[kind] += 1
        for f in found:
            if not any(kind == f.type and f.start < end and start < f.end for kind, start, end in gold):
                fp[f.type] += 1
        for value in row.get("keep", []):
            start, end = _spans(text, value)
            total_keep += 1
            kept += all(f.end <= start or end <= f.start for f in found)
    per_type = {t: {"precision": round(tp[t] / (tp[t] + fp[t]), 3) if tp[t] + fp[t] else None,
                    "recall": round(tp[t] / (tp[t] + fn[t]), 3) if tp[t] + fn[t] else None,
                    "support": tp[t] + fn[t]} for t in TYPES}
    all_tp, all_fp, all_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    return {"set": str(path), "recall": round(all_tp / (all_tp + all_fn), 3), "precision": round(all_tp / (all_tp + all_fp), 3),
            "lookalikes_preserved": round(kept / total_keep, 3) if total_keep else None,
            "pii_free_rows": clean_rows, "pii_free_changed": round(clean_changed / clean_rows, 3) if clean_rows else None,
            "rows": rows, "per_type": per_type}
