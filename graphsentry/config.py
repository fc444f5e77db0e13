"""graphsentry configuration: pydantic models, one YAML file, environment overrides.

The file is found through ``--config FILE`` or ``$GRAPHSENTRY_CONFIG``; without either the
defaults apply. Environment variables override the file: every setting as
``GRAPHSENTRY_<SECTION>__<KEY>`` (``GRAPHSENTRY_TIME__ALLOWED_LATENESS_SECONDS=3600``), and a few
by a short name declared on the field (``KAFKA_BOOTSTRAP``, ``REDIS_URL``). Files and variables
are validated strictly, and every problem is reported at once with its key path, what was
expected and, for an unknown key, the closest known one (:class:`ConfigError`). Detector ids and
parameters are validated as the detectors' own ``Params`` dataclasses (``detectors.catalog``).

Adding a setting: declare it once, in its section, with its type, default, range and an
attribute docstring (its documentation)::

    class MetricsConfig(Section):
        \"\"\"Prometheus metrics and health endpoints.\"\"\"

        port: int | None = Field(default=9464, ge=1, le=65_535)
        \"\"\"Port of /metrics, /ready and /live (null: no endpoint).\"\"\"

and a section once more in :class:`Config` (``metrics: MetricsConfig = MetricsConfig()``). Then
``graphsentry config docs`` regenerates docs/configuration.md and
config/graphsentry.example.yaml (tests fail while they are stale).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PrivateAttr,
    ValidationError,
    WithJsonSchema,
    create_model,
)
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from detectors.catalog import DETECTOR_IDS
from graphsentry.config_loading import (
    ENV_PREFIX,
    ConfigProblems,
    env_overrides,
    merge,
    problems,
    suggest,
    validate_data,
)
from graphsentry.errors import GraphsentryError

ENV_CONFIG = "GRAPHSENTRY_CONFIG"
__all__ = ["ENV_CONFIG", "ENV_PREFIX", "Config", "ConfigError", "Section", "config_from_dict",
           "load_config", "masked"]


class ConfigError(GraphsentryError):
    """An invalid configuration: ``problems`` holds one line per problem
    (``kafka.topcs: unknown key (did you mean 'topics'?)``), ``source`` the file."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"invalid configuration {source}:\n  - " + "\n  - ".join(problems))
        self.source = source
        self.problems = problems


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True,
                              allow_inf_nan=False)

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        return [(name, masked(value, name or "")) for name, value in super().__repr_args__()]


class Section(_Model):
    """Base of a configuration section: unknown keys are errors, instances are immutable, each
    field's attribute docstring is its documentation."""

    key_noun: ClassVar[str] = "key"

    def replace(self, **changes: Any) -> Self:
        """A validated copy with ``changes``; raises :class:`ConfigError`."""
        copy: Self = _revalidate(self, changes, ())
        return copy


def _revalidate(model: Any, changes: Mapping[str, Any], where: tuple[str, ...],
                source: str = "<replace>") -> Any:
    try:
        return type(model).model_validate({**dict(model), **changes})
    except ValidationError as exc:
        raise ConfigError(source, problems(exc, type(model), prefix=where)) from None


# -- detectors: ids and parameters from the catalog ---------------------------------------------

def _known_detector(value: str) -> str:
    if value not in DETECTOR_IDS:
        raise PydanticCustomError("unknown_detector", "unknown detector '{detector}'{hint}",
                                  {"detector": value, "hint": suggest(value, DETECTOR_IDS)})
    return value


DetectorId = Annotated[str, AfterValidator(_known_detector),
                       WithJsonSchema({"type": "string", "title": "detector id",
                                       "enum": list(DETECTOR_IDS)})]


class _DetectorParamsBase(_Model):
    key_noun: ClassVar[str] = "detector"


@cache
def detector_params_model() -> type[BaseModel]:
    """A model with one optional field per detector, typed as its ``Params`` dataclass: the
    parameters' names, types, defaults and docs (attribute docstrings) come from the detectors,
    and their ``__post_init__`` checks the values."""
    import detectors.catalog as catalog

    fields: dict[str, Any] = {}
    for detector_id in catalog.DETECTOR_IDS:
        meta = catalog.meta_of(detector_id)
        fields[detector_id] = (catalog.params_class(detector_id) | None, Field(
            default=None, description=meta.title,
            json_schema_extra={"x-stage": meta.stage, "x-severity": meta.severity}))
    return create_model("DetectorParams", __base__=_DetectorParamsBase, **fields)


