"""JSON text -> Python values for ingest: orjson when installed (2x json's speed), else json.

The value never depends on which parser is installed:

- orjson is tried first. Whatever it refuses is parsed again by :mod:`json`, which decides: it
  accepts what it always accepted (``NaN``/``Infinity`` literals, lone surrogate escapes such as
  ``"\\ud800"``, numbers beyond the double range as ``inf``, integers up to 4300 digits, nesting
  up to Python's recursion limit) and raises the exception a reject reason is made from
  (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) for the rest.
- orjson reads integers outside [-2**63, 2**64 - 1] as floats; json is given the same rule, so
  a 20-digit number is the same float either way (and still ``out_of_range`` in an integer
  field).

A property test checks that wherever orjson accepts a document, json gives an equal value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_LOW, _HIGH = -(2**63), 2**64 - 1  # orjson's integer range

_fast_loads: Callable[[bytes], Any] | None
try:
    from orjson import loads as _fast_loads
except ImportError:  # optional at run time: json alone gives the same values, slower
    _fast_loads = None


def _integer(text: str) -> int | float:
    number = int(text)  # ValueError beyond Python's 4300-digit limit, as json itself raises
    return number if _LOW <= number <= _HIGH else float(text)


_decoder = json.JSONDecoder(parse_int=_integer)


def loads_text(text: str) -> Any:
    """``json.loads`` with orjson's integer rule (the reference both paths follow)."""
    if text.startswith("\ufeff"):  # as json.loads words it
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _decoder.decode(text)


def loads(data: bytes) -> Any:
    """The JSON value of UTF-8 ``data``.

    Raises UnicodeDecodeError (not UTF-8), RecursionError (too deep), json.JSONDecodeError or
    ValueError (not JSON), exactly as ``json.loads(data.decode("utf-8"))`` would.
    """
    if _fast_loads is not None:
        try:
            return _fast_loads(data)
        except ValueError:  # orjson.JSONDecodeError: json decides (and words the error)
            pass
    return loads_text(data.decode("utf-8"))


def fast_parser() -> str:
    """Which parser :func:`loads` tries first: ``"orjson"`` or ``"json"``."""
    return "json" if _fast_loads is None else "orjson"
