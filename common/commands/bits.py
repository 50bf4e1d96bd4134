"""Bit and LCS commands on strings: SETBIT GETBIT BITCOUNT BITPOS BITOP
BITFIELD BITFIELD_RO LCS.

Strings are immutable bytes, so nothing here loops over bits in Python: counts
go through int.bit_count, searches through bytes.lstrip, BITOP through big
integers (AND/OR/XOR) or bytes.translate (NOT). Bit 0 is the most significant
bit of byte 0, as in Redis.

LCS uses the bit-parallel algorithm (Hyyro): one big-integer row per byte of
the first string instead of Redis's table of (len(a)+1)*(len(b)+1) counters;
a row's zero bits mark where LCS(i, j) grows with j, which is all the
traceback needs to take the same path as Redis's table walk, so IDX reports
the same ranges Redis does.
"""

from __future__ import annotations

from hakv.common import errors
from hakv.common.commands.keys import note_access, note_string_encoding
from hakv.common.commands.table import command
from hakv.common.numbers import get_int, parse_int
from hakv.common.resp import ErrorReply

G = "bitmap"
K1 = (1, 1, 1)

BIT_OFFSET_ERR = "ERR bit offset is not an integer or out of range"
BIT_VALUE_ERR = "ERR bit is not an integer or out of range"
BITFIELD_TYPE_ERR = ("ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is "
                     "not supported but i64 is.")

_NOT_TABLE = bytes(255 - i for i in range(256))


def _bit_offset(ctx, raw: bytes, bits: int = 0) -> int:
    """A bit offset argument; with bits (BITFIELD), '#N' means N*bits."""
    hashed = bits and len(raw) > 1 and raw[0] == 35  # '#'
    n = parse_int(raw[1:] if hashed else raw)
    if n is None:
        raise ErrorReply(BIT_OFFSET_ERR)
    if hashed:
        n *= bits
    if n < 0 or (n >> 3) >= ctx.server.settings["proto-max-bulk-len"]:
        raise ErrorReply(BIT_OFFSET_ERR)
    return n


def _store(ctx, db, key: bytes, value: bytes) -> None:
    """Store a string written by a bit command: Redis holds those "raw"."""
    db.set(key, value, keepttl=True)
    note_string_encoding(db, key, value)


# ---------------------------------------------------------------- SETBIT GETBIT


@command("setbit", 4, "write denyoom", keys=K1, group=G, since="2.2.0",
         summary="Set or clear one bit of a string")
def setbit(ctx, argv):
    offset = _bit_offset(ctx, argv[2])
    on = parse_int(argv[3])
    if on is None or on not in (0, 1):
        raise ErrorReply(BIT_VALUE_ERR)
    db = ctx.db
    key = argv[1]
    old = db.get_typed(key, bytes)
    byte = offset >> 3
    shift = 7 - (offset & 7)
    grows = old is None or len(old) <= byte
    previous = 0 if grows else (old[byte] >> shift) & 1
    if not grows and previous == on:
        # No change, but Redis still turned the value into a raw string.
        note_string_encoding(db, key, old)
        note_access(ctx, db, key)
        return previous
    buf = bytearray(old or b"")
    if len(buf) <= byte:
        buf.extend(bytes(byte + 1 - len(buf)))
    if on:
        buf[byte] |= 1 << shift
    else:
        buf[byte] &= ~(1 << shift) & 0xFF
    _store(ctx, db, key, bytes(buf))
    note_access(ctx, db, key)
    ctx.server.keyspace.notify(db, "$", b"setbit", key)
    ctx.server.dirty += 1
    return previous


@command("getbit", 3, "readonly fast", keys=K1, group=G, since="2.2.0",
         summary="One bit of a string")
def getbit(ctx, argv):
    offset = _bit_offset(ctx, argv[2])
    db = ctx.db
    value = db.get_typed(argv[1], bytes)
    if value is None:
        return 0
    note_access(ctx, db, argv[1])
    byte = offset >> 3
    if byte >= len(value):
        return 0
    return (value[byte] >> (7 - (offset & 7))) & 1


# ---------------------------------------------------------------- ranges


def _clip_range(start: int, end: int, length: int):
    """Redis's index normalization for BITCOUNT/BITPOS: negative from the
    end, clamped to [0, length-1]. Returns (start, end), maybe start > end."""
    if start < 0:
        start += length
    if end < 0:
        end += length
    if start < 0:
        start = 0
    if end < 0:
        end = 0
    if end >= length:
        end = length - 1
    return start, end


