"""The generic key commands (common/commands/keys.py) against a running
hakv-server through redis-py: DEL UNLINK EXISTS TYPE RENAME RENAMENX COPY MOVE
KEYS SCAN RANDOMKEY TOUCH OBJECT, the EXPIRE family, TTL and friends, PERSIST,
every error they answer, and how they interact with WATCH.

Values of every type are created with RESTORE (payloads from common/rdb.py),
so these tests do not depend on the list/hash/zset command families.
Propagation (EXPIRE -> PEXPIREAT, DEL for past deadlines) and keyspace
notifications are checked in-process, on a Server driven through the
dispatcher, where the streams can be recorded exactly.
"""

from __future__ import annotations

import time
from collections import deque

import pytest
import redis

from hakv.common import dispatch
from hakv.common.config import Settings
from hakv.common.connection import Client
from hakv.common.node import load_families
from hakv.common.rdb import dump_payload
from hakv.common.server import Server
from hakv.common.types.zset import ZSet

from procs import hakv_server

ResponseError = redis.exceptions.ResponseError


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def hakv(tmp_path_factory):
    """One hakv-server for the module (it is flushed before each test)."""
    proc = hakv_server(str(tmp_path_factory.mktemp("hakv"))).start()
    yield proc
    proc.stop()


@pytest.fixture
def r(hakv):
    client = hakv.client(protocol=2)
    client.response_callbacks.clear()  # raw replies: bytes, ints, lists, None
    client.flushall()
    client.execute_command("CONFIG", "SET", "maxmemory-policy", "noeviction")
    yield client
    client.close()


def err(r, *args) -> str:
    with pytest.raises(ResponseError) as info:
        r.execute_command(*args)
    return str(info.value)


def restore(r, key, value, ttl_ms=0):
    r.execute_command("RESTORE", key, ttl_ms, dump_payload(value))


def zset(pairs) -> ZSet:
    z = ZSet()
    for member, score in pairs:
        z.add(member, score)
    return z


def now_ms() -> int:
    return int(time.time() * 1000)


# ------------------------------------------------------------------ in-process node


class Node:
    """A Server without sockets: commands go through the dispatcher, and the
    propagated stream and keyspace notifications are recorded."""

    def __init__(self):
        load_families()
        self.server = Server(Settings())
        self.server.propagating = True
        self.stream = []
        self.events = []
        ks = self.server.keyspace
        ks.propagate = lambda dbid, argv: self.stream.append((dbid, [bytes(a) for a in argv]))
        ks.notify = lambda db, cls, event, key: self.events.append((db.id, cls, event, key))
        self.client = Client(self.server)

    def __call__(self, *args):
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        reply = dispatch.execute(self.client, argv)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def take(self):
        stream, events = self.stream, self.events
        self.stream, self.events = [], []
        return stream, events


@pytest.fixture
def node():
    return Node()


# ------------------------------------------------------------------ DEL EXISTS TYPE TOUCH


def test_del_unlink_exists(r):
    r.execute_command("MSET", "a", "1", "b", "2", "c", "3")
    assert r.execute_command("EXISTS", "a", "a", "nokey", "b") == 3
    assert r.execute_command("DEL", "a", "a", "nokey") == 1
    assert r.execute_command("UNLINK", "b", "c", "b") == 2
    assert r.execute_command("EXISTS", "a", "b", "c") == 0
    assert r.execute_command("DEL", "nokey") == 0
    for name in ("DEL", "UNLINK", "EXISTS"):
        assert err(r, name) == "wrong number of arguments for '%s' command" % name.lower()


def test_del_expired_key_counts_nothing(r):
    r.execute_command("SET", "a", "1", "PX", 30)
    time.sleep(0.06)
    assert r.execute_command("DEL", "a") == 0
    assert r.execute_command("EXISTS", "a") == 0


def test_type_of_every_kind(r):
    r.execute_command("SET", "s", "x")
    restore(r, "l", deque([b"a", b"b"]))
    restore(r, "h", {b"f": b"v"})
    restore(r, "st", {b"m"})
    restore(r, "z", zset([(b"m", 1.0)]))
    assert [r.execute_command("TYPE", k) for k in ("s", "l", "h", "st", "z", "nokey")] == [
        b"string", b"list", b"hash", b"set", b"zset", b"none"]
    assert err(r, "TYPE") == "wrong number of arguments for 'type' command"
    assert err(r, "TYPE", "a", "b") == "wrong number of arguments for 'type' command"


def test_touch_counts_existing_keys(r):
    r.execute_command("MSET", "a", "1", "b", "2")
    assert r.execute_command("TOUCH", "a", "b", "a", "nokey") == 3
    assert err(r, "TOUCH") == "wrong number of arguments for 'touch' command"


