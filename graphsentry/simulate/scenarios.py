"""The scenario catalog: attacks and benign look-alikes, with what each should (not) trip."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from graphsentry.simulate import attacks, daemons
from graphsentry.simulate.clock import Day
from graphsentry.simulate.records import Caller, Request, app_only
from graphsentry.simulate.tenant import Tenant

Generator = Callable[[random.Random, Tenant, Day], tuple[Caller, list[Request]]]


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "attack" or "benign"
    stages: tuple[str, ...]
    expected_detectors: tuple[str, ...]
    generate: Generator
    description: str


def _daemon_job(principal: str, job: Callable[[random.Random, Tenant, Day], list[Request]]
                ) -> Generator:
    """A recurring job's last-day run, attributed to the daemon that runs it."""
    def generate(rng: random.Random, tenant: Tenant, day: Day) -> tuple[Caller, list[Request]]:
        return app_only(tenant.principal(principal)), job(rng, tenant, day)
    return generate


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("mi_token_theft_chain", "attack",
             ("discovery", "collection", "exfiltration", "persistence"),
             ("new_origin", "concurrent_origin", "graph_enumeration", "denied_requests",
              "onedrive_enumeration", "sharepoint_enumeration", "storage_exfiltration",
              "app_credential_added"),
             attacks.mi_token_theft_chain,
             "managed identity token replayed from 203.0.113.0/24: discovery, drive enumeration, "
             "mass downloads, addPassword"),
    Scenario("azurehound_recon", "attack", ("discovery",),
             ("attack_tool", "graph_enumeration"), attacks.azurehound_recon,
             "AzureHound v2.1.0 with a user's Azure PowerShell token"),
    Scenario("mailbox_enumeration_stolen_token", "attack",
             ("initial_access", "discovery", "collection"),
             ("mailbox_enumeration", "new_origin", "concurrent_origin", "denied_requests"),
             attacks.mailbox_enumeration_stolen_token,
             "stolen Outlook token reading 19 other users' inboxes from a new network"),
    Scenario("mfa_method_registration", "attack", ("persistence",), ("auth_method_added",),
             attacks.mfa_method_registration,
             "phone method and Temporary Access Pass registered on two users"),
    Scenario("sp_credential_added", "attack", ("persistence",), ("app_credential_added",),
             attacks.sp_credential_added,
             "automation principal adds a secret to another app's service principal"),
    Scenario("token_replay_new_network", "attack", ("initial_access",),
             ("new_origin", "concurrent_origin"),
             attacks.token_replay_new_network,
             "a user's Office token replayed from a new network for ordinary reads"),
    Scenario("backup_downloads", "benign", (), (), _daemon_job("backup", daemons.backup_run),
             "the nightly backup at its usual volume (also ran on the warm-up days)"),
    Scenario("delta_sync", "benign", (), (), _daemon_job("directory-sync",
                                                         daemons.full_delta_sync),
             "directory sync's nightly full delta in big pages"),
    Scenario("monitor_403", "benign", (), (), _daemon_job("license-monitor",
                                                          daemons.monitor_403s),
             "license monitor denied on one report family, as on other days"),
)

BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def select(names: list[str] | None) -> list[Scenario]:
    """Scenarios by name in catalog order; ``None``, ``[]`` or ``all`` mean every scenario."""
    if not names or "all" in names:
        return list(SCENARIOS)
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        raise ValueError(f"unknown scenario(s): {', '.join(unknown)}; "
                         f"choose from: all, {', '.join(BY_NAME)}")
    return [scenario for scenario in SCENARIOS if scenario.name in names]
