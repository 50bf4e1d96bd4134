"""ZSet against a brute-force model: a plain list sorted by (score, member)."""

import math
import random
from bisect import bisect_left, bisect_right

import pytest

import hakv.common.types.zset as zset_module
from hakv.common.types.zset import LEX_MAX, LEX_MIN, ZSet, parse_lex_bound


class Model:
    """The obvious O(n) implementation the ZSet must agree with."""

    def __init__(self):
        self.d = {}

    def add(self, m, s):
        if m in self.d and self.d[m] == s:
            return
        self.d[m] = s

    def remove(self, m):
        return self.d.pop(m, None) is not None

    def sorted(self):
        return sorted(((s, m) for m, s in self.d.items()))

    def items(self):
        return [(m, s) for s, m in self.sorted()]


def assert_same(z, model):
    z._check()
    assert z.dict == model.d
    assert list(z.items()) == model.items()
    assert len(z) == len(model.d)


@pytest.fixture
def small_chunks(monkeypatch):
    """Tiny chunks so that splits, merges and multi-chunk paths are hit with
    a few hundred elements."""
    monkeypatch.setattr(zset_module, "_LOAD", 4)
    monkeypatch.setattr(zset_module, "_SPLIT_ABOVE", 8)
    monkeypatch.setattr(zset_module, "_MERGE_BELOW", 2)


def test_empty():
    z = ZSet()
    assert len(z) == 0
    assert list(z.items()) == []
    assert list(z.range(0, 10)) == []
    assert z.rank(b"a") is None
    assert z.score(b"a") is None
    assert not z.remove(b"a")
    assert z.rank_of_score(1.0) == 0
    assert z.rank_of_lex(b"a") == 0
    assert z.count_in_score(-math.inf, math.inf) == 0
    assert z.pop_min(3) == [] and z.pop_max(3) == []
    assert z.remove_rank_range(0, 10) == 0
    with pytest.raises(IndexError):
        z.at(0)


def test_basic_ordering_and_ties():
    z = ZSet()
    z.add(b"b", 1.0)
    z.add(b"a", 1.0)
    z.add(b"ab", 1.0)
    z.add(b"", 1.0)
    z.add(b"\xff", 0.5)
    z.add(b"z", -math.inf)
    z.add(b"y", math.inf)
    assert [m for m, _ in z.items()] == [b"z", b"\xff", b"", b"a", b"ab", b"b", b"y"]
    assert z.rank(b"ab") == 4
    assert z.at(0) == (b"z", -math.inf)
    assert z.at(6) == (b"y", math.inf)
    z._check()


def test_memcmp_order_high_bytes():
    # Redis compares members as unsigned bytes: b"\x80" > b"a"; shorter
    # string first on a common prefix.
    z = ZSet()
    for m in [b"\x80", b"a", b"a\x00", b"\x00", b"A"]:
        z.add(m, 0.0)
    assert [m for m, _ in z.items()] == [b"\x00", b"A", b"a", b"a\x00", b"\x80"]


def test_same_score_update_is_noop_including_negative_zero():
    z = ZSet()
    z.add(b"m", 0.0)
    z.add(b"m", -0.0)
    assert math.copysign(1, z.score(b"m")) == 1.0  # Redis keeps the old 0
    z.add(b"n", -0.0)
    assert math.copysign(1, z.score(b"n")) == -1.0
    # -0.0 == 0.0, so ties break on member bytes
    assert [m for m, _ in z.items()] == [b"m", b"n"]


def test_update_moves_element():
    z = ZSet()
    for i in range(10):
        z.add(b"m%d" % i, float(i))
    z.add(b"m0", 100.0)
    assert z.rank(b"m0") == 9
    assert z.at(0) == (b"m1", 1.0)
    assert z.score(b"m0") == 100.0
    z._check()


