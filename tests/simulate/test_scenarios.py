"""Each scenario's characteristic requests, and labels that agree with the records."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest

from graphsentry.simulate import SCENARIO_NAMES, Simulation, SimulationConfig, simulate
from graphsentry.simulate.labels import read_labels, write_labels
from graphsentry.simulate.tenant import AZURE_POWERSHELL
from tests.simulate.helpers import (
    epoch,
    label,
    path_of,
    principal_records,
    props,
    scenario_records,
)

CONTENT = re.compile(r"^/v1\.0/drives/([^/]+)/items/([^/]+)/content$")
CONTENT_ANY = re.compile(r"/items/[^/]+/content$")
DIRECTORY_FAMILIES = ("groups", "servicePrincipals", "directoryRoles", "roleManagement",
                      "domains", "applications", "users", "organization")


def _family(path: str) -> str:
    return path.split("/")[2]


def test_labels_cover_every_scenario_with_consistent_fields(sim: Simulation) -> None:
    assert [item.name for item in sim.labels] == list(SCENARIO_NAMES)
    for item in sim.labels:
        assert item.kind in ("attack", "benign")
        assert item.tenant_id == sim.tenant.tenant_id
        assert bool(item.expected_detectors) == (item.kind == "attack")
        records = scenario_records(sim, item.name)
        assert len(records) >= item.records > 0, item.name
        for record in records:
            key = "userId" if item.identity_type == "delegated" else "servicePrincipalId"
            assert props(record)[key] == item.principal_id
        last_day = datetime.fromtimestamp(sim.records[-1][0], UTC).date().isoformat()
        assert item.start.startswith(last_day) and item.start <= item.end


def test_labels_round_trip_through_json(sim: Simulation, tmp_path: pytest.TempPathFactory
                                        ) -> None:
    path = tmp_path / "run.labels.json"  # type: ignore[operator]
    write_labels(path, sim.labels_document())
    document = read_labels(path)
    assert document["seed"] == sim.config.seed and document["tenant_id"] == sim.tenant.tenant_id
    assert document["run"]["records"] == sim.stats.records
    required = {"name", "kind", "tenant_id", "app_id", "principal_id", "identity_type", "stages",
                "start", "end", "expected_detectors"}
    assert all(required <= scenario.keys() for scenario in document["scenarios"])


def test_token_theft_chain_discovers_enumerates_downloads_and_persists(sim: Simulation) -> None:
    records = scenario_records(sim, "mi_token_theft_chain")
    attacker = [r for r in records if props(r)["ipAddress"].startswith("203.0.113.")]
    assert len(attacker) == label(sim, "mi_token_theft_chain").records
    assert {props(r)["userAgent"] for r in attacker} <= {"python-requests/2.31.0", ""}
    # one stolen token: the attacker's sign-in id is one the VM also used
    vm_tokens = {props(r)["signInActivityId"] for r in records
                 if not props(r)["ipAddress"].startswith("203.0.113.")}
    assert {props(r)["signInActivityId"] for r in attacker} <= vm_tokens
    denied = {_family(path_of(r)) for r in attacker if props(r)["responseStatusCode"] == 403}
    assert len(denied & set(DIRECTORY_FAMILIES)) >= 3
    downloads = [(epoch(r["time"]), CONTENT.match(path_of(r))) for r in attacker
                 if props(r)["responseStatusCode"] == 302]
    items = {m.group(2) for _, m in downloads if m}
    drives = {m.group(1) for _, m in downloads if m}
    assert len(items) >= 150 and len(drives) >= 6
    per_window = Counter(int(ts // 600) for ts, _ in downloads)
    assert max(per_window.values()) >= 200
    paths = [path_of(r) for r in attacker]
    assert "/v1.0/sites" in paths and any(p.endswith("/drive/root/children") for p in paths)
    assert any(p.startswith("/v1.0/sites/") and p.endswith("/drives") for p in paths)
    persistence = [r for r in attacker if path_of(r).endswith("/addPassword")]
    assert [(props(r)["requestMethod"], props(r)["responseStatusCode"]) for r in persistence] \
        == [("POST", 200)]
    span = epoch(label(sim, "mi_token_theft_chain").end) - epoch(
        label(sim, "mi_token_theft_chain").start)
    assert 2 * 3600 <= span <= 4 * 3600


def test_chain_network_is_new_for_the_managed_identity(sim: Simulation) -> None:
    item = label(sim, "mi_token_theft_chain")
    before = [r for ts, r in principal_records(sim, item.app_id, item.principal_id)
              if ts < epoch(item.start)]
    assert before and not any(props(r)["ipAddress"].startswith("203.0.113.") for r in before)
    assert {props(r)["userAgent"] for r in before} <= {
        sim.tenant.principal("mi-reporting").user_agent, ""}


def test_azurehound_uses_its_client_agent_and_endpoints(sim: Simulation) -> None:
    records = scenario_records(sim, "azurehound_recon")
    assert {props(r)["appId"] for r in records} == {AZURE_POWERSHELL}
    assert {props(r)["userAgent"] for r in records} <= {"azurehound/v2.1.0", ""}
    paths = {path_of(r) for r in records}
    for expected in ("/v1.0/organization", "/v1.0/users", "/v1.0/groups", "/v1.0/applications",
                     "/v1.0/servicePrincipals", "/v1.0/devices",
                     "/v1.0/roleManagement/directory/roleDefinitions",
                     "/v1.0/roleManagement/directory/roleAssignments"):
        assert expected in paths
    assert any(re.match(r"^/beta/groups/[^/]+/members$", p) for p in paths)
    assert any(p.endswith("/appRoleAssignedTo") for p in paths)


def test_mailbox_enumeration_reads_many_inboxes_from_a_new_network(sim: Simulation) -> None:
    item = label(sim, "mailbox_enumeration_stolen_token")
    records = scenario_records(sim, item.name)
    inbox = [r for r in records if re.match(r"^/v1\.0/users/[^/]+/mailFolders/Inbox/messages$",
                                            path_of(r))]
    assert len({path_of(r).split("/")[3] for r in inbox}) >= 15
    assert sum(props(r)["responseStatusCode"] == 403 for r in inbox) >= 10
    denied = {path_of(r).split("/")[2] for r in records if props(r)["responseStatusCode"] == 403}
    assert len(denied) >= 3  # mailboxes plus the token's directory and files probes
    assert epoch(item.end) - epoch(item.start) < 600
    new_ips = {props(r)["ipAddress"] for r in inbox}
    history = {props(r)["ipAddress"] for ts, r in principal_records(sim, item.app_id,
                                                                    item.principal_id)
               if ts < epoch(item.start)}
    assert history and not new_ips & history


def test_mfa_registration_adds_phone_and_tap_on_two_users(sim: Simulation) -> None:
    writes = {(path_of(r).split("/")[3], path_of(r).split("/")[-1], props(r)["responseStatusCode"])
              for r in scenario_records(sim, "mfa_method_registration")
              if props(r)["requestMethod"] == "POST"}
    kinds = {(method, status) for _, method, status in writes}
    assert kinds == {("phoneMethods", 201), ("temporaryAccessPassMethods", 201)}
    assert len({user for user, _, _ in writes}) == 2


def test_sp_credential_added_targets_another_service_principal(sim: Simulation) -> None:
    item = label(sim, "sp_credential_added")
    adds = [r for r in scenario_records(sim, item.name) if path_of(r).endswith("/addPassword")]
    assert len(adds) == 1 and item.identity_type == "app_only"
    target = path_of(adds[0]).split("/")[3]
    assert path_of(adds[0]).startswith("/v1.0/servicePrincipals/")
    assert target != item.principal_id and props(adds[0])["responseStatusCode"] == 200


def test_token_replay_reads_ordinarily_from_a_new_network(sim: Simulation) -> None:
    item = label(sim, "token_replay_new_network")
    replayed = [r for r in scenario_records(sim, item.name)
                if props(r)["ipAddress"].startswith("203.0.113.")]
    assert len(replayed) == item.records
    assert {props(r)["requestMethod"] for r in replayed} == {"GET"}
    assert all(path_of(r).startswith("/v1.0/me") for r in replayed)


def _per_day(sim: Simulation, app_id: str, match: re.Pattern[str], status: int) -> Counter[str]:
    return Counter(r["time"][:10] for _, r in sim.records
                   if props(r)["appId"] == app_id and props(r)["responseStatusCode"] == status
                   and match.search(props(r)["requestUri"]))


def test_backup_runs_every_night_at_similar_volume(sim: Simulation) -> None:
    daily = _per_day(sim, sim.tenant.principal("backup").app_id, CONTENT_ANY, 302)
    assert len(daily) == sim.config.days
    assert min(daily.values()) >= 900 and max(daily.values()) == min(daily.values())
    peaks: dict[str, int] = defaultdict(int)
    windows = Counter((r["time"][:10], int(epoch(r["time"]) // 600)) for _, r in sim.records
                      if props(r)["appId"] == sim.tenant.principal("backup").app_id
                      and props(r)["responseStatusCode"] == 302)
    for (day, _), count in windows.items():
        peaks[day] = max(peaks[day], count)
    assert max(peaks.values()) <= 1.25 * min(peaks.values())


def test_delta_sync_and_monitor_403_recur_every_day(sim: Simulation) -> None:
    sync = _per_day(sim, sim.tenant.principal("directory-sync").app_id,
                    re.compile(r"/delta\?\$skiptoken="), 200)
    denied = _per_day(sim, sim.tenant.principal("license-monitor").app_id,
                      re.compile(r"/reports/"), 403)
    assert len(sync) == len(denied) == sim.config.days
    assert all(2 <= count <= 5 for count in denied.values())


def test_scenario_selection_keeps_benign_traffic_identical() -> None:
    one = simulate(SimulationConfig(users=20, days=1, scenarios=("token_replay_new_network",)))
    both = simulate(SimulationConfig(users=20, days=1,
                                     scenarios=("token_replay_new_network", "delta_sync")))
    assert [item.name for item in both.labels] == ["token_replay_new_network", "delta_sync"]
    ids_one = {props(r)["requestId"] for _, r in one.records}
    ids_both = {props(r)["requestId"] for _, r in both.records}
    assert ids_one < ids_both
    assert len(ids_both - ids_one) == label(both, "delta_sync").records
