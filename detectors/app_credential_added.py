"""app_credential_added: a principal added a credential to an application or service principal.

What: a successful (2xx) ``addPassword``, ``addKey`` or ``addTokenSigningCertificate`` on
``/applications/{id}`` or ``/servicePrincipals/{id}`` (also addressed as ``(appId='…')``), or a
POST/PUT/PATCH of ``…/federatedIdentityCredentials``. A PATCH of ``passwordCredentials`` on the
application object itself cannot be told apart (the log has no body) and is not covered.

Severity and fidelity from context (the caller's profile sealed one lateness before the
event):

* **its own object** — the path names the caller's app id or service principal id, the app
  directory's application object id, or a target this principal added credentials to before
  (secret rotation by a CI pipeline addresses its application by object id, which the log
  does not tie to the caller: learned from history) — low/low;
* **another principal's** — a service principal id other than the caller's, or
  ``(appId='…')`` of another app — high/high;
* **an application object the caller is not known to own** (``/applications/{object id}``,
  nothing learned yet) — high/high the first time for an established caller, high/medium
  while it is in its learning period (``detectors.single_event.grade``);
* any of these from a network new to an established caller — critical/high (high/medium for
  a known self-rotation).

Discovery followed by credentialing is correlated by the alert layer's attack chain. One
signal per (principal, target, hour): repeated additions within the hour collapse.

ATT&CK: TA0003 Persistence; T1098.001 Additional Cloud Credentials.

False positives: deployment pipelines and secret-rotation automation that rotate credentials
of the apps they manage; allow-list them through enrichment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from detectors._accumulators import validate_params
from detectors.base import DetectorMeta, EventContext
from detectors.event import GraphEvent
from detectors.single_event import Match, SingleEventDetector, grade, succeeded_2xx
from detectors.templates import canonical_template

_CREDENTIAL_ACTION = re.compile(
    r"^/(?:applications|serviceprincipals)/\{id\}/(?:addpassword|addkey|addtokensigningcertificate)$")
_FEDERATED_CREDENTIAL = re.compile(
    r"^/(?:applications|serviceprincipals)/\{id\}/federatedidentitycredentials(?:/[^/]+)?$")
_FEDERATED_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True, slots=True)
class Params:
    window_seconds: float = 3600.0
    """Repeated additions to one target within this tumbling window make one signal."""

    def __post_init__(self) -> None:
        validate_params(self)


def credential_kind(event: GraphEvent) -> str | None:
    """``password``/``key``/``token_signing_certificate``/``federated`` for a credential write."""
    template = canonical_template(event.template)
    if event.method == "POST" and _CREDENTIAL_ACTION.match(template):
        action = template.rsplit("/", 1)[1]
        return {"addpassword": "password", "addkey": "key"}.get(action,
                                                                 "token_signing_certificate")
    if event.method in _FEDERATED_METHODS and _FEDERATED_CREDENTIAL.match(template):
        return "federated"
    return None


def is_own_object(event: GraphEvent, object_id: str | None = None) -> bool:
    """The target is the caller's own app id, service principal id or (when the app directory
    knows it) application object id (case-insensitive)."""
    target = (event.target_application or "").lower()
    own = {(event.app_id or "").lower(), (event.service_principal_id or "").lower(),
           (object_id or "").lower()} - {""}
    return bool(target) and target in own


def is_other_principal(event: GraphEvent) -> bool:
    """The path names another principal for sure: a service principal id that is not the
    caller's, or ``(appId='…')`` of another application."""
    target = (event.target_application or "").lower()
    if not target:
        return False
    template = canonical_template(event.template)
    if template.startswith("/serviceprincipals/"):
        return target != (event.service_principal_id or "").lower()
    return "appid=" in event.template.lower() and target != (event.app_id or "").lower()


class AppCredentialAdded(SingleEventDetector):
    meta = DetectorMeta(
        id="app_credential_added",
        title="Credential added to an application or service principal",
        description="A principal added a password, key, certificate or federated credential "
                    "to an application or service principal through Microsoft Graph.",
        severity="high",
        tactics=("TA0003",),
        techniques=("T1098.001",),
        stage="persistence",
        fidelity="high",
        false_positives=("Deployment pipelines or secret rotation of managed applications",),
        references=(
            "https://learn.microsoft.com/en-us/graph/api/application-addpassword",
            "https://github.com/SigmaHQ/sigma/blob/master/rules/cloud/azure/audit_logs/"
            "azure_app_credential_added.yml",
        ),
    )

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.window_seconds = self.params.window_seconds

    def candidate(self, event: GraphEvent) -> bool:
        return succeeded_2xx(event) and credential_kind(event) is not None

    def match(self, event: GraphEvent, ctx: EventContext) -> Match | None:
        if not succeeded_2xx(event):
            return None
        kind = credential_kind(event)
        if kind is None:
            return None
        target = event.target_application or canonical_template(event.template)
        own = is_own_object(event, ctx.app.object_id if ctx.app is not None else None)
        other = not own and is_other_principal(event)
        # an application object the caller is not known to own: high the first time for an
        # established principal (a write its history never had), medium while it learns
        first = ("low", "low") if own else ("high", "high")
        severity, fidelity, recurring = grade(ctx, credential_mark(target), event, first,
                                              definitive=other)
        whose = ("its own application" if own or recurring
                 else f"{'another principal' if other else 'application'} {target}")
        return Match(
            dedup=target, severity=severity, fidelity=fidelity,
            title=f"{kind.replace('_', ' ').capitalize()} credential added to {whose}",
            evidence={
                "credential_kind": kind,
                "method": event.method,
                "template": event.template,
                "target_application": event.target_application,
                "target_is_caller": own,
                "target_is_other_principal": other,
                "recurring": recurring,
                "new_network": ctx.facts.new_network,
                "ip": event.ip,
                "user_agent": event.user_agent,
                "request_id": event.request_id,
            },
        )

    def learn(self, event: GraphEvent, hit: Match, ctx: EventContext) -> None:
        if ctx.profile is not None:
            ctx.profile.mark(credential_mark(hit.dedup), event.ts)


def credential_mark(target: str) -> str:
    """The profile mark of a credential added to ``target`` (object or template)."""
    return f"credential:{target.lower()}"
