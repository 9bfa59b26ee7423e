"""`train_intent` end to end on a small labeled file (the bundled seeds take minutes; the shipped version's
card holds those numbers), and the calibration helpers."""

import json
from pathlib import Path

import numpy as np

from inference.intent_model import IntentModel
from inference.model_repository import ModelRepository
from inference.training import expected_calibration_error, fit_temperature, train_intent
from inference.training_data import seed_examples


def test_train_writes_the_next_version_with_a_model_card(tmp_path: Path) -> None:
    repository = ModelRepository(tmp_path)
    (tmp_path / "intent" / "1").mkdir(parents=True)
    examples = [e for e in seed_examples(1) if e.group % 3 == 0]  # a third of the seeds, one noisy variant each
    lines: list[str] = []
    report = train_intent(repository, examples, progress=lines.append)
    assert report.version == 2 and report.directory == tmp_path / "intent" / "2"
    assert {p.name for p in report.directory.iterdir()} == {"intent.npz", "intent.json", "model.py", "MODEL_CARD.md"}
    card = (report.directory / "MODEL_CARD.md").read_text()
    assert "| es |" in card and "| en |" in card and "calibration error" in card
    test = report.metrics["test"]
    assert set(test["per_language"]) == {"es", "en"} and 0.0 <= test["expected_calibration_error"] <= 1.0
    assert test["accuracy"] > 0.5  # far above 1/16 chance even on this small set
    assert IntentModel.load(report.directory).predict(["quiero cancelar mi pedido"])[0].intent == "cancel_order"
    assert json.loads((report.directory / "intent.json").read_text())["metrics"]["test"] == test
    assert any("test" in line for line in lines)


def test_fit_temperature_undoes_overconfidence() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 2000)
    logits = rng.normal(0, 1, (2000, 4))
    logits[np.arange(2000), truth] += 1.0
    assert fit_temperature(logits * 3.0, truth) > 2.0  # scores three times too sharp -> temperature near 3


def test_expected_calibration_error() -> None:
    confidence = np.array([0.9] * 10)
    assert expected_calibration_error(confidence, np.array([1] * 9 + [0])) == 0.0
    assert expected_calibration_error(confidence, np.array([1] * 5 + [0] * 5)) == 0.4
