"""graphsentry configuration: one YAML file, validated at start, with documented defaults.

The file is found through ``--config FILE`` or the environment variable ``GRAPHSENTRY_CONFIG``;
without either, the defaults apply. ``KAFKA_BOOTSTRAP`` and ``REDIS_URL`` override the file.
Every problem is reported at once, with the offending path (``kafka.topics.alerts``), and unknown
keys come with a "did you mean" suggestion. Detector ids and parameter names are checked
against ``detectors.catalog``. Defaults are listed in ``docs/configuration.md``.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from graphsentry.errors import GraphsentryError

ENV_CONFIG = "GRAPHSENTRY_CONFIG"
ENV_OVERRIDES = {"KAFKA_BOOTSTRAP": ("kafka", "bootstrap"), "REDIS_URL": ("redis", "url")}


def _range(low: float | None = None, high: float | None = None) -> dict[str, Any]:
    return {"min": low, "max": high}


@dataclass(frozen=True)
class Topics:
    raw: str = "graph.activity.raw"
    """Raw Graph activity JSON (Event Hub export) read by the bridge."""
    activity: str = "graph.activity.v1"
    """Normalized Avro records (key tenant/app): the detection input."""
    dlq: str = "graph.activity.dlq.v1"
    """Dead letters: JSON {reason, raw, source, at} for input that could not be decoded."""
    signals: str | None = "graph.signals.v1"
    """Every detector signal as Avro (schemas/graph_signal.avsc), key signal_id (null: none)."""
    alerts: str = "graph.alerts.v1"
    """Alerts as Avro (schemas/graph_alert.avsc), key alert_id; log-compacted: every update
    of an alert has the same key, the latest revision survives compaction."""
    alerts_json: str | None = "graph.alerts.json.v1"
    """The same alerts as JSON (null: none)."""
    late: str | None = "graph.activity.late.v1"
    """Events that arrived later than the allowed lateness (JSON; null: counted only)."""


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap: str = "127.0.0.1:9092"
    """Kafka bootstrap servers, comma separated."""
    topics: Topics = field(default_factory=Topics)
    tail: bool = True
    """False: stop at the end of the topic (bounded replay)."""
    start: str = field(default="beginning", metadata={"choices": ("beginning", "end")})
    """Where to start without recovery state."""
    consumer: dict[str, Any] = field(default_factory=dict)
    """Extra librdkafka consumer settings (e.g. SASL_SSL for Event Hubs)."""
    producer: dict[str, Any] = field(default_factory=dict)
    """Extra librdkafka producer settings."""


@dataclass(frozen=True)
class RedisConfig:
    url: str | None = "redis://127.0.0.1:6379/0"
    """None: no Redis, an in-process store (embedded mode uses one regardless)."""
    key_prefix: str = "graphsentry:"
    """Prefix of every Redis key graphsentry reads or writes."""
    cache_ttl_seconds: float = field(default=300.0, metadata=_range(0, 86_400))
    """How long app and IP lookups are cached in each process (0: no cache)."""
    cache_size: int = field(default=100_000, metadata=_range(0))
    """Entries of that cache (LRU)."""
    socket_timeout_seconds: float = field(default=0.5, metadata=_range(0.01, 60))
    """Connect and read timeout: how long a lookup may wait for an unresponsive Redis."""
    retry_seconds: float = field(default=5.0, metadata=_range(0.1, 3600))
    """Back-off before trying an unreachable Redis again."""
    history_ttl_days: float = field(default=30.0, metadata=_range(0.01, 3650))
    """Stored principal profiles expire after this many days without an update."""


@dataclass(frozen=True)
class TimeConfig:
    allowed_lateness_seconds: float = field(default=7200.0, metadata=_range(0, 7 * 86_400))
    """Events older than the newest event of their tenant/app minus this are late: counted,
    not detected."""
    expected_delivery_lag_seconds: float = field(default=1800.0, metadata=_range(0, 86_400))
    """Typical delay between an event and its arrival (for operators; detection uses the
    lateness)."""
    max_future_skew_seconds: float = field(default=900.0, metadata=_range(0, 3600))
    """Records dated more than this ahead of the wall clock are rejected
    (``future_timestamp``); keep it below the topics' ``message.timestamp.after.max.ms``
    (Kafka 4: 1 h)."""


@dataclass(frozen=True)
class StateConfig:
    seen_capacity: int = field(default=200_000, metadata=_range(1))
    """Request ids remembered per principal for duplicate suppression (within the lateness)."""
    idle_eviction_seconds: float = field(default=6 * 3600.0, metadata=_range(600, 30 * 86_400))
    """Event-time seconds a principal may stay idle before it leaves worker state: its windows
    close and its profile goes to Redis (read back when it returns). Must exceed the
    lateness."""
    eviction_check_seconds: float = field(default=30.0, metadata=_range(1, 3600))
    """Wall-clock seconds between a key's idle checks."""


