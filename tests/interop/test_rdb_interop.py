"""The RDB codec against real Redis 7.0: Redis loads our dumps, we load Redis's,
and DUMP / RESTORE payloads travel both ways (byte-identical where the format
leaves no choice)."""

from __future__ import annotations

import os
import random
import time
from collections import deque

import pytest
import redis

from hakv.common import rdb
from hakv.common.rdb import Aux, Function, Key
from persistence_support import check_rdb, plain, zset

pytestmark = pytest.mark.interop

LIB = b"#!lua name=hakvlib\nredis.register_function('hello', function() return 'hi' end)"


def dataset(seed: int) -> dict:
    """Every type, small and big, with the tricky strings and scores."""
    rng = random.Random(seed)
    return {
        b"str": b"hello",
        b"empty": b"",
        b"int": b"12345",
        b"neg": b"-7",
        b"int32": b"2147483647",
        b"int64": b"-9223372036854775808",
        b"zero-padded": b"007",
        b"long-compressible": b"redis-compatible " * 100,
        b"long-random": rng.randbytes(3000),
        b"huge": b"0123456789abcdef" * 5000,
        b"binary\x00key\xff": b"\x00\x01\x02",
        b"list-small": deque([b"a", b"1", b"-4000", b"70000", b"x" * 70, b""]),
        b"list-big": deque(b"item-%d" % i for i in range(10_000)),
        b"list-fat": deque([b"y" * 20_000, b"z", rng.randbytes(9000)]),
        b"hash-small": {b"name": b"hakv", b"n": b"42", b"neg": b"-1", b"e": b""},
        b"hash-long-value": {b"f": b"v" * 100, b"g": b"1"},
        b"hash-big": {b"field:%d" % i: b"value-%d" % (i * 7) for i in range(500)},
        b"set-ints": {b"1", b"2", b"3", b"-100000"},
        b"set-int64": {b"1", b"9223372036854775807"},
        b"set-strings": {b"apple", b"banana", b"cherry"},
        b"set-big": {b"member-%d" % i for i in range(2000)},
        b"set-big-ints": {b"%d" % i for i in range(1000)},
        b"zset-small": zset([(b"a", 1.5), (b"b", 2), (b"c", float("inf")), (b"d", -1e300),
                             (b"e", float("-inf")), (b"f", 0.1), (b"42", 3), (b"g", 2.0 ** 63)]),
        b"zset-long-member": zset([(b"m" * 100, 1.0), (b"n", 2.0)]),
        b"zset-big": zset([(b"player:%d" % i, rng.random() * 1000) for i in range(1000)]),
    }


def read_back(client: redis.Redis, key: bytes):
    kind = client.type(key)
    if kind == b"string":
        return client.get(key)
    if kind == b"list":
        return deque(client.lrange(key, 0, -1))
    if kind == b"hash":
        return client.hgetall(key)
    if kind == b"set":
        return client.smembers(key)
    if kind == b"zset":
        return ("zset", [(m, float(s)) for m, s in client.zrange(key, 0, -1, withscores=True)])
    raise AssertionError(f"unexpected type {kind!r} for {key!r}")


def put(client: redis.Redis, key: bytes, value) -> None:
    if isinstance(value, bytes):
        client.set(key, value)
    elif isinstance(value, deque):
        for start in range(0, len(value), 1000):
            client.rpush(key, *list(value)[start:start + 1000])
    elif isinstance(value, dict):
        client.hset(key, mapping=value)
    elif isinstance(value, set):
        client.sadd(key, *value)
    else:
        client.zadd(key, {m: s for m, s in value.items()})


# ------------------------------------------------------------ our dump -> Redis

@pytest.mark.parametrize("compress", [True, False])
def test_redis_loads_our_dump(tmp_path, start_redis, compress):
    now = int(time.time() * 1000)
    dbs = {0: dataset(1), 1: {b"only-in-db1": b"1", b"ttl-hash": {b"a": b"b"}}, 7: dataset(2)}
    expires = {0: {b"str": now + 3_600_000, b"list-big": now + 7_200_000,
                   b"gone": now - 1000, b"zset-big": now + 60_000},
               1: {b"ttl-hash": now + 100_000}, 7: {}}
    dbs[0][b"gone"] = b"already expired"
    workdir = tmp_path / "redis"
    workdir.mkdir()
    path = workdir / "dump.rdb"
    rdb.dump_to_file(path, [(dbid, data, expires[dbid]) for dbid, data in dbs.items()],
                     {"redis-ver": "7.0.15", "redis-bits": 64, "ctime": now // 1000,
                      "used-mem": 1 << 20, "aof-base": 0},
                     [LIB], compress=compress)
    output = check_rdb(path)
    assert "Checksum OK" in output

    server = start_redis("--dbfilename", "dump.rdb", "--sanitize-dump-payload", "yes",
                         workdir=str(workdir))
    log = server.output()
    assert "Done loading RDB" in log, log
    for dbid, data in dbs.items():
        client = server.client(db=dbid)
        expected_keys = {k for k in data if k != b"gone"}
        assert set(client.keys()) == expected_keys
        for key in expected_keys:
            assert read_back(client, key) == plain(data[key]), key
            deadline = expires[dbid].get(key)
            assert client.pexpiretime(key) == (deadline if deadline is not None else -1), key
        client.close()
    client = server.client()
    libraries = client.function_list()
    # RESP2 replies: each library is a flat [name, value, ...] list
    assert [lib[lib.index(b"library_name") + 1] for lib in libraries] == [b"hakvlib"]
    assert client.fcall("hello", 0) == b"hi"
    # and Redis re-saves it fine (its own writer over what it loaded)
    assert client.save()
    client.close()


