"""rdb_prefetch: compact values decoded by a helper process while rdb.py loads.

The loader must end up with exactly what it loads alone, whatever the helper
sends: complete results, none, stale ones, or ones that do not match."""

from __future__ import annotations

import io
import marshal
import os
import random
import struct
import time
from collections import deque

import pytest

from hakv.common import rdb, rdb_prefetch
from hakv.common.rdb import Key
from persistence_support import plain, zset


def dataset(seed: int, n: int = 3000) -> dict:
    """Every compact encoding (LZF-compressed or not), big collections, TTLs."""
    rng = random.Random(seed)
    data = {}
    for i in range(n):
        kind = i % 8
        if kind == 0:
            data[b"s:%d" % i] = b"value-%d-" % i + b"x" * rng.randrange(0, 60)
        elif kind == 1:
            data[b"i:%d" % i] = b"%d" % rng.randrange(-10**9, 10**9)
        elif kind == 2:
            data[b"l:%d" % i] = deque(b"item-%d" % j for j in range(rng.randrange(1, 12)))
        elif kind == 3:
            data[b"h:%d" % i] = {b"field-%d" % j: b"v%d" % rng.randrange(10**6)
                                 for j in range(rng.randrange(1, 12))}
        elif kind == 4:
            data[b"si:%d" % i] = {b"%d" % rng.randrange(10**6) for _ in range(rng.randrange(1, 12))}
        elif kind == 5:
            data[b"ss:%d" % i] = {b"member-%d" % rng.randrange(10**6)
                                  for _ in range(rng.randrange(1, 12))}
        elif kind == 6:
            data[b"z:%d" % i] = zset((b"m%d" % j, rng.random() * 100)
                                     for j in range(rng.randrange(1, 12)))
        else:
            data[b"zi:%d" % i] = zset((b"%d" % j, float(j * 3)) for j in range(rng.randrange(1, 12)))
    data[b"big-hash"] = {b"f%d" % j: b"value-%d" % j for j in range(300)}
    data[b"big-list"] = deque(b"element-%d" % j for j in range(3000))
    data[b"big-set"] = {b"member-%d" % j for j in range(700)}
    data[b"big-zset"] = zset((b"player-%d" % j, j / 7) for j in range(300))
    data[b"long-string"] = b"compressible " * 500
    return data


def write_dump(path, dbs: dict, expire_every: int = 5) -> dict:
    """Write {dbid: data} with LZF by Redis's own rule; returns {dbid: expires}."""
    far = int(time.time() * 1000) + 86_400_000
    expires = {dbid: {k: far + i for i, k in enumerate(sorted(data)) if i % expire_every == 0}
               for dbid, data in dbs.items()}
    rdb.dump_to_file(str(path), [(dbid, data, expires[dbid]) for dbid, data in dbs.items()],
                     {"redis-ver": "7.0.15"}, lzf_try_ratio=1.0)
    return expires


def load_all(path, **options) -> dict:
    out = {}
    for _ in rdb.load_file(str(path), into=lambda db: out.setdefault(db, ({}, {})), **options):
        pass
    return {db: ({k: plain(v) for k, v in data.items()}, expires)
            for db, (data, expires) in out.items()}


def load_alone(path, **options) -> dict:
    saved = rdb.start_prefetch
    rdb.start_prefetch = lambda fileobj, checksum=False: None
    try:
        return load_all(path, **options)
    finally:
        rdb.start_prefetch = saved


class _Proc:
    """What Prefetch needs of a process: a stdout to read the batches from."""

    def __init__(self, read_fd: int):
        self.stdout = os.fdopen(read_fd, "rb", buffering=0)

    def poll(self):
        return 0

    def wait(self):
        return 0


def prefetch_from(batches: bytes) -> rdb_prefetch.Prefetch:
    """A Prefetch whose helper already sent `batches` (the helper protocol)."""
    fd = os.memfd_create("batches")  # (as a pipe would, but of any size)
    os.write(fd, batches)
    os.lseek(fd, 0, os.SEEK_SET)
    return rdb_prefetch.Prefetch(_Proc(fd), bytearray(8))


def walker_output(path, lead: int) -> bytes:
    """What the helper sends for the file, in-process; `lead`: how far ahead
    of the loader it believes it is (decides decompress-only or decode)."""
    with open(path, "rb") as f:
        buf = f.read()
    out = io.BytesIO()
    progress = bytearray(struct.pack("<q", -lead))
    walker = rdb_prefetch._Walker(buf, progress, out)
    walker.walk()
    walker.send(0)
    out.write(struct.pack("<I", 0))
    return out.getvalue()


