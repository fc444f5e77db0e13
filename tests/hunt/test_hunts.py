"""Hunts over a simulated tenant: the injected attacks and look-alikes show where expected."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from graphsentry.backtest.matching import Scenario, load_labels
from graphsentry.hunt.changes import hunt_changes, succeeded_write, target_of
from graphsentry.hunt.denied import hunt_denied
from graphsentry.hunt.origins import hunt_origins, network_of
from graphsentry.ingest import iter_records
from tests.backtest.conftest import simulated  # noqa: F401  (session fixture)


@pytest.fixture(scope="module")
def records(simulated: tuple[Path, Path]) -> list[dict[str, Any]]:  # noqa: F811
    return list(iter_records([str(simulated[0])]))


@pytest.fixture(scope="module")
def scenarios(simulated: tuple[Path, Path]) -> dict[str, Scenario]:  # noqa: F811
    return {s.name: s for s in load_labels(simulated[1]).scenarios}


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def test_attacker_network_is_new_for_the_managed_identity(
        records: list[dict[str, Any]], scenarios: dict[str, Scenario]) -> None:
    chain = scenarios["mi_token_theft_chain"]
    rows = [r for r in hunt_origins(records, app_id=chain.app_id)
            if chain.principal_id in r["principal_sample"]]
    assert {r["app_id"] for r in rows} == {chain.app_id}
    usual = [r for r in rows if r["first_seen"] < at(chain.start)]
    new = [r for r in rows if r["first_seen"] >= at(chain.start)]
    assert usual, "the identity has a history before the attack"
    assert new, "the attack comes from a network the identity never used before"
    assert all(r["identity_types"] == ["app_only"] for r in new)
    assert all(r["network"] not in {u["network"] for u in usual} for r in new)
    assert sum(r["requests"] for r in new) > 100


def test_credential_additions_show_in_changes(
        records: list[dict[str, Any]], scenarios: dict[str, Scenario]) -> None:
    rows = hunt_changes(records)
    for name in ("mi_token_theft_chain", "sp_credential_added"):
        scenario = scenarios[name]
        added = [r for r in rows if r["app_id"] == scenario.app_id
                 and r["template"].endswith("/addPassword")
                 and scenario.principal_id in r["principal_sample"]]
        assert added, name
        assert all(at(scenario.start) <= r["first_seen"] <= at(scenario.end) for r in added)
        assert all(r["target"] for r in added)


def test_monitor_denials_show_as_one_family(
        records: list[dict[str, Any]], scenarios: dict[str, Scenario]) -> None:
    monitor = scenarios["monitor_403"]
    rows = [r for r in hunt_denied(records) if r["app_id"] == monitor.app_id]
    assert len(rows) == 1
    row = rows[0]
    assert row["ratio"] == 1.0 and row["status_403"] == row["denied"] == row["total"]
    assert row["principal_sample"] == [monitor.principal_id]
    assert row["first_seen"] < at(monitor.start)  # the same denials happened on the warm-up day
    assert all(uri.startswith("https://graph.microsoft.com/") for uri in row["uri_sample"])


def test_filters_and_top(records: list[dict[str, Any]], scenarios: dict[str, Scenario]) -> None:
    app = scenarios["mi_token_theft_chain"].app_id
    everything = hunt_origins(records)
    assert len({r["app_id"] for r in everything}) > 3
    assert {r["app_id"] for r in hunt_origins(records, app_id=app)} == {app}
    top = hunt_origins(records, top=1)
    assert len(top) == len({r["app_id"] for r in everything})
    for row in top:  # the busiest network of each app
        busiest = max(r["requests"] for r in everything if r["app_id"] == row["app_id"])
        assert row["requests"] == busiest
    assert hunt_changes([], top=2) == [] and hunt_denied([]) == []


@pytest.mark.parametrize(("ip", "network"), [
    ("203.0.113.77", "203.0.113.0/24"), ("2001:db8:1:2::5", "2001:db8:1::/48"),
    (None, "(none)"), ("not-an-ip", "not-an-ip")])
def test_network_of(ip: str | None, network: str) -> None:
    assert network_of(ip) == network


def test_write_helpers() -> None:
    base = {"is_write": True, "response_status_code": 204, "target_user": "u1"}
    assert succeeded_write(base) and target_of(base) == "u1"
    assert not succeeded_write({**base, "response_status_code": 403})
    assert not succeeded_write({**base, "is_write": False})
    assert target_of({"target_application": "a", "target_user": "u"}) == "a"


def test_hunt_command_writes_csv_and_json(simulated: tuple[Path, Path],  # noqa: F811
                                          scenarios: dict[str, Scenario], tmp_path: Path) -> None:
    import csv
    import json
    import subprocess
    import sys

    def hunt(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "graphsentry.cli", "hunt", *args],
                              capture_output=True, text=True, timeout=120, check=False)

    monitor = scenarios["monitor_403"]
    out = tmp_path / "denied.csv"
    done = hunt("denied", str(simulated[0]), "--format", "csv", "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["ratio"] for r in rows if r["app_id"] == monitor.app_id] == ["1.0"]
    chain = scenarios["mi_token_theft_chain"]
    done = hunt("changes", str(simulated[0]), "--format", "json", "--app", chain.app_id)
    assert done.returncode == 0, done.stderr
    changes = [json.loads(line) for line in done.stdout.splitlines()]
    assert changes and {c["app_id"] for c in changes} == {chain.app_id}
    assert any(c["template"].endswith("/addPassword") for c in changes)
    neither = hunt("origins")
    assert neither.returncode == 2 and "give input files or --topic" in neither.stderr
    misuse = hunt("denied", str(simulated[0]), "--asn-store")
    assert misuse.returncode == 2 and "apply to origins only" in misuse.stderr
