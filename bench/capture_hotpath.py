"""Capture's CPU per event without I/O (a script, not a test): pgoutput bytes → decode → event and key → partition →
record batch, as `cdc capture` does them, for a backlog of `item` inserts shaped like bench/capture_throughput.py's.

Only this process's CPU time is counted (`time.process_time`, best of `--repeat`), so the figure holds on a busy
machine where end-to-end throughput does not. Runs with the optional C twins (when built) and with the pure-Python
functions, and checks that both write the same bytes.

    python bench/capture_hotpath.py [--events 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import struct
import time

from aiokafka.producer.message_accumulator import BatchBuilder

from cdc.capture import pgoutput
from cdc.capture.events import EventEncoder
from cdc.capture.pgoutput import PG_EPOCH_US
from cdc.capture.publisher import HEADERS
from cdc.capture.transactions import Assembler, Publish
from cdc.topics import partitioner
from cdc.values import vocabulary as types

COLUMNS = [("no", types.VARCHAR, True), ("description", types.VARCHAR, False),
           ("base_unit_of_measure", types.VARCHAR, False), ("unit_price", types.NUMERIC, False),
           ("unit_cost", types.NUMERIC, False), ("inventory", types.NUMERIC, False),
           ("blocked", types.BOOL, False), ("modified_at", types.TIMESTAMPTZ, False)]
COMMIT_US = 1_767_323_046_000_000


def _cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def messages(events: int) -> list[tuple[int, bytes]]:
    """(LSN, pgoutput message) of one transaction inserting `events` rows into `item`."""
    rel = b"R" + struct.pack(">I", 16400) + _cstr("public") + _cstr("item") + b"d" + struct.pack(">h", len(COLUMNS))
    for name, oid, key in COLUMNS:
        rel += bytes([key]) + _cstr(name) + struct.pack(">Ii", oid, -1)
    out = [(0, rel), (0, b"B" + struct.pack(">QqI", 10**9, COMMIT_US - PG_EPOCH_US, 1554))]
    for g in range(events):
        row = [f"T{g}", f"benchmark item {g}", None, f"{(g % 10000) / 100:.2f}", "0.00", f"{g % 97}.00",
               "t" if g % 2 == 0 else "f", "2026-12-03 15:57:48.123456+00"]
        data = b"I" + struct.pack(">I", 16400) + b"N" + struct.pack(">h", len(row))
        for value in row:
            data += b"n" if value is None else b"t" + struct.pack(">i", len(value.encode())) + value.encode()
        out.append((10**8 + g * 100, data))
    out.append((0, b"C" + struct.pack(">bQQq", 0, 10**9, 10**9 + 48, COMMIT_US - PG_EPOCH_US)))
    return out


def once(stream: list[tuple[int, bytes]], events: int) -> tuple[float, float, str]:
    """(µs per event to decode and build events and keys, µs per event to partition and batch, digest of the output)."""
    assembler = Assembler(encoder=EventEncoder("erp", "cdc.erp", "erp", clock=lambda: 1_767_323_046.5),
                          topic=lambda table: f"cdc.erp.{table}", keys={("public", "item"): ("no",)},
                          origin_prefix="cdc_applier")
    feed, partition_for = assembler.feed, partitioner.partition_for
    started = time.process_time()
    out = [o for lsn, data in stream if type(o := feed(lsn, data)) is Publish]
    built = time.process_time()
    batches: dict[int, BatchBuilder] = {}
    for event in out:
        partition = partition_for(event.key, 6)
        batch = batches.get(partition)
        if batch is None or batch.append(key=event.key, value=event.value, timestamp=None, headers=HEADERS) is None:
            batch = batches[partition] = BatchBuilder(512 * 1024, 0)
            batch.append(key=event.key, value=event.value, timestamp=None, headers=HEADERS)
    done = time.process_time()
    digest = hashlib.sha256(b"".join(e.key + e.value for e in out)).hexdigest()[:16]
    return (built - started) / events * 1e6, (done - built) / events * 1e6, digest


def measure(stream: list[tuple[int, bytes]], events: int, repeat: int) -> tuple[float, float, str]:
    runs = [once(stream, events) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[0][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    stream = messages(args.events)
    walk, hash_ = pgoutput._walk, partitioner._hash
    variants = [("C twins", walk, hash_)] if walk is not None and hash_ is not partitioner.murmur2 else []
    variants.append(("pure Python", None, partitioner.murmur2))
    digests = set()
    for label, walk_with, hash_with in variants:
        pgoutput._walk, partitioner._hash = walk_with, hash_with
        build, batch, digest = measure(stream, args.events, args.repeat)
        digests.add(digest)
        print(f"{label}: {build + batch:.2f} µs of CPU per event ({build:.2f} decoding and building the event and "
              f"key, {batch:.2f} partitioning and batching), best of {args.repeat} × {args.events:,}")
    pgoutput._walk, partitioner._hash = walk, hash_
    print("same bytes either way" if len(digests) == 1 else "DIFFERENT BYTES: the C twins and Python disagree")


if __name__ == "__main__":
    main()
