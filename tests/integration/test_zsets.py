"""Sorted-set commands (common/commands/zsets.py) on a running hakv-server:
every command's replies and exact error texts, score formatting, RESP3
doubles and nesting, OBJECT ENCODING conversions, the empty-key rule, WATCH,
blocking pops with several clients, and a 1M-member set.

Keyspace notifications, dirty counts and the propagated stream are checked
in-process (a Server driven through the dispatcher), where they can be
recorded exactly; the propagation of served blocking pops is checked with a
real Redis replica, whose MONITOR shows what it was sent.
"""

from __future__ import annotations

import random
import socket
import time

import pytest
import redis

from hakv.common import dispatch
from hakv.common.config import Settings
from hakv.common.connection import Client
from hakv.common.node import load_families
from hakv.common.server import Server

from types_support import (WRONGTYPE, Conn, conns, parsing_client, raw,  # noqa: F401
                           redis_replica_of, server, wait_blocked, wait_replicated)
from types_support import error_of as err

ResponseError = redis.exceptions.ResponseError


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def r(raw):
    """Raw RESP2 replies (bytes, ints, lists, None) on an empty server with
    Redis's default listpack limits."""
    raw.flushall()
    raw.execute_command("CONFIG", "SET", "zset-max-listpack-entries", "128")
    raw.execute_command("CONFIG", "SET", "zset-max-listpack-value", "64")
    return raw


def x(r, *args):
    return r.execute_command(*args)


class Node:
    """A Server without sockets: commands go through the dispatcher; the
    propagated stream and keyspace notifications are recorded."""

    def __init__(self):
        load_families()
        self.server = Server(Settings())
        self.server.propagating = True
        self.stream = []
        self.events = []
        ks = self.server.keyspace
        ks.propagate = lambda dbid, argv: self.stream.append([bytes(a) for a in argv])
        ks.notify = lambda db, cls, event, key: self.events.append((cls, event, key))
        self.client = Client(self.server)

    def __call__(self, *args):
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        reply = dispatch.execute(self.client, argv)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def take(self):
        out = (self.stream, self.events, self.server.dirty)
        self.stream, self.events = [], []
        self.server.dirty = 0
        return out


@pytest.fixture
def node():
    return Node()


def flat(r, key):
    return x(r, "ZRANGE", key, 0, -1, "WITHSCORES")


# ------------------------------------------------------------------ ZADD / ZINCRBY


def test_zadd_adds_updates_and_counts(r):
    assert x(r, "ZADD", "z", 1, "a", 2, "b") == 2
    assert x(r, "ZADD", "z", 3, "a", 2, "b", 4, "c") == 1  # a updated, b same, c new
    assert x(r, "ZADD", "z", "CH", 5, "a", 2, "b", 6, "d") == 2  # a changed, d added
    assert flat(r, "z") == [b"b", b"2", b"c", b"4", b"a", b"5", b"d", b"6"]
    # The last score for a member repeated in one command wins.
    assert x(r, "ZADD", "z2", 1, "m", 2, "m") == 1
    assert x(r, "ZSCORE", "z2", "m") == b"2"


def test_zadd_nx_xx_gt_lt(r):
    x(r, "ZADD", "z", 10, "a")
    assert x(r, "ZADD", "z", "NX", 20, "a", 1, "b") == 1
    assert x(r, "ZSCORE", "z", "a") == b"10"
    assert x(r, "ZADD", "z", "XX", 30, "a", 1, "c") == 0
    assert x(r, "ZSCORE", "z", "a") == b"30" and x(r, "ZSCORE", "z", "c") is None
    assert x(r, "ZADD", "z", "GT", "CH", 20, "a", 40, "b", 7, "new") == 2
    assert flat(r, "z") == [b"new", b"7", b"a", b"30", b"b", b"40"]
    assert x(r, "ZADD", "z", "LT", "CH", 50, "a", 5, "b") == 1
    assert x(r, "ZADD", "z", "xx", "gt", "ch", 100, "a") == 1
    # XX on a missing key creates nothing.
    assert x(r, "ZADD", "missing", "XX", 1, "a") == 0
    assert x(r, "ZADD", "missing", "XX", "INCR", 1, "a") is None
    assert x(r, "EXISTS", "missing") == 0


def test_zadd_incr_and_zincrby(r):
    assert x(r, "ZADD", "z", "INCR", 1.5, "a") == b"1.5"
    assert x(r, "ZINCRBY", "z", 2, "a") == b"3.5"
    assert x(r, "ZINCRBY", "z", "0.1", "b") == b"0.10000000000000001"
    assert x(r, "ZADD", "z", "NX", "INCR", 1, "a") is None
    assert x(r, "ZADD", "z", "XX", "INCR", 1, "zz") is None
    assert x(r, "ZADD", "z", "GT", "INCR", -1, "a") is None  # would lower it
    assert x(r, "ZADD", "z", "LT", "INCR", -1, "a") == b"2.5"
    assert x(r, "ZINCRBY", "z", "inf", "a") == b"inf"
    assert x(r, "ZINCRBY", "z", "1", "a") == b"inf"
    assert err(r, "ZINCRBY", "z", "-inf", "a") == "resulting score is not a number (NaN)"
    assert err(r, "ZADD", "z", "INCR", "-inf", "a") == "resulting score is not a number (NaN)"
    assert x(r, "ZSCORE", "z", "a") == b"inf"
    # ZINCRBY runs ZADD's option parser: a flag where the increment goes.
    assert err(r, "ZINCRBY", "z", "nx", "a") == "syntax error"


def test_zadd_errors_in_redis_order(r):
    x(r, "SET", "s", "x")
    assert err(r, "ZADD", "z", 1) == "wrong number of arguments for 'zadd' command"
    assert err(r, "ZADD", "z", "NX") == "wrong number of arguments for 'zadd' command"
    assert err(r, "ZADD", "z", 1, "a", 2) == "syntax error"
    assert err(r, "ZADD", "z", "NX", "CH") == "syntax error"
    assert err(r, "ZADD", "s", "NX", "XX", "x", "a") == \
        "XX and NX options at the same time are not compatible"
    for opts in (("GT", "LT"), ("NX", "GT"), ("LT", "NX")):
        assert err(r, "ZADD", "s", *opts, "x", "a") == \
            "GT, LT, and/or NX options at the same time are not compatible"
    assert err(r, "ZADD", "s", "INCR", 1, "a", 2, "b") == \
        "INCR option supports a single increment-element pair"
    assert err(r, "ZADD", "s", "x", "a") == "value is not a valid float"
    assert err(r, "ZADD", "s", 1, "a") == WRONGTYPE
    assert err(r, "ZINCRBY", "s", 1, "a") == WRONGTYPE
    assert err(r, "ZINCRBY", "z", "abc", "a") == "value is not a valid float"
    assert x(r, "EXISTS", "z") == 0


