"""CLI behaviour that needs no broker: clear errors and non-zero exits, benchmark listing."""

from __future__ import annotations

import json

from click.testing import CliRunner

from infra.cli import main
from infra.processes import free_port


def test_topics_create_against_an_unreachable_broker_fails_clearly(monkeypatch) -> None:
    from infra.settings import get_settings

    port = free_port()  # nothing listens here
    monkeypatch.setenv("CENTRALITA_KAFKA_BOOTSTRAP", f"127.0.0.1:{port}")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["topics", "create"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert f"error: no Kafka broker answered at 127.0.0.1:{port}" in result.output
    assert "centralita stack up" in result.output
    assert "Traceback" not in result.output


def test_bench_list_names_the_codec_benchmark() -> None:
    result = CliRunner().invoke(main, ["bench", "--list"])
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines()]
    assert names == sorted(names) and {"codec", "triton", "anonymize", "e2e"} <= set(names)


def test_unknown_bench_exits_2() -> None:
    result = CliRunner().invoke(main, ["bench", "nope"])
    assert result.exit_code == 2 and "no benchmark 'nope'; available: " in result.output and "codec" in result.output


def test_codec_bench_prints_one_json_object_in_the_agreed_shape() -> None:
    result = CliRunner().invoke(main, ["bench", "codec", "--quick"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["bench"] == "codec"
    assert set(report["results"]) == {"fastavro_single_object", "avro_package", "json"}
    assert all(value > 0 for value in report["results"].values())
    assert report["unit"].startswith("records/s")
