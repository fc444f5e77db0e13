"""The benchmark profile: determinism, rhythm, labels against records, delivery bounds, history
of the look-alikes, and attacks under the fixed floors of issue 12's time.

Properties of the generated data only: nothing here runs or judges a detector.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest

from graphsentry.simulate import BENCHMARK_SCENARIO_NAMES, Simulation, SimulationConfig, simulate
from graphsentry.simulate.aadgraph import AAD_LOG
from graphsentry.simulate.benchmark import BENCH_BY_NAME
from tests.simulate.helpers import epoch, path_of, props

DAY = 86400.0
USERS, DAYS = 120, 8
# Today's fixed floors (detectors/*.py defaults when issue 12 was filed), per 10 minutes.
FLOOR_DOWNLOADS, FLOOR_ITEMS = 25, 20          # storage_exfiltration
FLOOR_BYTES, FLOOR_BULK = 50 * 1024 * 1024, 100  # high_volume_transfer
FLOOR_DRIVES, FLOOR_SITES, FLOOR_MAILBOXES = 5, 5, 5
FLOOR_FAMILIES, FLOOR_REQUESTS, FLOOR_OBJECTS = 5, 10, 200  # graph_enumeration
FLOOR_DENIED = 5
CONTENT = re.compile(r"/drives/([^/]+)/items/([^/]+)/content$|/me/drive/items/([^/]+)/content$")
US_TIME = re.compile(r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d\d:\d\d [AP]M$")


@pytest.fixture(scope="module")
def bench() -> Simulation:
    return simulate(SimulationConfig(users=USERS, days=DAYS, profile="benchmark"))


def digest(sim: Simulation) -> str:
    text = "".join(m.to_json() for m in sim.messages) + json.dumps(sim.labels_document())
    return hashlib.sha256(text.encode()).hexdigest()


def principal(record: dict) -> str:  # type: ignore[type-arg]
    p = props(record)
    return str(p.get("userId") or p.get("servicePrincipalId") or "")


def by_principal(sim: Simulation) -> dict[str, list[tuple[float, dict]]]:  # type: ignore[type-arg]
    out: dict[str, list[tuple[float, dict]]] = defaultdict(list)  # type: ignore[type-arg]
    for ts, record in sim.records:
        out[principal(record)].append((ts, record))
    return out


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    def run(seed: int) -> str:
        return digest(simulate(SimulationConfig(seed=seed, users=USERS, days=5,
                                                profile="benchmark")))

    first = run(7)
    assert run(7) == first and run(8) != first


def test_demo_profile_is_untouched_by_the_benchmark() -> None:
    demo = simulate(SimulationConfig(users=40, days=2))
    assert {label.name for label in demo.labels} == {
        "mi_token_theft_chain", "azurehound_recon", "mailbox_enumeration_stolen_token",
        "mfa_method_registration", "sp_credential_added", "token_replay_new_network",
        "backup_downloads", "delta_sync", "monitor_403"}
    assert all(r["category"] == "MicrosoftGraphActivityLogs" for _, r in demo.records)


@pytest.mark.parametrize(("change", "message"), [
    ({"users": 60}, "users must be between 120"), ({"days": 4}, "days must be between 5"),
    ({"scenarios": ("nope",)}, "unknown benchmark scenario"), ({"profile": "x"}, "profile")])
def test_benchmark_arguments_are_checked(change: dict, message: str) -> None:  # type: ignore[type-arg]
    config = {"users": USERS, "days": DAYS, "profile": "benchmark", **change}
    with pytest.raises(ValueError, match=message):
        SimulationConfig(**config).validate()


def test_daily_and_weekly_rhythm(bench: Simulation) -> None:
    start = bench.records[0][0] // DAY * DAY
    per_day: Counter[int] = Counter()
    office_hours = night = weekday_total = 0
    for ts, record in bench.records:
        if props(record).get("userId") is None and not props(record).get("userId"):
            continue
        day = int((ts - start) // DAY)
        per_day[day] += 1
        moment = datetime.fromtimestamp(ts, UTC)
        if moment.weekday() < 5:
            weekday_total += 1
            hour = moment.hour + moment.minute / 60
            office_hours += 8.5 <= hour < 17.5
            night += hour < 6
    weekdays = [per_day[d] for d in range(DAYS) if (d % 7) < 5]  # starts on a Monday
    weekend = [per_day[d] for d in range(DAYS) if (d % 7) >= 5]
    assert len(weekend) == 2 and max(weekend) < 0.2 * min(weekdays)
    assert office_hours > 0.5 * weekday_total and night < 0.1 * weekday_total


def test_users_run_several_clients_and_some_change_networks(bench: Simulation) -> None:
    apps: dict[str, set[str]] = defaultdict(set)
    networks: dict[str, set[str]] = defaultdict(set)
    for _, record in bench.records:
        p = props(record)
        if p.get("userId") and record["category"] != AAD_LOG:
            apps[p["userId"]].add(p["appId"])
            networks[p["userId"]].add(p["ipAddress"].rsplit(".", 1)[0].rsplit(":", 4)[0])
    assert min(len(a) for a in apps.values()) >= 3  # Teams, Outlook, Office, sync ...
    assert sum(len(a) >= 5 for a in apps.values()) >= 20  # admins, helpdesk, power users
    movers = sum(len(n) >= 3 for n in networks.values())  # office, home, hotel or new ISP
    assert movers >= 3


def test_every_scenario_is_present_with_consistent_labels(bench: Simulation) -> None:
    assert [label.name for label in bench.labels] == list(BENCHMARK_SCENARIO_NAMES)
    keys = Counter((label.tenant_id, label.principal_id) for label in bench.labels
                   if label.kind == "attack")
    benign = {(label.tenant_id, label.principal_id) for label in bench.labels
              if label.kind == "benign"}
    assert max(keys.values()) == 1 and not set(keys) & benign  # one principal, one truth
    records = by_principal(bench)
    last_day = datetime.fromtimestamp(bench.records[-1][0], UTC).date().isoformat()
    for label in bench.labels:
        start, end = epoch(label.start), epoch(label.end)
        assert label.start.startswith(last_day) and start <= end, label.name
        assert bool(label.expected_detectors) == (label.kind == "attack"), label.name
        assert bool(label.looks_like) == (label.kind == "benign"), label.name
        inside = [r for ts, r in records[label.principal_id] if start - 1e-6 <= ts <= end + 1e-6
                  and r["tenantId"] == label.tenant_id]
        own = [r for r in inside if (props(r).get("appId") == label.app_id)]
        assert len(inside) >= label.records > 0, label.name
        assert own, label.name
        assert all(r["category"] == label.log for r in own), label.name
    document = bench.labels_document()
    assert document["run"]["profile"] == "benchmark"
    assert document["run"]["principal_days"] == bench.principal_days() > USERS * 3


def test_look_alikes_and_attacked_principals_have_history(bench: Simulation) -> None:
    records = by_principal(bench)
    last_start = bench.records[-1][0] // DAY * DAY
    for label in bench.labels:
        days_before = {int(ts // DAY) for ts, _ in records[label.principal_id] if ts < last_start}
        scenario = BENCH_BY_NAME[label.name]
        least = 1 if scenario.every == "week" else 3  # a weekly job: its run a week before
        assert len(days_before) >= least, f"{label.name}: {len(days_before)} days of history"
        if label.kind == "benign" and scenario.every != "last":
            assert label.prior_runs >= 1, label.name  # the job itself ran before
    assert BENCH_BY_NAME["weekly_directory_audit"].every == "week"
    weekly = next(label for label in bench.labels if label.name == "weekly_directory_audit")
    assert weekly.prior_runs == 1  # 8 days: the same weekday a week before


def test_delivery_is_late_out_of_order_and_sometimes_twice(bench: Simulation) -> None:
    delays, seen, order = [], Counter(), []
    first: dict[str, float] = {}
    for message in bench.messages:
        for record in message.records:
            ts = epoch(record.get("time") or props(record)["timeGenerated"])
            key = props(record)["requestId"]
            seen[key] += 1
            if key in first:  # a second delivery, at most an hour after the first
                assert 0 < message.arrival - first[key] <= 3600 + 60  # (minute buckets)
            else:
                first[key] = message.arrival
                delays.append(message.arrival - ts)
            order.append(ts)
    assert min(delays) > 0 and max(delays) <= 2 * 3600  # first delivery up to 2 h late
    assert sum(d > 1800 for d in delays) > 0.01 * len(delays)
    assert max(seen.values()) == 2 and 0 < sum(n == 2 for n in seen.values()) < 0.02 * len(seen)
    assert any(later < earlier for earlier, later in itertools.pairwise(order))


def _windows(requests: list[tuple[float, dict]]) -> dict[int, list[dict]]:  # type: ignore[type-arg]
    out: dict[int, list[dict]] = defaultdict(list)  # type: ignore[type-arg]
    for ts, record in requests:
        out[int(ts // 600)].append(record)
    return out


def _family(path: str) -> str:
    parts = path.split("/")
    return parts[2] if len(parts) > 2 else ""


def test_quiet_attacks_stay_under_todays_fixed_floors(bench: Simulation) -> None:
    records = by_principal(bench)
    quiet = [label for label in bench.labels if label.under_floors]
    assert len(quiet) >= 9
    for label in quiet:
        start, end = epoch(label.start), epoch(label.end)
        mine = [(ts, r) for ts, r in records[label.principal_id]
                if start - 1e-6 <= ts <= end + 1e-6 and props(r)["appId"] == label.app_id]
        downloads = [ts for ts, r in mine if CONTENT.search(path_of(r))]
        for i, ts in enumerate(downloads):  # any 10 minutes, not only aligned windows
            assert sum(1 for t in downloads[i:] if t < ts + 600) <= 15, label.name
        for window in _windows(mine).values():
            paths = [path_of(r) for r in window]
            p = [props(r) for r in window]
            items = {m.group(2) or m.group(3) for m in map(CONTENT.search, paths) if m}
            assert len(items) < FLOOR_ITEMS and sum(x["responseSizeBytes"] for x in p) < \
                FLOOR_BYTES, label.name
            drives = {path.split("/")[3] for path in paths if path.startswith("/v1.0/drives/")}
            sites = {path.split("/")[3] for path in paths if path.startswith("/v1.0/sites/")}
            mailboxes = {path.split("/")[3] for path in paths if "/messages" in path
                         and path.startswith("/v1.0/users/")}
            assert len(drives) < FLOOR_DRIVES and len(sites) < FLOOR_SITES, label.name
            assert len(mailboxes) < FLOOR_MAILBOXES, label.name
            directory = [path for path in paths if _family(path) in (
                "users", "groups", "servicePrincipals", "applications", "directoryRoles",
                "roleManagement", "devices", "policies", "domains", "organization",
                "oauth2PermissionGrants")]
            families = {_family(path) for path in directory}
            assert len(families) < FLOOR_FAMILIES or len(directory) < FLOOR_REQUESTS, label.name
            assert len(families) < 2 or len(set(directory)) < FLOOR_OBJECTS, label.name
            assert sum(x["responseStatusCode"] in (401, 403) for x in p) < FLOOR_DENIED


def test_quiet_attacks_have_their_shape(bench: Simulation) -> None:
    records = by_principal(bench)

    def mine(name: str) -> list[tuple[float, dict]]:  # type: ignore[type-arg]
        label = next(item for item in bench.labels if item.name == name)
        start, end = epoch(label.start), epoch(label.end)
        return [(ts, r) for ts, r in records[label.principal_id]
                if start - 1e-6 <= ts <= end + 1e-6 and props(r)["appId"] == label.app_id]

    exfil = mine("slow_exfiltration_stolen_secret")  # the daemon's own work goes on meanwhile
    assert {props(r)["ipAddress"] for _, r in exfil} == {"203.0.113.50", "192.0.2.170"}
    downloads = [ts for ts, r in exfil if CONTENT.search(path_of(r))
                 and props(r)["ipAddress"] == "203.0.113.50"]
    assert len(downloads) >= 300 and downloads[-1] - downloads[0] >= 5.5 * 3600
    chats = mine("teams_chat_collection")
    assert len({path_of(r).split("/")[3] for _, r in chats if "/messages" in path_of(r)}) >= 100
    full = [w for k, w in _windows(chats).items() if len(w) >= 20]
    for window in full:
        mib = sum(props(r)["responseSizeBytes"] for r in window) / 2**20
        assert 10 <= mib <= 20
    walk = mine("sp_role_assignment_walk")
    assert walk[-1][0] - walk[0][0] <= 60 and len({path_of(r) for _, r in walk}) >= 10
    users = mine("tenant_user_walk")
    assert len({path_of(r) for _, r in users}) == USERS
    assert {_family(path_of(r)) for _, r in users} == {"users"}
    posts = {name: [path_of(r) for _, r in mine(name) if props(r)["requestMethod"] == "POST"]
             for name in ("app_role_grant", "delegated_permission_grant", "owner_added_to_app",
                          "agent_blueprint_add_password", "tap_for_admin")}
    assert any(p.endswith("/appRoleAssignments") for p in posts["app_role_grant"])
    assert any(p.endswith("/appRoleAssignedTo") for p in posts["app_role_grant"])
    assert posts["delegated_permission_grant"] == ["/v1.0/oauth2PermissionGrants"]
    assert {p.split("/")[2] for p in posts["owner_added_to_app"]} == {"applications",
                                                                      "servicePrincipals"}
    assert all(p.endswith("/owners/$ref") for p in posts["owner_added_to_app"])
    assert posts["agent_blueprint_add_password"][0].endswith(
        "/microsoft.graph.agentIdentityBlueprint/addPassword")
    victim = bench.tenant.users[0].id
    assert posts["tap_for_admin"] == [
        f"/v1.0/users/{victim}/authentication/temporaryAccessPassMethods"]


def test_roadrecon_is_written_as_azure_ad_graph_records(bench: Simulation) -> None:
    aad = [r for _, r in bench.records if r["category"] == AAD_LOG]
    label = next(item for item in bench.labels if item.name == "roadrecon_gather")
    assert len(aad) == label.records >= 200  # 120 users: 60 groups, 31 apps, 30 roles
    for record in aad:
        p = props(record)
        assert record["operationName"] == "AAD Graph Activity"
        assert p["requestUri"].startswith(f"/{bench.tenant.tenant_id}/")
        assert "api-version=1.61-internal" in p["requestUri"]
        assert p["httpMethod"] == "GET" and p["httpStatusCode"] == 200
        assert p["responseSizeBytes"] == -1 and US_TIME.match(p["issuedAt"])
        assert isinstance(p["clientAuthMethod"], int) and isinstance(p["durationMs"], int)
        assert "requestMethod" not in p and "responseStatusCode" not in p
        assert p["userId"] == label.principal_id and p["servicePrincipalId"] == ""
    kinds = {p.split("?")[0].split("/")[2] for p in (props(r)["requestUri"] for r in aad)}
    assert {"users", "groups", "servicePrincipals", "roleAssignments", "tenantDetails"} <= kinds
