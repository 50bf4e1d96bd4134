"""memsize's direct __sizeof__ calls (what the accounting of every
collection write uses instead of sys.getsizeof) give getsizeof's figures:
the GC header is the same for every collection type, and a sorted set's own
object has one size whatever it holds."""

from __future__ import annotations

import sys
from collections import deque

from hakv.common import memsize
from hakv.common.types.zset import ZSet


def test_type_sizeof_plus_header_is_getsizeof():
    for n in (0, 1, 5, 8, 9, 100, 5000):
        members = [b"member:%d" % i for i in range(n)]
        s = set(members)
        d = dict.fromkeys(members, b"v")
        q = deque(members)
        q.rotate(n // 3)  # blocks not aligned to the start
        assert memsize.set_sizeof(s) + memsize.GC_HEADER == sys.getsizeof(s)
        assert memsize.dict_sizeof(d) + memsize.GC_HEADER == sys.getsizeof(d)
        assert memsize.deque_sizeof(q) + memsize.GC_HEADER == sys.getsizeof(q)
        z = ZSet.from_items((m, float(i)) for i, m in enumerate(members))
        assert sys.getsizeof(z) == memsize.ZSET_OBJECT
        assert (memsize.ZSET_OBJECT + memsize.dict_sizeof(z.dict) + memsize.GC_HEADER
                == memsize.container_size(b"k", z) - memsize.DICT_SLOT - sys.getsizeof(b"k"))