def _unit(raw: bytes) -> bool:
    """True for BIT, False for BYTE; syntax error otherwise."""
    low = raw.lower()
    if low == b"bit":
        return True
    if low == b"byte":
        return False
    raise ErrorReply(errors.SYNTAX)


def count_bits(value: bytes, first_bit: int, last_bit: int) -> int:
    """Set bits in the inclusive bit range (0 <= first_bit <= last_bit < 8*len)."""
    first_byte, last_byte = first_bit >> 3, last_bit >> 3
    total = int.from_bytes(value[first_byte:last_byte + 1], "big").bit_count()
    head = first_bit & 7
    if head:
        total -= (value[first_byte] >> (8 - head)).bit_count()
    tail = 7 - (last_bit & 7)
    if tail:
        total -= (value[last_byte] & ((1 << tail) - 1)).bit_count()
    return total


@command("bitcount", -2, "readonly", keys=K1, group=G, since="2.6.0",
         summary="Count the set bits of a string or of a range of it")
def bitcount(ctx, argv):
    db = ctx.db
    value = db.get_typed(argv[1], bytes)
    if value is None:
        return 0
    note_access(ctx, db, argv[1])
    n = len(argv)
    length = len(value)
    if n == 2:
        return int.from_bytes(value, "big").bit_count()
    if n not in (4, 5):
        raise ErrorReply(errors.SYNTAX)
    start = get_int(argv[2])
    end = get_int(argv[3])
    in_bits = _unit(argv[4]) if n == 5 else False
    if start < 0 and end < 0 and start > end:
        return 0
    size = length * 8 if in_bits else length
    start, end = _clip_range(start, end, size)
    if start > end:
        return 0
    if in_bits:
        return count_bits(value, start, end)
    return int.from_bytes(value[start:end + 1], "big").bit_count()


def find_bit(value: bytes, bit: int, first_bit: int, last_bit: int) -> int:
    """Position of the first bit equal to `bit` in the inclusive bit range,
    or -1."""
    last_byte = last_bit >> 3
    skip = b"\x00" if bit else b"\xff"
    pos = first_bit
    while pos <= last_bit:
        byte_index = pos >> 3
        if pos & 7 == 0 and byte_index < last_byte:
            # Whole bytes: skip the ones without the wanted bit at C speed.
            chunk = value[byte_index:last_byte]
            stripped = chunk.lstrip(skip)
            byte_index += len(chunk) - len(stripped)
            pos = byte_index << 3
            if byte_index == last_byte:
                continue
        byte = value[byte_index] if bit else value[byte_index] ^ 0xFF
        # Bits of this byte inside the range, as a mask over the byte.
        lo = pos & 7
        hi = last_bit & 7 if byte_index == last_byte else 7
        window = byte & ((0xFF >> lo) & (0xFF << (7 - hi)) & 0xFF)
        if window:
            return (byte_index << 3) + 8 - window.bit_length()
        pos = (byte_index + 1) << 3
    return -1


@command("bitpos", -3, "readonly", keys=K1, group=G, since="2.8.7",
         summary="Find the first set or clear bit in a string")
def bitpos(ctx, argv):
    bit = get_int(argv[2])
    if bit not in (0, 1):
        raise ErrorReply("ERR The bit argument must be 1 or 0.")
    db = ctx.db
    value = db.get_typed(argv[1], bytes)
    if value is None:
        return -1 if bit else 0
    note_access(ctx, db, argv[1])
    n = len(argv)
    length = len(value)
    end_given = False
    in_bits = False
    if n == 3:
        start, end = 0, length - 1
    elif n in (4, 5, 6):
        start = get_int(argv[3])
        if n == 6:
            in_bits = _unit(argv[5])
        if n >= 5:
            end = get_int(argv[4])
            end_given = True
        else:
            end = length * 8 - 1 if in_bits else length - 1
        size = length * 8 if in_bits else length
        start, end = _clip_range(start, end, size)
    else:
        raise ErrorReply(errors.SYNTAX)
    if start > end:
        return -1
    first_bit, last_bit = (start, end) if in_bits else (start * 8, end * 8 + 7)
    found = find_bit(value, bit, first_bit, last_bit)
    if found >= 0 or bit == 1 or end_given:
        return found
    # Looking for a clear bit with no end given: the string counts as padded
    # with zeros on the right, so the answer is the first bit after it.
    return ((last_bit >> 3) + 1) * 8