def _overrides(model: BaseModel) -> dict[str, dict[str, Any]]:
    return {detector_id: {name: getattr(params, name) for name in params.__dataclass_fields__}
            for detector_id in type(model).model_fields  # catalog order
            if detector_id in model.model_fields_set
            and (params := getattr(model, detector_id)) is not None}


class CatalogParams:
    """Marks ``detectors.params``: validated as :func:`detector_params_model`, kept as the
    ``{detector_id: {param: value}}`` mapping that ``detectors.catalog.build_detectors`` takes
    (every parameter of a configured detector, defaults included)."""

    def validated_as(self) -> type[BaseModel]:
        return detector_params_model()

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(
            _overrides, handler.generate_schema(self.validated_as()),
            serialization=core_schema.plain_serializer_function_ser_schema(dict))


# -- the sections --------------------------------------------------------------------------------

TopicName = Annotated[str, Field(min_length=1)]


class Topics(Section):
    """Kafka topic names."""

    raw: TopicName = "graph.activity.raw"
    """Raw Graph activity JSON (Event Hub export) read by the bridge."""
    activity: TopicName = "graph.activity.v1"
    """Normalized Avro records (key tenant/principal): the detection input."""
    dlq: TopicName = "graph.activity.dlq.v1"
    """Dead letters: JSON {reason, raw, source, at} for input that could not be decoded."""
    signals: TopicName | None = "graph.signals.v1"
    """Every detector signal as Avro (schemas/graph_signal.avsc), key signal_id (null: none)."""
    alerts: TopicName = "graph.alerts.v1"
    """Alerts as Avro (schemas/graph_alert.avsc), key alert_id; log-compacted: every update of
    an alert has the same key, and the latest revision survives compaction."""
    alerts_json: TopicName | None = "graph.alerts.json.v1"
    """The same alerts as JSON (null: none)."""
    alerts_ocsf: TopicName | None = None
    """The same alerts as OCSF 1.8.0 Detection Findings (class 2004, JSON, key alert_id, one per
    alert version; log-compact it like `alerts`), mapped as docs/wire-format.md says (null:
    none)."""
    late: TopicName | None = "graph.activity.late.v1"
    """Events that arrived later than the allowed lateness, as JSON (null: counted only)."""


LibrdkafkaSettings = dict[str, str | int | float | bool]
EVENT_HUBS_EXAMPLE = {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
                      "sasl.username": "$ConnectionString",
                      "sasl.password": "Endpoint=sb://NAMESPACE.servicebus.windows.net/;"
                                       "SharedAccessKeyName=...;SharedAccessKey=..."}


class KafkaConfig(Section):
    """The broker, topic names and extra librdkafka settings. For Azure Event Hubs' Kafka
    endpoint put `security.protocol: SASL_SSL`, `sasl.mechanism: PLAIN`,
    `sasl.username: $ConnectionString` and `sasl.password: <connection string>` under `consumer`
    (and `producer`); the password can come from the environment
    (`GRAPHSENTRY_KAFKA__CONSUMER='{sasl.password: ...}'`, merged into the file's settings)."""

    bootstrap: str = Field(default="127.0.0.1:9092", min_length=1,
                           json_schema_extra={"x-env": "KAFKA_BOOTSTRAP"})
    """Kafka bootstrap servers, comma separated."""
    topics: Topics = Topics()
    tail: bool = True
    """False: stop at the end of the topic (what `graphsentry run --bounded` sets)."""
    start: Literal["beginning", "end"] = "beginning"
    """Where to start without recovery state."""
    consumer: LibrdkafkaSettings = Field(default={}, examples=[EVENT_HUBS_EXAMPLE])
    """Extra librdkafka consumer settings (e.g. SASL_SSL for Event Hubs)."""
    producer: LibrdkafkaSettings = {}
    """Extra librdkafka producer settings."""


REDIS_SCHEMES = ("redis", "rediss", "unix")


def _redis_url(value: str | None) -> str | None:
    """A URL redis-py can connect with: scheme ``redis://``, ``rediss://`` (TLS) or ``unix://``
    and, when given, a numeric port. The error never quotes the URL (it may hold a password)."""
    if value is None:
        return value
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
    except ValueError:
        raise PydanticCustomError("redis_url", "not a valid URL (check the host and port)"
                                  ) from None
    if parts.scheme.lower() not in REDIS_SCHEMES or "://" not in value:
        got = f", got scheme '{parts.scheme}'" if parts.scheme and "://" in value else ""
        raise PydanticCustomError(
            "redis_url", "must be a redis://, rediss:// or unix:// URL{got}", {"got": got})
    return value


