"""One test over all detectors: ids, metadata, parameters, tests, imports, fields read.

Strict on purpose: every id in ``DETECTOR_IDS`` must have its module, its ``Params`` and its
test file, or these tests fail. Test-naming convention checked here: a detector's test file has
at least one positive test whose name contains ``fires`` and one negative test whose name
contains ``silent`` (or ``quiet`` / ``does_not_fire``).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path

import pytest
from detectors.attack_chain import AttackChain

import detectors
from detectors import catalog
from detectors.base import SEVERITIES, STAGES, Detector
from detectors.event import GraphEvent

ROOT = Path(__file__).resolve().parents[2]
TACTIC = re.compile(r"^TA\d{4}$")
TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")
FORBIDDEN_IMPORTS = {"bytewax", "confluent_kafka", "redis", "fastavro"}
POSITIVE = re.compile(r"^def (test_\w*fires\w*)\(", re.MULTILINE)
NEGATIVE = re.compile(r"^def (test_\w*(?:silent|quiet|does_not_fire)\w*)\(", re.MULTILINE)
PACKAGE_MODULES = sorted(m.name for m in pkgutil.iter_modules(detectors.__path__))


def test_ids_are_unique_and_include_the_chain() -> None:
    assert len(set(catalog.DETECTOR_IDS)) == len(catalog.DETECTOR_IDS) == 12
    assert catalog.CHAIN_ID in catalog.DETECTOR_IDS
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", d) for d in catalog.DETECTOR_IDS)


@pytest.mark.parametrize("detector_id", catalog.DETECTOR_IDS)
def test_each_id_is_a_module_defining_its_detector(detector_id: str) -> None:
    assert (ROOT / "detectors" / f"{detector_id}.py").is_file()
    cls = catalog.load_detector_class(detector_id)
    assert cls.meta.id == detector_id
    assert cls.__module__ == f"detectors.{detector_id}" or cls is AttackChain


@pytest.mark.parametrize("module_name", PACKAGE_MODULES)
def test_every_detector_class_in_the_package_is_listed(module_name: str) -> None:
    module = importlib.import_module(f"detectors.{module_name}")
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if (cls.__module__ == module.__name__ and issubclass(cls, Detector)
                and not inspect.isabstract(cls)):
            assert cls.meta.id == module_name, f"{cls.__name__} in {module_name}"
            assert module_name in catalog.DETECTOR_IDS


@pytest.mark.parametrize("detector_id", catalog.DETECTOR_IDS)
def test_metadata_is_well_formed(detector_id: str) -> None:
    meta = catalog.meta_of(detector_id)
    assert meta.title and meta.description and meta.false_positives
    assert meta.severity in SEVERITIES
    assert meta.tactics and all(TACTIC.match(t) for t in meta.tactics), meta.tactics
    assert meta.techniques and all(TECHNIQUE.match(t) for t in meta.techniques), meta.techniques
    if detector_id == catalog.CHAIN_ID:
        assert meta.stage is None
    else:
        assert meta.stage in STAGES


@pytest.mark.parametrize("detector_id", catalog.DETECTOR_IDS)
def test_params_have_documented_defaults_and_build(detector_id: str) -> None:
    params = catalog.params_class(detector_id)
    docs = catalog.param_docs(params)
    for f in dataclasses.fields(params):
        has_default = (f.default is not dataclasses.MISSING
                       or f.default_factory is not dataclasses.MISSING)
        assert has_default, f"{detector_id}.{f.name} has no default"
        assert docs.get(f.name), f"{detector_id}.{f.name} has no docstring"
    instance = catalog.make_params(detector_id)
    assert dataclasses.fields(instance)
    cls = catalog.load_detector_class(detector_id)
    assert cls(instance).params == instance  # type: ignore[call-arg,union-attr]


@pytest.mark.parametrize("detector_id", catalog.DETECTOR_IDS)
def test_params_reject_wrong_types_naming_detector_and_parameter(detector_id: str) -> None:
    for f in dataclasses.fields(catalog.params_class(detector_id)):
        with pytest.raises(ValueError, match=rf"{detector_id}.*{f.name}"):
            catalog.make_params(detector_id, {f.name: "not-a-value"})


@pytest.mark.parametrize("detector_id", [d for d in catalog.DETECTOR_IDS])
def test_each_detector_has_positive_and_negative_tests(detector_id: str) -> None:
    path = ROOT / "tests" / "detectors" / f"test_{detector_id}.py"
    assert path.is_file(), f"missing {path.relative_to(ROOT)}"
    source = path.read_text(encoding="utf-8")
    assert POSITIVE.search(source), f"{path.name}: no test named *fires*"
    assert NEGATIVE.search(source), f"{path.name}: no test named *silent*"


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def _event_attributes(tree: ast.AST) -> set[str]:
    """Attributes read on any parameter annotated ``GraphEvent``."""
    read: set[str] = set()
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        args = func.args.args + func.args.kwonlyargs
        names = {a.arg for a in args if a.annotation is not None
                 and ast.unparse(a.annotation).strip("'\"") == "GraphEvent"}
        for node in ast.walk(func):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in names):
                read.add(node.attr)
    return read


@pytest.mark.parametrize("module_name", PACKAGE_MODULES)
def test_no_framework_imports_and_only_event_fields_that_exist(module_name: str) -> None:
    tree = ast.parse((ROOT / "detectors" / f"{module_name}.py").read_text(encoding="utf-8"))
    assert not _imports(tree) & FORBIDDEN_IMPORTS
    known = {f.name for f in dataclasses.fields(GraphEvent)} | {
        name for name, value in inspect.getmembers(GraphEvent) if isinstance(value, property)}
    assert _event_attributes(tree) <= known, _event_attributes(tree) - known


def test_the_event_field_check_sees_reads() -> None:
    tree = ast.parse("def f(event: GraphEvent, n: int) -> None:\n"
                     "    return event.status + event.bogus + n.real\n")
    assert _event_attributes(tree) == {"status", "bogus"}


def test_build_detectors_applies_overrides_and_enabled() -> None:
    built = catalog.build_detectors({"attack_tool": {"min_templates": 3},
                                     "attack_chain": {"min_stages": 2}})
    assert [d.meta.id for d in built] == list(catalog.EVENT_DETECTOR_IDS)
    tool = next(d for d in built if d.meta.id == "attack_tool")
    assert tool.params.min_templates == 3  # type: ignore[attr-defined]
    chosen = catalog.build_detectors(enabled=["new_origin", "attack_chain"])
    assert [d.meta.id for d in chosen] == ["new_origin"]
    assert catalog.build_chain({"attack_chain": {"min_stages": 2}}).params.min_stages == 2


@pytest.mark.parametrize(("overrides", "enabled", "message"), [
    ({"nope": {}}, None, "unknown detector 'nope'"),
    (None, ["graph_enumration"], "unknown detector 'graph_enumration'"),
    ({"new_origin": {"min_history_event": 5}}, None, "'new_origin'.*min_history_event"),
    ({"new_origin": {"min_history_events": "5"}}, None, "'new_origin'.*min_history_events"),
    ({"new_origin": {"alert_on_new_prefix_in_known_asn": 1}}, None, "'new_origin'.*asn"),
    ({"attack_tool": []}, None, "'attack_tool': parameters must be a mapping"),
    ({"attack_chain": {"horizon_seconds": -1}}, ["new_origin"], "'attack_chain'.*horizon"),
])
def test_build_detectors_rejects_bad_configuration(overrides: dict[str, object] | None,
                                                   enabled: list[str] | None,
                                                   message: str) -> None:
    with pytest.raises(ValueError, match=message):
        catalog.build_detectors(overrides, enabled)  # type: ignore[arg-type]


def test_stage_of_maps_every_staged_detector_but_not_the_chain() -> None:
    stages = catalog.stage_of
    assert set(stages) == set(catalog.EVENT_DETECTOR_IDS)
    assert stages["app_credential_added"] == "persistence"
    assert {"discovery", "collection", "exfiltration", "persistence"} <= set(stages.values())


def test_describe_lists_everything_as_json() -> None:
    rows = json.loads(json.dumps(catalog.describe()))
    assert [r["id"] for r in rows] == list(catalog.DETECTOR_IDS)
    new_origin = next(r for r in rows if r["id"] == "new_origin")
    assert {"name": "min_history_events", "default": 50,
            "doc": "Events in the principal's history before new networks count."} \
        in new_origin["params"]
