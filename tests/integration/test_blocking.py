"""Blocking list pops on a running hakv-server, with several clients:
timeouts (0 = forever, fractional, errors), FIFO service per key, wake-ups
by pushes from plain commands, MULTI/EXEC and scripts, clients closing while
blocked, CLIENT UNBLOCK, the immediate answer inside MULTI, commands
pipelined behind a blocked one, and the propagation of served pops (a real
Redis replica of hakv ends up with the same data)."""

from __future__ import annotations

import time

import pytest
import redis

from types_support import (conns, parsing_client, r, redis_replica_of,  # noqa: F401 (fixtures)
                           server, wait_blocked, wait_replicated)


def test_timeouts(r, conns):
    c = conns()
    start = time.perf_counter()
    assert c.call("BLPOP", "k", "0.2") == "NULL-ARRAY"
    assert 0.18 < time.perf_counter() - start < 2
    start = time.perf_counter()
    for cmd in (["BRPOP", "k", "0.05"], ["BLMOVE", "k", "d", "LEFT", "RIGHT", "0.05"],
                ["BRPOPLPUSH", "k", "d", "0.05"], ["BLMPOP", "0.05", "1", "k", "LEFT"]):
        # Every list blocking command times out with a null array, as Redis.
        assert c.call(*cmd) == "NULL-ARRAY", cmd
    assert time.perf_counter() - start < 2
    # A tiny positive timeout is rounded up to 1 ms, not "forever".
    assert c.call("BLPOP", "k", "0.0001") == "NULL-ARRAY"
    assert c.call("BLPOP", "k", "1e-400") == "NULL-ARRAY"
    # 0 is forever.
    c.send("BLPOP", "k", "0")
    assert not c.pending(0.5)
    r.rpush("k", "v")
    assert c.read() == [b"k", b"v"]


def test_timeout_errors(r):
    for bad, message in (("x", "timeout is not a float or out of range"),
                         ("nan", "timeout is not a float or out of range"),
                         (" 1", "timeout is not a float or out of range"),
                         ("-1", "timeout is negative"), ("-0.5", "timeout is negative"),
                         ("inf", "timeout is negative"), ("1e17", "timeout is negative")):
        for cmd in (["BLPOP", "k", bad], ["BRPOP", "k", bad], ["BRPOPLPUSH", "k", "d", bad],
                    ["BLMOVE", "k", "d", "LEFT", "LEFT", bad],
                    ["BLMPOP", bad, "1", "k", "LEFT"]):
            with pytest.raises(redis.ResponseError) as info:
                r.execute_command(*cmd)
            assert str(info.value) == message, (cmd, bad)
    # BLMPOP checks its other arguments first, as Redis.
    with pytest.raises(redis.ResponseError, match="count should be greater than 0"):
        r.execute_command("BLMPOP", "x", "1", "k", "LEFT", "COUNT", "0")


