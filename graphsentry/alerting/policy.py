"""Alert-layer settings: risk weights, promotion thresholds, grouping periods.

Plain frozen dataclasses with documented defaults; ``graphsentry.config`` builds them from the
``alerts`` section of the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RiskWeights:
    """How a signal's risk score (1 to 100) is made (``risk.score``)."""

    severity_points: dict[str, float] = field(default_factory=lambda: {
        "low": 10.0, "medium": 25.0, "high": 50.0, "critical": 75.0})
    """Base points per severity (Elastic's ladder, scaled: 21/47/73/99 of 100)."""
    fidelity_factor: dict[str, float] = field(default_factory=lambda: {
        "low": 0.6, "medium": 1.0, "high": 1.3})
    """Multiplies the base: how often a signal of this fidelity is an attack."""
    new_network: float = 20.0
    """Points when the signal's events came from a network new to the principal."""
    new_client: float = 10.0
    """Points when they came through a client app or user agent new to the principal."""
    unusual_hour: float = 10.0
    """Points when the window started at a time of day the principal is not active at."""
    familiar: float = -20.0
    """Points when an established principal acted from known networks and clients only (as
    strong against token theft as a new network is for it)."""
    privileged: dict[str, float] = field(default_factory=lambda: {
        "low": 0.0, "medium": 0.0, "high": 5.0, "critical": 15.0})
    """Points by the privilege tier of the token's roles/scopes."""
    first_party_app_only: float = -10.0
    """Points for a Microsoft first-party application acting app-only."""
    learning_factor: float = 0.5
    """Multiplies the score while the principal is in its learning period."""


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """When signals become alerts and how alerts group."""

    risk_threshold: float = 100.0
    """A principal's risk over the horizon (sum over attack stages of each stage's highest
    signal risk) at or above which a risk alert is raised."""
    min_detectors: int = 2
    """A risk alert needs signals of at least this many detectors (one high-risk signal alone
    raises a detector alert when high-fidelity, and stays a signal otherwise)."""
    min_stages: int = 3
    """Distinct attack stages among a principal's signals within the horizon that make an
    incident (``attack_chain``) — also raised below the risk threshold."""
    horizon_seconds: float = 86_400.0
    """How far back a principal's signals accumulate risk and stages; also the bucket of the
    principal's one alert (aligned to the epoch)."""
    promote_fidelity: str = "high"
    """Signals of this fidelity raise the principal's alert on their own."""
    max_signals_per_principal: int = 512
    """Signals a principal's book keeps (the oldest are forgotten first)."""
    risk: RiskWeights = field(default_factory=RiskWeights)


DEFAULT_POLICY = AlertPolicy()
