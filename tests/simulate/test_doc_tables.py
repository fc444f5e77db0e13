"""docs/simulation.md's scenario tables list, for every attack, exactly the detectors its label
expects (``expected_detectors``, in the label's order), and name every scenario of the profile
they document, so the tables cannot drift from the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphsentry.simulate.benchmark import BENCH_SCENARIOS, BenchScenario
from graphsentry.simulate.scenarios import SCENARIOS, Scenario

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulation.md"
NO_DETECTORS = "\u2013"  # an en dash, as the tables write it


def tables() -> dict[str, dict[str, str]]:
    """Each scenario table (keyed by its header line) as scenario name -> last cell."""
    found: dict[str, dict[str, str]] = {}
    header = ""
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            header = ""
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if not header:
            header = line
            if cells[0] == "name" and cells[-1].startswith("expected"):
                found[header] = {}
        elif header in found and cells[0].startswith("`"):
            found[header][cells[0].strip("`")] = cells[-1]
    return found


def test_the_doc_has_the_demo_and_the_quiet_attack_tables() -> None:
    headers = list(tables())
    assert [h.split(" | ")[-1] for h in headers] == ["expected detectors |",
                                                     "expected signals |"]


@pytest.mark.parametrize(("index", "scenarios", "only_new_attacks"), [
    (0, SCENARIOS, False),  # the demo profile: every scenario
    (1, BENCH_SCENARIOS, True),  # the benchmark's attacks besides the demo's
])
def test_expected_detectors_in_the_doc_match_the_labels(
        index: int, scenarios: tuple[Scenario | BenchScenario, ...],
        only_new_attacks: bool) -> None:
    table = list(tables().values())[index]
    demo = {s.name for s in SCENARIOS}
    wanted = {s.name: ", ".join(s.expected_detectors) or NO_DETECTORS for s in scenarios
              if not only_new_attacks or (s.kind == "attack" and s.name not in demo)}
    assert table == wanted
