"""List commands (non-blocking) on a running hakv-server: replies, Redis's
exact errors, WRONGTYPE, the empty-key rule, LPOS options, moves, LMPOP,
a 1M-element list, WATCH, notifications and dirty counts. Blocking pops are
in test_blocking.py."""

from __future__ import annotations

import time

import pytest
import redis

from types_support import (WRONGTYPE, KeyEvents, changes, error_of, parsing_client,  # noqa: F401
                           r, raw, server)


def test_push_and_range(r):
    assert r.lpush("l", "a", "b", "c") == 3
    assert r.rpush("l", "d", "e") == 5
    assert r.lrange("l", 0, -1) == [b"c", b"b", b"a", b"d", b"e"]
    assert r.lpushx("l", "z") == 6 and r.rpushx("l", "y") == 7
    assert r.lpushx("missing", "a") == 0 and r.rpushx("missing", "a") == 0
    assert not r.exists("missing")
    assert r.llen("l") == 7 and r.llen("missing") == 0
    assert r.lrange("l", 1, 2) == [b"c", b"b"]
    assert r.lrange("l", -2, -1) == [b"e", b"y"]
    assert r.lrange("l", 5, 100) == [b"e", b"y"]
    assert r.lrange("l", -100, 0) == [b"z"]
    assert r.lrange("l", 3, 2) == [] and r.lrange("l", 7, 10) == []
    assert r.lrange("missing", 0, -1) == []
    assert error_of(r, "LRANGE", "l", "a", "1") == "value is not an integer or out of range"


def test_pops(r, raw):
    r.rpush("l", *"abcdef")
    assert r.lpop("l") == b"a" and r.rpop("l") == b"f"
    assert raw.execute_command("LPOP", "l", "2") == [b"b", b"c"]
    assert raw.execute_command("RPOP", "l", "10") == [b"e", b"d"]
    assert not r.exists("l")
    assert raw.execute_command("LPOP", "l") is None
    assert raw.execute_command("LPOP", "l", "3") is None  # a null array
    r.rpush("l", "x")
    assert raw.execute_command("LPOP", "l", "0") == []
    assert error_of(r, "LPOP", "l", "-1") == "value is out of range, must be positive"
    assert error_of(r, "LPOP", "l", "x") == "value is out of range, must be positive"
    assert error_of(r, "LPOP", "l", "1", "2") == "wrong number of arguments for 'lpop' command"
    assert error_of(r, "RPOP", "l", "1", "2") == "wrong number of arguments for 'rpop' command"


def test_lindex_lset(r, raw):
    r.rpush("l", "a", "b", "c")
    assert r.lindex("l", 0) == b"a" and r.lindex("l", -1) == b"c"
    assert r.lindex("l", 3) is None and r.lindex("l", -4) is None
    assert r.lindex("missing", 0) is None
    assert raw.execute_command("LSET", "l", "-1", "z") == b"OK"
    assert r.lrange("l", 0, -1) == [b"a", b"b", b"z"]
    assert error_of(r, "LSET", "l", "3", "x") == "index out of range"
    assert error_of(r, "LSET", "missing", "0", "x") == "no such key"
    assert error_of(r, "LSET", "l", "x", "x") == "value is not an integer or out of range"
    assert error_of(r, "LINDEX", "l", "9223372036854775808") == \
        "value is not an integer or out of range"


def test_lrem(r):
    r.rpush("l", *"abacabaa")
    assert r.lrem("l", 2, "a") == 2
    assert r.lrange("l", 0, -1) == list(map(str.encode, "bcabaa"))
    assert r.lrem("l", -2, "a") == 2
    assert r.lrange("l", 0, -1) == list(map(str.encode, "bcab"))
    assert r.lrem("l", 0, "b") == 2
    assert r.lrem("l", 0, "zz") == 0
    assert r.lrem("missing", 0, "a") == 0
    assert r.lrem("l", 0, "c") == 1 and r.lrem("l", 5, "a") == 1
    assert not r.exists("l")
    # Many matches, partial removal from either end.
    r.rpush("l", *(["x", "y"] * 50))
    assert r.lrem("l", 30, "x") == 30 and r.lrange("l", 0, 1) == [b"y", b"y"]
    assert r.lrem("l", -10, "x") == 10 and r.lrange("l", -2, -1) == [b"y", b"y"]
    assert r.lrange("l", 0, -1).count(b"x") == 10 and r.llen("l") == 60


def test_ltrim(r, raw):
    r.rpush("l", *"abcdefg")
    assert raw.execute_command("LTRIM", "l", "1", "-2") == b"OK"
    assert r.lrange("l", 0, -1) == list(map(str.encode, "bcdef"))
    r.ltrim("l", -3, 100)
    assert r.lrange("l", 0, -1) == [b"d", b"e", b"f"]
    r.ltrim("l", 0, 0)
    assert r.lrange("l", 0, -1) == [b"d"]
    r.ltrim("l", 2, 1)
    assert not r.exists("l")
    assert raw.execute_command("LTRIM", "missing", "0", "1") == b"OK"
    assert error_of(r, "LTRIM", "l", "x", "1") == "value is not an integer or out of range"