@dataclass(frozen=True)
class LearningConfig:
    min_days: int = field(default=3, metadata=_range(0, 14))
    """Days with activity (of the profile's last 14) before a principal is established: until
    then its signals carry ``learning`` and half the risk (signals, not alerts, unless
    high-fidelity or corroborated)."""
    min_age_seconds: float = field(default=2 * 86_400.0, metadata=_range(0, 30 * 86_400))
    """Time since the principal was first seen before it is established."""


@dataclass(frozen=True)
class RiskConfig:
    new_network: float = 20.0
    """Risk points when a signal's events came from a network new to the principal."""
    new_client: float = 10.0
    """Risk points for a client app (or daemon user agent) new to the principal."""
    unusual_hour: float = 10.0
    """Risk points when the window started at a time of day the principal is not active at."""
    familiar: float = -10.0
    """Risk points when an established principal acted from known networks and clients only."""
    privileged_high: float = 5.0
    """Risk points for a token with high-tier permissions."""
    privileged_critical: float = 15.0
    """Risk points for a token with critical-tier permissions (can grant itself more)."""
    first_party_app_only: float = -10.0
    """Risk points for a Microsoft first-party application acting app-only."""
    learning_factor: float = field(default=0.5, metadata=_range(0, 1))
    """Multiplies the risk of a principal in its learning period."""


@dataclass(frozen=True)
class AlertsConfig:
    risk_threshold: float = field(default=100.0, metadata=_range(1))
    """A principal's risk over the horizon (sum over detectors of the highest signal risk) at
    or above which a risk alert is raised."""
    min_stages: int = field(default=3, metadata=_range(2, 8))
    """Distinct attack stages within the horizon that make an incident (attack_chain)."""
    horizon_seconds: float = field(default=86_400.0, metadata=_range(600, 30 * 86_400))
    """Risk and stages accumulate over this trailing horizon; one risk alert or incident per
    principal per horizon bucket."""
    suppression_period_seconds: float = field(default=86_400.0, metadata=_range(60, 30 * 86_400))
    """One detector alert per (principal, detector) per period; later evidence updates it."""
    promote_fidelity: str = field(default="high", metadata={"choices": ("high", "medium")})
    """Signals of this fidelity become detector alerts on their own."""
    max_signals_per_principal: int = field(default=512, metadata=_range(16))
    """Signals kept per principal for correlation (oldest forgotten first)."""
    risk: RiskConfig = field(default_factory=RiskConfig)
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    """Exceptions from the configuration (same fields as `graphsentry exceptions add`: id,
    reason, author, created, expires, starts, detector, app_id, principal_id, network, asn,
    template)."""