def parse_with(path, prefetch) -> tuple[dict, int]:
    out = {}
    parser = rdb.RdbParser(into=lambda db: out.setdefault(db, ({}, {})), prefetch=prefetch)
    with open(path, "rb") as f:
        while not parser.done:
            chunk = f.read(1 << 16)  # small chunks: strings cut at chunk ends too
            if not chunk:
                break
            parser.feed(chunk)
        parser.close()
    return {db: ({k: plain(v) for k, v in data.items()}, expires)
            for db, (data, expires) in out.items()}, prefetch.missed


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    path = tmp_path_factory.mktemp("prefetch") / "dump.rdb"
    write_dump(path, {0: dataset(1), 3: dataset(2, 500)})
    return path


def test_every_result_is_used_and_exact(dump, monkeypatch):
    expected = load_alone(dump)
    decompressed, decoded = [], []
    real_decompress, real_listpack = rdb.lzf.decompress, rdb._listpack_entries
    monkeypatch.setattr(rdb.lzf, "decompress", lambda *a: decompressed.append(1)
                        or real_decompress(*a))
    monkeypatch.setattr(rdb, "_listpack_entries", lambda blob, *a, **k: decoded.append(blob)
                        or real_listpack(blob, *a, **k))
    loader_decoded = {}
    for lead in (1 << 40, 0):  # decode, decompress only
        batches = walker_output(dump, lead)  # (in this process: it decompresses)
        decoded.clear()
        decompressed.clear()
        got, missed = parse_with(dump, prefetch_from(batches))
        assert got == expected
        assert not decompressed  # every LZF string came from the helper
        loader_decoded[lead] = len(decoded)
    # Decoded by the helper too: the loader decoded only the strings stored
    # uncompressed; decompressed only: it decoded them all.
    assert 0 < loader_decoded[1 << 40] < loader_decoded[0]


def test_the_helper_sends_decoded_values(dump):
    batches = walker_output(dump, 1 << 40)
    pos = 0
    kinds = set()
    while True:
        size = struct.unpack_from("<I", batches, pos)[0]
        if not size:
            break
        keys, values = marshal.loads(batches[pos + 4:pos + 4 + size])
        kinds.update(kind for _, kind in keys)
        pos += 4 + size
    assert {rdb.T_HASH_LISTPACK, rdb.T_ZSET_LISTPACK, rdb.T_LIST_QUICKLIST_2,
            rdb_prefetch.RAW} <= kinds


def test_results_that_do_not_match_are_not_used(dump):
    """Forged results (right offset, wrong length or kind; or wrong value
    under a wrong length) are ignored: the loader decodes those itself."""
    batches = walker_output(dump, 1 << 40)
    size = struct.unpack_from("<I", batches)[0]
    keys, values = marshal.loads(batches[4:4 + size])
    forged_keys, forged_values = [], []
    for i, ((offset, kind), (length, value)) in enumerate(zip(keys, values)):
        if i % 3 == 0:
            forged_keys.append((offset, kind))
            forged_values.append((length + 1, b"wrong"))   # length disagrees
        elif i % 3 == 1:
            forged_keys.append((offset, rdb.T_HASH_ZIPMAP if kind != rdb.T_HASH_ZIPMAP
                                else rdb.T_SET_INTSET))
            forged_values.append((length, {b"wrong": b"value"}))  # another kind
        else:
            forged_keys.append((offset, kind))
            forged_values.append((length, value))
    forged = marshal.dumps((forged_keys, forged_values))
    stream = struct.pack("<I", len(forged)) + forged + batches[4 + size:]
    got, missed = parse_with(dump, prefetch_from(stream))
    assert got == load_alone(dump)
    assert missed >= len(keys) // 3  # the other kind's (a length that disagrees is a hit
                                     # take() returns, and the parser drops)


def test_stale_and_missing_results(dump):
    """Results for strings the loader passed are skipped; with a helper that
    stopped early (or sent nothing) the loader goes on alone."""
    batches = walker_output(dump, 1 << 40)
    first = 4 + struct.unpack_from("<I", batches)[0]
    second = first + 4 + struct.unpack_from("<I", batches, first)[0]
    expected = load_alone(dump)
    # The first batch only, then the stream just ends (a helper that died).
    assert parse_with(dump, prefetch_from(batches[:first]))[0] == expected
    # The second batch only: the loader reaches it late (its results are
    # ahead of where it starts, so they are used once it gets there).
    got, missed = parse_with(dump, prefetch_from(batches[first:second] + struct.pack("<I", 0)))
    assert got == expected
    # Nothing at all.
    assert parse_with(dump, prefetch_from(struct.pack("<I", 0)))[0] == expected
    # Garbage instead of marshal data.
    assert parse_with(dump, prefetch_from(struct.pack("<I", 5) + b"\xff" * 5))[0] == expected


