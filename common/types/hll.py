"""HyperLogLog as Redis 7.0 stores it: pure functions over the string value.

Layout (all of it is the string value, so GET/DUMP/RDB carry it as is):
  "HYLL" | encoding byte (0 dense, 1 sparse) | 3 unused bytes |
  8 bytes cached cardinality, little endian; bit 7 of the last byte set
  means "cache invalid" | registers.
Dense: 16384 registers of 6 bits, packed least significant bit first (the
register array read as one little-endian integer has register i at bit 6*i).
Sparse: a run-length code of opcodes
  00xxxxxx            ZERO:  xxxxxx+1 registers at 0 (1..64)
  01xxxxxx yyyyyyyy   XZERO: 14-bit length+1 registers at 0 (1..16384)
  1vvvvvxx            VAL:   xx+1 registers (1..4) at value vvvvv+1 (1..32)
Every mutation here follows the same steps as Redis's (split an opcode into
at most three, merge equal neighbouring VALs over a short window, promote to
dense past a size limit or for a value above 32) because the bytes it leaves
must be the same as Redis's, not just the counts.
"""

from __future__ import annotations

import math
import struct

P = 14
Q = 64 - P
REGISTERS = 1 << P
P_MASK = REGISTERS - 1
REGISTER_MAX = 63
HDR_SIZE = 16
DENSE_SIZE = HDR_SIZE + (REGISTERS * 6 + 7) // 8
DENSE = 0
SPARSE = 1
MAX_ENCODING = 1
ALPHA_INF = 0.721347520444481703680  # 1 / (2 ln 2), Ertl's estimator constant

ZERO_MAX_LEN = 64
XZERO_MAX_LEN = 16384
VAL_MAX_VALUE = 32
VAL_MAX_LEN = 4

MURMUR_SEED = 0xADC83B19
_M = 0xC6A4A7935BD1E995
_MASK64 = (1 << 64) - 1

# An empty HLL: sparse, one XZERO covering all registers, cache valid at 0.
EMPTY = b"HYLL" + bytes([SPARSE, 0, 0, 0]) + bytes(8) + bytes([0x7F, 0xFF])


class HLLError(Exception):
    """The sparse opcodes don't describe exactly 16384 registers (corrupt)."""


# ---------------------------------------------------------------- hashing


def murmur64a(data: bytes, seed: int = MURMUR_SEED) -> int:
    """MurmurHash64A (Austin Appleby), the variant Redis hashes elements with."""
    n = len(data)
    m = _M
    h = (seed ^ (n * m)) & _MASK64
    nblocks = n >> 3
    if nblocks:
        for k in struct.unpack_from("<%dQ" % nblocks, data):
            k = (k * m) & _MASK64
            k ^= k >> 47
            k = (k * m) & _MASK64
            h ^= k
            h = (h * m) & _MASK64
    tail = n & 7
    if tail:
        h ^= int.from_bytes(data[nblocks << 3:], "little")
        h = (h * m) & _MASK64
    h ^= h >> 47
    h = (h * m) & _MASK64
    h ^= h >> 47
    return h


def pattern(element: bytes) -> tuple[int, int]:
    """(register index, run length) for an element: the low P bits of the
    hash pick the register, the count of trailing zeros of the rest (+1)
    is the value, capped at Q+1 by a sentinel bit."""
    h = murmur64a(element)
    index = h & P_MASK
    rest = (h >> P) | (1 << Q)
    count = (rest & -rest).bit_length()
    return index, count


# ---------------------------------------------------------------- header


def is_valid_header(value: bytes) -> bool:
    """Redis's check before any PF* command uses a string as a HLL."""
    if len(value) < HDR_SIZE or value[:4] != b"HYLL":
        return False
    enc = value[4]
    if enc > MAX_ENCODING:
        return False
    return enc != DENSE or len(value) == DENSE_SIZE


def encoding(value: bytes) -> int:
    return value[4]


def cached_card(value: bytes) -> int | None:
    """The cached cardinality, or None when the invalid bit is set."""
    if value[15] & 0x80:
        return None
    return int.from_bytes(value[8:16], "little")


def with_card(buf: bytearray, card: int) -> None:
    buf[8:16] = card.to_bytes(8, "little")


def invalidate(buf: bytearray) -> None:
    buf[15] |= 0x80


# ---------------------------------------------------------------- dense


def dense_get(regs, index: int) -> int:
    """Register index of a dense register area (regs starts at register 0;
    needs one byte of slack after the last register, as Redis's sds has)."""
    bit = index * 6
    byte = bit >> 3
    fb = bit & 7
    b0 = regs[byte]
    b1 = regs[byte + 1] if byte + 1 < len(regs) else 0
    return ((b0 >> fb) | (b1 << (8 - fb))) & 63


