"""Building the detection engine from the configuration: detectors, alert policy, learning
period, exceptions (configured ones, and the permanent allow-lists of ``suppress``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from detectors import catalog
from detectors.base import Learning
from graphsentry.alerting.exceptions import AlertException, ExceptionSet
from graphsentry.alerting.policy import AlertPolicy, RiskWeights

if TYPE_CHECKING:
    from graphsentry.config import Config
    from graphsentry.engine import DetectionEngine


def policy_from_config(config: Config) -> AlertPolicy:
    a, r = config.alerts, config.alerts.risk
    weights = RiskWeights(
        new_network=r.new_network, new_client=r.new_client, unusual_hour=r.unusual_hour,
        familiar=r.familiar, first_party_app_only=r.first_party_app_only,
        privileged={"low": 0.0, "medium": 0.0, "high": r.privileged_high,
                    "critical": r.privileged_critical},
        learning_factor=r.learning_factor)
    return AlertPolicy(risk_threshold=a.risk_threshold, min_detectors=a.min_detectors,
                       min_stages=a.min_stages,
                       horizon_seconds=a.horizon_seconds,
                       promote_fidelity=a.promote_fidelity,
                       max_signals_per_principal=a.max_signals_per_principal, risk=weights)


def configured_exceptions(config: Config) -> list[AlertException]:
    """``alerts.exceptions`` plus one permanent exception per ``suppress`` entry. Raises
    ``GraphsentryError`` naming the setting when one is invalid."""
    from graphsentry.errors import GraphsentryError

    items = []
    for index, data in enumerate(config.alerts.exceptions):
        values = {"id": f"config-{index + 1}", "author": "configuration",
                  "created": 0.0, **data, "source": "config"}
        try:
            items.append(AlertException.from_dict(values))
        except ValueError as exc:
            raise GraphsentryError(f"alerts.exceptions[{index}]: {exc}") from None
    try:
        for app in config.suppress.apps:
            items.append(AlertException(f"allow-app-{app.lower()}", "suppress.apps allow-list",
                                        "configuration", 0.0, app_id=app, source="config"))
        for principal in config.suppress.principals:
            items.append(AlertException(f"allow-principal-{principal.lower()}",
                                        "suppress.principals allow-list", "configuration", 0.0,
                                        principal_id=principal, source="config"))
    except ValueError as exc:
        raise GraphsentryError(f"suppress: {exc}") from None
    return items


def engine_from_config(cls: type[DetectionEngine], config: Config,
                       stored: list[AlertException] | None = None) -> DetectionEngine:
    """The engine; ``stored`` adds exceptions read from Redis."""
    from graphsentry.engine import EngineSettings

    detectors = catalog.build_detectors(config.detectors.params, config.detectors.enabled_ids)
    settings = EngineSettings(
        lateness=float(config.time.allowed_lateness_seconds),
        max_future_skew=float(config.time.max_future_skew_seconds),
        learning=Learning(config.learning.min_days, config.learning.min_age_seconds),
        seen_capacity=int(config.state.seen_capacity),
        policy=policy_from_config(config))
    exceptions = ExceptionSet(tuple([*configured_exceptions(config), *(stored or [])]))
    return cls(detectors, settings, exceptions, clock=time.time)