# ---------------------------------------------------------------- BITOP


@command("bitop", -4, "write denyoom", keys=(2, -1, 1), group=G, since="2.6.0",
         summary="Bitwise AND, OR, XOR or NOT of strings into a key")
def bitop(ctx, argv):
    op = argv[1].lower()
    if op not in (b"and", b"or", b"xor", b"not"):
        raise ErrorReply(errors.SYNTAX)
    if op == b"not" and len(argv) != 4:
        raise ErrorReply("ERR BITOP NOT must be called with a single source key.")
    db = ctx.db
    sources = []
    for key in argv[3:]:
        value = db.get_typed(key, bytes)
        if value is not None:
            note_access(ctx, db, key)
        sources.append(value if value is not None else b"")
    size = max(len(s) for s in sources)
    dest = argv[2]
    server = ctx.server
    if size == 0:
        if db.delete(dest):
            server.keyspace.notify(db, "g", b"del", dest)
            server.dirty += 1
        return 0
    if op == b"not":
        result = sources[0].translate(_NOT_TABLE)
    else:
        # Big-endian integers padded on the right with zero bytes: missing
        # and shorter strings count as zeros, as in Redis.
        acc = None
        for s in sources:
            v = int.from_bytes(s, "big") << (8 * (size - len(s)))
            if acc is None:
                acc = v
            elif op == b"and":
                acc &= v
            elif op == b"or":
                acc |= v
            else:
                acc ^= v
        result = acc.to_bytes(size, "big")
    db.set(dest, result)
    note_string_encoding(db, dest, result)
    server.keyspace.notify(db, "$", b"set", dest)
    server.dirty += 1
    return size


# ---------------------------------------------------------------- BITFIELD

_GET, _SET, _INCRBY = 0, 1, 2
_WRAP, _SAT, _FAIL = 0, 1, 2
_OVERFLOW_TYPES = {b"wrap": _WRAP, b"sat": _SAT, b"fail": _FAIL}
_U64 = (1 << 64) - 1


def _bitfield_type(raw: bytes):
    """(signed, bits) from 'i8', 'u16' ...: i1..i64, u1..u63."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        raw = raw[:nul]  # Redis reads the argument as a C string
    if not raw or raw[0] not in b"iu":
        raise ErrorReply(BITFIELD_TYPE_ERR)
    signed = raw[0] == 105  # 'i'
    bits = parse_int(raw[1:])
    if bits is None or bits < 1 or bits > (64 if signed else 63):
        raise ErrorReply(BITFIELD_TYPE_ERR)
    return signed, bits


def read_field(buf, offset: int, bits: int, signed: bool) -> int:
    """The bits [offset, offset+bits) of buf as an integer; bits past the end
    of buf read as zeros."""
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    width = last - first + 1
    chunk = bytes(buf[first:last + 1])
    if len(chunk) < width:
        chunk += bytes(width - len(chunk))
    v = int.from_bytes(chunk, "big") >> (width * 8 - (offset & 7) - bits)
    v &= (1 << bits) - 1
    if signed and v >> (bits - 1):
        v -= 1 << bits
    return v


def write_field(buf: bytearray, offset: int, bits: int, value: int) -> None:
    """Store the low `bits` bits of value at [offset, offset+bits) of buf
    (which is long enough)."""
    first = offset >> 3
    last = (offset + bits - 1) >> 3
    width = last - first + 1
    shift = width * 8 - (offset & 7) - bits
    mask = ((1 << bits) - 1) << shift
    chunk = int.from_bytes(buf[first:last + 1], "big")
    chunk = (chunk & ~mask) | ((value << shift) & mask)
    buf[first:last + 1] = chunk.to_bytes(width, "big")


def _overflow(result: int, signed: bool, bits: int, owtype: int, is_set: bool):
    """Redis's overflow handling: the value to store, or None (FAIL)."""
    if signed:
        hi = (1 << (bits - 1)) - 1
        lo = -hi - 1
    else:
        hi = (1 << bits) - 1
        lo = 0
        if is_set:
            result &= _U64  # the C code reads the argument as an unsigned 64-bit value
    if lo <= result <= hi:
        return result
    if owtype == _FAIL:
        return None
    if owtype == _SAT:
        return hi if result > hi else lo
    result &= (1 << bits) - 1
    if signed and result >> (bits - 1):
        result -= 1 << bits
    return result