@pytest.mark.parametrize("text", ["nan", "NaN", "abc", "1e400", "-1e400", "1e-400", " 1",
                                  "1 ", "", "1_0", "0x", "1e", "--1", "+-1", "inf1", "1\x002"])
def test_scores_redis_refuses(r, text):
    assert err(r, "ZADD", "z", text, "a") == "value is not a valid float"


@pytest.mark.parametrize("text, shown", [
    ("1.1", b"1.1000000000000001"), ("0.1", b"0.10000000000000001"), ("3", b"3"),
    ("-2.5", b"-2.5"), ("inf", b"inf"), ("+inf", b"inf"), ("-inf", b"-inf"),
    ("Infinity", b"inf"), ("-INFINITY", b"-inf"), ("1e308", b"1e+308"),
    ("1.7976931348623157e308", b"1.7976931348623157e+308"), ("1e-310", b"9.9999999999999694e-311"),
    ("123456789012345678", b"1.2345678901234568e+17"), ("0x10", b"16"), ("0x1p-2", b"0.25"),
    (".5", b"0.5"), ("5.", b"5"), ("+7", b"7"), ("1E3", b"1000"), ("-0", b"0"),
    ("00012", b"12"),
])
def test_scores_formatted_like_redis(r, text, shown):
    x(r, "ZADD", "z", text, "a")
    assert x(r, "ZSCORE", "z", "a") == shown


def test_negative_zero_survives_only_in_skiplists(r):
    # Small sets are listpacks in Redis: a stored "-0" reads back as 0.
    assert x(r, "ZADD", "small", "-0", "a") == 1
    assert x(r, "ZSCORE", "small", "a") == b"0"
    assert x(r, "ZINCRBY", "small", "-0", "b") == b"-0"  # the reply is the computed score
    assert x(r, "ZSCORE", "small", "b") == b"0"
    # A member too long for a listpack makes a skiplist, which keeps the sign.
    assert x(r, "ZADD", "big", "-0", "x" * 65) == 1
    assert x(r, "OBJECT", "ENCODING", "big") == b"skiplist"
    assert x(r, "ZSCORE", "big", "x" * 65) == b"-0"
    assert x(r, "ZADD", "big", "-0", "y") == 1
    assert x(r, "ZSCORE", "big", "y") == b"-0"
    # ZUNION computes in a skiplist; ZUNIONSTORE shrinks a small result to a listpack.
    assert x(r, "ZUNION", 1, "small", "WEIGHTS", -1, "WITHSCORES") == [b"a", b"-0", b"b", b"-0"]
    assert x(r, "ZUNIONSTORE", "dst", 1, "small", "WEIGHTS", -1) == 2
    assert x(r, "ZSCORE", "dst", "a") == b"0"


# ------------------------------------------------------------------ reads


def test_zrem_zcard_zscore_zmscore(r):
    x(r, "SET", "s", "x")
    x(r, "ZADD", "z", 1, "a", 2, "b", 3, "c")
    assert x(r, "ZCARD", "z") == 3 and x(r, "ZCARD", "missing") == 0
    assert x(r, "ZSCORE", "z", "b") == b"2" and x(r, "ZSCORE", "z", "q") is None
    assert x(r, "ZSCORE", "missing", "q") is None
    assert x(r, "ZMSCORE", "z", "a", "q", "c") == [b"1", None, b"3"]
    assert x(r, "ZMSCORE", "missing", "a", "b") == [None, None]
    assert x(r, "ZREM", "z", "a", "q", "a") == 1
    assert x(r, "ZREM", "missing", "a") == 0
    assert x(r, "ZREM", "z", "b", "c") == 2
    assert x(r, "EXISTS", "z") == 0  # the empty-key rule
    for cmd in (("ZCARD", "s"), ("ZSCORE", "s", "a"), ("ZMSCORE", "s", "a"), ("ZREM", "s", "a"),
                ("ZRANK", "s", "a"), ("ZREVRANK", "s", "a")):
        assert err(r, *cmd) == WRONGTYPE, cmd
    assert err(r, "ZMSCORE", "z") == "wrong number of arguments for 'zmscore' command"


def test_zrank_zrevrank_ties_broken_by_member(r):
    x(r, "ZADD", "z", 1, "b", 1, "a", 0, "z", 2, "c", 1, "ab")
    assert [x(r, "ZRANK", "z", m) for m in ("z", "a", "ab", "b", "c")] == [0, 1, 2, 3, 4]
    assert x(r, "ZREVRANK", "z", "z") == 4 and x(r, "ZREVRANK", "z", "c") == 0
    assert x(r, "ZRANK", "z", "nope") is None and x(r, "ZRANK", "missing", "a") is None


def seed(r, key="z"):
    x(r, "ZADD", key, 1, "a", 2, "b", 3, "c", 4, "d", 5, "e", "-inf", "lo", "inf", "hi")


def test_zrange_by_rank(r):
    seed(r)
    assert x(r, "ZRANGE", "z", 0, 2) == [b"lo", b"a", b"b"]
    assert x(r, "ZRANGE", "z", -2, -1, "WITHSCORES") == [b"e", b"5", b"hi", b"inf"]
    assert x(r, "ZRANGE", "z", 0, 1, "REV", "withscores") == [b"hi", b"inf", b"e", b"5"]
    assert x(r, "ZREVRANGE", "z", 0, 0, "WITHSCORES") == [b"hi", b"inf"]
    assert x(r, "ZREVRANGE", "z", -1, -1) == [b"lo"]
    assert x(r, "ZRANGE", "z", 5, 2) == [] and x(r, "ZRANGE", "z", 100, 200) == []
    assert x(r, "ZRANGE", "z", -100, 0) == [b"lo"]
    assert x(r, "ZRANGE", "missing", 0, -1) == []
    # LIMIT with -1 as count is "no limit" and so allowed with a rank range.
    assert x(r, "ZRANGE", "z", 0, 0, "LIMIT", 0, -1) == [b"lo"]


