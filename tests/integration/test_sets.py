"""Set commands on a running hakv-server: replies, Redis's exact errors,
WRONGTYPE, the empty-key rule, random picks (SRANDMEMBER, SPOP) on small and
big sets, the algebra and its *STORE forms, SSCAN's guarantee, WATCH,
notifications and dirty counts."""

from __future__ import annotations

import time

import pytest
import redis

from types_support import (WRONGTYPE, KeyEvents, changes, error_of, parsing_client,  # noqa: F401
                           r, raw, server)


def fill(r, key, members):
    members = list(members)
    for i in range(0, len(members), 1000):
        r.sadd(key, *members[i:i + 1000])


def test_sadd_srem_scard_membership(r):
    assert r.sadd("s", "a", "b", "a", "c") == 3
    assert r.sadd("s", "c", "d") == 1
    assert r.scard("s") == 4 and r.scard("missing") == 0
    assert r.sismember("s", "a") and not r.sismember("s", "z") and not r.sismember("missing", "a")
    assert r.smismember("s", "a", "z", "d") == [1, 0, 1]
    assert r.smismember("missing", "a", "b") == [0, 0]
    assert r.smembers("s") == {b"a", b"b", b"c", b"d"}
    assert r.smembers("missing") == set()
    assert r.srem("s", "a", "z", "a") == 1
    assert r.srem("missing", "a") == 0
    assert r.srem("s", "b", "c", "d") == 3
    assert not r.exists("s")


def test_arity_and_wrongtype(r):
    assert error_of(r, "SADD", "s") == "wrong number of arguments for 'sadd' command"
    assert error_of(r, "SMISMEMBER", "s") == "wrong number of arguments for 'smismember' command"
    assert error_of(r, "SMOVE", "a", "b") == "wrong number of arguments for 'smove' command"
    r.set("str", "x")
    for args in (["SADD", "str", "a"], ["SREM", "str", "a"], ["SCARD", "str"],
                 ["SISMEMBER", "str", "a"], ["SMISMEMBER", "str", "a"], ["SMEMBERS", "str"],
                 ["SRANDMEMBER", "str"], ["SRANDMEMBER", "str", "2"], ["SPOP", "str"],
                 ["SPOP", "str", "2"], ["SPOP", "str", "0"], ["SINTER", "str"],
                 ["SUNION", "missing", "str"], ["SDIFF", "missing", "str"],
                 ["SINTERCARD", "2", "missing", "str"], ["SINTERSTORE", "d", "missing", "str"],
                 ["SSCAN", "str", "0"]):
        assert error_of(r, *args) == WRONGTYPE, args
    r.sadd("s", "a")
    assert error_of(r, "SMOVE", "str", "s", "a") == WRONGTYPE
    assert error_of(r, "SMOVE", "s", "str", "a") == WRONGTYPE
    assert r.smove("missing", "str", "a") == 0  # no source: no type check of the target


def test_srandmember(r, raw):
    members = {b"m%d" % i for i in range(10)}
    r.sadd("s", *members)
    assert r.srandmember("s") in members
    picked = r.srandmember("s", 4)
    assert len(picked) == 4 and len(set(picked)) == 4 and set(picked) <= members
    assert sorted(r.srandmember("s", 50)) == sorted(members)
    repeated = r.srandmember("s", -30)
    assert len(repeated) == 30 and set(repeated) <= members
    assert raw.execute_command("SRANDMEMBER", "s", "0") == []
    assert raw.execute_command("SRANDMEMBER", "missing") is None
    assert raw.execute_command("SRANDMEMBER", "missing", "5") == []
    assert raw.execute_command("SRANDMEMBER", "missing", "-5") == []
    assert error_of(r, "SRANDMEMBER", "s", "x") == "value is not an integer or out of range"
    assert error_of(r, "SRANDMEMBER", "s", "1", "2") == "syntax error"
    assert error_of(r, "SRANDMEMBER", "s", "-9223372036854775808") == (
        "value is out of range, value must between -9223372036854775807 and "
        "9223372036854775807")
    assert r.scard("s") == 10


def test_spop(r, raw):
    members = {b"m%d" % i for i in range(10)}
    r.sadd("s", *members)
    one = r.spop("s")
    assert one in members and not r.sismember("s", one)
    some = r.spop("s", 3)
    assert len(some) == 3 and set(some) <= members - {one}
    assert r.scard("s") == 6
    assert raw.execute_command("SPOP", "s", "0") == []
    rest = r.spop("s", 100)
    assert len(rest) == 6
    assert {one, *some, *rest} == members
    assert not r.exists("s")
    assert raw.execute_command("SPOP", "s") is None
    assert raw.execute_command("SPOP", "s", "3") == []
    assert error_of(r, "SPOP", "s", "-1") == "value is out of range, must be positive"
    assert error_of(r, "SPOP", "s", "x") == "value is out of range, must be positive"
    assert error_of(r, "SPOP", "s", "1", "2") == "syntax error"


