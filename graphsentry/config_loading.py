"""From YAML data and environment variables to a validated configuration model, or to a list of
problems a person can act on.

:mod:`graphsentry.config` declares the models; this module holds what does not depend on which
settings exist: walking a model's types along a key path, environment overrides, and turning a
pydantic ``ValidationError`` into lines such as
``kafka.topcs: unknown key (did you mean 'topics'?)`` or
``redis.cache_size (from $GRAPHSENTRY_REDIS__CACHE_SIZE): expected int, got str 'lots'``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

ENV_PREFIX = "GRAPHSENTRY_"
"""Every setting can be set by ``GRAPHSENTRY_<SECTION>__<KEY>[__<KEY>...]`` (upper case)."""
ENV_DELIMITER = "__"
ENV_ALIAS = "x-env"
"""``Field(json_schema_extra={ENV_ALIAS: "NAME"})`` gives a setting a short variable name too."""

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)
_UNKNOWN = object()


class ConfigProblems(ValueError):
    """Problems of one configuration, each a line ``path: what is wrong``."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


# -- types along a key path -------------------------------------------------------------------

def _unwrap(tp: Any) -> Any:
    """``Annotated[X, ...]`` → X, ``X | None`` → X."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _union_members(tp: Any) -> list[Any]:
    """The non-null members of a union of several types, else []."""
    if get_origin(tp) not in (Union, types.UnionType):
        return []
    members = [a for a in get_args(tp) if a is not type(None)]
    return members if len(members) > 1 else []


def is_nullable(tp: Any) -> bool:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp)


def field_types(tp: Any) -> dict[str, Any] | None:
    """``{name: annotation}`` of a model or dataclass type, else None.

    A model field whose metadata has a ``validated_as()`` method (see
    :class:`graphsentry.config.CatalogParams`) reports the type it is really validated as.
    """
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        out: dict[str, Any] = {}
        for name, info in tp.model_fields.items():
            stand_in = next((m.validated_as() for m in info.metadata
                             if hasattr(m, "validated_as")), None)
            out[name] = stand_in if stand_in is not None else info.annotation
        return out
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = get_type_hints(tp)
        return {f.name: hints[f.name] for f in dataclasses.fields(tp)}
    return None


def child_type(tp: Any, key: str | int) -> Any:
    """The type of ``key`` inside a value of type ``tp``; ``_UNKNOWN`` when it has none."""
    tp = _unwrap(tp)
    known = field_types(tp)
    if known is not None:
        return known.get(str(key), _UNKNOWN)
    origin = get_origin(tp)
    if origin is dict and not isinstance(key, int):
        return get_args(tp)[1]
    if origin in (list, tuple) and isinstance(key, int):
        return get_args(tp)[0]
    return _UNKNOWN


def type_at(root: Any, path: Sequence[str | int]) -> Any:
    tp = root
    for key in path:
        if tp is _UNKNOWN:
            break
        tp = child_type(tp, key)
    return tp


def _branch(members: list[Any], tag: str) -> Any:
    """The union member pydantic names ``tag`` in an error location (``list[str]``,
    ``literal['all']``, ``int``, a class name)."""
    for member in members:
        base = _unwrap(member)
        name = getattr(get_origin(base) or base, "__name__", "")
        if get_origin(base) is Literal:
            name = "literal"
        if name and (tag == name or tag.lower().startswith(name.lower() + "[")):
            return member
    return _UNKNOWN


def dotted(path: Sequence[str | int]) -> str:
    """``kafka.topics.alerts``, ``suppress.apps[2]``, ``kafka.consumer['sasl.password']``."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        elif "." in key or not key:
            out += f"[{key!r}]"
        else:
            out += f".{key}" if out else key
    return out


# -- environment ------------------------------------------------------------------------------

def env_aliases(root: type[BaseModel]) -> dict[str, tuple[str, ...]]:
    """``{variable: path}`` of the settings declared with a short variable name."""
    found: dict[str, tuple[str, ...]] = {}

    def walk(model: type[BaseModel], prefix: tuple[str, ...]) -> None:
        for name, info in model.model_fields.items():
            extra = info.json_schema_extra
            if isinstance(extra, dict) and isinstance(extra.get(ENV_ALIAS), str):
                found[str(extra[ENV_ALIAS])] = (*prefix, name)
            sub = _unwrap(info.annotation)
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                walk(sub, (*prefix, name))

    walk(root, ())
    return found


def env_name(path: Sequence[str | int]) -> str:
    return ENV_PREFIX + ENV_DELIMITER.join(str(p).upper() for p in path)


def _takes_text(tp: Any) -> bool:
    """True when an environment string is the value as it is (no YAML decoding)."""
    base = _unwrap(tp)
    if base is str or getattr(base, "__name__", "") == "SecretStr":
        return True
    return get_origin(base) is Literal and all(isinstance(a, str) for a in get_args(base))