def test_zrange_by_score(r):
    seed(r)
    assert x(r, "ZRANGEBYSCORE", "z", 2, 4) == [b"b", b"c", b"d"]
    assert x(r, "ZRANGEBYSCORE", "z", "(2", "(4") == [b"c"]
    assert x(r, "ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", 1, 2) == [b"a", b"b"]
    assert x(r, "ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", -1, 2) == []
    assert x(r, "ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", 5, -1) == [b"e", b"hi"]
    assert x(r, "ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", 0, 0) == []
    assert x(r, "ZRANGEBYSCORE", "z", "inf", "inf", "WITHSCORES") == [b"hi", b"inf"]
    assert x(r, "ZREVRANGEBYSCORE", "z", 4, 2, "WITHSCORES") == \
        [b"d", b"4", b"c", b"3", b"b", b"2"]
    assert x(r, "ZREVRANGEBYSCORE", "z", "+inf", "-inf", "LIMIT", 1, 2) == [b"e", b"d"]
    assert x(r, "ZRANGE", "z", "(1", 3, "BYSCORE") == [b"b", b"c"]
    assert x(r, "ZRANGE", "z", 3, "(1", "BYSCORE", "REV", "LIMIT", 0, 1) == [b"c"]
    # zslParseRange's leniency: leading spaces, hex, an empty bound (0).
    assert x(r, "ZRANGEBYSCORE", "z", " 2", "0x3") == [b"b", b"c"]
    assert x(r, "ZCOUNT", "z", "", "(") == 0
    assert x(r, "ZRANGEBYSCORE", "z", 3, 2) == []


def test_zrange_by_lex(r):
    x(r, "ZADD", "l", 0, "a", 0, "b", 0, "c", 0, "d", 0, "ab", 0, "")
    assert x(r, "ZRANGEBYLEX", "l", "-", "+") == [b"", b"a", b"ab", b"b", b"c", b"d"]
    assert x(r, "ZRANGEBYLEX", "l", "[a", "(c") == [b"a", b"ab", b"b"]
    assert x(r, "ZRANGEBYLEX", "l", "(a", "[b") == [b"ab", b"b"]
    assert x(r, "ZREVRANGEBYLEX", "l", "+", "[b", "LIMIT", 1, 2) == [b"c", b"b"]
    assert x(r, "ZRANGE", "l", "[b", "+", "BYLEX") == [b"b", b"c", b"d"]
    assert x(r, "ZRANGE", "l", "+", "[c", "BYLEX", "REV") == [b"d", b"c"]
    assert x(r, "ZRANGEBYLEX", "l", "+", "-") == []
    assert x(r, "ZLEXCOUNT", "l", "[", "+") == 6 and x(r, "ZLEXCOUNT", "l", "(", "+") == 5
    assert x(r, "ZLEXCOUNT", "l", "-", "(b") == 3


def test_zrange_errors(r):
    seed(r)
    x(r, "SET", "s", "x")
    limit_msg = "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
    ws_msg = "syntax error, WITHSCORES not supported in combination with BYLEX"
    assert err(r, "ZRANGE", "z", 0, 1, "LIMIT", 0, 1) == limit_msg
    assert err(r, "ZREVRANGE", "z", 0, 1, "LIMIT", 0, 1) == limit_msg
    assert err(r, "ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES") == ws_msg
    assert err(r, "ZRANGEBYLEX", "z", "-", "+", "WITHSCORES") == ws_msg
    assert err(r, "ZRANGE", "z", 0, 1, "BYSCORE", "BYLEX") == "syntax error"
    assert err(r, "ZRANGE", "z", 0, 1, "REV", "REV") == "syntax error"
    assert err(r, "ZRANGEBYSCORE", "z", 0, 1, "REV") == "syntax error"
    assert err(r, "ZREVRANGE", "z", 0, 1, "REV") == "syntax error"
    assert err(r, "ZRANGE", "z", 0, 1, "LIMIT", 0) == "syntax error"
    assert err(r, "ZRANGE", "z", 0, 1, "BYSCORE", "LIMIT", "x", 1) == \
        "value is not an integer or out of range"
    assert err(r, "ZRANGE", "z", "a", 1) == "value is not an integer or out of range"
    for bad in ("x", "nan", "(nan", "1 ", "((1"):
        assert err(r, "ZRANGEBYSCORE", "z", bad, 1) == "min or max is not a float", bad
        assert err(r, "ZCOUNT", "z", 0, bad) == "min or max is not a float", bad
    for bad in ("a", "", "-x", "+a"):
        assert err(r, "ZRANGEBYLEX", "z", bad, "+") == "min or max not valid string range item"
        assert err(r, "ZLEXCOUNT", "z", "-", bad) == "min or max not valid string range item"
    # Parse errors come before the key lookup, WRONGTYPE after.
    assert err(r, "ZRANGE", "s", "a", 1) == "value is not an integer or out of range"
    assert err(r, "ZRANGE", "s", 0, 1) == WRONGTYPE
    assert err(r, "ZRANGESTORE", "d", "z", 0, 1, "WITHSCORES") == "syntax error"


def test_zrangestore(r):
    seed(r)
    assert x(r, "ZRANGESTORE", "d", "z", 1, 3) == 3
    assert flat(r, "d") == [b"a", b"1", b"b", b"2", b"c", b"3"]
    assert x(r, "ZRANGESTORE", "d", "z", "(1", "4", "BYSCORE", "LIMIT", 1, 5) == 2
    assert flat(r, "d") == [b"c", b"3", b"d", b"4"]
    x(r, "EXPIRE", "d", 100)
    assert x(r, "ZRANGESTORE", "d", "z", 0, 0, "REV") == 1
    assert flat(r, "d") == [b"hi", b"inf"]
    assert x(r, "TTL", "d") == -1  # a store replaces the key, TTL included
    # An empty result deletes the destination, whatever it held.
    x(r, "SET", "str", "v")
    assert x(r, "ZRANGESTORE", "str", "z", 50, 60) == 0
    assert x(r, "EXISTS", "str") == 0
    assert x(r, "ZRANGESTORE", "d", "missing", 0, -1) == 0
    assert x(r, "EXISTS", "d") == 0


def test_zremrange(r):
    seed(r)
    assert x(r, "ZREMRANGEBYRANK", "z", 0, 1) == 2  # lo, a
    assert x(r, "ZREMRANGEBYSCORE", "z", "(2", 4) == 2  # c, d
    assert x(r, "ZREMRANGEBYRANK", "z", 10, 20) == 0
    assert flat(r, "z") == [b"b", b"2", b"e", b"5", b"hi", b"inf"]
    assert x(r, "ZREMRANGEBYSCORE", "z", "-inf", "+inf") == 3
    assert x(r, "EXISTS", "z") == 0
    x(r, "ZADD", "l", 0, "a", 0, "b", 0, "c")
    assert x(r, "ZREMRANGEBYLEX", "l", "(a", "+") == 2
    assert x(r, "ZREMRANGEBYLEX", "missing", "-", "+") == 0
    assert err(r, "ZREMRANGEBYRANK", "l", "x", 1) == "value is not an integer or out of range"
    assert err(r, "ZREMRANGEBYSCORE", "l", "x", 1) == "min or max is not a float"
    assert err(r, "ZREMRANGEBYLEX", "l", "x", 1) == "min or max not valid string range item"
    x(r, "SET", "s", "x")
    assert err(r, "ZREMRANGEBYRANK", "s", 0, 1) == WRONGTYPE


