"""A signal's risk score: severity times fidelity, plus context points, 1 to 100.

``score = clamp(round((severity_points[severity] * fidelity_factor[fidelity] + context)
* (learning_factor if learning)), 1, 100)`` where context adds the configured points for a
new network (not for ``new_origin`` itself, whose severity already says it), a new client,
an unusual hour, a familiar origin (negative), the token's privilege tier and a first-party
application acting app-only (negative). Every input is part of the signal and independent of
arrival order, so the score is too.
"""

from __future__ import annotations

from detectors.base import Signal
from graphsentry.alerting.policy import RiskWeights

NEW_ORIGIN = "new_origin"


def score(signal: Signal, weights: RiskWeights) -> int:
    """The signal's risk score, 1 to 100."""
    ctx = signal.context
    points = (weights.severity_points.get(signal.severity, 25.0)
              * weights.fidelity_factor.get(signal.fidelity, 1.0))
    if ctx.new_network is not None and signal.detector != NEW_ORIGIN:
        points += weights.new_network
    if ctx.new_client:
        points += weights.new_client
    if ctx.unusual_hour:
        points += weights.unusual_hour
    if not ctx.learning and ctx.new_network is None and not ctx.new_client:
        points += weights.familiar
    points += weights.privileged.get(ctx.privilege, 0.0)
    if ctx.first_party_app and signal.who.identity_type == "app_only":
        points += weights.first_party_app_only
    if ctx.learning:
        points *= weights.learning_factor
    return max(1, min(100, round(points)))
