"""LZF compression in the stream format of liblzf (the one Redis uses in RDB files).

Public API::

    compress(data, max_len=None) -> bytes | None
    decompress(data, expected_len) -> bytes      # raises LzfError on corrupt input
    class LzfError(ValueError)

Format (what liblzf's decoder accepts): a sequence of tokens.  A control byte
below 32 is a literal run of ctrl+1 bytes that follow.  Otherwise it is a back
reference: length field ctrl>>5 (7 means one extra length byte follows), the
offset is ((ctrl & 31) << 8 | next byte) + 1 bytes back in the output, and the
copy is length+2 bytes long (3..264); the copy may overlap its own output.

`compress` is greedy with an exact dictionary of 3-byte sequences (8 KiB
window).  It does not reproduce liblzf's bytes, only its format: any conforming
decoder (liblzf, Redis, ours) restores the input.  To keep pure Python fast on
data that does not compress, the scan skips ahead faster the longer it goes
without finding a match (as Snappy and LZ4 do), and it gives up as soon as the
output can no longer fit in `max_len`.
"""

from __future__ import annotations

__all__ = ["compress", "decompress", "LzfError"]

_MAX_OFFSET = 8192      # 13-bit offsets, stored minus one
_MAX_MATCH = 264        # 7 + 255 + 2
_MAX_LITERAL = 32       # literal run length is stored minus one in 5 bits


class LzfError(ValueError):
    """Raised by decompress on input that is not a valid LZF stream."""


def _long_match(data: bytes, ref: int, pos: int, length: int, limit: int) -> int:
    """Extend a match already known to be `length` long, at most to `limit`.

    Gallops with slice comparisons (done in C), then bisects the last step.
    """
    step = 16
    while length < limit:
        end = length + step
        if end > limit:
            end = limit
        if data[ref + length:ref + end] == data[pos + length:pos + end]:
            length = end
            step <<= 1
            continue
        low, high = length, end  # prefix of `low` bytes is equal, of `high` is not
        while high - low > 1:
            mid = (low + high) >> 1
            if data[ref + low:ref + mid] == data[pos + low:pos + mid]:
                low = mid
            else:
                high = mid
        return low
    return limit


def _emit_literals(out: bytearray, data: bytes, start: int, stop: int) -> None:
    while start < stop:
        run = stop - start
        if run > _MAX_LITERAL:
            run = _MAX_LITERAL
        out.append(run - 1)
        out += data[start:start + run]
        start += run


def compress(data: bytes, max_len: int | None = None) -> bytes | None:
    """Compress `data`; None if the result would be longer than `max_len`.

    `max_len` defaults to len(data) - 1 (the result must be smaller than the
    input).  Redis stores a compressed string only if it saves at least four
    bytes, i.e. it calls this with max_len=len(data) - 4.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    n = len(data)
    if max_len is None:
        max_len = n - 1
    if n < 4 or max_len <= 0:
        return None
    out = bytearray()
    append = out.append
    table: dict[bytes, int] = {}
    get = table.get
    max_offset, max_match = _MAX_OFFSET, _MAX_MATCH
    pos = 0
    literal_start = 0
    misses = 0
    last = n - 3  # a match needs 3 bytes at pos
    while pos <= last:
        key = data[pos:pos + 3]
        ref = get(key, -1)
        table[key] = pos
        if ref < 0 or pos - ref > max_offset:
            misses += 1
            pos += 1 + (misses >> 5)  # skip faster through data that does not repeat
            continue
        misses = 0
        limit = n - pos
        if limit > max_match:
            limit = max_match
        length = 3
        while length < limit:
            if data[ref + length] != data[pos + length]:
                break
            length += 1
            if length == 16:
                length = _long_match(data, ref, pos, 16, limit)
                break
        run = pos - literal_start
        if run:
            if run <= _MAX_LITERAL:
                append(run - 1)
                out += data[literal_start:pos]
            else:
                _emit_literals(out, data, literal_start, pos)
        offset = pos - ref - 1
        if length < 9:
            append(((length - 2) << 5) | (offset >> 8))
        else:
            append(0xE0 | (offset >> 8))
            append(length - 9)
        append(offset & 0xFF)
        if len(out) > max_len:
            return None
        pos += length
        literal_start = pos
        # Index the position just behind the match end so repeats are found.
        if pos <= last:
            table[data[pos - 1:pos + 2]] = pos - 1
    _emit_literals(out, data, literal_start, n)
    if len(out) > max_len:
        return None
    return bytes(out)


# A back reference's control byte gives its length (short form) and the high
# bits of its distance; looking both up beats recomputing them per token.
_REF_LENGTH = [(ctrl >> 5) + 2 for ctrl in range(256)]
_REF_DISTANCE_HIGH = [((ctrl & 0x1F) << 8) + 1 for ctrl in range(256)]


def decompress(data, expected_len: int) -> bytes:
    """Decompress an LZF stream that must expand to exactly `expected_len` bytes."""
    if data.__class__ is not bytes:
        data = bytes(data)
    n = len(data)
    out = bytearray()
    ref_length, ref_high = _REF_LENGTH, _REF_DISTANCE_HIGH
    pos = 0
    # Pure Python pays per token, and Redis's values are mostly short tokens
    # (a listpack compresses to runs of a few bytes), so the loop does the
    # least per token: a literal is one slice; a reference reads len(out)
    # rather than keeping a running size up to date on every literal.
    try:
        while pos < n:
            ctrl = data[pos]
            if ctrl < 32:
                stop = pos + ctrl + 2
                out += data[pos + 1:stop]   # truncated input: caught after the loop
                pos = stop
                continue
            size = len(out)
            if ctrl < 0xE0:
                length = ref_length[ctrl]
                ref = size - ref_high[ctrl] - data[pos + 1]
                pos += 2
            else:
                length = data[pos + 1] + 9
                ref = size - ref_high[ctrl] - data[pos + 2]
                pos += 3
                # Only long references expand the input much (88x at most):
                # stop a corrupt stream before it allocates gigabytes.
                if size > expected_len:
                    break
            if ref < 0:
                raise LzfError("LZF back reference points before the start of the output")
            stop = ref + length
            if stop <= size:
                out += out[ref:stop]
            else:
                # Overlapping copy: the source repeats with period size - ref.
                out += (out[ref:] * (length // (size - ref) + 1))[:length]
    except IndexError:
        raise LzfError("LZF back reference is truncated") from None
    if pos > n:
        raise LzfError("LZF literal run goes past the end of the input")
    if len(out) != expected_len:
        raise LzfError(f"LZF data expands to {len(out)} bytes, expected {expected_len}")
    return bytes(out)