# ------------------------------------------------------------------ RENAME


def test_rename(r):
    r.execute_command("SET", "a", "1")
    r.execute_command("PEXPIRE", "a", 100000)
    r.execute_command("SET", "b", "2")
    assert r.execute_command("RENAME", "a", "b") == b"OK"
    assert r.execute_command("GET", "b") == b"1"
    assert 99000 < r.execute_command("PTTL", "b") <= 100000  # the TTL moves along
    assert r.execute_command("EXISTS", "a") == 0
    # Overwriting drops the destination's own TTL.
    r.execute_command("SET", "c", "3")
    r.execute_command("EXPIRE", "b", 500)
    r.execute_command("PERSIST", "b")
    r.execute_command("EXPIRE", "c", 100)
    assert r.execute_command("RENAME", "b", "c") == b"OK"
    assert r.execute_command("TTL", "c") == -1


def test_rename_errors_and_same_key(r):
    assert err(r, "RENAME", "nokey", "b") == "no such key"
    assert err(r, "RENAMENX", "nokey", "b") == "no such key"
    assert err(r, "RENAME", "nokey", "nokey") == "no such key"
    r.execute_command("SET", "a", "1")
    r.execute_command("EXPIRE", "a", 100)
    assert r.execute_command("RENAME", "a", "a") == b"OK"
    assert r.execute_command("RENAMENX", "a", "a") == 0
    assert r.execute_command("TTL", "a") == 100
    assert err(r, "RENAME", "a") == "wrong number of arguments for 'rename' command"
    assert err(r, "RENAMENX", "a", "b", "c") == (
        "wrong number of arguments for 'renamenx' command")


def test_renamenx(r):
    r.execute_command("MSET", "a", "1", "b", "2")
    assert r.execute_command("RENAMENX", "a", "b") == 0
    assert r.execute_command("MGET", "a", "b") == [b"1", b"2"]
    assert r.execute_command("RENAMENX", "a", "c") == 1
    assert r.execute_command("MGET", "a", "c") == [None, b"1"]


def test_rename_keeps_the_value_of_every_type(r):
    values = {"l": deque([b"x", b"y"]), "h": {b"f": b"v"}, "st": {b"1", b"2"},
              "z": zset([(b"a", 2.5)])}
    for key, value in values.items():
        restore(r, key, value)
        before = r.execute_command("DUMP", key)
        assert r.execute_command("RENAME", key, key + "2") == b"OK"
        assert r.execute_command("DUMP", key + "2") == before


# ------------------------------------------------------------------ COPY


def test_copy(r):
    r.execute_command("SET", "a", "hello")
    r.execute_command("PEXPIRE", "a", 100000)
    assert r.execute_command("COPY", "a", "b") == 1
    assert r.execute_command("GET", "b") == b"hello"
    assert 99000 < r.execute_command("PTTL", "b") <= 100000
    assert r.execute_command("COPY", "a", "b") == 0  # exists, no REPLACE
    r.execute_command("SET", "a", "other")
    assert r.execute_command("COPY", "a", "b", "REPLACE") == 1
    assert r.execute_command("GET", "b") == b"other"
    assert r.execute_command("TTL", "b") == -1  # the source has no TTL any more
    assert r.execute_command("COPY", "nokey", "b") == 0
    assert r.execute_command("COPY", "a", "b", "replace", "replace") == 1


def test_copy_to_another_db(r):
    r.execute_command("SET", "a", "1")
    assert r.execute_command("COPY", "a", "a", "DB", 3) == 1
    assert r.execute_command("COPY", "a", "a", "DB", 3) == 0
    assert r.execute_command("COPY", "a", "a", "DB", 3, "REPLACE") == 1
    assert r.execute_command("COPY", "a", "b", "DB", 0) == 1  # DB 0 is this DB
    r.execute_command("SELECT", 3)
    try:
        assert r.execute_command("GET", "a") == b"1"
    finally:
        r.execute_command("SELECT", 0)


def test_copy_errors(r):
    r.execute_command("SET", "a", "1")
    assert err(r, "COPY", "a", "a") == "source and destination objects are the same"
    assert err(r, "COPY", "a", "a", "DB", 0) == "source and destination objects are the same"
    assert err(r, "COPY", "a", "b", "DB", 16) == "DB index is out of range"
    assert err(r, "COPY", "a", "b", "DB", -1) == "DB index is out of range"
    assert err(r, "COPY", "a", "b", "DB", "99999999999") == (
        "value is out of range, value must between -2147483648 and 2147483647")
    assert err(r, "COPY", "a", "b", "DB", "x") == "value is not an integer or out of range"
    assert err(r, "COPY", "a", "b", "DB") == "syntax error"
    assert err(r, "COPY", "a", "b", "foo") == "syntax error"
    assert err(r, "COPY", "a") == "wrong number of arguments for 'copy' command"


