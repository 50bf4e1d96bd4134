"""HyperLogLog against the real Redis 7.0: the same commands on both servers
must give the same replies and leave byte-identical strings (GET, DUMP),
sparse and dense, through merges, promotions and errors; HLL strings move
between the two by DUMP/RESTORE and replication (PFCOUNT's cache update
included)."""

from __future__ import annotations

import random
import time

import pytest
import redis

pytestmark = pytest.mark.interop


def _both(hakv, real_redis):
    """Clients to both; DUMP uncompressed, where hakv's payloads are meant
    to be byte-identical (hakv LZF-compresses fewer strings than Redis)."""
    clients = hakv.client(), real_redis.client()
    for c in clients:
        c.config_set("rdbcompression", "no")
    return clients


def _reply(client, *args):
    try:
        return client.execute_command(*args)
    except redis.ResponseError as exc:
        return ("error", str(exc))


def same(h, r, *args):
    """Run a command on both servers; the replies must be equal."""
    got, want = _reply(h, *args), _reply(r, *args)
    assert got == want, (args[:3], got, want)
    return got


def same_value(h, r, key):
    assert h.get(key) == r.get(key), key
    assert h.dump(key) == r.dump(key), key


def random_elements(rng: random.Random, n: int) -> list:
    kinds = (lambda: rng.randbytes(rng.randint(0, 24)),
             lambda: b"%d" % rng.randint(-10**9, 10**9),
             lambda: ("u%d" % rng.getrandbits(40)).encode())
    return [rng.choice(kinds)() for _ in range(n)]


def test_pfadd_pfcount_random_sparse_and_dense(hakv, real_redis):
    h, r = _both(hakv, real_redis)
    rng = random.Random(7)
    for trial, n in enumerate((0, 1, 3, 20, 150, 400, 900, 2500, 12000)):
        key = "k%d" % trial
        elements = random_elements(rng, n)
        same(h, r, "pfadd", key)  # creates the empty HLL
        for i in range(0, len(elements), 97):
            same(h, r, "pfadd", key, *elements[i:i + 97])
        same_value(h, r, key)  # cache invalid
        same(h, r, "pfcount", key)
        same_value(h, r, key)  # cache written
        same(h, r, "pfcount", key)
        same(h, r, "pfadd", key, *elements[:5])  # nothing new: 0
        same(h, r, "pfdebug", "encoding", key)
        if n < 400:
            same(h, r, "pfdebug", "decode", key)


def test_promotion_follows_hll_sparse_max_bytes(hakv, real_redis):
    h, r = _both(hakv, real_redis)
    rng = random.Random(11)
    for limit in ("0", "100", "700", "3000"):
        for c in (h, r):
            c.config_set("hll-sparse-max-bytes", limit)
        key = "lim" + limit
        for _ in range(40):
            same(h, r, "pfadd", key, *random_elements(rng, 25))
            same(h, r, "pfdebug", "encoding", key)
        same_value(h, r, key)
        same(h, r, "pfcount", key)


def test_pfmerge_and_multikey_pfcount(hakv, real_redis):
    h, r = _both(hakv, real_redis)
    rng = random.Random(3)
    sizes = {"a": 10, "b": 200, "c": 3000, "d": 40000}
    for key, n in sizes.items():
        elements = random_elements(rng, n)
        for i in range(0, n, 1000):
            same(h, r, "pfadd", key, *elements[i:i + 1000])
        same_value(h, r, key)
    for sources in (("a",), ("a", "b"), ("b", "c"), ("a", "d"), ("c", "d", "missing")):
        same(h, r, "pfcount", *sources, "nokey")
        dest = "m_" + "".join(sources)
        same(h, r, "pfmerge", dest, *sources)  # dest does not exist yet
        same_value(h, r, dest)
        same(h, r, "pfcount", dest)
        same(h, r, "pfdebug", "encoding", dest)
    # The destination is also a source; merging into an existing sparse key.
    same(h, r, "pfmerge", "a", "b")
    same_value(h, r, "a")
    same(h, r, "pfmerge", "b", "d")
    same_value(h, r, "b")
    same(h, r, "pfmerge", "onlydest")
    same_value(h, r, "onlydest")
    same(h, r, "pfcount", "a", "b", "c", "d")
    # Caches of the sources are left as they were by multi-key PFCOUNT.
    same_value(h, r, "c")


