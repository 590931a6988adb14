"""Kafka's default key partitioning (murmur2 of the key bytes, as the Java client and aiokafka do), fast enough
for the capture hot path: the same key lands on the same partition whichever of our producers writes it."""

from __future__ import annotations

import struct

_M = 0x5BD1E995
_SEED = 0x9747B28C
_WORDS = [struct.Struct(f"<{n}I").unpack_from for n in range(65)]


def murmur2(data: bytes, _m: int = _M, _mask: int = 0xFFFFFFFF) -> int:
    length = len(data)
    h = _SEED ^ length
    words = length >> 2
    unpack = _WORDS[words] if words < 65 else struct.Struct(f"<{words}I").unpack_from
    for k in unpack(data):
        k = (k * _m) & _mask
        h = ((h * _m) ^ ((k ^ (k >> 24)) * _m)) & _mask
    tail = length & 3
    if tail:
        base = length & ~3
        if tail == 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * _M) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * _M) & 0xFFFFFFFF
    return h ^ (h >> 15)


try:  # its C twin, when it could be built (setup.py); the tests check both against aiokafka's and Java's values
    from cdc.topics._murmur2 import murmur2 as _hash
except ImportError:  # pragma: no cover - no compiler at install time
    _hash = murmur2


def partition_for(key: bytes, partitions: int) -> int:
    return (_hash(key) & 0x7FFFFFFF) % partitions
