"""Differential test of keyspace notifications: a real redis-server and hakv
get the same command streams with notify-keyspace-events set, each with a
subscriber on psubscribe '__key*__:*'; the messages must be the same, in the
same order.

Each stream is a family of commands (strings, keys, lists, ...) run on an
emptied database; a PUBLISH on a marker channel ends it, so the subscriber
knows when it has everything.
"""

from __future__ import annotations

import time

import pytest
import redis

from procs import hakv_server, redis_server

pytestmark = pytest.mark.interop

MARKER = b"__marker__"

STREAMS = {
    "strings": [
        ("SET", "s", "v"), ("SET", "s", "v2"), ("SETNX", "s", "x"), ("SETNX", "s2", "x"),
        ("SET", "s", "v3", "EX", "100"), ("SET", "s", "v4", "KEEPTTL"), ("SETEX", "s3", "10", "v"),
        ("PSETEX", "s4", "10000", "v"), ("MSET", "m1", "a", "m2", "b"), ("MSETNX", "m3", "c"),
        ("APPEND", "s", "tail"), ("APPEND", "new", "x"), ("INCR", "n"), ("INCRBY", "n", "5"),
        ("DECR", "n"), ("DECRBY", "n", "2"), ("INCRBYFLOAT", "f", "1.5"),
        ("SETRANGE", "s", "2", "zz"), ("SETRANGE", "r", "3", "x"), ("GETSET", "s", "gs"),
        ("GETDEL", "s"), ("GETEX", "s2", "EX", "100"), ("GETEX", "s2", "PERSIST"),
        ("SETBIT", "b", "7", "1"), ("BITOP", "OR", "bo", "b", "b"),
        ("BITFIELD", "bf", "SET", "u8", "0", "200"), ("GET", "missing"),
    ],
    "keys": [
        ("SET", "k", "v"), ("EXPIRE", "k", "100"), ("PEXPIRE", "k", "100000"),
        ("EXPIREAT", "k", "99999999999"), ("PERSIST", "k"), ("TTL", "k"),
        ("RENAME", "k", "k2"), ("SET", "k3", "x"), ("RENAME", "k2", "k3"),
        ("RENAMENX", "k3", "k4"), ("COPY", "k4", "k5"), ("COPY", "k4", "k5", "REPLACE"),
        ("MOVE", "k5", "1"), ("DEL", "k4", "nokey"), ("SET", "u", "1"), ("UNLINK", "u"),
        ("SET", "e", "1"), ("EXPIRE", "e", "-1"), ("SET", "t", "1"), ("TOUCH", "t"),
        ("EXISTS", "nokey"), ("TYPE", "nokey"), ("SET", "p", "1"), ("PEXPIREAT", "p", "1"),
        ("EXPIRE", "nokey", "10"), ("SET", "dmp", "x"), ("OBJECT", "ENCODING", "dmp"), ("SWAPDB", "0", "1"),
        ("SWAPDB", "0", "1"), ("SET", "fl", "1"), ("FLUSHDB",), ("SET", "last", "1"),
    ],
    # Last in any combined stream: the active expiry removes these at its own pace.
    "expiry": [("SET", "x", "1", "PX", "1"), ("SET", "y", "1"), ("PEXPIRE", "y", "20")],
    "lists": [
        ("LPUSH", "l", "a", "b"), ("RPUSH", "l", "c"), ("LPUSHX", "l", "z"), ("RPUSHX", "nol", "z"),
        ("LINSERT", "l", "BEFORE", "a", "ins"), ("LSET", "l", "0", "set"), ("LPOP", "l"),
        ("RPOP", "l"), ("LREM", "l", "0", "ins"), ("LTRIM", "l", "0", "0"),
        ("RPUSH", "l2", "x", "y"), ("LMOVE", "l2", "l3", "LEFT", "RIGHT"),
        ("RPOPLPUSH", "l2", "l3"), ("LPOP", "l3", "5"), ("RPUSH", "l4", "1", "2"),
        ("LMPOP", "1", "l4", "LEFT", "COUNT", "2"), ("BLPOP", "nol", "0.01"),
        ("RPUSH", "l5", "q"), ("BRPOP", "l5", "1"), ("LRANGE", "nol", "0", "-1"),
        ("RPUSH", "l6", "a", "b"), ("BLMOVE", "l6", "l7", "RIGHT", "LEFT", "1"),
        ("BLMPOP", "1", "1", "l6", "RIGHT"), ("LREM", "l7", "0", "zz"), ("LTRIM", "l7", "5", "9"),
        ("LINSERT", "l7", "AFTER", "nopivot", "x"), ("LPOS", "l7", "a"),
    ],
    "hashes": [
        ("HSET", "h", "f", "v", "g", "w"), ("HSETNX", "h", "f", "x"), ("HSETNX", "h", "n", "x"),
        ("HMSET", "h", "a", "1"), ("HINCRBY", "h", "a", "2"), ("HINCRBYFLOAT", "h", "a", "0.5"),
        ("HDEL", "h", "f", "nofield"), ("HDEL", "h", "g", "n", "a"), ("HGET", "noh", "f"),
        ("HSET", "h2", "f", "1"), ("HINCRBYFLOAT", "h2", "f", "1"), ("HSETNX", "h3", "a", "1"),
        ("HGETALL", "noh"), ("HDEL", "noh", "f"),
    ],
    "sets": [
        ("SADD", "s", "a", "b", "c"), ("SADD", "s", "a"), ("SREM", "s", "a", "zz"),
        ("SMOVE", "s", "s2", "b"), ("SPOP", "s"), ("SADD", "s3", "x", "y"),
        ("SINTERSTORE", "d", "s2", "s3"), ("SUNIONSTORE", "d", "s2", "s3"),
        ("SDIFFSTORE", "d2", "s3", "s2"), ("SINTERSTORE", "d", "nos", "s3"), ("SPOP", "s3", "5"),
        ("SADD", "s4", "1", "2"), ("SREM", "s4", "1", "2"), ("SMOVE", "nos", "s5", "x"),
        ("SADD", "s6", "1"), ("SMOVE", "s6", "s6", "1"), ("SRANDMEMBER", "s6"),
    ],
    "zsets": [
        ("ZADD", "z", "1", "a", "2", "b", "3", "c"), ("ZADD", "z", "1", "a"),
        ("ZINCRBY", "z", "5", "a"), ("ZREM", "z", "b", "nomember"), ("ZPOPMIN", "z"),
        ("ZPOPMAX", "z", "5"), ("ZADD", "z2", "1", "x", "2", "y"),
        ("ZUNIONSTORE", "zd", "1", "z2"), ("ZINTERSTORE", "zd", "2", "z2", "noz"),
        ("ZADD", "z3", "1", "p", "2", "q", "3", "r"), ("ZREMRANGEBYSCORE", "z3", "1", "1"),
        ("ZREMRANGEBYRANK", "z3", "0", "0"), ("ZREMRANGEBYLEX", "z3", "-", "+"),
        ("ZADD", "z4", "1", "m"), ("ZRANGESTORE", "zd2", "z4", "0", "-1"),
        ("BZPOPMIN", "z4", "1"), ("ZADD", "z5", "INCR", "2", "m"),
        ("ZADD", "z5", "GT", "1", "m"), ("ZADD", "z5", "XX", "1", "nosuch"),
        ("ZADD", "z6", "1", "a", "2", "b"), ("ZDIFFSTORE", "zd3", "2", "z6", "z5"),
        ("ZMPOP", "1", "z6", "MIN", "COUNT", "5"), ("ZINTERSTORE", "zd4", "1", "noz"),
        ("ZREMRANGEBYSCORE", "noz", "0", "1"), ("ZINCRBY", "z7", "1", "q"),
    ],
    "scripts": [
        ("EVAL", "redis.call('set', KEYS[1], 'v') redis.call('lpush', KEYS[2], 'x') "
                 "redis.call('del', KEYS[1]) return 1", "2", "sk", "sl"),
        ("EVAL", "return redis.call('get', 'nokey')", "0"),
        ("MULTI",), ("SET", "mk", "1"), ("INCR", "mk"), ("EXEC",),
    ],
}


