"""Differential test: hashes, lists and sets against the real redis-server.

A seeded random stream of commands over a handful of shared keys (so types
collide and WRONGTYPE paths run) goes to hakv and to Redis 7.0; every reply
must be identical, byte-level types included (null bulk vs null array, RESP3
maps/sets/doubles), after normalizing what Redis leaves unordered (SMEMBERS,
SINTER, HKEYS, HGETALL ...). Random commands are checked for shape and
membership instead, and SPOP is mirrored: hakv pops, Redis then removes the
members hakv popped (which must all have been there). Both datasets are
compared in full every few dozen commands and at the end.

Run by hand with another seed: HAKV_DIFF_SEED=7 HAKV_DIFF_N=20000 pytest ...
"""

from __future__ import annotations

import os
import random

import pytest

from types_support import NIL_BULK, NULL, Err, RespConn, encode

pytestmark = pytest.mark.interop

SEED = int(os.environ.get("HAKV_DIFF_SEED", "20240611"))
N = int(os.environ.get("HAKV_DIFF_N", "3000"))

# ------------------------------------------------------------------ the random stream

# Each family mostly works on its own keys; the shared ones (and now and
# then another family's) make types collide for the WRONGTYPE paths.
SHARED = [b"k1", b"k2"]
FAMILY_KEYS = {"hash": [b"h1", b"h2"], "list": [b"l1", b"l2", b"l3"], "set": [b"s1", b"s2", b"s3"]}
KEYS = SHARED + [k for keys in FAMILY_KEYS.values() for k in keys]
MEMBERS = [b"a", b"b", b"c", b"d", b"e", b"1", b"2", b"10", b"-3", b"", b"a b"]
INTS = [b"x", b"", b"1.5", b"+1", b"01", b"9223372036854775807", b"-9223372036854775808",
        b"9223372036854775808", b" 1"]
FLOATS = [b"0.1", b"1.5", b"-2.25", b"1e3", b"3", b"inf", b"-inf", b"nan", b"x", b"1e-5",
          b".5", b"5.", b"0x10", b"1e400", b"", b"0.30000000000000004"]
TIMEOUTS = [b"0.01", b"0.001", b"-1", b"x", b"inf", b"0.002"]


def _int(rng, lo=-4, hi=6) -> bytes:
    if rng.random() < 0.08:
        return rng.choice(INTS)
    return b"%d" % rng.randint(lo, hi)


def _members(rng, lo=1, hi=4) -> list:
    return [rng.choice(MEMBERS) for _ in range(rng.randint(lo, hi))]


_family = "hash"


def _key(rng) -> bytes:
    r = rng.random()
    if r < 0.8:
        return rng.choice(FAMILY_KEYS[_family])
    if r < 0.95:
        return rng.choice(SHARED)
    return _key(rng)


def _keys(rng, lo=1, hi=3) -> list:
    return [_key(rng) for _ in range(rng.randint(lo, hi))]


def _side(rng) -> bytes:
    return rng.choice([b"LEFT", b"RIGHT", b"left", b"right"] + ([b"up"] if rng.random() < 0.05
                                                              else []))


def _scan_opts(rng) -> list:
    opts = []
    if rng.random() < 0.4:
        opts += [b"MATCH", rng.choice([b"*", b"a*", b"?", b"[a-c]", b"1*", b"*0"])]
    if rng.random() < 0.4:
        opts += [b"COUNT", rng.choice([b"1", b"2", b"10", b"0", b"x", b"-1"])]
    if rng.random() < 0.03:
        opts += [rng.choice([b"TYPE", b"NOVALUES", b"COUNT"])]
    return opts


def _count_opts(rng, word: bytes) -> list:
    if rng.random() < 0.5:
        return []
    return [word, rng.choice([b"1", b"2", b"3", b"10", b"0", b"-1", b"x"])]


