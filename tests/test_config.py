"""Configuration: defaults, the example file, env overrides, and clear validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphsentry.config import Config, config_from_dict, defaults_table, load_config
from graphsentry.errors import GraphsentryError

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "graphsentry.example.yaml"


def error_of(data: object, env: dict[str, str] | None = None) -> str:
    with pytest.raises(GraphsentryError) as info:
        config_from_dict(data, "test.yaml", env or {})  # type: ignore[arg-type]
    return str(info.value)


def test_defaults() -> None:
    cfg = load_config(None, env={})
    assert cfg == Config(source="<defaults>")
    assert cfg.kafka.topics.activity == "graph.activity.v1"
    assert cfg.kafka.topics.alerts == "graph.alerts.v1"
    assert cfg.time.allowed_lateness_seconds == 7200
    assert cfg.detectors.enabled_ids is None


def test_example_file_is_valid_and_matches_the_defaults() -> None:
    cfg = load_config(EXAMPLE, env={})
    assert cfg.source == str(EXAMPLE)
    assert cfg.replace("kafka", consumer={}, producer={}) == Config(source=str(EXAMPLE))


def test_env_overrides_and_config_path(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("kafka:\n  bootstrap: 10.0.0.1:9092\ntime:\n  allowed_lateness_seconds: 60\n")
    cfg = load_config(None, env={"GRAPHSENTRY_CONFIG": str(path),
                                 "KAFKA_BOOTSTRAP": "127.0.0.1:19092",
                                 "REDIS_URL": "redis://127.0.0.1:6390/1"})
    assert cfg.kafka.bootstrap == "127.0.0.1:19092"
    assert cfg.redis.url == "redis://127.0.0.1:6390/1"
    assert cfg.time.allowed_lateness_seconds == 60.0


def test_unknown_keys_suggest_the_right_one() -> None:
    message = error_of({"kafka": {"topcs": {}}, "tme": {}})
    assert "kafka.topcs: unknown key (did you mean 'topics'?)" in message
    assert "tme: unknown key (did you mean 'time'?)" in message
    assert "test.yaml" in message


@pytest.mark.parametrize(("data", "expected"), [
    ({"time": {"allowed_lateness_seconds": "2h"}}, "time.allowed_lateness_seconds: expected float"),
    ({"time": {"allowed_lateness_seconds": -1}}, "must be ≥ 0"),
    ({"bytewax": {"batch_size": 0}}, "bytewax.batch_size: must be ≥ 1"),
    ({"kafka": {"tail": "yes"}}, "kafka.tail: expected bool"),
    ({"kafka": {"start": "middle"}}, "must be one of beginning, end"),
    ({"kafka": []}, "kafka: expected a mapping"),
    ({"suppress": {"apps": "one-app"}}, "suppress.apps: expected a list"),
    ({"redis": {"cache_size": True}}, "redis.cache_size: expected int, got a boolean"),
])
def test_wrong_types_and_ranges(data: dict[str, object], expected: str) -> None:
    assert expected in error_of(data)


def test_detector_ids_and_parameters_are_checked_against_the_catalog() -> None:
    assert "unknown detector 'graph_enumeraton' (did you mean 'graph_enumeration'?)" in \
        error_of({"detectors": {"enabled": ["graph_enumeraton"]}})
    assert "detectors.params.graph_enumeration.min_familes: unknown parameter " \
           "(did you mean 'min_families'?)" in \
        error_of({"detectors": {"params": {"graph_enumeration": {"min_familes": 3}}}})
    assert "detectors.params" in \
        error_of({"detectors": {"params": {"graph_enumeration": {"min_families": -3}}}})
    assert "expected 'all'" in error_of({"detectors": {"enabled": "some"}})
    cfg = config_from_dict({"detectors": {"enabled": ["graph_enumeration"],
                                          "params": {"graph_enumeration": {"min_families": 3}}}})
    assert cfg.detectors.enabled_ids == ["graph_enumeration"]


def test_every_problem_is_reported_at_once() -> None:
    message = error_of({"kafka": {"tail": 1, "bootstrapp": "x"}, "bytewax": {"batch_size": -5}})
    assert message.count("\n  - ") == 3


def test_unreadable_or_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(GraphsentryError, match="cannot read configuration"):
        load_config(tmp_path / "missing.yaml", env={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("kafka: [unclosed\n")
    with pytest.raises(GraphsentryError, match="not valid YAML"):
        load_config(bad, env={})
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(GraphsentryError, match="mapping at the top level"):
        load_config(scalar, env={})


def test_defaults_table_covers_every_setting() -> None:
    rows = {path: (default, doc) for path, default, doc in defaults_table()}
    assert rows["kafka.topics.activity"][0] == "graph.activity.v1"
    assert rows["time.allowed_lateness_seconds"][0] == "7200.0"
    assert "librdkafka" in rows["kafka.consumer"][1]
    assert len(rows) >= 25


def test_configuration_doc_is_up_to_date() -> None:
    from graphsentry.config import update_doc

    doc = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    text = doc.read_text(encoding="utf-8")
    assert update_doc(text) == text, "run: python -m graphsentry.config docs/configuration.md"
