"""The bit and LCS commands (common/commands/bits.py): SETBIT GETBIT BITCOUNT
BITPOS BITOP BITFIELD BITFIELD_RO LCS, through redis-py against a running
hakv-server, with every error they answer; and their bulk algorithms checked
against plain reference implementations (a per-bit walk, Redis's LCS table).
"""

from __future__ import annotations

import random
import time

import pytest
import redis

from hakv.common import dispatch
from hakv.common.commands.bits import (count_bits, find_bit, lcs_rows, lcs_traceback,
                                       read_field)
from hakv.common.config import Settings
from hakv.common.connection import Client
from hakv.common.node import load_families
from hakv.common.server import Server

from procs import hakv_server

ResponseError = redis.exceptions.ResponseError
OFFSET_ERR = "bit offset is not an integer or out of range"
TYPE_ERR = ("Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported "
            "but i64 is.")
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


@pytest.fixture(scope="module")
def hakv(tmp_path_factory):
    """One hakv-server for the module (it is flushed before each test)."""
    proc = hakv_server(str(tmp_path_factory.mktemp("hakv"))).start()
    yield proc
    proc.stop()


@pytest.fixture
def r(hakv):
    client = hakv.client(protocol=2)
    client.response_callbacks.clear()
    client.flushall()
    yield client
    client.close()


def err(r, *args) -> str:
    with pytest.raises(ResponseError) as info:
        r.execute_command(*args)
    return str(info.value)


def dirty(r) -> int:
    """Redis's dirty counter, as INFO persistence shows it (if available),
    else None."""
    info = r.execute_command("INFO", "persistence").decode()
    for line in info.split("\r\n"):
        if line.startswith("rdb_changes_since_last_save:"):
            return int(line.split(":")[1])
    return None


class Node:
    """A Server without sockets that records what it propagates."""

    def __init__(self):
        load_families()
        self.server = Server(Settings())
        self.server.propagating = True
        self.stream = []
        self.events = []
        ks = self.server.keyspace
        ks.propagate = lambda dbid, argv: self.stream.append([bytes(a) for a in argv])
        ks.notify = lambda db, cls, event, key: self.events.append((cls, event, key))
        self.client = Client(self.server)

    def __call__(self, *args):
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        reply = dispatch.execute(self.client, argv)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def take(self):
        out = (self.stream, self.events)
        self.stream, self.events = [], []
        return out


# ------------------------------------------------------------------ reference implementations


def bits_of(value: bytes) -> list:
    return [(value[k >> 3] >> (7 - (k & 7))) & 1 for k in range(len(value) * 8)]