def gen_hash(rng):
    k = _key(rng)
    f = rng.choice(MEMBERS)
    choice = rng.randrange(17)
    if choice == 0:
        pairs = []
        for _ in range(rng.randint(1, 3)):
            pairs += [rng.choice(MEMBERS), rng.choice(MEMBERS + [b"7", b"-2"])]
        if rng.random() < 0.05:
            pairs.pop()
        return [rng.choice([b"HSET", b"hset", b"HMSET"]), k] + pairs
    if choice == 1:
        return [b"HSETNX", k, f, rng.choice(MEMBERS)]
    if choice == 2:
        return [b"HGET", k, f]
    if choice == 3:
        return [b"HMGET", k] + _members(rng)
    if choice == 4:
        return [b"HDEL", k] + _members(rng)
    if choice == 5:
        return [b"HLEN", k]
    if choice == 6:
        return [b"HEXISTS", k, f]
    if choice == 7:
        return [rng.choice([b"HKEYS", b"HVALS", b"HGETALL"]), k]
    if choice == 8:
        return [b"HINCRBY", k, f, _int(rng, -5, 5)]
    if choice == 9:
        return [b"HINCRBYFLOAT", k, f, rng.choice(FLOATS)]
    if choice == 10:
        return [b"HSTRLEN", k, f]
    if choice == 11:
        argv = [b"HRANDFIELD", k]
        if rng.random() < 0.8:
            argv.append(_int(rng, -6, 6))
            if rng.random() < 0.5:
                argv.append(rng.choice([b"WITHVALUES", b"withvalues", b"novalues"]))
        return argv
    if choice == 12:
        return [b"HSCAN", k, rng.choice([b"0", b"0", b"0", b"x", b"-x", b"18446744073709551616"])
                ] + _scan_opts(rng)
    if choice == 13:
        return [b"HSET", k, f]  # arity error
    if choice == 14:
        return [b"HINCRBY", k, f, rng.choice([b"9223372036854775807", b"-9223372036854775808"])]
    if choice == 15:
        return [b"HSET", k, f, rng.choice([b"9223372036854775806", b"1e4930", b"abc", b"inf"])]
    return [b"HRANDFIELD", k, rng.choice([b"-9223372036854775808", b"-4611686018427387904"]),
            b"WITHVALUES"]