def test_copy_of_collections_is_independent(node):
    node("SADD", "s", "a", "b")
    node.server.keyspace[0].data[b"h"] = {b"f": b"v"}
    node.server.keyspace[0].data[b"l"] = deque([b"x"])
    node.server.keyspace[0].data[b"z"] = zset([(b"m", 1.0)])
    for key in ("s", "h", "l", "z"):
        assert node("COPY", key, key + "2") == 1
        data = node.server.keyspace[0].data
        original, copied = data[key.encode()], data[(key + "2").encode()]
        assert copied is not original and type(copied) is type(original)
        if isinstance(original, ZSet):
            assert list(copied.items()) == list(original.items())
        else:
            assert copied == original
    node("SADD", "s", "c")
    assert node("SCARD", "s2") == 2


# ------------------------------------------------------------------ MOVE


def test_move(r):
    r.execute_command("SET", "a", "1")
    r.execute_command("EXPIRE", "a", 100)
    assert r.execute_command("MOVE", "a", 2) == 1
    assert r.execute_command("EXISTS", "a") == 0
    assert r.execute_command("MOVE", "nokey", 2) == 0
    r.execute_command("SET", "a", "local")
    assert r.execute_command("MOVE", "a", 2) == 0  # exists there already
    r.execute_command("SELECT", 2)
    try:
        assert r.execute_command("GET", "a") == b"1"
        assert r.execute_command("TTL", "a") == 100
    finally:
        r.execute_command("SELECT", 0)
    assert r.execute_command("GET", "a") == b"local"


def test_move_errors(r):
    r.execute_command("SET", "a", "1")
    assert err(r, "MOVE", "a", 0) == "source and destination objects are the same"
    assert err(r, "MOVE", "a", 16) == "DB index is out of range"
    assert err(r, "MOVE", "a", -1) == "DB index is out of range"
    assert err(r, "MOVE", "a", "x") == "value is not an integer or out of range"
    assert err(r, "MOVE", "a", "99999999999") == (
        "value is out of range, value must between -2147483648 and 2147483647")
    assert err(r, "MOVE", "a") == "wrong number of arguments for 'move' command"


# ------------------------------------------------------------------ KEYS SCAN RANDOMKEY


def test_keys(r):
    r.execute_command("MSET", "one", "1", "two", "2", "three", "3", "", "empty", "t[x]", "4")
    assert sorted(r.execute_command("KEYS", "*")) == sorted(
        [b"one", b"two", b"three", b"", b"t[x]"])
    assert sorted(r.execute_command("KEYS", "t*")) == [b"t[x]", b"three", b"two"]
    assert sorted(r.execute_command("KEYS", "???")) == [b"one", b"two"]
    assert r.execute_command("KEYS", "t\\[x\\]") == [b"t[x]"]
    assert sorted(r.execute_command("KEYS", "[ot]*e")) == [b"one", b"three"]
    assert r.execute_command("KEYS", "nomatch*") == []
    assert err(r, "KEYS") == "wrong number of arguments for 'keys' command"
    assert err(r, "KEYS", "a", "b") == "wrong number of arguments for 'keys' command"


def test_keys_skips_expired(r):
    r.execute_command("SET", "live", "1")
    r.execute_command("SET", "dying", "1", "PX", 30)
    time.sleep(0.06)
    assert r.execute_command("KEYS", "*") == [b"live"]


def scan_all(r, *opts, count=None):
    cursor, seen, calls = b"0", [], 0
    while True:
        args = ["SCAN", cursor, *opts] + (["COUNT", count] if count else [])
        cursor, batch = r.execute_command(*args)
        seen += batch
        calls += 1
        if cursor == b"0":
            return seen, calls


def test_scan_full_iteration(r):
    keys = {b"k%d" % i for i in range(500)}
    r.execute_command("MSET", *[x for k in keys for x in (k, b"v")])
    seen, calls = scan_all(r, count=20)
    assert set(seen) == keys
    assert calls > 10  # COUNT is honoured as a hint
    seen, _ = scan_all(r, "MATCH", "k1*", count=50)
    assert set(seen) == {k for k in keys if k.startswith(b"k1")}
    seen, _ = scan_all(r, "MATCH", "*", count=1000)
    assert set(seen) == keys


