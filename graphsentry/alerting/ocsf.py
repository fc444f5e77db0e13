"""Alerts and signals as OCSF Detection Findings (``class_uid`` 2004) of OCSF 1.8.0 with the
``cloud`` profile: one JSON object per alert version. The mapping, field by field, and why, is
in docs/wire-format.md ("OCSF Detection Findings"); the tests validate every projection against
the OCSF 1.8.0 JSON Schema of ``detection_finding``.

:func:`alert_to_ocsf` projects a ``GraphAlert`` dict (``schemas/graph_alert.avsc``, as the alert
layer renders it, or its JSON form with ISO-8601 times), :func:`signal_to_ocsf` a ``GraphSignal``
dict. Both return plain JSON data (no ``None`` outside ``unmapped`` and evidence ``data``) that
depends only on the input dict: ``time`` is the alert's ``last_seen`` (event time of its latest
evidence, the earliest moment this version can exist), never the wall clock, so a replay
projects every alert version to the identical finding.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import metadata as package_metadata
from typing import Any

from detectors.base import FIDELITIES, DetectorMeta
from graphsentry.alerting.book import CHAIN, CHAIN_META, RISK, RISK_META

OCSF_VERSION = "1.8.0"
"""The OCSF schema version the findings follow (``metadata.version``)."""
PROFILES = ("cloud",)
CATEGORY_UID, CATEGORY_NAME = 2, "Findings"
CLASS_UID, CLASS_NAME = 2004, "Detection Finding"
PRODUCT_NAME = VENDOR_NAME = "graphsentry"
CLOUD_PROVIDER = "Azure"
DATA_SOURCE = "graph.activity.v1"
"""What graphsentry detects on: its normalized activity stream, which holds Microsoft Graph
activity logs and, when ingested, Azure AD Graph activity logs and Defender's
GraphApiAuditEvents (an alert does not record which of them its events came from)."""

ACTIVITY_CREATE, ACTIVITY_UPDATE = 1, 2
ACTIVITIES = {ACTIVITY_CREATE: "Create", ACTIVITY_UPDATE: "Update"}
SEVERITY_IDS = {"low": 2, "medium": 3, "high": 4, "critical": 5}
SEVERITIES = {0: "Unknown", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
STATUS_NEW, STATUS_IN_PROGRESS, STATUS_SUPPRESSED = 1, 2, 3
STATUSES = {STATUS_NEW: "New", STATUS_IN_PROGRESS: "In Progress",
            STATUS_SUPPRESSED: "Suppressed"}
CONFIDENCE_IDS = {"low": 1, "medium": 2, "high": 3}
CONFIDENCES = {0: "Unknown", 1: "Low", 2: "Medium", 3: "High"}
RISK_LEVELS = ((0, 0, "Info"), (21, 1, "Low"), (47, 2, "Medium"), (73, 3, "High"),
               (100, 4, "Critical"))
"""(highest risk score, ``risk_level_id``, caption): Elastic's risk-score ladder (low 21,
medium 47, high 73, critical 99), which the risk model's severity points follow; 0 (no score)
is Info."""
ANALYTIC_RULE, ANALYTIC_BEHAVIORAL, ANALYTIC_STATISTICAL = 1, 2, 3
ANALYTIC_TYPES = {ANALYTIC_RULE: "Rule", ANALYTIC_BEHAVIORAL: "Behavioral",
                  ANALYTIC_STATISTICAL: "Statistical"}
BEHAVIORAL_ANALYTICS = frozenset({"new_origin", "concurrent_origin", RISK, CHAIN})
"""Analytics over a principal's behaviour as a whole: first-seen origins against its profile,
risk accumulated across detectors, attack stages in sequence. Windowed detectors (thresholds
over the principal's sealed peaks) are Statistical; single-event rules and the rest, Rule."""
STATE_ACTIVE, STATE_SUPPRESSED = 1, 2
STATES = {STATE_ACTIVE: "Active", STATE_SUPPRESSED: "Suppressed"}
USER_TYPES = {"delegated": (1, "User"), "app_only": (4, "Service")}
ROLE_ACTOR = 2
ACCOUNT_M365_TENANT = 17
OBS_IP, OBS_USER_AGENT, OBS_RESOURCE_UID, OBS_USER_UID, OBS_RESOURCE_NAME = 2, 16, 10, 31, 38
OBSERVABLE_TYPES = {OBS_IP: "IP Address", OBS_USER_AGENT: "HTTP User-Agent",
                    OBS_RESOURCE_UID: "Resource UID", OBS_USER_UID: "User Object: uid",
                    OBS_RESOURCE_NAME: "Resource Details Object: name"}

TACTICS = {
    "TA0043": "Reconnaissance", "TA0042": "Resource Development", "TA0001": "Initial Access",
    "TA0002": "Execution", "TA0003": "Persistence", "TA0004": "Privilege Escalation",
    "TA0005": "Defense Evasion", "TA0006": "Credential Access", "TA0007": "Discovery",
    "TA0008": "Lateral Movement", "TA0009": "Collection", "TA0011": "Command and Control",
    "TA0010": "Exfiltration", "TA0040": "Impact",
}
"""MITRE ATT&CK Enterprise tactics: id → name."""
TECHNIQUES: dict[str, tuple[str, tuple[str, ...]]] = {
    "T1069": ("Permission Groups Discovery", ("TA0007",)),
    "T1078": ("Valid Accounts", ("TA0001", "TA0003", "TA0004", "TA0005")),
    "T1083": ("File and Directory Discovery", ("TA0007",)),
    "T1087": ("Account Discovery", ("TA0007",)),
    "T1098": ("Account Manipulation", ("TA0003", "TA0004")),
    "T1114": ("Email Collection", ("TA0009",)),
    "T1213": ("Data from Information Repositories", ("TA0009",)),
    "T1526": ("Cloud Service Discovery", ("TA0007",)),
    "T1530": ("Data from Cloud Storage", ("TA0009",)),
    "T1550": ("Use Alternate Authentication Material", ("TA0005", "TA0008")),
    "T1619": ("Cloud Storage Object Discovery", ("TA0007",)),
}
"""The ATT&CK techniques graphsentry's detectors cite: id → (name, the tactics it belongs to).
A test checks that every technique of every detector is here."""
SUB_TECHNIQUES = {
    "T1069.003": "Cloud Groups", "T1078.004": "Cloud Accounts", "T1087.004": "Cloud Account",
    "T1098.001": "Additional Cloud Credentials", "T1098.003": "Additional Cloud Roles",
    "T1098.005": "Device Registration", "T1114.002": "Remote Email Collection",
    "T1213.002": "Sharepoint", "T1213.005": "Messaging Applications",
    "T1550.001": "Application Access Token",
}
"""Sub-techniques: id → name (their tactics are their technique's)."""
ATTACK_URL = "https://attack.mitre.org"


# -- public ------------------------------------------------------------------------------------

def alert_to_ocsf(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The Detection Finding of one alert version (``is_alert`` true).

    ``alert``: a ``GraphAlert`` dict (datetimes, or ISO-8601 strings as in its JSON form).
    Raises ``KeyError`` when a required alert field is missing."""
    kind = str(alert.get("kind") or "detector")
    suppressed = alert.get("status") == "suppressed"
    signals = list(alert.get("signals") or ())
    if kind == "detector":
        fidelities = [str(s["fidelity"]) for s in signals if s.get("fidelity") in FIDELITIES]
        fidelity = max(fidelities, key=FIDELITIES.index) if fidelities else "high"
    else:
        fidelity = (CHAIN_META if alert["detector"] == CHAIN else RISK_META).fidelity
    evidence_app = alert["app_id"] if kind == "detector" else None
    finding = _finding(alert, uid=alert["alert_id"], is_alert=True, suppressed=suppressed,
                       fidelity=fidelity, count=int(alert.get("event_count") or 0),
                       evidence_app=evidence_app,
                       app_ids=list(alert.get("app_ids") or [alert["app_id"]]))
    info = finding["finding_info"]
    info["types"] = [kind]
    info["desc"] = _summary(alert, len(signals))
    info["related_events"] = [_related_event(s) for s in signals]
    info["related_events_count"] = int(alert.get("signal_count") or len(signals))
    if kind != "detector":
        info["related_analytics"] = [_analytic(d, False)
                                     for d in sorted({str(s["detector"]) for s in signals})]
    finding["unmapped"] = {
        "stage": alert.get("stage"),
        "stages": list(alert.get("stages") or ()),
        "window_start": _ms(alert["window_start"]),
        "window_end": _ms(alert["window_end"]),
        "final": bool(alert.get("final")),
        "promoted_by": list(alert.get("promoted_by") or ()),
        "suppressed_by": list(alert.get("suppressed_by") or ()),
        "identity_type": alert["identity_type"],
        "app_ids": list(alert.get("app_ids") or ()),
        "enrichment_available": bool((alert.get("enrichment") or {}).get("available", True)),
    }
    return finding


def signal_to_ocsf(signal: Mapping[str, Any]) -> dict[str, Any]:
    """The Detection Finding of one signal emission (``is_alert`` false): revision 1
    (provisional) is a Create, revision 2 (final) an Update.

    ``signal``: a ``GraphSignal`` dict. Raises ``KeyError`` when a required field is missing."""
    suppressed_by = list(signal.get("suppressed_by") or ())
    finding = _finding(signal, uid=signal["signal_id"], is_alert=False,
                       suppressed=bool(suppressed_by), fidelity=str(signal["fidelity"]),
                       count=int(signal.get("count") or 0), evidence_app=signal["app_id"],
                       app_ids=[signal["app_id"]])
    finding["finding_info"]["types"] = ["signal"]
    enrichment = signal.get("enrichment") or {}
    finding["unmapped"] = {
        "stage": signal.get("stage"),
        "window_start": _ms(signal["window_start"]),
        "window_end": _ms(signal["window_end"]),
        "final": bool(signal.get("final")),
        "suppressed_by": suppressed_by,
        "identity_type": signal["identity_type"],
        "context": dict(signal.get("context") or {}),
        "enrichment_available": bool(enrichment.get("available", True)),
        "asn": enrichment.get("asn"),
        "asn_name": enrichment.get("asn_name"),
    }
    return finding


def to_json(finding: Mapping[str, Any]) -> str:
    """One line of JSON (UTF-8 text, no spaces)."""
    return json.dumps(finding, ensure_ascii=False, separators=(",", ":"))


def alert_to_ocsf_json(alert: Mapping[str, Any]) -> str:
    """:func:`alert_to_ocsf` as one line of JSON: the value on ``kafka.topics.alerts_ocsf``."""
    return to_json(alert_to_ocsf(alert))


def attacks(tactics: Iterable[str], techniques: Iterable[str]) -> list[dict[str, Any]]:
    """OCSF ``attack`` objects for ATT&CK tactic and technique ids: one per (technique,
    tactic) where the technique belongs to that tactic (:data:`TECHNIQUES`), a technique-only
    one when none of ``tactics`` holds it, a tactic-only one per tactic no technique covers;
    sorted by technique, then tactic. Unknown ids keep their ``uid`` without a name."""
    tactic_ids = sorted(set(tactics))
    out: list[dict[str, Any]] = []
    covered: set[str] = set()
    for tid in sorted(set(techniques)):
        parent = tid.split(".", 1)[0]
        name, member_of = TECHNIQUES.get(parent, (None, ()))
        entry: dict[str, Any] = {"technique": _attack_ref(parent, name, "techniques")}
        if parent != tid:
            entry["sub_technique"] = _attack_ref(tid, SUB_TECHNIQUES.get(tid), "techniques")
        matching = [t for t in tactic_ids if t in member_of]
        covered.update(matching)
        for tactic in matching:
            out.append({"tactic": _attack_ref(tactic, TACTICS.get(tactic), "tactics"), **entry})
        if not matching:
            out.append(entry)
    out.extend({"tactic": _attack_ref(t, TACTICS.get(t), "tactics")}
               for t in tactic_ids if t not in covered)
    return out


def risk_level(score: int) -> tuple[int, str]:
    """(``risk_level_id``, caption) of a 0-100 risk score (:data:`RISK_LEVELS`)."""
    for top, level, caption in RISK_LEVELS:
        if score <= top:
            return level, caption
    return RISK_LEVELS[-1][1:]


# -- the parts ---------------------------------------------------------------------------------

def _finding(rec: Mapping[str, Any], *, uid: str, is_alert: bool, suppressed: bool,
             fidelity: str, count: int, evidence_app: str | None,
             app_ids: list[str]) -> dict[str, Any]:
    """What alerts and signals share: classification, times, severity, status, analytic,
    attacks, resources, evidences and observables."""
    revision = int(rec.get("revision") or 1)
    activity = ACTIVITY_CREATE if revision <= 1 else ACTIVITY_UPDATE
    status = (STATUS_SUPPRESSED if suppressed
              else STATUS_NEW if revision <= 1 else STATUS_IN_PROGRESS)
    severity = SEVERITY_IDS.get(str(rec["severity"]), 0)
    confidence = CONFIDENCE_IDS.get(fidelity, 0)
    score = max(0, min(100, int(rec.get("risk_score") or 0)))
    level, level_name = risk_level(score)
    start, end = _ms(rec["first_seen"]), _ms(rec["last_seen"])
    detector = str(rec["detector"])
    title = str(rec["title"])
    actor = _actor(rec, evidence_app)
    resources = _resources(rec, app_ids)
    evidences = _evidences(rec.get("evidence") or {}, actor)
    info: dict[str, Any] = {
        "uid": uid,
        "title": title,
        "analytic": _analytic(detector, suppressed),
        "attacks": attacks(rec.get("tactic") or (), rec.get("technique") or ()),
        "first_seen_time": start,
        "last_seen_time": end,
        "data_sources": [DATA_SOURCE],
    }
    return {
        "activity_id": activity,
        "activity_name": ACTIVITIES[activity],
        "category_uid": CATEGORY_UID,
        "category_name": CATEGORY_NAME,
        "class_uid": CLASS_UID,
        "class_name": CLASS_NAME,
        "type_uid": CLASS_UID * 100 + activity,
        "type_name": f"{CLASS_NAME}: {ACTIVITIES[activity]}",
        "time": end,
        "start_time": start,
        "end_time": end,
        "duration": max(0, end - start),
        "count": count,
        "message": title,
        "severity_id": severity,
        "severity": SEVERITIES[severity],
        "status_id": status,
        "status": STATUSES[status],
        **({"status_detail": "covered by exceptions: "
            + ", ".join(map(str, rec.get("suppressed_by") or ()))} if suppressed else {}),
        "confidence_id": confidence,
        "confidence": CONFIDENCES[confidence],
        "risk_score": score,
        "risk_level_id": level,
        "risk_level": level_name,
        "is_alert": is_alert,
        "metadata": {
            "version": OCSF_VERSION,
            "profiles": list(PROFILES),
            "product": {"name": PRODUCT_NAME, "vendor_name": VENDOR_NAME,
                        "version": _product_version()},
            "uid": f"{uid}:{revision}:{'suppressed' if suppressed else 'open'}",
            "correlation_uid": uid,
            "sequence": revision,
            "event_code": detector,
            "tenant_uid": str(rec["tenant_id"]),
        },
        "cloud": {"provider": CLOUD_PROVIDER,
                  "account": {"uid": str(rec["tenant_id"]), "type_id": ACCOUNT_M365_TENANT,
                              "type": "M365 Tenant"}},
        "finding_info": info,
        "resources": resources,
        "evidences": evidences,
        "observables": _observables(resources, evidences),
    }


def _ms(value: Any) -> int:
    """Epoch milliseconds (floored) of a UTC datetime or an ISO-8601 string."""
    if isinstance(value, str):
        from graphsentry.ingest.timeparse import parse_timestamp

        value = parse_timestamp(value)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime or ISO-8601 string, got {value!r}")
    when: datetime = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(milliseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@cache
def _product_version() -> str:
    try:
        return package_metadata.version("graphsentry")
    except package_metadata.PackageNotFoundError:
        return "unknown"


@cache
def _meta(detector: str) -> DetectorMeta | None:
    if detector == CHAIN:
        return CHAIN_META
    if detector == RISK:
        return RISK_META
    from detectors.catalog import meta_of

    try:
        return meta_of(detector)
    except ValueError:  # a detector this build does not know (an older or newer producer)
        return None


@cache
def _analytic_type(detector: str) -> int:
    if detector in BEHAVIORAL_ANALYTICS:
        return ANALYTIC_BEHAVIORAL
    from detectors.catalog import load_detector_class
    from detectors.windows import WindowedDetector

    try:
        windowed = issubclass(load_detector_class(detector), WindowedDetector)
    except ValueError:
        return ANALYTIC_RULE
    return ANALYTIC_STATISTICAL if windowed else ANALYTIC_RULE


def _analytic(detector: str, suppressed: bool) -> dict[str, Any]:
    meta = _meta(detector)
    type_id = _analytic_type(detector)
    state = STATE_SUPPRESSED if suppressed else STATE_ACTIVE
    out: dict[str, Any] = {"uid": detector, "name": meta.title if meta else detector,
                           "type_id": type_id, "type": ANALYTIC_TYPES[type_id],
                           "state_id": state, "state": STATES[state]}
    if meta is not None:
        out["desc"] = meta.description
    return out


def _attack_ref(uid: str, name: str | None, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {"uid": uid}
    if name:
        out["name"] = name
    out["src_url"] = f"{ATTACK_URL}/{kind}/{uid.replace('.', '/')}/"
    return out


def _summary(alert: Mapping[str, Any], signals: int) -> str:
    apps = list(alert.get("app_ids") or [alert["app_id"]])
    app = alert.get("app_display_name") or alert["app_id"]
    more = f" and {len(apps) - 1} more app(s)" if len(apps) > 1 else ""
    return (f"{signals} signal(s) over {int(alert.get('event_count') or 0)} event(s) of "
            f"principal {alert['principal_id']} ({alert['identity_type']}) through {app}{more}; "
            f"risk {int(alert.get('risk_score') or 0)}.")


def _related_event(ref: Mapping[str, Any]) -> dict[str, Any]:
    """A signal the alert rests on, as the Detection Finding its projection is."""
    final = bool(ref.get("final"))
    activity = ACTIVITY_UPDATE if final else ACTIVITY_CREATE
    severity = SEVERITY_IDS.get(str(ref.get("severity")), 0)
    meta = _meta(str(ref["detector"]))
    out: dict[str, Any] = {
        "uid": str(ref["signal_id"]),
        "type_uid": CLASS_UID * 100 + activity,
        "type_name": f"{CLASS_NAME}: {ACTIVITIES[activity]}",
        "title": str(ref.get("title") or (meta.title if meta else ref["detector"])),
        "severity_id": severity,
        "severity": SEVERITIES[severity],
        "first_seen_time": _ms(ref["first_seen"]),
        "last_seen_time": _ms(ref["last_seen"]),
    }
    tags = [("detector", ref.get("detector")), ("stage", ref.get("stage")),
            ("app_id", ref.get("app_id")), ("fidelity", ref.get("fidelity")),
            ("risk_score", ref.get("risk_score")), ("final", str(final).lower())]
    out["tags"] = [{"name": k, "value": str(v)} for k, v in tags if v is not None]
    return out


def _principal(rec: Mapping[str, Any]) -> dict[str, Any]:
    type_id, type_name = USER_TYPES.get(str(rec["identity_type"]), (0, "Unknown"))
    return {"uid": str(rec["principal_id"]), "type_id": type_id, "type": type_name}


def _actor(rec: Mapping[str, Any], app_id: str | None) -> dict[str, Any]:
    """The principal, and the application when the evidence comes from one app's signal."""
    actor: dict[str, Any] = {"user": _principal(rec)}
    if app_id is not None:
        actor["app_uid"] = app_id
        if rec.get("app_display_name") and app_id == rec.get("app_id"):
            actor["app_name"] = str(rec["app_display_name"])
    return actor


def _resources(rec: Mapping[str, Any], app_ids: list[str]) -> list[dict[str, Any]]:
    enrichment = rec.get("enrichment") or {}
    out: list[dict[str, Any]] = []
    for app_id in sorted(set(app_ids) | {str(rec["app_id"])}):
        app: dict[str, Any] = {"uid": app_id, "type": "Entra ID application",
                               "role_id": ROLE_ACTOR, "role": "Actor"}
        if app_id == rec["app_id"]:
            if rec.get("app_display_name"):
                app["name"] = str(rec["app_display_name"])
            known = {k: enrichment[f"app_{k}"] for k in ("first_party", "owner_tenant_id")
                     if enrichment.get(f"app_{k}") is not None}
            if known:
                app["data"] = known
        out.append(app)
    for field, kind in (("service_principal_id", "Entra ID service principal"),
                        ("user_id", "Entra ID user")):
        if rec.get(field):
            out.append({"uid": str(rec[field]), "type": kind, "role_id": ROLE_ACTOR,
                        "role": "Actor"})
    return out


def _evidences(evidence: Mapping[str, Any], actor: dict[str, Any]) -> list[dict[str, Any]]:
    """The detector evidence as ``data``, then one evidence per source IP (valid addresses
    only: anything else stays in ``data``), user agent and sample request id."""
    try:
        data: Any = json.loads(evidence.get("evidence_json") or "{}")
    except ValueError:
        data = {"evidence_json": evidence.get("evidence_json")}
    out: list[dict[str, Any]] = [{"name": "evidence", "actor": actor, "data": data}]
    for ip in _addresses(evidence.get("source_ips") or ()):
        out.append({"name": "source_ip", "actor": actor, "src_endpoint": {"ip": ip}})
    for agent in sorted(set(map(str, evidence.get("user_agents") or ()))):
        out.append({"name": "user_agent", "actor": actor,
                    "http_request": {"user_agent": agent}})
    for request_id in sorted(set(map(str, evidence.get("sample_request_ids") or ()))):
        out.append({"name": "request", "actor": actor, "http_request": {"uid": request_id}})
    return out


def _addresses(values: Iterable[Any]) -> list[str]:
    """Valid IP addresses among ``values``, canonical (compressed) and sorted."""
    found = set()
    for value in values:
        try:
            found.add(str(ipaddress.ip_address(str(value).strip())))
        except ValueError:
            continue
    return sorted(found)


def _observables(resources: list[dict[str, Any]],
                 evidences: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(name: str, type_id: int, value: str) -> None:
        out.append({"name": name, "type_id": type_id, "type": OBSERVABLE_TYPES[type_id],
                    "value": value})

    for i, res in enumerate(resources):
        add(f"resources[{i}].uid", OBS_RESOURCE_UID, res["uid"])
        if "name" in res:
            add(f"resources[{i}].name", OBS_RESOURCE_NAME, res["name"])
    add("evidences[0].actor.user.uid", OBS_USER_UID, evidences[0]["actor"]["user"]["uid"])
    for i, ev in enumerate(evidences):
        if "src_endpoint" in ev:
            add(f"evidences[{i}].src_endpoint.ip", OBS_IP, ev["src_endpoint"]["ip"])
        agent = ev.get("http_request", {}).get("user_agent")
        if agent is not None:
            add(f"evidences[{i}].http_request.user_agent", OBS_USER_AGENT, agent)
    return out
