"""RDB writer and loader: round trips of every type and encoding, the compact
encodings older Redis versions write (built here byte by byte from the format
description), DUMP payloads, and corrupt or truncated input."""

from __future__ import annotations

import io
import math
import os
import random
import struct
from collections import deque

import pytest

from hakv.common import rdb
from hakv.common.crc64 import crc64
from hakv.common.rdb import (Aux, EncodingLimits, Function, Key, ModuleAux, RdbError,
                             RdbParser, RdbWriter, ResizeDb)
from hakv.common.types.zset import ZSet
from persistence_support import zset


def plain(value):
    """A comparable form of a value (ZSet has no __eq__ of its own)."""
    if isinstance(value, ZSet):
        return ("zset", list(value.items()))
    return value


def write(dbs, aux=None, functions=(), **kw) -> bytes:
    """dbs: {dbid: {key: value or (value, expire_ms)}}."""
    out = io.BytesIO()
    w = RdbWriter(out, **kw)
    w.write_header(aux if aux is not None else {"redis-ver": "7.0.15", "redis-bits": 64})
    w.write_functions(functions)
    for dbid, keys in dbs.items():
        items = []
        for key, v in keys.items():
            value, expire = v if isinstance(v, tuple) else (v, None)
            items.append((key, value, expire))
        w.write_db(dbid, len(items), sum(1 for i in items if i[2] is not None), items)
    w.finish()
    return out.getvalue()


def read(data: bytes, **kw) -> list:
    return list(rdb.load(io.BytesIO(data), **kw))


def keys_of(events) -> dict:
    return {(e.db, e.key): (plain(e.value), e.expire_ms) for e in events if isinstance(e, Key)}


SAMPLE = {
    b"str": b"hello",
    b"empty-str": b"",
    b"int8": b"-128",
    b"int16": b"32767",
    b"int32": b"-2147483648",
    b"int-too-big": b"2147483648",
    b"int64": b"9223372036854775807",
    b"not-canonical": b"007",
    b"plus": b"+1",
    b"minus-zero": b"-0",
    b"space": b" 1",
    b"underscore": b"1_0",
    b"compressible": b"abcdefgh" * 50,
    b"random": bytes(random.Random(1).randbytes(300)),
    b"len14": b"q" * 300,
    b"len32": bytes(random.Random(2).randbytes(20_000)),
    b"list": deque([b"a", b"1", b"-3000", b"x" * 100, b"", b"70000", b"-9000000000"]),
    b"list-big": deque(b"element-%d" % i for i in range(20_000)),
    b"list-fat": deque([b"y" * 20_000, b"z", bytes(random.Random(3).randbytes(9000))]),
    b"hash": {b"f": b"v", b"n": b"7", b"": b"empty-field"},
    b"hash-long-value": {b"f": b"v" * 65, b"g": b"1"},
    b"hash-many": {b"f%d" % i: b"%d" % i for i in range(300)},
    b"set": {b"a", b"b", b"c"},
    b"intset16": {b"1", b"2", b"-32768"},
    b"intset32": {b"1", b"70000"},
    b"intset64": {b"1", b"-9223372036854775808"},
    b"set-mixed": {b"1", b"x"},
    b"set-big": {b"%d" % i for i in range(1000)},
    b"zset": zset([(b"a", 1.5), (b"b", 2), (b"c", math.inf), (b"d", -1e300), (b"e", -math.inf),
                   (b"f", 0.1), (b"12", 3), (b"g", 2.0 ** 62), (b"h", 2.0 ** 63), (b"i", -0.0)]),
    b"zset-long-member": zset([(b"m" * 65, 1.0), (b"n", 2.0)]),
    b"zset-big": zset([(b"m%d" % i, i * 0.25) for i in range(500)]),
}


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("checksum", [True, False])
def test_round_trip_every_type(compress, checksum):
    dbs = {0: dict(SAMPLE), 3: {b"ttl": (b"v", 1_700_000_000_123), b"zs": (SAMPLE[b"zset"], 99)}}
    data = write(dbs, compress=compress, checksum=checksum)
    if not checksum:
        assert data[-8:] == bytes(8)
    else:
        assert int.from_bytes(data[-8:], "little") == crc64(data[:-8])
    events = read(data)
    got = keys_of(events)
    want = {(dbid, k): (plain(v[0] if isinstance(v, tuple) else v),
                        v[1] if isinstance(v, tuple) else None)
            for dbid, keys in dbs.items() for k, v in keys.items()}
    assert got == want
    assert [e for e in events if isinstance(e, ResizeDb)] == [
        ResizeDb(0, len(SAMPLE), 0), ResizeDb(3, 2, 2)]


def test_header_aux_and_functions():
    code = b"#!lua name=mylib\nredis.register_function('f', function() return 1 end)"
    data = write({}, aux={"redis-ver": "7.0.15", "redis-bits": 64, "ctime": 1700000000,
                          "used-mem": 123456789, "repl-stream-db": 0,
                          "repl-id": "a" * 40, "repl-offset": 0, "aof-base": 0},
                 functions=[code, "#!lua name=other\n"])
    assert data.startswith(b"REDIS0010\xfa")
    events = read(data)
    assert events == [
        Aux(b"redis-ver", b"7.0.15"), Aux(b"redis-bits", b"64"), Aux(b"ctime", b"1700000000"),
        Aux(b"used-mem", b"123456789"), Aux(b"repl-stream-db", b"0"),
        Aux(b"repl-id", b"a" * 40), Aux(b"repl-offset", b"0"), Aux(b"aof-base", b"0"),
        Function(code), Function(b"#!lua name=other\n")]


