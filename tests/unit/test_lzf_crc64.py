"""CRC-64/Jones and LZF: known answers, agreement between code paths, corrupt input."""

from __future__ import annotations

import os
import random

import pytest

from hakv.common import crc64 as crc_module
from hakv.common import lzf
from hakv.common.crc64 import crc64, crc64_combine


def reference_crc64(data: bytes, crc: int = 0) -> int:
    """Bit-at-a-time CRC-64/Jones (reflected poly, init 0, no xorout), written from the spec."""
    poly = int(f"{0xAD93D23594C935A9:064b}"[::-1], 2)
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc


def test_check_value():
    assert crc64(b"123456789") == 0xE9C6D914C4B8D9CA
    assert reference_crc64(b"123456789") == 0xE9C6D914C4B8D9CA


def test_empty_and_incremental_start():
    assert crc64(b"") == 0
    assert crc64(b"", 0x1234) == 0x1234


@pytest.mark.parametrize("size", [1, 7, 8, 9, 63, 1000, 8191, 8192, 8193, 70_000])
def test_small_and_medium_inputs_match_reference(size):
    data = random.Random(size).randbytes(size)
    assert crc64(data) == reference_crc64(data)
    assert crc64(data, 0xDEADBEEF) == reference_crc64(data, 0xDEADBEEF)


def test_large_input_uses_every_lane_block_size():
    # 512 KiB + 64 KiB + 8 KiB blocks plus a tail: every lane configuration runs.
    data = random.Random(7).randbytes((512 + 64 * 2 + 8 * 3) * 1024 + 1234)
    # slicing-by-8 is checked against the bitwise reference in the next test
    assert crc64(data, 0x55) == crc_module._crc_slice8(data, 0x55)


def test_slice8_matches_reference():
    data = random.Random(3).randbytes(20_000)
    assert crc_module._crc_slice8(data, 9) == reference_crc64(data, 9)


def test_incremental_equals_one_shot():
    data = os.urandom(700_000)
    whole = crc64(data)
    crc = 0
    for start in range(0, len(data), 99_991):
        crc = crc64(data[start:start + 99_991], crc)
    assert crc == whole


def test_combine():
    a, b = os.urandom(1000), os.urandom(600_000)
    assert crc64_combine(crc64(a), crc64(b), len(b)) == crc64(a + b)
    assert crc64_combine(crc64(a), 0, 0) == crc64(a)


def test_accepts_bytearray_and_memoryview():
    data = os.urandom(10_000)
    assert crc64(bytearray(data)) == crc64(data) == crc64(memoryview(data))


# ---------------------------------------------------------------- LZF

def test_lzf_known_stream_decodes():
    # literal run "abc", then a 6-byte back reference at distance 3 (overlapping).
    assert lzf.decompress(b"\x02abc\x80\x02", 9) == b"abcabcabc"
    # long back reference: length field 7 + extra byte 10 -> 19 bytes at distance 1
    assert lzf.decompress(b"\x00x\xe0\x0a\x00", 20) == b"x" * 20


def test_lzf_long_offset_stream_decodes():
    head = bytes(range(256)) * 20  # 5120 bytes, no repeats shorter than 256 apart
    body = b"\x1f" + head[:32]
    for start in range(32, len(head), 32):
        body += bytes([31]) + head[start:start + 32]
    # back reference of 8 bytes at distance 5120: offset-1 = 5119 = 0x13ff
    stream = body + bytes([(6 << 5) | 0x13, 0xFF])
    assert lzf.decompress(stream, 5128) == head + head[:8]


@pytest.mark.parametrize("data", [
    b"a" * 21,
    b"abc" * 1000,
    b"hello world, hello world, hello world!",
    b"".join(b"field:%d value-%d;" % (i, i * 7) for i in range(3000)),
    bytes(range(256)) * 64,
    b"x" * 100_000,
])
def test_lzf_round_trip(data):
    packed = lzf.compress(data)
    assert packed is not None and len(packed) < len(data)
    assert lzf.decompress(packed, len(data)) == data


def test_lzf_round_trip_random_alphabets():
    rng = random.Random(11)
    for _ in range(300):
        alphabet = rng.choice([b"ab", b"abcdefgh", bytes(range(256))])
        data = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 5000)))
        packed = lzf.compress(data)
        if packed is None:
            continue
        assert len(packed) < len(data)
        assert lzf.decompress(packed, len(data)) == data


def test_lzf_incompressible_returns_none():
    assert lzf.compress(os.urandom(10_000)) is None
    assert lzf.compress(b"") is None
    assert lzf.compress(b"abc") is None


def test_lzf_max_len_is_respected():
    data = b"abcdefgh" * 10
    packed = lzf.compress(data)
    assert packed is not None
    assert lzf.compress(data, len(packed)) == packed
    assert lzf.compress(data, len(packed) - 1) is None


@pytest.mark.parametrize("stream, expected_len, message", [
    (b"\x05abc", 6, "past the end"),              # literal run longer than the input
    (b"\x02abc\x80", 9, "truncated"),              # back reference missing its offset byte
    (b"\x02abc\xe0", 9, "truncated"),              # long reference missing its length byte
    (b"\x02abc\x80\x09", 9, "before the start"),   # points before the output
    (b"\x02abc\x80\x02", 8, "expands"),            # longer than expected
    (b"\x02abc\x80\x02", 10, "expands"),           # shorter than expected
])
def test_lzf_corrupt_input_raises(stream, expected_len, message):
    with pytest.raises(lzf.LzfError, match=message):
        lzf.decompress(stream, expected_len)


def test_lzf_corrupt_expansion_stops_early():
    # 100k long references would expand to 26 MB: refused after the first
    # ones that pass the expected length, not after building it all.
    stream = b"\x00x" + b"\xe0\xff\x00" * 100_000
    with pytest.raises(lzf.LzfError, match="expands"):
        lzf.decompress(stream, 10)
    # and short references alone cannot expand more than 4x the input
    with pytest.raises(lzf.LzfError, match="expands"):
        lzf.decompress(b"\x00x" + b"\xc0\x00" * 1000, 100)


def test_lzf_truncated_streams_never_crash():
    data = b"".join(b"key:%d=%d," % (i, i % 13) for i in range(500))
    packed = lzf.compress(data)
    for cut in range(len(packed)):
        with pytest.raises(lzf.LzfError):
            lzf.decompress(packed[:cut], len(data))
