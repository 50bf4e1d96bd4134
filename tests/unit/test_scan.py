"""The SCAN guarantee under mutation, eviction, restarts; cursor parsing."""

import itertools
import random

import pytest

from hakv.common.scan import Scanner, parse_cursor
from hakv.common.types.zset import ZSet


# ------------------------------------------------------------ parse_cursor
@pytest.mark.parametrize("raw,value", [
    (b"0", 0), (b"", 0), (b"+0", 0), (b"-0", 0), (b"00012", 12),
    (b"18446744073709551615", 2**64 - 1), (b"-1", 2**64 - 1),
    (b"-18446744073709551615", 1), (b"123", 123),
])
def test_parse_cursor_valid(raw, value):
    assert parse_cursor(raw) == value


@pytest.mark.parametrize("raw", [
    b" 0", b"0 ", b"+", b"-", b"+-1", b"1e3", b"0x1", b"abc",
    b"18446744073709551616", b"-18446744073709551616", b"\t1", b"1.0",
])
def test_parse_cursor_invalid(raw):
    with pytest.raises(ValueError):
        parse_cursor(raw)


# ----------------------------------------------------------------- helpers
def full_iteration(scanner, collection, count=10, mutate=None, max_calls=100_000):
    """Run an iteration to cursor 0; return (returned elements as a list,
    number of calls).  `mutate(call_number)` runs between calls."""
    returned = []
    cursor = 0
    calls = 0
    while True:
        cursor, batch = scanner.scan(collection, cursor, count)
        calls += 1
        for e in batch:
            assert e in collection, "returned an element that is not present"
        returned.extend(batch)
        assert 0 <= cursor < 2**52
        if cursor == 0:
            return returned, calls
        assert calls < max_calls, "iteration does not terminate"
        if mutate:
            mutate(calls)


def keys(n, prefix=b"k"):
    return [prefix + b"%d" % i for i in range(n)]


# ------------------------------------------------------------------- basic
def test_small_collection_comes_back_whole():
    s = Scanner()
    d = dict.fromkeys(keys(5), b"v")
    assert s.scan(d, 0, 10) == (0, list(d))
    assert s.scan({}, 0, 10) == (0, [])
    h = dict.fromkeys(keys(100), b"v")
    cursor, batch = s.scan(h, 0, 10, whole_if_at_most=128)
    assert cursor == 0 and sorted(batch) == sorted(h)
    assert len(s) == 0


def test_every_element_exactly_once_without_writes():
    s = Scanner()
    d = dict.fromkeys(keys(5000), b"v")
    returned, calls = full_iteration(s, d, count=10)
    assert sorted(returned) == sorted(d)
    assert 400 <= calls <= 600          # ~COUNT per call
    assert len(s) == 0 and s.held_elements == 0


def test_works_on_sets_and_zset_dicts():
    s = Scanner()
    st = set(keys(1000))
    returned, _ = full_iteration(s, st, count=7)
    assert sorted(returned) == sorted(st)
    z = ZSet()
    for i, m in enumerate(keys(700)):
        z.add(m, float(i))
    returned, _ = full_iteration(s, z.dict, count=50)
    assert sorted(returned) == sorted(z.dict)


def test_count_is_a_hint_and_large_count_is_fast():
    s = Scanner()
    d = dict.fromkeys(keys(3000), b"v")
    cursor, batch = s.scan(d, 0, 1000)
    assert 1000 <= len(batch) <= 1010
    assert cursor != 0
    returned, calls = full_iteration(s, d, count=100_000)
    assert calls == 1 and sorted(returned) == sorted(d)


def test_equal_hash_groups_are_never_split():
    # b"plumless" and b"buckeroo" are a classic crc32 collision.
    from zlib import crc32
    assert crc32(b"plumless") == crc32(b"buckeroo")
    st = set(keys(2000)) | {b"plumless", b"buckeroo"}
    s = Scanner()
    cursor = 0
    while True:
        cursor, batch = s.scan(st, cursor, 1)
        if b"plumless" in batch or b"buckeroo" in batch:
            assert b"plumless" in batch and b"buckeroo" in batch
        if cursor == 0:
            break