def _comparable(messages: list) -> tuple:
    """The messages in order, except active-expiry ones: several keys due in
    the same cycle expire in an order Redis leaves to chance (it samples)."""
    expired = [m for m in messages if m[0].endswith(b":expired") or m[1] == b"expired"]
    others = [m for m in messages if m not in expired]
    return others, sorted(expired)


def _run_stream(port: int, commands: list, flags: str) -> list:
    client = redis.Redis(port=port)
    client.flushall()
    client.config_set("notify-keyspace-events", flags)
    sub = client.pubsub()
    sub.psubscribe("__key*__:*")
    sub.subscribe(MARKER)
    for _ in range(2):
        sub.get_message(timeout=5)  # the subscribe confirmations
    pipe_free = redis.Redis(port=port)
    for cmd in commands:
        try:
            pipe_free.execute_command(*cmd)
        except redis.ResponseError:
            pass
    time.sleep(0.3)  # active expiry of the "expiry" keys (both servers run it at 10 Hz)
    pipe_free.publish(MARKER, b"end")
    messages = []
    deadline = time.time() + 10
    while time.time() < deadline:
        msg = sub.get_message(timeout=1)
        if msg is None:
            continue
        if msg["channel"] == MARKER:
            break
        messages.append((msg["channel"], msg["data"]))
    sub.close()
    pipe_free.close()
    client.close()
    return messages


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    base = tmp_path_factory.mktemp("notify")
    real = redis_server(str(base / "redis")).start()
    ours = hakv_server(str(base / "hakv")).start()
    yield real, ours
    ours.stop()
    real.stop()