def test_random_picks_on_a_big_set_are_uniform_and_fresh(r):
    n = 5000
    fill(r, "big", (b"%d" % i for i in range(n)))
    picks = r.srandmember("big", -50000)
    counts = {}
    for m in picks:
        counts[m] = counts.get(m, 0) + 1
    assert len(counts) > n * 0.99 and max(counts.values()) < 35
    # Removed members are never picked again, added ones are.
    r.srem("big", *[b"%d" % i for i in range(0, n, 2)])
    assert all(int(m) % 2 for m in r.srandmember("big", -5000))
    r.sadd("big", "fresh")
    assert any(r.srandmember("big") == b"fresh" for _ in range(30000))
    # SPOP drains it completely, each member exactly once.
    popped = []
    while r.exists("big"):
        popped += r.spop("big", 97)
    assert sorted(popped, key=lambda m: (m != b"fresh", m)) == sorted(
        [b"fresh"] + [b"%d" % i for i in range(1, n, 2)], key=lambda m: (m != b"fresh", m))
    fill(r, "big", (b"%d" % i for i in range(3000)))
    singles = {r.spop("big") for _ in range(3000)}
    assert len(singles) == 3000 and not r.exists("big")


def test_spop_on_a_big_set_is_fast(r):
    fill(r, "big", (b"member:%d" % i for i in range(200_000)))
    start = time.perf_counter()
    pipe = r.pipeline(transaction=False)
    for _ in range(2000):
        pipe.spop("big")
        pipe.srandmember("big")
    pipe.execute()
    # With list(set) per call this would be ~2 s per 100 calls.
    assert time.perf_counter() - start < 5
    assert r.scard("big") == 198_000


def test_smove(r):
    r.sadd("a", "x", "y")
    r.sadd("b", "z")
    assert r.smove("a", "b", "x") == 1
    assert r.smembers("a") == {b"y"} and r.smembers("b") == {b"x", b"z"}
    assert r.smove("a", "b", "nope") == 0
    assert r.smove("a", "a", "y") == 1 and r.smove("a", "a", "nope") == 0
    r.sadd("b", "y")
    assert r.smove("a", "b", "y") == 1  # already in the target: just removed from the source
    assert not r.exists("a")
    assert r.smove("b", "fresh", "z") == 1 and r.smembers("fresh") == {b"z"}
    assert r.smove("missing", "b", "x") == 0


def test_algebra(r, raw):
    r.sadd("a", "1", "2", "3", "4")
    r.sadd("b", "3", "4", "5")
    r.sadd("c", "4", "6")
    assert r.sinter("a", "b") == {b"3", b"4"}
    assert r.sinter("a", "b", "c") == {b"4"}
    assert r.sinter("a", "missing") == set()
    assert r.sunion("a", "b", "missing") == {b"1", b"2", b"3", b"4", b"5"}
    assert r.sdiff("a", "b") == {b"1", b"2"}
    assert r.sdiff("a", "b", "c") == {b"1", b"2"}
    assert r.sdiff("missing", "a") == set()
    assert r.sdiff("a", "a") == set()
    assert r.sintercard(2, ["a", "b"]) == 2
    assert r.sintercard(2, ["a", "b"], limit=1) == 1
    assert r.sintercard(3, ["a", "b", "c"], limit=0) == 1
    assert r.sintercard(2, ["a", "missing"]) == 0
    assert error_of(r, "SINTERCARD", "0", "a") == "numkeys should be greater than 0"
    assert error_of(r, "SINTERCARD", "x", "a") == "numkeys should be greater than 0"
    assert error_of(r, "SINTERCARD", "3", "a", "b") == \
        "Number of keys can't be greater than number of args"
    assert error_of(r, "SINTERCARD", "1", "a", "LIMIT", "-1") == "LIMIT can't be negative"
    assert error_of(r, "SINTERCARD", "1", "a", "LIMIT") == "syntax error"
    assert error_of(r, "SINTERCARD", "1", "a", "b") == "syntax error"
    assert sorted(raw.execute_command("SINTER", "a", "b")) == [b"3", b"4"]


def test_store_forms(r):
    r.sadd("a", "1", "2", "3")
    r.sadd("b", "2", "3", "4")
    r.set("dst", "old string")
    r.expire("dst", 100)
    assert r.sinterstore("dst", "a", "b") == 2
    assert r.smembers("dst") == {b"2", b"3"} and r.ttl("dst") == -1
    assert r.sunionstore("dst", "a", "b") == 4
    assert r.sdiffstore("dst", "a", "b") == 1 and r.smembers("dst") == {b"1"}
    # Sources may include the destination.
    assert r.sunionstore("a", "a", "b") == 4 and r.scard("a") == 4
    # An empty result deletes the destination.
    assert r.sinterstore("dst", "a", "missing") == 0 and not r.exists("dst")
    r.sadd("dst", "x")
    assert r.sdiffstore("dst", "b", "a") == 0 and not r.exists("dst")
    r.sadd("dst", "x")
    assert r.sunionstore("dst", "missing") == 0 and not r.exists("dst")


