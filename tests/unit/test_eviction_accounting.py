"""Used-memory accounting and allkeys-lru eviction on the write path, in
process: a node built but not started, and clients fed RESP bytes through
Client.data_received (what the event loop would call), with a transport
that keeps what is written.

The invariant checked throughout: the incrementally kept totals
(eviction.py's before/after around each write, and its inlined eviction
loop) equal a walk of the keyspace with Memory.size_of."""

from __future__ import annotations

import pytest

from hakv.common.eviction import SLACK_SHIFT
from hakv.common.main import build_server
from memory_support import connect, run


class Sink:
    """A propagation sink (as the AOF and the replicas are): what it was fed."""

    def __init__(self):
        self.fed = []

    def feed(self, items):
        self.fed.extend(data for _, data in items)


@pytest.fixture
def server():
    return build_server(["--port", "0", "--save", ""]).server


def walked(memory) -> tuple:
    """(bytes, keys) of the keyspace, by walking it."""
    total = keys = 0
    for db in memory.ks.dbs:
        for key in list(db.data):
            total += memory.size_of(db, key)
            keys += 1
    return total, keys


def test_write_accounting_matches_a_walk(server):
    memory = server.memory
    c = connect(server)
    for i in range(300):
        run(c, "SET", "s:%d" % i, "v" * (i % 50))
    for i in range(0, 300, 3):
        run(c, "SET", "s:%d" % i, "longer value %d" % i, "EX", 1000)  # a TTL: the expiry record
    for i in range(0, 300, 5):
        run(c, "APPEND", "s:%d" % i, "tail")
    for i in range(0, 300, 7):
        run(c, "DEL", "s:%d" % i)
    for i in range(50):
        run(c, "INCRBY", "n:%d" % i, i * 1000003)
        run(c, "HSET", "h", "f%d" % i, "x" * i)
        run(c, "RPUSH", "l", "e%d" % i)
    run(c, "GETDEL", "s:1")
    run(c, "PERSIST", "s:3")
    run(c, "EXPIRE", "s:2", 100)
    run(c, "SELECT", 2)
    run(c, "SET", "other-db", "value")
    assert (memory.total, memory.nkeys) == walked(memory)
    assert memory.nkeys == sum(len(db.data) for db in server.keyspace.dbs)


