"""auth_method_added: an authentication method was registered for a user through Graph.

What: a successful (2xx) POST, PUT or PATCH of ``/users/{id}/authentication/<x>Methods`` or
``/me/authentication/<x>Methods`` (optionally ``/{id}``): phone, email, FIDO2, software OATH,
Temporary Access Pass, Microsoft Authenticator, Windows Hello for Business, ... Actions under a
method (``…/phoneMethods/{id}/enableSmsSignIn``) and the generic ``methods`` collection (password
resets) are not registrations and are not matched.

Severity and fidelity from context (judged against the caller's profile sealed one lateness
before the event): for another user, the first time high/high — critical for a Temporary
Access Pass (a TAP signs in as that user without their password or MFA) — and medium when
the caller has registered that method type for others before (a helpdesk issuing TAPs to new
hires every morning), critical/high from a network new to the caller, fidelity at most medium
while the caller is in its learning period (``detectors.single_event.grade``); for the caller
herself low/low from her usual network and client, medium/medium from a new network or
client. An app-only caller always acts on another user. One signal per (principal,
target user, method type, hour).

ATT&CK: TA0003 Persistence; T1098.005 Device Registration (MFA method registration).

False positives: helpdesk staff and onboarding automation issuing TAPs or registering phones
for new hires; users registering their own methods (low, or medium from a new place).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from detectors._accumulators import caller_id, target_user_key, validate_params
from detectors.base import DetectorMeta, EventContext
from detectors.event import GraphEvent
from detectors.single_event import Match, SingleEventDetector, grade, succeeded_2xx
from detectors.templates import canonical_template

_METHOD_REGISTRATION = re.compile(
    r"^/(?:users/\{id\}|me)/authentication/([a-z0-9]+methods)(?:/[^/]+)?$")
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
TEMPORARY_ACCESS_PASS = "temporaryAccessPassMethods"
# Canonical templates are lower case; evidence uses Graph's spelling for the known types.
KNOWN_METHOD_TYPES = {name.lower(): name for name in (
    "phoneMethods", "emailMethods", "fido2Methods", "softwareOathMethods", "hardwareOathMethods",
    TEMPORARY_ACCESS_PASS, "microsoftAuthenticatorMethods", "windowsHelloForBusinessMethods",
    "passwordlessMicrosoftAuthenticatorMethods", "platformCredentialMethods",
    "x509CertificateMethods", "externalAuthenticationMethods", "qrCodePinMethods",
    "passwordMethods",
)}


@dataclass(frozen=True, slots=True)
class Params:
    window_seconds: float = 3600.0
    """Repeated registrations of one method type for one user within this window make one alert."""

    def __post_init__(self) -> None:
        validate_params(self)


def registered_method_type(event: GraphEvent) -> str | None:
    """The ``<x>Methods`` collection a write registers into, or None."""
    if event.method not in _WRITE_METHODS:
        return None
    hit = _METHOD_REGISTRATION.match(canonical_template(event.template))
    if hit is None:
        return None
    lowered = hit.group(1)
    spelled = (s for s in event.template.split("/") if s.lower() == lowered)
    return KNOWN_METHOD_TYPES.get(lowered) or next(spelled, lowered)


def target_of(event: GraphEvent) -> str:
    """The user whose methods changed; ``/me`` resolves to the caller, unknown to ``unknown``."""
    target = target_user_key(event)
    if target is None and canonical_template(event.template).startswith("/me/"):
        target = caller_id(event)
    return target or "unknown"


class AuthMethodAdded(SingleEventDetector):
    meta = DetectorMeta(
        id="auth_method_added",
        title="Authentication method registered for a user",
        description="A principal registered an authentication method (phone, FIDO2, OATH, "
                    "Temporary Access Pass, ...) for a user through Microsoft Graph.",
        severity="high",
        tactics=("TA0003",),
        techniques=("T1098.005",),
        stage="persistence",
        false_positives=("Helpdesk or onboarding automation issuing Temporary Access Passes",
                         "Users registering their own methods"),
        references=(
            "https://learn.microsoft.com/en-us/graph/api/resources/authenticationmethods-overview",
            "https://github.com/SigmaHQ/sigma/blob/master/rules/cloud/azure/audit_logs/"
            "azure_change_to_authentication_method.yml",
        ),
    )

    def __init__(self, params: Params | None = None) -> None:
        self.params = params or Params()
        self.window_seconds = self.params.window_seconds

    def candidate(self, event: GraphEvent) -> bool:
        return succeeded_2xx(event) and registered_method_type(event) is not None

    def match(self, event: GraphEvent, ctx: EventContext) -> Match | None:
        if not succeeded_2xx(event):
            return None
        method_type = registered_method_type(event)
        if method_type is None:
            return None
        target = target_of(event)
        other_user = target != caller_id(event)
        tap_for_other = other_user and method_type == TEMPORARY_ACCESS_PASS
        facts = ctx.facts
        recurring = False
        if other_user:  # for someone else: what has this principal done before?
            first = ("critical", "high") if tap_for_other else ("high", "high")
            usual = ("medium", "medium") if tap_for_other else ("medium", "low")
            severity, fidelity, recurring = grade(ctx, registration_mark(method_type), event,
                                                  first, usual)
        elif facts.new_network or facts.new_client:
            severity, fidelity = "medium", "medium"  # for herself, from a new place or client
        else:
            severity, fidelity = "low", "low"  # for herself, from her usual network and client
        return Match(
            dedup=f"{target}:{method_type}",
            severity=severity, fidelity=fidelity,
            title=f"{method_type} registered for "
                  f"{'user ' + target if other_user else 'the caller itself'}",
            evidence={
                "new_network": facts.new_network,
                "new_client": facts.new_client,
                "recurring": recurring,
                "method_type": method_type,
                "target_user": target,
                "target_is_caller": not other_user,
                "method": event.method,
                "template": event.template,
                "ip": event.ip,
                "user_agent": event.user_agent,
                "request_id": event.request_id,
            },
        )

    def learn(self, event: GraphEvent, hit: Match, ctx: EventContext) -> None:
        if ctx.profile is not None and not hit.evidence.get("target_is_caller"):
            method_type = hit.evidence.get("method_type")
            ctx.profile.mark(registration_mark(str(method_type)), event.ts)


def registration_mark(method_type: str) -> str:
    """The profile mark of a method of ``method_type`` registered for another user."""
    return f"auth_method_for_other:{method_type.lower()}"
