"""maxmemory on hakv: used-memory accounting, the eviction policies under a
write load, OOM under noeviction, LRU/LFU bookkeeping (OBJECT IDLETIME /
FREQ), INFO and MEMORY, and replicas that follow their primary's evictions
instead of evicting on their own."""

from __future__ import annotations

import time

import pytest
import redis

from replication_support import wait_caught_up, wait_for, wait_link_up

LIMIT = 2 * 1024 * 1024
VALUE = b"x" * 100
OOM = "command not allowed when used memory > 'maxmemory'."


def used(r) -> int:
    return r.info("memory")["used_memory"]


def evicted(r) -> int:
    return r.info("stats")["evicted_keys"]


def fill(r, prefix: str, n: int, ttl: int | None = None, start: int = 0, check=None):
    """Write n keys in pipelined batches; check(r) runs after each batch."""
    p = r.pipeline(transaction=False)
    for i in range(start, start + n):
        p.set("%s:%d" % (prefix, i), VALUE, ex=ttl)
        if i % 500 == 499:
            p.execute()
            if check is not None:
                check(r)
    p.execute()


def wait_eviction_settled(r) -> None:
    """Until no eviction round is left over the limit: a round that runs out
    of time (a slow machine) goes on in the cron, evicting more keys."""
    wait_for(lambda: r.info("stats")["current_eviction_exceeded_time"] == 0, 10,
             what="eviction to get under maxmemory")


def rss(pid: int) -> int:
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random",
                                    "volatile-lru", "volatile-lfu", "volatile-random",
                                    "volatile-ttl"])
def test_write_load_past_the_limit_stays_near_it(r, policy):
    volatile = policy.startswith("volatile-")
    fill(r, "keep", 2000)  # persistent keys, below the limit
    r.config_set("maxmemory-policy", policy)
    r.config_set("maxmemory", LIMIT)
    peaks = []
    fill(r, "new", 20000, ttl=100000 if volatile else None,
         check=lambda c: peaks.append(used(c)))
    assert max(peaks) <= LIMIT * 1.1
    assert used(r) <= LIMIT * 1.1
    assert evicted(r) > 10000
    assert r.dbsize() < 22000
    kept = len(r.keys("keep:*"))
    if volatile:
        assert kept == 2000  # keys without a TTL are never evicted by volatile-*
    else:
        assert kept < 2000


def test_noeviction_refuses_writes_with_oom(r):
    r.config_set("maxmemory", 512 * 1024)
    with pytest.raises(redis.exceptions.OutOfMemoryError) as exc:
        fill(r, "k", 20000)
    assert str(exc.value).endswith(OOM)
    n = r.dbsize()
    assert 0 < n < 20000 and evicted(r) == 0
    assert r.get("k:0") == VALUE  # reads and deletes still work
    assert r.delete(*["k:%d" % i for i in range(200)]) == 200
    assert r.set("after", "delete")
    assert r.execute_command("MEMORY", "DOCTOR")


def test_volatile_ttl_evicts_the_nearest_deadlines_first(r):
    fill(r, "soon", 1500, ttl=1000)
    fill(r, "late", 1500, ttl=1000000)
    r.config_set("maxmemory-policy", "volatile-ttl")
    r.config_set("maxmemory", used(r))
    fill(r, "mid", 1500, ttl=100000)
    soon, late = len(r.keys("soon:*")), len(r.keys("late:*"))
    assert soon < 500 and late > 1300


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu"])
def test_recently_or_often_used_keys_survive(r, policy):
    r.config_set("maxmemory-policy", policy)
    fill(r, "hot", 1500)
    fill(r, "cold", 1500)
    time.sleep(0.05)
    p = r.pipeline(transaction=False)
    for _ in range(3):
        for i in range(1500):
            p.get("hot:%d" % i)
        p.execute()
    r.config_set("maxmemory", used(r))
    fill(r, "new", 1500)
    hot, cold = len(r.keys("hot:*")), len(r.keys("cold:*"))
    assert evicted(r) >= 1000
    assert hot > 1200 and cold < 700


def test_object_idletime_and_freq(r):
    r.config_set("maxmemory-policy", "allkeys-lru")
    r.set("a", "1")
    time.sleep(1.1)
    assert r.object("idletime", "a") >= 1
    assert r.object("idletime", "a") >= 1  # OBJECT itself is not an access
    r.get("a")
    assert r.object("idletime", "a") == 0
    r.config_set("lfu-decay-time", 0)  # no decay: a minute boundary would take one off
    r.config_set("maxmemory-policy", "allkeys-lfu")
    r.set("b", "1")
    assert r.object("freq", "b") == 5  # a new key starts at LFU_INIT_VAL
    r.get("b")
    assert r.object("freq", "b") == 6  # the first access always counts
    for _ in range(200):
        r.get("b")
    assert 6 < r.object("freq", "b") < 20  # logarithmic