def test_score_ranges():
    z = ZSet()
    for i in range(100):
        z.add(b"m%03d" % i, float(i // 2))   # two members per score
    assert z.rank_of_score(10) == 20
    assert z.rank_of_score(10, exclusive=True) == 22
    assert z.rank_of_score(-math.inf) == 0
    assert z.rank_of_score(math.inf) == 100
    assert z.rank_of_score(1000) == 100
    assert z.count_in_score(10, 12) == 6
    assert z.count_in_score(10, 12, min_excl=True) == 4
    assert z.count_in_score(10, 12, max_excl=True) == 4
    assert z.count_in_score(10, 12, True, True) == 2
    assert z.count_in_score(12, 10) == 0
    assert z.count_in_score(10, 10, True, False) == 0
    assert z.score_range(10, 12) == (20, 26)
    assert z.score_range(-math.inf, math.inf) == (0, 100)


def test_lex_ranges_and_parse():
    z = ZSet()
    for m in [b"a", b"b", b"c", b"d", b"e", b"f", b"g"]:
        z.add(m, 0.0)
    assert z.rank_of_lex(b"c") == 2
    assert z.rank_of_lex(b"c", exclusive=True) == 3
    assert z.rank_of_lex(b"bb") == 2
    assert z.rank_of_lex(LEX_MIN) == 0
    assert z.rank_of_lex(LEX_MAX) == 7
    assert z.lex_range(*_bounds(b"-", b"[c")) == (0, 3)
    assert z.lex_range(*_bounds(b"-", b"(c")) == (0, 2)
    assert z.lex_range(*_bounds(b"[aaa", b"(g")) == (1, 6)
    assert z.count_in_lex(*_bounds(b"-", b"+")) == 7
    assert z.count_in_lex(*_bounds(b"+", b"-")) == 0
    assert z.count_in_lex(*_bounds(b"-", b"-")) == 0
    assert z.count_in_lex(*_bounds(b"+", b"+")) == 0
    assert z.count_in_lex(*_bounds(b"[c", b"[c")) == 1
    assert z.count_in_lex(*_bounds(b"(c", b"[c")) == 0
    assert z.count_in_lex(*_bounds(b"[e", b"[c")) == 0
    assert parse_lex_bound(b"[") == (b"", False)
    assert parse_lex_bound(b"(x") == (b"x", True)
    for bad in (b"", b"a", b"-a", b"+a", b"]a"):
        with pytest.raises(ValueError):
            parse_lex_bound(bad)


def _bounds(lo, hi):
    a, ax = parse_lex_bound(lo)
    b, bx = parse_lex_bound(hi)
    return a, b, ax, bx


def test_range_forward_and_reverse():
    z = ZSet()
    for i in range(50):
        z.add(b"%02d" % i, float(i))
    assert [m for m, _ in z.range(3, 5)] == [b"03", b"04", b"05"]
    assert [m for m, _ in z.range(3, 5, reverse=True)] == [b"05", b"04", b"03"]
    assert list(z.range(5, 3)) == []
    assert len(list(z.range(0, 1000))) == 50       # clamped
    assert [m for m, _ in z.range(48, 100, reverse=True)] == [b"49", b"48"]


def test_pops():
    z = ZSet()
    for i in range(10):
        z.add(b"%d" % i, float(i))
    assert z.pop_min(2) == [(b"0", 0.0), (b"1", 1.0)]
    assert z.pop_max(3) == [(b"9", 9.0), (b"8", 8.0), (b"7", 7.0)]
    assert z.pop_min(0) == []
    assert [m for m, _ in z.items()] == [b"2", b"3", b"4", b"5", b"6"]
    assert z.pop_max(100) == [(b"6", 6.0), (b"5", 5.0), (b"4", 4.0), (b"3", 3.0), (b"2", 2.0)]
    assert len(z) == 0 and z.dict == {}
    z._check()


def test_from_items_and_copy(small_chunks):
    rnd = random.Random(7)
    pairs = [(b"m%d" % rnd.randrange(300), float(rnd.randrange(-20, 20))) for _ in range(500)]
    z = ZSet.from_items(pairs)
    model = Model()
    for m, s in pairs:
        model.d[m] = s
    assert_same(z, model)
    c = z.copy()
    c.add(b"new", 0.5)
    c.remove(pairs[0][0])
    assert_same(z, model)           # the copy is independent
    c._check()
    assert ZSet.from_items([]).dict == {}
    distinct = [(b"d%d" % i, rnd.random()) for i in range(300)]   # no ties
    z2 = ZSet.from_items(distinct)
    z2._check()
    assert list(z2.items()) == sorted(distinct, key=lambda p: p[1])


@pytest.mark.parametrize("seed", range(6))
def test_random_operations_against_model(small_chunks, seed):
    rnd = random.Random(seed)
    z = ZSet()
    model = Model()
    members = [bytes(rnd.choice(b"ab\x00\xff") for _ in range(rnd.randrange(0, 4)))
               for _ in range(120)]
    scores = [-math.inf, math.inf, -0.0, 0.0, 1.5, -2.0, 3.0, 1e300]
    for step in range(3000):
        op = rnd.random()
        m = rnd.choice(members)
        if op < 0.45:
            s = rnd.choice(scores) if rnd.random() < 0.7 else float(rnd.randrange(-5, 5))
            old = z.dict.get(m)
            if rnd.random() < 0.5 or (old is not None and old == s):
                z.add(m, s)
            elif old is None:
                z.insert(m, s)  # ZADD's halves of add(), for a member it looked up
            else:
                z.move(m, old, s)
            model.add(m, s)
        elif op < 0.65:
            assert z.remove(m) == model.remove(m)
        elif op < 0.70:
            n = rnd.randrange(0, 5)
            expect = model.items()[:n]
            for em, _ in expect:
                del model.d[em]
            assert z.pop_min(n) == expect
        elif op < 0.75:
            n = rnd.randrange(0, 5)
            expect = model.items()[::-1][:n]
            for em, _ in expect:
                del model.d[em]
            assert z.pop_max(n) == expect
        elif op < 0.78:
            a, b = rnd.randrange(-2, 40), rnd.randrange(-2, 40)
            items = model.items()
            lo, hi = max(a, 0), min(b, len(items) - 1)
            gone = items[lo:hi + 1] if lo <= hi else []
            for em, _ in gone:
                del model.d[em]
            assert z.remove_rank_range(a, b) == len(gone)
        else:
            check_queries(z, model, rnd)
        if step % 50 == 0:
            assert_same(z, model)
    assert_same(z, model)


def check_queries(z, model, rnd):
    srt = model.sorted()
    items = [(m, s) for s, m in srt]
    n = len(items)
    for m in rnd.sample(list(model.d) or [b"x"], k=min(3, max(1, n))):
        if m in model.d:
            assert z.rank(m) == srt.index((model.d[m], m))
        else:
            assert z.rank(m) is None
    if n:
        r = rnd.randrange(n)
        assert z.at(r) == items[r]
        a, b = sorted((rnd.randrange(n), rnd.randrange(n)))
        assert list(z.range(a, b)) == items[a:b + 1]
        assert list(z.range(a, b, reverse=True)) == items[a:b + 1][::-1]
    only_scores = [s for s, _ in srt]
    x = rnd.choice([-math.inf, math.inf, 0.0, -0.0, 1.5, 2.0, -3.0, 100.0])
    assert z.rank_of_score(x) == bisect_left(only_scores, x)
    assert z.rank_of_score(x, True) == bisect_right(only_scores, x)
    y = rnd.choice([-math.inf, math.inf, 0.0, 1.5, 3.0])
    lo_x, hi_x = rnd.random() < 0.5, rnd.random() < 0.5
    expect = sum(1 for s in only_scores
                 if (s > x if lo_x else s >= x) and (s < y if hi_x else s <= y))
    assert z.count_in_score(x, y, lo_x, hi_x) == expect


def test_lex_against_model_with_equal_scores(small_chunks):
    rnd = random.Random(3)
    z = ZSet()
    members = set()
    for _ in range(400):
        m = bytes(rnd.choice(b"abc\x00\xfe") for _ in range(rnd.randrange(0, 5)))
        members.add(m)
        z.add(m, 7.0)
    ordered = sorted(members)
    for _ in range(500):
        bound = bytes(rnd.choice(b"abc\x00\xfe") for _ in range(rnd.randrange(0, 5)))
        assert z.rank_of_lex(bound) == bisect_left(ordered, bound)
        assert z.rank_of_lex(bound, True) == bisect_right(ordered, bound)
    z._check()


def test_fenwick_index_survives_interleaved_writes(small_chunks):
    rnd = random.Random(11)
    z = ZSet()
    model = Model()
    for i in range(2000):
        m = b"k%d" % rnd.randrange(500)
        s = float(rnd.randrange(100))
        if rnd.random() < 0.3:
            z.remove(m)
            model.remove(m)
        else:
            z.add(m, s)
            model.add(m, s)
        if m in model.d:
            assert z.rank(m) == model.sorted().index((model.d[m], m))
    assert_same(z, model)


def test_large_set_smoke():
    # Real chunk size, many chunks: ranks and score lookups stay consistent.
    rnd = random.Random(5)
    z = ZSet()
    pairs = {b"m%d" % i: rnd.random() for i in range(30000)}
    for m, s in pairs.items():
        z.add(m, s)
    srt = sorted((s, m) for m, s in pairs.items())
    for r in (0, 1, 999, 1000, 15000, 29999):
        assert z.at(r) == (srt[r][1], srt[r][0])
        assert z.rank(srt[r][1]) == r
    for m in list(pairs)[:20000]:
        z.remove(m)
    z._check()
    assert len(z) == 10000


def test_single_pops_interleaved_with_writes_and_ranks(small_chunks):
    """pop_min(1) / pop_max(1) have their own path: chunk maxima, merges,
    dropped chunks and the Fenwick index stay right."""
    rnd = random.Random(21)
    z = ZSet()
    model = Model()
    for step in range(3000):
        op = rnd.random()
        if op < 0.5:
            m, s = b"k%d" % rnd.randrange(300), float(rnd.randrange(-20, 20))
            z.add(m, s)
            model.add(m, s)
        elif op < 0.7:
            expect = model.items()[:1]
            for m, _ in expect:
                del model.d[m]
            assert z.pop_min(1) == expect
        elif op < 0.9:
            expect = model.items()[-1:]
            for m, _ in expect:
                del model.d[m]
            assert z.pop_max(1) == expect
        elif model.d:
            m = rnd.choice(sorted(model.d))
            assert z.rank(m) == model.sorted().index((model.d[m], m))
        if step % 100 == 0:
            assert_same(z, model)
    while model.d:  # down to empty, from both ends
        expect = model.items()[:1] if len(model.d) % 2 else model.items()[-1:]
        del model.d[expect[0][0]]
        assert (z.pop_min(1) if len(model.d) % 2 == 0 else z.pop_max(1)) == expect
    assert_same(z, model)
    assert z.pop_min(1) == [] and z.pop_max(1) == []


@pytest.mark.parametrize("seed", range(4))
def test_runs_of_equal_scores_spanning_chunks(small_chunks, seed):
    """Sets of a few distinct scores (redis-benchmark's ZADD gives every
    member 0): runs of one score fill whole chunks and reach chunk ends or
    the set's end, where insert and remove search by member alone. Every
    write lands where the model says, and ranks stay right."""
    rnd = random.Random(seed)
    z = ZSet()
    model = Model()
    scores = [0.0, -0.0, 1.0] if seed % 2 else [0.0]
    for step in range(2500):
        m = b"element:%03d" % rnd.randrange(300)
        s = rnd.choice(scores)
        old = z.dict.get(m)
        if rnd.random() < 0.3:
            assert z.remove(m) == model.remove(m)
        elif old is None:
            z.insert(m, s)
            model.add(m, s)
        elif old != s:
            z.move(m, old, s)
            model.add(m, s)
        if m in model.d:
            assert z.rank(m) == model.sorted().index((model.d[m], m))
        if step % 100 == 0:
            assert_same(z, model)
    assert_same(z, model)
    # Ascending member order within a score, pops included.
    expect = model.items()
    assert z.pop_min(5) == expect[:5]
    assert z.pop_max(5) == expect[::-1][:5]
