"""Every detector by id: discovery, parameter validation, construction and documentation.

A detector's id is its module name under ``detectors``. The module defines exactly one
concrete :class:`~detectors.base.Detector` subclass whose ``meta.id`` is that name, and a
module-level frozen dataclass ``Params`` whose fields all have defaults, each documented by an
attribute docstring right below it. (Correlation across detectors — risk alerts and
``attack_chain`` incidents — is the alert layer's, ``graphsentry.alerting``.) Detectors are
built as ``Class(params)``. An unknown detector id or parameter name is an error, never
silently skipped.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import itertools
import textwrap
from collections.abc import Iterable, Mapping
from functools import cache
from types import ModuleType
from typing import Any

from detectors.base import Detector, DetectorMeta

DETECTOR_IDS: tuple[str, ...] = (
    "new_origin", "concurrent_origin", "graph_enumeration", "denied_requests", "attack_tool",
    "sharepoint_enumeration", "onedrive_enumeration", "mailbox_enumeration",
    "chat_collection", "storage_exfiltration", "high_volume_transfer",
    "app_credential_added", "auth_method_added", "app_permission_granted", "owner_added",
)
EVENT_DETECTOR_IDS = DETECTOR_IDS
"""Every detector consumes events (kept for callers of the older name)."""

DetectorClass = type[Detector]


def _check_id(detector_id: str) -> None:
    if detector_id not in DETECTOR_IDS:
        raise ValueError(f"unknown detector {detector_id!r} (known: {', '.join(DETECTOR_IDS)})")


@cache
def _module(detector_id: str) -> ModuleType:
    _check_id(detector_id)
    return importlib.import_module(f"detectors.{detector_id}")


@cache
def load_detector_class(detector_id: str) -> DetectorClass:
    """The detector class defined in module ``detectors.<detector_id>``."""
    module = _module(detector_id)
    found = [cls for _, cls in inspect.getmembers(module, inspect.isclass)
             if cls.__module__ == module.__name__ and issubclass(cls, Detector)
             and not inspect.isabstract(cls) and getattr(cls, "meta", None) is not None
             and cls.meta.id == detector_id]
    if len(found) != 1:
        raise ValueError(f"detector {detector_id!r}: module {module.__name__} must define exactly "
                         f"one Detector subclass with meta.id == {detector_id!r}, found "
                         f"{[cls.__name__ for cls in found]}")
    return found[0]


def params_class(detector_id: str) -> type[Any]:
    """The module-level ``Params`` dataclass of a detector."""
    params = getattr(_module(detector_id), "Params", None)
    if not (isinstance(params, type) and dataclasses.is_dataclass(params)):
        raise ValueError(f"detector {detector_id!r}: module has no Params dataclass")
    return params


def meta_of(detector_id: str) -> DetectorMeta:
    return load_detector_class(detector_id).meta


def make_params(detector_id: str, values: Mapping[str, Any] | None = None) -> Any:
    """``Params`` from configuration values; unknown names and bad values raise ValueError."""
    cls = params_class(detector_id)
    values = dict(values or {})
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"detector {detector_id!r}: unknown parameter(s) {', '.join(unknown)} "
                         f"(known: {', '.join(known)})")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:  # Params.__post_init__ names the field and value
        raise ValueError(f"detector {detector_id!r}: {exc}") from None


def _check_overrides(overrides: Mapping[str, Any]) -> None:
    for detector_id, values in overrides.items():
        _check_id(detector_id)
        if not isinstance(values, Mapping):
            raise ValueError(f"detector {detector_id!r}: parameters must be a mapping, "
                             f"got {type(values).__name__}")


def build_detectors(overrides: Mapping[str, Mapping[str, Any]] | None = None,
                    enabled: Iterable[str] | None = None) -> list[Detector]:
    """The detectors (all, or those ``enabled``), in catalog order, with parameters.

    Every override is validated even for a disabled detector, so a typo never goes unnoticed.
    """
    overrides = overrides or {}
    _check_overrides(overrides)
    chosen = set(EVENT_DETECTOR_IDS if enabled is None else enabled)
    for detector_id in chosen:
        _check_id(detector_id)
    params = {d: make_params(d, overrides.get(d)) for d in DETECTOR_IDS
              if d in overrides or d in chosen}
    detectors: list[Detector] = []
    for detector_id in DETECTOR_IDS:
        if detector_id in chosen:
            cls = load_detector_class(detector_id)
            detectors.append(cls(params[detector_id]))  # type: ignore[call-arg]
    return detectors


@cache
def _stages() -> dict[str, str]:
    return {d: stage for d in DETECTOR_IDS if (stage := meta_of(d).stage) is not None}


def __getattr__(name: str) -> dict[str, str]:
    """``stage_of``: detector id → attack stage for the detectors that have one. Computed on
    first use so that importing the catalog imports no detector module."""
    if name == "stage_of":
        return dict(_stages())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def param_docs(cls: type[Any]) -> dict[str, str]:
    """Attribute docstrings of a dataclass: the string literal right below each field."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, following in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs


def describe() -> list[dict[str, Any]]:
    """Metadata and parameters of every detector (README's table of defaults)."""
    rows: list[dict[str, Any]] = []
    for detector_id in DETECTOR_IDS:
        meta = meta_of(detector_id)
        cls = params_class(detector_id)
        docs = param_docs(cls)
        rows.append({
            "id": detector_id, "title": meta.title, "severity": meta.severity,
            "tactics": list(meta.tactics), "techniques": list(meta.techniques),
            "stage": meta.stage, "fidelity": meta.fidelity,
            "params": [{"name": f.name, "default": _default(f), "doc": docs.get(f.name, "")}
                       for f in dataclasses.fields(cls)],
        })
    return rows


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING
