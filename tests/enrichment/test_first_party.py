"""Both stores answer Microsoft first-party apps from the shipped snapshot when their app
directory has no entry; a directory entry (``enrich load-apps``) always wins. The Redis store
runs against the real Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from detectors.base import AppInfo
from graphsentry.cli import main
from graphsentry.enrichment.apps import first_party_app, load_apps
from graphsentry.enrichment.memory import MemoryStore
from graphsentry.enrichment.redis_store import RedisStore

GRAPH = "00000003-0000-0000-c000-000000000000"
OFFICE = "d3590ed6-52b3-4102-aeff-aad2292ab01c"
CUSTOMER_APP = "5b1e2c7a-93d4-4f0e-8a61-2f3c9d7e4b10"
OURS = AppInfo(GRAPH, display_name="Graph (our directory)", owner_tenant_id="t",
               first_party=False, allowed=True, suppressed_detectors=frozenset({"new_origin"}))


def test_first_party_app_comes_from_the_snapshot() -> None:
    assert first_party_app(OFFICE) == AppInfo(OFFICE, display_name="Microsoft Office",
                                              first_party=True)
    assert first_party_app(CUSTOMER_APP) is None


def test_memory_store_answers_first_party_apps_it_does_not_hold() -> None:
    store = MemoryStore()
    got = store.lookup([GRAPH, OFFICE, CUSTOMER_APP], [], {})
    assert got.apps == {GRAPH: AppInfo(GRAPH, display_name="Microsoft Graph", first_party=True),
                        OFFICE: AppInfo(OFFICE, display_name="Microsoft Office",
                                        first_party=True)}
    assert store.get_app(CUSTOMER_APP) is None


def test_memory_store_directory_entry_wins() -> None:
    store = MemoryStore()
    store.put_apps([OURS])
    assert store.lookup([GRAPH], [], {}).apps == {GRAPH: OURS}
    assert store.get_app(GRAPH) == OURS


def test_loaded_entries_without_owner_or_name_are_completed(tmp_path: Path) -> None:
    path = tmp_path / "apps.csv"
    path.write_text(f"appId,displayName\n{OFFICE.upper()},\n{CUSTOMER_APP},Payroll sync\n")
    store = MemoryStore()
    assert load_apps(str(path), store).loaded == 2
    office = store.get_app(OFFICE)
    assert office is not None and office.first_party and office.display_name == "Microsoft Office"
    customer = store.get_app(CUSTOMER_APP)
    assert customer is not None and not customer.first_party
    assert customer.display_name == "Payroll sync"


def test_an_owner_outside_microsoft_is_respected(tmp_path: Path) -> None:
    path = tmp_path / "apps.csv"
    path.write_text(f"appId,displayName,appOwnerOrganizationId\n{OFFICE},Office,some-tenant\n")
    store = MemoryStore()
    load_apps(str(path), store)
    office = store.get_app(OFFICE)
    assert office is not None and not office.first_party and office.display_name == "Office"


def test_redis_store_answers_first_party_apps_it_does_not_hold(store: RedisStore) -> None:
    got = store.lookup([GRAPH, OFFICE, CUSTOMER_APP], [], {})
    assert got.available
    assert got.apps[GRAPH] == AppInfo(GRAPH, display_name="Microsoft Graph", first_party=True)
    assert got.apps[OFFICE].first_party and CUSTOMER_APP not in got.apps
    assert store.get_app(OFFICE) == AppInfo(OFFICE, display_name="Microsoft Office",
                                            first_party=True)
    trips = store.round_trips
    assert store.lookup([GRAPH, CUSTOMER_APP], [], {}).apps.keys() == {GRAPH}
    assert store.round_trips == trips  # both answers were cached


def test_redis_store_directory_entry_wins(store: RedisStore, redis_url: str,
                                          redis_namespace: str,
                                          redis_client: redis.Redis) -> None:
    store.put_apps([OURS])
    assert store.lookup([GRAPH], [], {}).apps == {GRAPH: OURS}
    # a fresh process (empty cache) reads the stored hash, not the snapshot
    other = RedisStore(redis_url, key_prefix=redis_namespace)
    try:
        assert other.lookup([GRAPH], [], {}).apps == {GRAPH: OURS}
        assert other.get_app(GRAPH) == OURS
    finally:
        other.close()
    assert redis_client.hget(f"{redis_namespace}app:{GRAPH}", "first_party") == b"0"


AZURE_POWERSHELL = "1950a258-227b-4e31-a9cf-717495945fc2"


def show_app(app_id: str, redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    monkeypatch.delenv("GRAPHSENTRY_CONFIG", raising=False)
    monkeypatch.setenv("GRAPHSENTRY_REDIS__KEY_PREFIX", namespace)
    code = main(["enrich", "--redis-url", redis_url, "show-app", app_id])
    out, err = capsys.readouterr()
    return code, out, err


def test_show_app_answers_from_the_snapshot_when_redis_has_no_entry(
        redis_url: str, redis_namespace: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = show_app(AZURE_POWERSHELL.upper(), redis_url, redis_namespace,
                              monkeypatch, capsys)
    assert (code, err) == (0, "")
    assert json.loads(out) == {"app_id": AZURE_POWERSHELL,
                               "source": "Microsoft first-party snapshot",
                               "display_name": "Microsoft Azure PowerShell",
                               "owner_tenant_id": "", "first_party": "1", "allowed": "0",
                               "suppressed_detectors": ""}
    assert first_party_app(AZURE_POWERSHELL) == AppInfo(
        AZURE_POWERSHELL, display_name="Microsoft Azure PowerShell", first_party=True)


def test_show_app_prefers_the_directory_entry_and_says_unknown_otherwise(
        store: RedisStore, redis_url: str, redis_namespace: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    store.put_apps([OURS])
    code, out, _ = show_app(GRAPH, redis_url, redis_namespace, monkeypatch, capsys)
    assert code == 0
    assert json.loads(out) == {"app_id": GRAPH, "source": "app directory (Redis)",
                               "display_name": "Graph (our directory)", "owner_tenant_id": "t",
                               "first_party": "0", "allowed": "1",
                               "suppressed_detectors": "new_origin"}
    assert show_app(CUSTOMER_APP, redis_url, redis_namespace, monkeypatch, capsys) == (
        1, "", f"app {CUSTOMER_APP}: unknown (not in the app directory nor in the Microsoft "
               "first-party snapshot)\n")