def test_pfdebug_commands(hakv, real_redis):
    h, r = _both(hakv, real_redis)
    same(h, r, "pfadd", "s", "x", "y", "z")
    same(h, r, "pfdebug", "getreg", "s")  # converts to dense
    same_value(h, r, "s")
    same(h, r, "pfdebug", "encoding", "s")
    same(h, r, "pfdebug", "decode", "s")
    same(h, r, "pfadd", "t", "1", "2")
    same(h, r, "pfdebug", "todense", "t")
    same(h, r, "pfdebug", "todense", "t")
    same_value(h, r, "t")
    same(h, r, "pfdebug", "nosuch", "t")
    same(h, r, "pfdebug", "encoding", "missing")
    same(h, r, "pfdebug", "encoding")
    assert h.execute_command("pfselftest") == b"OK"


def test_object_encoding_and_ttl(hakv, real_redis):
    h, r = _both(hakv, real_redis)
    for cmd in (("pfadd", "e"), ("object", "encoding", "e"), ("pfcount", "e"),
                ("object", "encoding", "e"), ("pfmerge", "e2"), ("object", "encoding", "e2"),
                ("pexpire", "e", 100000), ("pfadd", "e", "x"), ("pfcount", "e"),
                ("pfmerge", "e", "e2"), ("type", "e")):
        same(h, r, *cmd)
    assert 0 < h.pttl("e") <= 100000 and 0 < r.pttl("e") <= 100000
    same_value(h, r, "e")


def test_errors_and_invalid_strings(hakv, real_redis):
    h, r = _both(hakv, real_redis)
    for c in (h, r):
        c.set("str", "hello")
        c.set("int", 12345)
        c.rpush("list", "a")
        c.set("badmagic", b"HYLX" + bytes(14))
        c.set("badenc", b"HYLL\x05" + bytes(13))
        c.set("shortdense", b"HYLL\x00" + bytes(40))
        # Sparse opcodes covering too few registers / too many.
        c.set("short", b"HYLL\x01\x00\x00\x00" + bytes(8) + b"\x7f\xfe")
        c.set("long", b"HYLL\x01\x00\x00\x00" + bytes(8) + b"\x7f\xff\x00")
        c.set("longval", b"HYLL\x01\x00\x00\x00" + bytes(8) + b"\x7f\xfc\x83\x83")
    for key in ("str", "int", "list", "badmagic", "badenc", "shortdense", "nokey"):
        for cmd in (("pfadd", key, "e"), ("pfcount", key), ("pfcount", key, "str"),
                    ("pfmerge", "dst", key), ("pfmerge", key, "nokey"),
                    ("pfdebug", "getreg", key)):
            same(h, r, *cmd)
    for key in ("short", "long", "longval"):
        for cmd in (("pfcount", key), ("pfcount", key, "nokey"), ("pfmerge", "dst2", key),
                    ("pfdebug", "todense", key), ("pfdebug", "decode", key)):
            same(h, r, *cmd)
    for key in ("dst", "dst2", "nokey"):
        same(h, r, "exists", key)
        if h.exists(key):
            same_value(h, r, key)
    same(h, r, "pfadd")
    same(h, r, "pfcount")
    same(h, r, "pfmerge")
    same(h, r, "pfselftest", "x")


def test_accepts_hll_written_by_redis_and_restore_both_ways(hakv, real_redis):
    h, r = _both(hakv, real_redis)
    for c in (h, r):
        c.config_set("rdbcompression", "yes")  # LZF payloads across, too
    rng = random.Random(5)
    keys = []
    for key, n in (("small", 30), ("mid", 1500), ("big", 30000)):
        elements = random_elements(rng, n)
        for i in range(0, n, 1000):
            r.pfadd(key, *elements[i:i + 1000])
        # Redis's bytes into hakv by RESTORE and by SET, and the reverse.
        h.restore(key, 0, r.dump(key))
        h.set(key + ":set", r.get(key))
        assert h.get(key) == r.get(key)
        assert h.pfcount(key) == r.pfcount(key)
        assert h.pfcount(key + ":set") == r.pfcount(key)
        more = random_elements(rng, 300)
        h.pfadd(key, *more)
        r.pfadd(key, *more)
        h.pfadd(key + ":h", *elements[:2000])
        r.restore(key + ":h", 0, h.dump(key + ":h"))
        assert r.pfcount(key + ":h") == h.pfcount(key + ":h")
        keys += [key, key + ":h"]
    for c in (h, r):
        c.config_set("rdbcompression", "no")
    for key in keys:
        same_value(h, r, key)


