"""The command line's own options: ``--version`` from the package metadata, and
``python -m graphsentry`` as an entry point equal to ``graphsentry``."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from graphsentry.cli import main

ROOT = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def test_version_is_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr() == (f"graphsentry {VERSION}\n", "")


def test_python_dash_m_graphsentry_runs_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "graphsentry", "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"graphsentry {VERSION}\n", "")
    usage = subprocess.run([sys.executable, "-m", "graphsentry"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60, check=False)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: graphsentry ")
