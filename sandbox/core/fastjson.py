"""Compact JSON both ways, with orjson where it gives the json module's result (issue 14: 5-10x faster; a heavy
response spent milliseconds in json.dumps). The json module handles what orjson refuses: integers beyond 64
bits, lone surrogates, NaN written by an older version, and raises the same TypeError for an unserialisable value.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; kept optional for a minimal install
    orjson = None
# non-str keys as json.dumps writes them; datetimes and dataclasses refused, as json.dumps refuses them
_OPTIONS = (orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
            if orjson else 0)


def _default(value):
    """What else may be written: a read-only mapping (core/runs.StoredResults) as the object it stands for."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def dumpb(value) -> bytes | str:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"))`` as UTF-8 bytes (a response body); what
    orjson refuses comes back as the json module's text, encoded by the response as before."""
    if orjson is not None:
        try:
            return orjson.dumps(value, default=_default, option=_OPTIONS)
        except TypeError:   # orjson.JSONEncodeError is a TypeError
            pass
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_default)


def dumps(value) -> str:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``."""
    if orjson is not None:
        try:
            return orjson.dumps(value, default=_default, option=_OPTIONS).decode()
        except TypeError:
            pass
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_default)


def loads(text: str | bytes):
    """``json.loads(text)``."""
    if orjson is not None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)