def gen_list(rng):
    k = _key(rng)
    choice = rng.randrange(24)
    if choice in (0, 1):
        return [rng.choice([b"LPUSH", b"RPUSH"]), k] + _members(rng)
    if choice == 2:
        return [rng.choice([b"LPUSHX", b"RPUSHX"]), k] + _members(rng)
    if choice == 3:
        argv = [rng.choice([b"LPOP", b"RPOP"]), k]
        if rng.random() < 0.5:
            argv.append(_int(rng, -1, 4))
        if rng.random() < 0.03:
            argv.append(b"1")
        return argv
    if choice == 4:
        return [b"LLEN", k]
    if choice in (5, 6):
        return [b"LRANGE", k, _int(rng, -8, 8), _int(rng, -8, 8)]
    if choice == 7:
        return [b"LINDEX", k, _int(rng, -6, 6)]
    if choice == 8:
        return [b"LSET", k, _int(rng, -6, 6), rng.choice(MEMBERS)]
    if choice == 9:
        return [b"LREM", k, _int(rng, -3, 3), rng.choice(MEMBERS)]
    if choice == 10:
        return [b"LTRIM", k, _int(rng, -6, 6), _int(rng, -6, 6)]
    if choice == 11:
        return [b"LINSERT", k, rng.choice([b"BEFORE", b"after", b"middle"]),
                rng.choice(MEMBERS), rng.choice(MEMBERS)]
    if choice == 12:
        argv = [b"LPOS", k, rng.choice(MEMBERS)]
        for word in (b"RANK", b"COUNT", b"MAXLEN"):
            if rng.random() < 0.4:
                argv += [word, _int(rng, -3, 3)]
        if rng.random() < 0.05:
            argv.append(b"RANK")
        rng.shuffle(argv[3:]) if rng.random() < 0.02 else None
        return argv
    if choice == 13:
        return [b"LMOVE", k, _key(rng), _side(rng), _side(rng)]
    if choice == 14:
        return [b"RPOPLPUSH", k, _key(rng)]
    if choice == 15:
        keys = _keys(rng)
        n = str(len(keys) + (rng.choice([0, 0, 0, 1, -1, -len(keys)]))).encode()
        return [b"LMPOP", n] + keys + [_side(rng)] + _count_opts(rng, b"COUNT")
    if choice == 16:
        return [rng.choice([b"BLPOP", b"BRPOP"])] + _keys(rng) + [rng.choice(TIMEOUTS)]
    if choice == 17:
        return [b"BLMOVE", k, _key(rng), _side(rng), _side(rng), rng.choice(TIMEOUTS)]
    if choice == 18:
        return [b"BRPOPLPUSH", k, _key(rng), rng.choice(TIMEOUTS)]
    if choice == 19:
        keys = _keys(rng)
        return [b"BLMPOP", rng.choice(TIMEOUTS), str(len(keys)).encode()] + keys + [
            _side(rng)] + _count_opts(rng, b"COUNT")
    if choice == 20:
        return [b"LPOS", k, rng.choice(MEMBERS), b"RANK", rng.choice(
            [b"0", b"-9223372036854775808", b"2", b"-2"]), b"COUNT", rng.choice([b"0", b"2"])]
    if choice == 21:
        return [b"RPUSH", k] + _members(rng, 5, 12)
    if choice == 22:
        return [b"LRANGE", k, b"0", b"-1"]
    return [b"LINDEX", k, rng.choice([b"9223372036854775807", b"-9223372036854775808"])]


def gen_set(rng):
    k = _key(rng)
    m = rng.choice(MEMBERS)
    choice = rng.randrange(19)
    if choice in (0, 1):
        return [b"SADD", k] + _members(rng, 1, 6)
    if choice == 2:
        return [b"SREM", k] + _members(rng)
    if choice == 3:
        return [b"SCARD", k]
    if choice == 4:
        return [b"SISMEMBER", k, m]
    if choice == 5:
        return [b"SMISMEMBER", k] + _members(rng)
    if choice == 6:
        return [b"SMEMBERS", k]
    if choice == 7:
        argv = [b"SRANDMEMBER", k]
        if rng.random() < 0.8:
            argv.append(_int(rng, -6, 6))
        if rng.random() < 0.03:
            argv.append(b"1")
        return argv
    if choice == 8:
        argv = [b"SPOP", k]
        if rng.random() < 0.6:
            argv.append(_int(rng, -1, 4))
        if rng.random() < 0.03:
            argv.append(b"1")
        return argv
    if choice == 9:
        return [b"SMOVE", k, _key(rng), m]
    if choice in (10, 11):
        return [rng.choice([b"SINTER", b"SUNION", b"SDIFF"])] + _keys(rng)
    if choice == 12:
        keys = _keys(rng)
        n = str(len(keys) + rng.choice([0, 0, 0, 1, -1])).encode()
        argv = [b"SINTERCARD", n] + keys
        if rng.random() < 0.5:
            argv += [b"LIMIT", rng.choice([b"0", b"1", b"2", b"-1", b"x"])]
        return argv
    if choice == 13:
        return [rng.choice([b"SINTERSTORE", b"SUNIONSTORE", b"SDIFFSTORE"]),
                _key(rng)] + _keys(rng)
    if choice == 14:
        return [b"SSCAN", k, rng.choice([b"0", b"0", b"0", b"x", b"-x"])] + _scan_opts(rng)
    if choice == 15:
        return [b"SADD", k] + [rng.choice([b"1", b"2", b"3", b"100", b"-7", b"5", b"6"])
                               for _ in range(rng.randint(3, 9))]
    if choice == 16:
        return [b"SRANDMEMBER", k, b"-9223372036854775808"]
    if choice == 17:
        return [b"SPOP", k, rng.choice([b"9223372036854775807", b"0", b"x"])]
    return [b"SMISMEMBER", k]