def _decode(tp: Any, text: str) -> Any:
    if tp is not _UNKNOWN and _takes_text(tp):
        return None if is_nullable(tp) and text in ("null", "~") else text
    if tp is _UNKNOWN:
        return text
    return yaml.safe_load(text)  # numbers, true/false, null, [lists] and {mappings}


def env_overrides(root: type[BaseModel], env: Mapping[str, str]
                  ) -> tuple[dict[str, Any], dict[Loc, str], list[str]]:
    """Settings from the environment: ``(nested data, {path: variable}, problems)``.

    Short names (``KAFKA_BOOTSTRAP``) apply first, then ``GRAPHSENTRY_<SECTION>__<KEY>``, so the
    long name wins. Empty variables are ignored. A value is used as it is for a text setting and
    read as YAML otherwise (``60``, ``true``, ``null``, ``[a, b]``, ``{sasl.password: x}``). A
    name that looks like a setting written with a single underscore is a problem, not ignored.
    """
    data: dict[str, Any] = {}
    origins: dict[Loc, str] = {}
    problems: list[str] = []
    chosen: list[tuple[str, tuple[str, ...]]] = [
        (var, path) for var, path in env_aliases(root).items() if env.get(var)]
    sections = field_types(root) or {}
    for var, value in sorted(env.items()):
        if not value or not var.upper().startswith(ENV_PREFIX):
            continue
        rest = var[len(ENV_PREFIX):].lower()
        if ENV_DELIMITER in rest:
            chosen.append((var, tuple(rest.split(ENV_DELIMITER))))
            continue
        for section, tp in sections.items():
            key = rest.removeprefix(f"{section}_")
            if key != rest and key in (field_types(tp) or {}):
                problems.append(f"${var}: not a setting name (did you mean "
                                f"${env_name((section, key))}?)")
    for var, path in chosen:
        try:
            value = _decode(type_at(root, path), env[var])
        except yaml.YAMLError as exc:
            problems.append(f"{dotted(path)} (from ${var}): not valid YAML: "
                            f"{' '.join(str(exc).split())}")
            continue
        node = data
        for key in path[:-1]:
            if node.get(key) is None:
                node[key] = {}
            node = node[key] if isinstance(node[key], dict) else {}
        node[path[-1]] = value
        origins[tuple(path)] = f"${var}"
    return data, origins, problems


def merge(base: Any, override: Mapping[str, Any]) -> Any:
    """``base`` with ``override`` merged in, mappings key by key (neither is modified). Where
    ``base`` holds something other than a mapping, it stays for validation to report."""
    if base is None:
        base = {}
    if not isinstance(base, Mapping):
        return base
    out = dict(base)
    for key, value in override.items():
        old = out.get(key)
        out[key] = merge(old, value) if isinstance(value, Mapping) and (
            old is None or isinstance(old, Mapping)) else value
    return out


def without_empty(data: Any, tp: Any) -> Any:
    """``data`` without the keys that have no value (``kafka:`` followed only by comments) where
    the setting cannot be null: they take their defaults."""
    known = field_types(tp)
    if not isinstance(data, Mapping):
        return data
    if known is None:
        return dict(data)
    out: dict[Any, Any] = {}
    for key, value in data.items():
        sub = known.get(str(key), _UNKNOWN)
        if value is None and sub is not _UNKNOWN and not is_nullable(sub):
            continue
        out[key] = without_empty(value, sub) if sub is not _UNKNOWN else value
    return out


# -- validation -------------------------------------------------------------------------------

def validate_data(model: type[M], data: Any, origins: Mapping[Loc, str] | None = None) -> M:
    """Validate plain data (parsed YAML/JSON) as ``model``, strictly and as JSON is: ``7200``
    is fine for a float, ``"7200"`` and ``1`` for a bool are not; lists become tuples where a
    tuple is declared. Raises :class:`ConfigProblems` listing every problem."""
    text = json.dumps(without_empty(data, model), default=str)
    try:
        return model.model_validate_json(text, strict=True)
    except ValidationError as exc:
        raise ConfigProblems(problems(exc, model, origins or {})) from None


def problems(exc: ValidationError, root: Any, origins: Mapping[Loc, str] | None = None,
             prefix: Loc = ()) -> list[str]:
    """One line per problem of ``exc`` (raised validating ``root``), union branches merged."""
    lines: list[str] = []
    unions: dict[tuple[Loc, int], list[tuple[Loc, int, ErrorDetails]]] = {}
    for error in exc.errors(include_url=False):
        path, at = _path_of(root, error["loc"])
        if at is None:
            lines.append(_line(root, (*prefix, *path), error, origins, prefix))
        else:
            unions.setdefault((tuple(path[:at]), at), []).append((tuple(path), at, error))
    for (base, _), group in unions.items():
        deeper = [(p, e) for p, at, e in group if len(p) > at]
        if deeper:  # the input had one branch's shape: its errors are the ones that matter
            lines += [_line(root, (*prefix, *p), e, origins, prefix) for p, e in deeper]
            continue
        wanted = list(dict.fromkeys(_expected(e) or e["msg"] for _, _, e in group))
        first = group[0][2]
        lines.append(f"{_where((*prefix, *base), origins)}: expected {' or '.join(wanted)}, "
                     f"{_got(first['input'])}")
    return lines