def test_scan_type_filter(r):
    r.execute_command("SET", "s", "x")
    restore(r, "l", deque([b"a"]))
    restore(r, "h", {b"f": b"v"})
    restore(r, "st", {b"m"})
    restore(r, "z", zset([(b"m", 1.0)]))
    for name, expected in (("string", b"s"), ("LIST", b"l"), ("hash", b"h"), ("set", b"st"),
                           ("zset", b"z")):
        seen, _ = scan_all(r, "TYPE", name)
        assert seen == [expected]
    assert scan_all(r, "TYPE", "stream")[0] == []
    assert scan_all(r, "TYPE", "nosuchtype")[0] == []


def test_scan_skips_expired_and_empty_key(r):
    r.execute_command("SET", "", "empty")
    r.execute_command("SET", "gone", "1", "PX", 20)
    time.sleep(0.05)
    assert scan_all(r)[0] == [b""]
    assert r.execute_command("SCAN", "") == [b"0", [b""]]  # an empty cursor is 0


def test_scan_errors(r):
    assert err(r, "SCAN", "x") == "invalid cursor"
    assert err(r, "SCAN", " 1") == "invalid cursor"
    assert err(r, "SCAN", "18446744073709551616") == "invalid cursor"
    assert err(r, "SCAN", 0, "COUNT", 0) == "syntax error"
    assert err(r, "SCAN", 0, "COUNT", -1) == "syntax error"
    assert err(r, "SCAN", 0, "COUNT", "x") == "value is not an integer or out of range"
    assert err(r, "SCAN", 0, "COUNT") == "syntax error"
    assert err(r, "SCAN", 0, "MATCH") == "syntax error"
    assert err(r, "SCAN", 0, "foo", "bar") == "syntax error"
    assert err(r, "SCAN") == "wrong number of arguments for 'scan' command"
    # Big or negative cursors are accepted (negative wraps, like strtoul).
    assert r.execute_command("SCAN", "18446744073709551615")[0] == b"0"
    assert r.execute_command("SCAN", "-1")[0] == b"0"


def test_randomkey(r):
    assert r.execute_command("RANDOMKEY") is None
    r.execute_command("MSET", "a", "1", "b", "2")
    assert {r.execute_command("RANDOMKEY") for _ in range(50)} == {b"a", b"b"}
    assert err(r, "RANDOMKEY", "x") == "wrong number of arguments for 'randomkey' command"


# ------------------------------------------------------------------ OBJECT


def encoding(r, key):
    return r.execute_command("OBJECT", "ENCODING", key)


def test_object_encoding_strings(r):
    cases = {"int": "12345", "neg": "-9223372036854775808", "big": "9223372036854775808",
             "zero": "0", "lead": "01", "plus": "+1", "float": "1.5",
             "e44": "a" * 44, "r45": "a" * 45, "empty": ""}
    for key, value in cases.items():
        r.execute_command("SET", key, value)
    assert {k: encoding(r, k) for k in cases} == {
        "int": b"int", "neg": b"int", "big": b"embstr", "zero": b"int", "lead": b"embstr",
        "plus": b"embstr", "float": b"embstr", "e44": b"embstr", "r45": b"raw",
        "empty": b"embstr"}
    # Strings modified in place are raw in Redis, however short.
    r.execute_command("SET", "ap", "12")
    r.execute_command("APPEND", "ap", "3")
    r.execute_command("APPEND", "fresh", "7")  # a new key: encoded like SET
    r.execute_command("SETRANGE", "sr", 0, "ab")
    r.execute_command("SETBIT", "sb", 3, 1)
    r.execute_command("SET", "sb2", "5")
    r.execute_command("SETBIT", "sb2", 0, 0)  # no change, still unshared
    r.execute_command("SET", "f", "1.5")
    r.execute_command("INCRBYFLOAT", "f", "1.5")  # "3": embstr, not int
    r.execute_command("SET", "n", "5")
    r.execute_command("INCR", "n")
    assert [encoding(r, k) for k in ("ap", "fresh", "sr", "sb", "sb2", "f", "n")] == [
        b"raw", b"int", b"raw", b"raw", b"raw", b"embstr", b"int"]
    # A later SET re-encodes from the content.
    r.execute_command("SET", "sb", "\x10")
    r.execute_command("SET", "ap", "123")
    assert [encoding(r, "sb"), encoding(r, "ap")] == [b"embstr", b"int"]
    # RENAME and COPY keep the encoding.
    r.execute_command("APPEND", "ap", "4")
    r.execute_command("COPY", "ap", "ap2")
    r.execute_command("RENAME", "ap", "ap3")
    assert [encoding(r, "ap2"), encoding(r, "ap3")] == [b"raw", b"raw"]