# ------------------------------------------------------------------ pops


def test_zpopmin_zpopmax(r):
    seed(r)
    x(r, "SET", "s", "x")
    assert x(r, "ZPOPMIN", "z") == [b"lo", b"-inf"]
    assert x(r, "ZPOPMAX", "z", 2) == [b"hi", b"inf", b"e", b"5"]
    assert x(r, "ZPOPMIN", "z", 0) == []
    assert x(r, "ZPOPMIN", "missing") == [] and x(r, "ZPOPMIN", "missing", 3) == []
    assert x(r, "ZPOPMIN", "z", 100) == [b"a", b"1", b"b", b"2", b"c", b"3", b"d", b"4"]
    assert x(r, "EXISTS", "z") == 0
    assert err(r, "ZPOPMIN", "z", -1) == "value is out of range, must be positive"
    assert err(r, "ZPOPMIN", "z", "x") == "value is out of range, must be positive"
    assert err(r, "ZPOPMIN", "z", 1, 2) == "syntax error"
    assert err(r, "ZPOPMAX", "s", 0) == WRONGTYPE


def test_zmpop(r):
    seed(r)
    x(r, "SET", "s", "x")
    assert x(r, "ZMPOP", 2, "missing", "z", "MIN") == [b"z", [[b"lo", b"-inf"]]]
    assert x(r, "ZMPOP", 1, "z", "max", "COUNT", 2) == [b"z", [[b"hi", b"inf"], [b"e", b"5"]]]
    assert x(r, "ZMPOP", 1, "missing", "MIN") is None
    assert x(r, "ZMPOP", 2, "z", "s", "MIN") == [b"z", [[b"a", b"1"]]]
    assert err(r, "ZMPOP", 2, "s", "z", "MIN") == WRONGTYPE
    assert err(r, "ZMPOP", 0, "z", "MIN") == "numkeys should be greater than 0"
    assert err(r, "ZMPOP", "x", "z", "MIN") == "numkeys should be greater than 0"
    assert err(r, "ZMPOP", 3, "z", "MIN") == "syntax error"
    assert err(r, "ZMPOP", 1, "z", "MIDDLE") == "syntax error"
    assert err(r, "ZMPOP", 1, "z", "MIN", "COUNT", 0) == "count should be greater than 0"
    assert err(r, "ZMPOP", 1, "z", "MIN", "COUNT", 1, "COUNT", 1) == "syntax error"
    assert err(r, "ZMPOP", 1, "z") == "wrong number of arguments for 'zmpop' command"


def test_resp3_doubles_and_nesting(server, conns):
    c = conns(resp3=True)
    c.call("FLUSHALL")
    c.call("ZADD", "z", 1.5, "a", 2, "b", "inf", "c", 0, "d")
    assert c.call("ZSCORE", "z", "a") == ("double", b"1.5")
    assert c.call("ZSCORE", "z", "c") == ("double", b"inf")
    assert c.call("ZSCORE", "z", "q") == "NULL"
    assert c.call("ZMSCORE", "z", "a", "q") == [("double", b"1.5"), "NULL"]
    assert c.call("ZINCRBY", "z", "0.1", "d") == ("double", b"0.10000000000000001")
    assert c.call("ZRANGE", "z", 0, 1, "WITHSCORES") == [
        [b"d", ("double", b"0.10000000000000001")], [b"a", ("double", b"1.5")]]
    assert c.call("ZRANGEBYSCORE", "z", 2, "inf") == [b"b", b"c"]
    assert c.call("ZUNION", 1, "z", "WITHSCORES")[0] == [b"d", ("double", b"0.10000000000000001")]
    assert c.call("ZRANDMEMBER", "z", -1, "WITHSCORES")[0][1][0] == "double"
    # ZPOPMIN without COUNT: flat; with COUNT: nested.
    assert c.call("ZPOPMIN", "z") == [b"d", ("double", b"0.10000000000000001")]
    assert c.call("ZPOPMIN", "z", 1) == [[b"a", ("double", b"1.5")]]
    assert c.call("ZPOPMIN", "missing") == []
    assert c.call("ZMPOP", 1, "z", "MAX") == [b"z", [[b"c", ("double", b"inf")]]]
    assert c.call("ZMPOP", 1, "missing", "MAX") == "NULL"
    assert c.call("BZPOPMIN", "z", 0) == [b"z", b"b", ("double", b"2")]
    assert c.call("ZSCAN", "missing", 0) == [b"0", []]
    c.call("ZADD", "z", 2.5, "x")
    assert c.call("ZSCAN", "z", 0) == [b"0", [b"x", b"2.5"]]  # ZSCAN scores are strings


# ------------------------------------------------------------------ ZRANDMEMBER


def test_zrandmember(r):
    x(r, "SET", "s", "x")
    members = {b"m%d" % i: float(i) for i in range(10)}
    x(r, "ZADD", "z", *[a for m, s in members.items() for a in (s, m)])
    assert x(r, "ZRANDMEMBER", "z") in members
    assert x(r, "ZRANDMEMBER", "missing") is None
    assert x(r, "ZRANDMEMBER", "missing", 5) == []
    assert x(r, "ZRANDMEMBER", "z", 0) == []
    picked = x(r, "ZRANDMEMBER", "z", 5)
    assert len(picked) == 5 == len(set(picked)) and set(picked) <= set(members)
    pairs = x(r, "ZRANDMEMBER", "z", 4, "WITHSCORES")
    assert len(pairs) == 8
    for m, s in zip(pairs[0::2], pairs[1::2]):
        assert float(s) == members[m]
    many = x(r, "ZRANDMEMBER", "z", -50)
    assert len(many) == 50 and set(many) <= set(members)
    assert len(set(many)) > 1
    # At least the whole set: all of it, highest first (as Redis 7.0 answers).
    assert x(r, "ZRANDMEMBER", "z", 10) == [b"m%d" % i for i in range(9, -1, -1)]
    assert x(r, "ZRANDMEMBER", "z", 99, "WITHSCORES")[:4] == [b"m9", b"9", b"m8", b"8"]
    assert err(r, "ZRANDMEMBER", "z", "x") == "value is not an integer or out of range"
    assert err(r, "ZRANDMEMBER", "z", 1, "SCORES") == "syntax error"
    assert err(r, "ZRANDMEMBER", "z", 1, "WITHSCORES", 1) == "syntax error"
    assert err(r, "ZRANDMEMBER", "z", -9223372036854775808) == (
        "value is out of range, value must between -9223372036854775807 and "
        "9223372036854775807")
    assert err(r, "ZRANDMEMBER", "z", 9223372036854775807, "WITHSCORES") == \
        "value is out of range"
    assert err(r, "ZRANDMEMBER", "s", 0) == WRONGTYPE


