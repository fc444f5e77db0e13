"""A small simulated tenant written once per test session: raw Event Hub JSON plus labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphsentry.simulate import SimulationConfig, simulate
from graphsentry.simulate.labels import write_labels


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(raw.jsonl, raw.jsonl.labels.json)`` for seed 5, 20 users, warm-up day + attack day."""
    folder = tmp_path_factory.mktemp("simulated")
    sim = simulate(SimulationConfig(seed=5, users=20, days=2))
    raw = folder / "raw.jsonl"
    raw.write_text("".join(m.to_json() + "\n" for m in sim.messages), encoding="utf-8")
    labels = folder / "raw.jsonl.labels.json"
    write_labels(labels, sim.labels_document())
    return raw, labels
