"""Output files that cannot be created are a one-line error with exit status 2, found before
the command reads or computes anything (and no directory is created for them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphsentry.cli import main
from graphsentry.commands._output import check_writable
from graphsentry.errors import GraphsentryError


@pytest.fixture(autouse=True)
def _no_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRAPHSENTRY_CONFIG", raising=False)


@pytest.mark.parametrize("option", ["--alerts-out", "--rejects", "--signals-out"])
def test_detect_refuses_an_output_in_a_missing_directory(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str) -> None:
    source = tmp_path / "good.jsonl"
    source.write_text("{}\n", encoding="utf-8")
    missing = tmp_path / "nonexistent"
    target = missing / "x.jsonl"
    assert main(["detect", str(source), option, str(target)]) == 2
    assert capsys.readouterr() == (
        "", f"graphsentry detect: error: cannot write {target} ({option}): "
            f"directory {missing} does not exist\n")
    assert not missing.exists()


def test_detect_refuses_a_directory_as_output(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "good.jsonl"
    source.write_text("{}\n", encoding="utf-8")
    assert main(["detect", str(source), "--alerts-out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"graphsentry detect: error: cannot write {tmp_path} "
                                       "(--alerts-out): is a directory\n")


@pytest.mark.parametrize(("argv", "option"), [
    (["backtest", "--input", "in.jsonl", "--labels", "labels.json", "--json", "{target}"],
     "--json"),
    (["backtest", "--input", "in.jsonl", "--labels", "labels.json", "--html", "{target}"],
     "--html"),
    (["hunt", "origins", "in.jsonl", "--out", "{target}"], "--out"),
    (["replay", "--from=-1h", "--to=-0h", "--out", "{target}"], "--out"),
    (["simulate", "--out", "-", "--labels", "{target}"], "--labels"),
])
def test_commands_refuse_an_output_in_a_missing_directory_before_working(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
        option: str) -> None:
    target = tmp_path / "nonexistent" / "out.txt"
    assert main([a.replace("{target}", str(target)) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # simulate --out - would have written the logs before failing
    assert err == (f"graphsentry {argv[0]}: error: cannot write {target} ({option}): "
                   f"directory {target.parent} does not exist\n")


def test_check_writable_accepts_new_and_existing_files_and_creates_nothing(
        tmp_path: Path) -> None:
    existing = tmp_path / "old.jsonl"
    existing.write_text("kept\n", encoding="utf-8")
    check_writable(str(tmp_path / "new.jsonl"), "--out")
    check_writable(str(existing), "--out")
    check_writable("-", "--out")
    check_writable(None, "--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.jsonl"]
    assert existing.read_text(encoding="utf-8") == "kept\n"


def test_check_writable_names_a_file_under_a_file(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("", encoding="utf-8")
    with pytest.raises(GraphsentryError, match=r"\(--json\): directory .*plain does not exist"):
        check_writable(str(plain / "x.json"), "--json")
