"""Hash commands on a running hakv-server: replies, Redis's exact errors,
WRONGTYPE, the empty-key rule, HINCRBYFLOAT's long-double arithmetic,
HRANDFIELD, HSCAN's guarantee, WATCH, notifications and dirty counts."""

from __future__ import annotations

import pytest
import redis

from types_support import (WRONGTYPE, KeyEvents, changes, error_of, parsing_client,  # noqa: F401
                           r, raw, server)


def test_hset_hget_hmset_hsetnx(r, raw):
    assert r.execute_command("HSET", "h", "a", "1", "b", "2") == 2
    assert r.execute_command("HSET", "h", "a", "10", "c", "3") == 1
    assert r.hget("h", "a") == b"10"
    assert r.hget("h", "nope") is None
    assert r.hget("missing", "a") is None
    assert raw.execute_command("HMSET", "h", "d", "4") == b"OK"
    assert r.hsetnx("h", "d", "x") == 0
    assert r.hsetnx("h", "e", "5") == 1
    assert r.hsetnx("new", "f", "v") == 1
    assert r.hgetall("h") == {b"a": b"10", b"b": b"2", b"c": b"3", b"d": b"4", b"e": b"5"}
    # Small hashes keep insertion order, like Redis's listpack.
    assert r.hkeys("h") == [b"a", b"b", b"c", b"d", b"e"]
    assert r.hvals("h") == [b"10", b"2", b"3", b"4", b"5"]


def test_arity_errors(r):
    assert error_of(r, "HSET", "h", "a") == "wrong number of arguments for 'hset' command"
    assert error_of(r, "HSET", "h", "a", "1", "b") == "wrong number of arguments for 'hset' command"
    assert error_of(r, "HMSET", "h", "a", "1", "b") == \
        "wrong number of arguments for 'hmset' command"
    assert error_of(r, "HSETNX", "h", "a") == "wrong number of arguments for 'hsetnx' command"
    assert error_of(r, "HGET", "h") == "wrong number of arguments for 'hget' command"
    assert error_of(r, "HMGET", "h") == "wrong number of arguments for 'hmget' command"
    assert error_of(r, "HDEL", "h") == "wrong number of arguments for 'hdel' command"
    assert not r.exists("h")


def test_hmget_hlen_hexists_hstrlen(r):
    r.hset("h", mapping={"a": "hello", "b": ""})
    assert r.hmget("h", "a", "zz", "b") == [b"hello", None, b""]
    assert r.hmget("missing", "a", "b") == [None, None]
    assert r.hlen("h") == 2 and r.hlen("missing") == 0
    assert r.hexists("h", "a") and not r.hexists("h", "zz") and not r.hexists("missing", "a")
    assert r.hstrlen("h", "a") == 5
    assert r.hstrlen("h", "b") == 0 and r.hstrlen("h", "zz") == 0
    assert r.hstrlen("missing", "a") == 0


def test_hdel_and_the_empty_key_rule(r):
    r.hset("h", mapping={"a": "1", "b": "2", "c": "3"})
    assert r.hdel("h", "a", "zz", "a") == 1
    assert r.hdel("missing", "a") == 0
    assert r.hdel("h", "b", "c") == 2
    assert not r.exists("h")
    assert r.hgetall("h") == {}
    assert r.hkeys("h") == [] and r.hvals("h") == []


def test_wrongtype_everywhere(r):
    r.set("s", "x")
    for args in (["HSET", "s", "a", "1"], ["HSETNX", "s", "a", "1"], ["HGET", "s", "a"],
                 ["HMSET", "s", "a", "1"], ["HMGET", "s", "a"], ["HDEL", "s", "a"],
                 ["HLEN", "s"], ["HEXISTS", "s", "a"], ["HKEYS", "s"], ["HVALS", "s"],
                 ["HGETALL", "s"], ["HINCRBY", "s", "a", "1"], ["HINCRBYFLOAT", "s", "a", "1"],
                 ["HSTRLEN", "s", "a"], ["HRANDFIELD", "s"], ["HRANDFIELD", "s", "2"],
                 ["HSCAN", "s", "0"]):
        assert error_of(r, *args) == WRONGTYPE, args
    assert r.get("s") == b"x"


def test_hincrby(r):
    assert r.hincrby("h", "n", 5) == 5
    assert r.hincrby("h", "n", -7) == -2
    assert r.hget("h", "n") == b"-2"
    r.hset("h", "text", "abc")
    assert error_of(r, "HINCRBY", "h", "text", "1") == "hash value is not an integer"
    assert error_of(r, "HINCRBY", "h", "n", "x") == "value is not an integer or out of range"
    assert error_of(r, "HINCRBY", "h", "n", "1.5") == "value is not an integer or out of range"
    r.hset("h", "big", "9223372036854775807")
    assert error_of(r, "HINCRBY", "h", "big", "1") == "increment or decrement would overflow"
    r.hset("h", "small", "-9223372036854775808")
    assert error_of(r, "HINCRBY", "h", "small", "-1") == "increment or decrement would overflow"
    assert r.hincrby("h", "small", 1) == -9223372036854775807


