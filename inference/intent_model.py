"""The intent model: intent with a calibrated confidence, plus the language, from one feature pass.

Features are hashed character n-grams (2-5, inside word boundaries) and word uni/bigrams of the folded
text. Hashing keeps the artifact free of a vocabulary and of pickles: a version on disk is a NumPy `.npz`
of sparse weights and a JSON file of settings, loadable with `allow_pickle=False` by any NumPy/SciPy.
Two linear heads share the features: intent (softmax with a temperature fitted on held-out data, so the
confidence is calibrated) and language (es, en, or `und` for languages we do not serve).

The same class runs inside Triton's Python backend (`triton_models/intent/<n>/model.py`) and in
`centralita classify`, so both give the same answer for the same text.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize

from inference.text import fold, has_letters

N_FEATURES = 2**18
WEIGHTS_FILE = "intent.npz"
SETTINGS_FILE = "intent.json"
UNKNOWN_LANGUAGE = "und"
OUT_OF_SCOPE = "none"  # the class for small talk and keyboard mashes: answered as no intent

_CHARS = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), n_features=N_FEATURES, alternate_sign=False, norm=None)
_WORDS = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=N_FEATURES, alternate_sign=False, norm=None,
                           token_pattern=r"(?u)\b\w+\b")


CONCEPTS_FILE = Path(__file__).resolve().parent / "data" / "concepts.toml"


def read_concepts(path: Path = CONCEPTS_FILE) -> dict[str, list[str]]:
    """The concept lexicon (concept -> regular expressions on folded text); see inference/data/concepts.toml."""
    with open(path, "rb") as file:
        return {name: list(patterns) for name, patterns in tomllib.load(file).items()}


class Featurizer:
    """Text -> sparse features in three blocks: hashed char n-grams and hashed word n-grams (each sublinear
    and L2-normalized), then one column per concept of the lexicon the folded text matches. The concept
    block is not normalized with the n-grams, so a concept weighs the same in a short and a long message
    and carries meaning across wordings the seeds never used."""

    def __init__(self, concepts: dict[str, list[str]]) -> None:
        self.concepts = concepts
        self._matchers = [re.compile("|".join(f"(?:{p})" for p in patterns)) for patterns in concepts.values()]

    @property
    def dimension(self) -> int:
        return 2 * N_FEATURES + len(self._matchers)

    def _block(self, vectorizer: HashingVectorizer, folded: list[str]) -> sparse.csr_matrix:
        counts = vectorizer.transform(folded)
        counts.data = 1.0 + np.log(counts.data)
        return normalize(counts)

    def _concepts(self, folded: list[str]) -> sparse.csr_matrix:
        rows, cols = [], []
        for row, text in enumerate(folded):
            for col, matcher in enumerate(self._matchers):
                if matcher.search(text):
                    rows.append(row)
                    cols.append(col)
        return sparse.csr_matrix((np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(len(folded), len(self._matchers)))

    def __call__(self, texts: Sequence[str]) -> sparse.csr_matrix:
        folded = [fold(t) for t in texts]
        return sparse.hstack([self._block(_CHARS, folded), self._block(_WORDS, folded), self._concepts(folded)], format="csr")


@dataclass(frozen=True)
class IntentPrediction:
    intent: str | None
    confidence: float
    language: str | None


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


@dataclass
class LinearHead:
    """Sparse weights (classes x features) and a bias: scores = X @ W.T + b."""

    labels: tuple[str, ...]
    weights: sparse.csr_matrix
    bias: np.ndarray

    def __post_init__(self) -> None:
        # features x classes, built once: transposing ~1M weights on every call cost ~10 ms per batch
        self._by_feature = self.weights.T.tocsr()

    def scores(self, matrix: sparse.csr_matrix) -> np.ndarray:
        return (matrix @ self._by_feature).toarray() + self.bias

    @classmethod
    def from_dense(cls, labels: Sequence[str], coef: np.ndarray, intercept: np.ndarray) -> "LinearHead":
        """Keep only the features training saw (all others have weight 0)."""
        return cls(tuple(labels), sparse.csr_matrix(coef.astype(np.float32)), intercept.astype(np.float32))

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        w = self.weights
        return {f"{prefix}_data": w.data.astype(np.float16),  # half precision on disk: a third of the size
                 f"{prefix}_indices": w.indices.astype(np.int32),
                f"{prefix}_indptr": w.indptr.astype(np.int32), f"{prefix}_bias": self.bias}

    @classmethod
    def from_arrays(cls, labels: Sequence[str], arrays: "np.lib.npyio.NpzFile", prefix: str, columns: int) -> "LinearHead":
        shape = (len(labels), columns)
        weights = sparse.csr_matrix((arrays[f"{prefix}_data"].astype(np.float32), arrays[f"{prefix}_indices"],
                                     arrays[f"{prefix}_indptr"]), shape=shape)
        return cls(tuple(labels), weights, arrays[f"{prefix}_bias"])


@dataclass
class IntentModel:
    intent: LinearHead
    language: LinearHead
    temperature: float
    features: Featurizer
    metadata: dict

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated intent probabilities (texts x intents)."""
        return softmax(self.intent.scores(self.features(texts)) / self.temperature)

    def predict(self, texts: Sequence[str]) -> list[IntentPrediction]:
        """One prediction per text. Text without letters (empty, emoji only) has no intent and no language;
        text in a language we do not serve gets language 'und' and no intent, and so does text the model finds
        out of scope (small talk, keyboard mashes): all are routed as not understood."""
        if not texts:
            return []
        matrix = self.features(texts)
        intents = softmax(self.intent.scores(matrix) / self.temperature)
        languages = softmax(self.language.scores(matrix))
        predictions = []
        for text, p_intent, p_language in zip(texts, intents, languages):
            if not has_letters(text):
                predictions.append(IntentPrediction(None, 0.0, None))
                continue
            language = self.language.labels[int(p_language.argmax())]
            if language == UNKNOWN_LANGUAGE:
                predictions.append(IntentPrediction(None, 0.0, UNKNOWN_LANGUAGE))
                continue
            best = int(p_intent.argmax())
            label = self.intent.labels[best]
            if label == OUT_OF_SCOPE:
                predictions.append(IntentPrediction(None, 0.0, language))
                continue
            predictions.append(IntentPrediction(label, round(float(p_intent[best]), 4), language))
        return predictions

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(directory / WEIGHTS_FILE, **self.intent.arrays("intent"), **self.language.arrays("language"))
        settings = {"intents": list(self.intent.labels), "languages": list(self.language.labels),
                    "temperature": self.temperature, "n_features": N_FEATURES, "concepts": self.features.concepts,
                    **self.metadata}
        (directory / SETTINGS_FILE).write_text(json.dumps(settings, indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, directory: Path) -> "IntentModel":
        settings = json.loads((directory / SETTINGS_FILE).read_text())
        if settings.get("n_features") != N_FEATURES:
            raise ValueError(f"{directory} was trained with {settings.get('n_features')} hashed features, this code uses {N_FEATURES}")
        featurizer = Featurizer(settings["concepts"])
        with np.load(directory / WEIGHTS_FILE, allow_pickle=False) as arrays:
            intent = LinearHead.from_arrays(settings["intents"], arrays, "intent", featurizer.dimension)
            language = LinearHead.from_arrays(settings["languages"], arrays, "language", featurizer.dimension)
        metadata = {k: v for k, v in settings.items() if k not in ("intents", "languages", "temperature", "n_features", "concepts")}
        return cls(intent, language, float(settings["temperature"]), featurizer, metadata)