def gen_generic(rng):
    k = rng.choice(KEYS)
    choice = rng.randrange(4)
    if choice == 0:
        return [b"SET", rng.choice(SHARED), rng.choice(MEMBERS)]
    if choice == 1:
        return [b"DEL", k]
    if choice == 2:
        return [b"TYPE", k]
    return [b"EXISTS"] + KEYS


def gen_command(rng):
    global _family
    r = rng.random()
    if r < 0.31:
        _family = "hash"
        return gen_hash(rng)
    if r < 0.66:
        _family = "list"
        return gen_list(rng)
    if r < 0.97:
        _family = "set"
        return gen_set(rng)
    return gen_generic(rng)


# ------------------------------------------------------------------ comparison

UNORDERED = {b"SMEMBERS", b"SINTER", b"SUNION", b"SDIFF", b"HKEYS", b"HVALS"}
RANDOM = {b"SRANDMEMBER", b"HRANDFIELD"}


def _sorted_items(value):
    """Order-insensitive form of an array / set / map reply."""
    if isinstance(value, list):
        return sorted(value, key=repr)
    if isinstance(value, tuple) and value[0] in ("set", "map"):
        return (value[0], sorted(value[1], key=repr))
    return value


def normalize(argv, reply):
    name = argv[0].upper()
    if isinstance(reply, Err):
        return reply
    if name in UNORDERED:
        return _sorted_items(reply)
    if name == b"HGETALL":
        if isinstance(reply, list):  # RESP2: flat pairs
            return sorted(zip(reply[::2], reply[1::2]))
        return _sorted_items(reply)
    return reply


def dataset(conn) -> dict:
    """Every key of db 0 with its type and content, in comparable form."""
    out = {}
    keys = conn.call(b"KEYS", b"*")
    if isinstance(keys, tuple):  # RESP3 set
        keys = keys[1]
    for key in keys:
        kind = conn.call(b"TYPE", key)[1]
        if kind == b"list":
            content = conn.call(b"LRANGE", key, b"0", b"-1")
        elif kind == b"hash":
            content = conn.call(b"HGETALL", key)
            content = sorted(content[1]) if isinstance(content, tuple) else sorted(
                zip(content[::2], content[1::2]))
        elif kind == b"set":
            content = conn.call(b"SMEMBERS", key)
            content = sorted(content[1] if isinstance(content, tuple) else content)
        else:
            content = conn.call(b"GET", key)
        out[key] = (kind, content)
    return out


def _flat(reply) -> list:
    if isinstance(reply, tuple) and reply[0] in ("set", "map"):
        return list(reply[1])
    return reply if isinstance(reply, list) else []


def check_random(argv, hk, rd, before) -> None:
    """SRANDMEMBER / HRANDFIELD: same errors; else same shape, and every
    element comes from the collection as it was."""
    if isinstance(rd, Err) or isinstance(hk, Err):
        assert hk == rd
        return
    name = argv[0].upper()
    if not isinstance(rd, list):
        assert rd == hk or (isinstance(hk, bytes) and isinstance(rd, bytes)), (hk, rd)
        if isinstance(hk, bytes):
            assert hk in before
        return
    assert isinstance(hk, list) and len(hk) == len(rd), (hk, rd)
    withvalues = name == b"HRANDFIELD" and len(argv) == 4
    if withvalues:
        pairs = [tuple(p) for p in hk] if hk and isinstance(hk[0], list) else list(
            zip(hk[::2], hk[1::2]))
        rd_nested = bool(rd) and isinstance(rd[0], list)
        assert bool(hk) and isinstance(hk[0], list) == rd_nested or not hk
        for field, value in pairs:
            assert before.get(field) == value, (field, value)
        fields = [f for f, _ in pairs]
    else:
        fields = hk
        for f in fields:
            assert f in before, f
    if int(argv[2]) > 0:
        assert len(set(fields)) == len(fields), fields


