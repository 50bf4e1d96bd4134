"""The full-sync loader's CRC64 check (replica/transfer.py): the parser runs
without its own check and StreamChecksum verifies the same bytes, in this
process or in a helper process, however the snapshot is cut into reads."""

from __future__ import annotations

import io
import os
import random
import signal
import threading
import time

import pytest

from hakv.common import rdb
from hakv.common.crc64 import crc64
from hakv.common.keyspace import Keyspace
from hakv.replica import transfer
from hakv.replica.transfer import StreamChecksum


def make_dump(n: int, checksum: bool = True) -> bytes:
    out = io.BytesIO()
    w = rdb.RdbWriter(out, checksum=checksum)
    w.write_header({"redis-ver": "7.0.15"})
    w.write_db(0, n, 0, ((b"key:%d" % i, b"value:%d" % i, None) for i in range(n)))
    w.finish()
    return out.getvalue()


def pieces(data: bytes, rng: random.Random, most: int):
    pos = 0
    while pos < len(data):
        step = rng.randint(1, most)
        yield data[pos:pos + step]
        pos += step


def load(data: bytes, rng: random.Random, most: int, helper_after=None) -> tuple:
    """Parse data through SnapshotLoader; returns (keyspace, loader)."""
    ks = Keyspace(16)

    class Server:  # what SnapshotLoader and its KeyspaceLoader use of a server
        keyspace = ks

        def __getattr__(self, name):
            raise AttributeError(name)

    loader = transfer.SnapshotLoader(Server(), ks)
    if helper_after is not None:
        loader.checksum.helper_after = helper_after
    try:
        for chunk in pieces(data, rng, most):
            loader.feed(chunk)
        loader.finish()
    finally:
        loader.close()
    return ks, loader


@pytest.mark.parametrize("most", [1, 7, 9, 100, 5000, 1 << 20])
def test_in_process_checksum_any_cutting(most):
    data = make_dump(300)
    ks, loader = load(data, random.Random(most), most)
    assert loader.verified
    assert len(ks[0].data) == 300 and ks[0].data[b"key:299"] == b"value:299"


@pytest.mark.parametrize("seed", [1, 2])
def test_helper_process_checksum(seed):
    data = make_dump(20000)
    ks, loader = load(data, random.Random(seed), 70000, helper_after=1000)
    assert loader.verified and len(ks[0].data) == 20000


def test_helper_is_started_past_the_threshold_and_stopped():
    data = make_dump(20000)
    c = StreamChecksum(helper_after=1000)
    c.update(data[:5000])
    assert c.helper is not None
    proc = c.helper._proc
    c.close()
    assert c.helper is None and proc.poll() is not None


@pytest.mark.parametrize("helper_after", [None, 1000])
def test_corrupt_byte_is_refused(helper_after):
    data = bytearray(make_dump(20000))
    # Flip a byte inside a value (the structure still parses).
    at = data.index(b"value:12345")
    data[at + 6] ^= 0x01
    with pytest.raises(rdb.RdbError, match="Wrong RDB checksum expected"):
        load(bytes(data), random.Random(3), 65536, helper_after=helper_after)


def test_wrong_stored_checksum_is_refused():
    data = bytearray(make_dump(50))
    data[-1] ^= 0xFF
    with pytest.raises(rdb.RdbError, match="Wrong RDB checksum expected"):
        load(bytes(data), random.Random(4), 10)


def test_no_checksum_is_accepted():
    data = make_dump(50, checksum=False)
    assert data[-8:] == b"\0" * 8
    ks, loader = load(data, random.Random(5), 13)
    assert len(ks[0].data) == 50


def test_checksum_matches_crc64_of_the_body():
    data = make_dump(1000)
    c = StreamChecksum(helper_after=10 ** 9)
    for chunk in pieces(data, random.Random(6), 333):
        c.update(chunk)
    # All but the held-back tail were summed, and that is crc64's prefix.
    from hakv.common.crc64 import crc64
    assert c.summed == len(data) - StreamChecksum.HOLD
    assert c.crc == crc64(data[:c.summed])


def test_truncated_snapshot_is_refused():
    data = make_dump(300)
    with pytest.raises(rdb.RdbError):
        load(data[:-20], random.Random(7), 100)


def test_a_dead_helper_fails_the_load_with_an_rdb_error():
    data = make_dump(20000)
    c = StreamChecksum(helper_after=1000)
    c.update(data[:5000])
    c.helper._proc.kill()
    c.helper._proc.wait()
    with pytest.raises(rdb.RdbError, match="Can't verify the RDB checksum"):
        for i in range(5000, len(data), 4096):  # until the pipe reports the death
            c.update(data[i:i + 4096])
    assert c.helper is None


# -- the helper's input queue: the parser never waits for a busy helper


def stopped_helper():
    helper = transfer.QueuedCrcHelper()
    os.kill(helper._proc.pid, signal.SIGSTOP)  # a helper the scheduler left out
    return helper


def test_a_stopped_helper_does_not_stop_the_parser():
    data = os.urandom(3 << 20)  # more than the helper's pipe holds
    helper = stopped_helper()
    # (Were update() to wait, this ends the wait: the test fails, not hangs.)
    resume = threading.Timer(3.0, os.kill, (helper._proc.pid, signal.SIGCONT))
    resume.start()
    try:
        start = time.monotonic()
        for i in range(0, len(data), 256 * 1024):
            helper.update(data[i:i + 256 * 1024])
        assert time.monotonic() - start < 1.0
        assert helper._queued > 0  # what the pipe did not take waits here
        resume.cancel()
        os.kill(helper._proc.pid, signal.SIGCONT)
        assert helper.result() == crc64(data)
    finally:
        resume.cancel()
        helper.close()


def test_the_queue_is_bounded(monkeypatch):
    monkeypatch.setattr(transfer, "CRC_QUEUE_LIMIT", 1 << 20)
    data = os.urandom(4 << 20)
    helper = stopped_helper()
    resume = threading.Timer(0.3, os.kill, (helper._proc.pid, signal.SIGCONT))
    resume.start()
    try:
        start = time.monotonic()
        helper.update(data)  # over the limit: waits for the helper
        assert time.monotonic() - start >= 0.25
        assert helper._queued <= 1 << 20
        assert helper.result() == crc64(data)
    finally:
        resume.cancel()
        if helper._proc.poll() is None:
            os.kill(helper._proc.pid, signal.SIGCONT)
        helper.close()


def test_a_helper_dying_with_a_queue_fails_the_load():
    data = make_dump(200000)
    c = StreamChecksum(helper_after=1000)
    c.update(data[:5000])
    os.kill(c.helper._proc.pid, signal.SIGSTOP)
    c.update(data[5000:5000 + (3 << 20)])  # partly queued
    assert c.helper._queued > 0
    c.helper._proc.kill()
    c.helper._proc.wait()
    with pytest.raises(rdb.RdbError, match="Can't verify the RDB checksum"):
        for i in range(5000 + (3 << 20), len(data), 65536):
            c.update(data[i:i + 65536])
        c.verify(rdb.RdbParser())  # (result() writes the rest: the death shows there)
    assert c.helper is None