@dataclass(frozen=True)
class DetectorsConfig:
    enabled: str | list[str] = "all"
    """`all` or a list of detector ids."""
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-detector parameter overrides: ``{detector_id: {param: value}}``."""

    @property
    def enabled_ids(self) -> list[str] | None:
        """None for all detectors."""
        return None if self.enabled == "all" else list(self.enabled)


@dataclass(frozen=True)
class SuppressConfig:
    apps: list[str] = field(default_factory=list)
    """App ids whose signals are always suppressed (an exception without expiry each)."""
    principals: list[str] = field(default_factory=list)
    """Principal ids whose signals are always suppressed (an exception without expiry each)."""


@dataclass(frozen=True)
class BytewaxConfig:
    batch_size: int = field(default=1000, metadata=_range(1, 1_000_000))
    """Messages per Kafka source batch (and records per batch in embedded mode)."""
    epoch_seconds: float = field(default=10.0, metadata=_range(0.01, 3600))
    """Bytewax epoch: snapshot interval with recovery."""


@dataclass(frozen=True)
class Config:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    time: TimeConfig = field(default_factory=TimeConfig)
    state: StateConfig = field(default_factory=StateConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    detectors: DetectorsConfig = field(default_factory=DetectorsConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    suppress: SuppressConfig = field(default_factory=SuppressConfig)
    bytewax: BytewaxConfig = field(default_factory=BytewaxConfig)
    source: str = field(default="<defaults>", metadata={"internal": True})
    """Where the configuration came from (file path or ``<defaults>``)."""

    def replace(self, section: str, **changes: Any) -> Config:
        """A copy with fields of one section changed (``cfg.replace("kafka", tail=False)``)."""
        return dataclasses.replace(
            self, **{section: dataclasses.replace(getattr(self, section), **changes)})


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(choices)})"


def _type_name(tp: Any) -> str:
    if get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp)) if get_origin(tp) is None else str(tp)


def _coerce(value: Any, tp: Any, where: str, errors: list[str]) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widen to float)."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        for option in get_args(tp):
            attempt: list[str] = []
            result = _coerce(value, option, where, attempt)
            if not attempt:
                return result
        errors.append(f"{where}: expected {_type_name(tp)}, got {type(value).__name__}")
        return None
    if tp is type(None):
        if value is not None:
            errors.append(f"{where}: expected null")
        return None
    if origin in (list, dict) and value is None:  # an empty YAML section (only comments)
        return origin()
    if origin is list:
        if not isinstance(value, list):
            errors.append(f"{where}: expected a list, got {type(value).__name__}")
            return []
        (item_tp,) = get_args(tp)
        return [_coerce(v, item_tp, f"{where}[{i}]", errors) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            errors.append(f"{where}: expected a mapping, got {type(value).__name__}")
            return {}
        _, value_tp = get_args(tp)
        return {str(k): _coerce(v, value_tp, f"{where}.{k}", errors) for k, v in value.items()}
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where, errors)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float) and isinstance(value, bool):
        errors.append(f"{where}: expected {tp.__name__}, got a boolean")
        return None
    if not isinstance(value, tp):
        errors.append(f"{where}: expected {_type_name(tp)}, got {type(value).__name__} "
                      f"{value!r}")
        return None
    return value


def _build(cls: Any, data: Any, where: str, errors: list[str]) -> Any:
    """Build dataclass ``cls`` from a mapping, collecting every problem in ``errors``."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        errors.append(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
        return cls()
    hints = get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    values: dict[str, Any] = {}
    for key, raw in data.items():
        path = f"{where}.{key}" if where else str(key)
        spec = known.get(str(key))
        if spec is None:
            errors.append(f"{path}: unknown key{_suggest(str(key), sorted(known))}")
            continue
        before = len(errors)
        value = _coerce(raw, hints[spec.name], path, errors)
        if len(errors) > before:
            continue
        problem = _check_metadata(value, spec.metadata)
        if problem:
            errors.append(f"{path}: {problem}")
            continue
        values[spec.name] = value
    return cls(**values)


def _check_metadata(value: Any, meta: Mapping[str, Any]) -> str | None:
    low, high = meta.get("min"), meta.get("max")
    if isinstance(value, (int, float)):
        if low is not None and value < low:
            return f"must be ≥ {low}, got {value}"
        if high is not None and value > high:
            return f"must be ≤ {high}, got {value}"
    choices = meta.get("choices")
    if choices and value not in choices:
        return f"must be one of {', '.join(choices)}, got {value!r}"
    return None


def _check_detectors(cfg: DetectorsConfig, errors: list[str]) -> None:
    """Unknown detector ids and parameter names, and parameter values the detector rejects."""
    import detectors.catalog as catalog

    ids = sorted(catalog.DETECTOR_IDS)
    if isinstance(cfg.enabled, str) and cfg.enabled != "all":
        errors.append(f"detectors.enabled: expected 'all' or a list of ids, got {cfg.enabled!r}")
    for det in cfg.enabled_ids or []:
        if det not in ids:
            errors.append(f"detectors.enabled: unknown detector {det!r}{_suggest(det, ids)}")
    known_params = catalog_params()
    for det, params in cfg.params.items():
        if det not in ids:
            errors.append(f"detectors.params.{det}: unknown detector{_suggest(det, ids)}")
            continue
        names = sorted(known_params.get(det, ()))
        for name in params:
            if name not in names:
                errors.append(f"detectors.params.{det}.{name}: unknown parameter"
                              f"{_suggest(name, names) if names else ' (it takes none)'}")
    if errors:
        return
    try:  # parameter values: the detectors' own validation has the last word
        catalog.build_detectors(cfg.params, cfg.enabled_ids)
    except (TypeError, ValueError) as exc:
        errors.append(f"detectors.params: {exc}")