def test_hincrbyfloat_long_double(r, raw):
    # Redis computes in long double and prints "%.17Lf" trimmed: 0.1 + 0.2 is 0.3.
    assert raw.execute_command("HINCRBYFLOAT", "h", "f", "0.1") == b"0.1"
    assert raw.execute_command("HINCRBYFLOAT", "h", "f", "0.2") == b"0.3"
    assert raw.execute_command("HINCRBYFLOAT", "h", "f", "-0.3") == b"0"
    assert raw.execute_command("HINCRBYFLOAT", "h", "g", "5.0e3") == b"5000"
    # Long double's extra digits show, exactly as in Redis.
    assert raw.execute_command("HINCRBYFLOAT", "h", "g", "1.5e-10") == \
        b"5000.00000000015000001"
    assert raw.execute_command("HINCRBYFLOAT", "h", "x", ".5") == b"0.5"
    assert raw.execute_command("HINCRBYFLOAT", "h", "x", "0x10") == b"16.5"
    # Beyond a double's range, still within a long double's.
    big = raw.execute_command("HINCRBYFLOAT", "h", "huge", "1e400")
    assert big.startswith(b"1000000000000000000028188068394758651") and len(big) == 401
    assert error_of(r, "HINCRBYFLOAT", "h", "f", "abc") == "value is not a valid float"
    assert error_of(r, "HINCRBYFLOAT", "h", "f", "nan") == "value is not a valid float"
    assert error_of(r, "HINCRBYFLOAT", "h", "f", "inf") == "value is NaN or Infinity"
    assert error_of(r, "HINCRBYFLOAT", "h", "f", "1e5000") == "value is not a valid float"
    r.hset("h", "word", "one")
    assert error_of(r, "HINCRBYFLOAT", "h", "word", "1") == "hash value is not a float"
    r.hset("h", "max", "1e4932")
    assert error_of(r, "HINCRBYFLOAT", "h", "max", "1e4932") == \
        "increment would produce NaN or Infinity"


def test_hrandfield(r, raw):
    fields = {b"f%d" % i: b"v%d" % i for i in range(20)}
    r.hset("h", mapping=fields)
    for _ in range(20):
        assert r.hrandfield("h") in fields
    picked = r.hrandfield("h", 5)
    assert len(picked) == 5 and len(set(picked)) == 5 and set(picked) <= set(fields)
    assert sorted(r.hrandfield("h", 100)) == sorted(fields)
    repeated = r.hrandfield("h", -50)
    assert len(repeated) == 50 and set(repeated) <= set(fields)
    flat = raw.execute_command("HRANDFIELD", "h", "-7", "WITHVALUES")
    assert len(flat) == 14
    for f, v in zip(flat[::2], flat[1::2]):
        assert fields[f] == v
    assert r.execute_command("HRANDFIELD", "h", "0") == []
    assert r.execute_command("HRANDFIELD", "missing") is None
    assert r.execute_command("HRANDFIELD", "missing", "3") == []
    assert error_of(r, "HRANDFIELD", "h", "x") == "value is not an integer or out of range"
    assert error_of(r, "HRANDFIELD", "h", "1", "foo") == "syntax error"
    assert error_of(r, "HRANDFIELD", "h", "1", "WITHVALUES", "x") == "syntax error"
    assert error_of(r, "HRANDFIELD", "h", "-9223372036854775808") == (
        "value is out of range, value must between -9223372036854775807 and "
        "9223372036854775807")
    assert error_of(r, "HRANDFIELD", "h", "4611686018427387904", "WITHVALUES") == \
        "value is out of range"


def test_hrandfield_is_uniform_on_a_big_hash(r):
    n = 3000
    pipe = r.pipeline(transaction=False)
    for start in range(0, n, 500):
        pipe.hset("big", mapping={b"f%d" % i: b"v" for i in range(start, start + 500)})
    pipe.execute()
    seen = r.hrandfield("big", -30000)
    counts = {}
    for f in seen:
        counts[f] = counts.get(f, 0) + 1
    # 30000 picks over 3000 fields: each ~10 times; all but a handful seen.
    assert len(counts) > n * 0.99
    assert max(counts.values()) < 40
    # Deletions after the sampler indexed the hash are never picked.
    r.hdel("big", *[b"f%d" % i for i in range(0, n, 2)])
    picks = set(r.hrandfield("big", -5000))
    assert picks and all(int(f[1:]) % 2 == 1 for f in picks)
    r.hset("big", "fresh", "v")
    assert any(r.hrandfield("big") == b"fresh" for _ in range(20000))