def test_object_encoding_collections(r):
    restore(r, "l", deque([b"a"] * 3))
    restore(r, "h", {b"f%d" % i: b"v" for i in range(128)})
    restore(r, "h3", {b"f": b"v" * 65})
    restore(r, "s", {b"%d" % i for i in range(512)})
    restore(r, "s2", {b"%d" % i for i in range(513)})
    restore(r, "s3", {b"1", b"x"})
    restore(r, "s4", {b"01"})
    restore(r, "z", zset([(b"m%d" % i, i) for i in range(128)]))
    restore(r, "z2", zset([(b"m%d" % i, i) for i in range(129)]))
    restore(r, "z3", zset([(b"m" * 65, 1.0)]))
    assert {k: encoding(r, k) for k in ("l", "h", "h3", "s", "s2", "s3", "s4", "z", "z2",
                                        "z3")} == {
        "l": b"quicklist", "h": b"listpack", "h3": b"hashtable",
        "s": b"intset", "s2": b"hashtable", "s3": b"hashtable", "s4": b"hashtable",
        "z": b"listpack", "z2": b"skiplist", "z3": b"skiplist"}
    r.execute_command("CONFIG", "SET", "hash-max-listpack-entries", 2)
    r.execute_command("CONFIG", "SET", "set-max-intset-entries", 1000)
    try:
        restore(r, "h4", {b"f%d" % i: b"v" for i in range(3)})
        restore(r, "s5", {b"%d" % i for i in range(513)})
        assert [encoding(r, "h4"), encoding(r, "s5")] == [b"hashtable", b"intset"]
    finally:
        r.execute_command("CONFIG", "SET", "hash-max-listpack-entries", 512)
        r.execute_command("CONFIG", "SET", "set-max-intset-entries", 512)


def test_object_encoding_hash_limits(node):
    # (Built in place: HSET lives in another command family.)
    data = node.server.keyspace[0].data
    data[b"h"] = {b"f%d" % i: b"v" for i in range(512)}
    data[b"h2"] = {b"f%d" % i: b"v" for i in range(513)}
    data[b"h3"] = {b"f" * 64: b"v" * 64}
    data[b"h4"] = {b"f" * 65: b"v"}
    assert [node("OBJECT", "ENCODING", k) for k in ("h", "h2", "h3", "h4")] == [
        b"listpack", b"hashtable", b"listpack", b"hashtable"]


def test_object_encoding_is_sticky_once_converted(node):
    node("SADD", "s", *range(600))
    assert node("OBJECT", "ENCODING", "s") == b"hashtable"
    node("SREM", "s", *range(10, 600))
    assert node("OBJECT", "ENCODING", "s") == b"hashtable"  # Redis never converts back
    node("DEL", "s")
    node("SADD", "s", 1, 2)
    assert node("OBJECT", "ENCODING", "s") == b"intset"
    # A converted collection deleted by another command is let go by the cron.
    node("SADD", "t", *range(600))
    assert node("OBJECT", "ENCODING", "t") == b"hashtable"
    meta = node.server.keyspace.key_meta
    assert (0, b"t") in meta.collections
    node.server.keyspace[0].data.pop(b"t")
    for job in node.server.cron_jobs:
        job()
    assert (0, b"t") not in meta.collections


def test_note_converted_makes_the_big_encoding_stick(node):
    """The API the collection commands call when a value crosses the limits."""
    from hakv.common.commands.keys import note_converted

    data = node.server.keyspace[0].data
    data[b"h"] = value = {b"f": b"v"}
    note_converted(node.client, b"h", value)
    assert node("OBJECT", "ENCODING", "h") == b"hashtable"
    data[b"h"] = {b"f": b"v"}  # another object under the same key: content decides
    assert node("OBJECT", "ENCODING", "h") == b"listpack"
    data[b"z"] = value = zset([(b"a", 1.0)])
    note_converted(node.client, b"z", value)
    assert node("RENAME", "z", "z2") == "OK"  # the value moves, its encoding too
    assert node("OBJECT", "ENCODING", "z2") == b"skiplist"


def test_object_refcount(r):
    r.execute_command("SET", "small", "9999")
    r.execute_command("SET", "large", "10000")
    r.execute_command("SET", "text", "hello")
    r.execute_command("SET", "neg", "-1")
    restore(r, "h", {b"f": b"v"})
    r.execute_command("COPY", "small", "copied")
    counts = [r.execute_command("OBJECT", "REFCOUNT", k)
              for k in ("small", "large", "text", "neg", "h", "copied")]
    assert counts == [2147483647, 1, 1, 1, 1, 1]
    assert r.execute_command("OBJECT", "REFCOUNT", "nokey") is None


def test_object_idletime_and_touch(r):
    r.execute_command("SET", "a", "hello")
    assert r.execute_command("OBJECT", "IDLETIME", "a") == 0
    time.sleep(2.1)
    # TTL, TYPE and EXISTS are not accesses.
    r.execute_command("TTL", "a")
    r.execute_command("TYPE", "a")
    r.execute_command("EXISTS", "a")
    assert r.execute_command("OBJECT", "IDLETIME", "a") >= 2
    assert r.execute_command("TOUCH", "a") == 1
    assert r.execute_command("OBJECT", "IDLETIME", "a") == 0
    assert r.execute_command("OBJECT", "IDLETIME", "nokey") is None


