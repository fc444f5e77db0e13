"""A default simulation shared by the simulator tests (it takes well under a second)."""

from __future__ import annotations

import pytest

from graphsentry.simulate import Simulation, SimulationConfig, simulate


@pytest.fixture(scope="session")
def sim() -> Simulation:
    return simulate(SimulationConfig())