def test_redis_loads_our_dump_without_checksum(tmp_path, start_redis):
    workdir = tmp_path / "redis"
    workdir.mkdir()
    rdb.dump_to_file(workdir / "dump.rdb", [(0, {b"k": b"v", b"h": {b"f": b"1"}}, {})],
                     checksum=False)
    assert (workdir / "dump.rdb").read_bytes()[-8:] == bytes(8)
    server = start_redis("--dbfilename", "dump.rdb", workdir=str(workdir))
    client = server.client()
    assert client.get(b"k") == b"v" and client.hgetall(b"h") == {b"f": b"1"}
    client.close()


def compressible_strings(seed: int, count: int = 300) -> dict:
    """Strings that exercise LZF: short and long, literal runs, near and far
    (up to the 8 KiB window) repeats, long matches, overlapping runs."""
    rng = random.Random(seed)
    words = [rng.randbytes(rng.randint(1, 12)) for _ in range(40)]
    out = {}
    for i in range(count):
        size = rng.choice([21, 22, 30, 64, 100, 1000, 5000, 9000, 20_000, 100_000])
        parts = []
        total = 0
        while total < size:
            pick = rng.random()
            if pick < 0.5:
                part = rng.choice(words)
            elif pick < 0.7:
                part = rng.randbytes(rng.randint(1, 40))
            elif pick < 0.85:
                part = bytes([rng.randrange(256)]) * rng.randint(1, 600)
            else:
                part = b"".join(parts)[-rng.randint(1, 9000):][:rng.randint(3, 300)] or b"x"
            parts.append(part)
            total += len(part)
        out[b"lzf:%d" % i] = b"".join(parts)[:size]
    return out


def test_redis_reads_our_lzf_strings(tmp_path, start_redis):
    strings = compressible_strings(11)
    workdir = tmp_path / "redis"
    workdir.mkdir()
    rdb.dump_to_file(workdir / "dump.rdb", [(0, strings, {})], lzf_try_ratio=1.0)
    compressed = sum(1 for v in strings.values() if rdb._encode_string(v, rdb._Lzf(1.0))[0] == 0xC3)
    assert compressed > len(strings) // 2
    server = start_redis("--dbfilename", "dump.rdb", workdir=str(workdir))
    client = server.client()
    for key, value in strings.items():
        assert client.get(key) == value, key
    client.close()


def test_we_read_redis_lzf_strings(start_redis):
    strings = compressible_strings(12)
    server = start_redis("--dbfilename", "dump.rdb", "--rdbcompression", "yes")
    client = server.client()
    client.mset(strings)
    assert client.save()
    client.close()
    got = {e.key: e.value for e in rdb.load_file(os.path.join(server.workdir, "dump.rdb"))
           if isinstance(e, Key)}
    assert got == strings


# ------------------------------------------------------------ Redis's dump -> us

@pytest.mark.parametrize("compression", ["yes", "no"])
def test_we_load_redis_dump(start_redis, compression):
    server = start_redis("--dbfilename", "dump.rdb", "--rdbcompression", compression)
    expected = {0: dataset(3), 4: dataset(4)}
    expires = {}
    far = int(time.time() * 1000) + 86_400_000
    for dbid, data in expected.items():
        client = server.client(db=dbid)
        pipe = client.pipeline(transaction=False)
        for key, value in data.items():
            put(pipe, key, value)
        pipe.execute()
        for i, key in enumerate(sorted(data)):
            if i % 3 == 0:
                client.pexpireat(key, far + i)
                expires[(dbid, key)] = far + i
        client.close()
    client = server.client()
    client.function_load(LIB.decode())
    encodings = {client.object("encoding", key) for key in expected[0]}
    # the dataset covers every encoding Redis 7.0 writes
    assert encodings == {b"embstr", b"int", b"raw", b"quicklist", b"listpack", b"hashtable",
                         b"intset", b"skiplist"}
    assert client.save()
    client.close()

    events = list(rdb.load_file(os.path.join(server.workdir, "dump.rdb")))
    aux = {e.name: e.value for e in events if isinstance(e, Aux)}
    assert aux[b"redis-ver"] == b"7.0.15" and aux[b"redis-bits"] == b"64"
    assert [e.code for e in events if isinstance(e, Function)] == [LIB]
    got = {(e.db, e.key): (plain(e.value), e.expire_ms) for e in events if isinstance(e, Key)}
    want = {(dbid, k): (plain(v), expires.get((dbid, k)))
            for dbid, data in expected.items() for k, v in data.items()}
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == want[k], k