def test_allkeys_lru_evicts_the_least_recent_strings_and_stays_under_the_limit(server):
    memory = server.memory
    c = connect(server)
    sink = Sink()
    server.add_sink(sink)
    run(c, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    limit = memory.used_memory() + 200 * 1024
    run(c, "CONFIG", "SET", "maxmemory", limit)
    for i in range(100):
        run(c, "SET", "old:%d" % i, "x" * 100)
    for i in range(0, 100, 2):
        run(c, "GET", "old:%d" % i)  # an access: these outlive the odd ones
    db = server.keyspace[0]
    old_left = lambda: sum(b"old:%d" % i in db.data for i in range(100))  # noqa: E731
    checked = 0
    for i in range(3000):
        assert run(c, "SET", "new:%d" % i, "y" * 100) == b"+OK\r\n"
        # Room is made before a write, as in Redis: the write itself may
        # then go past the limit, by its own size.
        assert memory.used_memory() <= limit + 400
        if 50 <= old_left() < 75:
            # Exact LRU: the odd ones, never read, go first.
            assert all(b"old:%d" % i in db.data for i in range(0, 100, 2))
            checked += 1
    assert checked and old_left() == 0
    evicted = server.stat_evicted_keys
    assert evicted > 1000
    # Every key written is either still here or was evicted, once.
    assert memory.nkeys + evicted == 3100
    assert (memory.total, memory.nkeys) == walked(memory)
    # Each eviction went to the sinks as a DEL of its own, before the SET.
    dels = [d for d in sink.fed if d.startswith(b"*2\r\n$3\r\nDEL\r\n")]
    assert len(dels) == evicted
    # The access records hold exactly the keys that exist.
    assert set(memory.access[0]) == set(db.data)


def test_a_round_frees_a_little_more_than_the_excess(server):
    memory = server.memory
    c = connect(server)
    run(c, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    limit = memory.used_memory() + 4 * 1024 * 1024  # 4 KB of slack: about ten keys
    run(c, "CONFIG", "SET", "maxmemory", limit)
    for i in range(12000):  # to the limit
        run(c, "SET", "k:%d" % i, "z" * 200)
    start = server.stat_evicted_keys
    rounds = 0
    for i in range(12000, 16000):
        before = server.stat_evicted_keys
        run(c, "SET", "k:%d" % i, "z" * 200)
        if server.stat_evicted_keys != before:
            rounds += 1
            # The round stopped below the slack under the limit (the write
            # that followed it added one key).
            assert memory.used_memory() - memory.size_of(server.keyspace[0], b"k:%d" % i) \
                - memory.access_entry <= limit - (limit >> SLACK_SHIFT)
    evicted = server.stat_evicted_keys - start
    assert evicted > 3000
    # Several keys per round: far fewer rounds than evictions.
    assert rounds * 4 < evicted


def test_lru_eviction_of_watched_and_expiring_keys(server):
    memory = server.memory
    c, watcher = connect(server), connect(server)
    run(c, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    run(c, "SET", "watched", "w" * 100)
    run(c, "SET", "ttl", "t" * 100, "EX", 1000)
    run(c, "HSET", "hash", "f", "v" * 100)
    run(watcher, "WATCH", "watched")
    limit = memory.used_memory() + 64 * 1024
    run(c, "CONFIG", "SET", "maxmemory", limit)
    for i in range(2000):
        run(c, "SET", "fill:%d" % i, "f" * 100)
    db = server.keyspace[0]
    for key in (b"watched", b"ttl", b"hash"):  # the oldest: evicted, whatever their kind
        assert key not in db.data
    assert b"ttl" not in db.expires
    run(watcher, "MULTI")
    run(watcher, "SET", "watched", "again")
    assert run(watcher, "EXEC") == b"*-1\r\n"  # the eviction touched the WATCHed key
    assert (memory.total, memory.nkeys) == walked(memory)


def test_noeviction_still_refuses_with_oom(server):
    memory = server.memory
    c = connect(server)
    limit = memory.used_memory() + 32 * 1024
    run(c, "CONFIG", "SET", "maxmemory", limit)
    replies = [run(c, "SET", "k:%d" % i, "x" * 100) for i in range(1000)]
    assert replies[0] == b"+OK\r\n"
    assert replies[-1].startswith(b"-OOM ")
    assert server.stat_evicted_keys == 0
    assert (memory.total, memory.nkeys) == walked(memory)


@pytest.mark.parametrize("policy", ["allkeys-lru", "noeviction"])
def test_recount_after_a_change_behind_the_hooks_matches_a_walk(server, policy):
    """What a load does (keys put in `data` directly) is found by the cron
    and recounted: strings, TTLs, collections; the LRU order gets every
    loaded key."""
    memory = server.memory
    c = connect(server)
    run(c, "CONFIG", "SET", "maxmemory-policy", policy)
    run(c, "SET", "kept", "v")
    db = server.keyspace[0]
    for i in range(3000):
        db.data[b"s:%d" % i] = b"x" * (i % 200)
    for i in range(0, 3000, 3):
        db.expires[b"s:%d" % i] = 10 ** 13
    db.data[b"h"] = {b"f%d" % i: b"v" * i for i in range(100)}
    db.data[b"small"] = {b"a", b"b"}
    memory.cron()
    assert (memory.total, memory.nkeys) == walked(memory)
    if policy == "allkeys-lru":
        assert set(memory.access[0]) == set(db.data)
    # Only strings: the C-level path.
    run(c, "FLUSHALL")
    other = server.keyspace[1]
    other.data = {b"k:%d" % i: b"y" * i for i in range(500)}
    other.expires = {b"k:1": 10 ** 13, b"gone": 10 ** 13}  # a stale TTL record: not counted
    memory.cron()
    assert (memory.total, memory.nkeys) == walked(memory)


def test_batched_lru_eviction_is_exact_among_mixed_keys(server):
    """Strings are evicted in batches, collections and keys with a TTL one
    at a time where they come in the order: whatever the mix, what is left
    is always the most recently written keys, and the totals stay exact."""
    memory = server.memory
    c = connect(server)
    run(c, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    limit = memory.used_memory() + 64 * 1024
    run(c, "CONFIG", "SET", "maxmemory", limit)
    db = server.keyspace[0]
    order = []
    target = limit - (limit >> SLACK_SHIFT)
    for i in range(1500):
        key = "k:%d" % i
        evicted = server.stat_evicted_keys
        if i % 7 == 0:
            run(c, "HSET", key, "a", "x" * (i % 50), "b", "y")
        elif i % 11 == 0:
            run(c, "SET", key, "t" * (i % 300), "EX", 1000)
        else:
            run(c, "SET", key, "s" * (i % 300))
        order.append(key.encode())
        present = [k in db.data for k in order]
        # Exact LRU: the keys left are a suffix of the write order.
        first = present.index(True)
        assert all(present[first:]), i
        assert memory.used_memory() <= limit + 800
        if server.stat_evicted_keys != evicted:
            # The round stopped at the first key that took memory under the
            # target (the write then added its own key): no more than that.
            before_write = memory.used_memory() - memory.size_of(db, order[-1]) \
                - memory.access_entry
            assert target - 800 < before_write <= target
    assert server.stat_evicted_keys == first > 500
    assert (memory.total, memory.nkeys) == walked(memory)
    assert set(memory.access[0]) == set(db.data)
    assert not set(db.expires) - set(db.data)


def test_batched_lru_eviction_notifies_and_propagates_each_key(server):
    memory = server.memory
    c, listener = connect(server), connect(server)
    sink = Sink()
    server.add_sink(sink)
    run(c, "CONFIG", "SET", "notify-keyspace-events", "Ee")
    run(listener, "SUBSCRIBE", "__keyevent@0__:evicted")
    run(c, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    limit = memory.used_memory() + 32 * 1024
    run(c, "CONFIG", "SET", "maxmemory", limit)
    target = limit - (limit >> SLACK_SHIFT)
    db = server.keyspace[0]
    listener.transport.written.clear()
    for i in range(1000):
        evicted = server.stat_evicted_keys
        run(c, "SET", "n:%d" % i, "v" * 100)
        if server.stat_evicted_keys != evicted:
            # Keys of (nearly) one size: the round stopped within one key of
            # the target, under it.
            key_size = memory.size_of(db, b"n:%d" % i) + memory.access_entry
            before_write = memory.used_memory() - key_size
            assert target - key_size < before_write <= target
    evicted = server.stat_evicted_keys
    assert evicted > 500
    notified = b"".join(listener.transport.written)
    # Each evicted key once, oldest first.
    assert notified.count(b"__keyevent@0__:evicted") == evicted
    assert notified.index(b"n:0\r\n") < notified.index(b"n:1\r\n")
    dels = [d for d in sink.fed if d.startswith(b"*2\r\n$3\r\nDEL\r\n")]
    assert len(dels) == evicted
    assert dels[0].endswith(b"$3\r\nn:0\r\n")
    assert (memory.total, memory.nkeys) == walked(memory)
