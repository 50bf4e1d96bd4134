"""Used-memory accounting of writes that are not measured one by one
(eviction.py): a run of writes to the collection the last write left goes
unmeasured (`Memory.unsettled`) until something reads the totals, which
sizes that key once (`Memory._settle`); SET key value is accounted from its
arguments before it runs, with no after().

The invariant, as in test_collection_accounting.py: the totals, whenever
read, equal a walk of the keyspace. Checked here after random mixes of
writes of every type on a few keys (so that consecutive writes often hit
the same collection), with expiry, deletes, renames, MULTI, SELECT,
FLUSHDB, SWAPDB and CONFIG SET in between.

In process: a node built but not started, clients fed RESP bytes through
Client.data_received."""

from __future__ import annotations

import random
import time

import pytest

from hakv.common.main import build_server
from memory_support import connect, run, walked


@pytest.fixture
def server():
    return build_server(["--port", "0", "--save", ""]).server


def check(memory, monkeypatch):
    # Reading the totals settles first (the tuple is built before the walk).
    assert (memory.total, memory.nkeys) == walked(memory, monkeypatch)
    assert not memory.unsettled
    assert memory.nkeys == sum(len(db.data) for db in memory.ks.dbs)


def test_a_run_of_writes_to_one_collection_is_settled_when_read(server, monkeypatch):
    memory = server.memory
    c = connect(server)
    run(c, "RPUSH", "list", *["item:%d" % i for i in range(20)])
    for i in range(50):
        run(c, "LPUSH", "list", "x" * (i % 9))
    assert memory.unsettled  # 50 writes, not one of them sized
    before = memory._total
    check(memory, monkeypatch)
    assert memory._total > before
    # used_memory() and INFO settle too.
    for i in range(30):
        run(c, "SADD", "set", "member:%d" % i)
    assert memory.unsettled
    used = memory.used_memory()
    assert not memory.unsettled
    assert used == memory.startup + walked(memory, monkeypatch)[0]
    run(c, "SADD", "set", "another")
    assert b"used_memory:" in run(c, "INFO", "memory")
    assert not memory.unsettled
    check(memory, monkeypatch)


def test_the_unsettled_key_emptied_replaced_renamed_or_expiring(server, monkeypatch):
    memory = server.memory
    c = connect(server)
    run(c, "RPUSH", "l", *range(12))
    for _ in range(12):
        run(c, "LPOP", "l")  # the last pop deletes the key, unmeasured
    check(memory, monkeypatch)
    run(c, "HSET", "h", *[x for i in range(12) for x in ("f%d" % i, "v")])
    run(c, "HSET", "h", "g", "w")
    run(c, "SET", "h", "now a string")  # accounted from its arguments: settles first
    check(memory, monkeypatch)
    run(c, "ZADD", "z", *[x for i in range(12) for x in (i, "m%d" % i)])
    run(c, "ZADD", "z", 99, "late")
    run(c, "RENAME", "z", "z2")
    check(memory, monkeypatch)
    run(c, "SADD", "s", *["m%d" % i for i in range(12)])
    run(c, "SADD", "s", "extra")
    run(c, "PEXPIRE", "s", 1)  # unmeasured: the TTL is settled later ...
    time.sleep(0.01)
    run(c, "EXISTS", "s")  # ... or the key's lazy expiry accounts for it
    assert b"s" not in server.keyspace[0].data
    check(memory, monkeypatch)
    # The same key name in another database while one is unsettled.
    run(c, "RPUSH", "k", *range(12))
    run(c, "RPUSH", "k", "more")
    run(c, "SELECT", 1)
    run(c, "RPUSH", "k", *range(3))
    run(c, "SELECT", 0)
    run(c, "RPUSH", "k", "again")
    check(memory, monkeypatch)


def test_config_set_maxmemory_settles_and_stops_deferring(server, monkeypatch):
    memory = server.memory
    c = connect(server)
    run(c, "RPUSH", "l", *range(20))
    run(c, "RPUSH", "l", "one more")
    assert memory.unsettled
    run(c, "CONFIG", "SET", "maxmemory", 1 << 30)
    assert not memory.unsettled
    run(c, "RPUSH", "l", "measured")  # maxmemory's check reads the totals before every write
    assert not memory.unsettled
    check(memory, monkeypatch)
    run(c, "CONFIG", "SET", "maxmemory", 0)
    run(c, "CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
    run(c, "RPUSH", "l", "with access records")
    assert not memory.unsettled
    check(memory, monkeypatch)


def _random_write(rng: random.Random, keys: list) -> tuple:
    key = rng.choice(keys)
    member = "m%d" % rng.randrange(40)
    roll = rng.random()
    if roll < 0.15:
        return ("RPUSH" if rng.random() < 0.5 else "LPUSH", key,
                *["e" * rng.randrange(12) for _ in range(rng.randrange(1, 4))])
    if roll < 0.22:
        return ("LPOP", key, rng.randrange(1, 4))
    if roll < 0.35:
        return ("SADD", key, member, "x" * rng.randrange(20))
    if roll < 0.40:
        return ("SREM", key, member)
    if roll < 0.52:
        return ("HSET", key, member, "v" * rng.randrange(30))
    if roll < 0.56:
        return ("HDEL", key, member)
    if roll < 0.66:
        return ("ZADD", key, rng.randrange(100), member)
    if roll < 0.69:
        return ("ZREM", key, member)
    if roll < 0.77:
        return ("SET", key, "s" * rng.randrange(40))
    if roll < 0.80:
        return ("SET", key, "ttl", "PX", rng.randrange(1, 30))
    if roll < 0.83:
        return ("APPEND", key, "tail")
    if roll < 0.86:
        return ("PEXPIRE", key, rng.randrange(1, 30))
    if roll < 0.88:
        return ("PERSIST", key)
    if roll < 0.91:
        return ("DEL", key)
    if roll < 0.93:
        return ("RENAME", key, rng.choice(keys))
    if roll < 0.95:
        return ("SELECT", rng.randrange(3))
    if roll < 0.96:
        return ("SWAPDB", 0, rng.randrange(1, 3))
    if roll < 0.965:
        return ("FLUSHDB",)
    return ("EXISTS", key)  # a read: may expire the key lazily


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("policy, maxmemory", [
    ("noeviction", 0),  # writes to one collection deferred
    ("allkeys-lru", 0),  # access records: every write measured
    ("allkeys-lfu", 1 << 30),  # maxmemory: every write measured
])
def test_random_writes_match_a_walk_whenever_read(server, monkeypatch, seed, policy, maxmemory):
    rng = random.Random(seed)
    memory = server.memory
    c = connect(server)
    run(c, "CONFIG", "SET", "maxmemory-policy", policy)
    run(c, "CONFIG", "SET", "maxmemory", maxmemory)
    keys = ["a", "b", "c", "d"]
    next_check = rng.randrange(1, 40)
    for n in range(1500):
        if rng.random() < 0.03:
            run(c, "MULTI")
            for _ in range(rng.randrange(1, 5)):
                run(c, *_random_write(rng, keys))
            run(c, "EXEC")
        else:
            run(c, *_random_write(rng, keys))
        if rng.random() < 0.01:
            time.sleep(0.02)  # some keys with a TTL expire
        if rng.random() < 0.01:
            server.keyspace.active_expire_cycle(0.01)  # the cron's active expiry
        if n == next_check:
            check(memory, monkeypatch)
            next_check = n + rng.randrange(1, 40)
    check(memory, monkeypatch)
