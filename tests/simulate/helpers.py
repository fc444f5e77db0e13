"""Readers over simulated raw records, for the simulator tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from graphsentry.simulate import Simulation
from graphsentry.simulate.labels import ScenarioLabel

Record = dict[str, Any]


def props(record: Record) -> dict[str, Any]:
    result: dict[str, Any] = record["properties"]
    return result


def principal_of(record: Record) -> str:
    p = props(record)
    return str(p.get("userId") or p.get("servicePrincipalId") or "")


def epoch(text: str) -> float:
    return datetime.fromisoformat(text[:26] + "+00:00").timestamp()


def path_of(record: Record) -> str:
    return urlsplit(str(props(record)["requestUri"])).path


def label(sim: Simulation, name: str) -> ScenarioLabel:
    return next(item for item in sim.labels if item.name == name)


def principal_records(sim: Simulation, app_id: str, principal_id: str) -> list[tuple[float,
                                                                                  Record]]:
    return [(ts, r) for ts, r in sim.records
            if props(r)["appId"] == app_id and principal_of(r) == principal_id]


def scenario_records(sim: Simulation, name: str) -> list[Record]:
    """The labeled principal's records inside the scenario's [start, end]."""
    item = label(sim, name)
    start, end = epoch(item.start), epoch(item.end)
    return [r for ts, r in principal_records(sim, item.app_id, item.principal_id)
            if start - 1e-6 <= ts <= end + 1e-6]