@pytest.mark.parametrize("family", sorted(STREAMS))
def test_same_notifications(servers, family):
    real, ours = servers
    expected = _run_stream(real.port, STREAMS[family], "KEA")
    got = _run_stream(ours.port, STREAMS[family], "KEA")
    assert expected, "the oracle sent no notifications: the stream is broken"
    assert _comparable(got) == _comparable(expected)


@pytest.mark.parametrize("flags", ["KEAnm", "Kg", "E$", "Elx", "KA", "gE", "Km"])
def test_same_notifications_per_class(servers, flags):
    real, ours = servers
    commands = STREAMS["strings"] + STREAMS["keys"] + STREAMS["lists"] + STREAMS["expiry"]
    expected = _run_stream(real.port, commands, flags)
    got = _run_stream(ours.port, commands, flags)
    assert _comparable(got) == _comparable(expected)


def test_config_get_canonical_form(servers):
    real, ours = servers
    for flags in ("KEA", "AKE", "Kg$lshzxetd", "KEAnm", "Elx", "", "nmK"):
        answers = []
        for proc in (real, ours):
            c = redis.Redis(port=proc.port)
            c.config_set("notify-keyspace-events", flags)
            answers.append(c.config_get("notify-keyspace-events"))
            c.close()
        assert answers[0] == answers[1], flags


def test_resp3_push_form(servers):
    real, ours = servers
    seen = []
    for proc in (real, ours):
        c = redis.Redis(port=proc.port, protocol=3)
        c.config_set("notify-keyspace-events", "KEA")
        sub = c.pubsub()
        sub.subscribe("__keyevent@0__:set")
        assert sub.get_message(timeout=5)["type"] == "subscribe"
        redis.Redis(port=proc.port).set("k", "v")
        msg = sub.get_message(timeout=5)
        seen.append((msg["type"], msg["channel"], msg["data"]))
        sub.close()
        c.close()
    assert seen[0] == seen[1] == ("message", b"__keyevent@0__:set", b"k")
