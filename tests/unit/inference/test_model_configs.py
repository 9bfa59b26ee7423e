"""Every model's Triton configuration parses as Triton's ModelConfig, and its GPU variant differs only in the
instance kind (so production serves what was tested here)."""

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from inference.model_repository import MODELS, ModelRepository

REPOSITORY = ModelRepository()


def parse(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


@pytest.mark.parametrize("model", MODELS)
def test_cpu_config_batches_dynamically_and_gpu_variant_matches(model: str) -> None:
    cpu = parse(REPOSITORY.root / model / "config.pbtxt")
    gpu = parse(REPOSITORY.root / model / "configs" / "gpu.pbtxt")
    assert cpu.name == model and cpu.backend == "python" and cpu.max_batch_size >= 32
    assert list(cpu.dynamic_batching.preferred_batch_size) and cpu.dynamic_batching.max_queue_delay_microseconds > 0
    assert [g.kind for g in cpu.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_CPU]
    assert [g.kind for g in gpu.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]
    gpu.ClearField("instance_group")
    cpu.ClearField("instance_group")
    assert gpu == cpu


@pytest.mark.parametrize("model", MODELS)
def test_every_version_has_the_thin_model_file(model: str) -> None:
    versions = REPOSITORY.versions(model)
    assert versions
    for version in versions:
        assert (REPOSITORY.version_dir(model, version) / "model.py").read_text() == REPOSITORY.template(model).read_text()
