"""The served models run in-process: what `centralita classify` uses, through the same functions Triton's
Python backend calls (`inference.triton_backend.load_model_function`), so both answer alike."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Sequence

from inference.model_repository import ModelRepository
from inference.releases import ReleaseError, Releases
from inference.text import clip
from inference.triton_backend import Outputs, load_model_function


@dataclass
class LocalNlu:
    version: int
    intent: Callable[[Sequence[str]], Outputs]
    sentiment: Callable[[Sequence[str]], Outputs]
    entities: Callable[[Sequence[str]], Outputs]

    @classmethod
    def load(cls, repository: ModelRepository, version: int | None = None) -> "LocalNlu":
        version = version or Releases(repository).get("intent").stable
        if version not in repository.versions("intent"):
            raise ReleaseError(f"intent has no version {version} (versions: {repository.versions('intent')})")
        functions = {m: load_model_function(m, repository.version_dir(m, version if m == "intent" else repository.latest(m) or 1))
                     for m in ("intent", "sentiment", "entities")}
        return cls(version, functions["intent"], functions["sentiment"], functions["entities"])

    def classify(self, texts: Sequence[str]) -> list[dict]:
        """One JSON-ready answer per text: intent, confidence, language, sentiment, entities."""
        clipped = [clip(t) for t in texts]
        if not clipped:
            return []
        intent, sentiment, entities = self.intent(clipped), self.sentiment(clipped), self.entities(clipped)
        return [{"intent": intent["INTENT"][i].decode() or None, "confidence": round(float(intent["CONFIDENCE"][i]), 4),
                 "language": intent["LANGUAGE"][i].decode() or None, "sentiment": sentiment["LABEL"][i].decode(),
                 "sentiment_score": sentiment["SCORE"][i], "entities": json.loads(entities["ENTITIES"][i]),
                 "model_version": f"intent-{self.version}"} for i in range(len(clipped))]
