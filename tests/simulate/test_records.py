"""Raw record shape and delivery quirks of the simulator's output."""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
from collections import Counter, defaultdict
from typing import Any

import pytest

from graphsentry.simulate import Simulation, SimulationConfig, simulate
from graphsentry.simulate.writer import DeliveryOptions
from tests.simulate.helpers import epoch, path_of, principal_of, props

TOP_KEYS = {"time", "resourceId", "operationName", "operationVersion", "category",
            "resultSignature", "durationMs", "callerIpAddress", "correlationId", "level",
            "location", "tenantId", "properties"}
PROPERTY_KEYS = {"timeGenerated", "requestId", "operationId", "clientRequestId", "apiVersion",
                 "requestMethod", "requestUri", "responseStatusCode", "responseSizeBytes",
                 "durationMs", "tenantId", "ipAddress", "userAgent", "location", "appId",
                 "wids", "tokenIssuedAt", "signInActivityId", "identityProvider",
                 "clientAuthMethod", "C_Idtyp"}
TIME_7 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
DOC_NETWORKS = [ipaddress.ip_network(n) for n in
                ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]


def test_default_run_volume_is_modest(sim: Simulation) -> None:
    assert 20_000 <= len(sim.records) <= 60_000


def test_every_record_has_the_event_hub_shape(sim: Simulation) -> None:
    for _, record in sim.records:
        p = props(record)
        assert record.keys() >= TOP_KEYS
        assert p.keys() >= PROPERTY_KEYS
        assert TIME_7.match(record["time"]) and record["time"] == p["timeGenerated"]
        assert TIME_7.match(p["tokenIssuedAt"])
        assert record["resultSignature"] == str(p["responseStatusCode"])
        assert record["durationMs"] == str(p["durationMs"])
        assert isinstance(p["responseStatusCode"], int)
        assert p["clientAuthMethod"] in {"0", "1", "2"}
        assert record["correlationId"] == p["requestId"]
        assert record["callerIpAddress"] == p["ipAddress"]
        tenant = p["tenantId"]
        assert record["resourceId"] == f"/TENANTS/{tenant.upper()}/PROVIDERS/MICROSOFT.AADIAM"
        assert p["requestUri"].startswith(f"https://graph.microsoft.com/{p['apiVersion']}/")
        assert len(p["signInActivityId"]) == 22


def test_exactly_one_identity_and_matching_claims(sim: Simulation) -> None:
    for _, record in sim.records:
        p = props(record)
        user, sp = p.get("userId"), p.get("servicePrincipalId")
        assert bool(user) != bool(sp)
        assert p["C_Idtyp"] == ("user" if user else "app")
        assert bool(p.get("scopes")) == bool(user) and bool(p.get("roles")) == bool(sp)
        assert p["UserPrincipalObjectID"] == principal_of(record)


@pytest.mark.parametrize("key", ["userId", "servicePrincipalId", "roles", "scopes"])
def test_the_three_forms_of_empty_occur(sim: Simulation, key: str) -> None:
    forms = Counter("absent" if key not in props(r) else repr(props(r)[key])
                    for _, r in sim.records if not props(r).get(key))
    assert {"absent", "None", "''"} <= forms.keys()


def test_all_addresses_are_documentation_ranges(sim: Simulation) -> None:
    addresses = {props(r)["ipAddress"] for _, r in sim.records}
    for address in addresses:
        ip = ipaddress.ip_address(address)
        assert any(ip in network for network in DOC_NETWORKS), address


def test_batch_subrequests_share_the_operation_id(sim: Simulation) -> None:
    by_operation: dict[str, list[str]] = defaultdict(list)
    for _, record in sim.records:
        by_operation[props(record)["operationId"]].append(path_of(record))
    batches = [paths for paths in by_operation.values() if "/v1.0/$batch" in paths]
    assert batches and all(len(paths) >= 4 for paths in batches)


def test_paging_throttling_and_not_found_occur(sim: Simulation) -> None:
    uris = [props(r)["requestUri"] for _, r in sim.records]
    statuses = Counter(props(r)["responseStatusCode"] for _, r in sim.records)
    assert any("$skiptoken=" in uri for uri in uris)
    assert any("$top=999" in uri for uri in uris)
    assert any("$deltatoken=" in uri for uri in uris)
    assert statuses[429] > 0 and statuses[404] > 0 and statuses[302] > 0


def test_working_hours_are_busier_than_nights(sim: Simulation) -> None:
    hours = Counter(int(r["time"][11:13]) for _, r in sim.records
                    if props(r).get("userId"))
    assert min(hours[h] for h in range(9, 17)) > 5 * max(hours[h] for h in range(0, 6))


def _output_records(sim: Simulation) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for message in sim.messages:
        body = json.loads(message.to_json())
        assert list(body) == ["records"]
        assert 1 <= len(body["records"]) <= sim.config.delivery.records_per_message
        records += body["records"]
    return records


def test_duplicates_and_late_records_roughly_as_asked() -> None:
    options = DeliveryOptions(late_fraction=0.1, duplicate_fraction=0.05, records_per_message=40)
    sim = simulate(SimulationConfig(delivery=options))
    delivered = _output_records(sim)
    ids = Counter(props(r)["requestId"] for r in delivered)
    duplicated = sum(1 for count in ids.values() if count > 1)
    assert len(delivered) == len(sim.records) + duplicated == sim.stats.records
    assert 0.035 <= duplicated / len(sim.records) <= 0.065
    # A record is visibly late when it arrives > 30 min behind the newest event already seen.
    newest, late = 0.0, 0
    seen: set[str] = set()
    for record in delivered:
        p = props(record)
        if p["requestId"] in seen:
            continue
        seen.add(p["requestId"])
        ts = epoch(p["timeGenerated"])
        late += ts < newest - 1800
        newest = max(newest, ts)
    assert 0.06 <= late / len(sim.records) <= 0.13
    assert abs(sim.stats.late / len(sim.records) - 0.1) < 0.015


def test_no_late_or_duplicate_records_when_disabled() -> None:
    options = DeliveryOptions(late_fraction=0.0, duplicate_fraction=0.0)
    sim = simulate(SimulationConfig(users=20, days=1, scenarios=("delta_sync",),
                                    delivery=options))
    delivered = _output_records(sim)
    assert len(delivered) == len(sim.records)
    times = [epoch(props(r)["timeGenerated"]) for r in delivered]
    assert all(later > earlier - 900 for earlier, later in itertools.pairwise(times))


@pytest.mark.parametrize("bad", [
    {"users": 5}, {"days": 0}, {"scenarios": ("nope",)},
    {"delivery": DeliveryOptions(late_fraction=1.5)},
    {"delivery": DeliveryOptions(records_per_message=0)},
])
def test_bad_configuration_is_a_clear_error(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        simulate(SimulationConfig(**bad))
