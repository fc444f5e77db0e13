"""Unreadable input files are a one-line error with exit status 2, found before a dataflow
starts (inside one, the error would surface as a Bytewax runtime error and a Rust backtrace)."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphsentry.cli import main


@pytest.mark.parametrize("name", ["nowhere.jsonl", "a-directory"])
def test_detect_names_an_unreadable_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str],
                                          name: str) -> None:
    monkeypatch.delenv("GRAPHSENTRY_CONFIG", raising=False)
    (tmp_path / "a-directory").mkdir()
    path = tmp_path / name
    assert main(["detect", str(path)]) == 2
    problem = "Is a directory" if path.is_dir() else "No such file or directory"
    assert capsys.readouterr() == ("", f"graphsentry detect: error: cannot read {path}: "
                                       f"{problem}\n")
