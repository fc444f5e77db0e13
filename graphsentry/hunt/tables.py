"""Tabular output shared by the hunting and backtest commands: aligned text, CSV and JSON lines.

A table is a list of column names and a list of rows (dicts keyed by those names). Numbers are
right-aligned, text left-aligned; ``None`` shows as ``-``; lists show comma-separated. CSV and
JSON keep full values (lists as ``a;b`` in CSV, arrays in JSON; datetimes as ISO-8601 UTC).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from graphsentry.errors import GraphsentryError

FORMATS = ("table", "csv", "json")
Row = Mapping[str, Any]


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 UTC with a ``Z``, seconds precision (what a person reads in a table)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cell_text(value: Any, max_width: int | None = None) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    elif isinstance(value, datetime):
        text = iso(value) or "-"
    elif isinstance(value, list | tuple | set | frozenset):
        text = ",".join(cell_text(v) for v in value) or "-"
    else:
        text = str(value)
    if max_width is not None and len(text) > max_width:
        text = text[: max_width - 1] + "…"
    return text


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def render_table(columns: Sequence[str], rows: Sequence[Row], *, max_width: int = 48,
                 headers: Mapping[str, str] | None = None,
                 right_aligned: Collection[str] = ()) -> str:
    """Aligned columns separated by two spaces; ``headers`` renames columns for display.
    Numeric columns are right-aligned, and so are those named in ``right_aligned``."""
    titles = [(headers or {}).get(c, c) for c in columns]
    texts = [[cell_text(row.get(c), max_width) for c in columns] for row in rows]
    widths = [max([len(t)] + [len(r[i]) for r in texts]) for i, t in enumerate(titles)]
    right = [c in right_aligned
             or (bool(rows) and all(_numeric(r.get(c)) or r.get(c) is None for r in rows))
             for c in columns]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right,
                                                                     strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(titles), line(["-" * w for w in widths])]
    out.extend(line(r) for r in texts)
    return "\n".join(out) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def write_rows(columns: Sequence[str], rows: Sequence[Row], fmt: str, out: TextIO,
               headers: Mapping[str, str] | None = None) -> None:
    """Write ``rows`` to ``out`` as ``table``, ``csv`` or ``json`` (one object per line)."""
    if fmt == "table":
        out.write(render_table(columns, rows, headers=headers))
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            cells = [_plain(row.get(c)) for c in columns]
            writer.writerow([";".join(map(str, c)) if isinstance(c, list) else c for c in cells])
    elif fmt == "json":
        for row in rows:
            out.write(json.dumps({c: _plain(row.get(c)) for c in columns}, sort_keys=False) + "\n")
    else:
        raise GraphsentryError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


@contextmanager
def open_output(path: str | None) -> Iterator[TextIO]:
    """``path`` opened for writing (clear error when it cannot be), or stdout for ``None``/``-``."""
    if path in (None, "-"):
        yield sys.stdout
        return
    assert path is not None
    try:
        handle = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as exc:
        raise GraphsentryError(f"cannot write {path}: {exc.strerror}") from None
    with handle:
        yield handle