RedisUrl = Annotated[str | None, AfterValidator(_redis_url)]


class RedisConfig(Section):
    """Enrichment (app directory, IP ranges), the profiles of principals that left worker state,
    and exceptions; see [detection.md](detection.md#enrichment). `url: null` runs without Redis
    (in-process store; nothing persisted, idle principals stay in worker state)."""

    url: RedisUrl = Field(default="redis://127.0.0.1:6379/0",
                            json_schema_extra={"x-env": "REDIS_URL"})
    """Redis URL, `redis://[:password@]host:port/db` (`rediss://` for TLS, `unix:///path` for a
    socket; null: no Redis, an in-process store; embedded mode uses one regardless)."""
    key_prefix: str = "graphsentry:"
    """Prefix of every Redis key graphsentry reads or writes."""
    cache_ttl_seconds: float = Field(default=300.0, ge=0, le=86_400)
    """How long app and IP lookups are cached in each process (0: no cache)."""
    cache_size: int = Field(default=100_000, ge=0)
    """Entries of that cache (LRU)."""
    socket_timeout_seconds: float = Field(default=0.5, ge=0.01, le=60)
    """Connect and read timeout: how long a lookup may wait for an unresponsive Redis."""
    retry_seconds: float = Field(default=5.0, ge=0.1, le=3600)
    """Back-off before trying an unreachable Redis again."""
    history_ttl_days: float = Field(default=30.0, ge=0.01, le=3650)
    """Stored principal profiles expire after this many days without an update."""


class TimeConfig(Section):
    """Event time. Graph activity logs arrive up to ~2 h late; events older than the newest event
    of their principal minus `allowed_lateness_seconds` are counted as late and go to
    `kafka.topics.late` when it is set; only single-event detectors still examine them."""

    allowed_lateness_seconds: float = Field(default=7200.0, ge=0, le=7 * 86_400)
    """Events older than the newest event of their principal minus this are late: counted, seen
    by single-event detectors only, not learned."""
    expected_delivery_lag_seconds: float = Field(default=1800.0, ge=0, le=86_400)
    """Typical delay between an event and its arrival (for operators; detection uses the
    lateness)."""
    max_future_skew_seconds: float = Field(default=900.0, ge=0, le=3600)
    """Records dated more than this ahead of the wall clock are rejected (`future_timestamp`)
    by the bridge, `graphsentry detect` and the detection flow (a far-future time would move
    a principal's clock); keep it below the topics' `message.timestamp.after.max.ms` (Kafka
    4: 1 h)."""


class StateConfig(Section):
    """Worker state per principal: duplicate suppression, and when idle principals leave it (their
    profile goes to Redis and comes back with their next event)."""

    seen_capacity: int = Field(default=200_000, ge=1)
    """Request ids remembered per principal for duplicate suppression (within the lateness)."""
    idle_eviction_seconds: float = Field(default=52 * 3600.0, ge=600, le=30 * 86_400)
    """Event-time seconds a principal may stay idle (by its process's newest event) before it
    leaves worker state: its windows close and its profile goes to Redis, to come back with
    its next event. At least the allowed lateness + the longest detector window +
    `alerts.horizon_seconds` + 30 min (checked at start), so that no result changes."""
    eviction_check_seconds: float = Field(default=30.0, ge=1, le=3600)
    """Wall-clock seconds between a key's idle checks."""


class LearningConfig(Section):
    """The learning period: until a principal is established its signals carry `learning` and
    `alerts.risk.learning_factor` of their risk (signals, not alerts, unless high-fidelity or
    corroborated). `graphsentry warm` learns profiles from history for a new deployment."""

    min_days: int = Field(default=3, ge=0, le=14)
    """Days with activity (of the profile's last 14) before a principal is established."""
    min_age_seconds: float = Field(default=2 * 86_400.0, ge=0, le=30 * 86_400)
    """Time since the principal was first seen before it is established."""