def test_integer_aux_values_use_int_encoding():
    data = write({}, aux={"redis-bits": 64})
    # AUX opcode, "redis-bits" as a 10-byte string, then 64 as INT8 (0xc0 0x40)
    assert data[9:9 + 1 + 11 + 2] == b"\xfa\x0aredis-bits\xc0\x40"


def payload_type(value, **kw) -> int:
    return rdb.dump_payload(value, **kw)[0]


@pytest.mark.parametrize("value, rdb_type", [
    (b"x", 0),
    (deque([b"a"]), 18),
    ({b"f": b"v"}, 16),
    ({b"f": b"v" * 65}, 4),
    ({b"f%d" % i: b"v" for i in range(129)}, 4),
    ({b"1", b"2"}, 11),
    ({b"%d" % i for i in range(513)}, 2),
    ({b"a"}, 2),
    (zset([(b"a", 1)]), 17),
    (zset([(b"a" * 65, 1)]), 5),
    (zset([(b"m%d" % i, i) for i in range(129)]), 5),
])
def test_encodings_match_redis_defaults(value, rdb_type):
    assert payload_type(value) == rdb_type


def test_encoding_limits_are_configurable():
    limits = EncodingLimits(hash_max_listpack_entries=1, set_max_intset_entries=1,
                            zset_max_listpack_entries=0)
    assert payload_type({b"a": b"1", b"b": b"2"}, limits=limits) == 4
    assert payload_type({b"1", b"2"}, limits=limits) == 2
    assert payload_type(zset([(b"a", 1)]), limits=limits) == 5
    for value in ({b"a": b"1", b"b": b"2"}, {b"1", b"2"}, zset([(b"a", 1)])):
        assert plain(rdb.load_payload(rdb.dump_payload(value, limits=limits))) == plain(value)


def test_list_nodes_respect_size_limit():
    items = deque(b"%05d-" % i + b"p" * 50 for i in range(2000))
    for fill, max_bytes, max_count in ((-1, 4096, None), (-2, 8192, None), (-5, 65536, None),
                                       (10, 8192, 10), (1000, 8192, 1000)):
        payload = rdb.dump_payload(items, limits=EncodingLimits(list_max_listpack_size=fill),
                                   compress=False)
        end = len(payload) - 10
        nodes, pos = rdb._read_len(payload, 1, end)
        counts, sizes = [], []
        for _ in range(nodes):
            assert payload[pos] == 2  # packed (listpack) node
            blob, pos = rdb._read_string(payload, pos + 1, end)
            assert len(blob) <= max_bytes
            sizes.append(len(blob))
            counts.append(len(rdb._listpack_entries(blob, "List")))
        assert pos == end and sum(counts) == 2000
        if max_count:
            assert max(counts) <= max_count
        # the first node is full: one more 58-byte entry would break a limit
        assert sizes[0] + 58 > max_bytes or counts[0] == max_count
        assert rdb.load_payload(payload) == items


def test_string_encodings():
    def enc(s, compress):
        return rdb._encode_string(s, rdb._Lzf(1.0) if compress else None)

    assert enc(b"12", True) == b"\xc0\x0c"
    assert enc(b"-1", True) == b"\xc0\xff"
    assert enc(b"300", True) == b"\xc1\x2c\x01"
    assert enc(b"70000", True) == b"\xc2\x70\x11\x01\x00"
    assert enc(b"2147483648", True) == b"\x0a2147483648"
    assert enc(b"007", True) == b"\x03007"
    assert enc(b"a" * 20, True) == b"\x14" + b"a" * 20        # 20 bytes: never compressed
    assert enc(b"a" * 21, True)[0] == 0xC3                     # 21: compressed (Redis's rule)
    packed = enc(b"a" * 100, True)
    assert packed[0] == 0xC3 and len(packed) < 20
    assert enc(b"a" * 100, False) == b"\x40\x64" + b"a" * 100  # 14-bit length
    assert enc(b"b" * 70000, False)[:5] == b"\x80\x00\x01\x11\x70"


def test_default_compression_policy():
    policy = rdb._Lzf(rdb.DEFAULT_LZF_TRY_RATIO)
    assert rdb._encode_string(b"a" * 63, policy)[0] == 63       # short: not tried
    assert rdb._encode_string(b"ab" * 127, policy)[:2] == b"\x40\xfe"  # 254 bytes: not tried
    assert rdb._encode_string(b"ab" * 127, rdb._Lzf(1.0))[0] == 0xC3    # (Redis's rule would)
    assert rdb._encode_string(b"ab" * 128, policy)[0] == 0xC3   # 256, very compressible
    rng = random.Random(4)
    text = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(300))
    assert rdb._encode_string(text, policy)[:2] == b"\x41\x2c"  # estimate says no
    assert rdb._encode_string(text, rdb._Lzf(1.0))[:2] == b"\x41\x2c"  # LZF agrees


