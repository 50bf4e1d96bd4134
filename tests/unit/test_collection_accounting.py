"""Used-memory accounting of collection writes (eviction.py's before/after
with its `last` cache): a write to the collection the previous write left
takes that write's size as its `before` instead of measuring again. These
check that the kept totals still equal a walk of the keyspace whatever
happens to the cached key in between: more writes, expiry (lazy and
active), eviction, SET over it, DEL, RENAME, MULTI, FLUSHDB, SWAPDB,
blocked clients served, a change behind the hooks.

In process, as tests/unit/test_eviction_accounting.py: a node built but not
started, clients fed RESP bytes through Client.data_received."""

from __future__ import annotations

import asyncio
import time

import pytest

from hakv.common.main import build_server
from memory_support import connect, run, walked


@pytest.fixture
def server():
    return build_server(["--port", "0", "--save", ""]).server


def check(memory, monkeypatch):
    assert (memory.total, memory.nkeys) == walked(memory, monkeypatch)


def fill(c, n=40):
    """Collections bigger than eviction.SMALL_COLLECTION (sized from an
    average), one of each type."""
    for i in range(n):
        run(c, "SADD", "set", "member:%d" % i)
        run(c, "RPUSH", "list", "item:%d" % i)
        run(c, "HSET", "hash", "field:%d" % i, "v" * (i % 7))
        run(c, "ZADD", "zset", i, "m:%d" % i)


def test_repeated_writes_to_one_collection_match_a_walk(server, monkeypatch):
    memory = server.memory
    c = connect(server)
    fill(c)
    # Many writes in a row to one key: each after the first takes the cached
    # size (the averages are resampled on the way, every RESAMPLE_AFTER).
    for i in range(200):
        run(c, "SADD", "set", "x" * (i % 50) + str(i))
        run(c, "LPUSH", "list", "y" * (i % 30))
    check(memory, monkeypatch)
    for i in range(200):
        run(c, "SREM", "set", "x" * (i % 50) + str(i))
        run(c, "LPOP", "list")
        run(c, "ZINCRBY", "zset", 1.5, "m:%d" % (i % 40))
        run(c, "HINCRBY", "hash", "counter", 1)
    check(memory, monkeypatch)
    # Shrinking to small (measured exactly) and back.
    for i in range(38):
        run(c, "SPOP", "set")
    run(c, "SADD", "set", "again")
    check(memory, monkeypatch)
    for i in range(3):
        run(c, "SPOP", "set")
    assert run(c, "EXISTS", "set") == b":0\r\n"
    check(memory, monkeypatch)


def test_the_cached_key_replaced_deleted_renamed_or_moved(server, monkeypatch):
    memory = server.memory
    c = connect(server)
    fill(c)
    run(c, "SADD", "set", "one more")
    run(c, "SET", "set", "now a string")  # a single-key write replacing the collection
    assert memory.last is None
    run(c, "SADD", "other", "a")  # WRONGTYPE-free: another key
    check(memory, monkeypatch)
    run(c, "HSET", "hash", "f", "v")
    run(c, "DEL", "hash")
    run(c, "HSET", "hash", "f", "v")
    check(memory, monkeypatch)
    run(c, "RPUSH", "list", "z")
    run(c, "RENAME", "list", "list2")
    run(c, "RPUSH", "list2", "z")
    run(c, "RPUSH", "list", "new")
    check(memory, monkeypatch)
    run(c, "ZADD", "zset", 100, "top")
    run(c, "MOVE", "zset", 1)
    run(c, "ZADD", "zset", 1, "fresh")
    run(c, "SELECT", 1)
    run(c, "ZADD", "zset", 101, "top2")
    check(memory, monkeypatch)
    run(c, "SELECT", 0)
    run(c, "RPUSH", "list2", "z")
    run(c, "SWAPDB", 0, 1)
    run(c, "RPUSH", "list2", "after swap")
    run(c, "ZADD", "zset", 5, "in db 0 now")
    check(memory, monkeypatch)
    run(c, "FLUSHDB")
    run(c, "RPUSH", "list2", "after flush")
    check(memory, monkeypatch)