def catalog_params() -> dict[str, dict[str, Any]]:
    """``{detector_id: {param: default}}`` from ``catalog.describe()``."""
    import detectors.catalog as catalog

    out: dict[str, dict[str, Any]] = {}
    for entry in catalog.describe():
        params = entry.get("params") or {}
        if isinstance(params, list):  # [{"name":..., "default":...}, ...]
            params = {p["name"]: p.get("default") for p in params}
        out[entry["id"]] = dict(params)
    return out


def config_from_dict(data: Mapping[str, Any] | None, source: str = "<dict>",
                     env: Mapping[str, str] | None = None,
                     check_detectors: bool = True) -> Config:
    """Validate ``data`` (the parsed YAML) into a :class:`Config`; raise with every problem."""
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v
                              for k, v in (data or {}).items()}
    for var, (section, key) in ENV_OVERRIDES.items():
        value = (env if env is not None else os.environ).get(var)
        if value:
            if not isinstance(merged.get(section, {}), Mapping):
                continue  # reported by _build
            merged.setdefault(section, {})[key] = value
    errors: list[str] = []
    cfg: Config = _build(Config, merged, "", errors)
    if not errors and check_detectors:
        _check_detectors(cfg.detectors, errors)
    if errors:
        raise GraphsentryError(f"invalid configuration {source}:\n  - " + "\n  - ".join(errors))
    return dataclasses.replace(cfg, source=source)


def load_config(path: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None) -> Config:
    """Load ``path`` (or ``$GRAPHSENTRY_CONFIG``, or the defaults) and validate it."""
    environ = env if env is not None else os.environ
    chosen = path or environ.get(ENV_CONFIG) or None
    if chosen is None:
        return config_from_dict({}, "<defaults>", environ)
    file = Path(chosen)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise GraphsentryError(f"cannot read configuration {file}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise GraphsentryError(f"configuration {file} is not valid YAML: {exc}") from exc
    if data is not None and not isinstance(data, Mapping):
        raise GraphsentryError(f"configuration {file}: expected a mapping at the top level")
    return config_from_dict(data, str(file), environ)


def defaults_table() -> list[tuple[str, str, str]]:
    """(path, default, doc) for every setting, for ``docs/configuration.md``."""
    rows: list[tuple[str, str, str]] = []

    def walk(cls: Any, prefix: str) -> None:
        hints = get_type_hints(cls)
        docs = _attribute_docs(cls)
        for f in dataclasses.fields(cls):
            if f.metadata.get("internal"):
                continue
            factory: Any = f.default_factory
            default = f.default if f.default is not dataclasses.MISSING else factory()
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], f"{prefix}{f.name}.")
                continue
            rows.append((f"{prefix}{f.name}", yaml.safe_dump(default, default_flow_style=True)
                         .strip().removesuffix("...").strip(), docs.get(f.name, "")))

    walk(Config, "")
    return rows


def _attribute_docs(cls: Any) -> dict[str, str]:
    """Attribute docstrings (the string literal right after a field) of a dataclass."""
    import ast
    import inspect

    try:
        tree = ast.parse(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, nxt in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


DOC_BEGIN = "<!-- generated by `python -m graphsentry.config docs/configuration.md`: begin -->"
DOC_END = "<!-- generated: end -->"


def reference_markdown() -> str:
    """The settings and detector-parameter tables of ``docs/configuration.md``."""
    def cell(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["### Settings", "", "| setting | default | meaning |", "|---|---|---|"]
    lines += [f"| `{path}` | `{cell(default)}` | {cell(doc)} |"
              for path, default, doc in defaults_table()]
    lines += ["", "### Detector parameters (`detectors.params.<id>.<name>`)", "",
              "| detector | stage | severity | parameter | default | meaning |",
              "|---|---|---|---|---|---|"]
    from detectors import catalog

    for entry in catalog.describe():
        for param in entry["params"]:
            lines.append(f"| `{entry['id']}` | {entry['stage'] or '-'} | {entry['severity']} | "
                         f"`{param['name']}` | `{cell(param['default'])}` | "
                         f"{cell(param['doc'])} |")
    return "\n".join(lines) + "\n"


def update_doc(text: str) -> str:
    """``text`` with the generated section replaced by the current tables."""
    head, found, rest = text.partition(DOC_BEGIN)
    if not found:
        raise ValueError(f"marker {DOC_BEGIN!r} not found")
    _, found, tail = rest.partition(DOC_END)
    if not found:
        raise ValueError(f"marker {DOC_END!r} not found")
    return f"{head}{DOC_BEGIN}\n{reference_markdown()}{DOC_END}{tail}"


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/configuration.md")
    target.write_text(update_doc(target.read_text(encoding="utf-8")), encoding="utf-8")
