"""Labels (the simulator's ``<out>.labels.json``) and the rule that matches findings to them.

A finding (an alert or a signal) belongs to a scenario's principal when tenant and principal
are the scenario's: a delegated user is one person across apps, so the app is not compared.
It is *within* an attack when its activity span ``[first_seen, last_seen]`` overlaps
``[start, end + latency]``: the attack's own records, plus the time a detector may take to
conclude (``DEFAULT_LATENCY``, the engine's 2 h allowed lateness). There is no slack before the
start and no excuse for any other time. Every alert gets one outcome:

- ``tp``: within an ``attack`` scenario;
- ``benign``: on the principal of a ``benign`` scenario, at any time: a false positive;
- ``outside``: on an attack scenario's principal, not within it: a false positive;
- ``unlabeled``: on a principal in no scenario (every such principal is benign in simulated
  data): a false positive.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphsentry.backtest.streams import Finding, latest_alerts, to_epoch
from graphsentry.errors import GraphsentryError

DEFAULT_LATENCY = 2 * 3600.0
KINDS = ("attack", "benign")
OUTCOMES = ("tp", "benign", "outside", "unlabeled")

__all__ = ["DEFAULT_LATENCY", "Labels", "MatchedAlert", "Scenario", "ScenarioIndex",
           "load_labels", "match_alerts", "match_findings", "parse_labels", "to_epoch"]


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
    looks_like: tuple[str, ...] = ()
    description: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.tenant_id, self.principal_id)

    @property
    def is_attack(self) -> bool:
        return self.kind == "attack"

    def covers(self, first: float, last: float, latency: float = DEFAULT_LATENCY) -> bool:
        """Whether an activity span overlaps ``[start, end + latency]``."""
        return first <= self.end + latency and last >= self.start


@dataclass(frozen=True, slots=True)
class Labels:
    seed: Any
    tenant_id: str | None
    scenarios: tuple[Scenario, ...]
    principal_days: int | None = None
    """Distinct (tenant, principal, UTC day) pairs of the run, when the simulator counted them."""

    @property
    def attacks(self) -> tuple[Scenario, ...]:
        return tuple(s for s in self.scenarios if s.is_attack)

    @property
    def benign(self) -> tuple[Scenario, ...]:
        return tuple(s for s in self.scenarios if not s.is_attack)


def _strings(raw: dict[str, Any], name: str) -> tuple[str, ...]:
    return tuple(str(item) for item in raw.get(name) or ())


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
        stages=_strings(raw, "stages"), expected_detectors=_strings(raw, "expected_detectors"),
        looks_like=_strings(raw, "looks_like"), description=str(raw.get("description") or ""),
    )


def parse_labels(data: Any) -> Labels:
    """Validate the parsed labels JSON; a :class:`GraphsentryError` says what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("scenarios"), list):
        raise GraphsentryError("labels: expected an object with a 'scenarios' list")
    scenarios = tuple(_scenario(raw, i) for i, raw in enumerate(data["scenarios"]))
    run = data.get("run")
    days = run.get("principal_days") if isinstance(run, dict) else None
    return Labels(seed=data.get("seed"), tenant_id=data.get("tenant_id"), scenarios=scenarios,
                  principal_days=int(days) if isinstance(days, int) and days > 0 else None)


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
    """A finding (alert or signal), its outcome and the scenario it belongs to, if any."""

    finding: Finding
    outcome: str
    scenario: Scenario | None = None

    @property
    def alert(self) -> Any:
        """The finding's latest record as it arrived (the alert or signal dict)."""
        return self.finding.raw

    @property
    def detector(self) -> str:
        return self.finding.detector

    @property
    def first_seen(self) -> float:
        return self.finding.first_seen

    @property
    def last_seen(self) -> float:
        return self.finding.last_seen


@dataclass(slots=True)
class ScenarioIndex:
    """Scenarios by (tenant, principal), for matching many findings."""

    labels: Labels
    latency: float = DEFAULT_LATENCY
    by_principal: dict[tuple[str, str], list[Scenario]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for scenario in self.labels.scenarios:
            self.by_principal.setdefault(scenario.key, []).append(scenario)

    def match(self, finding: Finding) -> MatchedAlert:
        scenarios = self.by_principal.get(finding.key, [])
        if not scenarios:
            return MatchedAlert(finding, "unlabeled")
        first, last = finding.first_seen, finding.last_seen
        # The closest-starting covering attack wins when one principal has several.
        hits = sorted((s for s in scenarios if s.is_attack and s.covers(first, last,
                                                                        self.latency)),
                      key=lambda s: abs(s.start - first))
        if hits:
            return MatchedAlert(finding, "tp", hits[0])
        benign = [s for s in scenarios if not s.is_attack]
        if benign:
            return MatchedAlert(finding, "benign", min(benign, key=lambda s: abs(s.start - first)))
        return MatchedAlert(finding, "outside", min(scenarios, key=lambda s: abs(s.start - first)))


def match_findings(findings: Iterable[Finding], labels: Labels,
                   latency: float = DEFAULT_LATENCY) -> list[MatchedAlert]:
    index = ScenarioIndex(labels, latency)
    return [index.match(finding) for finding in findings]


def match_alerts(alerts: Iterable[Any], labels: Labels,
                 latency: float = DEFAULT_LATENCY) -> list[MatchedAlert]:
    """Alert dicts (any revisions, either shape) folded to one per id, then matched."""
    return match_findings(latest_alerts(alerts), labels, latency)
