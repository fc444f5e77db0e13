from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from graphsentry.errors import GraphsentryError
from graphsentry.hunt.tables import open_output, render_table, write_rows

COLUMNS = ("app", "count", "ips", "seen")
ROWS = [
    {"app": "alpha", "count": 1200, "ips": ["10.0.0.1", "10.0.0.2"],
     "seen": datetime(2026, 1, 1, 9, 30, tzinfo=UTC)},
    {"app": "b", "count": 7, "ips": [], "seen": None},
]


def test_table_aligns_text_left_and_numbers_right() -> None:
    lines = render_table(COLUMNS, ROWS).splitlines()
    assert lines[0].split() == list(COLUMNS)
    assert lines[2].startswith("alpha   1200  10.0.0.1,10.0.0.2  2026-01-01T09:30:00Z")
    assert lines[3].split() == ["b", "7", "-", "-"]
    assert lines[0].index("count") + len("count") == lines[2].index("1200") + len("1200")


def test_long_cells_are_cut_in_tables_only() -> None:
    long_row = [{"app": "x" * 100, "count": 1, "ips": [], "seen": None}]
    assert "…" in render_table(COLUMNS, long_row, max_width=20)
    out = io.StringIO()
    write_rows(COLUMNS, long_row, "json", out)
    assert json.loads(out.getvalue())["app"] == "x" * 100


def test_csv_and_json_keep_full_values() -> None:
    out = io.StringIO()
    write_rows(COLUMNS, ROWS, "csv", out)
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert parsed[0] == {"app": "alpha", "count": "1200", "ips": "10.0.0.1;10.0.0.2",
                         "seen": "2026-01-01T09:30:00Z"}
    out = io.StringIO()
    write_rows(COLUMNS, ROWS, "json", out)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["ips"] == ["10.0.0.1", "10.0.0.2"] and second["seen"] is None


def test_unknown_format_and_unwritable_output_are_clear_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(GraphsentryError, match="unknown format"):
        write_rows(COLUMNS, ROWS, "xml", io.StringIO())
    with pytest.raises(GraphsentryError, match="cannot write"), \
            open_output(str(tmp_path / "missing" / "out.csv")):
        pass