def test_zrandmember_uniform_enough_on_a_big_set(r):
    x(r, "ZADD", "z", *[a for i in range(1000) for a in (i, b"m%d" % i)])
    picks = x(r, "ZRANDMEMBER", "z", -3000)
    assert len(set(picks)) > 800  # 3000 draws over 1000 members hit ~95% of them
    uniq = x(r, "ZRANDMEMBER", "z", 900)
    assert len(set(uniq)) == 900


# ------------------------------------------------------------------ set operations


def test_zunion_zinter_zdiff(r):
    x(r, "ZADD", "z1", 1, "a", 2, "b", 3, "c")
    x(r, "ZADD", "z2", 10, "b", 20, "c", 30, "d")
    x(r, "SADD", "set", "c", "d", "e")
    assert x(r, "ZUNION", 2, "z1", "z2", "WITHSCORES") == \
        [b"a", b"1", b"b", b"12", b"c", b"23", b"d", b"30"]
    assert x(r, "ZINTER", 2, "z1", "z2", "WITHSCORES") == [b"b", b"12", b"c", b"23"]
    assert x(r, "ZDIFF", 2, "z1", "z2", "WITHSCORES") == [b"a", b"1"]
    assert x(r, "ZINTER", 2, "z1", "z2", "AGGREGATE", "MIN", "WITHSCORES") == \
        [b"b", b"2", b"c", b"3"]
    assert x(r, "ZUNION", 2, "z1", "z2", "WEIGHTS", 2, "-1", "AGGREGATE", "max",
             "WITHSCORES") == [b"d", b"-30", b"a", b"2", b"b", b"4", b"c", b"6"]
    # A plain set counts as scores of 1.
    assert x(r, "ZINTER", 2, "z2", "set", "WITHSCORES") == [b"c", b"21", b"d", b"31"]
    assert x(r, "ZUNION", 2, "set", "missing", "WITHSCORES") == \
        [b"c", b"1", b"d", b"1", b"e", b"1"]
    assert x(r, "ZDIFF", 2, "set", "z2") == [b"e"]
    assert x(r, "ZINTER", 2, "z1", "missing") == []
    assert x(r, "ZDIFF", 1, "missing") == []
    # inf + -inf would be NaN: Redis makes it 0; 0 * inf likewise.
    x(r, "ZADD", "p", "inf", "m")
    x(r, "ZADD", "n", "-inf", "m")
    assert x(r, "ZUNION", 2, "p", "n", "WITHSCORES") == [b"m", b"0"]
    assert x(r, "ZUNION", 1, "p", "WEIGHTS", 0, "WITHSCORES") == [b"m", b"0"]
    assert x(r, "ZINTER", 2, "p", "p", "AGGREGATE", "SUM", "WITHSCORES") == [b"m", b"inf"]


def test_zunionstore_family(r):
    x(r, "ZADD", "z1", 1, "a", 2, "b")
    x(r, "ZADD", "z2", 5, "b", 6, "c")
    assert x(r, "ZUNIONSTORE", "d", 2, "z1", "z2") == 3
    assert flat(r, "d") == [b"a", b"1", b"c", b"6", b"b", b"7"]
    assert x(r, "ZINTERSTORE", "d", 2, "z1", "z2", "WEIGHTS", 1, 2) == 1
    assert flat(r, "d") == [b"b", b"12"]
    assert x(r, "ZDIFFSTORE", "d", 2, "z1", "z2") == 1
    assert flat(r, "d") == [b"a", b"1"]
    # The destination may be an input.
    assert x(r, "ZUNIONSTORE", "z1", 2, "z1", "z2", "AGGREGATE", "MAX") == 3
    assert flat(r, "z1") == [b"a", b"1", b"b", b"5", b"c", b"6"]
    # An empty result deletes the destination.
    x(r, "SET", "str", "v")
    assert x(r, "ZINTERSTORE", "str", 2, "z1", "missing") == 0
    assert x(r, "EXISTS", "str") == 0


def test_set_operation_errors(r):
    x(r, "ZADD", "z", 1, "a")
    x(r, "SET", "s", "x")
    for name in ("zunionstore", "zinterstore", "zdiffstore"):
        assert err(r, name, "d", 0, "z") == \
            "at least 1 input key is needed for '%s' command" % name
        assert err(r, name, "d", -1, "z") == \
            "at least 1 input key is needed for '%s' command" % name
        assert err(r, name, "d", "x", "z") == "value is not an integer or out of range"
        assert err(r, name, "d", 2, "z") == "syntax error"
        assert err(r, name, "d", 2, "z", "s") == WRONGTYPE
        assert err(r, name, "d", 1, "z", "WITHSCORES") == "syntax error"
    for name in ("zunion", "zinter", "zdiff", "zintercard"):
        assert err(r, name, 0, "z") == "at least 1 input key is needed for '%s' command" % name
    # WRONGTYPE is found before the options are read.
    assert err(r, "ZUNION", 2, "z", "s", "WEIGHTS", "x") == WRONGTYPE
    assert err(r, "ZUNION", 1, "z", "WEIGHTS", "x") == "weight value is not a float"
    assert err(r, "ZUNION", 1, "z", "WEIGHTS", "1e400") == "weight value is not a float"
    assert err(r, "ZUNION", 2, "z", "z", "WEIGHTS", 1) == "syntax error"
    assert err(r, "ZUNION", 1, "z", "AGGREGATE", "AVG") == "syntax error"
    assert err(r, "ZUNION", 1, "z", "AGGREGATE") == "syntax error"
    assert err(r, "ZDIFF", 1, "z", "WEIGHTS", 1) == "syntax error"
    assert err(r, "ZDIFF", 1, "z", "AGGREGATE", "SUM") == "syntax error"


def test_zintercard(r):
    x(r, "ZADD", "z1", 1, "a", 2, "b", 3, "c", 4, "d")
    x(r, "ZADD", "z2", 1, "b", 1, "c", 1, "d", 1, "e")
    x(r, "SADD", "set", "c", "d")
    assert x(r, "ZINTERCARD", 2, "z1", "z2") == 3
    assert x(r, "ZINTERCARD", 3, "z1", "z2", "set") == 2
    assert x(r, "ZINTERCARD", 2, "z1", "z2", "LIMIT", 2) == 2
    assert x(r, "ZINTERCARD", 2, "z1", "z2", "LIMIT", 0) == 3
    assert x(r, "ZINTERCARD", 2, "z1", "missing") == 0
    assert err(r, "ZINTERCARD", 2, "z1", "z2", "LIMIT", -1) == "LIMIT can't be negative"
    assert err(r, "ZINTERCARD", 2, "z1", "z2", "LIMIT", "x") == "LIMIT can't be negative"
    assert err(r, "ZINTERCARD", 1, "z1", "WEIGHTS", 1) == "syntax error"
    assert err(r, "ZINTERCARD", 3, "z1", "z2") == "syntax error"