# ------------------------------------------------------ the guarantee
@pytest.mark.parametrize("seed", range(8))
def test_guarantee_under_random_mutation(seed):
    rnd = random.Random(seed)
    n = rnd.choice([300, 2000, 8000])
    coll = dict.fromkeys(keys(n), b"v") if seed % 2 else set(keys(n))
    add = (lambda k: coll.__setitem__(k, b"v")) if isinstance(coll, dict) else coll.add
    initial = set(coll)
    initial_list = sorted(initial)
    removed_ever = set()
    fresh = (b"new%d" % i for i in itertools.count())
    scanner = Scanner(prepare_step=rnd.choice([100, 50_000]))
    clears = [0]

    def mutate(call):
        for _ in range(rnd.randrange(0, 30)):
            r = rnd.random()
            if r < 0.4:
                add(next(fresh))                       # grow
            elif r < 0.8 and coll:
                k = rnd.choice(initial_list)
                if k in coll:
                    (coll.pop if isinstance(coll, dict) else coll.discard)(k)
                    removed_ever.add(k)
            else:
                k = rnd.choice(initial_list)           # re-add a removed one
                add(k)
        if rnd.random() < 0.01:
            for _ in range(rnd.randrange(100, 3000)):   # a burst of growth
                add(next(fresh))
        if seed >= 4 and clears[0] < 5 and rnd.random() < 0.05:
            clears[0] += 1
            scanner.clear()          # lost cursor state: rebuild from position

    returned, calls = full_iteration(scanner, coll, count=rnd.choice([1, 10, 97]),
                                     mutate=mutate)
    must = initial - removed_ever
    assert must <= set(returned), len(must - set(returned))
    if seed >= 4 and calls > 100:
        assert scanner.rebuilds > 0


def test_terminates_while_growing_every_call():
    scanner = Scanner()
    st = set(keys(3000))
    fresh = (b"x%d" % i for i in itertools.count())

    def grow(call):
        for _ in range(50):
            st.add(next(fresh))

    initial = set(st)
    returned, calls = full_iteration(scanner, st, count=10, mutate=grow)
    assert initial <= set(returned)
    assert calls <= 400


def test_guarantee_when_cache_thrashes():
    # max_iterations=1 with interleaved iterations: every call finds its
    # cursor evicted and must rebuild from the cursor's hash position.
    scanner = Scanner(max_iterations=1)
    rnd = random.Random(5)
    colls = [set(keys(1500, prefix=b"c%d:" % i)) for i in range(3)]
    initial = [set(c) for c in colls]
    initial_lists = [sorted(c) for c in colls]
    removed = [set() for _ in colls]
    cursors = [0, 0, 0]
    seen = [set(), set(), set()]
    started = [False] * 3
    done = [False] * 3
    calls = 0
    while not all(done):
        i = rnd.randrange(3)
        if done[i]:
            continue
        cursors[i], batch = scanner.scan(colls[i], cursors[i], 25)
        started[i] = True
        seen[i].update(batch)
        calls += 1
        if cursors[i] == 0:
            done[i] = True
        for _ in range(5):
            k = rnd.choice(initial_lists[i])
            if k in colls[i]:
                colls[i].discard(k)
                removed[i].add(k)
            colls[i].add(b"new%d" % rnd.randrange(10**6))
        assert calls < 5000
    assert scanner.rebuilds > 50
    for i in range(3):
        assert initial[i] - removed[i] <= seen[i]


def test_cursor_survives_a_new_scanner():
    # A different Scanner (a restarted server, a promoted replica) continues
    # a cursor correctly: crc32 positions mean the same everywhere.
    d = dict.fromkeys(keys(4000), b"v")
    first = Scanner()
    cursor, seen = 0, []
    for _ in range(100):
        cursor, batch = first.scan(d, cursor, 10)
        seen.extend(batch)
    assert cursor != 0
    replica = dict(d)                       # a different object, same data
    second = Scanner()
    while cursor:
        cursor, batch = second.scan(replica, cursor, 10)
        seen.extend(batch)
    assert second.rebuilds == 1
    assert sorted(seen) == sorted(d)        # here even exactly once


