"""The generated configuration reference, example and schema; ``graphsentry config``; masking;
and what adding a section takes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from pydantic import Field

from graphsentry import config_docs
from graphsentry.cli import main
from graphsentry.config import Config, Section, config_from_dict, masked
from graphsentry.config_loading import ConfigProblems, env_overrides, validate_data

ROOT = Path(__file__).resolve().parents[1]
FIX = "run: graphsentry config docs"


def test_configuration_doc_is_generated_from_the_models() -> None:
    text = (ROOT / config_docs.DOC_PATH).read_text(encoding="utf-8")
    assert config_docs.update_doc(text) == text, FIX


def test_example_file_is_generated_from_the_models() -> None:
    assert (ROOT / config_docs.EXAMPLE_PATH).read_text(encoding="utf-8") == \
        config_docs.example_yaml(), FIX


def test_schema_file_is_generated_from_the_models() -> None:
    assert (ROOT / config_docs.SCHEMA_PATH).read_text(encoding="utf-8") == \
        config_docs.schema_json(), FIX


def _leaves() -> list[tuple[str, dict[str, object]]]:
    schema = config_docs.json_schema()
    return list(config_docs._leaves(schema["properties"], schema["$defs"]))


def test_every_setting_is_documented_with_its_default() -> None:
    leaves = _leaves()
    assert len(leaves) >= 28
    undocumented = [path for path, prop in leaves if not prop.get("description")]
    assert undocumented == []
    assert all("default" in prop for _, prop in leaves)
    schema = config_docs.json_schema()
    for detector_id, prop in schema["$defs"][config_docs.PARAMS_DEF]["properties"].items():
        ref = next(m["$ref"] for m in prop["anyOf"] if "$ref" in m).rsplit("/", 1)[1]
        params = schema["$defs"][ref]["properties"]
        assert params and all(p.get("description") for p in params.values()), detector_id


def test_reference_rows() -> None:
    text = config_docs.reference_markdown()
    assert "| `kafka.topics.activity` | string (not empty) | `graph.activity.v1` |" in text
    assert "| `redis.cache_ttl_seconds` | number in [0, 86 400] | `300.0` |" in text
    assert "| `state.seen_capacity` | integer ≥ 1 | `200000` |" in text
    assert "| `kafka.start` | `beginning` \\| `end` | `beginning` |" in text
    assert "Environment: `KAFKA_BOOTSTRAP`." in text
    assert "| `storage_exfiltration` | exfiltration | high | `download_statuses` | " \
           "list of integer | `[200, 302]` |" in text
    assert "| `alerts.min_stages` | integer in [2, 8] | `3` |" in text


def test_example_lists_every_setting_with_its_default() -> None:
    data = yaml.safe_load(config_docs.example_yaml())
    for path, prop in _leaves():
        node = data
        for key in path.split("."):
            node = node[key]
        assert node == prop["default"], path


def test_config_check_prints_the_effective_configuration_masked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "prod.yaml"
    path.write_text("kafka:\n  consumer:\n    security.protocol: SASL_SSL\n"
                    "    sasl.password: 'Endpoint=sb://ns.servicebus.windows.net/;"
                    "SharedAccessKeyName=root;SharedAccessKey=abc123'\n")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2@10.0.0.5:6379/0")
    monkeypatch.setenv("GRAPHSENTRY_TIME__ALLOWED_LATENESS_SECONDS", "60")
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "abc123" not in out and "hunter2" not in out
    assert "# redis.url from $REDIS_URL" in out
    assert "# time.allowed_lateness_seconds from $GRAPHSENTRY_TIME__ALLOWED_LATENESS_SECONDS" \
        in out
    effective = yaml.safe_load(out)
    assert effective["kafka"]["consumer"] == {"security.protocol": "SASL_SSL",
                                              "sasl.password": "***"}
    assert effective["redis"]["url"] == "redis://:***@10.0.0.5:6379/0"
    assert effective["time"]["allowed_lateness_seconds"] == 60.0
    assert main(["config", "check", "--no-env", "-q", str(path)]) == 0
    assert capsys.readouterr().out == ""


def test_config_check_reports_every_problem(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kafka:\n  topcs: {}\ntime:\n  allowed_lateness_seconds: -5\n")
    assert main(["config", "check", "--no-env", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"graphsentry config: error: invalid configuration {path}:\n"
                   "  - kafka.topcs: unknown key (did you mean 'topics'?)\n"
                   "  - time.allowed_lateness_seconds: must be ≥ 0, got -5\n")


@pytest.mark.parametrize("quiet", [[], ["-q"]])
def test_config_check_builds_the_exceptions_as_detect_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], quiet: list[str]) -> None:
    path = tmp_path / "exceptions.yaml"
    path.write_text("alerts:\n  exceptions: [{reason: x}]\n")
    problem = ("alerts.exceptions[0]: exception config-1: give at least one scope field "
               "(detector, app_id, principal_id, network, asn, template)")
    assert main(["config", "check", "--no-env", *quiet, str(path)]) == 2
    assert capsys.readouterr() == ("", f"graphsentry config: error: invalid configuration "
                                       f"{path}:\n  - {problem}\n")
    assert main(["detect", "--config", str(path), "--quiet", os.devnull]) == 2
    assert capsys.readouterr().err == f"graphsentry detect: error: {problem}\n"


def test_config_schema_and_example_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["properties"]["kafka"]["$ref"] == "#/$defs/KafkaConfig"
    assert main(["config", "example"]) == 0
    assert capsys.readouterr().out == config_docs.example_yaml()


def test_config_docs_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "docs", "--check", "--root", str(ROOT)]) == 0
    (tmp_path / "docs").mkdir()
    doc = tmp_path / config_docs.DOC_PATH
    doc.write_text(f"# Configuration\n\n{config_docs.DOC_BEGIN}\nSTALE\n{config_docs.DOC_END}\n")
    assert main(["config", "docs", "--check", "--root", str(tmp_path)]) == 1
    assert "stale: " in capsys.readouterr().err
    assert not (tmp_path / config_docs.EXAMPLE_PATH).exists()
    (tmp_path / "config").mkdir()
    assert main(["config", "docs", "--root", str(tmp_path)]) == 0
    assert main(["config", "docs", "--check", "--root", str(tmp_path)]) == 0
    assert "STALE" not in doc.read_text(encoding="utf-8")


@pytest.mark.parametrize(("value", "key", "expected"), [
    ("redis://:pw@h:6379/0", "url", "redis://:***@h:6379/0"),
    ("rediss://user:pw@h:6380/1", "url", "rediss://user:***@h:6380/1"),
    ("redis://h:6379/0", "url", "redis://h:6379/0"),
    ("plain", "sasl.password", "***"),
    ("x", "ssl.key.password", "***"),
    ("x", "sasl.oauthbearer.client.secret", "***"),
    ("/etc/ssl/key.pem", "ssl.key.location", "/etc/ssl/key.pem"),
    ("Endpoint=sb://n/;SharedAccessKeyName=k;SharedAccessKey=abc", "conn",
     "Endpoint=sb://n/;SharedAccessKeyName=k;SharedAccessKey=***"),
    (5, "sasl.password", 5),
])
def test_masked(value: object, key: str, expected: object) -> None:
    assert masked(value, key) == expected


def test_repr_masks_secrets() -> None:
    cfg = config_from_dict({"kafka": {"consumer": {"sasl.password": "s3cret"}},
                            "redis": {"url": "redis://:hunter2@h:6379/0"}}, env={})
    text = repr(cfg)
    assert "s3cret" not in text and "hunter2" not in text
    assert cfg.kafka.consumer["sasl.password"] == "s3cret"  # the value itself is intact


class MetricsConfig(Section):
    """Prometheus metrics (an example of a section added later)."""

    port: int | None = Field(default=9464, ge=1, le=65_535)
    """Port of /metrics (null: none)."""


class ExtendedConfig(Config):
    metrics: MetricsConfig = MetricsConfig()


def test_a_new_section_is_declared_once() -> None:
    cfg = validate_data(ExtendedConfig, {"metrics": {"port": 9100}})
    assert cfg.metrics.port == 9100
    assert ExtendedConfig().metrics.port == 9464
    with pytest.raises(ConfigProblems) as info:
        validate_data(ExtendedConfig, {"metrics": {"prot": 1, "port": 0}})
    assert info.value.problems == ["metrics.port: must be ≥ 1, got 0",
                                   "metrics.prot: unknown key (did you mean 'port'?)"]
    data, origins, problems = env_overrides(ExtendedConfig, {"GRAPHSENTRY_METRICS__PORT": "null"})
    assert (data, problems) == ({"metrics": {"port": None}}, [])
    assert validate_data(ExtendedConfig, data, origins).metrics.port is None
    schema = ExtendedConfig.model_json_schema()
    assert schema["$defs"]["MetricsConfig"]["properties"]["port"]["description"] == \
        "Port of /metrics (null: none)."
