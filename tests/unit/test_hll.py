"""The HyperLogLog data structure (common/types/hll.py), pure functions.

Expected registers below were read from Redis 7.0.15 (PFADD of one element
to a fresh key, then PFDEBUG DECODE); tests/interop/test_hll_diff.py checks
the rest against a live server."""

from __future__ import annotations

import random

import pytest

from hakv.common.types import hll

# element -> (register index, value) as Redis 7.0 sets them
REDIS_PATTERNS = {
    b"": (5938, 2),
    b"a": (12711, 2),
    b"hello": (9216, 1),
    b"12345678": (10579, 3),  # exactly one 8-byte block, no tail
    b"123456789abcdef": (1977, 3),  # a block and a 7-byte tail
    b"\xff\x00\x80" * 5: (3650, 2),  # high bytes in block and tail
}


@pytest.mark.parametrize("element", list(REDIS_PATTERNS))
def test_pattern_matches_redis(element):
    assert hll.pattern(element) == REDIS_PATTERNS[element]


def test_single_add_leaves_redis_sparse_bytes():
    sketch = hll.HLL(hll.EMPTY, 3000)
    assert sketch.add(b"a") == 1
    assert sketch.add(b"a") == 0
    value = sketch.value()
    assert hll.decode_sparse(value) == b"Z:12711 v:2,1 Z:3672"
    # XZERO 12711 = 01 + 14 bits of 12710, VAL(2,1), XZERO 3672
    assert value[16:] == bytes([0x40 | (12710 >> 8), 12710 & 0xFF, 0x84,
                                0x40 | (3671 >> 8), 3671 & 0xFF])


def test_empty_value_and_header_checks():
    assert hll.EMPTY == b"HYLL\x01\x00\x00\x00" + bytes(8) + b"\x7f\xff"
    assert hll.count(hll.EMPTY) == 0
    assert hll.cached_card(hll.EMPTY) == 0
    assert hll.is_valid_header(hll.EMPTY)
    assert not hll.is_valid_header(b"HYLL\x01")
    assert not hll.is_valid_header(b"HYLX" + hll.EMPTY[4:])
    assert not hll.is_valid_header(b"HYLL\x02" + hll.EMPTY[5:])
    assert not hll.is_valid_header(b"HYLL\x00" + bytes(11) + bytes(100))
    assert hll.is_valid_header(b"HYLL\x00" + bytes(hll.DENSE_SIZE - 5))


def test_cache_bytes():
    buf = bytearray(hll.EMPTY)
    hll.with_card(buf, 123456)
    assert hll.cached_card(bytes(buf)) == 123456
    hll.invalidate(buf)
    assert hll.cached_card(bytes(buf)) is None


def test_dense_registers_roundtrip_every_position():
    rng = random.Random(1)
    values = [rng.randrange(64) for _ in range(hll.REGISTERS)]
    buf = bytearray(hll.DENSE_SIZE)
    for i, v in enumerate(values):
        hll.dense_set_at(buf, i, v)
    assert hll.dense_registers(bytes(buf)) == values
    assert hll.pack_dense(values) == bytes(buf[hll.HDR_SIZE:])
    assert all(hll.dense_get(buf[hll.HDR_SIZE:], i) == values[i] for i in range(0, 16384, 7))
    # Writing one register leaves its neighbours alone.
    hll.dense_set_at(buf, 5, 63)
    got = hll.dense_registers(bytes(buf))
    assert got[5] == 63 and got[4] == values[4] and got[6] == values[6]


def test_sparse_and_dense_agree():
    rng = random.Random(2)
    sparse = hll.HLL(hll.EMPTY, 1 << 20)
    dense = hll.HLL(hll.EMPTY, 3000)
    dense.make_dense()
    for n in range(1, 1501):
        element = rng.randbytes(8)
        assert sparse.add(element) == dense.add(element)
        if n % 500 == 0:
            sv, dv = sparse.value(), dense.value()
            assert sv[4] == hll.SPARSE and dv[4] == hll.DENSE
            assert hll.registers(sv) == hll.registers(dv)
            assert hll.to_dense(sv)[hll.HDR_SIZE:] == dv[hll.HDR_SIZE:]
            assert hll.count(sv) == hll.count(dv)


