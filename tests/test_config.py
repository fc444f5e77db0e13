"""Configuration: defaults, the example file, env overrides, and clear validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from graphsentry.config import Config, ConfigError, config_from_dict, load_config
from graphsentry.errors import GraphsentryError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "graphsentry.example.yaml"


def problems_of(data: object, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, "test.yaml", env or {})  # type: ignore[arg-type]
    assert str(info.value).startswith("invalid configuration test.yaml:\n  - ")
    return info.value.problems


def error_of(data: object, env: dict[str, str] | None = None) -> str:
    return "\n".join(problems_of(data, env))


def test_defaults() -> None:
    cfg = load_config(None, env={})
    assert cfg == Config()
    assert cfg.source == "<defaults>"
    assert cfg.kafka.topics.activity == "graph.activity.v1"
    assert cfg.kafka.topics.alerts == "graph.alerts.v1"
    assert cfg.time.allowed_lateness_seconds == 7200
    assert cfg.detectors.enabled_ids is None
    assert cfg.detectors.params == {}


def test_example_file_is_valid_and_holds_the_defaults() -> None:
    cfg = load_config(EXAMPLE, env={})
    assert cfg.source == str(EXAMPLE)
    assert cfg.model_dump() == Config().model_dump()


def test_env_overrides_and_config_path(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("kafka:\n  bootstrap: 10.0.0.1:9092\ntime:\n  allowed_lateness_seconds: 60\n")
    cfg = load_config(None, env={"GRAPHSENTRY_CONFIG": str(path),
                                 "KAFKA_BOOTSTRAP": "127.0.0.1:19092",
                                 "REDIS_URL": "redis://127.0.0.1:6390/1"})
    assert cfg.source == str(path)
    assert cfg.kafka.bootstrap == "127.0.0.1:19092"
    assert cfg.redis.url == "redis://127.0.0.1:6390/1"
    assert cfg.time.allowed_lateness_seconds == 60.0


def test_every_setting_has_a_long_env_name_read_as_yaml() -> None:
    cfg = config_from_dict(
        {"kafka": {"consumer": {"security.protocol": "SASL_SSL"}}},
        env={"GRAPHSENTRY_TIME__ALLOWED_LATENESS_SECONDS": "3600",
             "GRAPHSENTRY_KAFKA__TAIL": "false",
             "graphsentry_kafka__topics__alerts": "alerts.v2",
             "GRAPHSENTRY_KAFKA__TOPICS__LATE": "null",
             "GRAPHSENTRY_KAFKA__CONSUMER": '{sasl.password: "s3cret"}',
             "GRAPHSENTRY_DETECTORS__ENABLED": "[graph_enumeration, new_origin]",
             "GRAPHSENTRY_DETECTORS__PARAMS__GRAPH_ENUMERATION__MIN_FAMILIES": "[7, 8, 9]",
             "GRAPHSENTRY_REDIS__KEY_PREFIX": "123",  # text setting: kept as text
             "GRAPHSENTRY_BYTEWAX__BATCH_SIZE": "",  # empty: ignored
             "GRAPHSENTRY_CONFIG": "", "GRAPHSENTRY_PYTHON": "python3.11"})
    assert cfg.time.allowed_lateness_seconds == 3600.0
    assert cfg.kafka.tail is False
    assert cfg.kafka.topics.alerts == "alerts.v2"
    assert cfg.kafka.topics.late is None
    assert cfg.kafka.consumer == {"security.protocol": "SASL_SSL", "sasl.password": "s3cret"}
    assert cfg.detectors.enabled_ids == ["graph_enumeration", "new_origin"]
    assert cfg.detectors.params["graph_enumeration"]["min_families"] == (7, 8, 9)
    assert cfg.redis.key_prefix == "123"
    assert cfg.bytewax.batch_size == 1000


def test_long_env_name_wins_over_the_short_one() -> None:
    cfg = config_from_dict({}, env={"KAFKA_BOOTSTRAP": "short:9092",
                                    "GRAPHSENTRY_KAFKA__BOOTSTRAP": "long:9092"})
    assert cfg.kafka.bootstrap == "long:9092"


def test_env_problems_name_their_variable() -> None:
    problems = problems_of({}, env={"GRAPHSENTRY_REDIS__CACHE_SIZE": "lots",
                                    "GRAPHSENTRY_KAFKA__BOOTSTRAPP": "x:9092",
                                    "GRAPHSENTRY_KAFKA_BOOTSTRAP": "x:9092",
                                    "GRAPHSENTRY_TIME__ALLOWED_LATENESS_SECONDS": "[1"})
    assert "redis.cache_size (from $GRAPHSENTRY_REDIS__CACHE_SIZE): expected int, " \
           "got str 'lots'" in problems
    assert "kafka.bootstrapp (from $GRAPHSENTRY_KAFKA__BOOTSTRAPP): unknown key " \
           "(did you mean 'bootstrap'?)" in problems
    assert "$GRAPHSENTRY_KAFKA_BOOTSTRAP: not a setting name " \
           "(did you mean $GRAPHSENTRY_KAFKA__BOOTSTRAP?)" in problems
    assert any(p.startswith("time.allowed_lateness_seconds (from "
                            "$GRAPHSENTRY_TIME__ALLOWED_LATENESS_SECONDS): not valid YAML")
               for p in problems)
    assert len(problems) == 4


def test_unknown_keys_suggest_the_right_one() -> None:
    message = error_of({"kafka": {"topcs": {}}, "tme": {}, "redis": {"zzz": 1}})
    assert "kafka.topcs: unknown key (did you mean 'topics'?)" in message
    assert "tme: unknown key (did you mean 'time'?)" in message
    assert "redis.zzz: unknown key (known: cache_size, cache_ttl_seconds" in message


@pytest.mark.parametrize(("data", "expected"), [
    ({"time": {"allowed_lateness_seconds": "2h"}},
     "time.allowed_lateness_seconds: expected float, got str '2h'"),
    ({"time": {"allowed_lateness_seconds": "7200"}}, "expected float, got str '7200'"),
    ({"time": {"allowed_lateness_seconds": -1}},
     "time.allowed_lateness_seconds: must be ≥ 0, got -1"),
    ({"time": {"allowed_lateness_seconds": 10**9}}, "must be ≤ 604800, got 1000000000"),
    ({"time": {"allowed_lateness_seconds": float("nan")}}, "must be a finite number"),
    ({"bytewax": {"batch_size": 0}}, "bytewax.batch_size: must be ≥ 1, got 0"),
    ({"bytewax": {"batch_size": 1.5}}, "bytewax.batch_size: expected int, got float 1.5"),
    ({"kafka": {"tail": "yes"}}, "kafka.tail: expected bool, got str 'yes'"),
    ({"kafka": {"tail": 1}}, "kafka.tail: expected bool, got int 1"),
    ({"kafka": {"start": "middle"}}, "kafka.start: must be one of beginning, end, got 'middle'"),
    ({"kafka": {"topics": {"alerts": ""}}}, "kafka.topics.alerts: must not be empty"),
    ({"kafka": {"topics": {"late": 5}}}, "kafka.topics.late: expected str, got int 5"),
    ({"kafka": {"consumer": {"fetch.max.bytes": [1]}}},
     "kafka.consumer['fetch.max.bytes']: expected str or int or float or bool, got a list"),
    ({"kafka": []}, "kafka: expected a mapping, got a list"),
    ({"suppress": {"apps": "one-app"}}, "suppress.apps: expected a list, got str 'one-app'"),
    ({"suppress": {"apps": ["a", 3]}}, "suppress.apps[1]: expected str, got int 3"),
    ({"redis": {"cache_size": True}}, "redis.cache_size: expected int, got a boolean"),
])
def test_wrong_types_and_ranges(data: dict[str, object], expected: str) -> None:
    assert expected in error_of(data)


def test_a_key_without_a_value_takes_its_default() -> None:
    cfg = config_from_dict({"kafka": None, "suppress": {"apps": None},
                            "detectors": {"params": {"new_origin": None}}}, env={})
    assert cfg.model_dump() == Config().model_dump()
    assert config_from_dict({"kafka": {"topics": {"alerts_json": None}}},
                            env={}).kafka.topics.alerts_json is None  # null is a value here


def test_detector_ids_and_parameters_are_checked_against_the_catalog() -> None:
    assert "detectors.enabled[0]: unknown detector 'graph_enumeraton' " \
           "(did you mean 'graph_enumeration'?)" in \
        problems_of({"detectors": {"enabled": ["graph_enumeraton"]}})
    assert "detectors.params.grap_enumeration: unknown detector " \
           "(did you mean 'graph_enumeration'?)" in \
        problems_of({"detectors": {"params": {"grap_enumeration": {}}}})
    assert "detectors.params.graph_enumeration.min_familes: unknown parameter " \
           "(did you mean 'min_families'?)" in \
        problems_of({"detectors": {"params": {"graph_enumeration": {"min_familes": 3}}}})
    # the detector's own check (Params.__post_init__), moved onto the parameter's path
    assert "detectors.params.graph_enumeration.min_families: every value must be a positive " \
           "number, got (-3, 6, 7)" in problems_of(
        {"detectors": {"params": {"graph_enumeration": {"min_families": [-3, 6, 7]}}}})
    assert "detectors.params.graph_enumeration.min_families: expected 3 values (one per " \
           "window length), got 2" in problems_of(
        {"detectors": {"params": {"graph_enumeration": {"min_families": [5, 6]}}}})
    assert "detectors.params.denied_requests.min_families: must be a positive number, got 0" in \
        problems_of({"detectors": {"params": {"denied_requests": {"min_families": 0}}}})
    assert "detectors.params.graph_enumeration.min_families: expected a list, got str '3'" in \
        problems_of({"detectors": {"params": {"graph_enumeration": {"min_families": "3"}}}})
    assert "detectors.params.new_origin.window_seconds: expected float, got a boolean" in \
        problems_of({"detectors": {"params": {"new_origin": {"window_seconds": True}}}})
    assert "detectors.enabled: expected 'all' or a list, got str 'some'" in \
        problems_of({"detectors": {"enabled": "some"}})
    cfg = config_from_dict({"detectors": {
        "enabled": ["graph_enumeration"],
        "params": {"graph_enumeration": {"min_families": [3, 4, 5]},
                   "storage_exfiltration": {"download_statuses": [200]}}}}, env={})
    assert cfg.detectors.enabled_ids == ["graph_enumeration"]
    assert cfg.detectors.params["graph_enumeration"]["min_families"] == (3, 4, 5)
    assert cfg.detectors.params["storage_exfiltration"]["download_statuses"] == (200,)


def test_detector_params_feed_the_catalog() -> None:
    import detectors.catalog as catalog

    cfg = config_from_dict(
        {"detectors": {"params": {"graph_enumeration": {"min_families": [3, 4, 5]}}}}, env={})
    built = catalog.build_detectors(cfg.detectors.params, cfg.detectors.enabled_ids)
    enumeration = next(d for d in built if d.meta.id == "graph_enumeration")
    assert enumeration.params.min_families == (3, 4, 5)  # type: ignore[attr-defined]


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of({"kafka": {"tail": 1, "bootstrapp": "x"},
                            "bytewax": {"batch_size": -5},
                            "detectors": {"params": {"graph_enumeration": {"min_familes": 3}}}},
                           env={"GRAPHSENTRY_REDIS__CACHE_SIZE": "x"})
    assert len(problems) == 5, problems


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
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing but a comment\n")
    assert load_config(empty, env={}).model_dump() == Config().model_dump()
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("kafka:\n  tail: maybe\n")
    with pytest.raises(ConfigError, match=f"invalid configuration {wrong}:"):
        load_config(wrong, env={})


def test_replace_validates_and_keeps_the_source() -> None:
    cfg = config_from_dict({}, "prod.yaml", env={})
    changed = cfg.replace("kafka", tail=False, bootstrap="b:9092")
    assert (changed.kafka.tail, changed.kafka.bootstrap, changed.source) == \
        (False, "b:9092", "prod.yaml")
    assert cfg.kafka.tail is True  # the original is untouched
    topics = cfg.replace("kafka.topics", alerts="a.v2", alerts_json=None).kafka.topics
    assert (topics.alerts, topics.alerts_json, topics.raw) == \
        ("a.v2", None, "graph.activity.raw")
    assert cfg.kafka.topics.replace(dlq="d").dlq == "d"
    with pytest.raises(ConfigError) as info:
        cfg.replace("kafka.topics", alerts="", alrts="x")
    assert info.value.problems == ["kafka.topics.alerts: must not be empty",
                                   "kafka.topics.alrts: unknown key (did you mean 'alerts'?)"]
    with pytest.raises(ConfigError, match="kafak: unknown section"):
        cfg.replace("kafak", tail=False)


def test_sections_are_immutable() -> None:
    cfg = Config()
    with pytest.raises(ValidationError, match="frozen"):
        cfg.kafka.tail = False