def test_watch_and_keyspace_stats(hakv, real_redis):
    """PFCOUNT that fills the cache touches WATCHed keys, a cached one does
    not; single-key PFCOUNT/PFADD/PFMERGE look keys up for writing (no
    keyspace_hits/misses), multi-key PFCOUNT and PFMERGE's sources count."""
    h, r = _both(hakv, real_redis)
    for c in (h, r):
        c.pfadd("w", "a", "b")
    for _ in range(2):  # first: cache invalid -> aborted; then cached -> runs
        outcomes = []
        for c in (h, r):
            with c.pipeline() as pipe:
                pipe.watch("w")
                pipe.pfcount("w")
                pipe.multi()
                pipe.set("after", 1)
                try:
                    outcomes.append(pipe.execute())
                except redis.WatchError:
                    outcomes.append("aborted")
        assert outcomes[0] == outcomes[1]
    assert outcomes[0] != "aborted"
    steps = (("pfcount", "w"), ("pfcount", "nokey"), ("pfadd", "w", "c"),
             ("pfadd", "new", "c"), ("pfcount", "w", "nokey", "w"),
             ("pfmerge", "w2", "w", "nokey2"), ("pfmerge", "w2", "w"),
             ("pfdebug", "encoding", "w"))
    for step in steps:
        stats = []
        for c in (h, r):
            c.config_resetstat()
            c.execute_command(*step)
            info = c.info("stats")
            stats.append((info["keyspace_hits"], info["keyspace_misses"]))
        assert stats[0] == stats[1], step


def test_notifications_and_stats(hakv, real_redis):
    h, r = _both(hakv, real_redis)
    events = {}
    for name, c in (("hakv", h), ("redis", r)):
        c.config_set("notify-keyspace-events", "KEA")
        ps = c.pubsub()
        ps.psubscribe("__key*__:*")
        ps.get_message(timeout=1)
        c.pfadd("n", "a", "b")
        c.pfadd("n", "a")
        c.pfcount("n")
        c.pfmerge("n2", "n")
        c.pfmerge("n3", "n", "n2")
        c.execute_command("pfdebug", "todense", "n")
        c.set("end", 1)
        got = []
        deadline = time.time() + 5
        while time.time() < deadline:
            msg = ps.get_message(timeout=0.5)
            if msg is None:
                continue
            got.append((msg["channel"], msg["data"]))
            if msg["data"] == b"end":
                break
        ps.close()
        events[name] = got
    assert events["hakv"] == events["redis"]
    assert (b"__keyevent@0__:pfadd", b"n2") in events["redis"]


def test_pfcount_cache_update_replicates(make_hakv, start_redis):
    """PFCOUNT writes the cache bytes and Redis propagates it: a replica's
    copy gets the valid cache too, whichever server is the primary."""
    real_primary = start_redis()
    hakv_primary = make_hakv()
    replicas = [make_hakv("--replicaof", "127.0.0.1", str(real_primary.port)),
                start_redis("--replicaof", "127.0.0.1", str(hakv_primary.port))]
    pairs = [(real_primary.client(), replicas[0].client()),
             (hakv_primary.client(), replicas[1].client())]
    for p, rep in pairs:
        p.pfadd("h", *range(500))
        p.pfcount("h")
        p.set("marker", 1)
        deadline = time.time() + 10
        while rep.get("marker") != b"1":
            assert time.time() < deadline, "replica did not catch up"
            time.sleep(0.05)
        value = rep.get("h")
        assert value == p.get("h")
        assert not value[15] & 0x80  # the replica holds a valid cache