# ------------------------------------------------------------------ ZSCAN, OBJECT ENCODING


def test_zscan_small_set_whole_and_in_order(r):
    x(r, "ZADD", "z", 3, "c", 1, "a", 2, "b", "1e17", "big", "-0", "nz")
    # A listpack comes back whole whatever the cursor, scores as it stores them.
    assert x(r, "ZSCAN", "z", 0) == [b"0", [b"nz", b"0", b"a", b"1", b"b", b"2", b"c", b"3",
                                          b"big", b"100000000000000000"]]
    assert x(r, "ZSCAN", "z", 12345, "MATCH", "[ab]*") == \
        [b"0", [b"a", b"1", b"b", b"2", b"big", b"100000000000000000"]]
    assert x(r, "ZSCAN", "missing", 0) == [b"0", []]
    assert err(r, "ZSCAN", "z", "x") == "invalid cursor"
    assert err(r, "ZSCAN", "z", 0, "COUNT", 0) == "syntax error"
    assert err(r, "ZSCAN", "z", 0, "COUNT", "x") == "value is not an integer or out of range"
    assert err(r, "ZSCAN", "z", 0, "MATCH") == "syntax error"
    x(r, "SET", "s", "x")
    assert err(r, "ZSCAN", "s", 0) == WRONGTYPE


def test_zscan_big_set_full_iteration(r):
    n = 1000
    x(r, "ZADD", "z", *[a for i in range(n) for a in (i / 4, b"m%d" % i)])
    seen = {}
    cursor = b"0"
    calls = 0
    while True:
        cursor, items = x(r, "ZSCAN", "z", cursor, "COUNT", 50)
        calls += 1
        for m, s in zip(items[0::2], items[1::2]):
            seen[m] = s
        if cursor == b"0":
            break
    assert calls > 5
    assert len(seen) == n
    assert seen[b"m1"] == b"0.25" and seen[b"m999"] == b"249.75"


def test_object_encoding_listpack_and_skiplist(r):
    x(r, "ZADD", "z", *[a for i in range(128) for a in (i, b"m%d" % i)])
    assert x(r, "OBJECT", "ENCODING", "z") == b"listpack"
    x(r, "ZADD", "z", 200, "one-more")
    assert x(r, "OBJECT", "ENCODING", "z") == b"skiplist"
    # Redis never converts back, even when the set shrinks.
    x(r, "ZREMRANGEBYRANK", "z", 0, 100)
    assert x(r, "ZCARD", "z") == 28
    assert x(r, "OBJECT", "ENCODING", "z") == b"skiplist"
    # A long member converts too, and so does a limit lowered by CONFIG SET.
    x(r, "ZADD", "long", 1, "x" * 65)
    assert x(r, "OBJECT", "ENCODING", "long") == b"skiplist"
    x(r, "ZADD", "small", 1, "a", 2, "b")
    x(r, "CONFIG", "SET", "zset-max-listpack-entries", "2")
    assert x(r, "OBJECT", "ENCODING", "small") == b"listpack"
    x(r, "ZADD", "small", 3, "c")
    x(r, "ZPOPMAX", "small")
    assert x(r, "OBJECT", "ENCODING", "small") == b"skiplist"
    # Stores shrink small results back to a listpack.
    assert x(r, "ZUNIONSTORE", "u", 1, "small") == 2
    assert x(r, "OBJECT", "ENCODING", "u") == b"listpack"
    x(r, "CONFIG", "SET", "zset-max-listpack-entries", "0")
    x(r, "ZADD", "zero", 1, "a")
    assert x(r, "OBJECT", "ENCODING", "zero") == b"skiplist"


def test_skiplist_stays_after_removals_shrink_it(r):
    x(r, "ZADD", "z", *[a for i in range(200) for a in (i, b"m%d" % i)])
    # Nobody asked OBJECT ENCODING while it was big: the removal must remember.
    x(r, "ZPOPMIN", "z", 150)
    assert x(r, "OBJECT", "ENCODING", "z") == b"skiplist"
    x(r, "ZADD", "z", "-0", "neg")
    assert x(r, "ZSCORE", "z", "neg") == b"-0"


# ------------------------------------------------------------------ WATCH


def test_watch_sees_zset_writes(server):
    writer = server.client()
    watcher = server.client()
    writer.flushall()
    writer.zadd("z", {"a": 1})
    for change, expect_abort in ((lambda: writer.zadd("z", {"a": 3}), True),
                                 (lambda: writer.zadd("z", {"a": 2}), False),  # no-op
                                 (lambda: writer.zadd("z", {"b": 1}, xx=True), False),
                                 (lambda: writer.zincrby("z", 1, "a"), True),
                                 (lambda: writer.zrem("z", "nope"), False),
                                 (lambda: writer.zpopmin("z"), True),
                                 (lambda: writer.zunionstore("z", ["z", "z"]), True)):
        writer.zadd("z", {"a": 2})
        pipe = watcher.pipeline()
        pipe.watch("z")
        pipe.multi()
        pipe.zcard("z")
        change()
        if expect_abort:
            with pytest.raises(redis.exceptions.WatchError):
                pipe.execute()
        else:
            assert pipe.execute()
        pipe.reset()
    writer.close()
    watcher.close()


# ------------------------------------------------------------------ notifications, dirty, stream