def test_load_file_with_the_helper_process(dump, monkeypatch):
    """End to end: the real helper process, however far it gets."""
    monkeypatch.setattr(rdb_prefetch, "MIN_FILE_SIZE", 0)
    started = []
    real_start = rdb.start_prefetch
    monkeypatch.setattr(rdb, "start_prefetch",
                        lambda f, **kw: started.append(real_start(f, **kw)) or started[-1])
    assert load_all(dump) == load_alone(dump)
    assert started and started[0] is not None
    assert started[0]._proc.returncode is not None  # closed: the helper was reaped


def test_small_files_get_no_helper(tmp_path):
    path = tmp_path / "small.rdb"
    write_dump(path, {0: {b"k": b"v"}})
    with open(path, "rb") as f:
        assert rdb.start_prefetch(f) is None


def test_corrupt_strings_raise_the_loaders_error(tmp_path, monkeypatch):
    """A corrupt LZF string is left to the loader, whose error names the key."""
    monkeypatch.setattr(rdb_prefetch, "MIN_FILE_SIZE", 0)
    path = tmp_path / "dump.rdb"
    value = {b"field-%d" % j: b"value-value-%d" % j for j in range(20)}
    write_dump(path, {0: {b"h": value}}, expire_every=10**9)
    raw = bytearray(path.read_bytes())
    at = raw.index(b"\x01h") + 2  # after the key: the listpack, LZF-compressed
    assert raw[at] == 0xC3
    clen, data_at = rdb._read_len(raw, at + 1, len(raw))
    data_at = rdb._read_len(raw, data_at, len(raw))[1]
    raw[data_at] = 0x3F  # a back reference before the start of the output
    path.write_bytes(bytes(raw))
    errors = []
    for load in (load_all, load_alone):
        with pytest.raises(rdb.RdbError) as info:
            load(path, verify_checksum=False)
        errors.append(str(info.value))
    assert errors[0] == errors[1]
    assert "Invalid LZF compressed string" in errors[0] and "b'h'" in errors[0]


def test_key_events_path_uses_the_helper_too(dump, monkeypatch):
    """Without `into` (Key events), the same values."""
    monkeypatch.setattr(rdb_prefetch, "MIN_FILE_SIZE", 0)
    got = {(e.db, e.key): plain(e.value) for e in rdb.load_file(str(dump)) if isinstance(e, Key)}
    want = {(db, k): v for db, (data, _) in load_alone(dump).items() for k, v in data.items()}
    assert got == want


def test_the_helper_computes_the_files_checksum(dump, monkeypatch):
    """start_prefetch(checksum=True): the helper's CRC64 covers all but the
    file's last 8 bytes, whether or not the loader took its results."""
    monkeypatch.setattr(rdb_prefetch, "MIN_FILE_SIZE", 0)
    data = dump.read_bytes()
    want = rdb.crc64(data[:-8])
    assert want == int.from_bytes(data[-8:], "little")
    for parse in (True, False):
        with open(dump, "rb") as f:
            ahead = rdb.start_prefetch(f, checksum=True)
            try:
                assert ahead.checksum_stop == len(data) - 8
                if parse:
                    parser = rdb.RdbParser(prefetch=ahead, verify_checksum=False)
                    parser.feed(data)
                    parser.close()
                    assert parser.eof_offset == ahead.checksum_stop
                # Not parsed: the helper stops walking, still finishes the checksum.
                assert ahead.checksum() == want
            finally:
                ahead.close()
            assert ahead._proc.returncode == 0


def test_a_corrupt_file_fails_the_helpers_checksum(dump, tmp_path, monkeypatch):
    """A flipped byte inside a value: the records parse, the checksum does
    not -- with the helper's CRC, and with the loader's own when the helper
    died (checksum() gives None: verify_file_checksum computes it)."""
    monkeypatch.setattr(rdb_prefetch, "MIN_FILE_SIZE", 0)
    good = dump.read_bytes()
    at = good.index(b"compressible") + 3   # in a literal of long-string's LZF: still valid
    path = tmp_path / "bad.rdb"
    path.write_bytes(good[:at] + bytes([good[at] ^ 1]) + good[at + 1:])
    with pytest.raises(rdb.RdbError, match=r"Wrong RDB checksum expected: \(\w+\) but got"):
        load_all(path)
    real_start = rdb_prefetch.Prefetch.start.__func__

    def start_then_kill(cls, f, checksum_stop=None):
        ahead = real_start(cls, f, checksum_stop)
        ahead._proc.kill()
        return ahead

    monkeypatch.setattr(rdb_prefetch.Prefetch, "start", classmethod(start_then_kill))
    with pytest.raises(rdb.RdbError, match="Wrong RDB checksum"):
        load_all(path)
    assert load_all(dump) == load_alone(dump)  # (a sound file loads without its helper)
