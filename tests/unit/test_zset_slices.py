"""ZSet.slice and ZSet.score_slice (the ZRANGE family's reply path) against
a plain sorted list, on sets spanning many chunks, with ties, removals,
infinite and inverted bounds, offsets past the end and both directions."""

from __future__ import annotations

import math
import random

from hakv.common.types.zset import ZSet


def _random_zsets(seed: int, sizes):
    """(rnd, zset, its elements in order) for sets of the given sizes, with
    tied scores and, now and then, half the members removed again."""
    rnd = random.Random(seed)
    for n in sizes:
        z = ZSet()
        for _ in range(n):
            z.add(b"m%d" % rnd.randrange(3 * n + 1), float(rnd.randrange(n // 3 + 2)))
        if rnd.random() < 0.3:
            for m in list(z.dict)[: n // 2]:
                z.remove(m)
        yield rnd, z, list(z.items())


def test_slice_matches_the_sorted_elements():
    for rnd, z, flat in _random_zsets(11, (0, 1, 7, 600, 2500)):
        for _ in range(60):
            a, b = rnd.randrange(-2, len(flat) + 2), rnd.randrange(-2, len(flat) + 2)
            members, scores = z.slice(a, b)
            want = flat[max(a, 0):b + 1] if a <= b else []
            assert list(zip(members, scores)) == want, (len(flat), a, b)
            members, scores = z.slice(a, b, reverse=True)
            assert list(zip(members, scores)) == want[::-1], (len(flat), a, b)
        z._check()


def test_score_slice_matches_a_filtered_list():
    for rnd, z, flat in _random_zsets(12, (0, 1, 9, 700, 3000)):
        top = len(flat) // 3 + 2
        for _ in range(80):
            lo = rnd.choice([-math.inf, rnd.randrange(-1, top) + rnd.choice([0, 0.5])])
            hi = rnd.choice([math.inf, lo - 1, lo + rnd.randrange(top)])
            lo_ex, hi_ex = rnd.random() < 0.3, rnd.random() < 0.3
            offset = rnd.choice([0, 0, 1, 5, 600, 5000])
            count = rnd.choice([0, 1, 10, 100, 900, 10**9])
            inside = [(m, s) for m, s in flat
                      if (s > lo if lo_ex else s >= lo) and (s < hi if hi_ex else s <= hi)]
            for reverse in (False, True):
                want = (inside[::-1] if reverse else inside)[offset:offset + count]
                members, scores = z.score_slice(lo, hi, lo_ex, hi_ex, offset, count, reverse)
                assert list(zip(members, scores)) == want, (len(flat), lo, hi, lo_ex, hi_ex,
                                                            offset, count, reverse)


def test_slices_are_copies():
    z = ZSet.from_items((b"m%d" % i, float(i)) for i in range(2000))
    members, scores = z.slice(0, 1999)
    members.clear()
    scores.append(1.0)
    members, _ = z.score_slice(0, 10, False, False, 0, 5)
    members[0] = b"changed"
    z._check()
    assert z.slice(0, 0) == ([b"m0"], [0.0])
