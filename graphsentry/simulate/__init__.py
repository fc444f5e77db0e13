"""Tenant simulator: benign Graph traffic plus labeled attack scenarios, as raw Event Hub JSON.

``simulate(SimulationConfig(...))`` is deterministic: every part draws from its own
``random.Random`` derived from the seed and the part's name, so the same arguments give
byte-identical output, and adding a scenario leaves the benign traffic unchanged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from graphsentry.simulate.clock import make_days
from graphsentry.simulate.daemons import daemons_traffic
from graphsentry.simulate.labels import ScenarioLabel, label_for, labels_document
from graphsentry.simulate.records import RecordBuilder, Request, format_ticks
from graphsentry.simulate.scenarios import SCENARIOS, select
from graphsentry.simulate.tenant import Tenant, build_tenant
from graphsentry.simulate.traffic import users_traffic
from graphsentry.simulate.writer import DeliveryOptions, DeliveryStats, Message, plan_delivery

DEFAULT_START = date(2026, 11, 2)
MAX_USERS = 5000
MAX_DAYS = 60


@dataclass(frozen=True)
class SimulationConfig:
    seed: int = 7
    users: int = 40
    days: int = 2
    start: date = DEFAULT_START
    scenarios: tuple[str, ...] = ("all",)
    delivery: DeliveryOptions = field(default_factory=DeliveryOptions)

    def validate(self) -> None:
        if not 20 <= self.users <= MAX_USERS:
            raise ValueError(f"users must be between 20 and {MAX_USERS}, got {self.users}")
        if not 1 <= self.days <= MAX_DAYS:
            raise ValueError(f"days must be between 1 and {MAX_DAYS}, got {self.days}")
        select(list(self.scenarios))
        self.delivery.validate()


@dataclass
class Simulation:
    config: SimulationConfig
    tenant: Tenant
    records: list[tuple[float, dict[str, Any]]]  # (event time, raw record), event-time order
    messages: list[Message]
    stats: DeliveryStats
    labels: list[ScenarioLabel]

    @property
    def span(self) -> tuple[str, str]:
        return format_ticks(self.records[0][0]), format_ticks(self.records[-1][0])

    def labels_document(self) -> dict[str, Any]:
        first, last = self.span
        run = {"start": first, "end": last, "days": self.config.days, "users": self.config.users,
               "records": self.stats.records, "messages": self.stats.messages,
               "late": self.stats.late, "duplicates": self.stats.duplicates}
        return labels_document(self.config.seed, self.tenant.tenant_id, self.labels, run)


def simulate(config: SimulationConfig) -> Simulation:
    config.validate()

    def rng(part: str) -> random.Random:
        return random.Random(f"{config.seed}:{part}")

    tenant = build_tenant(rng("tenant"), config.users)
    days = make_days(config.start, config.days)
    parts: list[tuple[str, list[Request]]] = [
        ("users", users_traffic(rng("users"), tenant, days)),
        ("daemons", daemons_traffic(rng("daemons"), tenant, days)),
    ]
    labels: list[ScenarioLabel] = []
    for scenario in select(list(config.scenarios)):
        caller, requests = scenario.generate(rng(f"scenario:{scenario.name}"), tenant, days[-1])
        labels.append(label_for(scenario, tenant.tenant_id, caller, requests))
        parts.append((scenario.name, requests))
    records: list[tuple[float, dict[str, Any]]] = []
    for name, requests in parts:
        builder = RecordBuilder(tenant, rng(f"build:{name}"))
        records += [(req.ts, builder.build(req)) for req in requests]
    records.sort(key=lambda item: item[0])
    messages, stats = plan_delivery(records, rng("delivery"), config.delivery)
    return Simulation(config, tenant, records, messages, stats, labels)


SCENARIO_NAMES = tuple(scenario.name for scenario in SCENARIOS)

__all__ = ["DEFAULT_START", "SCENARIO_NAMES", "DeliveryOptions", "Simulation",
           "SimulationConfig", "simulate"]
