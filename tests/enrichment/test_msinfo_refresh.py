"""``graphsentry enrich refresh-msinfo``: from the shared copy of merill/microsoft-info (the
shipped snapshot is exactly what it produces), from synthetic upstream trees (normalising and
filtering), over real HTTP from a local server, and offline (one clear line)."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from detectors import microsoft
from graphsentry.cli import main
from graphsentry.enrichment import msinfo
from tests.enrichment.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "microsoft-info"  # ../shared/data/microsoft-info
SHIPPED = ROOT / "detectors" / "data" / "microsoft_info"
MIT = "MIT License\n\nCopyright (c) 2023 Merill Fernando\n\nPermission is hereby granted...\n"


def guid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, seed))


def quoted(*fields: str) -> str:
    return ",".join('"' + f.replace('"', '""') + '"' for f in fields) + "\n"


def upstream_tree(folder: Path, apps: int = 150, permissions: int = 120,
                  extra_apps: str = "", license_text: str = MIT) -> Path:
    """An upstream layout (``_info/``, ``customdata/``) with generated rows plus quirks."""
    (folder / "_info").mkdir(parents=True, exist_ok=True)
    (folder / "customdata").mkdir(exist_ok=True)
    header = quoted("AppId", "AppDisplayName", "AppOwnerOrganizationId", "Source")
    rows = [quoted(guid(f"app{i}"), f"App {i}", "f8cdef31-a31e-4b4a-93e4-5f571e91255a", "Graph")
            for i in range(apps)]
    (folder / "_info" / "MicrosoftApps.csv").write_text(header + "".join(rows) + extra_apps,
                                                       encoding="utf-8")
    (folder / "customdata" / "OtherMicrosoftApps.csv").write_text(
        header + quoted(guid("app0"), "App 0 again", "", "GitHub")
        + quoted(guid("community"), "Community App ", "", "GitHub"), encoding="utf-8")
    for file, cols, kind in (
            ("GraphAppRoles.csv", ("Id", "Value", "DisplayName", "Description"), "role"),
            ("GraphDelegateRoles.csv", ("Id", "Value", "AdminConsentDisplayName",
                                        "AdminConsentDescription"), "scope")):
        lines = [quoted(*cols)] + [quoted(guid(f"{kind}{i}"), f"Thing{i}.Read.All",
                                          f"Read thing {i}", "Allows the app to read things.")
                                   for i in range(permissions)]
        (folder / "_info" / file).write_text("".join(lines), encoding="utf-8")
    (folder / "LICENSE").write_text(license_text, encoding="utf-8")
    return folder


def refresh(*args: str) -> int:
    return main(["enrich", "refresh-msinfo", *args])


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/microsoft-info not present")
def test_the_shipped_snapshot_is_what_the_shared_copy_gives(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    # --redis-url of a closed port: the refresh needs neither configuration nor Redis
    assert main(["enrich", "--redis-url", f"redis://127.0.0.1:{free_port()}/0",
                 "refresh-msinfo", "--from", str(SHARED), "--output", str(tmp_path)]) == 0
    for name in (microsoft.APPS_FILE, microsoft.PERMISSIONS_FILE, "LICENSE"):
        assert (tmp_path / name).read_bytes() == (SHIPPED / name).read_bytes(), name
    made = json.loads((tmp_path / "MANIFEST.json").read_text())
    shipped = json.loads((SHIPPED / "MANIFEST.json").read_text())
    for manifest in (made, shipped):
        del manifest["refreshed"], manifest["retrieved_from"]
    assert made == shipped
    assert made["upstream_commit"] == "43b8a5d9fb6648f3ef36ec051acd988fdd19558b"
    assert made["upstream_commit_date"] == "2026-08-20"
    err = capsys.readouterr().err
    assert "first-party apps 3369 (+3369 -0" in err and "716 application, 807 delegated" in err
    assert "13 placeholder GUIDs" in err and "warning" not in err


def test_quirks_are_normalised_and_non_apps_dropped(tmp_path: Path) -> None:
    extra = (quoted(" " + guid("app7").upper() + "\u00c2\u00a0", "Duplicate", "", "EntraDocs")
             + quoted("11111111-1111-1111-1111-111111111111", "Sample client id", "", "EntraDocs")
             + quoted("00000002-0000-0000-c000-000000000000", "Windows Azure Active Directory",
                      "f8cdef31-a31e-4b4a-93e4-5f571e91255a", "Graph")
             + quoted(guid("app10000"), "Dataverse for X\u00c2\u00a0BASE ", "", "EntraDocs")
             + quoted(guid("app7") + "x", "Broken", "", "EntraDocs")
             + quoted(guid("app3"), "dup", "", "EntraDocs")
             + quoted(guid("scope5"), "Thing5.Read.All - Delegated", "", "EntraDocs"))
    source = upstream_tree(tmp_path / "up", extra_apps=extra)
    out = tmp_path / "out"
    assert refresh("--from", str(source), "--output", str(out)) == 0
    apps = microsoft.parse_first_party_apps((out / microsoft.APPS_FILE).read_text())
    assert apps[guid("app10000")] == ("Dataverse for X BASE", "EntraDocs")
    assert apps["00000002-0000-0000-c000-000000000000"][1] == "Graph"  # well-known id kept
    assert apps[guid("community")] == ("Community App", "GitHub")
    assert apps[guid("app0")] == ("App 0", "Graph")  # first listing wins
    assert "11111111-1111-1111-1111-111111111111" not in apps and guid("scope5") not in apps
    assert len(apps) == 150 + 3
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert manifest["counts"]["excluded"] == {"Graph permission ids": 1, "ids listed twice": 3,
                                              "malformed ids": 1, "placeholder GUIDs": 1}
    assert manifest["upstream_commit"] is None  # no SOURCES.md, no commit in the URL
    permissions = microsoft.parse_permissions((out / microsoft.PERMISSIONS_FILE).read_text())
    assert len(permissions) == 240 and {p.kind for p in permissions} == set(microsoft.KINDS)
    assert "Merill Fernando" in (out / "LICENSE").read_text()
    assert "upstream commit `unknown`" in (out / "README.md").read_text()


def test_a_flat_directory_with_sources_md_records_the_commit(tmp_path: Path) -> None:
    tree = upstream_tree(tmp_path / "up")
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in tree.rglob("*.csv"):
        (flat / path.name).write_bytes(path.read_bytes())
    (flat / "LICENSE").write_text(MIT)
    (flat / "SOURCES.md").write_text("at commit " + "ab" * 20 + " (2026-01-02). MIT License")
    out = tmp_path / "out"
    assert refresh("--from", str(flat), "--output", str(out)) == 0
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert (manifest["upstream_commit"], manifest["upstream_commit_date"]) == ("ab" * 20,
                                                                               "2026-01-02")
    assert set(manifest["files"]) == set(msinfo.UPSTREAM_FILES.values())


@pytest.fixture
def http_base(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving an upstream tree."""
    root = upstream_tree(tmp_path / "served")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def test_refresh_over_http(http_base: str, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    assert refresh("--from", http_base + "/", "--output", str(tmp_path / "out")) == 0
    err = capsys.readouterr().err
    assert err.count("downloading ") == len(msinfo.UPSTREAM_FILES)
    assert "first-party apps 151 (+151 -0" in err
    manifest = json.loads((tmp_path / "out" / "MANIFEST.json").read_text())
    assert manifest["retrieved_from"] == http_base + "/"


def test_offline_fails_with_one_clear_line(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    base = f"http://127.0.0.1:{free_port()}/merill/microsoft-info/main"  # nothing listens
    assert refresh("--from", base, "--output", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if "error" in line]
    assert len(errors) == 1
    assert errors[0].startswith("graphsentry enrich: error: cannot download http://127.0.0.1:")
    assert "--from DIR" in errors[0]
    assert not (tmp_path / "out").exists()


def test_http_errors_name_the_status(http_base: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert refresh("--from", http_base + "/nothing-here", "--output", str(tmp_path)) == 2
    assert "HTTP 404" in capsys.readouterr().err


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p / "missing", "is not a directory"),
    (lambda p: upstream_tree(p / "t", apps=20), "look truncated"),
    (lambda p: upstream_tree(p / "t", license_text="Proprietary"), "no longer the MIT License"),
])
def test_bad_sources_are_refused(make, message: str, tmp_path: Path,  # type: ignore[no-untyped-def]
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert refresh("--from", str(make(tmp_path)), "--output", str(tmp_path / "out")) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / microsoft.APPS_FILE).exists()


def test_a_missing_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = upstream_tree(tmp_path / "t")
    (tree / "_info" / "GraphAppRoles.csv").unlink()
    assert refresh("--from", str(tree), "--output", str(tmp_path / "out")) == 2
    assert "has no GraphAppRoles.csv (nor _info/GraphAppRoles.csv)" in capsys.readouterr().err


def test_a_much_smaller_snapshot_needs_force(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert refresh("--from", str(upstream_tree(tmp_path / "big", apps=400)), "--output",
                   str(out)) == 0
    small = upstream_tree(tmp_path / "small", apps=150)
    assert refresh("--from", str(small), "--output", str(out)) == 2
    assert "refusing to replace 401 apps" in capsys.readouterr().err
    assert len(microsoft.parse_first_party_apps((out / microsoft.APPS_FILE).read_text())) == 401
    assert refresh("--from", str(small), "--output", str(out), "--force") == 0
    assert "(+0 -250;" in capsys.readouterr().err
