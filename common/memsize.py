"""How many bytes a key and its value take in this process.

Sizes are what CPython allocates, from sys.getsizeof: the key and value
objects, the containers and their elements, plus the keyspace dict slot the
key occupies (hash, key and value pointers and the index, amortized over the
table's free space). Used by MEMORY USAGE and by the used-memory accounting
of eviction.py.

Collections can be measured exactly (every element) or estimated from a few
of their elements (`samples`, as MEMORY USAGE ... SAMPLES does): the
container's own size is exact, the elements are `len * average of the
sample`.
"""

from __future__ import annotations

import sys
from collections import deque
from itertools import islice

from hakv.common.types.zset import ZSet

_getsizeof = sys.getsizeof
DICT_SLOT = 48  # a keyspace dict entry: hash, key and value pointers, index
# A key with a TTL: its `expires` slot, the int deadline, and the (deadline,
# key) tuple in the expiry heap.
EXPIRE_ENTRY = DICT_SLOT + 32 + 64
# The per-key LRU/LFU record of eviction.py: an OrderedDict entry (a dict
# slot and a linked-list node) and a float for LRU; a dict slot and an int
# for LFU (measured with tracemalloc on CPython 3.11).
ACCESS_ENTRY_LRU = 105 + 24
ACCESS_ENTRY_LFU = 53 + 28
ZSET_MEMBER_EXTRA = 24 + 16  # the score float, and two slots in the ordered lists

# sys.getsizeof(x) is x.__sizeof__() plus the GC header of a container
# object. The accounting of every collection write (eviction.py) calls the
# types' own __sizeof__ instead: getsizeof looks the method up by name on
# each call and costs three to four times as much.
GC_HEADER = _getsizeof(set()) - set().__sizeof__()
set_sizeof = set.__sizeof__
dict_sizeof = dict.__sizeof__
deque_sizeof = deque.__sizeof__
# A sorted set's own object has __slots__: the same size for every one.
ZSET_OBJECT = _getsizeof(ZSet())


def value_size(key: bytes, value, samples: int = 0) -> int:
    """Bytes for key and value; samples=0 measures every element of a
    collection, samples=N estimates them from the first N."""
    size = DICT_SLOT + _getsizeof(key) + _getsizeof(value)
    if value.__class__ is bytes:
        return size
    return size + elements_size(value, samples)


def container_size(key: bytes, value) -> int:
    """The part of value_size that does not depend on the elements: the
    dict slot, the key and the value's own object (for a collection its
    table or array of pointers)."""
    size = DICT_SLOT + _getsizeof(key) + _getsizeof(value)
    members = getattr(value, "dict", None)
    if members is not None and value.__class__ not in (bytes, dict, set, deque):
        size += _getsizeof(members)  # ZSet: its member -> score table
    return size


def element_count(value) -> int:
    return len(value) if value.__class__ is not bytes else 0


def elements_size(value, samples: int = 0) -> int:
    """The elements of a collection: every one (samples=0) or len * the
    average of the first `samples`."""
    n = len(value)
    if not n:
        return _getsizeof(value.dict) if _is_zset(value) else 0
    if samples and n > samples:
        return int(average_element(value, samples) * n) + (
            _getsizeof(value.dict) if _is_zset(value) else 0)
    cls = value.__class__
    if cls is deque or cls is set:
        return sum(_getsizeof(v) for v in value)
    if cls is dict:
        return sum(_getsizeof(k) + _getsizeof(v) for k, v in value.items())
    members = getattr(value, "dict", None)
    if members is not None:  # ZSet
        return sum(_getsizeof(m) + ZSET_MEMBER_EXTRA for m in members) + _getsizeof(members)
    return 0


def average_element(value, samples: int) -> float:
    """Average bytes of one element over the first `samples` elements."""
    cls = value.__class__
    if cls is deque or cls is set:
        sizes = [_getsizeof(v) for v in islice(value, samples)]
    elif cls is dict:
        sizes = [_getsizeof(k) + _getsizeof(v) for k, v in islice(value.items(), samples)]
    else:
        members = getattr(value, "dict", None)
        if members is None:
            return 0.0
        sizes = [_getsizeof(m) + ZSET_MEMBER_EXTRA for m in islice(members, samples)]
    return sum(sizes) / len(sizes) if sizes else 0.0


def _is_zset(value) -> bool:
    return value.__class__ not in (bytes, dict, set, deque) and hasattr(value, "dict")
