"""The multi-day benchmark (``--profile benchmark``): a few hundred users over at least five days,
recurring benign jobs that look like attacks (with days of history), and attacks on the last
day, most of them shaped to stay under the fixed floors of the detectors of issue 12's time.

``benchmark_requests`` returns every part's requests and one label per scenario; records,
delivery and the labels document are made by :func:`graphsentry.simulate.simulate` as for the
demo profile.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from graphsentry.simulate import daemons, quiet_attacks, services
from graphsentry.simulate.aadgraph import AAD_LOG, roadrecon_gather
from graphsentry.simulate.bench_tenant import (
    ISP_CHANGER,
    TRAVELLER,
    Workforce,
    extend_tenant,
)
from graphsentry.simulate.clock import DAY, Day
from graphsentry.simulate.labels import ScenarioLabel
from graphsentry.simulate.records import GRAPH_LOG, Caller, Request, format_ticks
from graphsentry.simulate.scenarios import BY_NAME as DEMO_SCENARIOS
from graphsentry.simulate.services import Job, runs_on
from graphsentry.simulate.tenant import Tenant
from graphsentry.simulate.workforce import workforce_traffic

MIN_DAYS = 5
DEFAULT_DAYS = 8   # Monday to the next Monday: the weekly auditor has run once before
DEFAULT_USERS = 500
Generator = Callable[[random.Random, Tenant, Workforce, Day], tuple[Caller, list[Request]]]


@dataclass(frozen=True)
class BenchScenario:
    name: str
    kind: str
    stages: tuple[str, ...]
    techniques: tuple[str, ...]
    expected_detectors: tuple[str, ...]
    generate: Generator
    description: str
    every: str = "last"
    looks_like: tuple[str, ...] = ()
    under_floors: bool = False
    own_traffic: bool = False
    log: str = GRAPH_LOG


def _demo(name: str) -> Generator:
    scenario = DEMO_SCENARIOS[name]

    def generate(rng: random.Random, tenant: Tenant, wf: Workforce, day: Day
                 ) -> tuple[Caller, list[Request]]:
        return scenario.generate(rng, tenant, day)
    return generate


def _attack(name: str, stages: tuple[str, ...], techniques: tuple[str, ...],
            expected: tuple[str, ...], generate: Generator, description: str, *,
            under_floors: bool = True, log: str = GRAPH_LOG) -> BenchScenario:
    return BenchScenario(name, "attack", stages, techniques, expected, generate, description,
                         under_floors=under_floors, log=log)


def _benign(job: Job) -> BenchScenario:
    return BenchScenario(job.name, "benign", (), (), (), job.run, job.description, job.every,
                         job.looks_like, own_traffic=job.own_traffic)


ATTACKS: tuple[BenchScenario, ...] = (
    _attack("slow_exfiltration_stolen_secret", ("initial_access", "collection", "exfiltration"),
            ("T1078.004", "T1530"), ("new_origin", "concurrent_origin", "storage_exfiltration"),
            quiet_attacks.slow_exfiltration,
            "the invoice daemon's secret used from 203.0.113.50: ~330 files over 6 h, never "
            "more than 15 downloads in 10 minutes"),
    _attack("teams_chat_collection", ("initial_access", "collection"), ("T1550.001", "T1213"),
            ("chat_collection", "new_origin", "concurrent_origin", "high_volume_transfer"),
            quiet_attacks.teams_chat_collection,
            "a replayed Teams token reads 130 chats from 203.0.113.90, ~14 MiB per 10 min"),
    _attack("sp_role_assignment_walk", ("discovery",), ("T1069.003", "T1526"),
            ("graph_enumeration",), quiet_attacks.sp_role_assignment_walk,
            "14 service principals' appRoleAssignments in a minute (Azure CLI, office)"),
    _attack("tenant_user_walk", ("discovery",), ("T1087.004",), ("graph_enumeration",),
            quiet_attacks.tenant_user_walk,
            "every user of the tenant read one by one, users family only (Azure CLI)"),
    _attack("app_role_grant", ("persistence",), ("T1098.003",), ("app_permission_granted",),
            quiet_attacks.app_role_grant,
            "the partner portal grants itself Microsoft Graph application permissions"),
    _attack("delegated_permission_grant", ("persistence",), ("T1098.003", "T1528"),
            ("app_permission_granted",), quiet_attacks.delegated_grant,
            "tenant-wide consent (POST /oauth2PermissionGrants) to the attacker's app"),
    _attack("owner_added_to_app", ("persistence",), ("T1098",), ("owner_added",),
            quiet_attacks.owner_added,
            "a developer adds himself as owner of the partner portal's app and SP"),
    _attack("agent_blueprint_add_password", ("persistence",), ("T1098.001",),
            ("app_credential_added",), quiet_attacks.agent_blueprint_password,
            "addPassword through the microsoft.graph.agentIdentityBlueprint cast segment"),
    _attack("tap_for_admin", ("persistence",), ("T1098.005",), ("auth_method_added",),
            quiet_attacks.tap_for_admin,
            "a helpdesk operator creates a Temporary Access Pass for a global administrator"),
    _attack("roadrecon_gather", ("discovery",), ("T1087.004", "T1069.003", "T1526"),
            ("graph_enumeration", "attack_tool"), roadrecon_gather,
            "ROADtools roadrecon gather over graph.windows.net (AzureADGraphActivityLogs only)",
            under_floors=False, log=AAD_LOG),
    _attack("mi_token_theft_chain", ("discovery", "collection", "exfiltration", "persistence"),
            ("T1552.005", "T1526", "T1530", "T1098.001"),
            DEMO_SCENARIOS["mi_token_theft_chain"].expected_detectors,
            _demo("mi_token_theft_chain"), DEMO_SCENARIOS["mi_token_theft_chain"].description,
            under_floors=False),
    _attack("azurehound_recon", ("discovery",), ("T1087.004", "T1069.003"),
            DEMO_SCENARIOS["azurehound_recon"].expected_detectors, _demo("azurehound_recon"),
            DEMO_SCENARIOS["azurehound_recon"].description, under_floors=False),
    _attack("mailbox_enumeration_stolen_token", ("initial_access", "discovery", "collection"),
            ("T1550.001", "T1114.002"),
            DEMO_SCENARIOS["mailbox_enumeration_stolen_token"].expected_detectors,
            _demo("mailbox_enumeration_stolen_token"),
            DEMO_SCENARIOS["mailbox_enumeration_stolen_token"].description, under_floors=False),
    _attack("token_replay_new_network", ("initial_access",), ("T1550.001",),
            DEMO_SCENARIOS["token_replay_new_network"].expected_detectors,
            _demo("token_replay_new_network"),
            DEMO_SCENARIOS["token_replay_new_network"].description, under_floors=False),
    _attack("sp_credential_added", ("persistence",), ("T1098.001",),
            DEMO_SCENARIOS["sp_credential_added"].expected_detectors,
            _demo("sp_credential_added"), DEMO_SCENARIOS["sp_credential_added"].description,
            under_floors=False),
)

JOBS: tuple[Job, ...] = (
    Job("nightly_backup", "day", services.nightly_backup,
        ("storage_exfiltration", "high_volume_transfer", "onedrive_enumeration"),
        "nightly backup: every drive's delta and its changed files (~1,500 downloads, 01:00)"),
    Job("compliance_archiver", "day", services.compliance_archiver, ("mailbox_enumeration",),
        "journaling archiver reading 140 mailboxes every night (02:00)"),
    Job("iga_hourly_review", "day", services.iga_hourly_review,
        ("graph_enumeration",),
        "identity governance reading users, groups, roles, apps and SPs every hour"),
    Job("iga_access_assignments", "weekday", services.iga_access_assignments,
        ("app_permission_granted",),
        "approved access packages: users assigned to enterprise apps (appRoleAssignedTo)"),
    Job("hr_full_delta", "day", services.hr_full_delta, ("graph_enumeration",),
        "HR provisioning: a full users delta every night (04:00) and a few updates"),
    Job("weekly_directory_audit", "week", services.directory_audit,
        ("graph_enumeration", "attack_tool"),
        "Purple Knight-like weekly assessment: every family, owners, role members (06:00)"),
    Job("dlp_scan", "day", services.dlp_scan,
        ("onedrive_enumeration", "storage_exfiltration"),
        "DLP classifier scanning new files on a fifth of the drives each evening (19:00)"),
    Job("ci_self_rotation", "weekday", services.ci_self_rotation, ("app_credential_added",),
        "the release pipeline rotates its own application's secret by object id (03:00)"),
    Job("migration_cutover", "day", services.migration_run,
        ("mailbox_enumeration", "storage_exfiltration", "high_volume_transfer"),
        "an established migration principal starts the cut-over of 80 users at 12:00"),
    Job("denied_by_design_monitor", "day", services.denied_monitor, ("denied_requests",),
        "a posture monitor denied on the security family six times every hour"),
    Job("intranet_site_indexer", "day", services.site_indexer, ("sharepoint_enumeration",),
        "search crawler: tenant-wide site listing and every library every 2 h"),
    Job("helpdesk_tap_onboarding", "weekday", services.helpdesk_onboarding,
        ("auth_method_added",), "the helpdesk issues Temporary Access Passes to new hires"),
    Job("admin_morning_review", "weekday", services.admin_morning_review,
        ("graph_enumeration",), "an administrator's morning review across ten directory areas"),
    Job("teams_catch_up", "weekday", services.teams_reader, ("chat_collection",),
        "a coordinator reads 45 chats in an hour on Monday (a handful on other days)"),
    Job("onedrive_resync_new_laptop", "weekday", services.onedrive_resync,
        ("storage_exfiltration", "high_volume_transfer"),
        "the OneDrive client on a new laptop downloads the user's 400 files"),
    Job("admin_security_key_self", "last", services.security_key_self, ("auth_method_added",),
        "an administrator registers a FIDO2 key for herself (office, usual client)"),
    Job("user_travel_hotel", "last", services.new_network_day(TRAVELLER), ("new_origin",),
        "a user works from a hotel network for the day, all clients", own_traffic=True),
    Job("user_isp_change", "last", services.new_network_day(ISP_CHANGER), ("new_origin",),
        "a user's home ISP changed: a new home network from the last day on",
        own_traffic=True),
)

BENIGN: tuple[BenchScenario, ...] = (
    *(_benign(job) for job in JOBS),
    BenchScenario("delta_sync", "benign", (), (), (), _demo("delta_sync"),
                  "directory sync's nightly full delta in big pages", "day",
                  ("graph_enumeration", "high_volume_transfer")),
    BenchScenario("monitor_403", "benign", (), (), (), _demo("monitor_403"),
                  DEMO_SCENARIOS["monitor_403"].description, "day", ("denied_requests",)),
)
BENCH_SCENARIOS: tuple[BenchScenario, ...] = ATTACKS + BENIGN
BENCH_BY_NAME = {s.name: s for s in BENCH_SCENARIOS}


def select_bench(names: list[str] | None) -> list[BenchScenario]:
    """Benchmark scenarios by name in catalog order; ``None``, ``[]`` or ``all``: all."""
    if not names or "all" in names:
        return list(BENCH_SCENARIOS)
    unknown = sorted(set(names) - set(BENCH_BY_NAME))
    if unknown:
        raise ValueError(f"unknown benchmark scenario(s): {', '.join(unknown)}; "
                         f"choose from: all, {', '.join(BENCH_BY_NAME)}")
    return [s for s in BENCH_SCENARIOS if s.name in names]


def _background(rng: random.Random, tenant: Tenant, days: list[Day]) -> list[Request]:
    """Unlabeled daemons: the demo tenant's steady jobs, the attack principals' ordinary work,
    and the last-day-labeled demo jobs' earlier runs."""
    out: list[Request] = []
    for day in days:
        for job in (daemons._incremental_sync, daemons._license_monitor, daemons._mi_reporting,
                    daemons._ci_deployer, daemons._hr_connector, daemons._admin_scripts):
            out += job(rng, tenant, day)
        out += quiet_attacks.invoice_processor_day(rng, tenant, day)
        out += quiet_attacks.partner_portal_day(rng, tenant, day)
    return out