def test_unknown_and_out_of_range_cursors():
    s = Scanner()
    d = dict.fromkeys(keys(1000), b"v")
    # any cursor is accepted and iteration terminates
    returned, cursor = [], 12345
    while True:
        cursor, batch = s.scan(d, cursor, 50)
        returned.extend(batch)
        if cursor == 0:
            break
    assert set(returned) <= set(d)
    # a bare position (tag 0) resumes exactly at that crc32
    from zlib import crc32
    returned, cursor = [], (1 << 31) << 20
    while True:
        cursor, batch = s.scan(d, cursor, 50)
        returned.extend(batch)
        assert cursor & ((1 << 20) - 1) != 0 or cursor == 0
        if cursor == 0:
            break
    assert sorted(returned) == sorted(k for k in d if crc32(k) >= 1 << 31)
    assert s.scan(d, 2**64 - 1, 10) == (0, [])
    assert s.scan(d, 2**52, 10) == (0, [])


def test_incremental_preparation_returns_empty_batches_first():
    s = Scanner(prepare_step=1000)
    d = dict.fromkeys(keys(10_000), b"v")
    cursor, batch = s.scan(d, 0, 10)
    assert cursor != 0 and batch == []
    returned, calls = full_iteration(s, d, count=10)
    assert sorted(returned) == sorted(d)


# --------------------------------------------------- memory and abandonment
def test_abandoned_iterations_are_bounded():
    s = Scanner(max_iterations=20, max_elements=30_000, active_grace=0.0)
    d = dict.fromkeys(keys(2000), b"v")
    for _ in range(200):
        s.scan(d, 0, 10)                     # start, never finish
    assert len(s) <= 20
    assert s.held_elements <= 30_000
    big = dict.fromkeys(keys(50_000), b"v")
    s.scan(big, 0, 10)                       # bigger than the budget alone
    assert len(s) == 1                       # the newest one is always kept
    s.clear()
    assert len(s) == 0 and s.held_elements == 0


def test_active_iterations_survive_the_element_budget():
    # Two clients scanning collections bigger than the budget must not
    # evict each other on every call (that would rebuild every time).
    s = Scanner(max_elements=1000)
    a = dict.fromkeys(keys(5000, prefix=b"a"), b"v")
    b = dict.fromkeys(keys(5000, prefix=b"b"), b"v")
    ca = cb = 0
    seen_a, seen_b = [], []
    while True:
        if ca or not seen_a:
            ca, batch = s.scan(a, ca, 100)
            seen_a.extend(batch)
        if cb or not seen_b:
            cb, batch = s.scan(b, cb, 100)
            seen_b.extend(batch)
        if ca == 0 and cb == 0:
            break
    assert s.rebuilds == 0
    assert sorted(seen_a) == sorted(a) and sorted(seen_b) == sorted(b)
    s.max_iterations = 1                     # the count cap is still hard
    s.scan(a, 0, 10)
    s.scan(b, 0, 10)
    assert len(s) == 1


def test_idle_iterations_expire():
    s = Scanner(max_idle=0.0)
    d = dict.fromkeys(keys(2000), b"v")
    cursor, _ = s.scan(d, 0, 10)
    assert len(s) == 1
    other = set(keys(3000))
    s.scan(other, 0, 10)
    assert len(s) == 1                       # the first one expired
    returned, _ = full_iteration(s, d, count=10)   # and d still iterates
    assert sorted(returned) == sorted(d)


def test_held_elements_shrink_as_the_iteration_advances():
    s = Scanner()
    d = dict.fromkeys(keys(20_000), b"v")
    cursor, _ = s.scan(d, 0, 100)
    start = s.held_elements
    assert 19_000 <= start <= 20_000
    for _ in range(100):
        cursor, _ = s.scan(d, cursor, 100)
    assert s.held_elements <= start - 9_000