def test_compression_of_a_kind_that_never_compresses_is_sampled(monkeypatch):
    policy = rdb._Lzf(0.5)
    tried = []
    real = rdb.lzf.compress
    monkeypatch.setattr(rdb.lzf, "compress", lambda s, limit: tried.append(s) or real(s, limit))
    rng = random.Random(9)
    noise = [rng.randbytes(300) for _ in range(64 + 160)]
    estimates = []
    estimator = rdb._Lzf._ESTIMATOR

    class Counting:
        def compress(self, s):
            estimates.append(s)
            return estimator.compress(s)

        def flush(self, mode):
            return estimator.flush(mode)

    monkeypatch.setattr(rdb._Lzf, "_ESTIMATOR", Counting())
    for blob in noise:
        rdb._encode_string(blob, policy, rdb.T_HASH_LISTPACK)
    assert len(estimates) == 64 + 160 // 16          # after 64 misses, 1 in 16
    assert not tried
    # another kind is still fully estimated, and a success resets the sampling
    assert rdb._encode_string(b"xy" * 150, policy, rdb.T_ZSET_LISTPACK)[0] == 0xC3
    for blob in noise[:16]:                          # misses 224..239: one sample
        rdb._encode_string(blob, policy, rdb.T_HASH_LISTPACK)
    before = len(estimates)
    assert before == 64 + 160 // 16 + 1 + 1
    assert rdb._encode_string(b"xy" * 150, policy, rdb.T_HASH_LISTPACK)[0] == 0xC3  # sampled
    rdb._encode_string(noise[0], policy, rdb.T_HASH_LISTPACK)
    assert len(estimates) == before + 2             # estimating every blob again


def test_skips_empty_collections():
    data = write({0: {b"a": deque(), b"b": set(), b"c": {}, b"d": ZSet(), b"e": b"kept"}})
    assert keys_of(read(data)) == {(0, b"e"): (b"kept", None)}
    with pytest.raises(ValueError):
        rdb.dump_payload(set())


def test_write_db_dicts_and_dump_to_file(tmp_path):
    data = {b"a": b"1", b"b": deque([b"x"]), b"c": {b"m"}}
    expires = {b"b": 1_900_000_000_000}
    path = tmp_path / "dump.rdb"
    size = rdb.dump_to_file(path, [(0, data, expires), (1, {}, {}), (5, {b"z": b"q"}, {})],
                            {"redis-ver": "7.0.15"}, [b"#!lua name=x\n"])
    assert size == path.stat().st_size
    events = list(rdb.load_file(path))
    assert keys_of(events) == {(0, b"a"): (b"1", None),
                               (0, b"b"): (deque([b"x"]), 1_900_000_000_000),
                               (0, b"c"): ({b"m"}, None), (5, b"z"): (b"q", None)}
    assert Function(b"#!lua name=x\n") in events
    assert [e.db for e in events if isinstance(e, ResizeDb)] == [0, 5]  # empty db 1 skipped
    assert sorted(os.listdir(tmp_path)) == ["dump.rdb"]


def test_dump_to_file_failure_keeps_previous_dump(tmp_path):
    path = tmp_path / "dump.rdb"
    rdb.dump_to_file(path, [(0, {b"old": b"value"}, {})])
    before = path.read_bytes()
    bad = {b"k%d" % i: b"v" * 100 for i in range(50_000)}
    bad[b"zz-unstorable"] = 3.14
    with pytest.raises(TypeError):
        rdb.dump_to_file(path, [(0, bad, {})])
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["dump.rdb"]


def test_into_fast_path_and_skip_expired():
    data = write({0: {b"a": b"1", b"b": (b"2", 1000), b"c": (deque([b"x"]), 5000)},
                  2: {b"d": ({b"m"}, 1)}})
    dbs = {}
    parser_events = list(rdb.load(io.BytesIO(data),
                                  into=lambda dbid: dbs.setdefault(dbid, ({}, {}))))
    assert not [e for e in parser_events if isinstance(e, Key)]
    assert dbs == {0: ({b"a": b"1", b"b": b"2", b"c": deque([b"x"])}, {b"b": 1000, b"c": 5000}),
                   2: ({b"d": {b"m"}}, {b"d": 1})}
    parser = RdbParser(skip_expired_before=2000)
    events = parser.feed(data)
    events += parser.close()
    assert {e.key for e in events if isinstance(e, Key)} == {b"a", b"c"}
    assert (parser.keys_loaded, parser.keys_expired) == (2, 2)


def test_into_duplicate_key_replaces_the_earlier_one():
    out = io.BytesIO()
    w = RdbWriter(out)
    w.write_header({})
    w.write_db(0, 2, 2, [(b"k", b"old", 5), (b"k", b"new", None),
                         (b"s", {b"a"}, 7), (b"s", {b"b"}, None), (b"t", b"1", None),
                         (b"t", b"2", 9)])
    w.finish()
    data, expires = {}, {}
    read(out.getvalue(), into=lambda dbid: (data, expires))
    assert data == {b"k": b"new", b"s": {b"b"}, b"t": b"2"} and expires == {b"t": 9}


def test_parser_fed_one_byte_at_a_time():
    data = write({0: {b"k": (b"v", 77), b"l": SAMPLE[b"list-big"], b"h": SAMPLE[b"hash-many"],
                      b"i8": b"-5", b"i16": b"3000", b"i32": (b"-70000", 5), b"i64": b"1" * 15}})
    assert b"\xc0\xfb" in data and b"\xc1\xb8\x0b" in data  # integer encodings, split too
    parser = RdbParser()
    events = []
    for i in range(len(data)):
        events += parser.feed(data[i:i + 1])
    events += parser.close()
    assert parser.done and parser.version == 10
    assert keys_of(events) == keys_of(read(data))