def test_linsert(r):
    r.rpush("l", "a", "b", "c")
    assert r.linsert("l", "BEFORE", "b", "x") == 4
    assert r.linsert("l", "after", "c", "y") == 5
    assert r.lrange("l", 0, -1) == [b"a", b"x", b"b", b"c", b"y"]
    assert r.linsert("l", "BEFORE", "zz", "q") == -1
    assert r.linsert("missing", "BEFORE", "a", "q") == 0
    assert error_of(r, "LINSERT", "l", "middle", "a", "q") == "syntax error"


def test_lpos(r, raw):
    r.rpush("l", *"abcabcab")
    assert r.lpos("l", "c") == 2
    assert r.lpos("l", "c", rank=2) == 5
    assert r.lpos("l", "c", rank=-1) == 5 and r.lpos("l", "c", rank=-2) == 2
    assert r.lpos("l", "a", count=0) == [0, 3, 6]
    assert r.lpos("l", "a", count=2, rank=-1) == [6, 3]
    assert r.lpos("l", "b", maxlen=2) == 1 and r.lpos("l", "c", maxlen=2) is None
    assert r.lpos("l", "a", rank=-1, maxlen=2) == 6
    assert r.lpos("l", "a", rank=-1, maxlen=1) is None
    assert r.lpos("l", "zz") is None and r.lpos("l", "zz", count=3) == []
    assert raw.execute_command("LPOS", "missing", "a", "COUNT", "1") == []
    assert r.lpos("missing", "a") is None
    assert error_of(r, "LPOS", "l", "a", "RANK", "0").startswith("RANK can't be zero: use 1")
    assert error_of(r, "LPOS", "l", "a", "COUNT", "-1") == "COUNT can't be negative"
    assert error_of(r, "LPOS", "l", "a", "MAXLEN", "-1") == "MAXLEN can't be negative"
    assert error_of(r, "LPOS", "l", "a", "RANK") == "syntax error"
    assert error_of(r, "LPOS", "l", "a", "FOO", "1") == "syntax error"


def test_lmove_rpoplpush(r, raw):
    r.rpush("src", "a", "b", "c")
    assert r.lmove("src", "dst", "LEFT", "RIGHT") == b"a"
    assert r.lmove("src", "dst", "RIGHT", "LEFT") == b"c"
    assert r.lrange("dst", 0, -1) == [b"c", b"a"]
    assert r.rpoplpush("src", "dst") == b"b"
    assert not r.exists("src") and r.lrange("dst", 0, -1) == [b"b", b"c", b"a"]
    assert r.rpoplpush("src", "dst") is None
    # Rotation on a single key.
    assert r.lmove("dst", "dst", "LEFT", "RIGHT") == b"b"
    assert r.lrange("dst", 0, -1) == [b"c", b"a", b"b"]
    r.rpush("one", "x")
    assert r.rpoplpush("one", "one") == b"x" and r.lrange("one", 0, -1) == [b"x"]
    assert error_of(r, "LMOVE", "dst", "x", "UP", "LEFT") == "syntax error"
    r.set("str", "v")
    assert error_of(r, "LMOVE", "dst", "str", "LEFT", "LEFT") == WRONGTYPE
    assert error_of(r, "LMOVE", "str", "dst", "LEFT", "LEFT") == WRONGTYPE
    assert r.lmove("missing", "str", "LEFT", "LEFT") is None  # no source: no target check
    assert r.lrange("dst", 0, -1) == [b"c", b"a", b"b"]


def test_lmpop(r, raw):
    r.rpush("b", "1", "2", "3")
    assert raw.execute_command("LMPOP", "2", "a", "b", "LEFT") == [b"b", [b"1"]]
    assert raw.execute_command("LMPOP", "2", "a", "b", "RIGHT", "COUNT", "5") == \
        [b"b", [b"3", b"2"]]
    assert raw.execute_command("LMPOP", "2", "a", "b", "LEFT") is None
    assert error_of(r, "LMPOP", "0", "a", "LEFT") == "numkeys should be greater than 0"
    assert error_of(r, "LMPOP", "x", "a", "LEFT") == "numkeys should be greater than 0"
    assert error_of(r, "LMPOP", "3", "a", "b") == "syntax error"
    assert error_of(r, "LMPOP", "1", "a", "MIDDLE") == "syntax error"
    assert error_of(r, "LMPOP", "1", "a", "LEFT", "COUNT", "0") == "count should be greater than 0"
    assert error_of(r, "LMPOP", "1", "a", "LEFT", "COUNT", "1", "COUNT", "2") == "syntax error"
    r.set("str", "v")
    assert error_of(r, "LMPOP", "2", "missing", "str", "LEFT") == WRONGTYPE


