"""Avro schemas: the single source of truth for graphsentry's wire formats."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Return the parsed JSON of ``schemas/<name>.avsc`` (e.g. ``graph_activity``)."""
    path = SCHEMA_DIR / f"{name}.avsc"
    if not path.exists():
        raise FileNotFoundError(f"no Avro schema named {name!r} in {SCHEMA_DIR}")
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def field_names(name: str) -> list[str]:
    """The top-level field names of a record schema, in order."""
    return [f["name"] for f in load_schema(name)["fields"]]