def test_we_load_redis_dump_into_dicts(start_redis):
    server = start_redis("--dbfilename", "dump.rdb")
    client = server.client()
    pipe = client.pipeline(transaction=False)
    for i in range(20_000):
        pipe.set(b"key:%d" % i, b"value:%d" % i)
        if i % 10 == 0:
            pipe.pexpire(b"key:%d" % i, 10_000_000 + i)
    pipe.execute()
    deadlines = {k: client.pexpiretime(k) for k in (b"key:%d" % i for i in range(0, 20_000, 10))}
    assert client.save()
    client.close()
    data, expires = {}, {}
    leftovers = list(rdb.load_file(os.path.join(server.workdir, "dump.rdb"),
                                   into=lambda dbid: (data, expires)))
    assert not [e for e in leftovers if isinstance(e, Key)]
    assert data == {b"key:%d" % i: b"value:%d" % i for i in range(20_000)}
    assert expires == deadlines


def test_we_load_redis_dump_with_the_prefetch_helper(start_redis, monkeypatch):
    """The helper process decoding Redis's compact values ahead of the loader
    (rdb_prefetch; used for big files only, here for any): the same values."""
    from hakv.common import rdb_prefetch

    server = start_redis("--dbfilename", "dump.rdb")
    client = server.client()
    pipe = client.pipeline(transaction=False)
    for key, value in dataset(5).items():
        put(pipe, key, value)
    for i in range(3000):  # many small values of each compact encoding
        put(pipe, b"h%d" % i, {b"field-%d" % j: b"value-%d" % (i * j) for j in range(i % 9 + 1)})
        put(pipe, b"l%d" % i, deque(b"item-%d" % j for j in range(i % 9 + 1)))
        put(pipe, b"s%d" % i, {b"%d" % (i + j) for j in range(i % 9 + 1)})
        put(pipe, b"z%d" % i, zset((b"m%d" % j, j * 1.5 + i) for j in range(i % 9 + 1)))
        put(pipe, b"t%d" % i, b"a string of some length, compressible %d" % i + b"!" * 40)
    pipe.execute()
    assert client.save()
    client.close()
    path = os.path.join(server.workdir, "dump.rdb")

    def values():
        return {(e.db, e.key): plain(e.value) for e in rdb.load_file(path) if isinstance(e, Key)}

    alone = values()
    monkeypatch.setattr(rdb_prefetch, "MIN_FILE_SIZE", 0)
    assert values() == alone
    assert len(alone) == len(dataset(5)) + 5 * 3000


# ------------------------------------------------------------ DUMP / RESTORE

def test_dump_payloads_both_ways(start_redis):
    server = start_redis("--sanitize-dump-payload", "yes")
    client = server.client()
    for key, value in dataset(5).items():
        put(client, key, value)
        payload = client.dump(key)
        assert plain(rdb.load_payload(payload)) == plain(value), key
        for compress in (True, False):
            ours = rdb.dump_payload(value, compress=compress)
            client.restore(b"copy", 0, ours, replace=True)
            assert read_back(client, b"copy") == plain(value), key
    client.close()


@pytest.mark.parametrize("key, value", [
    (b"s", b"some string"), (b"i8", b"100"), (b"i16", b"-30000"), (b"i32", b"2000000000"),
    (b"i64", b"20000000000"), (b"long", b"x" * 200),
    (b"l", deque([b"a", b"12", b"-5000", b"100000", b"y" * 100])),
    (b"h", {b"f1": b"v1", b"f2": b"2", b"f3": b"-70000"}),
    (b"is16", {b"1", b"-2", b"300"}), (b"is32", {b"1", b"100000"}),
    (b"is64", {b"-1", b"10000000000"}),
    (b"z", zset([(b"a", 1), (b"b", 1.5), (b"c", 0.1), (b"d", -2), (b"e", float("inf")),
                 (b"f", 1e20), (b"g", 4611686018427387904.0), (b"h", -0.0)])),
    (b"hbig", {b"f": b"v" * 70}),
])
def test_payloads_are_byte_identical_without_compression(start_redis, key, value):
    server = start_redis("--rdbcompression", "no")
    client = server.client()
    put(client, key, value)
    assert client.dump(key) == rdb.dump_payload(value, compress=False)
    client.close()


def test_payload_error_texts_match_redis(start_redis):
    server = start_redis()
    client = server.client()
    good = rdb.dump_payload({b"a", b"b"})
    bad_crc = good[:-1] + bytes([good[-1] ^ 0xFF])
    body = b"\x10\x03abc\x0a\x00"                       # a hash listpack that is not one
    bad_format = body + rdb.crc64(body).to_bytes(8, "little")
    for payload in (bad_crc, b"tiny", bad_format):
        with pytest.raises(redis.ResponseError) as from_redis:
            client.restore(b"k", 0, payload)
        with pytest.raises(rdb.RdbError) as from_us:
            rdb.load_payload(payload)
        assert str(from_redis.value) == str(from_us.value)
    client.close()
