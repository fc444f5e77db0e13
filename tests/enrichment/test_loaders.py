"""ip2asn and app-directory loaders, into the in-memory store (the Redis store's twin)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from graphsentry.enrichment.apps import load_apps
from graphsentry.enrichment.asn import load_asn
from graphsentry.enrichment.memory import MemoryStore
from graphsentry.errors import GraphsentryError

MS_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
APPS = [
    {"appId": "00000003-0000-0000-C000-000000000000", "displayName": "Microsoft Graph",
     "appOwnerOrganizationId": MS_TENANT, "servicePrincipalType": "Application"},
    {"appId": "22222222-2222-2222-2222-222222222222", "displayName": "Backup Runner",
     "appOwnerOrganizationId": "11111111-1111-1111-1111-111111111111",
     "allowed": True, "suppressedDetectors": ["storage_exfiltration"]},
    {"appId": "not-a-guid", "displayName": "Broken"},
    "a string",
]


def test_ip2asn_ranges_bad_lines_and_lookups(ip2asn_file: Path) -> None:
    store = MemoryStore()
    report = load_asn([str(ip2asn_file)], store)
    assert report.loaded == 5 and report.skipped == 1 and report.bad_count == 3
    assert [n for n, _ in report.bad] == [5, 6, 9]
    assert "line 5:" in report.summary("asn")
    assert store.lookup([], ["203.0.113.77"], {}).asns == {"203.0.113.77": (64500, "EXAMPLE-NET")}
    assert store.asn_of("20.1.2.3").asn == 8075  # type: ignore[union-attr]
    assert store.asn_of("2001:db8:1::5").asn == 64502  # type: ignore[union-attr]
    assert store.asn_of("2001:db8::5").asn == 64501  # type: ignore[union-attr]
    assert store.asn_of("2001:db8:2::5") is None  # between ranges
    assert store.asn_of("::ffff:1.0.0.1").asn == 13335  # type: ignore[union-attr]
    assert store.asn_of("1.0.2.1") is None and store.asn_of("not an ip") is None


def test_gzip_is_read_transparently(ip2asn_file: Path, tmp_path: Path) -> None:
    packed = tmp_path / "ip2asn.tsv.gz"
    packed.write_bytes(gzip.compress(ip2asn_file.read_bytes()))
    store = MemoryStore()
    assert load_asn([str(packed)], store).loaded == 5


@pytest.mark.parametrize("shape", ["array", "graph_page", "csv"])
def test_apps_from_graph_exports_and_csv(shape: str, tmp_path: Path) -> None:
    path = tmp_path / "apps"
    if shape == "array":
        path.write_text(json.dumps(APPS))
    elif shape == "graph_page":
        path.write_text(json.dumps({"@odata.context": "x", "value": APPS}))
    else:
        path.write_text(
            "appId,displayName,appOwnerOrganizationId,servicePrincipalType\n"
            f"00000003-0000-0000-C000-000000000000,Microsoft Graph,{MS_TENANT},Application\n"
            "not-a-guid,Broken,,\n"
            "22222222-2222-2222-2222-222222222222,Backup Runner,"
            "11111111-1111-1111-1111-111111111111,Application\n")
    store = MemoryStore()
    report = load_apps(str(path), store)
    assert report.loaded == 2
    assert report.bad_count == (1 if shape == "csv" else 2)
    graph = store.get_app("00000003-0000-0000-c000-000000000000")
    assert graph is not None and graph.first_party and graph.display_name == "Microsoft Graph"
    runner = store.get_app("22222222-2222-2222-2222-222222222222")
    assert runner is not None and not runner.first_party
    if shape != "csv":
        assert runner.allowed and runner.suppressed_detectors == {"storage_exfiltration"}


def test_unparseable_app_files_fail_clearly(tmp_path: Path) -> None:
    path = tmp_path / "apps.json"
    path.write_text("[{\"appId\": ")
    with pytest.raises(GraphsentryError, match="not valid JSON"):
        load_apps(str(path), MemoryStore())
    path.write_text("name,owner\nx,y\n")
    with pytest.raises(GraphsentryError, match="appId column"):
        load_apps(str(path), MemoryStore())
    with pytest.raises(GraphsentryError, match="cannot read"):
        load_apps(str(tmp_path / "missing.json"), MemoryStore())
