"""The real Triton server (the `tritonserver` binary of the nvidia-pytriton wheel) serving triton_models/:
every model ready, answers equal to the in-process model code, bad input gets a defined answer and never
takes the server down."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from inference.client import TritonNlu
from inference.local import LocalNlu
from inference.model_repository import MODELS, ModelRepository
from inference.releases import Releases

TEXTS = ["Hola, ¿dónde está mi pedido #778812?", "Can I talk to a human please?",
         "me cobrasteis 49,90€ dos veces el 3 de marzo", "call me on +44 20 7946 0958", "gracias!",
         "esto es una vergüenza, un servicio pésimo"]


def nlu_for(triton, **kwargs) -> TritonNlu:
    return TritonNlu(triton.server.grpc_address, Releases(ModelRepository()), **kwargs)


def classify(nlu: TritonNlu, texts: list[str]) -> list:
    async def run() -> list:
        try:
            return await nlu.classify_batch(texts, [f"conv-{i}" for i in range(len(texts))])
        finally:
            await nlu.close()
    return asyncio.run(run())


def test_every_model_is_ready_with_its_versions(triton) -> None:
    client = httpclient.InferenceServerClient(f"127.0.0.1:{triton.server.http_port}")
    assert client.is_server_ready()
    repository = ModelRepository()
    for model in MODELS:
        for version in repository.versions(model):
            assert client.is_model_ready(model, str(version)), (model, version)
    config = client.get_model_config("intent")
    assert config["dynamic_batching"]["preferred_batch_size"] and config["instance_group"][0]["kind"] == "KIND_CPU"
    metrics = __import__("requests").get(f"http://127.0.0.1:{triton.server.metrics_port}/metrics", timeout=5).text
    assert "nv_inference_request_success" in metrics  # Triton's own metrics, for Prometheus to scrape


def test_served_answers_equal_the_in_process_model_code(triton) -> None:
    served = classify(nlu_for(triton), TEXTS)
    local = LocalNlu.load(ModelRepository()).classify(TEXTS)
    for got, expected in zip(served, local):
        assert got.intent == expected["intent"] and got.language == expected["language"]
        assert got.confidence == pytest.approx(expected["confidence"], abs=1e-3)
        assert got.sentiment == expected["sentiment"]
        assert [(e.label, e.value, e.start, e.end) for e in got.entities] == \
            [(e["label"], e["value"], e["start"], e["end"]) for e in expected["entities"]]
    assert [r.intent for r in served] == ["order_status", "human_agent", "billing_question", "human_agent", "thanks",
                                          "complaint"]
    assert served[5].sentiment == "negative" and served[4].sentiment == "positive"
    assert served[0].model_version.startswith("intent-")


def raw_infer(triton, model: str, values: list[bytes], output: str) -> np.ndarray:
    client = grpcclient.InferenceServerClient(triton.server.grpc_address)
    data = np.array([[v] for v in values], dtype=np.object_)
    tensor = grpcclient.InferInput("TEXT", list(data.shape), "BYTES")
    tensor.set_data_from_numpy(data)
    return client.infer(model, [tensor]).as_numpy(output).reshape(-1)


def test_bad_input_gets_a_defined_answer_and_the_server_stays_up(triton) -> None:
    values = [b"", "🙂🙂👍".encode(), b"\xff\xfe\xfa caf\xe9", ("¿dónde está mi pedido? " * 45_000).encode(),
              "Ich möchte meine Bestellung stornieren".encode(), b"\x00\x00"]
    assert len(values[3]) > 1_000_000
    intents = raw_infer(triton, "intent", values, "INTENT")
    languages = raw_infer(triton, "intent", values, "LANGUAGE")
    confidence = raw_infer(triton, "intent", values, "CONFIDENCE")
    assert intents[0] == b"" and languages[0] == b"" and confidence[0] == 0.0  # empty: no intent
    assert intents[1] == b"" and languages[1] == b""  # emoji only: no intent
    assert intents[3] == b"order_status" and languages[3] == b"es"  # 1 MB: its first 2,000 characters decide
    assert intents[4] == b"" and languages[4] == b"und"  # a language we do not serve: routed as not understood
    assert intents[5] == b""
    assert len(raw_infer(triton, "entities", values, "ENTITIES")) == len(values)
    assert len(raw_infer(triton, "sentiment", values, "LABEL")) == len(values)
    assert httpclient.InferenceServerClient(f"127.0.0.1:{triton.server.http_port}").is_server_ready()


def test_the_client_falls_back_when_triton_is_unreachable() -> None:
    from infra.processes import free_port

    nlu = TritonNlu(f"127.0.0.1:{free_port()}", Releases(ModelRepository()), timeout_s=0.3, attempts=2)
    answers = classify(nlu, ["hola", "where is my order"])
    assert [(a.intent, a.model_version) for a in answers] == [(None, "fallback")] * 2
