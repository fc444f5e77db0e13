"""owner_added: an owner was added to an application or a service principal through Graph.

What: a successful (2xx) ``POST`` of ``/applications/{id}/owners/$ref`` or
``/servicePrincipals/{id}/owners/$ref`` (also addressed as ``(appId='…')``; type-cast segments
never hide the template). An owner of an application can add credentials to it and act as it:
adding one is a quiet way to keep access (and the usual first step before ``addPassword``).

Severity and fidelity from context (the caller's profile sealed one lateness before the
event): a principal that added owners before (an app-management pipeline, a governance app)
— low/low; an established principal for the first time — high/high; the same while it is in
its learning period — high/medium (a signal); from a network new to an established caller —
critical/high.
One signal per (principal, target object, hour).

ATT&CK: TA0003 Persistence, TA0004 Privilege Escalation; T1098 Account Manipulation.

False positives: application-management automation and admins handing over ownership in
their learning period.
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors._accumulators import validate_params
from detectors.base import DetectorMeta, EventContext
from detectors.event import GraphEvent
from detectors.single_event import Match, SingleEventDetector, grade, succeeded_2xx
from detectors.templates import canonical_template

OWNER_TEMPLATES = frozenset({
    "/applications/{id}/owners/$ref", "/serviceprincipals/{id}/owners/$ref",
})
MARK = "owner_added"


@dataclass(frozen=True, slots=True)
class Params:
    window_seconds: float = 3600.0
    """Owners added to one object within this tumbling window make one signal."""

    def __post_init__(self) -> None:
        validate_params(self)


def is_owner_added(event: GraphEvent) -> bool:
    return event.method == "POST" and canonical_template(event.template) in OWNER_TEMPLATES


class OwnerAdded(SingleEventDetector):
    meta = DetectorMeta(
        id="owner_added",
        title="Owner added to an application or service principal",
        description="A principal added an owner to an application or service principal "
                    "through Microsoft Graph.",
        severity="medium",
        tactics=("TA0003", "TA0004"),
        techniques=("T1098",),
        stage="persistence",
        fidelity="medium",
        false_positives=("Application-management automation in its learning period",
                         "Administrators handing over application ownership"),
        references=(
            "https://learn.microsoft.com/en-us/graph/api/application-post-owners",
            "https://attack.mitre.org/techniques/T1098/",
        ),
    )

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.window_seconds = self.params.window_seconds

    def candidate(self, event: GraphEvent) -> bool:
        return succeeded_2xx(event) and is_owner_added(event)

    def match(self, event: GraphEvent, ctx: EventContext) -> Match | None:
        if not (succeeded_2xx(event) and is_owner_added(event)):
            return None
        severity, fidelity, recurring = grade(ctx, MARK, event, ("high", "high"))
        target = (event.target_application or "").lower() or None
        kind = ("service principal" if canonical_template(event.template).startswith(
            "/serviceprincipals/") else "application")
        return Match(
            dedup=target or canonical_template(event.template),
            severity=severity, fidelity=fidelity,
            title=f"Owner added to {kind} {target or ''}".rstrip(),
            evidence={
                "object_kind": kind, "target": target, "template": event.template,
                "recurring": recurring, "new_network": ctx.facts.new_network,
                "ip": event.ip, "user_agent": event.user_agent,
                "request_id": event.request_id,
            },
        )

    def learn(self, event: GraphEvent, hit: Match, ctx: EventContext) -> None:
        if ctx.profile is not None:
            ctx.profile.mark(MARK, event.ts)
