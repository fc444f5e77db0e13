"""Exceptions from the configuration (``alerts.exceptions``, ``suppress``): an invalid one is a
user-facing error naming the setting, never a traceback, and never a blank scope that would
cover every principal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from graphsentry.cli import main
from graphsentry.config import config_from_dict
from graphsentry.engine_config import configured_exceptions
from graphsentry.errors import GraphsentryError
from tests.ingest.factory import eh_record, message


@pytest.mark.parametrize(("settings", "message"), [
    ({"alerts": {"exceptions": [{"reason": "r", "author": "a"}]}},
     "alerts.exceptions[0]: exception config-1: give at least one scope field"),
    ({"alerts": {"exceptions": [{"reason": "r", "detector": "new_origin"},
                                {"reason": "r", "principal_id": ""}]}},
     "alerts.exceptions[1]: exception config-2: empty principal_id"),
    ({"alerts": {"exceptions": [{"detector": "new_origin"}]}},
     "alerts.exceptions[0]: exception config-1: missing field(s) reason"),
    ({"alerts": {"exceptions": [{"reason": "r", "asn": -1}]}},
     "alerts.exceptions[0]: exception config-1: asn -1 is not an autonomous system number"),
    ({"alerts": {"exceptions": [{"reason": "r", "app_id": "x", "colour": "red"}]}},
     "alerts.exceptions[0]: exception config-1: unknown field(s) colour"),
    ({"suppress": {"principals": ["sp-1", " "]}}, "suppress: empty principal_id"),
    ({"suppress": {"apps": [""]}}, "suppress: empty app_id"),
])
def test_an_invalid_configured_exception_names_the_setting(settings: dict[str, Any],
                                                           message: str) -> None:
    config = config_from_dict(settings, env={})
    with pytest.raises(GraphsentryError) as raised:
        configured_exceptions(config)
    assert str(raised.value).startswith(message), str(raised.value)


def test_valid_configured_exceptions_keep_their_ids_and_scopes() -> None:
    config = config_from_dict({
        "alerts": {"exceptions": [{"reason": "export", "app_id": "app-1",
                                   "expires": "2026-12-31T00:00:00Z"}]},
        "suppress": {"apps": ["App-2"], "principals": ["SP-3"]}}, env={})
    found = [(e.id, e.author, e.app_id, e.principal_id, e.expires)
             for e in configured_exceptions(config)]
    assert found == [("config-1", "configuration", "app-1", None, 1_798_675_200.0),
                     ("allow-app-app-2", "configuration", "App-2", None, None),
                     ("allow-principal-sp-3", "configuration", None, "SP-3", None)]


def test_detect_with_an_invalid_configured_exception_exits_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("REDIS_URL", "KAFKA_BOOTSTRAP", "GRAPHSENTRY_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"redis": {"url": None}, "alerts": {"exceptions": [
        {"reason": "r", "author": "a", "principal_id": ""}]}}))
    logs = tmp_path / "logs.jsonl"
    logs.write_text(json.dumps(message(eh_record())) + "\n")
    assert main(["detect", "--config", str(config), str(logs)]) == 2
    err = capsys.readouterr().err
    assert err == ("graphsentry detect: error: alerts.exceptions[0]: exception config-1: "
                   "empty principal_id: leave a scope field out instead\n")