def test_events_dirty_and_propagation(node):
    assert node("ZADD", "z", 1, "a", 2, "b") == 2
    assert node.take() == ([[b"ZADD", b"z", b"1", b"a", b"2", b"b"]],
                           [("z", b"zadd", b"z")], 2)
    assert node("ZADD", "z", 1, "a", 3, "b", 4, "c") == 1
    assert node.take()[1:] == ([("z", b"zadd", b"z")], 2)
    # No change: nothing propagated, no event, dirty untouched.
    for args in (("ZADD", "z", 1, "a"), ("ZADD", "z", "NX", 5, "a"), ("ZREM", "z", "q"),
                 ("ZADD", "nokey", "XX", 1, "a"), ("ZPOPMIN", "nokey"), ("ZPOPMIN", "z", 0),
                 ("ZREMRANGEBYSCORE", "z", 100, 200), ("ZMPOP", 1, "nokey", "MIN"),
                 ("ZRANGESTORE", "nokey2", "nokey", 0, -1), ("ZINCRBY", "z", 0, "a")):
        node(*args)
        assert node.take() == ([], [], 0), args
    # A double reply: RESP2's bulk text (the handler gives it as bytes there).
    assert node("ZINCRBY", "z", 2, "a") == b"3"
    assert node.take() == ([[b"ZINCRBY", b"z", b"2", b"a"]], [("z", b"zincr", b"z")], 1)
    assert node("ZREM", "z", "a", "q") == 1
    assert node.take() == ([[b"ZREM", b"z", b"a", b"q"]], [("z", b"zrem", b"z")], 1)
    assert node("ZPOPMAX", "z", 1) == [b"c", b"4"]
    assert node.take() == ([[b"ZPOPMAX", b"z", b"1"]], [("z", b"zpopmax", b"z")], 1)
    assert node("ZPOPMIN", "z", 5) == [b"b", b"3"]
    assert node.take() == ([[b"ZPOPMIN", b"z", b"5"]],
                           [("z", b"zpopmin", b"z"), ("g", b"del", b"z")], 1)
    node("ZADD", "z", 1, "a", 2, "b", 3, "c", 4, "d")
    node("ZADD", "w", 0, "a", 0, "b")
    node.take()
    for args, event in ((("ZREMRANGEBYRANK", "z", 0, 0), b"zremrangebyrank"),
                        (("ZREMRANGEBYSCORE", "z", 2, 2), b"zremrangebyscore"),
                        (("ZREMRANGEBYLEX", "w", "[a", "[a"), b"zremrangebylex")):
        assert node(*args) == 1
        stream, events, dirty = node.take()
        assert stream == [[a if isinstance(a, bytes) else str(a).encode() for a in args]]
        assert events == [("z", event, args[1].encode())] and dirty == 1
    # Stores: one event on the destination; an empty result deletes it.
    for name, event in (("ZUNIONSTORE", b"zunionstore"), ("ZINTERSTORE", b"zinterstore"),
                        ("ZDIFFSTORE", b"zdiffstore")):
        assert node(name, "dst", 1, "z") == 2
        assert node.take() == ([[name.encode(), b"dst", b"1", b"z"]],
                               [("z", event, b"dst")], 1)
    assert node("ZRANGESTORE", "dst", "z", 0, 0) == 1
    assert node.take() == ([[b"ZRANGESTORE", b"dst", b"z", b"0", b"0"]],
                           [("z", b"zrangestore", b"dst")], 1)
    assert node("ZINTERSTORE", "dst", 2, "z", "nokey") == 0
    assert node.take() == ([[b"ZINTERSTORE", b"dst", b"2", b"z", b"nokey"]],
                           [("g", b"del", b"dst")], 1)


def test_pops_propagate_deterministic_forms(node):
    node("ZADD", "z", 1, "a", 2, "b", 3, "c", 4, "d")
    node.take()
    # ZMPOP goes out as ZPOPMIN/ZPOPMAX key count.
    assert node("ZMPOP", 2, "nokey", "z", "MAX", "COUNT", 2) == [b"z", [[b"d", 4.0],
                                                                      [b"c", 3.0]]]
    assert node.take()[0] == [[b"ZPOPMAX", b"z", b"2"]]
    # A blocking pop served at once goes out as its plain form.
    assert node("BZPOPMIN", "nokey", "z", 0) == [b"z", b"a", 1.0]
    assert node.take()[0] == [[b"ZPOPMIN", b"z"]]
    assert node("BZMPOP", 0, 1, "z", "MIN", "COUNT", 5) == [b"z", [[b"b", 2.0]]]
    stream, events, dirty = node.take()
    assert stream == [[b"ZPOPMIN", b"z", b"5"]] and dirty == 1
    assert events == [("z", b"zpopmin", b"z"), ("g", b"del", b"z")]


def test_zadd_signals_ready_keys(node):
    ks = node.server.keyspace
    ks[0].blocked[b"z"] = ["a blocked client"]
    ks[0].blocked[b"dst"] = ["a blocked client"]
    for args in (("ZADD", "z", 1, "a"), ("ZINCRBY", "z", 1, "b"),
                 ("ZUNIONSTORE", "dst", 1, "z"), ("ZRANGESTORE", "dst", "z", 0, -1)):
        ks.ready_keys.clear()
        argv = [str(a).encode() for a in args]
        node.server.table.commands[argv[0].lower()].handler(node.client, argv)
        assert ks.ready_keys, args


# ------------------------------------------------------------------ blocking


@pytest.fixture
def rp(parsing_client):
    """A parsing redis-py client for the blocking tests."""
    return parsing_client


def test_bzpopmin_immediate_and_types(rp, conns):
    c = conns()
    rp.zadd("z", {"a": 1, "b": 2})
    rp.set("s", "x")
    assert c.call("BZPOPMIN", "missing", "z", 0) == [b"z", b"a", b"1"]
    assert c.call("BZPOPMAX", "z", 0) == [b"z", b"b", b"2"]
    assert rp.exists("z") == 0
    assert str(c.call("BZPOPMIN", "s", 0)) == WRONGTYPE
    assert str(c.call("BZPOPMIN", "z", -1)) == "ERR timeout is negative"
    assert str(c.call("BZPOPMIN", "z", "x")) == "ERR timeout is not a float or out of range"
    assert c.call("BZPOPMIN", "z", "0.05") == "NULL-ARRAY"
    assert c.call("BZMPOP", "0.05", 1, "z", "MIN") == "NULL-ARRAY"
    assert str(c.call("BZMPOP", 0, 0, "z", "MIN")) == "ERR numkeys should be greater than 0"
    assert str(c.call("BZMPOP", "x", 1, "z", "MIN", "COUNT", 0)) == \
        "ERR count should be greater than 0"


def test_bzpopmin_waits_and_is_woken_by_zadd(rp, conns):
    c = conns()
    start = time.time()
    c.send("BZPOPMIN", "k1", "k2", 5)
    wait_blocked(rp, 1)
    assert not c.pending()
    rp.zadd("k2", {"m": 3, "n": 4})
    assert c.read() == [b"k2", b"m", b"3"]
    assert time.time() - start < 4
    assert rp.zrange("k2", 0, -1) == [b"n"]


def test_blocked_clients_are_served_first_come_first_served(rp, conns):
    waiters = [conns() for _ in range(3)]
    for i, w in enumerate(waiters):
        w.send("BZPOPMIN", "q", 0)
        wait_blocked(rp, i + 1)
    rp.zadd("q", {"a": 1, "b": 2})
    assert waiters[0].read() == [b"q", b"a", b"1"]
    assert waiters[1].read() == [b"q", b"b", b"2"]
    assert not waiters[2].pending()
    assert rp.exists("q") == 0
    rp.zadd("q", {"c": 3})
    assert waiters[2].read() == [b"q", b"c", b"3"]


