"""One test over all detectors: ids, ATT&CK metadata, parameters, tests, imports, fields read.

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
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import detectors
from detectors import catalog
from detectors.base import FIDELITIES, SEVERITIES, STAGES, Detector
from detectors.event import GraphEvent
from schemas import field_names

ROOT = Path(__file__).resolve().parents[2]
TACTIC = re.compile(r"^TA\d{4}$")
TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")
FORBIDDEN_IMPORTS = {"bytewax", "confluent_kafka", "redis", "fastavro", "graphsentry",
                     "dataflows"}
POSITIVE = re.compile(r"^def (test_\w*fires\w*)\(", re.MULTILINE)
NEGATIVE = re.compile(r"^def (test_\w*(?:silent|quiet|does_not_fire)\w*)\(", re.MULTILINE)
PACKAGE_MODULES = sorted(m.name for m in pkgutil.iter_modules(detectors.__path__))
NEW_IN_ISSUE_12 = {"chat_collection", "app_permission_granted", "owner_added"}


def test_ids_are_unique_and_well_formed() -> None:
    assert len(set(catalog.DETECTOR_IDS)) == len(catalog.DETECTOR_IDS) == 15
    assert set(catalog.DETECTOR_IDS) >= NEW_IN_ISSUE_12
    assert "attack_chain" not in catalog.DETECTOR_IDS  # the alert layer's incident now
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", d) for d in catalog.DETECTOR_IDS)


@pytest.mark.parametrize("detector_id", catalog.DETECTOR_IDS)
def test_each_id_is_a_module_defining_its_detector(detector_id: str) -> None:
    assert (ROOT / "detectors" / f"{detector_id}.py").is_file()
    cls = catalog.load_detector_class(detector_id)
    assert cls.meta.id == detector_id and cls.__module__ == f"detectors.{detector_id}"


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
    assert meta.title and meta.description and meta.false_positives and meta.references
    assert meta.severity in SEVERITIES and meta.fidelity in FIDELITIES
    assert meta.tactics and all(TACTIC.match(t) for t in meta.tactics), meta.tactics
    assert meta.techniques and all(TECHNIQUE.match(t) for t in meta.techniques), meta.techniques
    assert meta.stage in STAGES
    assert all(r.startswith("https://") for r in meta.references)


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
    cls = catalog.load_detector_class(detector_id)
    assert cls(instance).params == instance  # type: ignore[call-arg,attr-defined]


@pytest.mark.parametrize("detector_id", catalog.DETECTOR_IDS)
def test_params_reject_wrong_types_naming_detector_and_parameter(detector_id: str) -> None:
    for f in dataclasses.fields(catalog.params_class(detector_id)):
        with pytest.raises(ValueError, match=rf"{detector_id}.*{f.name}"):
            catalog.make_params(detector_id, {f.name: "not-a-value"})


@pytest.mark.parametrize("detector_id", catalog.DETECTOR_IDS)
def test_each_detector_has_positive_and_negative_tests(detector_id: str) -> None:
    path = ROOT / "tests" / "detectors" / f"test_{detector_id}.py"
    assert path.is_file(), f"missing {path.relative_to(ROOT)}"
    source = path.read_text(encoding="utf-8")
    assert POSITIVE.search(source), f"{path.name}: no test named *fires*"
    assert NEGATIVE.search(source), f"{path.name}: no test named *silent*"


# -- imports --------------------------------------------------------------------------------------

def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module_name", PACKAGE_MODULES)
def test_no_framework_imports(module_name: str) -> None:
    tree = ast.parse((ROOT / "detectors" / f"{module_name}.py").read_text(encoding="utf-8"))
    assert not _imports(tree) & FORBIDDEN_IMPORTS


def test_importing_every_detector_loads_no_framework() -> None:
    code = textwrap.dedent(f"""
        import sys
        from detectors import catalog
        catalog.build_detectors()
        forbidden = set({sorted(FORBIDDEN_IMPORTS)!r})
        print(sorted({{m.split('.')[0] for m in sys.modules}} & forbidden))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip() == "[]"


# -- fields read ------------------------------------------------------------------------------

def _event_attributes(tree: ast.AST) -> set[str]:
    """Attributes read on any parameter annotated ``GraphEvent``."""
    read: set[str] = set()
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        args = func.args.args + func.args.kwonlyargs + func.args.posonlyargs
        names = {a.arg for a in args if a.annotation is not None
                 and ast.unparse(a.annotation).strip("'\"") == "GraphEvent"}
        for node in ast.walk(func):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in names):
                read.add(node.attr)
    return read