def _parse_bitfield(ctx, argv):
    ops = []
    owtype = _WRAP
    highest = -1  # highest bit a write reaches
    j = 2
    n = len(argv)
    while j < n:
        remaining = n - j - 1
        sub = argv[j].lower()
        if sub == b"get" and remaining >= 2:
            opcode = _GET
        elif sub == b"set" and remaining >= 3:
            opcode = _SET
        elif sub == b"incrby" and remaining >= 3:
            opcode = _INCRBY
        elif sub == b"overflow" and remaining >= 1:
            owtype = _OVERFLOW_TYPES.get(argv[j + 1].lower())
            if owtype is None:
                raise ErrorReply("ERR Invalid OVERFLOW type specified")
            j += 2
            continue
        else:
            raise ErrorReply(errors.SYNTAX)
        signed, bits = _bitfield_type(argv[j + 1])
        offset = _bit_offset(ctx, argv[j + 2], bits)
        arg = 0
        if opcode != _GET:
            highest = max(highest, offset + bits - 1)
            arg = get_int(argv[j + 3])
            j += 4
        else:
            j += 3
        ops.append((opcode, signed, bits, offset, arg, owtype))
    return ops, highest


def _bitfield(ctx, argv, readonly: bool):
    ops, highest = _parse_bitfield(ctx, argv)
    db = ctx.db
    key = argv[1]
    if highest < 0:
        value = db.get_typed(key, bytes)
        if value is not None:
            note_access(ctx, db, key)
        buf = value or b""
        return [read_field(buf, off, bits, signed) for _, signed, bits, off, _, _ in ops]
    if readonly:
        raise ErrorReply("ERR BITFIELD_RO only supports the GET subcommand")
    old = db.get_typed(key, bytes)
    need = (highest >> 3) + 1
    buf = bytearray(old or b"")
    grown = old is None or len(buf) < need
    if len(buf) < need:
        buf.extend(bytes(need - len(buf)))
    replies = []
    changes = 0
    for opcode, signed, bits, off, arg, owtype in ops:
        current = read_field(buf, off, bits, signed)
        if opcode == _GET:
            replies.append(current)
            continue
        if opcode == _INCRBY:
            new = _overflow(current + arg, signed, bits, owtype, False)
            reply = new
        else:
            new = _overflow(arg, signed, bits, owtype, True)
            reply = current
        if new is None:
            replies.append(None)
            continue
        replies.append(reply)
        write_field(buf, off, bits, new)
        if grown or new != current:
            changes += 1
    if changes or grown:
        # A key created or grown by writes that all failed still exists
        # afterwards (and, as in Redis, without counting as a change).
        _store(ctx, db, key, bytes(buf))
    else:
        note_string_encoding(db, key, old)
    note_access(ctx, db, key)
    if changes:
        ctx.server.keyspace.notify(db, "$", b"setbit", key)
        ctx.server.dirty += changes
    return replies


@command("bitfield", -2, "write denyoom", keys=K1, group=G, since="3.2.0",
         summary="Get, set and increment integers of any width inside a string")
def bitfield(ctx, argv):
    return _bitfield(ctx, argv, False)


@command("bitfield_ro", -2, "readonly fast", keys=K1, group=G, since="6.0.0",
         summary="BITFIELD restricted to GET")
def bitfield_ro(ctx, argv):
    return _bitfield(ctx, argv, True)


# ---------------------------------------------------------------- LCS

_ONE_TABLES: dict = {}


def _positions_mask(b: bytes, ch: int) -> int:
    """An integer whose bit k is set where b[k] == ch."""
    table = _ONE_TABLES.get(ch)
    if table is None:
        t = bytearray(b"0" * 256)
        t[ch] = 49  # '1'
        table = _ONE_TABLES[ch] = bytes(t)
    # int(..., 2) reads the most significant digit first: reverse so that
    # position 0 is bit 0.
    return int(b.translate(table)[::-1], 2)


