"""Ground-truth labels for a simulated run (the ``--labels`` JSON file).

``principal_id`` is what the normalizer derives: the service principal id for app-only calls,
the user id for delegated ones; ``start``/``end`` bound the scenario's records in event time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from graphsentry.simulate.records import Caller, Request, format_ticks
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
