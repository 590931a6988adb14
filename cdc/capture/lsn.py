"""WAL positions: PostgreSQL prints them as `X/Y` (two 32-bit hex halves); capture keeps them as integers."""

from __future__ import annotations


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)