class RiskConfig(Section):
    """How a signal's risk score (1-100) is made from its severity, fidelity and context; see
    [detection.md](detection.md#risk)."""

    new_network: float = 20.0
    """Points when the signal's events came from a network new to the principal."""
    new_client: float = 10.0
    """Points for a client app (or, app-only, a user agent) new to the principal."""
    unusual_hour: float = 10.0
    """Points when the window started at a time of day the principal is not active at."""
    familiar: float = -20.0
    """Points when an established principal acted from known networks and clients only (as
    strong against token theft as a new network is for it)."""
    privileged_high: float = 5.0
    """Points for a token with high-tier permissions (`detectors.microsoft`)."""
    privileged_critical: float = 15.0
    """Points for a token with critical-tier permissions (can grant itself more)."""
    first_party_app_only: float = -10.0
    """Points for a Microsoft first-party application acting app-only."""
    learning_factor: float = Field(default=0.5, ge=0, le=1)
    """Multiplies the risk of a principal in its learning period."""


class AlertsConfig(Section):
    """When signals become alerts and how alerts group and update; see
    [detection.md](detection.md#alerts)."""

    risk_threshold: float = Field(default=100.0, ge=1)
    """A principal's risk over the horizon (sum over attack stages of each stage's highest
    signal risk: risk accumulates across tactics) at or above which a risk alert is raised."""
    min_detectors: int = Field(default=2, ge=1, le=16)
    """A risk alert needs signals of at least this many detectors: repeats of one behaviour
    never make one on their own."""
    min_stages: int = Field(default=3, ge=2, le=8)
    """Distinct attack stages within the horizon that make an incident (`attack_chain`)."""
    horizon_seconds: float = Field(default=86_400.0, ge=600, le=30 * 86_400)
    """Risk and stages accumulate over this trailing horizon; a principal has at most one
    alert per horizon bucket (aligned to the epoch), updated as evidence arrives."""
    promote_fidelity: Literal["high", "medium"] = "high"
    """Signals of this fidelity raise the principal's alert on their own."""
    max_signals_per_principal: int = Field(default=512, ge=16)
    """Signals kept per principal for correlation (the oldest forgotten first)."""
    risk: RiskConfig = RiskConfig()
    exceptions: list[dict[str, Any]] = Field(default=[], examples=[[{
        "reason": "nightly export, ticket CHG-1234", "author": "soc@example.com",
        "app_id": "00000000-0000-0000-0000-000000000001", "detector": "storage_exfiltration",
        "expires": "2026-12-31T00:00:00Z"}]])
    """Exceptions from the configuration, in the fields of `graphsentry exceptions add` (id,
    reason, author, created, expires, starts, detector, app_id, principal_id, network, asn,
    template); times as ISO-8601 or epoch seconds."""


class DetectorsConfig(Section):
    """Which detectors run, and their parameters (the table below)."""

    enabled: Literal["all"] | list[DetectorId] = "all"
    """`all` or a list of detector ids."""
    params: Annotated[dict[str, dict[str, Any]], CatalogParams()] = Field(
        default={}, examples=[{"graph_enumeration": {"min_families": [6, 7, 8]},
                               "storage_exfiltration": {"baseline_multiplier": 4.0}}])
    """Per-detector parameter overrides: `{detector_id: {param: value}}`."""

    @property
    def enabled_ids(self) -> list[str] | None:
        """None for all detectors."""
        return None if self.enabled == "all" else list(self.enabled)


class SuppressConfig(Section):
    """Permanent allow-lists: each entry is an exception without expiry (signals kept and marked,
    never alerts). Apps can also be allow-listed, or have single detectors suppressed, in the app
    directory (`graphsentry enrich load-apps`, fields `allowed` and `suppressedDetectors`)."""

    apps: list[str] = []
    """App ids whose signals are always suppressed."""
    principals: list[str] = []
    """Principal ids whose signals are always suppressed."""


class BytewaxConfig(Section):
    """Source batch size and epoch (snapshot) interval."""

    batch_size: int = Field(default=1000, ge=1, le=1_000_000)
    """Messages per Kafka source batch (and records per batch in embedded mode)."""
    epoch_seconds: float = Field(default=10.0, ge=0.01, le=3600)
    """Bytewax epoch: snapshot interval with recovery."""