def test_big_set_algebra(r):
    fill(r, "big1", (b"%d" % i for i in range(100_000)))
    fill(r, "big2", (b"%d" % i for i in range(0, 100_000, 3)))
    start = time.perf_counter()
    assert r.sintercard(2, ["big1", "big2"]) == 33334
    assert r.sintercard(2, ["big1", "big2"], limit=10) == 10
    assert r.sinterstore("i", "big1", "big2") == 33334
    assert r.sdiffstore("d", "big1", "big2") == 66666
    assert r.sunionstore("u", "big1", "big2") == 100_000
    assert time.perf_counter() - start < 5


def test_sscan(r, raw):
    r.sadd("ints", *range(100))
    cursor, items = raw.execute_command("SSCAN", "ints", "0")
    assert cursor == b"0" and sorted(map(int, items)) == list(range(100))  # intset: whole
    r.sadd("small", "a", "b", "c")
    assert raw.execute_command("SSCAN", "small", "0")[0] == b"0"
    assert raw.execute_command("SSCAN", "missing", "0") == [b"0", []]
    assert error_of(raw, "SSCAN", "small", "abc") == "invalid cursor"
    assert error_of(raw, "SSCAN", "small", "0", "COUNT", "0") == "syntax error"
    assert error_of(raw, "SSCAN", "small", "0", "NOVALUES") == "syntax error"
    fill(r, "big", (b"member:%d" % i for i in range(3000)))
    seen = set()
    cursor = b"0"
    calls = 0
    while True:
        cursor, items = raw.execute_command("SSCAN", "big", cursor, "COUNT", "100",
                                            "MATCH", "member:1*")
        seen.update(items)
        calls += 1
        r.sadd("big", "extra:%d" % calls)
        r.srem("big", "member:%d" % (2999 - calls))
        if cursor == b"0":
            break
    assert calls > 3
    expected = {b"member:%d" % i for i in range(2999 - calls) if str(i).startswith("1")}
    assert expected <= seen
    assert all(m.startswith(b"member:1") for m in seen)


def test_watch_and_dirty(r, server):
    before = changes(r)
    r.sadd("s", "a", "b", "c")
    assert changes(r) == before + 3
    r.sadd("s", "a")
    r.srem("s", "zz")
    r.smove("s", "s", "a")
    assert changes(r) == before + 3
    r.spop("s")
    assert changes(r) == before + 4
    other = server.client()
    try:
        pipe = r.pipeline()
        pipe.watch("s")
        other.sadd("s", "new")
        pipe.multi()
        pipe.scard("s")
        with pytest.raises(redis.WatchError):
            pipe.execute()
        pipe.reset()
        pipe = r.pipeline()
        pipe.watch("s")
        other.sadd("s", "new")  # no change: not a modification
        other.srem("s", "absent")
        pipe.multi()
        pipe.scard("s")
        assert pipe.execute() == [3]
    finally:
        other.close()


def test_keyspace_notifications(r, server):
    with KeyEvents(r, server) as events:
        r.sadd("a", "1", "2")
        r.srem("a", "1")
        r.sadd("b", "2")
        r.smove("a", "b", "2")  # a becomes empty
        r.sinterstore("c", "b")
        r.sunionstore("c", "missing")
        r.sadd("p", "x")
        r.spop("p")
        expected = [(b"sadd", b"a"), (b"srem", b"a"), (b"sadd", b"b"), (b"srem", b"a"),
                    (b"del", b"a"), (b"sinterstore", b"c"), (b"del", b"c"), (b"sadd", b"p"),
                    (b"spop", b"p"), (b"del", b"p")]
        assert events.take(len(expected)) == expected


def test_sampler_in_process():
    """The random-pick index itself (no server): uniform after tracked
    changes, never wrong after untracked ones."""
    from collections import Counter

    from hakv.common.types.sampler import Sampler

    sampler = Sampler()
    s = set(range(2000))
    sampler.choice(s)  # builds the index
    for i in range(0, 2000, 2):
        s.remove(i)
        sampler.removed(s, i)
    for i in range(3000, 3500):
        s.add(i)
        sampler.added(s, i)
    counts = Counter(sampler.choice(s) for _ in range(150_000))
    assert set(counts) == s
    assert min(counts.values()) > 40 and max(counts.values()) < 180  # mean 100
    # Changes the sampler was not told about: answers stay members.
    for i in range(1, 2000, 2):
        s.remove(i)
        s.add(10_000 + i)
    assert all(sampler.choice(s) in s for _ in range(2000))
    picked = sampler.sample(s, 300)
    assert len(set(picked)) == 300 and set(picked) <= s
    before = set(s)
    popped = [sampler.pop(s) for _ in range(500)]
    assert len(set(popped)) == 500 and set(popped) <= before and not set(popped) & s