def test_parser_keeps_bytes_after_the_end():
    data = write({0: {b"k": b"v"}})
    parser = RdbParser()
    events = parser.feed(data[:-3])
    events += parser.feed(data[-3:] + b"+FOLLOWING")
    events += parser.feed(b" STREAM")
    assert parser.done and parser.unused == b"+FOLLOWING STREAM"
    assert keys_of(events) == {(0, b"k"): (b"v", None)}


@pytest.mark.parametrize("value", [
    {b"%d-member" % i for i in range(200_000)},
    {b"field-%d" % i: b"value-%d" % i for i in range(100_000)},
    deque(b"item-%d" % i for i in range(200_000)),
    zset([(b"m%d" % i, i / 3) for i in range(100_000)]),
])
def test_big_collection_elements_are_parsed_once(monkeypatch, value):
    data = write({0: {b"big": value, b"after": b"x"}}, compress=False)
    collected = []
    real = rdb._collect

    def counting(rdb_type, buf, pos, end, items, remaining):
        before = len(items)
        result = real(rdb_type, buf, pos, end, items, remaining)
        collected.append(len(items) - before)
        return result

    monkeypatch.setattr(rdb, "_collect", counting)
    events = read(data, chunk_size=4096)
    assert keys_of(events)[(0, b"big")][0] == plain(value)
    assert keys_of(events)[(0, b"after")][0] == b"x"
    # resumed chunk after chunk, never re-read: elements collected once each
    assert len(collected) > 10
    expected = 2 * len(value) if isinstance(value, (dict, ZSet)) else len(value)
    assert sum(collected) == expected


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_feed_delivers_everything_before_close(chunk):
    big = {b"%d" % i: b"v" * (i % 50) for i in range(30_000)}
    data = write({0: {b"a": b"1", b"big": big, b"s": b"q" * 100_000}, 2: {b"z": b"last"}})
    parser = RdbParser()
    events = []
    for start in range(0, len(data), chunk):
        events += parser.feed(data[start:start + chunk])
    assert parser.done                   # the last feed completed the file ...
    assert parser.close() == []          # ... so close() has nothing left to deliver
    assert keys_of(events) == keys_of(read(data))


# ------------------------------------------------------- formats written by older Redis

def rdb_len(n: int) -> bytes:
    return rdb._encode_len(n)


def rdb_str(s: bytes) -> bytes:
    return rdb_len(len(s)) + s


def ziplist(entries) -> bytes:
    """A ziplist, encoded by hand from ziplist.c's format description."""
    body = b""
    prev = 0
    tail = 10
    for e in entries:
        prevlen = bytes([prev]) if prev < 254 else b"\xfe" + struct.pack("<I", prev)
        if isinstance(e, int):
            if 0 <= e <= 12:
                enc = bytes([0xF1 + e])
            elif -128 <= e <= 127:
                enc = b"\xfe" + struct.pack("<b", e)
            elif -32768 <= e <= 32767:
                enc = b"\xc0" + struct.pack("<h", e)
            elif -(1 << 23) <= e < (1 << 23):
                enc = b"\xf0" + e.to_bytes(3, "little", signed=True)
            elif -(1 << 31) <= e < (1 << 31):
                enc = b"\xd0" + struct.pack("<i", e)
            else:
                enc = b"\xe0" + struct.pack("<q", e)
        else:
            n = len(e)
            if n < 64:
                enc = bytes([n]) + e
            elif n < 16384:
                enc = bytes([0x40 | (n >> 8), n & 0xFF]) + e
            else:
                enc = b"\x80" + struct.pack(">I", n) + e
        entry = prevlen + enc
        tail = 10 + len(body)
        body += entry
        prev = len(entry)
    total = 10 + len(body) + 1
    return struct.pack("<IIH", total, tail, min(len(entries), 65535)) + body + b"\xff"


def zipmap(pairs) -> bytes:
    def zlen(n):
        return bytes([n]) if n < 254 else b"\xfe" + struct.pack("<I", n)
    body = b""
    for k, v in pairs:
        free = 2
        body += zlen(len(k)) + k + zlen(len(v)) + bytes([free]) + v + b"\0" * free
    return bytes([min(len(pairs), 254)]) + body + b"\xff"


def intset(values, width) -> bytes:
    code = {2: "h", 4: "i", 8: "q"}[width]
    values = sorted(values)
    return struct.pack(f"<II{len(values)}{code}", width, len(values), *values)


def listpack(entries) -> bytes:
    """A listpack, encoded by hand from the listpack specification."""
    def backlen(n):
        # 7 bits per byte, most significant group first; all but the first
        # byte carry the 128 flag, so the value can be read right to left.
        groups = [n & 127]
        n >>= 7
        while n:
            groups.append(n & 127)
            n >>= 7
        return bytes([groups[-1]] + [g | 128 for g in reversed(groups[:-1])])
    body = b""
    for e in entries:
        if isinstance(e, int):
            if 0 <= e <= 127:
                enc = bytes([e])
            elif -4096 <= e <= 4095:
                u = e & 0x1FFF
                enc = bytes([0xC0 | (u >> 8), u & 0xFF])
            else:
                enc = b"\xf4" + struct.pack("<q", e)
        else:
            n = len(e)
            if n < 64:
                enc = bytes([0x80 | n]) + e
            elif n < 4096:
                enc = bytes([0xE0 | (n >> 8), n & 0xFF]) + e
            else:
                enc = b"\xf0" + struct.pack("<I", n) + e
        body += enc + backlen(len(enc))
    return struct.pack("<IH", 6 + len(body) + 1, len(entries)) + body + b"\xff"