def dense_set_at(buf: bytearray, index: int, value: int) -> None:
    """Write register index of the dense HLL in buf (header included)."""
    bit = index * 6
    byte = HDR_SIZE + (bit >> 3)
    fb = bit & 7
    fb8 = 8 - fb
    buf[byte] = (buf[byte] & ~(63 << fb) & 0xFF) | ((value << fb) & 0xFF)
    if byte + 1 < len(buf):
        buf[byte + 1] = (buf[byte + 1] & ~(63 >> fb8) & 0xFF) | (value >> fb8)


# Register arrays are handled unpacked, one byte per register (16384 bytes),
# so that union and histogram run as big-integer and bytes operations in C
# instead of a Python loop over 16384 registers. Packing works on 32-bit
# slots: 3 register bytes (4 registers) padded to 4 bytes, each 6-bit field
# then moved to its own byte by a shift under a mask.
_SLOT_FIELDS = [(shift, int.from_bytes((63 << (8 * k)).to_bytes(4, "little")
                                       * (REGISTERS // 4), "little"))
                for k, shift in enumerate((0, 2, 4, 6))]
_LANE_HIGH = int.from_bytes(b"\x80" * REGISTERS, "little")


def unpack_dense(value: bytes) -> bytes:
    """The registers of a dense HLL, one byte each."""
    regs = value[HDR_SIZE:DENSE_SIZE]
    padded = bytearray(REGISTERS)
    padded[0::4] = regs[0::3]
    padded[1::4] = regs[1::3]
    padded[2::4] = regs[2::3]
    n = int.from_bytes(padded, "little")
    out = 0
    for shift, mask in _SLOT_FIELDS:
        out |= (n << shift) & mask
    return out.to_bytes(REGISTERS, "little")


def pack(regs: bytes) -> bytes:
    """The 12288-byte dense register area for one-byte-per-register values."""
    n = int.from_bytes(regs, "little")
    packed = 0
    for shift, mask in _SLOT_FIELDS:
        packed |= (n & mask) >> shift
    slots = packed.to_bytes(REGISTERS, "little")
    out = bytearray(REGISTERS * 6 // 8)
    out[0::3] = slots[0::4]
    out[1::3] = slots[1::4]
    out[2::3] = slots[2::4]
    return bytes(out)


def union(a: bytes, b: bytes) -> bytes:
    """Register-wise maximum of two unpacked register arrays. Values are
    below 128, so (a | 0x80) - b borrows only inside its byte and leaves the
    high bit set exactly where a >= b."""
    x = int.from_bytes(a, "little")
    y = int.from_bytes(b, "little")
    ge = ((x | _LANE_HIGH) - y) & _LANE_HIGH
    keep_x = (ge - (ge >> 7)) | ge  # 0xFF bytes where a >= b
    return ((x & keep_x) | (y & ~keep_x)).to_bytes(REGISTERS, "little")


def dense_registers(value: bytes) -> list[int]:
    """All 16384 register values of a dense HLL."""
    return list(unpack_dense(value))


def pack_dense(registers) -> bytes:
    """The 12288-byte dense register area for 16384 register values."""
    return pack(bytes(registers))


def _dense_histogram(value: bytes) -> list[int]:
    return histogram_of(unpack_dense(value))


# ---------------------------------------------------------------- sparse


def sparse_ops(value: bytes):
    """Yield (kind, run length, register value) for each sparse opcode;
    kind is 'z' (ZERO), 'Z' (XZERO) or 'v' (VAL)."""
    p = HDR_SIZE
    end = len(value)
    while p < end:
        op = value[p]
        if op & 0x80:
            yield "v", (op & 3) + 1, ((op >> 2) & 31) + 1
            p += 1
        elif op & 0x40:
            length = (((op & 0x3F) << 8) | (value[p + 1] if p + 1 < end else 0)) + 1
            yield "Z", length, 0
            p += 2
        else:
            yield "z", (op & 0x3F) + 1, 0
            p += 1


def _sparse_histogram(value: bytes) -> list[int]:
    histo = [0] * 64
    total = 0
    for _kind, runlen, val in sparse_ops(value):
        histo[val] += runlen
        total += runlen
    if total != REGISTERS:
        raise HLLError("sparse HLL does not cover the registers")
    return histo


def to_dense(value: bytes) -> bytes:
    """The dense form of a HLL (header, cache bytes included, copied)."""
    if value[4] == DENSE:
        return value
    return value[:4] + bytes([DENSE]) + value[5:HDR_SIZE] + pack(_unpack_sparse(value))


def _unpack_sparse(value: bytes) -> bytes:
    regs = bytearray(REGISTERS)
    idx = 0
    for kind, runlen, val in sparse_ops(value):
        if kind == "v":
            if idx + runlen > REGISTERS:
                break  # overflow: reported below
            regs[idx:idx + runlen] = _RUNS[val][:runlen]
        idx += runlen
    if idx != REGISTERS:
        raise HLLError("sparse HLL does not cover the registers")
    return bytes(regs)


_RUNS = [bytes([v]) * VAL_MAX_LEN for v in range(VAL_MAX_VALUE + 1)]


def unpack(value: bytes) -> bytes:
    """The registers of a HLL, one byte each. HLLError if a sparse HLL's
    opcodes overflow or fall short of 16384 registers."""
    if value[4] == DENSE:
        return unpack_dense(value)
    return _unpack_sparse(value)


# Registers covered by each one-byte opcode; 0 marks XZERO's first byte.
_SPAN = bytes(0 if op & 0xC0 == 0x40 else (op & 3) + 1 if op & 0x80 else (op & 0x3F) + 1
              for op in range(256))


def _val_op(value: int, length: int) -> int:
    return 0x80 | ((value - 1) << 2) | (length - 1)


def _zero_ops(length: int) -> bytes:
    if length > ZERO_MAX_LEN:
        length -= 1
        return bytes([0x40 | (length >> 8), length & 0xFF])
    return bytes([length - 1])


class HLL:
    """A mutable HLL value during one command: wraps a bytearray and keeps
    the sparse/dense switch inside, as Redis's object does."""

    __slots__ = ("buf", "sparse_max")

    def __init__(self, value: bytes, sparse_max: int):
        self.buf = bytearray(value)
        self.sparse_max = sparse_max

    @property
    def encoding(self) -> int:
        return self.buf[4]

    def value(self) -> bytes:
        return bytes(self.buf)

    def make_dense(self) -> bool:
        """Promote to dense; False if it already was. Raises HLLError."""
        if self.buf[4] == DENSE:
            return False
        self.buf = bytearray(to_dense(bytes(self.buf)))
        return True

    def add(self, element: bytes) -> int:
        """1 if a register grew, 0 if not; HLLError if corrupt."""
        index, count = pattern(element)
        return self.set(index, count)

    def set(self, index: int, count: int) -> int:
        if self.buf[4] == DENSE:
            return self._dense_set(index, count)
        return self._sparse_set(index, count)

    def _dense_set(self, index: int, count: int) -> int:
        regs = memoryview(self.buf)[HDR_SIZE:]
        old = dense_get(regs, index)
        regs.release()
        if count > old:
            dense_set_at(self.buf, index, count)
            return 1
        return 0

    def _promote_and_set(self, index: int, count: int) -> int:
        self.make_dense()
        self._dense_set(index, count)
        return 1

    def _sparse_set(self, index: int, count: int) -> int:
        if count > VAL_MAX_VALUE:
            return self._promote_and_set(index, count)
        buf = self.buf
        end = len(buf)
        # Find the opcode covering index (the hot loop of a sparse PFADD:
        # one table lookup per one-byte opcode).
        p = HDR_SIZE
        first = 0
        prev = -1
        span = 0
        spans = _SPAN
        it = iter(buf[HDR_SIZE:])
        for op in it:
            span = spans[op]
            if span:
                if index < first + span:
                    break
                prev = p
                p += 1
            else:  # XZERO: two bytes
                span = (((op & 0x3F) << 8) | next(it, 0)) + 1
                if index < first + span:
                    break
                prev = p
                p += 2
            first += span
        else:
            p = end
        if span == 0 or p >= end:
            raise HLLError("index past the sparse opcodes")
        op = buf[p]
        is_val = bool(op & 0x80)
        is_xzero = not is_val and bool(op & 0x40)
        is_zero = not is_val and not is_xzero
        runlen = span
        if is_val:
            old = ((op >> 2) & 31) + 1
            if old >= count:
                return 0
            if runlen == 1:
                buf[p] = _val_op(count, 1)
                self._merge_after(prev)
                return 1
        if is_zero and runlen == 1:
            buf[p] = _val_op(count, 1)
            self._merge_after(prev)
            return 1
        # General case: split the opcode into up to three.
        last = first + span - 1
        seq = bytearray()
        if is_val:
            curval = ((op >> 2) & 31) + 1
            if index != first:
                seq.append(_val_op(curval, index - first))
            seq.append(_val_op(count, 1))
            if index != last:
                seq.append(_val_op(curval, last - index))
        else:
            if index != first:
                seq += _zero_ops(index - first)
            seq.append(_val_op(count, 1))
            if index != last:
                seq += _zero_ops(last - index)
        oldlen = 2 if is_xzero else 1
        delta = len(seq) - oldlen
        if delta > 0 and end + delta > self.sparse_max:
            return self._promote_and_set(index, count)
        buf[p:p + oldlen] = seq
        self._merge_after(prev)
        return 1

    def _merge_after(self, prev: int) -> None:
        """Merge equal adjacent VALs in the few opcodes from prev on, as
        Redis does after each sparse update (a window of 5 opcodes)."""
        buf = self.buf
        p = prev if prev >= 0 else HDR_SIZE
        end = len(buf)
        scan = 5
        while p < end and scan:
            scan -= 1
            op = buf[p]
            if not op & 0x80:
                p += 2 if op & 0x40 else 1
                continue
            if p + 1 < end and buf[p + 1] & 0x80:
                nxt = buf[p + 1]
                v1 = (op >> 2) & 31
                if v1 == (nxt >> 2) & 31:
                    length = (op & 3) + (nxt & 3) + 2
                    if length <= VAL_MAX_LEN:
                        del buf[p]
                        buf[p] = _val_op(v1 + 1, length)
                        end -= 1
                        continue
            p += 1


# ---------------------------------------------------------------- reading


def histogram(value: bytes) -> list[int]:
    """How many registers hold each value 0..63. HLLError if corrupt."""
    if value[4] == DENSE:
        return _dense_histogram(value)
    return _sparse_histogram(value)


def registers(value: bytes) -> list[int]:
    """All register values (HLLError if corrupt)."""
    return list(unpack(value))


def histogram_of(regs: bytes) -> list[int]:
    """How many registers hold each value, for unpacked registers."""
    histo = [0] * 64
    left = len(regs)
    for v in range(64):  # values are small: stop once every register is seen
        if not left:
            break
        n = regs.count(v)
        histo[v] = n
        left -= n
    return histo


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y = 1.0
    z = x
    while True:
        x *= x
        z_prev = z
        z += x * y
        y += y
        if z_prev == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1 - x
    while True:
        x = math.sqrt(x)
        z_prev = z
        y *= 0.5
        z -= math.pow(1 - x, 2) * y
        if z_prev == z:
            return z / 3


def estimate(histo: list[int]) -> int:
    """Ertl's improved raw estimator over a register histogram (Redis >= 5)."""
    m = float(REGISTERS)
    z = m * _tau((m - histo[Q + 1]) / m)
    for j in range(Q, 0, -1):
        z += histo[j]
        z *= 0.5
    z += m * _sigma(histo[0] / m)
    e = ALPHA_INF * m * m / z
    return int(math.floor(e + 0.5))  # llround: halves away from zero, e >= 0


def count(value: bytes) -> int:
    """Cardinality computed from the registers (ignores the cache)."""
    return estimate(histogram(value))


def decode_sparse(value: bytes) -> bytes:
    """PFDEBUG DECODE's text for a sparse HLL."""
    parts = []
    for kind, runlen, val in sparse_ops(value):
        if kind == "v":
            parts.append("v:%d,%d" % (val, runlen))
        else:
            parts.append("%s:%d" % (kind, runlen))
    return " ".join(parts).encode()


def self_test() -> str:
    """PFSELFTEST's checks; '' if all pass, else what failed. Checks the
    dense register packing for every register and value, that sparse and
    dense forms agree (same registers, same count) as elements are added,
    and that estimates stay within a few standard errors."""
    import random

    buf = bytearray(DENSE_SIZE)
    rng = random.Random(0x5EED)
    expected = [rng.randrange(REGISTER_MAX + 1) for _ in range(REGISTERS)]
    for i, v in enumerate(expected):
        dense_set_at(buf, i, v)
    if dense_registers(bytes(buf)) != expected:
        return "TESTFAILED Register error"
    if pack_dense(expected) != bytes(buf[HDR_SIZE:]):
        return "TESTFAILED Register packing error"
    sparse = HLL(EMPTY, 1 << 30)  # never promoted by size
    dense = HLL(EMPTY, 0)
    dense.make_dense()
    relerr = 1.04 / math.sqrt(REGISTERS)
    checked = 0
    for n in range(1, 3001):
        element = b"%d-%d" % (n, rng.getrandbits(32))
        sparse.add(element)
        dense.add(element)
        if n in (10, 100, 1000, 2000, 3000):
            sv, dv = sparse.value(), dense.value()
            if sv[4] == SPARSE and registers(sv) != registers(dv):
                return "TESTFAILED sparse and dense registers differ at %d" % n
            c = count(dv)
            if count(sv) != c:
                return "TESTFAILED sparse and dense counts differ at %d" % n
            if abs(c - n) > max(5 * relerr * n, 1):
                return "TESTFAILED too big error. card:%d abserr:%d" % (n, abs(c - n))
            checked += 1
    return "" if checked == 5 else "TESTFAILED checks skipped"