def test_bzmpop_and_bzpopmax_served_with_counts(rp, conns):
    a, b = conns(), conns()
    a.send("BZMPOP", 0, 2, "x", "y", "MAX", "COUNT", 2)
    wait_blocked(rp, 1)
    b.send("BZPOPMAX", "y", 0)
    wait_blocked(rp, 2)
    rp.zadd("y", {"a": 1, "b": 2, "c": 3})
    assert a.read() == [b"y", [[b"c", b"3"], [b"b", b"2"]]]
    assert b.read() == [b"y", b"a", b"1"]


def test_block_timeout(rp, conns):
    c = conns()
    start = time.time()
    assert c.call("BZPOPMIN", "never", "0.2") == "NULL-ARRAY"
    elapsed = time.time() - start
    assert 0.15 < elapsed < 3
    assert rp.info("clients")["blocked_clients"] == 0


def test_inside_multi_a_blocking_pop_times_out_at_once(rp, conns):
    c = conns()
    assert c.call("MULTI") == "OK"
    assert c.call("BZPOPMIN", "empty", 0) == "QUEUED"
    assert c.call("BZMPOP", 0, 1, "empty", "MIN") == "QUEUED"
    assert c.call("ZADD", "full", 1, "a") == "QUEUED"
    assert c.call("BZPOPMAX", "full", 0) == "QUEUED"
    assert c.call("EXEC") == ["NULL-ARRAY", "NULL-ARRAY", 1, [b"full", b"a", b"1"]]


def test_multi_exec_zadd_wakes_blocked_client_after_exec(rp, conns):
    waiter, tx = conns(), conns()
    waiter.send("BZPOPMIN", "k", 0)
    wait_blocked(rp, 1)
    tx.call("MULTI")
    tx.call("ZADD", "k", 1, "a")
    tx.call("ZADD", "k", 2, "b")
    tx.call("ZREM", "k", "a")
    assert tx.call("EXEC") == [1, 1, 1]
    # Served once the whole transaction ran: it sees only b.
    assert waiter.read() == [b"k", b"b", b"2"]


def test_waiter_ignores_other_types_and_keeps_waiting(rp, conns):
    c = conns()
    c.send("BZPOPMIN", "k", 0)
    wait_blocked(rp, 1)
    rp.lpush("k", "x")  # a list under the key: not for a zset pop
    assert not c.pending()
    rp.delete("k")
    rp.zadd("k", {"z": 1})
    assert c.read() == [b"k", b"z", b"1"]


def test_disconnected_waiter_is_forgotten(rp, conns):
    gone, stays = conns(), conns()
    gone.send("BZPOPMIN", "k", 0)
    wait_blocked(rp, 1)
    stays.send("BZPOPMIN", "k", 0)
    wait_blocked(rp, 2)
    gone.close()
    deadline = time.time() + 5
    while rp.info("clients")["blocked_clients"] != 1:
        assert time.time() < deadline
        time.sleep(0.01)
    rp.zadd("k", {"m": 1})
    assert stays.read() == [b"k", b"m", b"1"]
    assert rp.exists("k") == 0


def test_commands_pipelined_behind_a_blocked_pop_wait_their_turn(rp, conns):
    c = conns()
    c.send("BZPOPMIN", "k", 0)
    c.send("ZCARD", "k")
    wait_blocked(rp, 1)
    rp.zadd("k", {"a": 1, "b": 2})
    assert c.read() == [b"k", b"a", b"1"]
    assert c.read() == 1


def test_served_pops_reach_a_real_redis_replica(server, rp, conns, make_redis):
    replica, rr = redis_replica_of(make_redis, server)
    monitor = Conn(replica.port)
    assert monitor.call("MONITOR") == "OK"
    waiters = [conns() for _ in range(3)]
    for i, cmd in enumerate((["BZPOPMIN", "q", 0], ["BZPOPMAX", "q", 0],
                             ["BZMPOP", 0, 1, "q", "MIN", "COUNT", 2])):
        waiters[i].send(*cmd)
        wait_blocked(rp, i + 1)
    rp.zadd("q", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    assert [w.read() for w in waiters] == [[b"q", b"a", b"1"], [b"q", b"e", b"5"],
                                           [b"q", [[b"b", b"2"], [b"c", b"3"]]]]
    wait_replicated(rp, rr)
    assert rr.zrange("q", 0, -1, withscores=True) == [(b"d", 4.0)]
    seen = b""
    while b"sync-marker" not in seen:
        monitor.sock.settimeout(5)
        seen += monitor.sock.recv(65536)
    assert b'"ZPOPMIN" "q"' in seen and b'"ZPOPMAX" "q"' in seen
    assert b'"ZPOPMIN" "q" "2"' in seen
    assert b"BZ" not in seen.upper()
    monitor.close()
    rr.close()


# ------------------------------------------------------------------ a million members


def test_a_million_members(server):
    """1M members added in pipelined ZADD batches (random order), then
    range and rank queries on the big set; all within seconds."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    n, batch = 1_000_000, 10_000
    order = list(range(n))
    random.Random(7).shuffle(order)

    def command(*args) -> bytes:
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    start = time.time()
    replies_due = 0
    for lo in range(0, n, batch):
        args = [b"ZADD", b"big"]
        for i in order[lo:lo + batch]:
            args += [b"%d" % i, b"member:%d" % i]
        sock.sendall(command(*args))
        replies_due += 1
    got = b""
    while got.count(b"\r\n") < replies_due:
        got += sock.recv(65536)
    assert got == b":%d\r\n" % batch * replies_due
    added = time.time() - start
    sock.close()

    r = server.client()
    try:
        t = time.time()
        assert r.zcard("big") == n
        assert r.zrangebyscore("big", 1000, 1004) == [b"member:%d" % i for i in range(1000, 1005)]
        assert r.zrangebyscore("big", "(999997", "+inf", withscores=True) == [
            (b"member:999998", 999998.0), (b"member:999999", 999999.0)]
        assert len(r.zrangebyscore("big", 0, 99999)) == 100000
        assert r.zrevrangebyscore("big", "+inf", "-inf", start=10, num=2) == [
            b"member:999989", b"member:999988"]
        for i in (0, 1, 123456, 999999):
            assert r.zrank("big", "member:%d" % i) == i
            assert r.zrevrank("big", "member:%d" % i) == n - 1 - i
        assert r.zcount("big", "(10", 20) == 10
        assert r.zrange("big", 500000, 500001) == [b"member:500000", b"member:500001"]
        queried = time.time() - t
        assert r.zrem("big", "member:5") == 1 and r.zrank("big", "member:6") == 5
    finally:
        r.flushall()
        r.close()
    print("1M ZADD: %.1fs, queries: %.2fs" % (added, queried))
    assert added < 60 and queried < 5