def schema_columns_of_event_fields() -> dict[str, set[str]]:
    """GraphEvent field → the ``graph_activity`` columns ``from_record`` reads it from (from
    the source: ``from_record`` builds the event positionally, in field order)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(GraphEvent.from_record)))
    local: dict[str, set[str]] = {}  # local variable → columns its value reads

    def read_by(node: ast.AST) -> set[str]:
        found = {n.value for n in ast.walk(node)
                 if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        for n in ast.walk(node):
            if isinstance(n, ast.Name):
                found |= local.get(n.id, set())
        return found

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            local[node.targets[0].id] = read_by(node.value)
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name) and node.func.id == "cls")
    return {f.name: read_by(arg)
            for f, arg in zip(dataclasses.fields(GraphEvent), call.args, strict=True)}


PROPERTIES = {"denied": {"status"}, "succeeded": {"status"},
              "principal_key": {"tenant_id", "principal_id"}}


def test_every_event_field_comes_from_a_schema_column() -> None:
    mapping = schema_columns_of_event_fields()
    columns = set(field_names("graph_activity"))
    assert all(len(read) == 1 for name, read in mapping.items() if name != "token_id"), mapping
    assert mapping["token_id"] == {"unique_token_id", "sign_in_activity_id"}
    assert set().union(*mapping.values()) <= columns
    assert mapping["ts"] == {"time_generated"} and mapping["template"] == {"resource_template"}
    properties = {name for name, value in inspect.getmembers(GraphEvent)
                  if isinstance(value, property)}
    assert properties == set(PROPERTIES)


@pytest.mark.parametrize("module_name", PACKAGE_MODULES)
def test_every_field_a_detector_reads_exists_in_the_schema(module_name: str) -> None:
    tree = ast.parse((ROOT / "detectors" / f"{module_name}.py").read_text(encoding="utf-8"))
    mapping = schema_columns_of_event_fields()
    read = _event_attributes(tree)
    unknown = read - set(mapping) - set(PROPERTIES)
    assert not unknown, f"{module_name} reads {unknown}, not fields of GraphEvent"
    columns = set(field_names("graph_activity"))
    for name in read:
        sources = mapping.get(name) or {c for f in PROPERTIES[name] for c in mapping[f]}
        assert sources <= columns, (module_name, name, sources)


def test_the_field_checks_see_reads() -> None:
    tree = ast.parse("def f(event: GraphEvent, n: int) -> None:\n"
                     "    return event.status + event.bogus + n.real\n")
    assert _event_attributes(tree) == {"status", "bogus"}
    assert _imports(ast.parse("import redis.client\nfrom bytewax import x\nfrom . import y")) \
        == {"redis", "bytewax"}


# -- building -------------------------------------------------------------------------------------

def test_build_detectors_applies_overrides_and_enabled() -> None:
    built = catalog.build_detectors({"attack_tool": {"min_templates": 3}})
    assert [d.meta.id for d in built] == list(catalog.DETECTOR_IDS)
    tool = next(d for d in built if d.meta.id == "attack_tool")
    assert tool.params.min_templates == 3  # type: ignore[attr-defined]
    chosen = catalog.build_detectors(enabled=["owner_added", "new_origin"])
    assert [d.meta.id for d in chosen] == ["new_origin", "owner_added"]


@pytest.mark.parametrize(("overrides", "enabled", "message"), [
    ({"nope": {}}, None, "unknown detector 'nope'"),
    (None, ["graph_enumration"], "unknown detector 'graph_enumration'"),
    ({"new_origin": {"window_second": 5}}, None, "'new_origin'.*window_second"),
    ({"new_origin": {"window_seconds": "5"}}, None, "'new_origin'.*window_seconds"),
    ({"attack_tool": []}, None, "'attack_tool': parameters must be a mapping"),
    ({"storage_exfiltration": {"min_items": [1]}}, ["new_origin"],
     "'storage_exfiltration'.*min_items"),
    ({"attack_chain": {}}, None, "unknown detector 'attack_chain'"),
])
def test_build_detectors_rejects_bad_configuration(overrides: dict[str, object] | None,
                                                   enabled: list[str] | None,
                                                   message: str) -> None:
    with pytest.raises(ValueError, match=message):
        catalog.build_detectors(overrides, enabled)  # type: ignore[arg-type]


def test_stage_of_maps_every_detector() -> None:
    stages = catalog.stage_of
    assert set(stages) == set(catalog.DETECTOR_IDS)
    assert stages["app_credential_added"] == "persistence"
    assert stages["chat_collection"] == "collection"
    assert {"discovery", "collection", "exfiltration", "persistence",
            "initial_access"} <= set(stages.values())


def test_describe_lists_everything_as_json() -> None:
    rows = json.loads(json.dumps(catalog.describe()))
    assert [r["id"] for r in rows] == list(catalog.DETECTOR_IDS)
    storage = next(r for r in rows if r["id"] == "storage_exfiltration")
    assert {"name": "min_downloads", "default": [25, 60, 150],
            "doc": "Successful file-content downloads per window, one floor per window "
                   "length."} in storage["params"]
    assert storage["fidelity"] == "medium" and storage["stage"] == "exfiltration"