def test_immediate_when_data_is_there(r, conns):
    c = conns()
    r.rpush("b", "1", "2")
    assert c.call("BLPOP", "a", "b", "0") == [b"b", b"1"]
    assert c.call("BRPOP", "a", "b", "0") == [b"b", b"2"]
    assert not r.exists("b")
    r.rpush("b", "x", "y", "z")
    assert c.call("BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "2") == [b"b", [b"z", b"y"]]
    assert c.call("BLMOVE", "b", "d", "LEFT", "LEFT", "0") == b"x"
    assert r.lrange("d", 0, -1) == [b"x"]


def test_fifo_per_key(r, conns):
    clients = [conns() for _ in range(4)]
    for i, c in enumerate(clients):
        c.send("BLPOP", "q", "0")
        wait_blocked(r, i + 1)
    r.rpush("q", "a", "b", "c")
    assert [clients[i].read() for i in range(3)] == [[b"q", b"a"], [b"q", b"b"], [b"q", b"c"]]
    assert not clients[3].pending(0.2)
    assert not r.exists("q")
    r.lpush("q", "d")
    assert clients[3].read() == [b"q", b"d"]
    wait_blocked(r, 0)


def test_several_keys_and_databases(r, conns, server):
    a, b = conns(), conns()
    a.send("BLPOP", "k1", "k2", "0")
    b.call("SELECT", "1")
    b.send("BLPOP", "k2", "0")
    wait_blocked(r, 2)
    r.rpush("k2", "db0")
    assert a.read() == [b"k2", b"db0"]
    assert not b.pending(0.2)
    other = server.client(db=1)
    other.rpush("k2", "db1")
    other.close()
    assert b.read() == [b"k2", b"db1"]


def test_wakeup_by_multi_exec(r, conns, server):
    c = conns()
    c.send("BLPOP", "q", "0")
    wait_blocked(r, 1)
    pipe = r.pipeline(transaction=True)
    pipe.lpush("q", "first")
    pipe.lpush("q", "second")
    pipe.execute()
    # Served after EXEC, from the list as the whole transaction left it.
    assert c.read() == [b"q", b"second"]
    assert r.lrange("q", 0, -1) == [b"first"]
    # A push consumed inside the same transaction wakes nobody.
    r.delete("q")
    c.send("BLPOP", "q", "0")
    wait_blocked(r, 1)
    pipe = r.pipeline(transaction=True)
    pipe.rpush("q", "x")
    pipe.lpop("q")
    pipe.execute()
    assert not c.pending(0.3)
    r.rpush("q", "y")
    assert c.read() == [b"q", b"y"]


def test_wakeup_by_script(r, conns):
    c = conns()
    if not isinstance(c.call("COMMAND", "INFO", "eval")[0], list):
        pytest.skip("EVAL is not implemented in this build")
    c.send("BRPOP", "q", "0")
    wait_blocked(r, 1)
    r.eval("redis.call('rpush', KEYS[1], 'a'); redis.call('rpush', KEYS[1], 'b')", 1, "q")
    assert c.read() == [b"q", b"b"]
    assert r.lrange("q", 0, -1) == [b"a"]


def test_client_closing_while_blocked(r, conns):
    c = conns()
    c.send("BLPOP", "q", "0")
    wait_blocked(r, 1)
    c.close()
    wait_blocked(r, 0)
    r.rpush("q", "kept")
    assert r.lrange("q", 0, -1) == [b"kept"]
    # A second waiter behind a vanished one is still served.
    a, b = conns(), conns()
    r.delete("q")
    a.send("BLPOP", "q", "0")
    wait_blocked(r, 1)
    b.send("BLPOP", "q", "0")
    wait_blocked(r, 2)
    a.close()
    wait_blocked(r, 1)
    r.rpush("q", "v")
    assert b.read() == [b"q", b"v"]


def test_client_unblock(r, conns):
    c = conns()
    c.send("BLPOP", "q", "0")
    wait_blocked(r, 1)
    assert r.client_unblock(c.id) == 1
    assert c.read() == "NULL-ARRAY"
    c.send("BLMOVE", "q", "d", "LEFT", "LEFT", "0")
    wait_blocked(r, 1)
    assert r.client_unblock(c.id, error=True) == 1
    err = c.read()
    assert isinstance(err, RuntimeError)
    assert str(err) == "UNBLOCKED client unblocked via CLIENT UNBLOCK"
    assert r.client_unblock(c.id) == 0  # not blocked any more
    # The unblocked client works normally afterwards.
    assert c.call("PING") == "PONG"
    r.rpush("q", "v")
    assert r.lrange("q", 0, -1) == [b"v"]


def test_inside_multi_answers_at_once(r, conns):
    c = conns()
    assert c.call("MULTI") == "OK"
    for cmd in (["BLPOP", "q", "0"], ["BRPOP", "q", "0"], ["BLMOVE", "q", "d", "LEFT", "LEFT", "0"],
                ["BRPOPLPUSH", "q", "d", "0"], ["BLMPOP", "0", "1", "q", "LEFT"]):
        assert c.call(*cmd) == "QUEUED"
    start = time.perf_counter()
    # BLMOVE / BRPOPLPUSH answer a null bulk there, the others a null array.
    assert c.call("EXEC") == ["NULL-ARRAY", "NULL-ARRAY", "NULL", "NULL", "NULL-ARRAY"]
    assert time.perf_counter() - start < 1
    r.rpush("q", "a", "b")
    c.call("MULTI")
    c.call("BLPOP", "q", "0")
    c.call("BLMOVE", "q", "d", "RIGHT", "LEFT", "0")
    assert c.call("EXEC") == [[b"q", b"a"], b"b"]


def test_pipelined_commands_wait_behind_a_blocked_one(r, conns):
    c = conns()
    c.send("BLPOP", "q", "0")
    c.send("SET", "after", "1")
    c.send("GET", "after")
    wait_blocked(r, 1)
    assert r.get("after") is None
    r.rpush("q", "v")
    assert c.read() == [b"q", b"v"]
    assert c.read() == "OK"
    assert c.read() == b"1"


def test_blmove_and_blmpop_when_served(r, conns):
    mover, popper, rotator = conns(), conns(), conns()
    mover.send("BLMOVE", "src", "dst", "RIGHT", "LEFT", "0")
    wait_blocked(r, 1)
    popper.send("BLMPOP", "0", "2", "nothing", "src", "LEFT", "COUNT", "2")
    wait_blocked(r, 2)
    r.rpush("src", "a", "b", "c", "d")
    assert mover.read() == b"d"
    assert popper.read() == [b"src", [b"a", b"b"]]
    assert r.lrange("src", 0, -1) == [b"c"] and r.lrange("dst", 0, -1) == [b"d"]
    # A BLMOVE into a key a BLPOP waits on wakes that one too.
    r.delete("src", "dst")
    waiter = conns()
    waiter.send("BLPOP", "dst", "0")
    wait_blocked(r, 1)
    rotator.send("BRPOPLPUSH", "src", "dst", "0")
    wait_blocked(r, 2)
    r.rpush("src", "x")
    assert rotator.read() == b"x"
    assert waiter.read() == [b"dst", b"x"]
    assert not r.exists("src") and not r.exists("dst")


def test_blmove_target_of_the_wrong_type(r, conns):
    c = conns()
    c.send("BLMOVE", "src", "dst", "LEFT", "LEFT", "0")
    wait_blocked(r, 1)
    r.set("dst", "a string")
    r.rpush("src", "v")
    err = c.read()
    assert isinstance(err, RuntimeError) and str(err).startswith("WRONGTYPE")
    assert r.lrange("src", 0, -1) == [b"v"]


def test_key_of_another_type_meanwhile(r, conns):
    c = conns()
    c.send("BLPOP", "q", "0")
    wait_blocked(r, 1)
    r.sadd("q", "member")  # not a list: the waiter keeps waiting
    assert not c.pending(0.2)
    r.delete("q")
    r.rpush("q", "v")
    assert c.read() == [b"q", b"v"]


def test_waiters_of_another_type_do_not_stall_the_queue(r, conns):
    """A BLPOP queued first on a key that becomes a sorted set must not keep
    the BZPOPMIN behind it from being served."""
    lister, zsetter = conns(), conns()
    if not isinstance(lister.call("COMMAND", "INFO", "bzpopmin")[0], list):
        pytest.skip("BZPOPMIN is not implemented in this build")
    lister.send("BLPOP", "k", "0")
    wait_blocked(r, 1)
    zsetter.send("BZPOPMIN", "k", "0")
    wait_blocked(r, 2)
    r.zadd("k", {"m": 1})
    assert zsetter.read() == [b"k", b"m", b"1"]
    assert not lister.pending(0.2)
    r.rpush("k", "v")
    assert lister.read() == [b"k", b"v"]


def test_served_pops_are_propagated_deterministically(server, make_redis, r, conns):
    """A real Redis replica of hakv applies the served pops (sent as LPOP,
    RPOP, LMOVE) and ends with exactly hakv's lists."""
    _, rr = redis_replica_of(make_redis, server)
    waiters = [conns() for _ in range(4)]
    for i, cmd in enumerate((["BLPOP", "q", "0"], ["BRPOP", "q", "0"],
                             ["BLMOVE", "q", "moved", "LEFT", "RIGHT", "0"],
                             ["BLMPOP", "0", "1", "q", "RIGHT", "COUNT", "2"])):
        waiters[i].send(*cmd)
        wait_blocked(r, i + 1)
    r.rpush("q", *"abcdefgh")
    replies = [w.read() for w in waiters]
    assert replies == [[b"q", b"a"], [b"q", b"h"], b"b", [b"q", [b"g", b"f"]]]
    wait_replicated(r, rr)
    for key in ("q", "moved"):
        assert rr.lrange(key, 0, -1) == r.lrange(key, 0, -1)
    rr.close()
