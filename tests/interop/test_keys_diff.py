"""Differential test: the same seeded random command stream goes to a real
redis-server and to hakv, and every reply must be the same.

The stream covers the generic key commands (keys.py), the bit and LCS
commands (bits.py) and the string commands (strings.py), errors included:
wrong types, bad arguments, arity mistakes. Values of every type are made
with RESTORE from the same payload on both sides. Replies are read raw (a
socket and hiredis), so the comparison sees exactly what a client sees.

What Redis leaves unspecified is normalized: KEYS and full SCAN iterations are
compared as sorted lists, RANDOMKEY only as "a key or nil", TTLs within a
second (the two servers get each command a few microseconds apart). OBJECT
IDLETIME and OBJECT HELP are not compared (hakv does not track accesses on
GET/SET; its help text is its own).
"""

from __future__ import annotations

import random
import socket
import time
from collections import deque

import hiredis
import pytest

from hakv.common.rdb import dump_payload, load_payload
from hakv.common.types.zset import ZSet

from procs import hakv_server

pytestmark = pytest.mark.interop


# ------------------------------------------------------------------ raw clients


class Raw:
    """A minimal RESP client: exact replies, errors as Err values."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.reader = hiredis.Reader()

    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        while True:
            reply = self.reader.gets()
            if reply is not False:
                return normalize(reply)
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed the connection")
            self.reader.feed(data)

    def close(self):
        self.sock.close()


class Err(str):
    """An error reply (compared by its text)."""

    def __repr__(self):
        return "Err(%s)" % str.__repr__(self)


def normalize(reply):
    if isinstance(reply, hiredis.ReplyError):
        return Err(str(reply))
    if isinstance(reply, list):
        return [normalize(x) for x in reply]
    if isinstance(reply, dict):
        return {normalize(k): normalize(v) for k, v in reply.items()}
    return reply


@pytest.fixture
def pair(real_redis, tmp_path):
    proc = hakv_server(str(tmp_path / "hakv-diff")).start()
    clients = (Raw(real_redis.port), Raw(proc.port))
    yield clients
    for c in clients:
        c.close()
    proc.stop()


# ------------------------------------------------------------------ the stream

STRING_KEYS = [b"k0", b"k1", b"k2", b"k3", b"b0", b"b1", b"", b"k{x}"]
TYPED = {
    b"lst": deque([b"a", b"b", b"c"]),
    b"hsh": {b"f1": b"v1", b"f2": b"12"},
    b"st": {b"1", b"2", b"300"},
    b"sst": {b"x", b"y"},
    b"zs": None,  # built below
    b"bigz": None,
    b"bigs": {b"%d" % i for i in range(300)},
}
KEYS = STRING_KEYS + list(TYPED)
INTS = [b"0", b"1", b"-1", b"7", b"123", b"9999", b"10000", b"-9223372036854775808",
        b"9223372036854775807", b"9223372036854775808", b"01", b"+5", b" 5", b"1.5", b"-0"]
STRS = [b"", b"a", b"hello", b"foobar", b"\x00\xff\x10", b"x" * 44, b"y" * 45, b"z" * 100,
        b"ohmytext", b"mynewtext", b"\xff\xf0\x00\x0f"]
FLOAT_KEYS = [b"f0", b"f1"]
FLOATS = [b"0.5", b"-1.25", b"3e2", b"10", b"0.1", b"0.2", b"-0.3", b"1e-5", b"3.14159",
          b"1e400", b"-1e400", b"1e5000", b"x", b"inf", b"-inf", b"nan", b"5.", b".5"]
PATTERNS = [b"*", b"k*", b"?0", b"[kb]*", b"*{*", b"\\*", b"*s*", b"nomatch", b"b[0-1]"]


def _zset(pairs):
    z = ZSet()
    for m, s in pairs:
        z.add(m, s)
    return z


TYPED[b"zs"] = _zset([(b"a", 1.0), (b"b", 2.5)])
TYPED[b"bigz"] = _zset([(b"m%d" % i, float(i)) for i in range(200)])


class Stream:
    def __init__(self, seed: int):
        self.rnd = random.Random(seed)

    def key(self):
        rnd = self.rnd
        return rnd.choice(STRING_KEYS) if rnd.random() < 0.75 else rnd.choice(KEYS)

    def value(self):
        rnd = self.rnd
        roll = rnd.random()
        if roll < 0.4:
            return rnd.choice(INTS)
        if roll < 0.9:
            return rnd.choice(STRS)
        return rnd.randbytes(rnd.randint(1, 12))

    def int_arg(self, *pool):
        rnd = self.rnd
        return rnd.choice(pool) if rnd.random() < 0.9 else rnd.choice([b"x", b"1.5", b""])

    def offset(self):
        rnd = self.rnd
        roll = rnd.random()
        if roll < 0.85:
            return rnd.randint(0, 120)
        return rnd.choice([b"-1", b"x", b"4294967296", b"300", b"#3"])

    def ttl_option(self):
        rnd = self.rnd
        kind = rnd.choice([b"EX", b"PX", b"EXAT", b"PXAT"])
        now = int(time.time())
        value = {
            b"EX": rnd.choice([100, 1000, 86400, 0, -1, b"x"]),
            b"PX": rnd.choice([100000, 5000000, 0, -5]),
            b"EXAT": rnd.choice([now + 1000, 1, 0]),
            b"PXAT": rnd.choice([(now + 2000) * 1000, 100, b"9223372036854775807"]),
        }[kind]
        return [kind, value]

    # -- string commands

    def c_set(self):
        rnd = self.rnd
        argv = [b"SET", self.key(), self.value()]
        opts = []
        if rnd.random() < 0.3:
            opts.append(rnd.choice([b"NX", b"XX"]))
        if rnd.random() < 0.3:
            opts.append(b"GET")
        roll = rnd.random()
        if roll < 0.3:
            opts += self.ttl_option()
        elif roll < 0.4:
            opts.append(b"KEEPTTL")
        if rnd.random() < 0.05:
            opts.append(rnd.choice([b"NX", b"XX", b"EX", b"foo", b"KEEPTTL"]))
        rnd.shuffle(opts) if rnd.random() < 0.1 else None
        return argv + opts

    def c_get(self):
        return [self.rnd.choice([b"GET", b"GETDEL", b"STRLEN"]), self.key()]

    def c_getset(self):
        return [b"GETSET", self.key(), self.value()]

    def c_getex(self):
        rnd = self.rnd
        argv = [b"GETEX", self.key()]
        roll = rnd.random()
        if roll < 0.4:
            argv += self.ttl_option()
        elif roll < 0.6:
            argv.append(b"PERSIST")
        elif roll < 0.65:
            argv += [b"PERSIST", b"EX", b"100"]
        return argv

    def c_setnx(self):
        rnd = self.rnd
        cmd = rnd.choice([b"SETNX", b"SETEX", b"PSETEX"])
        if cmd == b"SETNX":
            return [cmd, self.key(), self.value()]
        scale = 1000 if cmd == b"PSETEX" else 1  # no TTL short enough to race
        t = rnd.choice([100 * scale, 5000 * scale, 0, -1, b"x"])
        return [cmd, self.key(), t, self.value()]

    def c_mset(self):
        rnd = self.rnd
        cmd = rnd.choice([b"MSET", b"MSETNX", b"MGET"])
        if cmd == b"MGET":
            return [cmd] + [self.key() for _ in range(rnd.randint(1, 4))]
        argv = [cmd]
        for _ in range(rnd.randint(1, 3)):
            argv += [self.key(), self.value()]
        if rnd.random() < 0.05:
            argv.pop()
        return argv

    def c_append(self):
        return [b"APPEND", self.key(), self.value()]

    def c_incr(self):
        rnd = self.rnd
        cmd = rnd.choice([b"INCR", b"DECR", b"INCRBY", b"DECRBY", b"INCRBYFLOAT"])
        if cmd in (b"INCR", b"DECR"):
            return [cmd, self.key()]
        if cmd == b"INCRBYFLOAT":
            return [cmd, rnd.choice(FLOAT_KEYS + STRING_KEYS), rnd.choice(FLOATS)]
        return [cmd, self.key(), self.int_arg(b"1", b"-5", b"100", b"9223372036854775807",
                                              b"-9223372036854775808")]

    def c_range(self):
        rnd = self.rnd
        if rnd.random() < 0.5:
            return [rnd.choice([b"GETRANGE", b"SUBSTR"]), self.key(),
                    self.int_arg(0, 1, -1, -3, 5, 100), self.int_arg(0, 2, -1, -2, 10, 1000)]
        return [b"SETRANGE", self.key(), self.int_arg(0, 1, 3, 10, 50, -1), self.value()]

    # -- generic key commands

    def c_del(self):
        rnd = self.rnd
        return [rnd.choice([b"DEL", b"UNLINK", b"EXISTS", b"TOUCH"])] + [
            self.key() for _ in range(rnd.randint(1, 3))]

    def c_type(self):
        return [b"TYPE", self.key()]

    def c_rename(self):
        rnd = self.rnd
        return [rnd.choice([b"RENAME", b"RENAMENX"]), self.key(), self.key()]

    def c_copy(self):
        rnd = self.rnd
        argv = [b"COPY", self.key(), self.key()]
        if rnd.random() < 0.4:
            argv += [b"DB", rnd.choice([b"0", b"1", b"1", b"99", b"x", b"-1"])]
        if rnd.random() < 0.4:
            argv.append(b"REPLACE")
        if rnd.random() < 0.03:
            argv.append(b"foo")
        return argv

    def c_move(self):
        return [b"MOVE", self.key(), self.rnd.choice([b"1", b"1", b"0", b"x", b"16"])]

    def c_keys(self):
        return [b"KEYS", self.rnd.choice(PATTERNS)]

    def c_object(self):
        rnd = self.rnd
        sub = rnd.choice([b"ENCODING", b"ENCODING", b"REFCOUNT", b"FREQ", b"foo"])
        return [b"OBJECT", sub, self.key()]

    def c_expire(self):
        rnd = self.rnd
        cmd = rnd.choice([b"EXPIRE", b"PEXPIRE", b"EXPIREAT", b"PEXPIREAT"])
        now = int(time.time())
        value = {
            b"EXPIRE": rnd.choice([100, 500, 1000, 0, -1, b"x", b"9223372036854775807"]),
            b"PEXPIRE": rnd.choice([200000, 700000, 0, -5, b"-9223372036854775808"]),
            b"EXPIREAT": rnd.choice([now + 300, now + 5000, 1, b"9223372036854775807"]),
            b"PEXPIREAT": rnd.choice([(now + 400) * 1000, 100, b"9223372036854775807"]),
        }[cmd]
        argv = [cmd, self.key(), value]
        for _ in range(rnd.choice([0, 0, 1, 1, 2])):
            argv.append(rnd.choice([b"NX", b"XX", b"GT", b"LT", b"nx", b"gt", b"foo"]))
        return argv

    def c_ttl(self):
        return [self.rnd.choice([b"TTL", b"PTTL", b"EXPIRETIME", b"PEXPIRETIME", b"PERSIST"]),
                self.key()]

    # -- bits

    def c_setbit(self):
        rnd = self.rnd
        if rnd.random() < 0.5:
            return [b"GETBIT", self.key(), self.offset()]
        return [b"SETBIT", self.key(), self.offset(), rnd.choice([0, 1, 1, 0, 2, b"x"])]

    def c_bitcount(self):
        rnd = self.rnd
        argv = [b"BITCOUNT", self.key()]
        roll = rnd.random()
        if roll < 0.7:
            argv += [self.int_arg(0, 1, -1, -5, 7, 40), self.int_arg(0, 2, -1, -3, 9, 100)]
            if rnd.random() < 0.5:
                argv.append(rnd.choice([b"BIT", b"BYTE", b"bit", b"foo"]))
        elif roll < 0.75:
            argv.append(b"0")
        return argv

    def c_bitpos(self):
        rnd = self.rnd
        argv = [b"BITPOS", self.key(), rnd.choice([0, 1, 1, 0, 2])]
        n = rnd.choice([0, 1, 2, 3, 3, 4])
        if n >= 1:
            argv.append(self.int_arg(0, 1, -1, -4, 3, 17, 60))
        if n >= 2:
            argv.append(self.int_arg(0, 2, -1, -2, 5, 30, 200))
        if n >= 3:
            argv.append(rnd.choice([b"BIT", b"BYTE", b"bit", b"foo"]))
        if n == 4:
            argv.append(b"extra")
        return argv

    def c_bitop(self):
        rnd = self.rnd
        op = rnd.choice([b"AND", b"OR", b"XOR", b"NOT", b"and", b"foo"])
        count = 1 if op == b"NOT" and rnd.random() < 0.8 else rnd.randint(1, 3)
        return [b"BITOP", op, self.key()] + [self.key() for _ in range(count)]

    def bitfield_op(self):
        rnd = self.rnd
        kind = rnd.choice([b"GET", b"SET", b"INCRBY", b"OVERFLOW", b"get", b"incrby"])
        if kind == b"OVERFLOW":
            return [kind, rnd.choice([b"WRAP", b"SAT", b"FAIL", b"sat", b"bad"])]
        signed = rnd.random() < 0.5
        bits = rnd.choice([1, 3, 4, 8, 8, 16, 31, 63, 64] if signed else [1, 2, 5, 8, 8, 16, 63])
        ftype = (b"i" if signed else b"u") + b"%d" % bits
        if rnd.random() < 0.04:
            ftype = rnd.choice([b"u64", b"i65", b"x8", b"I8", b"u0"])
        off = rnd.randint(0, 100)
        offset = b"#%d" % rnd.randint(0, 6) if rnd.random() < 0.2 else off
        if rnd.random() < 0.03:
            offset = rnd.choice([b"-1", b"#-1", b"x"])
        op = [kind, ftype, offset]
        if kind.upper() != b"GET":
            op.append(rnd.choice([0, 1, -1, 100, 255, 256, -129, 127, 1000, 2**62,
                                  b"9223372036854775807", b"-9223372036854775808", b"x"]))
        return op

    def c_bitfield(self):
        rnd = self.rnd
        cmd = b"BITFIELD_RO" if rnd.random() < 0.2 else b"BITFIELD"
        argv = [cmd, self.key()]
        for _ in range(rnd.randint(0, 4)):
            argv += self.bitfield_op()
        return argv

    def c_lcs(self):
        rnd = self.rnd
        argv = [b"LCS", self.key(), self.key()]
        opts = rnd.sample([[b"LEN"], [b"IDX"], [b"WITHMATCHLEN"], [b"MINMATCHLEN", b"2"],
                           [b"MINMATCHLEN", b"x"], [b"foo"]], rnd.choice([0, 0, 1, 2]))
        for o in opts:
            argv += o
        return argv

    def restore(self):
        key = self.rnd.choice(list(TYPED))
        return [b"RESTORE", key, b"0", dump_payload(TYPED[key]), b"REPLACE"]

    def command(self):
        rnd = self.rnd
        makers = [
            (self.c_set, 10), (self.c_get, 6), (self.c_getset, 2), (self.c_getex, 3),
            (self.c_setnx, 3), (self.c_mset, 3), (self.c_append, 4), (self.c_incr, 5),
            (self.c_range, 4), (self.c_del, 5), (self.c_type, 2), (self.c_rename, 4),
            (self.c_copy, 4), (self.c_move, 3), (self.c_keys, 2), (self.c_object, 5),
            (self.c_expire, 6), (self.c_ttl, 5), (self.c_setbit, 8), (self.c_bitcount, 5),
            (self.c_bitpos, 5), (self.c_bitop, 4), (self.c_bitfield, 6), (self.c_lcs, 3),
            (self.restore, 2),
        ]
        maker = rnd.choices([m for m, _ in makers], [w for _, w in makers])[0]
        argv = maker()
        roll = rnd.random()
        if roll < 0.02 and len(argv) > 1:
            argv = argv[:rnd.randint(1, len(argv) - 1)]  # arity mistakes
        elif roll < 0.03:
            argv = argv + [b"junk"]
        return argv


# ------------------------------------------------------------------ comparing


def tolerant(name: bytes, a, b) -> bool:
    """Replies whose exact value depends on when each server got the command."""
    if isinstance(a, int) and isinstance(b, int) and a >= 0 and b >= 0:
        if name in (b"TTL", b"EXPIRETIME"):
            return abs(a - b) <= 1
        if name in (b"PTTL", b"PEXPIRETIME"):
            return abs(a - b) <= 1000
    return False


def short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...(%d)" % len(text)


def check(redis_c, hakv_c, argv, log):
    name = argv[0].upper()
    a = redis_c(*argv)
    b = hakv_c(*argv)
    log.append((argv, a))
    if name == b"KEYS" and isinstance(a, list) and isinstance(b, list):
        a, b = sorted(a), sorted(b)
    if a != b and not tolerant(name, a, b):
        history = "\n".join("  %s -> %s" % (short(argv), short(reply))
                            for argv, reply in log[-25:])
        pytest.fail("reply mismatch for %r\n  redis: %r\n  hakv:  %r\nlast commands:\n%s"
                    % (argv, a, b, history))
    return a


def comparable(value):
    if isinstance(value, ZSet):
        return ("zset", list(value.items()))
    if isinstance(value, deque):
        return ("list", list(value))
    return (type(value).__name__, value)


def scan_all(client, *opts):
    cursor, seen = b"0", []
    for _ in range(10000):
        reply = client(b"SCAN", cursor, *opts)
        if isinstance(reply, Err):
            return reply
        cursor, batch = reply
        seen += batch
        if cursor == b"0":
            return sorted(set(seen))
    raise AssertionError("SCAN did not finish")


def compare_state(redis_c, hakv_c, log):
    """The whole keyspace (db 0 and 1): keys, types, encodings, values, TTLs."""
    for db in (b"1", b"0"):
        check(redis_c, hakv_c, [b"SELECT", db], log)
        keys = sorted(redis_c(b"KEYS", b"*"))
        assert sorted(hakv_c(b"KEYS", b"*")) == keys
        for opts in ((), (b"COUNT", b"3"), (b"MATCH", b"k*"), (b"TYPE", b"string"),
                     (b"TYPE", b"zset", b"COUNT", b"100")):
            assert scan_all(redis_c, *opts) == scan_all(hakv_c, *opts), opts
        for key in keys:
            for argv in ([b"TYPE", key], [b"OBJECT", b"ENCODING", key],
                         [b"OBJECT", b"REFCOUNT", key], [b"PTTL", key]):
                check(redis_c, hakv_c, argv, log)
            if redis_c(b"TYPE", key) == b"string":
                check(redis_c, hakv_c, [b"GET", key], log)
            else:
                # Collections: the same contents (hash tables dump in any order).
                assert comparable(load_payload(redis_c(b"DUMP", key))) == comparable(
                    load_payload(hakv_c(b"DUMP", key))), key


def run_stream(pair, seed: int, steps: int, resp3: bool = False):
    redis_c, hakv_c = pair
    for c in pair:
        c(b"FLUSHALL")
        if resp3:
            assert isinstance(c(b"HELLO", b"3"), dict)
    stream = Stream(seed)
    log = []
    for key, value in TYPED.items():
        check(redis_c, hakv_c, [b"RESTORE", key, b"0", dump_payload(value)], log)
    for step in range(steps):
        argv = stream.command()
        reply = check(redis_c, hakv_c, argv, log)
        name = argv[0].upper()
        if name == b"RANDOMKEY":
            assert reply is None or isinstance(reply, bytes)
        if step % 250 == 249:
            compare_state(redis_c, hakv_c, log)
    compare_state(redis_c, hakv_c, log)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_stream_matches_redis(pair, seed):
    run_stream(pair, seed, 2500)


def test_random_stream_matches_redis_resp3(pair):
    run_stream(pair, 42, 1500, resp3=True)


def test_randomkey_and_scan_types(pair):
    redis_c, hakv_c = pair
    log = []
    for c in pair:
        c(b"FLUSHALL")
    assert redis_c(b"RANDOMKEY") is None and hakv_c(b"RANDOMKEY") is None
    for key, value in TYPED.items():
        check(redis_c, hakv_c, [b"RESTORE", key, b"0", dump_payload(value)], log)
    check(redis_c, hakv_c, [b"MSET", b"a", b"1", b"b", b"2"], log)
    keys = set(redis_c(b"KEYS", b"*"))
    for _ in range(20):
        assert hakv_c(b"RANDOMKEY") in keys
    for t in (b"string", b"list", b"hash", b"set", b"zset", b"stream", b"nosuch", b"STRING"):
        assert scan_all(redis_c, b"TYPE", t) == scan_all(hakv_c, b"TYPE", t), t
    for opts in ([b"COUNT", b"0"], [b"COUNT", b"x"], [b"MATCH"], [b"foo", b"bar"]):
        check(redis_c, hakv_c, [b"SCAN", b"0"] + opts, log)
    for cursor in (b"x", b"-", b" 1", b"18446744073709551616"):
        check(redis_c, hakv_c, [b"SCAN", cursor], log)


def test_edge_cases_match_redis(pair):
    """Fixed cases the random stream may not reach: option parsing order,
    INCRBYFLOAT's long double arithmetic, encodings after in-place writes."""
    redis_c, hakv_c = pair
    log = []
    for c in pair:
        c(b"FLUSHALL")
    cases = [
        [b"SET", b"k", b"v", b"EX", b"XX", b"1000"],  # syntax error before the value
        [b"SET", b"k", b"v", b"EX", b"x"],
        [b"SET", b"k", b"v", b"PX", b"0", b"GET"],
        [b"GETEX", b"nokey", b"PX", b"0"],  # no key: the time is never checked
        [b"SET", b"k", b"v"],
        [b"GETEX", b"k", b"PX", b"0"],
        [b"GETEX", b"k", b"EX", b"x", b"PERSIST"],
        [b"INCRBYFLOAT", b"f", b"0.1"], [b"INCRBYFLOAT", b"f", b"0.2"],
        [b"INCRBYFLOAT", b"f", b"1e-5"], [b"INCRBYFLOAT", b"f", b"-0.30001"],
        [b"INCRBYFLOAT", b"f", b"1e400"], [b"INCRBYFLOAT", b"f", b"-1e400"],
        [b"INCRBYFLOAT", b"f", b"1e5000"], [b"INCRBYFLOAT", b"f", b"1e-4952"],
        [b"INCRBYFLOAT", b"f", b"3.6e-4951"], [b"INCRBYFLOAT", b"f", b"inf"],
        [b"SET", b"g", b"9223372036854775807"], [b"INCRBYFLOAT", b"g", b"0.5"],
        [b"INCRBYFLOAT", b"g", b"1.18e4932"], [b"INCRBYFLOAT", b"g", b"1.18e4932"],
        [b"OBJECT", b"ENCODING", b"g"],
        [b"SET", b"h", b"1.5"], [b"INCRBYFLOAT", b"h", b"1.5"], [b"OBJECT", b"ENCODING", b"h"],
        [b"OBJECT", b"REFCOUNT", b"h"],
        [b"SET", b"a", b"12"], [b"APPEND", b"a", b""], [b"OBJECT", b"ENCODING", b"a"],
        [b"SETRANGE", b"r", b"0", b"7"], [b"OBJECT", b"ENCODING", b"r"],
        [b"SET", b"r", b"7"], [b"OBJECT", b"ENCODING", b"r"], [b"OBJECT", b"REFCOUNT", b"r"],
        [b"SETBIT", b"b", b"7", b"1"], [b"OBJECT", b"ENCODING", b"b"],
        [b"SET", b"b", b"\x01"], [b"OBJECT", b"ENCODING", b"b"],
        [b"SET", b"n", b"5"], [b"COPY", b"n", b"n2"], [b"OBJECT", b"REFCOUNT", b"n2"],
        [b"SET", b"n2", b"5"], [b"OBJECT", b"REFCOUNT", b"n2"],
        [b"BITFIELD", b"n", b"GET", b"u8", b"0"], [b"OBJECT", b"ENCODING", b"n"],
        [b"BITFIELD", b"n", b"OVERFLOW", b"FAIL", b"SET", b"u8", b"0", b"999"],
        [b"OBJECT", b"ENCODING", b"n"],
    ]
    for argv in cases:
        check(redis_c, hakv_c, argv, log)
