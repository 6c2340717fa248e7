"""Time-sortable identifiers and millisecond UTC timestamps.

Ids follow the UUIDv7 layout (RFC 9562): 48 bits of Unix milliseconds, then random bits, written
as 32 lowercase hex digits (the form MLflow clients already expect for run ids). Within one
process, ids created in the same millisecond still sort in creation order.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["new_id", "now_ms"]

_lock = threading.Lock()
_last_ms = 0
_last_rand = 0
_RAND_BITS = 74  # 12 bits rand_a + 62 bits rand_b
_RAND_MASK = (1 << _RAND_BITS) - 1


def now_ms() -> int:
    """Current UTC time in integer milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """A new UUIDv7 as 32 hex digits, monotonic within this process."""
    global _last_ms, _last_rand
    with _lock:
        ms = now_ms()
        if ms <= _last_ms:
            # Same (or a backwards-stepped) clock: keep the last time, bump the random part.
            ms = _last_ms
            rand = (_last_rand + 1 + int.from_bytes(os.urandom(2), "big")) & _RAND_MASK
            if rand <= _last_rand:  # random part overflowed: borrow the next millisecond
                ms += 1
                rand = int.from_bytes(os.urandom(10), "big") & (_RAND_MASK >> 1)
        else:
            rand = int.from_bytes(os.urandom(10), "big") & (_RAND_MASK >> 1)
        _last_ms, _last_rand = ms, rand
    rand_a = rand >> 62
    rand_b = rand & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return f"{value:032x}"