def _path_of(root: Any, loc: Loc) -> tuple[list[str | int], int | None]:
    """The key path of an error location without pydantic's union tags, and the position of the
    first tag (None without one)."""
    path: list[str | int] = []
    union_at: int | None = None
    tp = root
    for key in loc:
        members = _union_members(_strip_annotated(tp)) if tp is not _UNKNOWN else []
        if members and isinstance(key, str) and child_type(tp, key) is _UNKNOWN:
            union_at = len(path) if union_at is None else union_at
            tp = _branch(members, key)
            continue
        path.append(key)
        tp = child_type(tp, key) if tp is not _UNKNOWN else _UNKNOWN
    return path, union_at


def _strip_annotated(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _where(path: Sequence[str | int], origins: Mapping[Loc, str] | None) -> str:
    where = dotted(path) or "configuration"
    for length in range(len(path), 0, -1):
        origin = (origins or {}).get(tuple(path[:length]))
        if origin:
            return f"{where} (from {origin})"
    return where


def suggest(name: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)``, or the known names, or `` (it takes none)``."""
    if not choices:
        return " (it takes none)"
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(choices)})"


_TYPES = {"string": "str", "int": "int", "float": "float", "bool": "bool", "dict": "a mapping",
          "model": "a mapping", "dataclass": "a mapping", "list": "a list", "tuple": "a list",
          "set": "a list"}
_BOUNDS = {"greater_than_equal": ("≥", "ge"), "greater_than": (">", "gt"),
           "less_than_equal": ("≤", "le"), "less_than": ("<", "lt")}


def _expected(error: ErrorDetails) -> str | None:
    kind = error["type"]
    if kind == "literal_error":
        return str((error.get("ctx") or {}).get("expected", ""))
    if kind == "none_required":
        return "null"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return _TYPES.get(kind.rsplit("_", 1)[0])
    return None


def _plain(number: Any) -> Any:
    """``0`` rather than ``0.0`` for a bound declared as ``ge=0`` on a float."""
    return int(number) if isinstance(number, float) and number.is_integer() else number


def _got(value: Any) -> str:
    if isinstance(value, bool):
        return "got a boolean"
    if value is None:
        return "got null"
    if isinstance(value, Mapping):
        return "got a mapping"
    if isinstance(value, list | tuple):
        return "got a list"
    return f"got {type(value).__name__} {value!r}"


def _line(root: Any, path: Sequence[str | int], error: ErrorDetails,
          origins: Mapping[Loc, str] | None, prefix: Loc) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error["input"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        owner = _unwrap(type_at(root, path[len(prefix):-1]))
        names = sorted(field_types(owner) or {})
        noun = ("parameter" if dataclasses.is_dataclass(owner)
                else str(getattr(owner, "key_noun", "key")))
        return f"{_where(path, origins)}: unknown {noun}{suggest(str(path[-1]), names)}"
    if kind in _BOUNDS:
        sign, key = _BOUNDS[kind]
        return f"{_where(path, origins)}: must be {sign} {_plain(ctx.get(key))}, got {value!r}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"{_where(path, origins)}: must be one of {', '.join(choices)}, got {value!r}"
    if kind == "finite_number":
        return f"{_where(path, origins)}: must be a finite number, got {value!r}"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return f"{_where(path, origins)}: must not be empty"
    if kind in ("value_error", "assertion_error"):
        return _own_error(root, path, error, origins, prefix)
    wanted = _expected(error)
    if wanted:
        return f"{_where(path, origins)}: expected {wanted}, {_got(value)}"
    return f"{_where(path, origins)}: {error['msg']}"


def _own_error(root: Any, path: Sequence[str | int], error: ErrorDetails,
               origins: Mapping[Loc, str] | None, prefix: Loc) -> str:
    """A validator's own ValueError. ``Params.min_families: must be ...`` (the detectors'
    wording, ``<class>.<field>: ...``) is moved onto the field's path."""
    cause = (error.get("ctx") or {}).get("error")
    message = str(cause) if cause is not None else error["msg"]
    owner = _unwrap(type_at(root, path[len(prefix):]))
    name = getattr(owner, "__qualname__", None)
    if name:
        match = re.match(rf"{re.escape(name)}\.(\w+): (.*)\Z", message, re.S)
        if match and match.group(1) in (field_types(owner) or {}):
            return f"{_where((*path, match.group(1)), origins)}: {match.group(2)}"
    return f"{_where(path, origins)}: {message}"

