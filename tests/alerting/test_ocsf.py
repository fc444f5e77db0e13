"""OCSF projection (graphsentry.alerting.ocsf): every alert kind and signal, validated against
the OCSF 1.8.0 JSON Schema of Detection Finding (class 2004) with the ``cloud`` profile.

The schema is the one the OCSF schema server exports for 1.8.0, as the ``ocsf-json-schema``
package ships it (``ocsf_json_schema/ocsf/1.8.0.json``), turned into JSON Schema 2020-12 by that
package: objects closed (``additionalProperties: false``), required attributes, enum values of
every ``*_id``, the ``ip_t`` pattern, and the ``at_least_one`` / ``just_one`` constraints.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

from detectors.base import AppInfo, Signal, SignalContext, Who
from detectors.catalog import DETECTOR_IDS, load_detector_class, meta_of
from detectors.single_event import SingleEventDetector
from detectors.windows import WindowedDetector
from graphsentry.alerting import ocsf
from graphsentry.alerting.book import AlertBook, AlertLayer
from graphsentry.alerting.policy import AlertPolicy
from graphsentry.alerts import alert_from_json, alert_to_json
from graphsentry.detection import run_embedded
from tests.engine.scenario import workload

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
TENANT = "11111111-1111-1111-1111-111111111111"
APP = "22222222-2222-2222-2222-222222222222"
SP = "33333333-3333-3333-3333-333333333333"
METAS = {d: meta_of(d) for d in DETECTOR_IDS}
EVIDENCE = {"requests": 40, "source_ips": {"count": 2, "capped": False,
                                           "sample": ["203.0.113.7", "2001:db8::1"]},
            "user_agents": {"count": 1, "capped": False, "sample": ["python-requests/2.31"]},
            "sample_request_ids": ["req-1", "req-2"]}


# -- the schema --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    assert ocsf.OCSF_VERSION == "1.8.0"
    built: dict[str, Any] = OcsfJsonSchemaEmbedded(get_ocsf_schema(ocsf.OCSF_VERSION)) \
        .get_class_schema("detection_finding", list(ocsf.PROFILES))
    Draft202012Validator.check_schema(built)
    return built


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema)


def deprecated_used(value: Any, node: dict[str, Any], defs: dict[str, Any],
                    path: str = "") -> list[str]:
    """Paths of attributes the schema marks deprecated that ``value`` uses."""
    if "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[1]]
    if node.get("type") == "array" and isinstance(value, list):
        return [p for i, v in enumerate(value)
                for p in deprecated_used(v, node["items"], defs, f"{path}[{i}]")]
    found: list[str] = []
    if isinstance(value, dict) and node.get("properties"):
        for key, sub in value.items():
            prop = node["properties"][key]
            if prop.get("deprecated"):
                found.append(f"{path}.{key}")
            found += deprecated_used(sub, prop, defs, f"{path}.{key}")
    return found


def check(finding: dict[str, Any], validator: Draft202012Validator) -> dict[str, Any]:
    """Valid OCSF 1.8.0, no deprecated attribute, plain JSON, observables that point at the
    values they name; returns the finding."""
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(finding)]
    assert not errors, errors[:5]
    assert not deprecated_used(finding, validator.schema, validator.schema["$defs"])
    assert json.loads(ocsf.to_json(finding)) == finding
    for obs in finding["observables"]:
        assert resolve(finding, obs["name"]) == obs["value"], obs
    return finding


def resolve(doc: Any, name: str) -> Any:
    for part in name.split("."):
        match = re.fullmatch(r"(\w+)(?:\[(\d+)\])?", part)
        assert match is not None, name
        key, index = match.groups()
        doc = doc[key] if index is None else doc[key][int(index)]
    return doc


def test_the_schema_is_strict(validator: Draft202012Validator) -> None:
    """The validation rejects what OCSF forbids (so a passing finding means something)."""
    good = ocsf.alert_to_ocsf(detector_alerts()[0])
    assert validator.is_valid(good)
    broken = [
        {**good, "alert_id": "x"},  # not an attribute of the class
        {**good, "status_id": 7},  # not in the enum
        {**good, "class_uid": 2003},
        {**good, "finding_info": {k: v for k, v in good["finding_info"].items() if k != "uid"}},
        {**good, "cloud": {}},  # the profile's required provider
        {**good, "evidences": [{"name": "only a name"}]},  # at_least_one of actor, src_endpoint...
        {**good, "evidences": [{"src_endpoint": {"ip": "not-an-ip"}}]},
        {**good, "time": "2026-01-01T00:00:00Z"},
    ]
    for doc in broken:
        assert not validator.is_valid(doc)


# -- alerts the alert layer makes ----------------------------------------------------------------

def make_signal(detector: str, start: float, *, final: bool = True, length: float = 3600.0,
                evidence: dict[str, Any] | None = None, app: str = APP, count: int = 5,
                dedup: str = "") -> Signal:
    meta = METAS[detector]
    return Signal(detector, Who(TENANT, SP, "app_only", app, None, SP), start, start + length,
                  start + 60, start + length - 60, dict(EVIDENCE if evidence is None else evidence),
                  meta.severity, meta.fidelity, final, SignalContext(), None, dedup, count)


def layer(**policy: Any) -> tuple[AlertLayer, AlertBook]:
    return (AlertLayer(AlertPolicy(**policy), METAS),
            AlertBook(TENANT, SP, "app_only", service_principal_id=SP))


APP_INFO = AppInfo(APP, "Contoso Backup", "44444444-4444-4444-4444-444444444444", False)


def detector_alerts(exceptions: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """app_credential_added (high fidelity): provisional then final → revisions 1 and 2."""
    lay, book = layer()
    out: list[dict[str, Any]] = []
    for final in (False, True):
        _, alerts = lay.on_signal(book, make_signal("app_credential_added", T0, final=final),
                                  APP_INFO, True, exceptions)
        out += alerts
    return out


def correlated(detectors: tuple[str, ...]) -> list[dict[str, Any]]:
    lay, book = layer(risk_threshold=40.0, min_stages=3)
    out: list[dict[str, Any]] = []
    for i, detector in enumerate(detectors):
        out += lay.on_signal(book, make_signal(detector, T0 + i * 3600), APP_INFO, True)[1]
    return out


def test_detector_alert_revision_1_is_created_and_2_updated(
        validator: Draft202012Validator) -> None:
    first, second = detector_alerts()
    assert (first["revision"], second["revision"]) == (1, 2)
    a, b = (check(ocsf.alert_to_ocsf(x), validator) for x in (first, second))
    assert (a["activity_id"], a["type_uid"], a["status_id"], a["status"]) == \
        (1, 200401, 1, "New")
    assert (b["activity_id"], b["type_uid"], b["status_id"], b["status"]) == \
        (2, 200402, 2, "In Progress")
    assert a["finding_info"]["uid"] == b["finding_info"]["uid"] == first["alert_id"]
    assert a["metadata"]["correlation_uid"] == b["metadata"]["correlation_uid"]
    assert a["metadata"]["uid"] != b["metadata"]["uid"]
    assert (a["metadata"]["sequence"], b["metadata"]["sequence"]) == (1, 2)


def test_detector_alert_fields(validator: Draft202012Validator) -> None:
    alert = detector_alerts()[-1]
    f = check(ocsf.alert_to_ocsf(alert), validator)
    ms = lambda d: int(d.timestamp() * 1000)  # noqa: E731
    assert (f["class_uid"], f["category_uid"], f["is_alert"]) == (2004, 2, True)
    assert f["metadata"]["version"] == "1.8.0" and f["metadata"]["profiles"] == ["cloud"]
    assert f["metadata"]["product"]["name"] == "graphsentry"
    assert f["metadata"]["tenant_uid"] == TENANT == f["cloud"]["account"]["uid"]
    assert f["time"] == f["end_time"] == ms(alert["last_seen"])
    assert f["start_time"] == ms(alert["first_seen"]) == f["finding_info"]["first_seen_time"]
    assert f["count"] == alert["event_count"] == 5
    assert (f["severity_id"], f["severity"]) == (4, "High")
    assert (f["confidence_id"], f["risk_score"]) == (3, alert["risk_score"])
    assert f["risk_level_id"] == ocsf.risk_level(alert["risk_score"])[0]
    info = f["finding_info"]
    assert info["types"] == ["detector"] and info["title"] == alert["title"]
    assert info["analytic"] == {
        "uid": "app_credential_added", "name": METAS["app_credential_added"].title,
        "type_id": 1, "type": "Rule", "state_id": 1, "state": "Active",
        "desc": METAS["app_credential_added"].description}
    assert info["attacks"] == [{
        "tactic": {"uid": "TA0003", "name": "Persistence",
                   "src_url": "https://attack.mitre.org/tactics/TA0003/"},
        "technique": {"uid": "T1098", "name": "Account Manipulation",
                      "src_url": "https://attack.mitre.org/techniques/T1098/"},
        "sub_technique": {"uid": "T1098.001", "name": "Additional Cloud Credentials",
                          "src_url": "https://attack.mitre.org/techniques/T1098/001/"}}]
    assert [e["uid"] for e in info["related_events"]] == [s["signal_id"] for s in alert["signals"]]
    assert info["related_events"][0]["type_uid"] == 200402  # the final signal's projection
    assert [(r["uid"], r["type"]) for r in f["resources"]] == [
        (APP, "Entra ID application"), (SP, "Entra ID service principal")]
    assert f["resources"][0]["name"] == "Contoso Backup"
    assert f["resources"][0]["data"] == {"first_party": False,
                                         "owner_tenant_id": APP_INFO.owner_tenant_id}
    by_type: dict[int, list[str]] = {}
    for obs in f["observables"]:
        by_type.setdefault(obs["type_id"], []).append(obs["value"])
    assert by_type == {10: [APP, SP], 38: ["Contoso Backup"], 31: [SP],
                       2: ["2001:db8::1", "203.0.113.7"], 16: ["python-requests/2.31"]}
    evidence = f["evidences"][0]
    assert evidence["data"] == json.loads(alert["evidence"]["evidence_json"])
    assert evidence["actor"] == {"user": {"uid": SP, "type_id": 4, "type": "Service"},
                                 "app_uid": APP, "app_name": "Contoso Backup"}
    assert [e["http_request"]["uid"] for e in f["evidences"] if e["name"] == "request"] == \
        ["req-1", "req-2"]
    assert f["unmapped"]["window_start"] == ms(alert["window_start"])
    assert f["unmapped"]["promoted_by"] == ["high_fidelity"]


def test_suppressed_alert(validator: Draft202012Validator) -> None:
    for alert in detector_alerts(exceptions=("exc-backup-window",)):
        assert alert["status"] == "suppressed"
        f = check(ocsf.alert_to_ocsf(alert), validator)
        assert (f["status_id"], f["status"]) == (3, "Suppressed")
        assert "exc-backup-window" in f["status_detail"]
        assert f["finding_info"]["analytic"]["state_id"] == 2
        assert f["unmapped"]["suppressed_by"] == ["exc-backup-window"]


def test_a_status_change_is_its_own_event(validator: Draft202012Validator) -> None:
    """An exception that comes to cover an unchanged alert re-emits the same revision with
    another status: a distinct OCSF event (metadata.uid), the same finding."""
    lay, book = layer()
    signal = make_signal("app_credential_added", T0, final=False)
    first = lay.on_signal(book, signal, APP_INFO, True)[1]
    second = lay.on_signal(book, signal, APP_INFO, True, ("exc-late",))[1]
    assert [a["revision"] for a in first + second] == [1, 1]
    a, b = (check(ocsf.alert_to_ocsf(x), validator) for x in first + second)
    assert (a["status_id"], b["status_id"]) == (1, 3)
    assert a["finding_info"]["uid"] == b["finding_info"]["uid"]
    assert a["metadata"]["uid"] != b["metadata"]["uid"]


def test_risk_alert(validator: Draft202012Validator) -> None:
    alerts = correlated(("mailbox_enumeration", "storage_exfiltration"))
    risk = [a for a in alerts if a["kind"] == "risk"]
    assert risk
    f = check(ocsf.alert_to_ocsf(risk[-1]), validator)
    info = f["finding_info"]
    assert info["types"] == ["risk"] and info["analytic"]["uid"] == "principal_risk"
    assert info["analytic"]["type_id"] == 2 and f["confidence_id"] == 2
    assert [a["uid"] for a in info["related_analytics"]] == \
        ["mailbox_enumeration", "storage_exfiltration"]
    assert info["related_events_count"] == risk[-1]["signal_count"] == 2
    assert "actor" in f["evidences"][0] and "app_uid" not in f["evidences"][0]["actor"]
    tactics = {a["tactic"]["uid"] for a in info["attacks"] if "tactic" in a}
    assert tactics == {"TA0009", "TA0010"}
    # Exfiltration has no technique of its own here: a tactic-only entry.
    assert {"tactic": {"uid": "TA0010", "name": "Exfiltration",
                       "src_url": "https://attack.mitre.org/tactics/TA0010/"}} in info["attacks"]


def test_incident(validator: Draft202012Validator) -> None:
    alerts = correlated(("graph_enumeration", "storage_exfiltration", "app_credential_added"))
    incident = [a for a in alerts if a["kind"] == "incident"][-1]
    f = check(ocsf.alert_to_ocsf(incident), validator)
    assert f["finding_info"]["types"] == ["incident"]
    assert f["finding_info"]["analytic"]["uid"] == "attack_chain"
    assert (f["severity_id"], f["confidence_id"]) == (5, 3)
    assert f["unmapped"]["stages"] == ["discovery", "exfiltration", "persistence"]
    assert f["activity_id"] == 2 and f["metadata"]["sequence"] == incident["revision"]


def test_json_form_projects_the_same(validator: Draft202012Validator) -> None:
    for alert in detector_alerts() + correlated(("graph_enumeration", "storage_exfiltration",
                                                 "app_credential_added")):
        expected = ocsf.alert_to_ocsf(alert)
        text = alert_to_json(alert)
        assert ocsf.alert_to_ocsf(json.loads(text)) == expected  # ISO-8601 strings
        assert ocsf.alert_to_ocsf(alert_from_json(text)) == expected
        assert ocsf.alert_to_ocsf_json(alert) == ocsf.to_json(expected)


def test_signals_are_findings_that_are_not_alerts(validator: Draft202012Validator) -> None:
    lay, book = layer()
    for final, exceptions in ((False, ()), (True, ()), (True, ("exc-1",))):
        record, _ = lay.on_signal(book, make_signal("storage_exfiltration", T0, final=final),
                                  APP_INFO, True, exceptions)
        f = check(ocsf.signal_to_ocsf(record), validator)
        assert f["is_alert"] is False and f["finding_info"]["types"] == ["signal"]
        assert f["finding_info"]["uid"] == record["signal_id"]
        assert f["activity_id"] == (2 if final else 1) and f["count"] == record["count"]
        assert f["status_id"] == (3 if exceptions else 2 if final else 1)
        assert f["finding_info"]["analytic"]["type_id"] == 3  # windowed: Statistical
        assert f["unmapped"]["context"] == record["context"]
        assert f["confidence_id"] == 2  # medium fidelity


def test_invalid_addresses_stay_in_the_evidence_data(validator: Draft202012Validator) -> None:
    evidence = {"source_ips": ["10.0.0.1", "unknown", "", "2001:DB8:0:0::1", "999.1.1.1"]}
    lay, book = layer()
    _, alerts = lay.on_signal(book, make_signal("app_credential_added", T0, evidence=evidence),
                              None, False)
    f = check(ocsf.alert_to_ocsf(alerts[0]), validator)
    assert [e["src_endpoint"]["ip"] for e in f["evidences"] if "src_endpoint" in e] == \
        ["10.0.0.1", "2001:db8::1"]
    assert "unknown" in json.dumps(f["evidences"][0]["data"])
    assert f["unmapped"]["enrichment_available"] is False
    assert "name" not in f["resources"][0]  # no app directory entry


def test_projection_is_deterministic() -> None:
    alert = detector_alerts()[-1]
    assert ocsf.alert_to_ocsf_json(alert) == ocsf.alert_to_ocsf_json(dict(alert))
    assert ocsf.alert_to_ocsf(alert)["time"] == \
        int(alert["last_seen"].timestamp() * 1000)  # event time, not the wall clock


# -- tables --------------------------------------------------------------------------------------

def test_attack_tables_cover_every_detector() -> None:
    for meta in METAS.values():
        for tactic in meta.tactics:
            assert tactic in ocsf.TACTICS, (meta.id, tactic)
        for technique in meta.techniques:
            parent = technique.split(".")[0]
            assert parent in ocsf.TECHNIQUES, (meta.id, technique)
            assert technique == parent or technique in ocsf.SUB_TECHNIQUES, (meta.id, technique)
        # Every technique a detector cites sits under one of the detector's own tactics.
        attacks = ocsf.attacks(meta.tactics, meta.techniques)
        assert all("tactic" in a for a in attacks), meta.id


def test_attacks_pairing() -> None:
    # T1078 is Initial Access and Defense Evasion (among others): one entry per tactic.
    got = ocsf.attacks(["TA0001", "TA0005"], ["T1078.004"])
    assert [(a["tactic"]["uid"], a["technique"]["uid"], a["sub_technique"]["name"])
            for a in got] == [("TA0001", "T1078", "Cloud Accounts"),
                              ("TA0005", "T1078", "Cloud Accounts")]
    # A technique outside the given tactics, an unknown technique, a lone tactic.
    got = ocsf.attacks(["TA0010"], ["T1530", "T9999"])
    assert got == [
        {"technique": {"uid": "T1530", "name": "Data from Cloud Storage",
                       "src_url": "https://attack.mitre.org/techniques/T1530/"}},
        {"technique": {"uid": "T9999", "src_url": "https://attack.mitre.org/techniques/T9999/"}},
        {"tactic": {"uid": "TA0010", "name": "Exfiltration",
                    "src_url": "https://attack.mitre.org/tactics/TA0010/"}}]
    assert ocsf.attacks([], []) == []


def test_analytic_types_follow_the_detector_kind() -> None:
    for detector in DETECTOR_IDS:
        cls = load_detector_class(detector)
        type_id = ocsf._analytic(detector, False)["type_id"]
        if detector in ("new_origin", "concurrent_origin"):
            assert type_id == ocsf.ANALYTIC_BEHAVIORAL
        elif issubclass(cls, WindowedDetector):
            assert type_id == ocsf.ANALYTIC_STATISTICAL
        else:
            assert type_id == ocsf.ANALYTIC_RULE, detector
            assert issubclass(cls, SingleEventDetector) or detector == "attack_tool"
    unknown = ocsf._analytic("a_future_detector", False)
    assert unknown == {"uid": "a_future_detector", "name": "a_future_detector", "type_id": 1,
                       "type": "Rule", "state_id": 1, "state": "Active"}


def test_risk_levels() -> None:
    assert [ocsf.risk_level(s)[0] for s in (0, 1, 21, 22, 47, 48, 73, 74, 100)] == \
        [0, 1, 1, 2, 2, 3, 3, 4, 4]


# -- any alert the layer can produce ------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
IPS = st.one_of(st.ip_addresses().map(str), TEXT)
SIGNALS = st.lists(st.tuples(
    st.sampled_from(DETECTOR_IDS),
    st.integers(0, 47),  # hour of the window start, over two days
    st.booleans(),  # final
    st.sampled_from([APP, "app-b", "app-c"]),
    st.lists(IPS, max_size=4),
    st.lists(TEXT, max_size=3),  # user agents
    st.lists(st.sampled_from(["exc-a", "exc-b"]), max_size=1, unique=True),
    st.integers(1, 10_000),  # events
), min_size=1, max_size=10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signals=SIGNALS, identity=st.sampled_from(["app_only", "delegated", "unknown"]),
       display=st.one_of(st.none(), TEXT), available=st.booleans())
def test_every_alert_and_signal_projects_to_a_valid_finding(
        validator: Draft202012Validator, signals: list[Any], identity: str,
        display: str | None, available: bool) -> None:
    lay = AlertLayer(AlertPolicy(risk_threshold=60.0, min_stages=3), METAS)
    user = "user-1" if identity == "delegated" else None
    sp = SP if identity == "app_only" else None
    book = AlertBook(TENANT, user or SP, identity, user_id=user, service_principal_id=sp)
    for detector, hour, final, app, ips, agents, exceptions, count in signals:
        meta = METAS[detector]
        who = Who(TENANT, user or SP, identity, app, user, sp)
        start = T0 + hour * 3600
        evidence = {"source_ips": ips, "user_agent": agents[0] if agents else None,
                    "sample_request_ids": agents, "n": count}
        signal = Signal(detector, who, start, start + 3600, start, start + 3599, evidence,
                        meta.severity, meta.fidelity, final, SignalContext(), None, "", count)
        info = AppInfo(app, display, None, app == APP) if display is not None else None
        record, alerts = lay.on_signal(book, signal, info, available, tuple(exceptions))
        check(ocsf.signal_to_ocsf(record), validator)
        for alert in alerts:
            f = check(ocsf.alert_to_ocsf(alert), validator)
            event(f"{alert['kind']} {alert['status']} revision {min(alert['revision'], 2)}")
            assert f["finding_info"]["uid"] == alert["alert_id"]
            assert f["activity_id"] == (1 if alert["revision"] == 1 else 2)
            assert f["type_uid"] == 200400 + f["activity_id"]
            assert (f["status_id"] == 3) == (alert["status"] == "suppressed")
            assert f["count"] == alert["event_count"]
            assert f["start_time"] <= f["time"] == f["end_time"]


# -- the real flow and the command ----------------------------------------------------------------

def raw_workload(path: Path) -> None:
    """tests.engine.scenario's workload in the Event Hub delivery shape ``detect`` reads."""
    keys = {"request_id": "requestId", "request_method": "requestMethod",
            "request_uri": "requestUri", "response_status_code": "responseStatusCode",
            "response_size_bytes": "responseSizeBytes", "tenant_id": "tenantId",
            "ip_address": "ipAddress", "user_agent": "userAgent", "app_id": "appId",
            "service_principal_id": "servicePrincipalId"}
    with path.open("w", encoding="utf-8") as out:
        for rec in workload():
            props = {raw: rec[k] for k, raw in keys.items()}
            props["timeGenerated"] = rec["time_generated"].astimezone(UTC).isoformat()
            out.write(json.dumps({"category": "MicrosoftGraphActivityLogs",
                                  "properties": props}) + "\n")


