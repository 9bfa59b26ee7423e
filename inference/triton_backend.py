"""Glue between Triton's Python backend and Centralita's model code.

Every model takes one BYTES input `TEXT` (shape [batch, 1]) and answers per text. Triton hands `execute`
all requests its dynamic batcher gathered; they are concatenated into one model call (that is where
batching pays: one feature pass and one sparse product for the whole batch) and split back per request.
Texts are decoded leniently (invalid UTF-8 becomes U+FFFD) and clipped, so no input can fail a batch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from inference.entities import entities_of
from inference.intent_model import IntentModel
from inference.sentiment import sentiment_of
from inference.text import clip, decode

#: A model function: texts in, named output columns out (each a list with one value per text).
Outputs = dict[str, list]


def intent_outputs(model: IntentModel) -> Callable[[Sequence[str]], Outputs]:
    def run(texts: Sequence[str]) -> Outputs:
        predictions = model.predict(texts)
        return {"INTENT": [(p.intent or "").encode() for p in predictions],
                "CONFIDENCE": [p.confidence for p in predictions],
                "LANGUAGE": [(p.language or "").encode() for p in predictions]}
    return run


def sentiment_outputs(texts: Sequence[str]) -> Outputs:
    results = [sentiment_of(t) for t in texts]
    return {"LABEL": [r.label.encode() for r in results], "SCORE": [r.score for r in results]}


def entities_outputs(texts: Sequence[str]) -> Outputs:
    return {"ENTITIES": [json.dumps([e.__dict__ for e in entities_of(t)], ensure_ascii=False).encode() for t in texts]}


DTYPES = {"INTENT": np.object_, "LANGUAGE": np.object_, "LABEL": np.object_, "ENTITIES": np.object_,
          "CONFIDENCE": np.float32, "SCORE": np.float32}


def load_model_function(model: str, version_dir: Path) -> Callable[[Sequence[str]], Outputs]:
    """The model function of one version folder (the same `centralita classify` uses)."""
    if model == "intent":
        return intent_outputs(IntentModel.load(version_dir))
    if model == "sentiment":
        return sentiment_outputs
    if model == "entities":
        return entities_outputs
    raise ValueError(f"unknown model {model!r}")


def backend_for(model: str) -> type:
    """The `TritonPythonModel` class Triton instantiates for `model`."""
    import triton_python_backend_utils as pb_utils  # only importable inside Triton's Python stub

    class TritonPythonModel:
        def initialize(self, args: dict) -> None:
            version_dir = Path(args["model_repository"]) / args["model_version"]
            self.run = load_model_function(model, version_dir)

        def execute(self, requests: list) -> list:
            texts: list[str] = []
            sizes: list[int] = []
            for request in requests:
                column = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)
                texts.extend(clip(decode(raw)) for raw in column)
                sizes.append(len(column))
            outputs = self.run(texts)
            responses, start = [], 0
            for size in sizes:
                tensors = [pb_utils.Tensor(name, np.array(values[start:start + size], dtype=DTYPES[name]).reshape(size, 1))
                           for name, values in outputs.items()]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
                start += size
            return responses

    return TritonPythonModel
