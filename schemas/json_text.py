"""JSON text in and out of the hot path: orjson where it gives exactly the standard library's result.

orjson parses and writes JSON several times faster than `json`, but it differs in a few corners: it reads an integer
beyond 64 bits as a float, and rejects NaN, Infinity and lone surrogates that `json` accepts. Those inputs are left
to `json`, so every value means what it meant before; only the time changes.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_LONG_NUMBER = re.compile(rb"\d{19}")  # 19 digits may exceed a 64-bit integer: parsed by json, exactly
_SORTED = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_sorted_json = json.JSONEncoder(default=str, sort_keys=True).encode


def loads(text: bytes | str) -> Any:
    """`json.loads(text)`, faster. Raises json.JSONDecodeError (or UnicodeDecodeError) as `json.loads` does."""
    data = text.encode() if isinstance(text, str) else text
    if _LONG_NUMBER.search(data) is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # NaN, a lone surrogate, or really not JSON: json decides, with its own message
    return json.loads(text)


def dumps_sorted(value: Any) -> str:
    """`json.dumps(value, sort_keys=True, default=str)` as jsonb reads it (the same value; spacing differs).

    Datetimes go through `str` as with json ("2026-01-02 03:04:05+00:00", not orjson's ISO form)."""
    try:
        return orjson.dumps(value, option=_SORTED, default=str).decode()
    except (orjson.JSONEncodeError, TypeError):
        return _sorted_json(value)  # an integer beyond 64 bits, a lone surrogate, NaN...