def file_of(records: bytes, version: int = 9, checksum: bool = True) -> bytes:
    data = b"REDIS%04d" % version + records + b"\xff"
    if version >= 5:
        data += crc64(data).to_bytes(8, "little") if checksum else bytes(8)
    return data


def one_key(rdb_type: int, key: bytes, value: bytes, version: int = 9):
    events = read(file_of(b"\xfe\x00" + bytes([rdb_type]) + rdb_str(key) + value, version))
    (event,) = [e for e in events if isinstance(e, Key)]
    assert event.key == key
    return plain(event.value)


def test_old_list_type_1():
    value = rdb_len(3) + rdb_str(b"a") + b"\xc0\x05" + rdb_str(b"c")
    assert one_key(1, b"l", value) == deque([b"a", b"5", b"c"])


def test_ziplist_list_type_10():
    entries = [b"a", 0, 12, 13, -1, 300, 70000, 1 << 40, b"x" * 300, b"y" * 20000, -(1 << 23)]
    assert one_key(10, b"l", rdb_str(ziplist(entries))) == deque(
        e if isinstance(e, bytes) else b"%d" % e for e in entries)


def test_quicklist_type_14():
    value = rdb_len(2) + rdb_str(ziplist([b"a", 1])) + rdb_str(ziplist([b"b" * 300]))
    assert one_key(14, b"q", value) == deque([b"a", b"1", b"b" * 300])


def test_quicklist2_plain_and_packed_nodes():
    value = (rdb_len(3) + b"\x02" + rdb_str(listpack([b"a", 5, -4000]))
             + b"\x01" + rdb_str(b"PLAIN" * 10) + b"\x02" + rdb_str(listpack([b"z"])))
    assert one_key(18, b"q", value) == deque([b"a", b"5", b"-4000", b"PLAIN" * 10, b"z"])


def test_intset_type_11():
    for width, values in ((2, [1, -5, 300]), (4, [1, 70000]), (8, [-(1 << 62), 5])):
        assert one_key(11, b"s", rdb_str(intset(values, width))) == {b"%d" % v for v in values}


def test_set_listpack_type_20_from_redis_7_2():
    assert one_key(20, b"s", rdb_str(listpack([b"a", 7, b"b"])), version=11) == {b"a", b"7", b"b"}


def test_zipmap_hash_type_9():
    pairs = [(b"f", b"v"), (b"n" * 300, b"w" * 260), (b"e", b"")]
    assert one_key(9, b"h", rdb_str(zipmap(pairs)), version=3) == dict(pairs)


def test_ziplist_hash_type_13():
    assert one_key(13, b"h", rdb_str(ziplist([b"f", 1, b"g", b"v"]))) == {b"f": b"1", b"g": b"v"}


def test_listpack_hash_type_16_and_duplicates():
    assert one_key(16, b"h", rdb_str(listpack([b"f", 1, 2, b"v"]))) == {b"f": b"1", b"2": b"v"}
    with pytest.raises(RdbError, match="Duplicate hash fields.*key b'h'"):
        one_key(16, b"h", rdb_str(listpack([b"f", 1, b"f", 2])))


def test_ziplist_zset_type_12():
    value = one_key(12, b"z", rdb_str(ziplist([b"a", 1, b"b", b"2.5", 7, b"-inf"])))
    assert value == ("zset", [(b"7", -math.inf), (b"a", 1.0), (b"b", 2.5)])


def test_listpack_zset_type_17():
    value = one_key(17, b"z", rdb_str(listpack([b"a", 1, b"b", b"1.5", b"c", b"inf"])))
    assert value == ("zset", [(b"a", 1.0), (b"b", 1.5), (b"c", math.inf)])


def test_text_double_zset_type_3():
    value = rdb_len(4) + rdb_str(b"a") + b"\x031.5" + rdb_str(b"b") + b"\xfe" \
        + rdb_str(b"c") + b"\xff" + rdb_str(b"d") + b"\x17-1.0000000000000001e-10"
    assert one_key(3, b"z", value) == ("zset", [(b"c", -math.inf), (b"d", -1e-10),
                                                (b"a", 1.5), (b"b", math.inf)])
    with pytest.raises(RdbError, match="NAN"):
        one_key(3, b"z", rdb_len(1) + rdb_str(b"a") + b"\xfd")


def test_binary_double_zset_type_5_and_plain_hash_set():
    value = (rdb_len(2) + rdb_str(b"b") + struct.pack("<d", 2.5)
             + rdb_str(b"a") + struct.pack("<d", -1))
    assert one_key(5, b"z", value) == ("zset", [(b"a", -1.0), (b"b", 2.5)])
    assert one_key(4, b"h", rdb_len(1) + rdb_str(b"f") + b"\xc0\x01") == {b"f": b"1"}
    assert one_key(2, b"s", rdb_len(2) + rdb_str(b"x") + b"\xc1\x00\x01") == {b"x", b"256"}
    with pytest.raises(RdbError, match="Duplicate set members"):
        one_key(2, b"s", rdb_len(2) + rdb_str(b"x") + rdb_str(b"x"))


