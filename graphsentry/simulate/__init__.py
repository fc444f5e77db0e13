"""Tenant simulator: benign Graph traffic plus labeled attack scenarios, as raw Event Hub JSON.

``simulate(SimulationConfig(...))`` is deterministic: every part draws from its own
``random.Random`` derived from the seed and the part's name, so the same arguments give
byte-identical output, and adding a scenario leaves the benign traffic unchanged.

Two profiles: ``demo`` (the default: a small tenant, warm-up days, then the attack day with
the demo's scenarios) and ``benchmark`` (``graphsentry/simulate/benchmark.py``: a few hundred
users over at least five days, recurring look-alike jobs with history, quiet attacks).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from graphsentry.simulate.bench_tenant import MIN_BENCHMARK_USERS
from graphsentry.simulate.benchmark import BENCH_SCENARIOS, benchmark_requests, select_bench
from graphsentry.simulate.benchmark import MIN_DAYS as MIN_BENCHMARK_DAYS
from graphsentry.simulate.clock import DAY, Day, make_days
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
DEMO_DAYS = 4
"""Demo profile days: three history days (the learning period, `learning.min_days`) and the
attack day; with fewer, principals are still learning and new-origin signals stay quiet."""
PROFILES = ("demo", "benchmark")


@dataclass(frozen=True)
class SimulationConfig:
    seed: int = 7
    users: int = 40
    days: int = DEMO_DAYS
    start: date = DEFAULT_START
    scenarios: tuple[str, ...] = ("all",)
    delivery: DeliveryOptions = field(default_factory=DeliveryOptions)
    profile: str = "demo"

    def validate(self) -> None:
        """Raise ``ValueError`` saying which argument is out of range."""
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, "
                             f"got {self.profile!r}")
        bench = self.profile == "benchmark"
        least_users = MIN_BENCHMARK_USERS if bench else 20
        least_days = MIN_BENCHMARK_DAYS if bench else 1
        if not least_users <= self.users <= MAX_USERS:
            raise ValueError(f"users must be between {least_users} and {MAX_USERS} for the "
                             f"{self.profile} profile, got {self.users}")
        if not least_days <= self.days <= MAX_DAYS:
            raise ValueError(f"days must be between {least_days} and {MAX_DAYS} for the "
                             f"{self.profile} profile, got {self.days}")
        if bench:
            select_bench(list(self.scenarios))
        else:
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
               "profile": self.config.profile, "records": self.stats.records,
               "messages": self.stats.messages, "late": self.stats.late,
               "duplicates": self.stats.duplicates, "principal_days": self.principal_days()}
        return labels_document(self.config.seed, self.tenant.tenant_id, self.labels, run)

    def principal_days(self) -> int:
        """Distinct (tenant, principal, UTC day) pairs over the records (both logs)."""
        seen: set[tuple[str, str, int]] = set()
        for ts, record in self.records:
            props = record["properties"]
            principal = props.get("userId") or props.get("servicePrincipalId") or ""
            seen.add((record["tenantId"], principal, int(ts // DAY)))
        return len(seen)


def simulate(config: SimulationConfig) -> Simulation:
    config.validate()

    def rng(part: str) -> random.Random:
        return random.Random(f"{config.seed}:{part}")

    tenant = build_tenant(rng("tenant"), config.users)
    days = make_days(config.start, config.days)
    if config.profile == "benchmark":
        parts, labels = benchmark_requests(config.seed, tenant, days, list(config.scenarios))
    else:
        parts, labels = _demo_requests(config, tenant, days, rng)
    records: list[tuple[float, dict[str, Any]]] = []
    for name, requests in parts:
        builder = RecordBuilder(tenant, rng(f"build:{name}"))
        records += [(req.ts, builder.build(req)) for req in requests]
    records.sort(key=lambda item: item[0])
    messages, stats = plan_delivery(records, rng("delivery"), config.delivery)
    return Simulation(config, tenant, records, messages, stats, labels)


def _demo_requests(config: SimulationConfig, tenant: Tenant, days: list[Day],
                   rng: Callable[[str], random.Random]
                   ) -> tuple[list[tuple[str, list[Request]]], list[ScenarioLabel]]:
    parts: list[tuple[str, list[Request]]] = [
        ("users", users_traffic(rng("users"), tenant, days)),
        ("daemons", daemons_traffic(rng("daemons"), tenant, days)),
    ]
    labels: list[ScenarioLabel] = []
    for scenario in select(list(config.scenarios)):
        caller, requests = scenario.generate(rng(f"scenario:{scenario.name}"), tenant, days[-1])
        labels.append(label_for(scenario, tenant.tenant_id, caller, requests))
        parts.append((scenario.name, requests))
    return parts, labels


SCENARIO_NAMES = tuple(scenario.name for scenario in SCENARIOS)
BENCHMARK_SCENARIO_NAMES = tuple(scenario.name for scenario in BENCH_SCENARIOS)

__all__ = ["BENCHMARK_SCENARIO_NAMES", "DEFAULT_START", "PROFILES", "SCENARIO_NAMES",
           "DeliveryOptions", "Simulation", "SimulationConfig", "simulate"]