def test_object_freq_needs_an_lfu_policy(r):
    r.execute_command("SET", "b", "hello")
    assert err(r, "OBJECT", "FREQ", "b") == (
        "An LFU maxmemory policy is not selected, access frequency not tracked. Please note "
        "that when switching between policies at runtime LRU and LFU data will take some time "
        "to adjust.")
    # The counter decays by one per lfu-decay-time minutes (a minute boundary
    # between two commands would take one off) and grows with probability
    # 1 / ((counter - 5) * lfu-log-factor + 1): decay off and, further down,
    # a log factor of 0 make every step certain (the same numbers as Redis).
    saved = dict(zip(*[iter(r.execute_command("CONFIG", "GET", "lfu-*"))] * 2))
    try:
        r.execute_command("CONFIG", "SET", "lfu-decay-time", "0", "lfu-log-factor", "10")
        r.execute_command("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
        r.execute_command("SET", "a", "hello")
        assert r.execute_command("OBJECT", "FREQ", "a") == 5  # a new key starts at 5
        assert r.execute_command("OBJECT", "FREQ", "a") == 5  # OBJECT is not an access
        r.execute_command("TOUCH", "a")
        assert r.execute_command("OBJECT", "FREQ", "a") == 6  # the first access always counts
        r.execute_command("CONFIG", "SET", "lfu-log-factor", "0")
        for _ in range(10):
            r.execute_command("GET", "a")
        assert r.execute_command("OBJECT", "FREQ", "a") == 16  # every access counts
        for _ in range(250):
            r.execute_command("TOUCH", "a")
        assert r.execute_command("OBJECT", "FREQ", "a") == 255  # and it saturates
        assert r.execute_command("OBJECT", "FREQ", "nokey") is None
        assert err(r, "OBJECT", "IDLETIME", "a") == (
            "An LFU maxmemory policy is selected, idle time not tracked. Please note that when "
            "switching between policies at runtime LRU and LFU data will take some time to "
            "adjust.")
    finally:
        r.execute_command("CONFIG", "SET", *[x for kv in saved.items() for x in kv])


def test_object_help_and_errors(r):
    lines = r.execute_command("OBJECT", "HELP")
    assert lines[0].startswith(b"OBJECT <subcommand>")
    assert any(line.startswith(b"ENCODING") for line in lines)
    assert r.execute_command("OBJECT", "ENCODING", "nokey") is None
    assert err(r, "OBJECT", "foo") == "unknown subcommand 'foo'. Try OBJECT HELP."
    assert err(r, "OBJECT") == "wrong number of arguments for 'object' command"
    assert err(r, "OBJECT", "ENCODING") == (
        "wrong number of arguments for 'object|encoding' command")
    assert err(r, "OBJECT", "ENCODING", "a", "b") == (
        "wrong number of arguments for 'object|encoding' command")
    assert err(r, "OBJECT", "HELP", "x") == "wrong number of arguments for 'object|help' command"


# ------------------------------------------------------------------ expiry


def test_expire_and_ttl_family(r):
    r.execute_command("SET", "a", "1")
    assert r.execute_command("EXPIRE", "a", 100) == 1
    assert r.execute_command("TTL", "a") == 100
    assert 99000 < r.execute_command("PTTL", "a") <= 100000
    assert r.execute_command("PEXPIRE", "a", 5500) == 1
    assert r.execute_command("TTL", "a") in (5, 6)  # rounded to the nearest second
    at = int(time.time()) + 1000
    assert r.execute_command("EXPIREAT", "a", at) == 1
    assert r.execute_command("EXPIRETIME", "a") == at
    assert r.execute_command("PEXPIRETIME", "a") == at * 1000
    assert r.execute_command("PEXPIREAT", "a", at * 1000 + 600) == 1
    assert r.execute_command("EXPIRETIME", "a") == at + 1  # rounded, as Redis does
    assert r.execute_command("PEXPIRETIME", "a") == at * 1000 + 600
    assert r.execute_command("PERSIST", "a") == 1
    assert r.execute_command("PERSIST", "a") == 0
    for cmd in ("TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"):
        assert r.execute_command(cmd, "a") == -1
        assert r.execute_command(cmd, "nokey") == -2
    assert r.execute_command("EXPIRE", "nokey", 10) == 0
    assert r.execute_command("PERSIST", "nokey") == 0


def test_key_expires(r):
    r.execute_command("SET", "a", "1")
    assert r.execute_command("PEXPIRE", "a", 50) == 1
    assert r.execute_command("GET", "a") == b"1"
    time.sleep(0.1)
    assert r.execute_command("GET", "a") is None
    assert r.execute_command("TTL", "a") == -2


def test_expire_in_the_past_deletes(r):
    for cmd, arg in (("EXPIRE", 0), ("EXPIRE", -5), ("PEXPIRE", -1), ("EXPIREAT", 1),
                     ("PEXPIREAT", 100), ("PEXPIRE", "-9223372036854775808")):
        r.execute_command("SET", "a", "1")
        assert r.execute_command(cmd, "a", arg) == 1
        assert r.execute_command("EXISTS", "a") == 0


def test_expire_options(r):
    r.execute_command("SET", "a", "1")
    assert r.execute_command("EXPIRE", "a", 100, "XX") == 0  # no TTL yet
    assert r.execute_command("EXPIRE", "a", 100, "GT") == 0  # no TTL = infinite
    assert r.execute_command("EXPIRE", "a", 100, "NX") == 1
    assert r.execute_command("EXPIRE", "a", 200, "NX") == 0
    assert r.execute_command("EXPIRE", "a", 50, "GT") == 0
    assert r.execute_command("EXPIRE", "a", 500, "gt") == 1
    assert r.execute_command("EXPIRE", "a", 600, "LT") == 0
    assert r.execute_command("EXPIRE", "a", 50, "lt") == 1
    assert r.execute_command("EXPIRE", "a", 70, "XX", "GT") == 1
    assert r.execute_command("TTL", "a") == 70
    assert r.execute_command("EXPIRE", "a", 100, "NX", "NX") == 0
    r.execute_command("PERSIST", "a")
    assert r.execute_command("EXPIRE", "a", 100, "LT") == 1  # LT passes without a TTL
    assert r.execute_command("TTL", "a") == 100


def test_expire_errors(r):
    r.execute_command("SET", "a", "1")
    nx_msg = "NX and XX, GT or LT options at the same time are not compatible"
    assert err(r, "EXPIRE", "a", 100, "NX", "XX") == nx_msg
    assert err(r, "EXPIRE", "a", 100, "NX", "GT") == nx_msg
    assert err(r, "PEXPIRE", "a", 100, "LT", "NX") == nx_msg
    assert err(r, "EXPIRE", "a", 100, "GT", "LT") == (
        "GT and LT options at the same time are not compatible")
    assert err(r, "EXPIRE", "a", 100, "foo") == "Unsupported option foo"
    assert err(r, "EXPIRE", "a", "x") == "value is not an integer or out of range"
    assert err(r, "EXPIRE", "a", "x", "foo") == "Unsupported option foo"  # options first
    for cmd, arg in (("EXPIRE", "9223372036854775807"), ("EXPIRE", "9223372036854775"),
                     ("EXPIRE", "-9223372036854775808"), ("PEXPIRE", "9223372036854775807"),
                     ("EXPIREAT", "9223372036854775807")):
        assert err(r, cmd, "a", arg) == "invalid expire time in '%s' command" % cmd.lower()
    assert r.execute_command("PEXPIREAT", "a", "9223372036854775807") == 1
    assert err(r, "EXPIRE", "a") == "wrong number of arguments for 'expire' command"
    assert err(r, "TTL") == "wrong number of arguments for 'ttl' command"
    assert err(r, "PERSIST", "a", "b") == "wrong number of arguments for 'persist' command"
    assert err(r, "EXPIRETIME", "a", "b") == (
        "wrong number of arguments for 'expiretime' command")


def test_watch_sees_key_commands(r, hakv):
    other = hakv.client()
    try:
        for change in (("EXPIRE", "w", 100), ("PERSIST", "w"), ("RENAME", "w", "w2"),
                       ("MOVE", "w", 1), ("DEL", "w"), ("COPY", "src", "w", "REPLACE"),
                       ("PEXPIRE", "w", 0)):
            r.execute_command("FLUSHALL")
            r.execute_command("MSET", "w", "1", "src", "2")
            r.execute_command("EXPIRE", "w", 50)
            r.execute_command("WATCH", "w")
            other.execute_command(*change)
            r.execute_command("MULTI")
            r.execute_command("SET", "x", "1")
            assert r.execute_command("EXEC") is None, change
        # Reads and commands that change nothing do not abort the transaction.
        r.execute_command("FLUSHALL")
        r.execute_command("SET", "w", "1")
        r.execute_command("WATCH", "w")
        for read in (("TOUCH", "w"), ("TTL", "w"), ("OBJECT", "ENCODING", "w"),
                     ("PERSIST", "w"), ("EXPIRE", "w", 100, "XX")):
            other.execute_command(*read)
        r.execute_command("MULTI")
        r.execute_command("SET", "x", "1")
        assert r.execute_command("EXEC") == [b"OK"]
    finally:
        other.close()


# ------------------------------------------------------------------ propagation, events


def test_expire_propagates_absolute_time(node):
    node("SET", "a", "1")
    node.take()
    before = now_ms()
    assert node("EXPIRE", "a", 100) == 1
    stream, events = node.take()
    (dbid, argv), = stream
    assert dbid == 0 and argv[:2] == [b"PEXPIREAT", b"a"]
    assert before + 100000 <= int(argv[2]) <= now_ms() + 100000
    assert events == [(0, "g", b"expire", b"a")]
    assert node("PEXPIRE", "a", 200000, "GT") == 1
    stream, _ = node.take()
    assert stream[0][1][3:] == [b"GT"]  # the options go along, as in Redis
    assert node("PEXPIREAT", "a", 99999999999999) == 1
    assert node.take()[0] == [(0, [b"PEXPIREAT", b"a", b"99999999999999"])]
    # Nothing changed, nothing propagated.
    assert node("EXPIRE", "a", 100, "NX") == 0
    assert node("EXPIRE", "nokey", 100) == 0
    assert node.take() == ([], [])


def test_past_expire_propagates_del(node):
    node("SET", "a", "1")
    node.take()
    assert node("EXPIRE", "a", -1) == 1
    assert node.take() == ([(0, [b"DEL", b"a"])], [(0, "g", b"del", b"a")])
    # The link from our primary sets the deadline; the primary's DEL follows.
    node("SET", "b", "1")
    node.take()
    node.client.is_primary = True
    assert node("PEXPIREAT", "b", 1) == 1
    assert node.server.keyspace[0].expires[b"b"] == 1


def test_key_command_events_and_stream(node):
    node("MSET", "a", "1", "b", "2")
    node.take()
    assert node("DEL", "a", "nokey") == 1
    assert node.take() == ([(0, [b"DEL", b"a", b"nokey"])], [(0, "g", b"del", b"a")])
    assert node("RENAME", "b", "c") == "OK"
    assert node.take() == ([(0, [b"RENAME", b"b", b"c"])],
                           [(0, "g", b"rename_from", b"b"), (0, "g", b"rename_to", b"c")])
    assert node("COPY", "c", "d", "DB", "2") == 1
    assert node.take() == ([(0, [b"COPY", b"c", b"d", b"DB", b"2"])],
                           [(2, "g", b"copy_to", b"d")])
    assert node("MOVE", "c", "3") == 1
    assert node.take() == ([(0, [b"MOVE", b"c", b"3"])],
                           [(0, "g", b"move_from", b"c"), (3, "g", b"move_to", b"c")])
    node("SET", "e", "1", "EX", "100")
    node.take()
    assert node("PERSIST", "e") == 1
    assert node.take() == ([(0, [b"PERSIST", b"e"])], [(0, "g", b"persist", b"e")])
    # Reads and no-ops propagate nothing.
    for args in (("EXISTS", "e"), ("TOUCH", "e"), ("TTL", "e"), ("KEYS", "*"), ("SCAN", "0"),
                 ("RANDOMKEY",), ("TYPE", "e"), ("OBJECT", "ENCODING", "e"),
                 ("RENAMENX", "e", "e"), ("DEL", "nokey"), ("PERSIST", "e"),
                 ("COPY", "nokey", "x"), ("MOVE", "nokey", "1")):
        node(*args)
    assert node.take() == ([], [])


def test_rename_copy_move_wake_blocked_clients(node):
    """A list or sorted set arriving under a key somebody blocks on marks the
    key ready (the handlers are called directly: no real client is blocked)."""
    from hakv.common.commands import keys as key_commands

    ks = node.server.keyspace
    client = node.client
    for dbid, handler, argv in (
            (0, key_commands.rename, [b"rename", b"src", b"dst"]),
            (0, key_commands.copy, [b"copy", b"src", b"dst"]),
            (1, key_commands.copy, [b"copy", b"src", b"dst", b"DB", b"1"]),
            (1, key_commands.move, [b"move", b"dst", b"1"])):
        ks.flushall()
        ks.ready_keys.clear()
        ks[dbid].blocked[b"dst"] = deque(["a blocked client"])
        ks[0].data[b"src"] = deque([b"x"])
        ks[0].data[b"dst"] = zset([(b"m", 1.0)])
        if handler is key_commands.copy and dbid == 0:
            del ks[0].data[b"dst"]
        handler(client, argv)
        assert (ks[dbid], b"dst") in ks.ready_keys, argv
        ks[dbid].blocked.clear()