def run_stream(hk: RespConn, rd: RespConn, seed: int, n: int) -> None:
    rng = random.Random(seed)
    for i in range(n):
        argv = gen_command(rng)
        name = argv[0].upper()
        where = "command #%d %r" % (i, argv)
        if name == b"SPOP":
            got = hk.call(*argv)
            if isinstance(got, Err) or got in (NIL_BULK, NULL) or _flat(got) == [] and not \
                    isinstance(got, bytes):
                assert rd.call(*argv) == got, where
            else:
                popped = [got] if isinstance(got, bytes) else _flat(got)
                assert rd.call(b"SREM", argv[1], *popped) == len(popped), where
                # Same reply kind as Redis would give.
                assert isinstance(got, bytes) == (len(argv) == 2), where
        elif name in RANDOM:
            key = argv[1]
            kind = rd.call(b"TYPE", key)[1]
            if name == b"HRANDFIELD" and kind == b"hash":
                content = rd.call(b"HGETALL", key)
                pairs = content[1] if isinstance(content, tuple) else list(
                    zip(content[::2], content[1::2]))
                before = dict(pairs)
            elif kind == b"set":
                content = rd.call(b"SMEMBERS", key)
                before = dict.fromkeys(_flat(content) if isinstance(content, tuple) else content)
            else:
                before = {}
            h_reply, r_reply = hk.call(*argv), rd.call(*argv)
            try:
                check_random(argv, h_reply, r_reply, before)
            except AssertionError as exc:
                raise AssertionError("%s: hakv %r redis %r (%s)" % (where, h_reply, r_reply,
                                                                     exc)) from None
        elif name in (b"HSCAN", b"SSCAN"):
            h_all, r_all = scan_all(hk, argv), scan_all(rd, argv)
            assert h_all == r_all, "%s: hakv %r redis %r" % (where, h_all, r_all)
        else:
            h_reply, r_reply = hk.call(*argv), rd.call(*argv)
            h_norm, r_norm = normalize(argv, h_reply), normalize(argv, r_reply)
            assert h_norm == r_norm, "%s: hakv %r redis %r" % (where, h_reply, r_reply)
        if i % 50 == 49:
            assert dataset(hk) == dataset(rd), "datasets differ after " + where
    assert dataset(hk) == dataset(rd)


def scan_all(conn, argv):
    """A whole HSCAN/SSCAN iteration from argv's cursor: the error, or the
    sorted elements (pairs for HSCAN) seen."""
    seen = []
    cursor = argv[2]
    for _ in range(1000):
        reply = conn.call(argv[0], argv[1], cursor, *argv[3:])
        if isinstance(reply, Err):
            return reply
        cursor, items = reply
        if argv[0].upper() == b"HSCAN":
            seen += list(zip(items[::2], items[1::2]))
        else:
            seen += items
        if cursor == b"0":
            break
    return sorted(set(seen))


# ------------------------------------------------------------------ tests


@pytest.fixture
def pair(hakv, real_redis):
    conns = []

    def make(resp3: bool):
        hk, rd = RespConn(hakv.port), RespConn(real_redis.port)
        conns.extend((hk, rd))
        if resp3:
            hk.call(b"HELLO", b"3")
            rd.call(b"HELLO", b"3")
        return hk, rd

    yield make
    for c in conns:
        c.close()