def test_the_flows_alerts_and_signals_validate(validator: Draft202012Validator) -> None:
    alerts: list[dict[str, Any]] = []
    signals: list[dict[str, Any]] = []
    run_embedded(workload(), on_alert=alerts.append, on_signal=signals.append)
    assert alerts and signals
    for alert in alerts:
        check(ocsf.alert_to_ocsf(alert), validator)
    for signal in signals:
        check(ocsf.signal_to_ocsf(signal), validator)


def test_detect_format_ocsf(tmp_path: Path, validator: Draft202012Validator) -> None:
    source = tmp_path / "activity.jsonl"
    raw_workload(source)
    lines = {}
    for fmt in ("json", "ocsf"):
        out = tmp_path / f"alerts.{fmt}.jsonl"
        done = subprocess.run([sys.executable, "-m", "graphsentry.cli", "detect", str(source),
                               "--format", fmt, "--alerts-out", str(out), "--quiet"],
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        lines[fmt] = out.read_text(encoding="utf-8").splitlines()
    assert len(lines["ocsf"]) == len(lines["json"]) >= 1
    for alert_line, finding_line in zip(lines["json"], lines["ocsf"], strict=True):
        finding = check(json.loads(finding_line), validator)
        assert finding == ocsf.alert_to_ocsf(json.loads(alert_line))
    assert datetime.fromtimestamp(finding["time"] / 1000, UTC).year == 2026


# -- the Kafka topic ------------------------------------------------------------------------------

def test_alert_sink_writes_findings_to_the_ocsf_topic(
        kafka_bootstrap: str, topic_factory: Callable[..., str],
        validator: Draft202012Validator) -> None:
    """The alert sink on the real broker: with ``alerts_ocsf`` set, every alert version also
    goes there as a finding (JSON, key alert id); with it null (the default) the sink still
    writes the Avro alerts."""
    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.testing import TestingSource, run_main

    from dataflows.kafka_io import alert_sink
    from graphsentry.config import config_from_dict
    from tests.integration.kafka_util import read_all

    alerts = detector_alerts() + correlated(("graph_enumeration", "storage_exfiltration",
                                             "app_credential_added"))
    compact = {"cleanup.policy": "compact"}
    for name, with_ocsf in (("on", True), ("off", False)):
        topics = {"alerts": topic_factory(2, f"alerts-{name}", compact), "alerts_json": None,
                  "alerts_ocsf": topic_factory(2, f"ocsf-{name}", compact) if with_ocsf
                  else None}
        config = config_from_dict({"kafka": {"bootstrap": kafka_bootstrap,
                                             "topics": topics}}, env={})
        flow = Dataflow(f"ocsf_sink_{name}")
        op.output("alerts", op.input("in", flow, TestingSource(alerts)), alert_sink(config))
        run_main(flow)  # type: ignore[no-untyped-call]
        assert len(read_all(kafka_bootstrap, topics["alerts"])) == len(alerts)
        if with_ocsf:
            messages = read_all(kafka_bootstrap, topics["alerts_ocsf"])
            assert len(messages) == len(alerts)
            by_version = {}
            for msg in messages:
                assert dict(msg.headers() or [])["content-type"] == b"application/json"
                finding = check(json.loads(msg.value() or b""), validator)
                assert (msg.key() or b"").decode() == finding["finding_info"]["uid"]
                by_version[finding["metadata"]["uid"]] = finding
            assert by_version == {f["metadata"]["uid"]: f
                                  for f in map(ocsf.alert_to_ocsf, alerts)}