def test_expiry_of_the_cached_key(server, monkeypatch):
    memory = server.memory
    c = connect(server)
    fill(c)
    run(c, "SADD", "set", "x")
    # Long enough for the next write to find the key alive on a loaded machine.
    run(c, "PEXPIRE", "set", 200)
    run(c, "SADD", "set", "y")  # with its TTL: the expiry record counted
    check(memory, monkeypatch)
    time.sleep(0.25)
    # Lazy expiry inside the measured write: the key is created afresh.
    assert run(c, "SADD", "set", "z") == b":1\r\n"
    assert run(c, "SCARD", "set") == b":1\r\n"
    check(memory, monkeypatch)
    # Expired by a read, then written again.
    run(c, "RPUSH", "list", "x")
    run(c, "PEXPIRE", "list", 5)
    time.sleep(0.02)
    assert run(c, "LLEN", "list") == b":0\r\n"
    run(c, "RPUSH", "list", "back")
    check(memory, monkeypatch)
    # Removed by the active cycle between two writes.
    run(c, "HSET", "hash", "x", "y")
    run(c, "PEXPIRE", "hash", 5)
    time.sleep(0.02)
    server.keyspace.active_expire_cycle(0.1)
    assert b"hash" not in server.keyspace[0].data
    run(c, "HSET", "hash", "new", "v")
    check(memory, monkeypatch)
    # PERSIST and a TTL set again: single-key writes, measured.
    run(c, "ZADD", "zset", 1, "a")
    run(c, "EXPIRE", "zset", 1000)
    run(c, "ZADD", "zset", 2, "b")
    run(c, "PERSIST", "zset")
    run(c, "ZADD", "zset", 3, "c")
    check(memory, monkeypatch)


def test_transactions_and_blocked_clients(server, monkeypatch):
    memory = server.memory
    loop = server.loop = asyncio.new_event_loop()  # unblock() schedules the client's resume
    c, waiter, watcher = connect(server), connect(server), connect(server)
    fill(c)
    run(c, "MULTI")
    for i in range(20):
        run(c, "SADD", "set", "in multi %d" % i)
    run(c, "DEL", "hash")
    run(c, "RPUSH", "list", "in multi")
    assert run(c, "EXEC").startswith(b"*22\r\n")
    check(memory, monkeypatch)
    # A WATCH on the cached key still fails the transaction.
    run(watcher, "WATCH", "set")
    run(c, "SADD", "set", "changed")
    run(watcher, "MULTI")
    run(watcher, "SADD", "set", "watched")
    assert run(watcher, "EXEC") == b"*-1\r\n"
    # A blocked client served by a push: the pop is measured with the push.
    run(c, "RPUSH", "queue", *("e%d" % i for i in range(20)))
    run(c, "DEL", "queue")
    run(waiter, "BLPOP", "queue", 0)
    run(c, "RPUSH", "queue", "a", "b")
    assert waiter.transport.written and b"queue" in b"".join(waiter.transport.written)
    run(c, "RPUSH", "queue", "c")
    check(memory, monkeypatch)
    loop.close()


def test_a_change_behind_the_hooks_is_recounted(server, monkeypatch):
    memory = server.memory
    c = connect(server)
    fill(c)
    run(c, "SADD", "set", "cached")
    db = server.keyspace[0]
    db.data[b"loaded"] = {b"k%d" % i for i in range(50)}  # as a load would
    memory.cron()
    assert memory.last is None
    run(c, "SADD", "set", "after the recount")
    run(c, "SADD", "loaded", "written")
    check(memory, monkeypatch)


def test_eviction_of_collections_keeps_totals(server, monkeypatch):
    memory = server.memory
    c = connect(server)
    run(c, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    limit = memory.used_memory() + 256 * 1024
    run(c, "CONFIG", "SET", "maxmemory", limit)
    for i in range(3000):
        run(c, "SADD", "s:%d" % (i // 20), "member %d" % i)
        run(c, "RPUSH", "biglist", "p" * 50)
    assert server.stat_evicted_keys > 0
    assert memory.used_memory() <= limit + 4096
    check(memory, monkeypatch)