@pytest.mark.parametrize("resp3", [False, True], ids=["resp2", "resp3"])
def test_random_stream_matches_redis(pair, resp3):
    hk, rd = pair(resp3)
    run_stream(hk, rd, SEED + resp3, N if not resp3 else N // 2)


def test_bigger_collections_match_redis(pair):
    """Collections past the small encodings (listpack/intset limits): scans
    with cursors, SINTER over big sets, long lists."""
    hk, rd = pair(False)
    rng = random.Random(SEED)
    for conn in (hk, rd):
        for chunk in range(0, 3000, 500):
            members = [b"m%d" % i for i in range(chunk, chunk + 500)]
            conn.call(b"SADD", b"big1", *members)
            conn.call(b"SADD", b"big2", *members[::3])
            conn.call(b"RPUSH", b"list", *members)
            pairs = []
            for m in members[:300]:
                pairs += [m, m + b"-value"]
            conn.call(b"HSET", b"hash", *pairs)
        conn.call(b"SADD", b"ints", *[b"%d" % i for i in range(300)])
    checks = [
        [b"SINTER", b"big1", b"big2"], [b"SDIFF", b"big1", b"big2"],
        [b"SUNION", b"big1", b"big2"], [b"SINTERCARD", b"2", b"big1", b"big2"],
        [b"SINTERCARD", b"2", b"big1", b"big2", b"LIMIT", b"7"],
        [b"SINTERSTORE", b"dst", b"big1", b"big2"], [b"SCARD", b"dst"],
        [b"LRANGE", b"list", b"100", b"2900"], [b"LRANGE", b"list", b"-10", b"-1"],
        [b"LINDEX", b"list", b"1500"], [b"LPOS", b"list", b"m2999", b"RANK", b"-1"],
        [b"LPOS", b"list", b"m5", b"MAXLEN", b"3"], [b"HLEN", b"hash"],
        [b"LTRIM", b"list", b"10", b"-10"], [b"LLEN", b"list"],
        [b"LREM", b"list", b"0", b"m100"], [b"LREM", b"list", b"-1", b"m2000"],
        [b"LINSERT", b"list", b"BEFORE", b"m1000", b"new"], [b"LSET", b"list", b"-5", b"x"],
        [b"LRANGE", b"list", b"990", b"1010"], [b"SMEMBERS", b"ints"],
    ]
    for argv in checks:
        assert normalize(argv, hk.call(*argv)) == normalize(argv, rd.call(*argv)), argv
    for argv in ([b"SSCAN", b"big1", b"0", b"COUNT", b"100"], [b"SSCAN", b"ints", b"0"],
                 [b"HSCAN", b"hash", b"0", b"MATCH", b"m1*"],
                 [b"SSCAN", b"big2", b"0", b"MATCH", b"*7"]):
        assert scan_all(hk, argv) == scan_all(rd, argv), argv
    # Small intsets and listpacks come back whole in one call, cursor 0.
    assert hk.call(b"SSCAN", b"ints", b"0")[0] == rd.call(b"SSCAN", b"ints", b"0")[0] == b"0"
    for _ in range(150):
        argv = [b"SPOP", b"big1", b"%d" % rng.randint(1, 30)]
        popped = _flat(hk.call(*argv))
        assert popped and rd.call(b"SREM", b"big1", *popped) == len(popped)
    for _ in range(100):
        member = hk.call(b"SPOP", b"big1")
        assert rd.call(b"SREM", b"big1", member) == 1
    assert dataset(hk) == dataset(rd)


# ------------------------------------------------------- in-process hakv: events, propagation


class Capture:
    """A propagation sink: what replicas and the AOF would receive."""

    def __init__(self):
        self.chunks: list = []

    def feed(self, items):
        for dbid, data in items:
            assert dbid == 0
            self.chunks.append(data)


def in_process_server():
    """A hakv Server without sockets; commands go through the real dispatcher."""
    from hakv.common.config import Settings
    from hakv.common.connection import Client
    from hakv.common.node import load_families
    from hakv.common.server import Server

    load_families()
    server = Server(Settings())
    return server, Client(server)


BLOCKING = {b"BLPOP", b"BRPOP", b"BLMOVE", b"BRPOPLPUSH", b"BLMPOP"}


def run_in_process(server, client, argv):
    """One command on the in-process server. Blocking commands run as inside
    MULTI (no event loop here): they pop if they can, else answer at once."""
    from hakv.common import dispatch

    if argv[0].upper() in BLOCKING:
        client.in_exec = True
        try:
            reply = dispatch.execute(client, argv)
        finally:
            client.in_exec = False
        server.flush_propagation()
        return reply
    return dispatch.execute(client, argv)


def in_process_dataset(server) -> dict:
    from collections import deque

    out = {}
    for key, value in server.keyspace[0].data.items():
        if isinstance(value, deque):
            out[key] = (b"list", list(value))
        elif isinstance(value, dict):
            out[key] = (b"hash", sorted(value.items()))
        elif isinstance(value, set):
            out[key] = (b"set", sorted(value))
        else:
            out[key] = (b"string", value)
    return out


def test_propagated_stream_rebuilds_the_same_data(real_redis):
    """Everything hakv propagates (SPOP as SREM/DEL, HINCRBYFLOAT as HSET,
    blocking pops as LPOP/RPOP/LMOVE, LMPOP as [LR]POP ...) replayed on a real
    Redis gives exactly hakv's dataset: the stream is deterministic."""
    server, client = in_process_server()
    capture = Capture()
    server.add_sink(capture)
    rng = random.Random(SEED + 11)
    for _ in range(N):
        run_in_process(server, client, gen_command(rng))
    rd = RespConn(real_redis.port)
    try:
        assert capture.chunks
        rd.call(b"CONFIG", b"RESETSTAT")  # redis-py's readiness probe left errors
        rd.sock.sendall(encode([b"CLIENT", b"REPLY", b"OFF"]) + b"".join(capture.chunks)
                        + encode([b"CLIENT", b"REPLY", b"ON"]))
        assert rd.read() == ("status", b"OK")
        stats = rd.call(b"INFO", b"stats")
        assert b"total_error_replies:0\r\n" in stats, rd.call(b"INFO", b"errorstats")
        assert dataset(rd) == in_process_dataset(server)
    finally:
        rd.close()


EVENT_CLASS = {
    b"hset": "h", b"hdel": "h", b"hincrby": "h", b"hincrbyfloat": "h",
    b"lpush": "l", b"rpush": "l", b"lpop": "l", b"rpop": "l", b"linsert": "l", b"lset": "l",
    b"lrem": "l", b"ltrim": "l",
    b"sadd": "s", b"srem": "s", b"spop": "s", b"sinterstore": "s", b"sunionstore": "s",
    b"sdiffstore": "s",
    b"del": "g", b"set": "$",
}


def test_keyspace_events_match_redis(real_redis):
    """The same deterministic stream on Redis (notify-keyspace-events KEA)
    and on hakv yields the same events, in the same order, with the event
    class Redis files them under."""
    server, client = in_process_server()
    events = []
    server.keyspace.notify = lambda db, cls, event, key: events.append((cls, event, key))
    rd = RespConn(real_redis.port)
    sub = RespConn(real_redis.port)
    try:
        rd.call(b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA")
        sub.call(b"PSUBSCRIBE", b"__keyevent@0__:*")
        rng = random.Random(SEED + 5)
        sent = 0
        while sent < N // 2:
            argv = gen_command(rng)
            if argv[0].upper() in RANDOM or argv[0].upper() == b"SPOP":
                continue
            run_in_process(server, client, argv)
            rd.call(*argv)
            sent += 1
        rd.call(b"PUBLISH", b"__keyevent@0__:marker", b"end")
        got = []
        while True:
            msg = sub.read()
            assert msg[0] == b"pmessage", msg
            event = (msg[2].split(b":", 1)[1], msg[3])
            if event == (b"marker", b"end"):
                break
            got.append(event)
        assert [(event, key) for _, event, key in events] == got
        for cls, event, key in events:
            assert EVENT_CLASS[event] == cls, (event, cls)
    finally:
        rd.close()
        sub.close()