def reference_lcs(a: bytes, b: bytes, min_len=0, with_len=False):
    """Redis's LCS: the full table, then its walk from the end."""
    n, m = len(a), len(b)
    t = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            t[i][j] = t[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(t[i - 1][j],
                                                                          t[i][j - 1])
    idx = length = t[n][m]
    out = bytearray(idx)
    ranges = []
    a_start = n
    a_end = b_start = b_end = 0
    i, j = n, m
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            out[idx - 1] = a[i - 1]
            if a_start == n:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            idx, i, j = idx - 1, i - 1, j - 1
        else:
            if t[i - 1][j] > t[i][j - 1]:
                i -= 1
            else:
                j -= 1
            if a_start != n:
                emit = True
        if emit:
            match_len = a_end - a_start + 1
            if min_len == 0 or match_len >= min_len:
                entry = [[a_start, a_end], [b_start, b_end]]
                if with_len:
                    entry.append(match_len)
                ranges.append(entry)
            a_start = n
    return length, bytes(out), ranges


def test_bit_helpers_match_a_bit_walk():
    rnd = random.Random(7)
    for _ in range(2000):
        value = bytes(rnd.choice((0, 255, rnd.randrange(256))) for _ in range(rnd.randint(1, 20)))
        bits = bits_of(value)
        first = rnd.randrange(len(bits))
        last = rnd.randrange(first, len(bits))
        assert count_bits(value, first, last) == sum(bits[first:last + 1])
        for bit in (0, 1):
            expected = next((k for k in range(first, last + 1) if bits[k] == bit), -1)
            assert find_bit(value, bit, first, last) == expected
        width = rnd.randint(1, 64)
        offset = rnd.randrange(len(bits) + 16)
        unsigned = int("".join(str(b) for b in (bits + [0] * 80)[offset:offset + width]), 2)
        assert read_field(value, offset, width, False) == unsigned
        signed = unsigned - (1 << width) if unsigned >> (width - 1) else unsigned
        assert read_field(value, offset, width, True) == signed


def test_lcs_matches_redis_table_walk():
    rnd = random.Random(3)
    for _ in range(1500):
        alphabet = rnd.choice([b"ab", b"acgt", b"abcdefgh", bytes(range(256))])
        a = bytes(rnd.choice(alphabet) for _ in range(rnd.randint(1, 35)))
        b = bytes(rnd.choice(alphabet) for _ in range(rnd.randint(1, 35)))
        min_len = rnd.choice([0, 0, 2, 3])
        length, text, ranges = reference_lcs(a, b, min_len, True)
        got_len, rows = lcs_rows(a, b, True)
        assert got_len == length
        assert lcs_traceback(a, b, rows, got_len, min_len, True, True) == (text, ranges)
        assert lcs_rows(b, a, False)[0] == length


def test_big_strings_are_fast(r):
    """No per-bit loops: megabyte strings take milliseconds."""
    big = random.Random(1).randbytes(4 << 20)
    popcount = bytes(bin(i).count("1") for i in range(256))
    total = sum(big.translate(popcount))
    in_range = total - sum(bits_of(big[:1])[:5]) - sum(bits_of(big[-1:])[2:])
    r.execute_command("SET", "big", big)
    r.execute_command("SET", "zeros", bytes(4 << 20) + b"\x01")
    start = time.perf_counter()
    assert r.execute_command("BITCOUNT", "big") == total
    assert r.execute_command("BITCOUNT", "big", 5, -7, "BIT") == in_range
    assert r.execute_command("BITPOS", "zeros", 1) == (4 << 20) * 8 + 7
    assert r.execute_command("BITOP", "XOR", "x", "big", "zeros") == (4 << 20) + 1
    assert r.execute_command("BITOP", "NOT", "n", "big") == 4 << 20
    assert r.execute_command("BITOP", "AND", "a", "big", "n") == 4 << 20
    assert r.execute_command("BITCOUNT", "a") == 0
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, elapsed
    assert r.execute_command("GETRANGE", "n", 0, 99) == bytes(255 - c for c in big[:100])


# ------------------------------------------------------------------ SETBIT GETBIT


def test_setbit_getbit(r):
    assert r.execute_command("SETBIT", "k", 7, 1) == 0
    assert r.execute_command("GET", "k") == b"\x01"
    assert r.execute_command("SETBIT", "k", 7, 1) == 1
    assert r.execute_command("SETBIT", "k", 0, 1) == 0
    assert r.execute_command("GET", "k") == b"\x81"
    assert r.execute_command("SETBIT", "k", 17, 1) == 0  # grows with zeros
    assert r.execute_command("GET", "k") == b"\x81\x00\x40"
    assert r.execute_command("SETBIT", "k", 0, 0) == 1
    assert [r.execute_command("GETBIT", "k", i) for i in (0, 7, 17, 18, 1000)] == [0, 1, 1, 0, 0]
    assert r.execute_command("GETBIT", "nokey", 5) == 0
    r.execute_command("SET", "t", "a", "EX", 100)
    r.execute_command("SETBIT", "t", 6, 1)
    assert r.execute_command("GET", "t") == b"c"
    assert r.execute_command("TTL", "t") == 100  # an in-place change keeps the TTL
    assert r.execute_command("SETBIT", "max", 4294967295, 1) == 0
    assert r.execute_command("STRLEN", "max") == 536870912
    r.execute_command("DEL", "max")


def test_setbit_getbit_errors(r):
    r.execute_command("SADD", "set", "x")
    assert err(r, "SETBIT", "k", -1, 1) == OFFSET_ERR
    assert err(r, "SETBIT", "k", 4294967296, 1) == OFFSET_ERR
    assert err(r, "SETBIT", "k", "x", 1) == OFFSET_ERR
    assert err(r, "SETBIT", "k", 1, 2) == "bit is not an integer or out of range"
    assert err(r, "SETBIT", "k", 1, "x") == "bit is not an integer or out of range"
    assert err(r, "SETBIT", "k", 1, -1) == "bit is not an integer or out of range"
    assert err(r, "SETBIT", "set", 1, 1) == WRONGTYPE
    assert err(r, "SETBIT", "set", -1, 1) == OFFSET_ERR  # arguments before the key
    assert err(r, "GETBIT", "k", -1) == OFFSET_ERR
    assert err(r, "GETBIT", "k", 4294967296) == OFFSET_ERR
    assert err(r, "GETBIT", "set", 0) == WRONGTYPE
    assert err(r, "SETBIT", "k", 1) == "wrong number of arguments for 'setbit' command"
    assert err(r, "GETBIT", "k") == "wrong number of arguments for 'getbit' command"
    assert r.execute_command("EXISTS", "k") == 0


def test_setbit_counts_only_changes(r):
    before = dirty(r)
    r.execute_command("SETBIT", "k", 3, 0)  # creates the key
    r.execute_command("SETBIT", "k", 3, 0)  # no change
    r.execute_command("SETBIT", "k", 3, 1)
    assert dirty(r) - before == 2


# ------------------------------------------------------------------ BITCOUNT BITPOS


def test_bitcount(r):
    r.execute_command("SET", "s", "foobar")
    cases = [((), 26), ((0, 0), 4), ((1, 1), 6), ((1, 1, "BYTE"), 6), ((1, 1, "bit"), 1),
             ((5, 30, "BIT"), 17), ((-2, -1), 7), ((-100, -1, "bit"), 26), ((3, 1), 0),
             ((-1, -2), 0), ((0, 1000), 26),
             (("9223372036854775807", "9223372036854775807", "bit"), 0),
             (("-9223372036854775808", -1, "bit"), 26)]
    for args, expected in cases:
        assert r.execute_command("BITCOUNT", "s", *args) == expected, args
    assert r.execute_command("BITCOUNT", "nokey") == 0
    assert r.execute_command("BITCOUNT", "nokey", 0, 1, "foo") == 0  # no key: no parsing
    r.execute_command("SET", "e", "")
    assert r.execute_command("BITCOUNT", "e", 0, -1) == 0


def test_bitcount_errors(r):
    r.execute_command("SET", "s", "foobar")
    r.execute_command("SADD", "set", "x")
    assert err(r, "BITCOUNT", "s", 0) == "syntax error"
    assert err(r, "BITCOUNT", "s", 0, 1, 2) == "syntax error"
    assert err(r, "BITCOUNT", "s", 0, 1, "foo") == "syntax error"
    assert err(r, "BITCOUNT", "s", 0, 1, "bit", "x") == "syntax error"
    assert err(r, "BITCOUNT", "s", "a", "b") == "value is not an integer or out of range"
    assert err(r, "BITCOUNT", "set") == WRONGTYPE
    assert err(r, "BITCOUNT") == "wrong number of arguments for 'bitcount' command"


def test_bitpos(r):
    r.execute_command("SET", "s", "foobar")
    r.execute_command("SET", "ff", b"\xff\xff")
    r.execute_command("SET", "zz", b"\x00\x00")
    r.execute_command("SET", "mixed", b"\xff\xf0\x00")
    cases = [
        ("s", (1,), 1), ("s", (0,), 0), ("s", (1, 2), 17), ("s", (1, 2, -1, "bit"), 2),
        ("s", (0, 2, -1, "BIT"), 3), ("s", (1, 7, 15, "bit"), 9), ("s", (1, 2, 1), -1),
        ("ff", (0,), 16), ("ff", (0, 0), 16), ("ff", (0, 0, -1), -1), ("ff", (0, 1, 1), -1),
        ("ff", (0, 3, -5, "bit"), -1), ("ff", (0, 5), -1), ("ff", (1, -1), 8),
        ("zz", (1,), -1), ("zz", (0,), 0), ("zz", (1, 1), -1), ("zz", (0, 9, 12, "bit"), 9),
        ("mixed", (0,), 12), ("mixed", (1, 1, 2), 8), ("mixed", (0, 0, 0), -1),
        ("mixed", (1, 12, -1, "bit"), -1), ("mixed", (0, 5, 11, "BYTE"), -1),
        ("mixed", (0, 1, 1), 12), ("mixed", (0, 1), 12),
    ]
    for key, args, expected in cases:
        assert r.execute_command("BITPOS", key, *args) == expected, (key, args)
    assert r.execute_command("BITPOS", "nokey", 1) == -1
    assert r.execute_command("BITPOS", "nokey", 0) == 0
    assert r.execute_command("BITPOS", "nokey", 0, 5, 6, "foo") == 0
    r.execute_command("SET", "e", "")
    assert r.execute_command("BITPOS", "e", 0) == -1
    assert r.execute_command("BITPOS", "e", 1) == -1


def test_bitpos_errors(r):
    r.execute_command("SET", "s", "foobar")
    r.execute_command("SADD", "set", "x")
    assert err(r, "BITPOS", "s", 2) == "The bit argument must be 1 or 0."
    assert err(r, "BITPOS", "nokey", 2) == "The bit argument must be 1 or 0."
    assert err(r, "BITPOS", "s", "x") == "value is not an integer or out of range"
    assert err(r, "BITPOS", "s", 1, "x") == "value is not an integer or out of range"
    assert err(r, "BITPOS", "s", 1, 0, "x") == "value is not an integer or out of range"
    assert err(r, "BITPOS", "s", 1, 0, "x", "foo") == "syntax error"  # unit before end
    assert err(r, "BITPOS", "s", 1, 0, 0, "foo") == "syntax error"
    assert err(r, "BITPOS", "s", 1, 0, 0, "bit", "x") == "syntax error"
    assert err(r, "BITPOS", "set", 1) == WRONGTYPE
    assert err(r, "BITPOS", "s") == "wrong number of arguments for 'bitpos' command"


# ------------------------------------------------------------------ BITOP


def test_bitop(r):
    r.execute_command("SET", "a", b"\xff")
    r.execute_command("SET", "b", b"\x0f\x0f")
    assert r.execute_command("BITOP", "AND", "d", "a", "b") == 2
    assert r.execute_command("GET", "d") == b"\x0f\x00"
    assert r.execute_command("BITOP", "or", "d", "a", "b", "nokey") == 2
    assert r.execute_command("GET", "d") == b"\xff\x0f"
    assert r.execute_command("BITOP", "XOR", "d", "a", "b") == 2
    assert r.execute_command("GET", "d") == b"\xf0\x0f"
    assert r.execute_command("BITOP", "NOT", "d", "b") == 2
    assert r.execute_command("GET", "d") == b"\xf0\xf0"
    assert r.execute_command("BITOP", "AND", "d", "a", "nokey") == 1
    assert r.execute_command("GET", "d") == b"\x00"
    assert r.execute_command("BITOP", "OR", "a", "a", "b") == 2  # destination among sources
    assert r.execute_command("GET", "a") == b"\xff\x0f"
    # The result replaces the destination, TTL included.
    r.execute_command("SET", "d", "x", "EX", 100)
    assert r.execute_command("BITOP", "OR", "d", "b") == 2
    assert r.execute_command("TTL", "d") == -1
    # An empty result deletes the destination.
    r.execute_command("SET", "e", "")
    assert r.execute_command("BITOP", "OR", "d", "e", "nokey") == 0
    assert r.execute_command("EXISTS", "d") == 0
    assert r.execute_command("BITOP", "NOT", "d", "nokey") == 0
    assert r.execute_command("EXISTS", "d") == 0


def test_bitop_errors(r):
    r.execute_command("SET", "a", "x")
    r.execute_command("SADD", "set", "x")
    assert err(r, "BITOP", "NOT", "d", "a", "a") == (
        "BITOP NOT must be called with a single source key.")
    assert err(r, "BITOP", "foo", "d", "a") == "syntax error"
    assert err(r, "BITOP", "AND", "d", "a", "set") == WRONGTYPE
    assert err(r, "BITOP", "AND", "d") == "wrong number of arguments for 'bitop' command"
    assert r.execute_command("EXISTS", "d") == 0


def test_bitop_propagation_and_events():
    node = Node()
    node("SET", "a", "x")
    node("SET", "d", "y")
    node.take()
    assert node("BITOP", "NOT", "d", "a") == 1
    assert node.take() == ([[b"BITOP", b"NOT", b"d", b"a"]], [("$", b"set", b"d")])
    assert node("BITOP", "AND", "d", "nokey") == 0
    assert node.take() == ([[b"BITOP", b"AND", b"d", b"nokey"]], [("g", b"del", b"d")])
    assert node("BITOP", "AND", "d", "nokey") == 0  # nothing to delete: nothing to say
    assert node.take() == ([], [])


# ------------------------------------------------------------------ BITFIELD


def test_bitfield_get_set_incrby(r):
    assert r.execute_command("BITFIELD", "k", "SET", "u8", 0, 255, "GET", "u8", 0,
                             "GET", "i8", 0) == [0, 255, -1]
    assert r.execute_command("GET", "k") == b"\xff"
    assert r.execute_command("BITFIELD", "k", "INCRBY", "u8", 0, 1) == [0]  # wraps
    assert r.execute_command("BITFIELD", "k", "SET", "i16", "#1", -2, "GET", "u16", 16) == [
        0, 65534]
    assert r.execute_command("GET", "k") == b"\x00\x00\xff\xfe"
    assert r.execute_command("BITFIELD", "k", "SET", "u4", 4, 9, "GET", "u8", 0) == [0, 9]
    # Reads past the end see zeros.
    assert r.execute_command("BITFIELD", "k", "GET", "i64", 0, "GET", "u63", 1) == [
        0x0900FFFE00000000, 0x0900FFFE00000000]
    assert r.execute_command("BITFIELD", "nokey", "GET", "u8", 100) == [0]
    assert r.execute_command("EXISTS", "nokey") == 0
    assert r.execute_command("BITFIELD", "k") == []
    assert r.execute_command("BITFIELD", "nokey") == []
    assert r.execute_command("BITFIELD", "k", "set", "i64", 0, "-9223372036854775808",
                             "get", "i64", 0) == [0x0900FFFE00000000, -2**63]
    assert r.execute_command("BITFIELD_RO", "k", "GET", "i8", 0, "get", "u8", "#1") == [-128, 0]


def test_bitfield_overflow(r):
    bf = lambda *args: r.execute_command("BITFIELD", "k", *args)  # noqa: E731
    assert bf("SET", "u8", 0, 250, "INCRBY", "u8", 0, 10) == [0, 4]
    assert bf("OVERFLOW", "SAT", "INCRBY", "u8", 0, 300, "INCRBY", "u8", 0, -1000) == [255, 0]
    assert bf("OVERFLOW", "FAIL", "INCRBY", "u8", 0, 256, "INCRBY", "u8", 0, 7) == [None, 7]
    assert bf("OVERFLOW", "FAIL", "SET", "u8", 0, 256, "GET", "u8", 0) == [None, 7]
    assert bf("OVERFLOW", "SAT", "SET", "u8", 0, -1, "GET", "u8", 0) == [7, 255]
    assert bf("OVERFLOW", "WRAP", "SET", "u8", 0, -1, "GET", "u8", 0) == [255, 255]
    assert bf("SET", "i8", 0, 127, "INCRBY", "i8", 0, 1) == [-1, -128]
    assert bf("OVERFLOW", "SAT", "INCRBY", "i8", 0, -1, "INCRBY", "i8", 0, 500) == [-128, 127]
    assert bf("OVERFLOW", "SAT", "SET", "i8", 0, 1000, "SET", "i8", 0, -1000) == [127, 127]
    assert bf("GET", "i8", 0) == [-128]
    assert bf("overflow", "fail", "set", "i8", 0, 128, "incrby", "i8", 0, -1) == [None, None]
    # Overflow mode applies to the operations after it only.
    assert bf("INCRBY", "u2", 0, 5, "OVERFLOW", "SAT", "INCRBY", "u2", 0, 5) == [3, 3]
    assert bf("SET", "i64", 0, "9223372036854775807", "INCRBY", "i64", 0, 1) == [
        -2**62, -2**63]  # the first byte held 0xc0
    assert bf("OVERFLOW", "SAT", "INCRBY", "i64", 0, -1) == [-2**63]
    assert bf("OVERFLOW", "SAT", "SET", "u63", 0, -5, "GET", "u63", 0) == [2**62, 2**63 - 1]


def test_bitfield_errors(r):
    r.execute_command("SADD", "set", "x")
    for bad in ("u64", "i65", "x8", "I8", "u0", "i0", "u", "u-1", "u 8", ""):
        assert err(r, "BITFIELD", "k", "GET", bad, 0) == TYPE_ERR, bad
        assert err(r, "BITFIELD_RO", "k", "GET", bad, 0) == TYPE_ERR, bad
    for bad in ("#-1", "-1", "x", "#", "# 1", "4294967296", "#536870912"):
        assert err(r, "BITFIELD", "k", "GET", "u8", bad) == OFFSET_ERR, bad
    assert r.execute_command("BITFIELD", "k", "GET", "u8", "#536870911") == [0]
    assert err(r, "BITFIELD", "k", "GET", "u8") == "syntax error"
    assert err(r, "BITFIELD", "k", "SET", "u8", 0) == "syntax error"
    assert err(r, "BITFIELD", "k", "SET", "u8", 0, "x") == (
        "value is not an integer or out of range")
    assert err(r, "BITFIELD", "k", "INCRBY", "u8", 0, "1.5") == (
        "value is not an integer or out of range")
    assert err(r, "BITFIELD", "k", "OVERFLOW", "foo") == "Invalid OVERFLOW type specified"
    assert err(r, "BITFIELD", "k", "OVERFLOW") == "syntax error"
    assert err(r, "BITFIELD", "k", "foo") == "syntax error"
    assert err(r, "BITFIELD", "k", "GET", "u8", 0, "SET", "u8", 0, 1, "x") == "syntax error"
    assert err(r, "BITFIELD_RO", "k", "SET", "u8", 0, 1) == (
        "BITFIELD_RO only supports the GET subcommand")
    assert err(r, "BITFIELD_RO", "nokey", "INCRBY", "u8", 0, 1) == (
        "BITFIELD_RO only supports the GET subcommand")
    assert err(r, "BITFIELD", "set", "GET", "u8", 0) == WRONGTYPE
    assert err(r, "BITFIELD", "set") == WRONGTYPE
    assert err(r, "BITFIELD_RO", "set", "GET", "u8", 0) == WRONGTYPE
    assert err(r, "BITFIELD", "set", "SET", "u8", 0, 1) == WRONGTYPE
    assert err(r, "BITFIELD", "set", "GET", "u8", "x") == OFFSET_ERR  # arguments first
    assert err(r, "BITFIELD") == "wrong number of arguments for 'bitfield' command"
    assert err(r, "BITFIELD_RO") == "wrong number of arguments for 'bitfield_ro' command"
    assert r.execute_command("EXISTS", "k") == 0


def test_bitfield_counts_only_changes(r):
    before = dirty(r)
    assert r.execute_command("BITFIELD", "k", "SET", "u8", 0, 0) == [0]  # creates: a change
    assert r.execute_command("BITFIELD", "k", "SET", "u8", 0, 0) == [0]  # same value
    assert r.execute_command("BITFIELD", "k", "SET", "u8", 0, 16) == [0]
    assert dirty(r) - before == 2
    # Failed writes change nothing, but a key they had to create stays.
    assert r.execute_command("BITFIELD", "k2", "OVERFLOW", "FAIL", "SET", "u8", 0, 300) == [None]
    assert dirty(r) - before == 2
    assert r.execute_command("GET", "k2") == b"\x00"
    r.execute_command("SET", "t", "a", "EX", 100)
    r.execute_command("BITFIELD", "t", "SET", "u8", 0, 98)
    assert r.execute_command("GET", "t") == b"b"
    assert r.execute_command("TTL", "t") == 100


def test_bitfield_propagation():
    node = Node()
    node.take()
    argv = ["BITFIELD", "k", "SET", "u8", "0", "5", "INCRBY", "u8", "0", "1"]
    assert node(*argv) == [0, 6]
    assert node.take() == ([[a.encode() for a in argv]], [("$", b"setbit", b"k")])
    assert node("BITFIELD", "k", "SET", "u8", "0", "6") == [6]
    assert node("BITFIELD", "k", "GET", "u8", "0") == [6]
    assert node("BITFIELD_RO", "k", "GET", "u8", "0") == [6]
    assert node.take() == ([], [])


# ------------------------------------------------------------------ LCS


def test_lcs(r):
    r.execute_command("MSET", "a", "ohmytext", "b", "mynewtext")
    assert r.execute_command("LCS", "a", "b") == b"mytext"
    assert r.execute_command("LCS", "a", "b", "LEN") == 6
    assert r.execute_command("LCS", "a", "b", "len", "LEN") == 6
    assert r.execute_command("LCS", "a", "b", "IDX") == [
        b"matches", [[[4, 7], [5, 8]], [[2, 3], [0, 1]]], b"len", 6]
    assert r.execute_command("LCS", "a", "b", "IDX", "WITHMATCHLEN") == [
        b"matches", [[[4, 7], [5, 8], 4], [[2, 3], [0, 1], 2]], b"len", 6]
    assert r.execute_command("LCS", "a", "b", "IDX", "MINMATCHLEN", 4) == [
        b"matches", [[[4, 7], [5, 8]]], b"len", 6]
    assert r.execute_command("LCS", "a", "b", "IDX", "MINMATCHLEN", -4, "WITHMATCHLEN") == [
        b"matches", [[[4, 7], [5, 8], 4], [[2, 3], [0, 1], 2]], b"len", 6]
    assert r.execute_command("LCS", "a", "nokey") == b""
    assert r.execute_command("LCS", "nokey", "nokey2", "IDX") == [b"matches", [], b"len", 0]
    assert r.execute_command("LCS", "nokey", "a", "LEN") == 0


def test_lcs_resp3_map(hakv):
    client = hakv.client(protocol=3)
    try:
        client.response_callbacks.clear()
        client.execute_command("MSET", "a", "ohmytext", "b", "mynewtext")
        reply = client.execute_command("LCS", "a", "b", "IDX")
        assert reply == {b"matches": [[[4, 7], [5, 8]], [[2, 3], [0, 1]]], b"len": 6}
    finally:
        client.close()


def test_lcs_errors(r):
    r.execute_command("MSET", "a", "ohmytext", "b", "mynewtext")
    r.execute_command("SADD", "set", "x")
    assert err(r, "LCS", "a", "b", "IDX", "LEN") == (
        "If you want both the length and indexes, please just use IDX.")
    assert err(r, "LCS", "a", "b", "MINMATCHLEN") == "syntax error"
    assert err(r, "LCS", "a", "b", "MINMATCHLEN", "x") == "value is not an integer or out of range"
    assert err(r, "LCS", "a", "b", "foo") == "syntax error"
    assert err(r, "LCS", "a", "set") == "The specified keys must contain string values"
    assert err(r, "LCS", "set", "nokey", "foo") == "The specified keys must contain string values"
    assert err(r, "LCS", "a") == "wrong number of arguments for 'lcs' command"
    r.execute_command("SET", "big1", "x" * 12000)
    r.execute_command("SET", "big2", "y" * 12000)
    assert err(r, "LCS", "big1", "big2", "LEN") == (
        "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
    r.execute_command("SET", "big1", "xy" * 5000)
    r.execute_command("SET", "big2", "yx" * 5000)
    start = time.perf_counter()
    assert r.execute_command("LCS", "big1", "big2", "LEN") == 9999
    assert len(r.execute_command("LCS", "big1", "big2")) == 9999
    assert time.perf_counter() - start < 3
