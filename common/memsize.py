"""How many bytes a key and its value take in this process.

An estimate from sys.getsizeof of the containers and their elements (what
CPython allocates for them), plus the dict slot the key occupies. Used by
MEMORY USAGE and by the maxmemory accounting.
"""

from __future__ import annotations

import sys
from collections import deque

_getsizeof = sys.getsizeof
DICT_SLOT = 48  # a keyspace dict entry: hash, key and value pointers, index


def value_size(key: bytes, value) -> int:
    size = DICT_SLOT + _getsizeof(key) + _getsizeof(value)
    cls = value.__class__
    if cls is bytes:
        return size
    if cls is deque or cls is set:
        return size + sum(_getsizeof(v) for v in value)
    if cls is dict:
        return size + sum(_getsizeof(k) + _getsizeof(v) for k, v in value.items())
    members = getattr(value, "dict", None)
    if members is not None:  # ZSet: member -> score map plus the ordered index
        return size + sum(_getsizeof(m) + 24 + 16 for m in members) + _getsizeof(members)
    return size
