"""libpq's own connection-string parser (PQconninfoParse), through ctypes: the reference `cdc.dsn` is checked
against. None when libpq is not installed (it comes with PostgreSQL's Debian packages, which the stack installs)."""

from __future__ import annotations

import ctypes
import ctypes.util


class _Option(ctypes.Structure):
    _fields_ = [("keyword", ctypes.c_char_p), ("envvar", ctypes.c_char_p), ("compiled", ctypes.c_char_p),
                ("val", ctypes.c_char_p), ("label", ctypes.c_char_p), ("dispchar", ctypes.c_char_p),
                ("dispsize", ctypes.c_int)]


def _load() -> ctypes.CDLL | None:
    for name in ("libpq.so.5", ctypes.util.find_library("pq")):
        if name:
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                continue
            lib.PQconninfoParse.restype = ctypes.POINTER(_Option)
            lib.PQconninfoParse.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
            lib.PQconninfoFree.argtypes = [ctypes.POINTER(_Option)]
            lib.PQfreemem.argtypes = [ctypes.c_void_p]
            return lib
    return None


LIBPQ = _load()


def conninfo_parse(text: str) -> dict[str, str] | None:
    """The keywords libpq reads from `text`, or None when it refuses it."""
    assert LIBPQ is not None
    error = ctypes.c_char_p()
    options = LIBPQ.PQconninfoParse(text.encode(), ctypes.byref(error))
    if not options:
        if error:
            LIBPQ.PQfreemem(error)
        return None
    found: dict[str, str] = {}
    try:
        i = 0
        while options[i].keyword:
            if options[i].val is not None:
                found[options[i].keyword.decode()] = options[i].val.decode()
            i += 1
    finally:
        LIBPQ.PQconninfoFree(options)
    return found