def lcs_rows(a: bytes, b: bytes, keep_rows: bool):
    """Bit-parallel LCS of a and b. Returns (length, rows) where rows[i] (if
    kept) has a zero at bit j-1 exactly when LCS(a[:i], b[:j]) is one more
    than LCS(a[:i], b[:j-1])."""
    m = len(b)
    full = (1 << m) - 1
    masks = {ch: _positions_mask(b, ch) for ch in set(a).intersection(b)}
    row = full
    rows = [row] if keep_rows else None
    get = masks.get
    for ch in a:
        mask = get(ch)
        if mask is not None:
            u = row & mask
            row = ((row + u) | (row - u)) & full
        if keep_rows:
            rows.append(row)
    return m - row.bit_count(), rows


def lcs_traceback(a: bytes, b: bytes, rows: list, length: int, min_len: int,
                  with_len: bool, want_ranges: bool):
    """Walk back from (len(a), len(b)) like Redis: matching bytes step
    diagonally, otherwise up when LCS(i-1, j) > LCS(i, j-1), else left.
    Returns (the LCS bytes, the match ranges Redis's IDX reports)."""
    i, j = len(a), len(b)
    out = bytearray(length)
    idx = length
    ranges = []
    nbytes = (len(b) + 7) // 8
    row_i = -1
    row_bits = b""
    open_range = False
    a_start = a_end = b_start = b_end = 0
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            out[idx - 1] = a[i - 1]
            if not open_range:
                open_range = True
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            idx -= 1
            i -= 1
            j -= 1
        else:
            if row_i != i:
                row_i = i
                row_bits = rows[i].to_bytes(nbytes, "little")
            k = j - 1
            if (row_bits[k >> 3] >> (k & 7)) & 1:
                j -= 1  # LCS(i, j-1) == LCS(i, j): not strictly smaller
            else:
                i -= 1
            if open_range:
                emit = True
        if emit:
            match_len = a_end - a_start + 1
            if want_ranges and (min_len == 0 or match_len >= min_len):
                entry = [[a_start, a_end], [b_start, b_end]]
                if with_len:
                    entry.append(match_len)
                ranges.append(entry)
            open_range = False
    return bytes(out), ranges


@command("lcs", -3, "readonly", keys=(1, 2, 1), group="string", since="7.0.0",
         summary="The longest common subsequence of two strings")
def lcs(ctx, argv):
    db = ctx.db
    a = db.get(argv[1])
    b = db.get(argv[2])
    if (a is not None and a.__class__ is not bytes) or (b is not None and b.__class__ is not bytes):
        raise ErrorReply("ERR The specified keys must contain string values")
    a = a or b""
    b = b or b""
    get_idx = get_len = with_len = False
    min_len = 0
    j = 3
    n = len(argv)
    while j < n:
        opt = argv[j].lower()
        if opt == b"idx":
            get_idx = True
        elif opt == b"len":
            get_len = True
        elif opt == b"withmatchlen":
            with_len = True
        elif opt == b"minmatchlen" and j + 1 < n:
            min_len = max(0, get_int(argv[j + 1]))
            j += 1
        else:
            raise ErrorReply(errors.SYNTAX)
        j += 1
    if get_idx and get_len:
        raise ErrorReply("ERR If you want both the length and indexes, please just use IDX.")
    # Redis refuses what its (len(a)+1)*(len(b)+1) table of 32-bit counters
    # would take beyond proto-max-bulk-len; hakv keeps the same limit.
    if (len(a) + 1) * (len(b) + 1) * 4 > ctx.server.settings["proto-max-bulk-len"]:
        raise ErrorReply("ERR Insufficient memory, transient memory for LCS exceeds "
                         "proto-max-bulk-len")
    for key in (argv[1], argv[2]):
        if db.data.get(key) is not None:
            note_access(ctx, db, key)
    if not a or not b:
        return {b"matches": [], b"len": 0} if get_idx else (0 if get_len else b"")
    if get_len:
        # The length does not depend on the orientation: iterate the shorter.
        short, long_ = (a, b) if len(a) <= len(b) else (b, a)
        return lcs_rows(short, long_, False)[0]
    length, rows = lcs_rows(a, b, True)
    text, ranges = lcs_traceback(a, b, rows, length, min_len, with_len, get_idx)
    if get_idx:
        return {b"matches": ranges, b"len": length}
    return text
