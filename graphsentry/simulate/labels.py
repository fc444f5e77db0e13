"""Ground-truth labels for a simulated run (the ``--labels`` JSON file).

``principal_id`` is what the normalizer derives: the service principal id for app-only calls,
the user id for delegated ones; ``start``/``end`` bound the scenario's records in event time.
``expected_detectors`` are the detectors expected to produce *signals* on an attack (today's
ids, and ``app_permission_granted``, ``owner_added``, ``chat_collection`` planned in issue 12).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from graphsentry.simulate.records import GRAPH_LOG, Caller, Request, format_ticks
from graphsentry.simulate.scenarios import Scenario


@dataclass(frozen=True)
class ScenarioLabel:
    name: str
    kind: str
    tenant_id: str
    app_id: str
    principal_id: str
    identity_type: str
    stages: list[str]
    start: str
    end: str
    expected_detectors: list[str]
    records: int
    description: str
    techniques: list[str] = field(default_factory=list)
    """ATT&CK technique ids of an attack."""
    looks_like: list[str] = field(default_factory=list)
    """For a benign look-alike: the detectors (today's or planned) whose evidence it resembles."""
    log: str = GRAPH_LOG
    """The diagnostic log category holding the scenario's records."""
    under_floors: bool = False
    """An attack shaped to stay under the fixed floors of issue 12's time (checked by tests)."""
    prior_runs: int = 0
    """For a recurring benign job: its runs on the days before the last (its own history)."""


def label_for(scenario: Scenario, tenant_id: str, caller: Caller,
              requests: list[Request]) -> ScenarioLabel:
    times = [req.ts for req in requests]
    return ScenarioLabel(
        name=scenario.name, kind=scenario.kind, tenant_id=tenant_id, app_id=caller.app_id,
        principal_id=caller.principal_id, identity_type=caller.identity_type,
        stages=list(scenario.stages), start=format_ticks(min(times)), end=format_ticks(max(times)),
        expected_detectors=list(scenario.expected_detectors), records=len(requests),
        description=scenario.description,
    )


def labels_document(seed: int, tenant_id: str, labels: list[ScenarioLabel],
                    run: dict[str, Any]) -> dict[str, Any]:
    return {"seed": seed, "tenant_id": tenant_id, "run": run,
            "scenarios": [asdict(label) for label in labels]}


def write_labels(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def read_labels(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
