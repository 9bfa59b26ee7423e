from pathlib import Path

import pytest

from inference.nlu import INTENTS
from inference.training_data import DatasetError, read_labeled, read_seeds, seed_examples, split_by_group, DATA_DIR


def test_every_intent_has_seeds_in_both_languages() -> None:
    for language in ("es", "en"):
        seeds = read_seeds(DATA_DIR / f"intents_{language}.txt", language)
        counts = {intent: sum(1 for i, _ in seeds if i == intent) for intent in INTENTS}
        assert min(counts.values()) >= 25, counts


def test_dataset_is_deterministic_and_noisy() -> None:
    first, second = seed_examples(3), seed_examples(3)
    assert first == second
    clean = {e.text for e in first[::4]}
    assert any(e.text not in clean and e.text.islower() for e in first)
    assert not any("{" in e.text for e in first)  # every placeholder filled


def test_split_keeps_each_seed_in_one_part_and_every_intent_in_each() -> None:
    train, test = split_by_group(seed_examples(2), (0.8, 0.2))
    assert not {e.group for e in train} & {e.group for e in test}
    assert {(e.intent, e.language) for e in test} >= {(i, l) for i in INTENTS for l in ("es", "en")}


def test_unknown_intent_in_a_seed_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "seeds.txt"
    path.write_text("[greeting]\nhola\n[weather]\n¿lloverá?\n")
    with pytest.raises(DatasetError, match=r"seeds.txt:3: unknown intent 'weather'"):
        read_seeds(path, "es")


@pytest.mark.parametrize("content, message", [
    (b'{"text": "hola", "intent": "greeting", "language": "es"}\nnot json\n', r"data.jsonl:2: not JSON"),
    (b'{"text": "hola", "intent": "weather", "language": "es"}\n', r"data.jsonl:1: needs text"),
    (b'{"text": "hola", "intent": "greeting", "language": "fr"}\n', r"data.jsonl:1: needs text"),
    (b'\xff\xfe{}\n', r"data.jsonl: not UTF-8"),
    (b"\n\n", r"data.jsonl: no labeled examples"),
])
def test_bad_labeled_files_say_what_is_wrong(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        read_labeled(path)
