"""app_credential_added: a principal added a credential to an application or service principal.

What: a successful (2xx) ``addPassword``, ``addKey`` or ``addTokenSigningCertificate`` on
``/applications/{id}`` or ``/servicePrincipals/{id}`` (also addressed as ``(appId='…')``), or a
POST/PUT/PATCH of ``…/federatedIdentityCredentials``. A PATCH of ``passwordCredentials`` on the
application object itself cannot be told apart (the log has no body) and is not covered.

Severity: high; critical when the target is another application (the path's target is
neither the caller's app id nor its service principal id — the caller's *application* object
id is not in the log, so an unrecognised target counts as another app), or when the principal
read directory families (users, applications, roles, …) before: discovery then credentialing
is the persistence step of an attack chain.

One alert per (principal, target, hour): repeated additions within the hour collapse.

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
from detectors.history import PrincipalHistory
from detectors.single_event import Match, SingleEventDetector, succeeded_2xx
from detectors.templates import canonical_template

_CREDENTIAL_ACTION = re.compile(
    r"^/(?:applications|serviceprincipals)/\{id\}/(?:addpassword|addkey|addtokensigningcertificate)$")
_FEDERATED_CREDENTIAL = re.compile(
    r"^/(?:applications|serviceprincipals)/\{id\}/federatedidentitycredentials(?:/[^/]+)?$")
_FEDERATED_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True, slots=True)
class Params:
    window_seconds: float = 3600.0
    """Repeated additions to one target within this tumbling window make one alert."""

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


def is_own_object(event: GraphEvent) -> bool:
    """The target is the caller's own app id or service principal id (case-insensitive)."""
    target = (event.target_application or "").lower()
    own = {(event.app_id or "").lower(), (event.service_principal_id or "").lower()} - {""}
    return bool(target) and target in own


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
        history = ctx.history if isinstance(ctx.history, PrincipalHistory) else None
        discovery = history.directory_families_before(event.ts) if history else []
        own = is_own_object(event)
        target = event.target_application or canonical_template(event.template)
        return Match(
            dedup=target,
            severity="high" if own and not discovery else "critical",
            title=f"{kind.replace('_', ' ').capitalize()} credential added to "
                  f"{'its own application' if own else 'application ' + target}",
            evidence={
                "credential_kind": kind,
                "method": event.method,
                "template": event.template,
                "target_application": event.target_application,
                "target_is_caller": own,
                "prior_directory_families": discovery,
                "first_write_of_template": history is None or not history.knew_before(
                    history.write_templates, event.template, event.ts),
                "ip": event.ip,
                "user_agent": event.user_agent,
                "request_id": event.request_id,
            },
        )