def _label(scenario: BenchScenario, tenant_id: str, caller: Caller, requests: list[Request],
           prior_runs: int) -> ScenarioLabel:
    times = [r.ts for r in requests]
    return ScenarioLabel(
        name=scenario.name, kind=scenario.kind, tenant_id=tenant_id, app_id=caller.app_id,
        principal_id=caller.principal_id, identity_type=caller.identity_type,
        stages=list(scenario.stages), start=format_ticks(min(times)),
        end=format_ticks(max(times)), expected_detectors=list(scenario.expected_detectors),
        records=len(requests), description=scenario.description,
        techniques=list(scenario.techniques), looks_like=list(scenario.looks_like),
        log=scenario.log, under_floors=scenario.under_floors, prior_runs=prior_runs)


def benchmark_requests(seed: int, tenant: Tenant, days: list[Day], names: list[str]
                       ) -> tuple[list[tuple[str, list[Request]]], list[ScenarioLabel]]:
    """Every part's requests (name, requests) and the scenarios' labels, for ``tenant``."""
    def rng(part: str) -> random.Random:
        return random.Random(f"{seed}:bench:{part}")

    workforce = extend_tenant(rng("tenant"), tenant, len(days))
    people = workforce_traffic(rng("workforce"), tenant, workforce, days)
    parts: list[tuple[str, list[Request]]] = [
        ("workforce", people), ("background", _background(rng("background"), tenant, days))]
    last = days[-1]
    labels: list[ScenarioLabel] = []
    for scenario in select_bench(names):
        part_rng = rng(f"scenario:{scenario.name}")
        runs = [(day, scenario.generate(part_rng, tenant, workforce, day)) for day in days
                if runs_on(scenario.every, day, last)]
        caller, final = runs[-1][1]
        if scenario.own_traffic:
            final = [r for r in people if r.caller.principal_id == caller.principal_id
                     and last.start <= r.ts < last.start + DAY]
        prior = sum(1 for day, (_, reqs) in runs if day is not last and reqs)
        labels.append(_label(scenario, tenant.tenant_id, caller, final, prior))
        parts.append((scenario.name, [r for _, (_, reqs) in runs for r in reqs]))
    end = last.start + DAY
    return [(name, [r for r in reqs if r.ts < end]) for name, reqs in parts], labels