def test_info_and_memory_commands(r):
    r.config_set("maxmemory", "100mb")
    r.config_set("maxmemory-policy", "allkeys-lru")
    base = used(r)
    r.set("s", VALUE)
    r.hset("h", mapping={"f%d" % i: "v" * 20 for i in range(100)})
    info = r.info("memory")
    assert info["maxmemory"] == 100 * 1024 * 1024
    assert info["maxmemory_human"] == "100.00M"
    assert info["maxmemory_policy"] == "allkeys-lru"
    assert info["used_memory"] > base
    assert info["used_memory_human"].endswith(("K", "M", "B"))
    assert info["used_memory_dataset"] > 0
    assert "evicted_keys" in r.info("stats")
    string_size = r.memory_usage("s")
    assert 100 < string_size < 400
    exact = r.memory_usage("h", samples=0)
    assert 100 * 40 < exact < 100 * 250
    assert abs(r.memory_usage("h") - exact) < exact * 0.3
    assert r.memory_usage("missing") is None
    stats = r.memory_stats()
    assert stats["keys.count"] == 2
    assert stats["total.allocated"] == used(r)
    assert "maxmemory" in r.execute_command("MEMORY", "DOCTOR").decode()


def test_accounting_follows_expiry_flush_and_reload(r):
    base = used(r)
    fill(r, "t", 3000, ttl=None)
    grown = used(r)
    assert grown > base + 3000 * 150
    p = r.pipeline(transaction=False)
    for i in range(3000):
        p.pexpire("t:%d" % i, 50)
    p.execute()
    wait_for(lambda: r.dbsize() == 0, timeout=10, what="the keys to expire")
    assert used(r) == base
    fill(r, "u", 3000)
    r.hset("big", mapping={"f%d" % i: "v%d" % i for i in range(1000)})
    before = used(r)
    r.execute_command("DEBUG", "RELOAD")
    wait_for(lambda: abs(used(r) - before) < before * 0.02, timeout=5,
             what="the recount after DEBUG RELOAD")
    r.flushall()
    assert used(r) == base
    fill(r, "v", 100)
    filled = used(r)
    r.swapdb(0, 1)  # the data moves to db 1: same memory
    assert used(r) == filled and r.dbsize() == 0


def test_used_memory_tracks_what_the_process_really_grows_by(make_hakv):
    node = make_hakv()
    r = node.client()
    pid = r.info("server")["process_id"]
    u0, r0 = used(r), rss(pid)
    fill(r, "key", 50000)
    u1, r1 = used(r), rss(pid)
    ratio = (u1 - u0) / (r1 - r0)
    assert 0.7 < ratio < 1.3, (u1 - u0, r1 - r0)


@pytest.mark.parametrize("lazy,command", [("no", "del"), ("yes", "unlink")])
def test_replica_keeps_the_primarys_keys_and_never_evicts(make_hakv, lazy, command):
    primary = make_hakv("--maxmemory", str(LIMIT), "--maxmemory-policy", "allkeys-lru",
                        "--repl-diskless-sync-delay", "0", "--lazyfree-lazy-eviction", lazy)
    # The replica's own limit is far lower: it must not act on it.
    replica = make_hakv("--replicaof", "127.0.0.1", str(primary.port),
                        "--maxmemory", "300kb", "--maxmemory-policy", "allkeys-random")
    p, rc = primary.client(), replica.client()
    wait_link_up(rc)
    fill(p, "k", 20000)
    wait_eviction_settled(p)
    wait_caught_up(p, rc)
    assert evicted(p) > 5000
    assert evicted(rc) == 0
    assert set(p.keys("*")) == set(rc.keys("*"))
    # Each eviction reached the replica as one DEL (UNLINK with
    # lazyfree-lazy-eviction): the only such commands it ran.
    assert rc.info("commandstats")["cmdstat_" + command]["calls"] == evicted(p)
    assert used(rc) > 300 * 1000
    # The primary's link is never refused (OOM) on the replica, and writes
    # from the replica's own clients get READONLY, not OOM.
    with pytest.raises(redis.exceptions.ReadOnlyError):
        rc.set("x", "y")


def test_eviction_exceeded_time_counts_while_over_the_limit(make_hakv):
    # noeviction cannot get under the limit: the clock runs until the limit
    # is raised, then the time moves into the total.
    r = make_hakv("--maxmemory-policy", "noeviction").client()
    fill(r, "k", 2000)
    r.config_set("maxmemory", used(r) // 2)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        r.set("x", VALUE)
    wait_for(lambda: r.info("stats")["current_eviction_exceeded_time"] >= 200, 5,
             what="the exceeded clock to run")
    r.config_set("maxmemory", 0)
    wait_for(lambda: r.info("stats")["current_eviction_exceeded_time"] == 0, 5,
             what="the exceeded clock to stop")
    assert r.info("stats")["total_eviction_exceeded_time"] >= 200