def test_wrongtype_everywhere(r):
    r.set("s", "x")
    for args in (["LPUSH", "s", "a"], ["RPUSH", "s", "a"], ["LPUSHX", "s", "a"],
                 ["RPUSHX", "s", "a"], ["LPOP", "s"], ["RPOP", "s", "2"], ["LLEN", "s"],
                 ["LRANGE", "s", "0", "1"], ["LINDEX", "s", "0"], ["LSET", "s", "0", "a"],
                 ["LREM", "s", "0", "a"], ["LTRIM", "s", "0", "1"],
                 ["LINSERT", "s", "BEFORE", "a", "b"], ["LPOS", "s", "a"],
                 ["RPOPLPUSH", "s", "d"], ["BLPOP", "s", "0.01"], ["BRPOP", "missing", "s", "1"],
                 ["BLMOVE", "s", "d", "LEFT", "LEFT", "0"], ["BLMPOP", "0", "1", "s", "LEFT"]):
        assert error_of(r, *args) == WRONGTYPE, args


def test_one_million_elements(r):
    """A 1M-element list: ends stay O(1); indexing, ranges, trims and
    removals near either end do not copy the list."""
    pipe = r.pipeline(transaction=False)
    for start in range(0, 1_000_000, 10_000):
        pipe.execute_command("RPUSH", "big", *[b"%d" % i for i in range(start, start + 10_000)])
    pipe.execute()
    assert r.llen("big") == 1_000_000
    start = time.perf_counter()
    pipe = r.pipeline(transaction=False)
    for i in range(200):
        pipe.lindex("big", 500_000 + i)
        pipe.lset("big", -(i + 1), b"t%d" % i)
        pipe.lrange("big", 999_990, 999_999)
        pipe.lrange("big", 10, 20)
        pipe.lpush("big", b"h%d" % i)
        pipe.lpop("big")
        pipe.rpush("big", b"x")
        pipe.rpop("big")
    replies = pipe.execute()
    elapsed = time.perf_counter() - start
    assert replies[0] == b"500000" and replies[2][-1] == b"t0"
    assert elapsed < 5, elapsed
    assert r.lpos("big", b"999000") == 999_000
    assert r.lpos("big", b"5", rank=-1) == 5
    assert r.lrem("big", -1, b"999998") == 0  # it was overwritten by LSET
    start = time.perf_counter()
    assert r.lrem("big", 1, b"1") == 1
    r.ltrim("big", 10, -11)
    assert r.llen("big") == 999_979
    assert r.lindex("big", 0) == b"11"
    r.ltrim("big", 100_000, 100_009)
    assert r.lrange("big", 0, -1) == [b"%d" % i for i in range(100_011, 100_021)]
    assert time.perf_counter() - start < 5


def test_watch_and_dirty(r, server):
    before = changes(r)
    r.rpush("l", "a", "b", "c")
    assert changes(r) == before + 3
    r.lpushx("missing", "a")
    r.lrem("l", 0, "zz")
    r.linsert("l", "BEFORE", "zz", "q")
    r.ltrim("l", 0, -1)
    r.lpop("missing")
    assert changes(r) == before + 3
    r.ltrim("l", 1, -1)
    assert changes(r) == before + 4
    other = server.client()
    try:
        for change in (lambda: other.lpush("l", "x"), lambda: other.lpop("l"),
                       lambda: other.lset("l", 0, "q"), lambda: other.ltrim("l", 0, 0),
                       lambda: other.rpoplpush("l", "l")):
            r.delete("l")
            r.rpush("l", "a", "b")
            pipe = r.pipeline()
            pipe.watch("l")
            change()
            pipe.multi()
            pipe.llen("l")
            with pytest.raises(redis.WatchError):
                pipe.execute()
            pipe.reset()
    finally:
        other.close()


def test_keyspace_notifications(r, server):
    with KeyEvents(r, server) as events:
        r.rpush("l", "a", "b", "c")
        r.lpush("l", "z")
        r.lset("l", 0, "y")
        r.linsert("l", "AFTER", "y", "w")
        r.lrem("l", 1, "w")
        r.ltrim("l", 0, 2)
        r.lmove("l", "m", "LEFT", "RIGHT")
        r.rpop("l", 5)
        expected = [(b"rpush", b"l"), (b"lpush", b"l"), (b"lset", b"l"), (b"linsert", b"l"),
                    (b"lrem", b"l"), (b"ltrim", b"l"), (b"rpush", b"m"), (b"lpop", b"l"),
                    (b"rpop", b"l"), (b"del", b"l")]
        assert events.take(len(expected)) == expected