def test_resp3_replies(server):
    r3 = server.client(protocol=3)
    try:
        r3.flushall()
        r3.hset("h", mapping={"a": "1", "b": "2"})
        assert r3.hgetall("h") == {b"a": b"1", b"b": b"2"}
        pairs = r3.execute_command("HRANDFIELD", "h", "2", "WITHVALUES")
        assert sorted(map(tuple, pairs)) == [(b"a", b"1"), (b"b", b"2")]
        assert r3.execute_command("HRANDFIELD", "h", "-1", "WITHVALUES")[0][0] in (b"a", b"b")
    finally:
        r3.close()


def test_hscan_small_hash_whole_with_cursor_zero(r, raw):
    r.hset("h", mapping={"a": "1", "b": "2", "c": "3"})
    assert raw.execute_command("HSCAN", "h", "0") == [b"0", [b"a", b"1", b"b", b"2", b"c", b"3"]]
    # Small encodings ignore the cursor, as Redis's listpack does.
    assert raw.execute_command("HSCAN", "h", "12345")[0] == b"0"
    assert raw.execute_command("HSCAN", "h", "0", "MATCH", "[ab]")[1] == [b"a", b"1", b"b", b"2"]
    assert raw.execute_command("HSCAN", "missing", "0") == [b"0", []]
    assert error_of(raw, "HSCAN", "h", "x") == "invalid cursor"
    assert error_of(raw, "HSCAN", "h", "0", "COUNT", "0") == "syntax error"
    assert error_of(raw, "HSCAN", "h", "0", "COUNT", "x") == \
        "value is not an integer or out of range"
    assert error_of(raw, "HSCAN", "h", "0", "MATCH") == "syntax error"
    assert error_of(raw, "HSCAN", "h", "0", "TYPE", "string") == "syntax error"


def test_hscan_guarantee_under_writes(r, raw):
    n = 2000
    r.hset("h", mapping={b"f%d" % i: b"%d" % i for i in range(n)})
    seen = {}
    cursor = b"0"
    calls = 0
    while True:
        cursor, items = raw.execute_command("HSCAN", "h", cursor, "COUNT", "50")
        calls += 1
        for f, v in zip(items[::2], items[1::2]):
            seen[f] = v
        # Writes during the iteration: new fields, deletions of high ones.
        r.hset("h", b"new%d" % calls, b"x")
        r.hdel("h", b"f%d" % (n - calls))
        if cursor == b"0":
            break
    assert 1 < calls < 1000
    stable = {b"f%d" % i for i in range(n - calls)}
    assert stable <= set(seen)
    assert all(seen[f] == f[1:] for f in stable)


def test_hscan_count_and_match_on_a_big_hash(r, raw):
    r.hset("h", mapping={b"key:%d" % i: b"v" for i in range(500)})
    r.hset("h", mapping={b"other:%d" % i: b"v" for i in range(500)})
    found = set()
    cursor = b"0"
    while True:
        cursor, items = raw.execute_command("HSCAN", "h", cursor, "MATCH", "key:*", "COUNT", "100")
        found.update(items[::2])
        if cursor == b"0":
            break
    assert found == {b"key:%d" % i for i in range(500)}


def test_watch_sees_hash_changes(r, server):
    other = server.client()
    try:
        for change in (lambda: other.hset("h", "a", "2"), lambda: other.hdel("h", "a"),
                       lambda: other.hincrby("h", "n", 1),
                       lambda: other.hincrbyfloat("h", "n", 1.5)):
            r.hset("h", mapping={"a": "1", "n": "1"})
            pipe = r.pipeline()
            pipe.watch("h")
            change()
            pipe.multi()
            pipe.hget("h", "a")
            with pytest.raises(redis.WatchError):
                pipe.execute()
            pipe.reset()
        # A command that changes nothing does not touch the key.
        r.hset("h", "a", "1")
        pipe = r.pipeline()
        pipe.watch("h")
        other.hdel("h", "zz")
        other.hsetnx("h", "a", "x")
        pipe.multi()
        pipe.hget("h", "a")
        assert pipe.execute() == [b"1"]
    finally:
        other.close()


def test_dirty_counts(r):
    before = changes(r)
    r.hset("h", mapping={"a": "1", "b": "2"})
    assert changes(r) == before + 2
    r.hdel("h", "zz")
    r.hsetnx("h", "a", "1")
    r.hget("h", "a")
    assert changes(r) == before + 2
    r.hdel("h", "a", "b")
    assert changes(r) == before + 4
    r.hincrby("h", "n", 3)
    r.hincrbyfloat("h", "n", 0.5)
    assert changes(r) == before + 6


def test_keyspace_notifications(r, server):
    with KeyEvents(r, server) as events:
        r.hset("h", "a", "1")
        r.hsetnx("h", "b", "2")
        r.hincrby("h", "n", 1)
        r.hincrbyfloat("h", "f", 1.5)
        r.hdel("h", "a", "b", "n")
        r.hdel("h", "f")
        assert events.take(7) == [(b"hset", b"h"), (b"hset", b"h"), (b"hincrby", b"h"),
                                  (b"hincrbyfloat", b"h"), (b"hdel", b"h"), (b"hdel", b"h"),
                                  (b"del", b"h")]