def test_lzf_string_written_by_hand():
    stream = b"\x02abc\x80\x02"
    assert one_key(0, b"k", b"\xc3" + rdb_len(len(stream)) + rdb_len(9) + stream) == b"abcabcabc"
    with pytest.raises(RdbError, match="Invalid LZF"):
        one_key(0, b"k", b"\xc3" + rdb_len(len(stream)) + rdb_len(10) + stream)


def test_opcodes_expiretime_idle_freq_slotinfo():
    records = (b"\xfe\x01"
               + b"\xfd" + struct.pack("<i", 1_600_000_000)
               + b"\x00" + rdb_str(b"sec") + rdb_str(b"1")
               + b"\xf8" + rdb_len(3600) + b"\xfc" + struct.pack("<q", 5) + b"\x00" + rdb_str(b"ms")
               + rdb_str(b"2")
               + b"\xf9\x07" + b"\x00" + rdb_str(b"lfu") + rdb_str(b"3")
               + b"\xf4\x01\x02\x03")
    assert keys_of(read(file_of(records, version=12))) == {
        (1, b"sec"): (b"1", 1_600_000_000_000), (1, b"ms"): (b"2", 5), (1, b"lfu"): (b"3", None)}


def test_module_aux_is_skipped_and_named():
    module_id = 0
    for ch in "hellotype":
        module_id = (module_id << 6) | rdb._MODULE_CHARSET.index(ch)
    module_id = (module_id << 10) | 3
    records = (b"\xf7" + rdb_len(module_id) + b"\x02" + b"\x02"   # id, UINT opcode, when=2
               + b"\x02\x05"                   # UINT 5
               + b"\x05" + rdb_str(b"payload")  # STRING
               + b"\x04" + struct.pack("<d", 1.5) + b"\x03" + struct.pack("<f", 2.5)
               + b"\x00"                       # EOF
               + b"\x00" + rdb_str(b"k") + rdb_str(b"v"))
    events = read(file_of(records))
    assert ModuleAux("hellotype") in events
    assert keys_of(events) == {(0, b"k"): (b"v", None)}


def test_pre_ga_function_record_is_translated():
    records = b"\xf6" + rdb_str(b"mylib") + rdb_str(b"LUA") + b"\x01" + rdb_str(b"desc") \
        + rdb_str(b"redis.register_function('f', function() return 1 end)")
    assert read(file_of(records)) == [
        Function(b"#!LUA name=mylib\nredis.register_function('f', function() return 1 end)")]


@pytest.mark.parametrize("rdb_type, what", [(15, "streams"), (19, "streams"), (21, "streams"),
                                            (7, "module values"), (6, "module values")])
def test_unsupported_types_are_refused_naming_the_key(rdb_type, what):
    data = file_of(b"\x00" + rdb_str(b"ok") + rdb_str(b"v") + bytes([rdb_type])
                   + rdb_str(b"mystream") + b"\x00")
    with pytest.raises(RdbError, match=f"mystream.*{what} are not supported"):
        read(data)


def test_unknown_type_and_opcode():
    with pytest.raises(RdbError, match="Unknown RDB encoding type 30"):
        read(file_of(b"\x1e" + rdb_str(b"k") + rdb_str(b"v")))
    with pytest.raises(RdbError, match="Unknown RDB encoding type 8"):
        read(file_of(b"\x08" + rdb_str(b"k") + rdb_str(b"v")))


def test_old_version_without_checksum():
    data = b"REDIS0004\xfe\x00\x00\x01k\x01v\xff"
    assert keys_of(read(data)) == {(0, b"k"): (b"v", None)}


# --------------------------------------------------------------------- errors

def test_bad_signature_and_version():
    with pytest.raises(RdbError, match="Wrong signature"):
        read(b"RUDIS0009\xff" + bytes(8))
    with pytest.raises(RdbError, match="Can't handle RDB format version 13"):
        read(file_of(b"", version=13))
    with pytest.raises(RdbError, match="Can't handle RDB format version 11"):
        read(file_of(b"", version=11), max_version=10)


def test_checksum_mismatch():
    data = bytearray(write({0: {b"k": b"value"}}))
    data[-12] ^= 1  # inside the value
    with pytest.raises(RdbError, match="Wrong RDB checksum"):
        read(bytes(data))
    assert keys_of(read(bytes(data), verify_checksum=False)) == {(0, b"k"): (b"vamue", None)}
    zero = bytes(data[:-8]) + bytes(8)  # saved without checksum: not checked
    assert len(keys_of(read(zero))) == 1


def test_every_truncation_raises_rdb_error():
    data = write({0: {b"s": b"x" * 100, b"l": deque([b"1", b"a" * 70]), b"h": {b"f": b"v"},
                      b"z": zset([(b"a", 1)]), b"e": (b"v", 10)}},
                 functions=[b"#!lua name=l\n"])
    for cut in range(len(data)):
        with pytest.raises(RdbError, match="Unexpected EOF reading RDB file|Wrong signature"):
            read(data[:cut])


def test_random_corruption_only_raises_rdb_error():
    rng = random.Random(5)
    small = {k: v for k, v in SAMPLE.items() if len(rdb.dump_payload(v)) < 2000}
    base = write({0: small}, checksum=False)
    for _ in range(1000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(9, len(data))] = rng.randrange(256)
        try:
            read(bytes(data))
        except RdbError:
            pass


# ------------------------------------------------------------------ DUMP payloads