def test_adjacent_equal_values_merge_into_one_opcode():
    sketch = hll.HLL(hll.EMPTY, 3000)
    for index in (10, 11, 12, 13, 14):
        sketch.set(index, 3)
    assert hll.decode_sparse(sketch.value()) == b"z:10 v:3,4 v:3,1 Z:16369"
    # b"e1283562" hashes to register 12, value 5: it splits the run of four,
    # and the split's tail merges with the next VAL. Redis 7.0.15 leaves the
    # same opcodes after SET of the bytes above and PFADD of that element.
    assert hll.pattern(b"e1283562") == (12, 5)
    assert sketch.add(b"e1283562") == 1
    assert hll.decode_sparse(sketch.value()) == b"z:10 v:3,2 v:5,1 v:3,2 Z:16369"
    assert sketch.set(12, 4) == 0  # lower value: no change


def test_promotion_by_value_and_by_size():
    sketch = hll.HLL(hll.EMPTY, 3000)
    sketch.set(100, 32)
    assert sketch.encoding == hll.SPARSE
    sketch.set(200, 33)  # above VAL's maximum
    assert sketch.encoding == hll.DENSE
    regs = hll.registers(sketch.value())
    assert regs[100] == 32 and regs[200] == 33 and sum(regs) == 65

    small = hll.HLL(hll.EMPTY, 30)
    index = 0
    while small.encoding == hll.SPARSE:
        small.set(index, 1 + index % 7)
        assert len(small.buf) <= 30 or small.encoding == hll.DENSE
        index += 100
    assert len(small.value()) == hll.DENSE_SIZE


def test_estimates_are_close():
    rng = random.Random(3)
    sketch = hll.HLL(hll.EMPTY, 3000)
    n = 0
    for target in (10, 100, 1000, 10000, 50000):
        while n < target:
            sketch.add(b"%d:%d" % (n, rng.getrandbits(30)))
            n += 1
        assert abs(hll.count(sketch.value()) - n) <= max(2, 0.05 * n)


def test_redis_reference_counts():
    """PFCOUNT after PFADD x0..x999 / x0..x99999 on Redis 7.0.15."""
    sketch = hll.HLL(hll.EMPTY, 3000)
    for i in range(1000):
        sketch.add(b"x%d" % i)
    assert hll.count(sketch.value()) == 1001
    for i in range(1000, 100000):
        sketch.add(b"x%d" % i)
    assert hll.count(sketch.value()) == 100903


def test_merge_and_union_count():
    a = hll.HLL(hll.EMPTY, 3000)
    b = hll.HLL(hll.EMPTY, 3000)
    b.make_dense()
    for i in range(3000):
        a.add(b"a%d" % i)
        b.add(b"b%d" % i)
    union = hll.union(hll.unpack(a.value()), hll.unpack(b.value()))
    assert union == hll.union(hll.unpack(b.value()), hll.unpack(a.value()))
    both = hll.HLL(a.value(), 3000)
    for i in range(3000):
        both.add(b"b%d" % i)
    assert list(union) == hll.registers(both.value())
    assert hll.estimate(hll.histogram_of(union)) == hll.count(both.value())


def test_union_is_registerwise_max_for_all_value_pairs():
    a = bytes(i % 64 for i in range(hll.REGISTERS))
    b = bytes((i // 64) % 64 for i in range(hll.REGISTERS))  # every (a, b) pair
    assert list(hll.union(a, b)) == [max(x, y) for x, y in zip(a, b)]
    assert hll.unpack_dense(b"HYLL\x00" + bytes(11) + hll.pack(a)) == a


@pytest.mark.parametrize("tail", [b"\x7f\xfe", b"\x7f\xff\x00", b"\x7f\xfc\x83\x83", b""])
def test_corrupt_sparse_is_detected(tail):
    value = hll.EMPTY[:16] + tail
    with pytest.raises(hll.HLLError):
        hll.count(value)
    with pytest.raises(hll.HLLError):
        hll.to_dense(value)
    with pytest.raises(hll.HLLError):
        hll.unpack(value)


def test_set_past_the_opcodes_is_detected():
    sketch = hll.HLL(hll.EMPTY[:16] + b"\x00", 3000)  # covers one register only
    with pytest.raises(hll.HLLError):
        sketch.set(500, 2)


def test_self_test_passes():
    assert hll.self_test() == ""
