"""``graphsentry hunt`` names each row's application: ``app_name`` next to ``app_id``, resolved
as ``graphsentry enrich show-app`` resolves it (the app directory in Redis, else the shipped
Microsoft first-party snapshot); an app neither knows keeps its id and no name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from graphsentry.cli import main
from tests.ingest.factory import eh_record, message

AZURE_CLI = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"  # in the shipped Microsoft snapshot
OUTLOOK_MOBILE = "27922004-5251-4030-b22d-91ecd9a37ea4"  # in the snapshot, renamed below
CONTOSO = "6d3f1a2b-7c8e-4f90-a1b2-c3d4e5f60718"  # the tenant's own app (directory only)
UNKNOWN = "0f0f0f0f-1111-4222-8333-444455556666"  # known to nobody


def activity(tmp_path: Path) -> Path:
    """Two requests per app, one of them denied; the Azure CLI's id in upper case (ids
    match in any case)."""
    records = []
    for n, app in enumerate((AZURE_CLI.upper(), OUTLOOK_MOBILE, CONTOSO, UNKNOWN)):
        for k, status in enumerate((200, 403)):
            request = f"a0000001-0000-4000-8000-0000000000{n}{k}"
            records.append(eh_record(appId=app, requestId=request, operationId=request,
                                     responseStatusCode=status))
    path = tmp_path / "activity.jsonl"
    path.write_text(json.dumps(message(*records)) + "\n")
    return path


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the test's configuration file says where Redis is ($REDIS_URL would override it)."""
    for name in ("REDIS_URL", "GRAPHSENTRY_CONFIG", "GRAPHSENTRY_REDIS__URL"):
        monkeypatch.delenv(name, raising=False)


def config(tmp_path: Path, redis: dict[str, Any]) -> Path:
    path = tmp_path / "hunt.yaml"
    path.write_text(yaml.safe_dump({"redis": redis}))
    return path


def hunt(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["hunt", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def names_by_app(out: str) -> dict[str, str | None]:
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows and all(list(row)[:2] == ["app_id", "app_name"] for row in rows)
    names: dict[str, str | None] = {}
    for row in rows:
        assert names.setdefault(row["app_id"], row["app_name"]) == row["app_name"]
    return names


@pytest.mark.parametrize("kind", ["origins", "denied", "changes"])
@pytest.mark.usefixtures("no_env")
def test_every_hunt_names_apps_from_the_microsoft_snapshot_without_redis(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    path = activity(tmp_path)
    cfg = config(tmp_path, {"url": None})
    if kind == "changes":  # successful writes only: make every request one
        text = path.read_text().replace('"requestMethod": "GET"', '"requestMethod": "PATCH"')
        path.write_text(text.replace("/v1.0/users", "/v1.0/users/u1"))
    code, out, err = hunt(capsys, kind, str(path), "--config", str(cfg), "--format", "json")
    assert code == 0, err
    assert names_by_app(out) == {AZURE_CLI.upper(): "Microsoft Azure CLI",
                                 OUTLOOK_MOBILE: "Outlook Mobile", CONTOSO: None,
                                 UNKNOWN: None}
    assert "snapshot only" not in err  # no Redis configured: nothing to warn about


@pytest.mark.usefixtures("no_env")
def test_the_table_shows_the_name_beside_the_id_and_a_dash_for_an_unknown_app(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(tmp_path, {"url": None})
    code, out, err = hunt(capsys, "origins", str(activity(tmp_path)), "--config", str(cfg))
    assert code == 0, err
    header, _rule, *lines = out.splitlines()
    assert header.split()[:3] == ["app_id", "app_name", "network"]
    cells = {line.split()[0]: line.split("  ") for line in lines}
    assert cells[AZURE_CLI.upper()][1] == "Microsoft Azure CLI"
    assert [c for c in cells[UNKNOWN] if c][1].strip() == "-"


def test_names_come_from_the_app_directory_as_show_app_resolves_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], redis_url: str,
        redis_namespace: str) -> None:
    cfg = config(tmp_path, {"url": redis_url, "key_prefix": redis_namespace})
    directory = tmp_path / "apps.csv"
    directory.write_text("appId,displayName\n"
                         f"{CONTOSO},Contoso HR Sync\n"
                         f"{OUTLOOK_MOBILE},Outlook (tenant name)\n")
    assert main(["enrich", "--config", str(cfg), "load-apps", str(directory)]) == 0
    capsys.readouterr()
    code, out, err = hunt(capsys, "denied", str(activity(tmp_path)), "--config", str(cfg),
                          "--format", "json")
    assert code == 0, err
    names = names_by_app(out)
    assert names == {AZURE_CLI.upper(): "Microsoft Azure CLI",  # the snapshot's
                     OUTLOOK_MOBILE: "Outlook (tenant name)",  # the directory wins
                     CONTOSO: "Contoso HR Sync", UNKNOWN: None}
    for app_id, name in names.items():  # the same answer as enrich show-app
        shown = main(["enrich", "--config", str(cfg), "show-app", app_id])
        printed = capsys.readouterr().out
        if name is None:
            assert shown == 1
        else:
            assert shown == 0 and json.loads(printed)["display_name"] == name


@pytest.mark.usefixtures("no_env")
def test_an_unreachable_app_directory_falls_back_to_the_snapshot_with_a_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(tmp_path, {"url": "redis://127.0.0.1:1/0"})
    path = activity(tmp_path)
    code, out, err = hunt(capsys, "origins", str(path), "--config", str(cfg), "--format",
                          "json")
    assert code == 0, err
    assert names_by_app(out)[AZURE_CLI.upper()] == "Microsoft Azure CLI"
    assert ("graphsentry hunt: app names from the Microsoft first-party snapshot only, not the "
            "app directory (cannot reach Redis at redis://127.0.0.1:1/0") in err
    # --asn-store asks for Redis itself: there the same problem is an error.
    code, out, err = hunt(capsys, "origins", str(path), "--config", str(cfg), "--asn-store")
    assert code == 2 and out == ""
    assert "error: --asn-store: cannot reach Redis at redis://127.0.0.1:1/0" in err
