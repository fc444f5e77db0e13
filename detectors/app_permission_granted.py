"""app_permission_granted: an app role or a delegated permission was granted through Graph.

What: a successful (2xx) ``POST`` of an app role assignment —
``/servicePrincipals/{id}/appRoleAssignments``, ``…/appRoleAssignedTo``,
``/users/{id}/appRoleAssignments``, ``/groups/{id}/appRoleAssignments`` — or a ``POST`` of a
delegated permission grant (``/oauth2PermissionGrants``) or a ``PATCH`` of one (its scopes
widened). Type-cast segments (``…/microsoft.graph.x/…``) never hide the template
(``detectors.templates``).

Severity and fidelity from context (the caller's profile sealed one lateness before the
event): a principal that has granted this kind before (an identity-governance app assigning
roles every day, an admin who consents weekly) — low/low; an established principal granting
for the first time — high/high (automation granting itself ``RoleManagement`` or
``AppRoleAssignment.ReadWrite.All``, or an admin session consenting tenant-wide to an unknown
app, are the classic escalations); the same while the principal is in its learning period —
high/medium (a signal); from a network new to an established caller — critical/high.
One signal per (principal, template, target object, hour).

ATT&CK: TA0003 Persistence, TA0004 Privilege Escalation; T1098.003 Account Manipulation:
Additional Cloud Roles. (Illicit consent grants, T1528, start the same way.)

False positives: identity-governance and provisioning apps in their learning period; admins
consenting to a new application.
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors._accumulators import validate_params
from detectors.base import DetectorMeta, EventContext
from detectors.event import GraphEvent
from detectors.single_event import Match, SingleEventDetector, grade, succeeded_2xx
from detectors.templates import canonical_template

ROLE_ASSIGNMENTS = frozenset({
    "/serviceprincipals/{id}/approleassignments", "/serviceprincipals/{id}/approleassignedto",
    "/users/{id}/approleassignments", "/groups/{id}/approleassignments",
})
GRANTS = "/oauth2permissiongrants"


@dataclass(frozen=True, slots=True)
class Params:
    window_seconds: float = 3600.0
    """Repeated grants on one target within this tumbling window make one signal."""

    def __post_init__(self) -> None:
        validate_params(self)


def grant_kind(event: GraphEvent) -> str | None:
    """``app_role`` or ``delegated_grant`` for a granting write, else None."""
    template = canonical_template(event.template)
    if event.method == "POST" and template in ROLE_ASSIGNMENTS:
        return "app_role"
    if event.method == "POST" and template == GRANTS:
        return "delegated_grant"
    if (event.method == "PATCH" and template.startswith(GRANTS + "/")
            and template.count("/") == 2):  # one grant, by whatever id shape
        return "delegated_grant"
    return None


class AppPermissionGranted(SingleEventDetector):
    meta = DetectorMeta(
        id="app_permission_granted",
        title="App role or delegated permission granted",
        description="A principal assigned an app role or granted (or widened) a delegated "
                    "permission grant through Microsoft Graph.",
        severity="high",
        tactics=("TA0003", "TA0004"),
        techniques=("T1098.003",),
        stage="persistence",
        fidelity="medium",
        false_positives=("Identity governance or provisioning apps in their learning period",
                         "Administrators consenting to a new application"),
        references=(
            "https://learn.microsoft.com/en-us/graph/api/serviceprincipal-post-approleassignments",
            "https://learn.microsoft.com/en-us/graph/api/oauth2permissiongrant-post",
            "https://attack.mitre.org/techniques/T1098/003/",
        ),
    )

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.window_seconds = self.params.window_seconds

    def candidate(self, event: GraphEvent) -> bool:
        return succeeded_2xx(event) and grant_kind(event) is not None

    def match(self, event: GraphEvent, ctx: EventContext) -> Match | None:
        if not succeeded_2xx(event):
            return None
        kind = grant_kind(event)
        if kind is None:
            return None
        severity, fidelity, recurring = grade(ctx, f"grant:{kind}", event, ("high", "high"))
        target = (event.target_application or event.target_user or "").lower()
        return Match(
            dedup=f"{canonical_template(event.template)}|{target}",
            severity=severity, fidelity=fidelity,
            title=f"{'App role' if kind == 'app_role' else 'Delegated permission'} granted"
                  f"{' (recurring)' if recurring else ''}",
            evidence={
                "grant_kind": kind, "method": event.method, "template": event.template,
                "target": target or None, "recurring": recurring,
                "new_network": ctx.facts.new_network, "ip": event.ip,
                "user_agent": event.user_agent, "request_id": event.request_id,
            },
        )

    def learn(self, event: GraphEvent, hit: Match, ctx: EventContext) -> None:
        kind = grant_kind(event)
        if ctx.profile is not None and kind is not None:
            ctx.profile.mark(f"grant:{kind}", event.ts)