@pytest.mark.parametrize("key", list(SAMPLE))
def test_payload_round_trip(key):
    value = SAMPLE[key]
    payload = rdb.dump_payload(value)
    assert payload[-10:-8] == b"\x0a\x00"
    assert int.from_bytes(payload[-8:], "little") == crc64(payload[:-8])
    assert plain(rdb.load_payload(payload)) == plain(value)


def test_payload_errors():
    good = rdb.dump_payload(b"hello")
    bad_crc = good[:-1] + bytes([good[-1] ^ 1])
    newer = good[:-10] + b"\x0b\x00"
    newer += crc64(newer).to_bytes(8, "little")
    for payload in (b"", b"short", bad_crc, newer):
        with pytest.raises(RdbError) as info:
            rdb.load_payload(payload)
        assert str(info.value) == "DUMP payload version or checksum are wrong"
    assert rdb.load_payload(newer, max_version=11) == b"hello"
    assert rdb.load_payload(bad_crc, verify_checksum=False) == b"hello"

    def sealed(body: bytes) -> bytes:
        body += b"\x0a\x00"
        return body + crc64(body).to_bytes(8, "little")

    for body, detail in ((b"", "no value"), (b"\x00\x05ab", "truncated"),
                         (b"\x08\x01a", "Unknown RDB encoding type 8"),
                         (b"\xfe\x00", "Unknown RDB encoding type 254"),
                         (b"\x0f\x00", "streams"), (b"\x02\x00", "empty"),
                         (b"\x10\x03abc", "listpack")):
        with pytest.raises(RdbError) as info:
            rdb.load_payload(sealed(body))
        assert str(info.value) == "Bad data format"
        assert detail in info.value.detail


# -- the checksum helper process ------------------------------------------------

def test_crc_helper_process_streams_pieces():
    from hakv.common.crc64 import CrcHelper
    rng = random.Random(11)
    data = rng.randbytes(3 << 20)
    helper = CrcHelper(12345)
    pos = 0
    while pos < len(data):  # uneven pieces, small and bigger than a lane block
        step = rng.choice([1, 7, 4096, 600_000, 1 << 20])
        helper.update(data[pos:pos + step])
        pos += step
    assert helper.result() == crc64(data, 12345)
    abandoned = CrcHelper()
    abandoned.update(data[:1000])
    abandoned.close()  # stops it without waiting for the end of its input


def _mixed_keyspace(n):
    return {b"k%d" % i: (b"v%d" % i * 7 if i % 3 else deque([b"a%d" % i, b"b"]))
            for i in range(n)}


def test_writer_hands_the_checksum_to_a_helper(tmp_path, monkeypatch):
    monkeypatch.setattr(rdb, "CRC_HELPER_AFTER", 2000)
    data = _mixed_keyspace(20_000)
    path = tmp_path / "dump.rdb"
    rdb.dump_to_file(path, [(0, data, {b"k1": 1_900_000_000_000})], {"redis-ver": "7.0.15"})
    raw = path.read_bytes()
    assert len(raw) > 2000
    assert int.from_bytes(raw[-8:], "little") == crc64(raw[:-8])
    # and in a writer with small buffers: many updates go through the pipe
    out = io.BytesIO()
    w = rdb.RdbWriter(out, buffer_size=512, crc_helper=True)
    w.write_header({"redis-ver": "7.0.15"})
    w.write_db_dicts(0, data, {})
    crc = w.finish()
    assert crc == crc64(out.getvalue()[:-8]) == int.from_bytes(out.getvalue()[-8:], "little")


def test_load_file_checks_the_helper_checksum(tmp_path, monkeypatch):
    from hakv.common import rdb_prefetch
    monkeypatch.setattr(rdb_prefetch, "MIN_FILE_SIZE", 0)  # the helper computes the checksum
    data = _mixed_keyspace(5000)
    path = tmp_path / "dump.rdb"
    rdb.dump_to_file(path, [(0, data, {})])
    got = {e.key: e.value for e in rdb.load_file(path) if isinstance(e, Key)}
    assert got == data
    good = path.read_bytes()
    # a flipped byte inside a value: the records still parse, the checksum does not match
    at = good.index(b"v4999v4999") + 3
    path.write_bytes(good[:at] + b"X" + good[at + 1:])
    with pytest.raises(RdbError, match=r"Wrong RDB checksum expected: \(\w+\) but got"):
        for _ in rdb.load_file(path):
            pass
    # bytes after the dump: the checksum does not end the file, checked in-process
    path.write_bytes(good + b"trailing")
    assert sum(isinstance(e, Key) for e in rdb.load_file(path)) == len(data)
    path.write_bytes(good[:at] + b"X" + good[at + 1:] + b"trailing")
    with pytest.raises(RdbError, match="Wrong RDB checksum"):
        for _ in rdb.load_file(path):
            pass
    # a dump saved without a checksum (zero) is not checked, as Redis does
    rdb.dump_to_file(path, [(0, data, {})], checksum=False)
    assert sum(isinstance(e, Key) for e in rdb.load_file(path)) == len(data)


def test_binary_zsets_writes_small_sorted_sets_as_zset_2():
    small = zset([(b"a", 1.5), (b"b", -0.0), (b"c", float("inf")), (b"10", 2.0)])
    out = io.BytesIO()
    w = RdbWriter(out, binary_zsets=True)
    w.write_header({})
    w.write_db(0, 1, 0, [(b"z", small, None)])
    w.finish()
    data = out.getvalue()
    assert data.index(b"\xfb\x01\x00") + 3 == data.index(bytes([rdb.T_ZSET_2, 1]) + b"z")
    (event,) = [e for e in read(data) if isinstance(e, Key)]
    assert list(event.value.items()) == list(small.items())
    assert math.copysign(1, event.value.score(b"b")) == -1  # binary scores keep -0.0
    # DUMP keeps Redis's listpack, whatever the writer does
    assert rdb.dump_payload(small, compress=False)[0] == rdb.T_ZSET_LISTPACK