class MetricsConfig(Section):
    """Prometheus metrics and the health endpoints `/metrics`, `/ready` and `/live` of
    `graphsentry run`, `bridge` and `replay` (and `python -m bytewax.run
    "dataflows.detect:get_flow()"`); see [operations.md](operations.md)."""

    enabled: bool = False
    """Serve the endpoints (the counts are kept either way; the exit summaries read them)."""
    host: str = Field(default="127.0.0.1", min_length=1)
    """Address to listen on (`0.0.0.0` in a container, so that Prometheus can reach it)."""
    port: int = Field(default=9464, ge=0, le=65_535)
    """Port of the first process; process N of `--processes` listens on `port + N` (0: any free
    port, announced on stderr)."""
    liveness_timeout_seconds: float = Field(default=120.0, ge=1, le=86_400)
    """`/live` fails when the dataflow made no progress (no input poll, no delivery wait) for this
    long."""


class Config(_Model):
    """The whole configuration: one field per section."""

    kafka: KafkaConfig = KafkaConfig()
    redis: RedisConfig = RedisConfig()
    time: TimeConfig = TimeConfig()
    state: StateConfig = StateConfig()
    learning: LearningConfig = LearningConfig()
    detectors: DetectorsConfig = DetectorsConfig()
    alerts: AlertsConfig = AlertsConfig()
    suppress: SuppressConfig = SuppressConfig()
    bytewax: BytewaxConfig = BytewaxConfig()
    metrics: MetricsConfig = MetricsConfig()

    _source: str = PrivateAttr("<defaults>")

    @property
    def source(self) -> str:
        """Where the configuration came from (a file path, ``<defaults>`` or ``<dict>``)."""
        return self._source

    def replace(self, section: str, **changes: Any) -> Config:
        """A validated copy with fields of one section changed:
        ``cfg.replace("kafka", tail=False)``, ``cfg.replace("kafka.topics", alerts="x")``.
        Raises :class:`ConfigError`."""
        path = tuple(section.split("."))
        parts: list[Any] = [self]
        for name in path:
            if name not in type(parts[-1]).model_fields:
                raise ConfigError(self.source, [f"{section}: unknown section"])
            parts.append(getattr(parts[-1], name))
        updated = _revalidate(parts[-1], changes, path, self.source)
        for parent, name in zip(reversed(parts[:-1]), reversed(path), strict=True):
            updated = parent.model_copy(update={name: updated})
        return updated  # type: ignore[no-any-return]


# -- loading -------------------------------------------------------------------------------------

def config_from_dict(data: Mapping[str, Any] | None, source: str = "<dict>",
                     env: Mapping[str, str] | None = None) -> Config:
    """Validate ``data`` (the parsed YAML) with the environment's overrides (``env``, default
    ``os.environ``; ``{}`` for none) into a :class:`Config`; raise :class:`ConfigError` with
    every problem."""
    overrides, origins, found = env_overrides(Config, os.environ if env is None else env)
    try:
        cfg = validate_data(Config, merge(data, overrides), origins)
    except ConfigProblems as exc:
        raise ConfigError(source, [*exc.problems, *found]) from None
    if found:
        raise ConfigError(source, found)
    cfg._source = source
    return cfg


def load_config(path: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None) -> Config:
    """Load ``path`` (or ``$GRAPHSENTRY_CONFIG``, or the defaults) and validate it with the
    environment's overrides (``env``, default ``os.environ``; ``{}`` for none)."""
    environ = os.environ if env is None else env
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


# -- secrets -------------------------------------------------------------------------------------

MASK = "***"
SECRET_KEY = re.compile(r"password|secret|token|credential|jaas|private|\.pem$|"
                        r"oauthbearer\.config|sharedaccesskey", re.IGNORECASE)
_SECRET_PART = re.compile(r"((?:SharedAccessKey|AccountKey|Password|pwd)=)[^;]*", re.IGNORECASE)


def masked(value: Any, key: str = "") -> Any:
    """``value`` with secrets replaced by ``***``: values of secret-like keys (librdkafka's
    ``sasl.password``, ``ssl.key.password``, ...), passwords in URLs
    (``redis://:***@host``) and keys in connection strings (``SharedAccessKey=***``)."""
    if isinstance(value, BaseModel):
        return value  # its own repr masks
    if isinstance(value, Mapping):
        return {k: masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(masked(v, key) for v in value)
    if not isinstance(value, str) or not value:
        return value
    if SECRET_KEY.search(key):
        return MASK
    if "@" in value and "://" in value:
        try:
            parts = urlsplit(value)
        except ValueError:
            return MASK
        if parts.password is not None:
            host = parts.netloc.rpartition("@")[2]
            user = parts.username or ""
            return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))
    return _SECRET_PART.sub(rf"\g<1>{MASK}", value)
