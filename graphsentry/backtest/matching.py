"""Labels (the simulator's ``<out>.labels.json``) and the rule that matches alerts to scenarios.

An alert matches a scenario when tenant, app and principal are the scenario's and the alert's
activity span ``[first_seen, last_seen]`` overlaps ``[start - 10 min, end + 2 h]`` (the slack
covers detectors that need a little history before the scenario, and late or windowed firing
after it). Every alert gets one outcome:

- ``tp``: matches an ``attack`` scenario;
- ``benign``: on the principal of a ``benign`` scenario (any time): a false positive;
- ``outside``: on an attack scenario's principal but outside its slack: a false positive;
- ``unlabeled``: on a principal in no scenario: reported, and counted as a false positive.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from graphsentry.errors import GraphsentryError

MATCH_BEFORE = timedelta(minutes=10)
MATCH_AFTER = timedelta(hours=2)
KINDS = ("attack", "benign")
OUTCOMES = ("tp", "benign", "outside", "unlabeled")


def to_epoch(value: Any) -> float:
    """Seconds since the epoch from a datetime, an ISO-8601 string or a number (s, ms or µs)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.timestamp()
    if isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if abs(number) > 1e14:  # Avro timestamp-micros
            return number / 1e6
        if abs(number) > 1e11:  # milliseconds
            return number / 1e3
        return number
    raise ValueError(f"not a time: {value!r}")


def principal_key(tenant_id: str, app_id: str, principal_id: str) -> tuple[str, str, str]:
    return (tenant_id, app_id, principal_id)


def alert_key(alert: Mapping[str, Any]) -> tuple[str, str, str]:
    return principal_key(str(alert.get("tenant_id")), str(alert.get("app_id")),
                         str(alert.get("principal_id")))


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    kind: str
    tenant_id: str
    app_id: str
    principal_id: str
    identity_type: str
    start: float
    end: float
    stages: tuple[str, ...] = ()
    expected_detectors: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        return principal_key(self.tenant_id, self.app_id, self.principal_id)

    @property
    def is_attack(self) -> bool:
        return self.kind == "attack"

    def overlaps(self, first: float, last: float) -> bool:
        """Whether an activity span overlaps the scenario widened by the matching slack."""
        return (first <= self.end + MATCH_AFTER.total_seconds()
                and last >= self.start - MATCH_BEFORE.total_seconds())


@dataclass(frozen=True, slots=True)
class Labels:
    seed: Any
    tenant_id: str | None
    scenarios: tuple[Scenario, ...]

    @property
    def attacks(self) -> tuple[Scenario, ...]:
        return tuple(s for s in self.scenarios if s.is_attack)

    @property
    def benign(self) -> tuple[Scenario, ...]:
        return tuple(s for s in self.scenarios if not s.is_attack)


def _scenario(raw: Any, index: int) -> Scenario:
    if not isinstance(raw, dict):
        raise GraphsentryError(f"labels: scenario #{index} is not an object")
    where = f"labels: scenario #{index} ({raw.get('name', '?')})"
    missing = [k for k in ("name", "kind", "tenant_id", "app_id", "principal_id", "start", "end")
               if raw.get(k) in (None, "")]
    if missing:
        raise GraphsentryError(f"{where}: missing {', '.join(missing)}")
    if raw["kind"] not in KINDS:
        raise GraphsentryError(f"{where}: kind must be attack or benign, not {raw['kind']!r}")
    try:
        start, end = to_epoch(raw["start"]), to_epoch(raw["end"])
    except ValueError as exc:
        raise GraphsentryError(f"{where}: {exc}") from None
    if end < start:
        raise GraphsentryError(f"{where}: end is before start")
    return Scenario(
        name=str(raw["name"]), kind=str(raw["kind"]), tenant_id=str(raw["tenant_id"]),
        app_id=str(raw["app_id"]), principal_id=str(raw["principal_id"]),
        identity_type=str(raw.get("identity_type") or "unknown"), start=start, end=end,
        stages=tuple(str(s) for s in raw.get("stages") or ()),
        expected_detectors=tuple(str(d) for d in raw.get("expected_detectors") or ()),
    )


def parse_labels(data: Any) -> Labels:
    """Validate the parsed labels JSON; a :class:`GraphsentryError` says what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("scenarios"), list):
        raise GraphsentryError("labels: expected an object with a 'scenarios' list")
    scenarios = tuple(_scenario(raw, i) for i, raw in enumerate(data["scenarios"]))
    return Labels(seed=data.get("seed"), tenant_id=data.get("tenant_id"), scenarios=scenarios)


def load_labels(path: str | Path) -> Labels:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise GraphsentryError(f"cannot read labels {path}: {exc.strerror}") from None
    try:
        return parse_labels(json.loads(text))
    except json.JSONDecodeError as exc:
        raise GraphsentryError(f"labels {path} is not JSON: {exc}") from None


@dataclass(slots=True)
class MatchedAlert:
    """An alert, its outcome and (for ``tp`` and ``outside``) the scenario it belongs to."""

    alert: Mapping[str, Any]
    outcome: str
    scenario: Scenario | None = None

    @property
    def detector(self) -> str:
        return str(self.alert.get("detector", "?"))

    @property
    def first_seen(self) -> float:
        return to_epoch(self.alert.get("first_seen") or self.alert.get("window_start"))

    @property
    def last_seen(self) -> float:
        return to_epoch(self.alert.get("last_seen") or self.alert.get("window_end"))


@dataclass(slots=True)
class ScenarioIndex:
    """Scenarios by principal, for matching many alerts."""

    labels: Labels
    by_principal: dict[tuple[str, str, str], list[Scenario]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for scenario in self.labels.scenarios:
            self.by_principal.setdefault(scenario.key, []).append(scenario)

    def match(self, alert: Mapping[str, Any]) -> MatchedAlert:
        scenarios = self.by_principal.get(alert_key(alert), [])
        matched = MatchedAlert(alert, "unlabeled")
        if not scenarios:
            return matched
        first, last = matched.first_seen, matched.last_seen
        attacks = [s for s in scenarios if s.is_attack]
        # The closest-starting overlapping attack wins when one principal has several.
        hits = sorted((s for s in attacks if s.overlaps(first, last)),
                      key=lambda s: abs(s.start - first))
        if hits:
            return MatchedAlert(alert, "tp", hits[0])
        if any(not s.is_attack for s in scenarios):
            return MatchedAlert(alert, "benign", next(s for s in scenarios if not s.is_attack))
        return MatchedAlert(alert, "outside", min(attacks, key=lambda s: abs(s.start - first)))


def match_alerts(alerts: Iterable[Mapping[str, Any]], labels: Labels) -> list[MatchedAlert]:
    index = ScenarioIndex(labels)
    return [index.match(alert) for alert in alerts]