def _check_zset_structure(value, expected):
    """The loaded set answers like one built by sorting: order, ranks, and
    later inserts land in place."""
    assert list(value.items()) == expected
    for rank, (member, score) in enumerate(expected):
        assert value.rank(member) == rank and value.score(member) == score
    value.add(b"~new", 0.5)
    assert list(value.items()) == sorted(expected + [(b"~new", 0.5)], key=lambda p: (p[1], p[0]))
    for member, _ in expected[::2]:
        assert value.remove(member)
    left = sorted(expected[1::2] + [(b"~new", 0.5)], key=lambda p: (p[1], p[0]))
    assert list(value.items()) == left and len(value) == len(left)


@pytest.mark.parametrize("entries, expected", [
    # in (score, member) order as Redis stores it: built without a sort
    ([b"a", 1, b"b", b"1.5", b"c", b"inf"], [(b"a", 1.0), (b"b", 1.5), (b"c", math.inf)]),
    # equal scores, members in order (lexicographic sets: every score 0)
    ([b"a", 0, b"b", 0, b"c", b"1"], [(b"a", 0.0), (b"b", 0.0), (b"c", 1.0)]),
    # equal scores, members out of order, and scores out of order: sorted here
    ([b"b", 0, b"a", 0], [(b"a", 0.0), (b"b", 0.0)]),
    ([b"x", 5, b"y", 2, b"z", b"-inf"], [(b"z", -math.inf), (b"y", 2.0), (b"x", 5.0)]),
    # -0 and 0 tie, as ZADD treats them
    ([b"b", b"-0", b"a", 0], [(b"a", 0.0), (b"b", 0.0)]),
    ([7, 1, 10, 1], [(b"10", 1.0), (b"7", 1.0)]),
])
def test_listpack_zset_in_and_out_of_order(entries, expected):
    value = one_key(17, b"z", rdb_str(listpack(entries)))
    assert value == ("zset", expected)
    (event,) = [e for e in read(file_of(b"\xfe\x00\x11" + rdb_str(b"z") + rdb_str(listpack(entries))))
                if isinstance(e, Key)]
    _check_zset_structure(event.value, expected)


def test_listpack_zset_duplicates_and_nan_are_refused():
    for entries in ([b"a", 1, b"a", 2], [b"a", 1, b"b", 2, b"a", 3], [b"a", 1, b"a", 1]):
        with pytest.raises(RdbError, match="Duplicate zset fields.*key b'z'"):
            one_key(17, b"z", rdb_str(listpack(entries)))
    for entries in ([b"a", b"nan"], [b"a", 1, b"b", b"nan"], [b"a", b"nan", b"b", 1]):
        with pytest.raises(RdbError, match="NAN"):
            one_key(17, b"z", rdb_str(listpack(entries)))


@pytest.mark.parametrize("order", ["descending", "ascending", "shuffled"])
def test_skiplist_zset_any_order(order):
    # Redis writes a big sorted set from its highest score down; any order loads.
    pairs = [(b"m%03d" % i, float(i // 3)) for i in range(700)]  # ties, > one chunk
    expected = sorted(pairs, key=lambda p: (p[1], p[0]))
    stored = {"descending": expected[::-1], "ascending": expected,
              "shuffled": random.Random(3).sample(pairs, len(pairs))}[order]
    value = rdb_len(len(stored)) + b"".join(rdb_str(m) + struct.pack("<d", s) for m, s in stored)
    (event,) = [e for e in read(file_of(b"\xfe\x00\x05" + rdb_str(b"z") + value)) if isinstance(e, Key)]
    _check_zset_structure(event.value, expected)
    dup = rdb_len(2) + (rdb_str(b"a") + struct.pack("<d", 1.0)) * 2
    with pytest.raises(RdbError, match="Duplicate zset fields"):
        one_key(5, b"z", dup)


def test_integer_strings_of_every_width():
    for encoded, text in ((b"\xc0\x80", b"-128"), (b"\xc0\x7f", b"127"), (b"\xc1\x00\x80", b"-32768"),
                          (b"\xc2\xff\xff\xff\x7f", b"2147483647"), (b"\xc2\x00\x00\x00\x80", b"-2147483648")):
        assert one_key(0, b"k", encoded) == text


def test_sorted_sets_in_order_are_not_sorted_again(monkeypatch):
    def no_sort(cls, items):
        raise AssertionError("from_items called for a sorted set already in order")
    monkeypatch.setattr(ZSet, "from_items", classmethod(no_sort))
    value = one_key(17, b"z", rdb_str(listpack([b"a", 0, b"b", 0, b"c", b"2.5"])))
    assert value == ("zset", [(b"a", 0.0), (b"b", 0.0), (b"c", 2.5)])
    big = [(b"m%03d" % i, float(i)) for i in range(600)][::-1]
    value = rdb_len(len(big)) + b"".join(rdb_str(m) + struct.pack("<d", s) for m, s in big)
    assert one_key(5, b"z", value) == ("zset", big[::-1])
