"""RDB snapshots and DUMP payloads in Redis 7.0's format (RDB version 10).

A real Redis 7.0 loads what `RdbWriter` writes (redis-check-rdb agrees), and
the loader reads what any Redis from 1.x to 7.0 writes (RDB versions 1..10;
also 11/12 files from Redis 7.2/7.4 as long as they only hold types hakv has).
Values follow hakv's value model: bytes (string), collections.deque (list),
dict (hash), set (set) and hakv.common.types.zset.ZSet (sorted set).

Writing
-------
::

    w = RdbWriter(sink, compress=True, checksum=True, limits=EncodingLimits(),
                  lzf_try_ratio=DEFAULT_LZF_TRY_RATIO, crc_helper=False)
    w.write_header({"redis-ver": "7.0.15", "redis-bits": 64, "ctime": 1700000000,
                    "used-mem": 1234, "aof-base": 0})  # AUX fields in order; str|bytes|int
    w.write_aux(name, value)                   # one more AUX field, if needed
    w.write_functions([b"#!lua name=lib\\n..."])  # one FUNCTION2 record per library
    w.write_db(0, size, expires_size, items)   # items: iterable of (key, value, expire_ms|None)
    w.write_db_dicts(1, data, expires)         # same, from the keyspace's two dicts
    crc = w.finish()                           # EOF + CRC64 (8 zero bytes if checksum=False)

`sink` is anything with ``write(bytes)`` (a file, a socket wrapper, a list's
append); the writer hands it chunks of about 1 MiB.  ``w.bytes_written``
counts what was written so far.  ``binary_zsets=True`` writes every sorted
set as ZSET_2 (binary doubles), also the small ones Redis writes as listpacks
(DUMP payloads keep Redis's encodings).  With ``crc_helper=True``, once
CRC_HELPER_AFTER (4 MiB) were written the checksum of the rest is computed by
a helper process (crc64.CrcHelper) on another core; call ``w.close()`` after
an error to stop it (finish() waits for it).  Encodings are the ones Redis 7.0 itself
writes: integer strings as INT8/16/32, lists as QUICKLIST_2 of listpack nodes
(8 KiB each with the default list-max-listpack-size -2), small hashes and
sorted sets as listpacks, small all-integer sets as intsets, big ones as
HASH / SET / ZSET_2 (binary doubles, highest score first).  The thresholds are
the redis.conf ``*-max-listpack-*`` / ``set-max-intset-entries`` settings,
passed as `EncodingLimits`.  With compression off, DUMP payloads are
byte-identical to Redis 7.0's.  Empty collections are skipped: Redis never has
them, and it drops them when loading.  Expired keys are written as given
(Redis does the same; the loader's caller decides what to drop).

Compression: Redis LZF-compresses every string over 20 bytes when that saves
4 bytes.  LZF in pure Python runs at 5-10 MB/s (~25 us for a 70-byte list
node, to save ~25 bytes), so by default a string is only tried when it is at
least 256 bytes long and a fast deflate estimate says it shrinks to half or
less (``lzf_try_ratio=0.5``); ``lzf_try_ratio=1.0`` follows Redis's rule
exactly.  Either way the output is what Redis reads.

``dump_to_file(path, dbs, aux=None, functions=(), *, compress=True,
checksum=True, limits=None, lzf_try_ratio=0.5) -> int`` writes a whole
snapshot to a temporary file in the same directory, fsyncs it, renames it over
`path` and fsyncs the directory, so a crash mid-save never destroys the
previous dump; it returns the file size.  `dbs` is an iterable of ``(dbid,
data, expires)`` (the keyspace's dicts); empty databases are skipped, as Redis
does.

Loading
-------
::

    for event in load_file(path):            # or load(binary_fileobj)
        match event:
            case Key(db, key, value, expire_ms): ...   # expire_ms: absolute unix ms or None
            case Aux(name, value): ...                 # bytes, bytes
            case Function(code): ...                   # library source, bytes
            case ResizeDb(db, size, expires_size): ... # a sizing hint
            case ModuleAux(module): ...                # module data, skipped (name given)

The file is read incrementally (1 MiB reads by default).  Options of
`load_file` / `load` / `RdbParser`:

- ``into=lambda dbid: (data_dict, expires_dict)``: keys are stored straight
  into those dicts instead of being returned as Key events (the fast path for
  loading a keyspace; about 1.5x faster than handling events).
- ``skip_expired_before=now_ms``: drop keys that expired before that time, as
  a Redis primary does when it loads a file (a replica keeps them).
- ``verify_checksum=True``, ``max_version=12``, ``zset_factory=ZSet``.
- ``prefetch=start_prefetch(fileobj)`` (RdbParser; load_file does it): for
  a file of 8 MiB or more, a helper process decodes the compact values
  (listpacks, intsets, ...) and LZF strings ahead of the parser, on another
  core (rdb_prefetch.py; the parser checks each result against the bytes it
  reads, and does the work itself for anything not there yet).  None for a
  small file; ``close()`` it in any case.

For bytes that arrive in pieces (a replica reading its primary's snapshot off
a socket) ``RdbParser(**options)`` is the same loader as a push state machine:
``parser.feed(data) -> list[event]`` as bytes arrive, then, when the input
ended, ``parser.close() -> list[event]`` (the last events; raises if the file
was cut short).  ``parser.done`` turns true once EOF and checksum were read
(``parser.eof_offset``: how many bytes the checksum covers),
``parser.unused`` holds bytes fed after the end, ``parser.version`` is the RDB
version and ``parser.keys_loaded`` / ``parser.keys_expired`` count keys.

That helper also computes the checksum of the file while it is parsed:
``ahead = start_prefetch(f, checksum=True)`` (None for a small file), a
parser with ``verify_checksum=ahead is None, prefetch=ahead``, then
``verify_file_checksum(parser, f, ahead)`` and ``ahead.close()`` in any
case.  load_file does so.

Every problem raises `RdbError` with a message in Redis's words: "Wrong RDB
checksum expected: (...) but got (...)", "Unexpected EOF reading RDB file",
"Can't handle RDB format version N", "Wrong signature trying to load DB from
file", or a precise reason naming the key (streams and module values, which
hakv has not got, are refused that way).  A trailing checksum of zero means
the file was saved without one and is not checked (as Redis does).  Old
pre-release FUNCTION records are converted to library code as Redis does;
module AUX data is skipped (reported as ModuleAux).

DUMP / RESTORE
--------------
``dump_payload(value, *, compress=True, limits=None, lzf_try_ratio=0.5) ->
bytes`` is what DUMP returns: type byte, value, RDB version (2 bytes LE),
CRC64 (8 bytes LE).  ``load_payload(data, *, max_version=10,
verify_checksum=True, zset_factory=None) -> value`` raises
``RdbError("DUMP payload version or checksum are wrong")`` or
``RdbError("Bad data format")``: RESTORE replies "ERR " + str(error).  The
reason behind "Bad data format" is in ``error.detail``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import struct
import tempfile
import zlib
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from itertools import accumulate, chain, islice, repeat
from operator import itemgetter, lt
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple

from hakv.common import lzf
from hakv.common.crc64 import CrcHelper, crc64

__all__ = [
    "RDB_VERSION", "MAX_LOADABLE_VERSION", "DEFAULT_LZF_TRY_RATIO", "RdbError", "EncodingLimits",
    "RdbWriter", "dump_to_file", "RdbParser", "load", "load_file",
    "verify_file_checksum", "start_prefetch",
    "dump_payload", "load_payload",
    "Key", "Aux", "Function", "ResizeDb", "ModuleAux",
]

RDB_VERSION = 10            # what Redis 7.0 writes
MAX_LOADABLE_VERSION = 12   # newest format whose non-stream types we can read

# Value types (the byte before a key).
T_STRING = 0
T_LIST = 1
T_SET = 2
T_ZSET = 3
T_HASH = 4
T_ZSET_2 = 5
T_MODULE_PRE_GA = 6
T_MODULE_2 = 7
T_HASH_ZIPMAP = 9
T_LIST_ZIPLIST = 10
T_SET_INTSET = 11
T_ZSET_ZIPLIST = 12
T_HASH_ZIPLIST = 13
T_LIST_QUICKLIST = 14
T_STREAM_LISTPACKS = 15
T_HASH_LISTPACK = 16
T_ZSET_LISTPACK = 17
T_LIST_QUICKLIST_2 = 18
T_STREAM_LISTPACKS_2 = 19
T_SET_LISTPACK = 20         # Redis 7.2
T_STREAM_LISTPACKS_3 = 21   # Redis 7.2

# Opcodes.
OP_SLOT_INFO = 0xF4         # Redis 7.4 (cluster slot sizes; a hint)
OP_FUNCTION2 = 0xF5
OP_FUNCTION_PRE_GA = 0xF6
OP_MODULE_AUX = 0xF7
OP_IDLE = 0xF8
OP_FREQ = 0xF9
OP_AUX = 0xFA
OP_RESIZEDB = 0xFB
OP_EXPIRETIME_MS = 0xFC
OP_EXPIRETIME = 0xFD
OP_SELECTDB = 0xFE
OP_EOF = 0xFF

_QUICKLIST_PLAIN = 1
_QUICKLIST_PACKED = 2

_BAD_PAYLOAD = "DUMP payload version or checksum are wrong"
_BAD_FORMAT = "Bad data format"


class RdbError(Exception):
    """A malformed, truncated, unsupported or corrupt RDB file or DUMP payload."""

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.detail = detail if detail is not None else message


# ----------------------------------------------------------------------------
# Events
# ----------------------------------------------------------------------------

class Key(NamedTuple):
    db: int
    key: bytes
    value: Any
    expire_ms: int | None


class Aux(NamedTuple):
    name: bytes
    value: bytes


class Function(NamedTuple):
    code: bytes


class ResizeDb(NamedTuple):
    db: int
    size: int
    expires_size: int


class ModuleAux(NamedTuple):
    module: str


# ----------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------

@dataclass(frozen=True)
class EncodingLimits:
    """When Redis keeps a collection compact; the redis.conf names, Redis's defaults."""

    list_max_listpack_size: int = -2
    hash_max_listpack_entries: int = 128
    hash_max_listpack_value: int = 64
    set_max_intset_entries: int = 512
    zset_max_listpack_entries: int = 128
    zset_max_listpack_value: int = 64


_DEFAULT_LIMITS = EncodingLimits()
DEFAULT_LZF_TRY_RATIO = 0.5
CRC_HELPER_AFTER = 4 << 20  # RdbWriter(crc_helper=True) starts its helper after this many bytes
_LIST_PLAIN_THRESHOLD = 1 << 30      # Redis 7.0 stores list elements this big as plain nodes
_NODE_SIZE_SAFETY = 8192             # a count-limited quicklist node stays below this

_LEN6 = [bytes((n,)) for n in range(64)]
_TYPE_BYTE = [bytes((t,)) for t in range(256)]
_INT_LEAD = frozenset(b"-0123456789")
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_pack_q = struct.Struct("<q").pack
_pack_int16 = struct.Struct("<Bh").pack
_pack_int32 = struct.Struct("<Bi").pack
_INT8 = {v: bytes((0xC0, v & 0xFF)) for v in range(-128, 128)}
_unpack_d_from = struct.Struct("<d").unpack_from
_pack_lp_header = struct.Struct("<IH").pack


def _encode_len(n: int) -> bytes:
    if n < 64:
        return _LEN6[n]
    if n < 16384:
        return bytes((0x40 | (n >> 8), n & 0xFF))
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def _as_int64(s: bytes) -> int | None:
    """The value of s if it is an integer in canonical form (Redis's string2ll)."""
    try:
        v = int(s)
    except ValueError:
        return None
    if _INT64_MIN <= v <= _INT64_MAX and b"%d" % v == s:
        return v
    return None


def _int_string_encoding(s: bytes) -> bytes | None:
    """INT8/16/32 encoding of s if it is a canonical integer in that range."""
    try:
        v = int(s)
    except ValueError:
        return None
    if not -2147483648 <= v <= 2147483647 or b"%d" % v != s:
        return None
    if -128 <= v <= 127:
        return _INT8[v]
    if -32768 <= v <= 32767:
        return _pack_int16(0xC1, v)
    return _pack_int32(0xC2, v)


class _Lzf:
    """Which strings get LZF-compressed, and the compressing.

    LZF in pure Python runs at 5-10 MB/s, so trying it on every string would
    dominate a save.  A deflate pass with fixed Huffman codes (C, ~300 MB/s)
    estimates what an LZ77 coder can gain; LZF is tried only on strings of
    _MIN_TRY bytes or more whose estimate is at most `ratio` of their size
    (shorter ones would save a few dozen bytes each for ~0.3 us of Python per
    input byte: in a dataset of small collections that was a third of a SAVE
    for 2% of the file).  A kind of
    blob (plain strings, hash listpacks, list nodes, ...) whose last 64
    estimates all failed is only sampled (1 in 16) until one succeeds, so data
    that never compresses stops paying for the estimate.  ratio >= 1 tries
    every string over 20 bytes: Redis's own rule.
    """

    __slots__ = ("ratio", "min_len", "_misses")

    _ESTIMATOR = zlib.compressobj(1, zlib.DEFLATED, -13, 8, zlib.Z_FIXED)
    _FLUSH_BYTES = len(_ESTIMATOR.flush(zlib.Z_FULL_FLUSH))
    _GIVE_UP_AFTER = 64
    _SAMPLE_EVERY = 16
    _MIN_TRY = 256

    def __init__(self, ratio: float):
        self.ratio = ratio
        self.min_len = 21 if ratio >= 1.0 else self._MIN_TRY
        self._misses = [0] * 256  # per kind (an RDB type): consecutive failed estimates

    def encode(self, s: bytes, kind: int) -> bytes | None:
        """The LZF string encoding of s, or None when it is not worth it."""
        n = len(s)
        if n < self.min_len:
            return None
        if self.ratio < 1.0:
            misses = self._misses[kind]
            if misses >= self._GIVE_UP_AFTER:
                self._misses[kind] = misses + 1
                if misses % self._SAMPLE_EVERY:
                    return None
            estimator = self._ESTIMATOR
            estimate = len(estimator.compress(s) + estimator.flush(zlib.Z_FULL_FLUSH))
            if estimate - self._FLUSH_BYTES > self.ratio * n:
                self._misses[kind] = misses + 1
                return None
            self._misses[kind] = 0
        packed = lzf.compress(s, n - 4)  # Redis stores it only if it saves 4 bytes
        if packed is None:
            return None
        return b"\xc3" + _encode_len(len(packed)) + _encode_len(n) + packed


def _lzf_policy(compress: bool, ratio: float) -> _Lzf | None:
    return _Lzf(ratio) if compress else None


def _encode_string(s: bytes, compressor: _Lzf | None, kind: int = 0) -> bytes:
    """A string as Redis's rdbSaveRawString writes it (`kind`: what it holds, see _Lzf)."""
    n = len(s)
    if n < 12 and n and s[0] in _INT_LEAD:
        encoded = _int_string_encoding(s)
        if encoded is not None:
            return encoded
    if compressor is not None and n > 20:
        packed = compressor.encode(s, kind)
        if packed is not None:
            return packed
    if n < 64:
        return _LEN6[n] + s
    return _encode_len(n) + s


def _uncompressed_below(compressor: _Lzf | None) -> int:
    """Strings up to this length are never LZF-compressed (and fit a 6-bit length)."""
    return 63 if compressor is None else min(63, compressor.min_len - 1)


_FIRST_BYTE = itemgetter(slice(0, 1))
_INT_LEAD_BYTES = frozenset(bytes((c,)) for c in b"-0123456789")


def _plain_short(items: list[bytes], lens: list[int], max_len: int) -> bool:
    """True when no item is longer than max_len or could be an integer.

    Such items need no per-item decision, so they are encoded with C-level
    map/zip/join instead of a Python loop.
    """
    return (not lens or max(lens) <= max_len) and _INT_LEAD_BYTES.isdisjoint(
        map(_FIRST_BYTE, items))


def _encode_strings(items: list[bytes], compressor: _Lzf | None) -> bytes:
    """The concatenated _encode_string() of every item."""
    lens = list(map(len, items))
    if _plain_short(items, lens, _uncompressed_below(compressor)):
        return b"".join(chain.from_iterable(zip(map(_LEN6.__getitem__, lens), items)))
    return b"".join([_encode_string(item, compressor) for item in items])


# Listpack entries (element encoding + data + backlen).

def _lp_backlen(size: int) -> bytes:
    if size <= 127:
        return bytes((size,))
    if size < 16383:
        return bytes((size >> 7, (size & 127) | 128))
    if size < 2097151:
        return bytes((size >> 14, ((size >> 7) & 127) | 128, (size & 127) | 128))
    if size < 268435455:
        return bytes((size >> 21, ((size >> 14) & 127) | 128, ((size >> 7) & 127) | 128,
                      (size & 127) | 128))
    return bytes((size >> 28, ((size >> 21) & 127) | 128, ((size >> 14) & 127) | 128,
                  ((size >> 7) & 127) | 128, (size & 127) | 128))


_LP_STR6_HEAD = [bytes((0x80 | n,)) for n in range(64)]
_LP_STR6_TAIL = [bytes((n + 1,)) for n in range(64)]
_LP_UINT7 = [bytes((v, 1)) for v in range(128)]


def _lp_int_entry(v: int) -> bytes:
    if 0 <= v <= 127:
        return _LP_UINT7[v]
    if -4096 <= v <= 4095:
        u = v & 0x1FFF
        return bytes((0xC0 | (u >> 8), u & 0xFF, 2))
    if -32768 <= v <= 32767:
        return b"\xf1" + v.to_bytes(2, "little", signed=True) + b"\x03"
    if -8388608 <= v <= 8388607:
        return b"\xf2" + v.to_bytes(3, "little", signed=True) + b"\x04"
    if -2147483648 <= v <= 2147483647:
        return b"\xf3" + v.to_bytes(4, "little", signed=True) + b"\x05"
    return b"\xf4" + v.to_bytes(8, "little", signed=True) + b"\x09"


def _lp_entry(s: bytes) -> bytes:
    n = len(s)
    if n < 21 and n and s[0] in _INT_LEAD:
        v = _as_int64(s)
        if v is not None:
            return _lp_int_entry(v)
    if n < 64:
        return _LP_STR6_HEAD[n] + s + _LP_STR6_TAIL[n]
    if n < 4096:
        return bytes((0xE0 | (n >> 8), n & 0xFF)) + s + _lp_backlen(n + 2)
    return b"\xf0" + n.to_bytes(4, "little") + s + _lp_backlen(n + 5)


def _lp_entries(items: list[bytes]) -> list[bytes]:
    """The listpack entry of every item (C-level for short non-numeric items)."""
    lens = list(map(len, items))
    if _plain_short(items, lens, 63):
        return list(map(b"".join, zip(map(_LP_STR6_HEAD.__getitem__, lens), items,
                                      map(_LP_STR6_TAIL.__getitem__, lens))))
    return list(map(_lp_entry, items))


def _listpack_bytes(body: bytes, count: int) -> bytes:
    return _pack_lp_header(len(body) + 7, count if count < 65535 else 65535) + body + b"\xff"


def _listpack(items: list[bytes]) -> bytes:
    """A listpack holding `items` (raw strings)."""
    lens = list(map(len, items))
    if _plain_short(items, lens, 63):
        body = b"".join(chain.from_iterable(zip(map(_LP_STR6_HEAD.__getitem__, lens), items,
                                                map(_LP_STR6_TAIL.__getitem__, lens))))
    else:
        body = b"".join(map(_lp_entry, items))
    return _listpack_bytes(body, len(items))


def _score_entry(score: float) -> bytes:
    # Redis 7.0 (zzlInsertAt): integral scores within +-2^62 as integers,
    # everything else as "%.17g" text ("inf" / "-inf" for the infinities).
    if -4.611686018427388e18 <= score <= 4.611686018427388e18:
        as_int = int(score)
        if as_int == score:
            return _lp_int_entry(as_int)
    text = b"%.17g" % score
    return _LP_STR6_HEAD[len(text)] + text + _LP_STR6_TAIL[len(text)]


_ONLY_BYTES = {bytes}


def _encode_list(items, compressor: _Lzf | None, limits: EncodingLimits) -> bytes:
    fill = limits.list_max_listpack_size
    if fill < 0:
        max_bytes = 4096 << min(-fill - 1, 4)     # -1: 4 KiB ... -5: 64 KiB
        max_count = 65535
    else:
        max_bytes = _NODE_SIZE_SAFETY
        max_count = max(1, min(fill, 32768))
    elements = list(items)
    lens = list(map(len, elements))
    if (len(elements) <= max_count and sum(lens) + 2 * len(elements) <= max_bytes - 7
            and _plain_short(elements, lens, 63) and _ONLY_BYTES == set(map(type, elements))):
        # Common case: one node of short strings (entries of len + 2 bytes).
        body = b"".join(chain.from_iterable(zip(map(_LP_STR6_HEAD.__getitem__, lens), elements,
                                                map(_LP_STR6_TAIL.__getitem__, lens))))
        node = _listpack_bytes(body, len(elements))
        return b"\x01\x02" + _encode_string(node, compressor, T_LIST_QUICKLIST_2)
    elements = [e if e.__class__ is bytes else bytes(e) for e in elements]
    nodes: list[bytes] = []
    # Elements of 1 GiB or more get a plain node of their own (Redis 7.0 does so).
    runs = [elements]
    if max(map(len, elements)) >= _LIST_PLAIN_THRESHOLD:
        runs = []
        run: list[bytes] = []
        for element in elements:
            if len(element) >= _LIST_PLAIN_THRESHOLD:
                runs.append(run)
                runs.append(element)
                run = []
            else:
                run.append(element)
        runs.append(run)
    for run in runs:
        if run.__class__ is bytes:
            nodes.append(b"\x01" + _encode_string(run, compressor))
            continue
        entries = _lp_entries(run)
        ends = list(accumulate(map(len, entries)))
        start = 0
        total = len(entries)
        while start < total:
            # Largest node that keeps the listpack within max_bytes (7 bytes of
            # header and terminator); at least one element even if it is bigger.
            base = ends[start - 1] if start else 0
            stop = bisect_right(ends, base + max_bytes - 7, start, min(total, start + max_count))
            if stop == start:
                stop = start + 1
            node = _listpack_bytes(b"".join(entries[start:stop]), stop - start)
            nodes.append(b"\x02" + _encode_string(node, compressor, T_LIST_QUICKLIST_2))
            start = stop
    return _encode_len(len(nodes)) + b"".join(nodes)


def _encode_value(value, compressor: _Lzf | None,
                  limits: EncodingLimits) -> tuple[int, bytes] | None:
    """(RDB type, serialized value) as Redis 7.0 writes it; None for an empty collection."""
    cls = value.__class__
    if cls is bytes:
        return T_STRING, _encode_string(value, compressor)
    if cls is deque or cls is list or cls is tuple:
        if not value:
            return None
        return T_LIST_QUICKLIST_2, _encode_list(value, compressor, limits)
    if cls is dict:
        return _encode_hash(value, compressor, limits)
    if cls is set or cls is frozenset:
        return _encode_set(value, compressor, limits)
    if cls is _ZSET_CLASS:
        return _encode_zset(value, compressor, limits)
    if isinstance(value, (bytearray, memoryview, bytes)):
        return T_STRING, _encode_string(bytes(value), compressor)
    if isinstance(value, dict):
        return _encode_hash(value, compressor, limits)
    if isinstance(value, (set, frozenset)):
        return _encode_set(value, compressor, limits)
    if isinstance(value, (deque, list, tuple)):
        return _encode_value(deque(value), compressor, limits)
    if hasattr(value, "items") and hasattr(value, "score"):
        return _encode_zset(value, compressor, limits)
    raise TypeError(f"cannot store a {cls.__name__} in an RDB file")


def _encode_hash(value: Mapping[bytes, bytes], compressor: _Lzf | None,
                 limits: EncodingLimits):
    if not value:
        return None
    flat = list(chain.from_iterable(value.items()))
    if (len(value) <= limits.hash_max_listpack_entries
            and max(map(len, flat)) <= limits.hash_max_listpack_value):
        return T_HASH_LISTPACK, _encode_string(_listpack(flat), compressor, T_HASH_LISTPACK)
    return T_HASH, _encode_len(len(value)) + _encode_strings(flat, compressor)


def _intset_blob(members: list[bytes]) -> bytes | None:
    """The intset of `members` if every one is an integer in canonical form."""
    try:
        numbers = sorted(map(int, members))
    except ValueError:
        return None
    low, high = numbers[0], numbers[-1]
    if low < _INT64_MIN or high > _INT64_MAX:
        return None
    if set(map(b"%d".__mod__, numbers)) != set(members):  # rejects b"007", b"+1", b" 1" ...
        return None
    if -32768 <= low and high <= 32767:
        width, code = 2, "h"
    elif -2147483648 <= low and high <= 2147483647:
        width, code = 4, "i"
    else:
        width, code = 8, "q"
    return struct.pack(f"<II{len(numbers)}{code}", width, len(numbers), *numbers)


def _encode_set(value, compressor: _Lzf | None, limits: EncodingLimits):
    if not value:
        return None
    members = list(value)
    if len(members) <= limits.set_max_intset_entries:
        blob = _intset_blob(members)
        if blob is not None:
            return T_SET_INTSET, _encode_string(blob, compressor, T_SET_INTSET)
    return T_SET, _encode_len(len(members)) + _encode_strings(members, compressor)


def _encode_zset(zset, compressor: _Lzf | None, limits: EncodingLimits):
    count = len(zset)
    if not count:
        return None
    members, scores = zip(*zset.items())
    scores = list(map(float, scores))  # tolerate int scores
    lens = list(map(len, members))
    if count <= limits.zset_max_listpack_entries and max(lens) <= limits.zset_max_listpack_value:
        if _plain_short(members, lens, 63) and not any(map(float.is_integer, scores)):
            # Common case: no integer-like member, no integral score.
            texts = list(map(b"%.17g".__mod__, scores))
            text_lens = list(map(len, texts))
            body = b"".join(chain.from_iterable(zip(
                map(_LP_STR6_HEAD.__getitem__, lens), members, map(_LP_STR6_TAIL.__getitem__, lens),
                map(_LP_STR6_HEAD.__getitem__, text_lens), texts,
                map(_LP_STR6_TAIL.__getitem__, text_lens))))
        else:
            body = b"".join(chain.from_iterable(zip(map(_lp_entry, members),
                                                    map(_score_entry, scores))))
        return T_ZSET_LISTPACK, _encode_string(_listpack_bytes(body, 2 * count), compressor,
                                               T_ZSET_LISTPACK)
    # Highest score first, as Redis does: loading then always inserts at the head.
    members = members[::-1]
    doubles = struct.pack(f"<{count}d", *scores[::-1])
    if _plain_short(members, lens, _uncompressed_below(compressor)):
        encoded = map(_LEN6.__getitem__, map(len, members))
        body = b"".join(chain.from_iterable(zip(encoded, members, _chunks8(doubles))))
    else:
        body = b"".join(chain.from_iterable(zip(
            [_encode_string(m, compressor) for m in members], _chunks8(doubles))))
    return T_ZSET_2, _encode_len(count) + body


def _chunks8(data: bytes):
    return map(data.__getitem__, map(slice, range(0, len(data), 8), range(8, len(data) + 8, 8)))


def _aux_bytes(value) -> bytes:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, str):
        return value.encode()
    return bytes(value)


class RdbWriter:
    """Streams an RDB file to `sink` (see the module docstring for the call order)."""

    def __init__(self, sink, *, compress: bool = True, checksum: bool = True,
                 limits: EncodingLimits | None = None,
                 lzf_try_ratio: float = DEFAULT_LZF_TRY_RATIO,
                 version: int = RDB_VERSION, buffer_size: int = 1 << 20,
                 crc_helper: bool = False, binary_zsets: bool = False):
        self._sink = sink
        # With crc_helper, once the output is big enough the checksum of the
        # rest is computed by a helper process (crc64.CrcHelper) on another core.
        self._helper_after = CRC_HELPER_AFTER if crc_helper and checksum else None
        self._helper: CrcHelper | None = None
        self._compressor = _lzf_policy(compress, lzf_try_ratio)
        self._checksum = checksum
        self._limits = limits or _DEFAULT_LIMITS
        _default_zset_factory()  # (caches the ZSet class: _encode_value's fast test)
        if binary_zsets:
            # Every sorted set as ZSET_2 (binary scores): Redis writes small ones
            # as listpacks of "%.17g" texts, which cost twice as much to write and
            # to read in Python; Redis converts small ZSET_2 sets when loading.
            self._limits = dataclasses.replace(self._limits, zset_max_listpack_entries=0)
        self._version = version
        self._buffer_size = buffer_size
        self._parts: list[bytes] = []
        self._buffer = bytearray()
        self._crc = 0
        self._written = 0
        self._finished = False

    @property
    def bytes_written(self) -> int:
        return self._written

    # -- output plumbing -------------------------------------------------
    def _flush_parts(self) -> None:
        if self._parts:
            self._buffer += b"".join(self._parts)
            self._parts.clear()
        if len(self._buffer) >= self._buffer_size:
            self._emit()

    def _emit(self) -> None:
        if not self._buffer:
            return
        data = bytes(self._buffer)
        self._buffer = bytearray()
        self._checksum_update(data)
        self._sink.write(data)
        self._written += len(data)

    def _checksum_update(self, data: bytes) -> None:
        if not self._checksum:
            return
        if self._helper is None and self._helper_after is not None \
                and self._written >= self._helper_after:
            self._helper_after = None
            try:
                self._helper = CrcHelper(self._crc)
            except OSError:
                pass  # no helper: go on in this process
        if self._helper is not None:
            self._helper.update(data)
        else:
            self._crc = crc64(data, self._crc)

    def close(self) -> None:
        """Stop the checksum helper, if any: for a write abandoned after an error."""
        if self._helper is not None:
            self._helper.close()
            self._helper = None

    # -- records ---------------------------------------------------------
    def write_header(self, aux: Mapping[str, Any] | None = None) -> None:
        """The "REDIS0010" magic, then one AUX record per item of `aux`, in order."""
        self._parts.append(b"REDIS%04d" % self._version)
        for name, value in (aux or {}).items():
            self.write_aux(name, value)

    def write_aux(self, name, value) -> None:
        self._parts.append(b"\xfa" + _encode_string(_aux_bytes(name), self._compressor)
                           + _encode_string(_aux_bytes(value), self._compressor))

    def write_functions(self, codes: Iterable[bytes | str]) -> None:
        """One FUNCTION2 record per function library (its full source code)."""
        for code in codes:
            self._parts.append(b"\xf5" + _encode_string(_aux_bytes(code), self._compressor))
        self._flush_parts()

    def _select(self, dbid: int, size: int, expires_size: int) -> None:
        self._parts.append(b"\xfe" + _encode_len(dbid) + b"\xfb" + _encode_len(size)
                           + _encode_len(expires_size))

    def write_db(self, dbid: int, size: int, expires_size: int,
                 items: Iterable[tuple[bytes, Any, int | None]]) -> None:
        """SELECTDB + RESIZEDB, then every (key, value, expire_ms or None) of `items`."""
        self._select(dbid, size, expires_size)
        parts = self._parts
        append = parts.append
        extend = parts.extend
        compress = self._compressor
        limits = self._limits
        encode = _encode_string
        # Strings this short that cannot be integers are written as they are
        # (_encode_string's first two tests, inlined for the common keys and values).
        plain_max = _uncompressed_below(compress)
        int_lead = _INT_LEAD
        len6 = _LEN6
        for key, value, expire in items:
            if value.__class__ is bytes:
                if expire is not None:
                    append(b"\xfc" + _pack_q(expire))
                n = len(key)
                if n <= plain_max and n and key[0] not in int_lead:
                    extend((b"\x00", len6[n], key))
                else:
                    extend((b"\x00", encode(key, compress)))
                n = len(value)
                if n <= plain_max and n and value[0] not in int_lead:
                    extend((len6[n], value))
                elif n < 12 and n and value[0] in int_lead:
                    append(_int_string_encoding(value) or encode(value, compress))
                else:
                    append(encode(value, compress))
            else:
                encoded = _encode_value(value, compress, limits)
                if encoded is None:
                    continue
                if expire is not None:
                    append(b"\xfc" + _pack_q(expire))
                n = len(key)
                if n <= plain_max and n and key[0] not in int_lead:
                    extend((_TYPE_BYTE[encoded[0]], len6[n], key, encoded[1]))
                else:
                    extend((_TYPE_BYTE[encoded[0]], encode(key, compress), encoded[1]))
            if len(parts) >= 16384:
                self._flush_parts()
        self._flush_parts()

    def write_db_dicts(self, dbid: int, data: Mapping[bytes, Any],
                       expires: Mapping[bytes, int]) -> None:
        """write_db for a keyspace database: `data` key -> value, `expires` key -> unix ms."""
        # zip/map/repeat iterate in C: no Python generator frame per key
        if not expires:
            items = zip(data.keys(), data.values(), repeat(None))
        else:
            items = zip(data.keys(), data.values(), map(expires.get, data.keys()))
        self.write_db(dbid, len(data), len(expires), items)

    def finish(self) -> int:
        """Write EOF and the checksum, flush everything to the sink; returns the CRC64."""
        if self._finished:
            raise RuntimeError("RdbWriter.finish() called twice")
        self._finished = True
        self._parts.append(b"\xff")
        self._buffer += b"".join(self._parts)
        self._parts.clear()
        if self._checksum:
            self._checksum_update(bytes(self._buffer))
            if self._helper is not None:
                helper, self._helper = self._helper, None
                self._crc = helper.result()
            trailer = self._crc.to_bytes(8, "little")
        else:
            trailer = bytes(8)
        self._buffer += trailer
        data = bytes(self._buffer)
        self._buffer = bytearray()
        self._sink.write(data)
        self._written += len(data)
        return self._crc if self._checksum else 0


def dump_to_file(path: str | os.PathLike, dbs: Iterable[tuple[int, Mapping, Mapping]],
                 aux: Mapping[str, Any] | None = None, functions: Iterable[bytes] = (), *,
                 compress: bool = True, checksum: bool = True,
                 limits: EncodingLimits | None = None,
                 lzf_try_ratio: float = DEFAULT_LZF_TRY_RATIO) -> int:
    """Atomically write a snapshot to `path`; returns its size in bytes.

    `dbs` yields (dbid, data, expires) with the keyspace's dicts.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp_path = tempfile.mkstemp(prefix=f"temp-{os.getpid()}-", suffix=".rdb", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            writer = RdbWriter(f, compress=compress, checksum=checksum, limits=limits,
                               lzf_try_ratio=lzf_try_ratio, crc_helper=True)
            try:
                writer.write_header(aux)
                writer.write_functions(functions)
                for dbid, data, expires in dbs:
                    if data:
                        writer.write_db_dicts(dbid, data, expires)
                writer.finish()
            finally:
                writer.close()
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return writer.bytes_written
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return writer.bytes_written


def dump_payload(value, *, compress: bool = True, limits: EncodingLimits | None = None,
                 lzf_try_ratio: float = DEFAULT_LZF_TRY_RATIO) -> bytes:
    """DUMP's serialization: type, value, RDB version (2 bytes LE), CRC64 (8 bytes LE)."""
    encoded = _encode_value(value, _lzf_policy(compress, lzf_try_ratio),
                            limits or _DEFAULT_LIMITS)
    if encoded is None:
        raise ValueError("cannot DUMP an empty collection")
    body = _TYPE_BYTE[encoded[0]] + encoded[1] + RDB_VERSION.to_bytes(2, "little")
    return body + crc64(body).to_bytes(8, "little")


# ----------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------

class _Short(Exception):
    """Raised while parsing when the buffer ends before the record does."""

    __slots__ = ("need",)

    def __init__(self, need: int):
        self.need = need  # buffer position that must be available


_EMPTY = object()  # an empty collection: Redis skips such keys
_INT_WIDTHS = (1, 2, 4)  # string encodings 0xC0..0xC2: INT8, INT16, INT32
# ... and their readers (unpack_from: no slice, no from_bytes call).
_INT_READERS = tuple(struct.Struct(code).unpack_from for code in ("<b", "<h", "<i"))


def _read_len(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos >= end:
        raise _Short(pos + 1)
    b = buf[pos]
    if b < 0x40:
        return b, pos + 1
    if b < 0x80:
        if pos + 2 > end:
            raise _Short(pos + 2)
        return ((b & 0x3F) << 8) | buf[pos + 1], pos + 2
    if b == 0x80:
        if pos + 5 > end:
            raise _Short(pos + 5)
        return int.from_bytes(buf[pos + 1:pos + 5], "big"), pos + 5
    if b == 0x81:
        if pos + 9 > end:
            raise _Short(pos + 9)
        return int.from_bytes(buf[pos + 1:pos + 9], "big"), pos + 9
    raise RdbError(f"Unknown length encoding {b} in rdbLoadLen()")


def _read_string(buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
    if pos >= end:
        raise _Short(pos + 1)
    b = buf[pos]
    if b < 0xC0:
        if b < 0x40:
            start = pos + 1
            stop = start + b
        else:
            length, start = _read_len(buf, pos, end)
            stop = start + length
        if stop > end:
            raise _Short(stop)
        return buf[start:stop], stop
    kind = b & 0x3F
    if kind == 0:
        if pos + 2 > end:
            raise _Short(pos + 2)
        v = buf[pos + 1]
        return b"%d" % (v - 256 if v > 127 else v), pos + 2
    if kind == 1:
        if pos + 3 > end:
            raise _Short(pos + 3)
        return b"%d" % int.from_bytes(buf[pos + 1:pos + 3], "little", signed=True), pos + 3
    if kind == 2:
        if pos + 5 > end:
            raise _Short(pos + 5)
        return b"%d" % int.from_bytes(buf[pos + 1:pos + 5], "little", signed=True), pos + 5
    if kind == 3:
        return _read_lzf(buf, pos + 1, end)
    raise RdbError(f"Unknown RDB string encoding type {kind}")


# The rdb_prefetch.Prefetch of the parser running (RdbParser._parse sets it
# for its duration; parsing is not reentrant): a module global, because LZF
# strings are read from many places that know nothing of the parser.
_prefetch = None
PREFETCH_RAW = -1          # the kind of a prefetched LZF string (decompressed only)
PREFETCH_MISS = object()   # Prefetch.take(): not prefetched


def _read_lzf(buf: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """An LZF-compressed string, after its 0xC3 byte: compressed length,
    uncompressed length, data.  Redis compresses every string over 20 bytes
    that shrinks, so this runs for most listpacks: the two lengths (6 or 14
    bits each in practice) are read inline."""
    first = pos
    if pos + 4 <= end and buf[pos] < 0x80:
        b = buf[pos]
        if b < 0x40:
            clen = b
            pos += 1
        else:
            clen = ((b & 0x3F) << 8) | buf[pos + 1]
            pos += 2
        b = buf[pos]  # (both lengths in 14 bits fit in the 4 bytes checked)
        if b < 0x40:
            ulen = b
            pos += 1
        elif b < 0x80:
            ulen = ((b & 0x3F) << 8) | buf[pos + 1]
            pos += 2
        else:
            ulen, pos = _read_len(buf, pos, end)
    else:
        clen, pos = _read_len(buf, pos, end)
        ulen, pos = _read_len(buf, pos, end)
    stop = pos + clen
    if stop > end:
        raise _Short(stop)
    if _prefetch is not None:  # decompressed already by a helper process?
        got = _prefetch.take(first, PREFETCH_RAW)
        if got is not PREFETCH_MISS and got[0] == stop - first:
            return got[1], stop
    try:
        return lzf.decompress(buf[pos:stop], ulen), stop
    except lzf.LzfError as e:
        raise RdbError(f"Invalid LZF compressed string ({e})") from None


# -- collections stored element by element ----------------------------------
#
# A big collection can span many chunks of input.  Its elements are read by
# _collect(), which stops at the last complete element and reports how far it
# got, so the parser keeps what it has (a _Partial) and continues with the next
# chunk instead of re-reading the whole value.

def _collect(rdb_type: int, buf: bytes, pos: int, end: int, items: list,
             remaining: int) -> tuple[int, int, int]:
    """Append up to `remaining` elements at buf[pos:] to `items`.

    Returns (position after the last complete element, elements still
    missing, buffer position the next element needs); an element is a string
    (LIST, SET and HASH: fields and values alike), a member and its score
    (ZSET, ZSET_2: both go to `items`) or a node (the quicklists: its
    elements go to `items`).
    """
    read = _read_string
    append = items.append
    try:
        if rdb_type in (T_LIST, T_SET, T_HASH):
            while remaining:
                if pos < end:
                    b = buf[pos]
                    if b < 64:  # short plain string: read inline
                        stop = pos + 1 + b
                        if stop > end:
                            raise _Short(stop)
                        append(buf[pos + 1:stop])
                        pos = stop
                        remaining -= 1
                        continue
                s, pos = read(buf, pos, end)
                append(s)
                remaining -= 1
        elif rdb_type == T_ZSET_2:
            unpack = _unpack_d_from
            while remaining:
                if pos < end and buf[pos] < 64:
                    stop = pos + 1 + buf[pos]
                    member = buf[pos + 1:stop]
                else:
                    member, stop = read(buf, pos, end)
                if stop + 8 > end:
                    raise _Short(stop + 8)
                append(member)
                append(unpack(buf, stop)[0])
                pos = stop + 8
                remaining -= 1
        elif rdb_type == T_ZSET:
            while remaining:
                member, p = read(buf, pos, end)
                score, pos = _read_text_double(buf, p, end)
                append(member)
                append(score)
                remaining -= 1
        else:  # T_LIST_QUICKLIST, T_LIST_QUICKLIST_2: one node per element
            v2 = rdb_type == T_LIST_QUICKLIST_2
            while remaining:
                container = _QUICKLIST_PACKED
                p = pos
                if v2:
                    container, p = _read_len(buf, p, end)
                    if container != _QUICKLIST_PACKED and container != _QUICKLIST_PLAIN:
                        raise RdbError("Quicklist integrity check failed (bad container)")
                blob, pos = read(buf, p, end)
                if not blob:
                    raise RdbError("Quicklist integrity check failed (empty node)")
                if container == _QUICKLIST_PLAIN:
                    append(blob)
                elif v2:
                    items.extend(_listpack_entries(blob, "List"))
                else:
                    items.extend(_ziplist_entries(blob, "List"))
                remaining -= 1
    except _Short as short:
        return pos, remaining, short.need
    return pos, 0, 0


def _collection_value(rdb_type: int, items: list, count: int, zset_factory):
    """The value of a collection read by _collect (_EMPTY when it has no elements)."""
    if not items:
        return _EMPTY
    if rdb_type == T_SET:
        value = set(items)
        if len(value) != count:
            raise RdbError("Duplicate set members detected")
        return value
    if rdb_type == T_HASH:
        return _pairs_to_dict(items, "Hash")
    if rdb_type == T_ZSET_2 or rdb_type == T_ZSET:
        # Redis writes a skiplist from its highest score down: reversed, the
        # elements are usually in order already.
        members, scores = items[-2::-2], items[::-2]
        if any(map(math.isnan, scores)):
            raise RdbError("Zset with NAN score detected")
        return _zset_from_lists(members, scores, zset_factory())
    return deque(items)  # the lists


_COLLECTION_TYPES = frozenset({T_LIST, T_SET, T_HASH, T_ZSET, T_ZSET_2,
                               T_LIST_QUICKLIST, T_LIST_QUICKLIST_2})


def _collection_start(rdb_type: int, buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read a collection's element count: (count, elements to collect, position after it)."""
    count, pos = _read_len(buf, pos, end)
    return count, (2 * count if rdb_type == T_HASH else count), pos


class _Partial:
    """A collection whose elements go past the end of the bytes fed so far."""

    __slots__ = ("rdb_type", "key", "expire", "count", "remaining", "items")

    def __init__(self, rdb_type, key, expire, count, remaining, items):
        self.rdb_type = rdb_type
        self.key = key
        self.expire = expire
        self.count = count
        self.remaining = remaining
        self.items = items


def _read_text_double(buf: bytes, pos: int, end: int) -> tuple[float, int]:
    if pos >= end:
        raise _Short(pos + 1)
    n = buf[pos]
    if n == 253:
        return float("nan"), pos + 1
    if n == 254:
        return float("inf"), pos + 1
    if n == 255:
        return float("-inf"), pos + 1
    stop = pos + 1 + n
    if stop > end:
        raise _Short(stop)
    return _parse_score(buf[pos + 1:stop]), stop


def _parse_score(text) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return float.fromhex(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise RdbError(f"Invalid double value {bytes(text)!r}") from None


# -- compact encodings inside a string: listpack, ziplist, intset, zipmap ------

def _listpack_entries(blob: bytes, what: str, raw_ints: bool = False) -> list:
    """Elements of a listpack: bytes, or for integers int when raw_ints is set."""
    n = len(blob)
    if n < 7 or int.from_bytes(blob[0:4], "little") != n or blob[n - 1] != 0xFF:
        raise RdbError(f"{what} listpack integrity check failed (bad header)")
    declared = blob[4] | (blob[5] << 8)
    last = n - 1
    out = []
    append = out.append
    pos = 6
    while pos < last:
        b = blob[pos]
        if b >= 0xC0:
            pass
        elif b >= 0x80:
            # 6-bit string, the common case: 1 + len bytes, then a 1-byte backlen
            stop = pos + b - 0x7F
            append(blob[pos + 1:stop])
            pos = stop + 1
            continue
        else:
            append(b if raw_ints else b"%d" % b)
            pos += 2
            continue
        if b < 0xE0:
            if pos + 1 >= last:
                break
            v = ((b & 0x1F) << 8) | blob[pos + 1]
            if v >= 4096:
                v -= 8192
            append(v if raw_ints else b"%d" % v)
            size = 2
        elif b < 0xF0:
            if pos + 1 >= last:
                break
            size = 2 + (((b & 0x0F) << 8) | blob[pos + 1])
            append(blob[pos + 2:pos + size])
        elif b == 0xF0:
            size = 5 + int.from_bytes(blob[pos + 1:pos + 5], "little")
            append(blob[pos + 5:pos + size])
        elif 0xF1 <= b <= 0xF4:
            width = (2, 3, 4, 8)[b - 0xF1]
            size = 1 + width
            v = int.from_bytes(blob[pos + 1:pos + size], "little", signed=True)
            append(v if raw_ints else b"%d" % v)
        else:
            raise RdbError(f"{what} listpack integrity check failed (bad entry encoding {b})")
        pos += size + (1 if size <= 127 else 2 if size < 16383 else 3 if size < 2097151
                       else 4 if size < 268435455 else 5)
    if pos != last:
        raise RdbError(f"{what} listpack integrity check failed (entry past the end)")
    if declared != 65535 and declared != len(out):
        raise RdbError(f"{what} listpack integrity check failed (count mismatch)")
    return out


def _ziplist_entries(blob: bytes, what: str, raw_ints: bool = False) -> list:
    n = len(blob)
    if n < 11 or int.from_bytes(blob[0:4], "little") != n or blob[n - 1] != 0xFF:
        raise RdbError(f"{what} ziplist integrity check failed (bad header)")
    last = n - 1
    out = []
    append = out.append
    pos = 10
    while pos < last:
        pos += 1 if blob[pos] < 254 else 5          # previous entry length
        if pos >= last:
            break
        b = blob[pos]
        if b < 0x40:
            start = pos + 1
            pos = start + b
            append(blob[start:pos])
            continue
        if b < 0x80:
            start = pos + 2
            pos = start + (((b & 0x3F) << 8) | blob[pos + 1])
            append(blob[start:pos])
            continue
        if b == 0x80:
            start = pos + 5
            pos = start + int.from_bytes(blob[pos + 1:pos + 5], "big")
            append(blob[start:pos])
            continue
        if b == 0xC0:
            width = 2
        elif b == 0xD0:
            width = 4
        elif b == 0xE0:
            width = 8
        elif b == 0xF0:
            width = 3
        elif b == 0xFE:
            width = 1
        elif 0xF1 <= b <= 0xFD:
            v = (b & 0x0F) - 1
            append(v if raw_ints else b"%d" % v)
            pos += 1
            continue
        else:
            raise RdbError(f"{what} ziplist integrity check failed (bad entry encoding {b})")
        v = int.from_bytes(blob[pos + 1:pos + 1 + width], "little", signed=True)
        append(v if raw_ints else b"%d" % v)
        pos += 1 + width
    if pos != last:
        raise RdbError(f"{what} ziplist integrity check failed (entry past the end)")
    return out


def _intset_members(blob: bytes) -> set:
    if len(blob) < 8:
        raise RdbError("Intset integrity check failed (short header)")
    width, count = struct.unpack_from("<II", blob)
    code = {2: "h", 4: "i", 8: "q"}.get(width)
    if code is None or len(blob) != 8 + width * count:
        raise RdbError("Intset integrity check failed")
    values = struct.unpack_from(f"<{count}{code}", blob, 8)
    members = {b"%d" % v for v in values}
    if len(members) != count:
        raise RdbError("Intset integrity check failed (duplicate members)")
    return members


def _zipmap_pairs(blob: bytes) -> dict:
    n = len(blob)
    out = {}
    pos = 1
    try:
        while True:
            b = blob[pos]
            if b == 255:
                break
            if b == 254:
                klen = int.from_bytes(blob[pos + 1:pos + 5], "little")
                pos += 5
            else:
                klen = b
                pos += 1
            field = blob[pos:pos + klen]
            pos += klen
            b = blob[pos]
            if b == 254:
                vlen = int.from_bytes(blob[pos + 1:pos + 5], "little")
                pos += 5
            elif b == 255:
                raise RdbError("Zipmap integrity check failed (missing value)")
            else:
                vlen = b
                pos += 1
            free = blob[pos]
            pos += 1
            value = blob[pos:pos + vlen]
            pos += vlen + free
            if pos > n:
                raise IndexError
            if field in out:
                raise RdbError("Hash zipmap with dup elements")
            out[field] = value
    except IndexError:
        raise RdbError("Zipmap integrity check failed (entry past the end)") from None
    if pos != n - 1:
        raise RdbError("Zipmap integrity check failed (trailing bytes)")
    return out


def _pairs_to_dict(flat: list, what: str) -> dict:
    if len(flat) & 1:
        raise RdbError(f"{what} has an odd number of elements")
    pairs = iter(flat)
    result = dict(zip(pairs, pairs))  # (field, value) pairs, no slices copied
    if len(result) * 2 != len(flat):
        raise RdbError(f"Duplicate {what.lower()} fields detected")
    return result


def _zset_from_pairs(pairs, count: int, factory):
    from_items = getattr(factory, "from_items", None)
    if from_items is not None:
        zset = from_items(pairs)
    else:
        zset = factory()
        for member, score in pairs:
            zset.add(member, score)
    if len(zset) != count:
        raise RdbError("Duplicate zset fields detected")
    return zset


def _in_zset_order(members: list, scores: list) -> bool:
    """Are the (score, member) pairs strictly ascending?  Redis stores a
    listpack sorted set that way, so usually the scores alone tell."""
    if all(map(lt, scores, islice(scores, 1, None))):
        return True
    return all(map(lt, zip(scores, members),
                   zip(islice(scores, 1, None), islice(members, 1, None))))


def _zset_from_lists(members: list, scores: list, factory):
    """A sorted set from parallel lists (scores as floats, checked for NaN):
    without sorting when they are already in order and the class can take
    them so (ZSet.from_sorted), else from pairs."""
    from_sorted = getattr(factory, "from_sorted", None)
    if from_sorted is None or not _in_zset_order(members, scores):
        return _zset_from_pairs(zip(members, scores), len(members), factory)
    zset = from_sorted(members, scores)
    if len(zset) != len(members):
        raise RdbError("Duplicate zset fields detected")
    return zset


def _flat_members_scores(flat: list, what: str) -> tuple[list, list]:
    """[member, score, ...] from a compact encoding (integers as int) ->
    (members as bytes, scores as floats)."""
    if len(flat) & 1:
        raise RdbError(f"{what} has an odd number of elements")
    members = flat[0::2]
    if int in map(type, members):
        members = [b"%d" % m if m.__class__ is int else m for m in members]
    try:
        scores = list(map(float, flat[1::2]))   # float() takes ints and b"1.5" alike
    except ValueError:
        scores = [float(s) if s.__class__ is int else _parse_score(s) for s in flat[1::2]]
    if any(map(math.isnan, scores)):
        raise RdbError("Zset with NAN score detected")
    return members, scores


_ZSET_CLASS = None


def _default_zset_factory():
    # Imported on first use (not at module load: zset.py is the data-types
    # module), then cached: this runs once per sorted set loaded.
    global _ZSET_CLASS
    if _ZSET_CLASS is None:
        from hakv.common.types.zset import ZSet
        _ZSET_CLASS = ZSet
    return _ZSET_CLASS


# -- values stored as one blob: decoders by type --------------------------------
#
# Each takes the blob (a string) and the zset factory and returns the value,
# _EMPTY for an empty collection.

def _set_from_intset(blob: bytes, zset_factory):
    return _intset_members(blob) or _EMPTY


def _hash_from_listpack(blob: bytes, zset_factory):
    return _pairs_to_dict(_listpack_entries(blob, "Hash"), "Hash") or _EMPTY


def _hash_from_ziplist(blob: bytes, zset_factory):
    return _pairs_to_dict(_ziplist_entries(blob, "Hash"), "Hash") or _EMPTY


def _hash_from_zipmap(blob: bytes, zset_factory):
    return _zipmap_pairs(blob) or _EMPTY


def _list_from_ziplist(blob: bytes, zset_factory):
    return deque(_ziplist_entries(blob, "List")) or _EMPTY


def _set_from_listpack(blob: bytes, zset_factory):
    members = _listpack_entries(blob, "Set")
    value = set(members)
    if len(value) != len(members):
        raise RdbError("Duplicate set members detected")
    return value or _EMPTY


def _zset_from_flat(flat: list, zset_factory):
    members, scores = _flat_members_scores(flat, "Zset")
    if not members:
        return _EMPTY
    return _zset_from_lists(members, scores, zset_factory())


def _zset_from_listpack(blob: bytes, zset_factory):
    return _zset_from_flat(_listpack_entries(blob, "Zset", raw_ints=True), zset_factory)


def _zset_from_ziplist(blob: bytes, zset_factory):
    return _zset_from_flat(_ziplist_entries(blob, "Zset", raw_ints=True), zset_factory)


_BLOB_DECODERS = {
    T_SET_INTSET: _set_from_intset,
    T_HASH_LISTPACK: _hash_from_listpack,
    T_HASH_ZIPLIST: _hash_from_ziplist,
    T_HASH_ZIPMAP: _hash_from_zipmap,
    T_LIST_ZIPLIST: _list_from_ziplist,
    T_SET_LISTPACK: _set_from_listpack,
    T_ZSET_LISTPACK: _zset_from_listpack,
    T_ZSET_ZIPLIST: _zset_from_ziplist,
}


# -- the same, split for rdb_prefetch: the helper process runs the first part
# (its result must go through marshal), the loader the second.

def _prefetch_zset(entries: list) -> tuple | None:
    members, scores = _flat_members_scores(entries, "Zset")
    return (members, scores) if members else None


def _prefetch_list_node(blob: bytes) -> list:
    if not blob:
        raise RdbError("Quicklist integrity check failed (empty node)")
    return _listpack_entries(blob, "List")


def _or_none(value):
    return None if value is _EMPTY else value


PREFETCH_DECODERS = {  # rdb type -> blob -> marshal-able value
    T_SET_INTSET: lambda blob: _or_none(_set_from_intset(blob, None)),
    T_HASH_LISTPACK: lambda blob: _or_none(_hash_from_listpack(blob, None)),
    T_HASH_ZIPLIST: lambda blob: _or_none(_hash_from_ziplist(blob, None)),
    T_HASH_ZIPMAP: lambda blob: _or_none(_hash_from_zipmap(blob, None)),
    T_SET_LISTPACK: lambda blob: _or_none(_set_from_listpack(blob, None)),
    T_LIST_ZIPLIST: lambda blob: _ziplist_entries(blob, "List"),
    T_LIST_QUICKLIST_2: _prefetch_list_node,  # a list in one listpack node
    T_ZSET_LISTPACK: lambda blob: _prefetch_zset(_listpack_entries(blob, "Zset", True)),
    T_ZSET_ZIPLIST: lambda blob: _prefetch_zset(_ziplist_entries(blob, "Zset", True)),
}


def _prefetched_zset(value, zset_factory):
    if value is None:
        return _EMPTY
    return _zset_from_lists(value[0], value[1], zset_factory())


_FROM_PREFETCH = {  # rdb type -> (helper's value, zset factory) -> the value
    T_SET_INTSET: lambda value, zset_factory: value or _EMPTY,
    T_HASH_LISTPACK: lambda value, zset_factory: value or _EMPTY,
    T_HASH_ZIPLIST: lambda value, zset_factory: value or _EMPTY,
    T_HASH_ZIPMAP: lambda value, zset_factory: value or _EMPTY,
    T_SET_LISTPACK: lambda value, zset_factory: value or _EMPTY,
    T_LIST_ZIPLIST: lambda value, zset_factory: deque(value) or _EMPTY,
    T_LIST_QUICKLIST_2: lambda value, zset_factory: deque(value) or _EMPTY,
    T_ZSET_LISTPACK: _prefetched_zset,
    T_ZSET_ZIPLIST: _prefetched_zset,
}


def _string_end(buf: bytes, pos: int, end: int) -> int:
    """Where the string at buf[pos] ends (without reading it)."""
    if pos >= end:
        raise _Short(pos + 1)
    b = buf[pos]
    if b < 0x40:
        stop = pos + 1 + b
    elif b < 0xC0:
        length, stop = _read_len(buf, pos, end)
        stop += length
    elif b == 0xC3:
        clen, stop = _read_len(buf, pos + 1, end)
        stop = _read_len(buf, stop, end)[1] + clen
    elif b <= 0xC2:
        stop = pos + 1 + _INT_WIDTHS[b - 0xC0]
    else:
        raise RdbError(f"Unknown RDB string encoding type {b & 0x3F}")
    if stop > end:
        raise _Short(stop)
    return stop


def _read_value(rdb_type: int, buf: bytes, pos: int, end: int, zset_factory):
    """Decode one value of type `rdb_type` at buf[pos:]; returns (value, new pos)."""
    if rdb_type == T_STRING:
        return _read_string(buf, pos, end)

    if rdb_type in _COLLECTION_TYPES:
        count, remaining, pos = _collection_start(rdb_type, buf, pos, end)
        items: list = []
        pos, remaining, need = _collect(rdb_type, buf, pos, end, items, remaining)
        if remaining:
            raise _Short(need)
        return _collection_value(rdb_type, items, count, zset_factory), pos

    decode = _BLOB_DECODERS.get(rdb_type)
    if decode is not None:
        blob, pos = _read_string(buf, pos, end)
        return decode(blob, zset_factory), pos

    raise RdbError(_unsupported_type(rdb_type))


_STREAM_TYPES = frozenset({T_STREAM_LISTPACKS, T_STREAM_LISTPACKS_2, T_STREAM_LISTPACKS_3})
_MODULE_TYPES = frozenset({T_MODULE_PRE_GA, T_MODULE_2})
_VALUE_TYPES = frozenset(range(0, 8)) | frozenset(range(9, 22))  # 8 was never used
_LOADABLE_TYPES = _VALUE_TYPES - _STREAM_TYPES - _MODULE_TYPES


def _unsupported_type(rdb_type: int) -> str:
    if rdb_type in _STREAM_TYPES:
        return "streams are not supported by hakv"
    if rdb_type in _MODULE_TYPES:
        return "module values are not supported by hakv"
    return f"Unknown RDB encoding type {rdb_type}"


_MODULE_CHARSET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _module_name(module_id: int) -> str:
    """Redis packs a 9-character module type name and a 10-bit version into an id."""
    bits = module_id >> 10
    return "".join(_MODULE_CHARSET[(bits >> (6 * (8 - i))) & 63] for i in range(9))


def _skip_module_value(buf: bytes, pos: int, end: int) -> int:
    """Skip a module's self-describing opcodes up to their EOF marker."""
    while True:
        opcode, pos = _read_len(buf, pos, end)
        if opcode == 0:            # EOF
            return pos
        if opcode in (1, 2):       # signed / unsigned integer
            _, pos = _read_len(buf, pos, end)
        elif opcode == 3:          # float
            pos += 4
        elif opcode == 4:          # double
            pos += 8
        elif opcode == 5:          # string
            _, pos = _read_string(buf, pos, end)
        else:
            raise RdbError(f"Unknown module value opcode {opcode}")
        if pos > end:
            raise _Short(pos)


class RdbParser:
    """Push-style RDB loader: feed() bytes as they arrive, get events back.

    With ``into`` (a callable dbid -> (data dict, expires dict)) keys are
    stored straight into those dicts -- the fast path for loading a keyspace --
    and only the other events are returned.  With ``skip_expired_before`` (unix
    ms) keys whose expire time is earlier are dropped, as a Redis primary does
    when it loads a file.  ``keys_loaded`` / ``keys_expired`` count both.
    ``prefetch`` (an rdb_prefetch.Prefetch on the file being fed, from its
    first byte) supplies compact values and LZF strings that a helper process
    decoded ahead.
    """

    def __init__(self, *, zset_factory: Callable[[], Any] | None = None,
                 verify_checksum: bool = True, max_version: int = MAX_LOADABLE_VERSION,
                 into: Callable[[int], tuple[dict, dict]] | None = None,
                 skip_expired_before: int | None = None, prefetch=None):
        self._zset_factory = zset_factory or _default_zset_factory
        self._prefetch = prefetch
        self._verify = verify_checksum
        self._max_version = max_version
        self._into = into
        self._skip_before = skip_expired_before
        self._buf = b""
        self._pos = 0
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._wait_for = 0          # don't parse again until this many bytes are buffered
        self._crc = 0
        self._consumed = 0          # bytes dropped from the front of the buffer so far
        self._db = 0
        self._expire: int | None = None
        self._header_done = False
        self._partial: _Partial | None = None
        self.version: int | None = None
        self.done = False
        self.unused = b""
        self.checksum: int | None = None
        self.eof_offset: int | None = None  # once done: the bytes the checksum covers
        self.keys_loaded = 0
        self.keys_expired = 0

    @property
    def bytes_needed(self) -> int:
        """How many more bytes the parser waits for before it can make progress."""
        available = len(self._buf) - self._pos + self._pending_len
        return max(0, self._wait_for - available)

    def feed(self, data: bytes) -> list:
        """Parse what `data` completes; returns the events found (may be empty)."""
        if self.done:
            self.unused += bytes(data)
            return []
        if not data:
            return []
        self._pending.append(bytes(data))
        self._pending_len += len(data)
        if len(self._buf) - self._pos + self._pending_len < self._wait_for:
            return []
        # Drop what was parsed (checksumming it first) and append the new bytes.
        buf, pos = self._buf, self._pos
        if pos:
            if self._verify:
                self._crc = crc64(buf[:pos] if pos < len(buf) else buf, self._crc)
            self._consumed += pos
        if pos < len(buf):
            self._pending.insert(0, buf[pos:])
        self._buf = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pos = 0
        self._pending = []
        self._pending_len = 0
        return self._parse()

    def close(self) -> list:
        """Declare the input finished: parse what is still buffered and return
        those last events; raises RdbError if the file was cut short."""
        events = []
        if not self.done and self._pending:
            # Bytes held back for a record they do not complete: one last try.
            self._wait_for = 0
            events = self._force_feed()
        if not self.done:
            where = self._consumed + self._pos + self._pending_len
            raise RdbError(f"Unexpected EOF reading RDB file (after {where} bytes)")
        return events

    def _force_feed(self) -> list:
        last = self._pending.pop()
        self._pending_len -= len(last)
        return self.feed(last)

    def _header(self, buf: bytes, end: int) -> int:
        if end < 9:
            if not buf.startswith(b"REDIS"[:end]):
                raise RdbError("Wrong signature trying to load DB from file")
            raise _Short(9)
        if buf[:5] != b"REDIS":
            raise RdbError("Wrong signature trying to load DB from file")
        digits = buf[5:9]
        if not digits.isdigit():
            raise RdbError(f"Can't handle RDB format version {digits!r}")
        version = int(digits)
        if version < 1 or version > self._max_version:
            raise RdbError(f"Can't handle RDB format version {version}")
        self.version = version
        self._header_done = True
        return 9

    def _parse(self) -> list:
        global _prefetch
        if self._prefetch is not None:
            self._prefetch.base = self._consumed  # buf[0]'s offset in the file
            _prefetch = self._prefetch
            try:
                return self._parse_buffer()
            finally:
                _prefetch = None
        return self._parse_buffer()

    def _parse_buffer(self) -> list:
        buf = self._buf
        end = len(buf)
        pos = self._pos
        events: list = []
        append = events.append
        db = self._db
        expire = self._expire
        zset_factory = self._zset_factory
        read_string = _read_string
        read_lzf = _read_lzf
        blob_decoders = _BLOB_DECODERS
        int_readers = _INT_READERS
        new_key = tuple.__new__
        prefetch = self._prefetch
        from_prefetch = _FROM_PREFETCH
        miss = PREFETCH_MISS
        into = self._into
        data = expires = None
        if into is not None:
            data, expires = into(db)
        skip_before = self._skip_before
        loaded = expired = 0
        start = pos
        try:
            if not self._header_done:
                pos = self._header(buf, end)
            if self._partial is not None:
                pos, need = self._continue_partial(buf, pos, end, db, append)
                start = pos
                if need:
                    raise _Short(need)
            while True:
                start = pos
                if pos >= end:
                    raise _Short(pos + 1)
                t = buf[pos]
                if t == 0:
                    # Hot path: a string key with a string value.
                    p = pos + 1
                    if p < end and buf[p] < 64:
                        q = p + 1 + buf[p]
                        if q > end:
                            raise _Short(q)
                        key = buf[p + 1:q]
                    else:
                        key, q = read_string(buf, p, end)
                    b = buf[q] if q < end else 0xFF
                    if b < 64:
                        pos = q + 1 + b
                        if pos > end:
                            raise _Short(pos)
                        value = buf[q + 1:pos]
                    elif 0xC0 <= b <= 0xC2:
                        # An integer (INT8/16/32): 1, 2 or 4 bytes.
                        b -= 0xC0
                        pos = q + 1 + _INT_WIDTHS[b]
                        if pos > end:
                            raise _Short(pos)
                        value = b"%d" % int_readers[b](buf, q + 1)  # (a 1-tuple)
                    elif b == 0xC3:  # LZF, as Redis stores most strings over 20 bytes
                        value, pos = read_lzf(buf, q + 1, end)
                    else:
                        value, pos = read_string(buf, q, end)
                    if expire is None:
                        if data is None:
                            append(new_key(Key, (db, key, value, None)))
                        else:
                            data[key] = value
                            if expires and key in expires:
                                del expires[key]  # a duplicate key replaces an earlier one
                        loaded += 1
                        continue
                elif t < 0xF4:
                    p = pos + 1
                    if p < end and buf[p] < 64:  # a short key, read inline
                        q = p + 1 + buf[p]
                        if q > end:
                            raise _Short(q)
                        key = buf[p + 1:q]
                        p = q
                    else:
                        key, p = read_string(buf, p, end)
                    if t not in _LOADABLE_TYPES:
                        if t not in _VALUE_TYPES:
                            raise RdbError(f"Unknown RDB encoding type {t} (key {key!r})")
                        raise RdbError(f"Can't load key {key!r}: {_unsupported_type(t)}")
                    try:
                        decode = blob_decoders.get(t)
                        value = miss
                        if prefetch is not None and (decode is not None or (
                                t == T_LIST_QUICKLIST_2 and p + 2 < end and buf[p] == 1
                                and buf[p + 1] == _QUICKLIST_PACKED)):
                            # Decoded by the helper process already?  (It does
                            # the LZF-compressed ones.)
                            q = p if decode is not None else p + 2
                            got = prefetch.take(q, t) if q < end and buf[q] == 0xC3 else miss
                            if got is not miss:
                                try:
                                    stop = _string_end(buf, q, end)
                                except _Short:
                                    prefetch.untake()  # for when the bytes are there
                                    raise
                                if got[0] == stop - q:
                                    value = from_prefetch[t](got[1], zset_factory)
                                    pos = stop
                        if value is not miss:
                            pass  # (prefetched)
                        elif decode is not None:
                            # Hashes, sets, sorted sets in a compact encoding:
                            # a string, usually short, usually compressed.
                            if p < end and buf[p] < 64:
                                pos = p + 1 + buf[p]
                                if pos > end:
                                    raise _Short(pos)
                                blob = buf[p + 1:pos]
                            elif p < end and buf[p] == 0xC3:
                                blob, pos = read_lzf(buf, p + 1, end)
                            else:
                                blob, pos = read_string(buf, p, end)
                            value = decode(blob, zset_factory)
                        elif (t == T_LIST_QUICKLIST_2 and p + 2 < end and buf[p] == 1
                                and buf[p + 1] == _QUICKLIST_PACKED):
                            # A list in one listpack node (Redis 7's small lists).
                            if buf[p + 2] == 0xC3:
                                blob, pos = read_lzf(buf, p + 3, end)
                            else:
                                blob, pos = read_string(buf, p + 2, end)
                            if not blob:
                                raise RdbError("Quicklist integrity check failed (empty node)")
                            value = deque(_listpack_entries(blob, "List")) or _EMPTY
                        elif t in _COLLECTION_TYPES:
                            count, remaining, p = _collection_start(t, buf, p, end)
                            items: list = []
                            p, remaining, need = _collect(t, buf, p, end, items, remaining)
                            if remaining:
                                # Keep the elements read so far; go on from there
                                # when more bytes arrive.
                                self._partial = _Partial(t, key, expire, count, remaining, items)
                                expire = None
                                start = p
                                raise _Short(need)
                            value = _collection_value(t, items, count, zset_factory)
                            pos = p
                        else:
                            value, pos = _read_value(t, buf, p, end, zset_factory)
                    except RdbError as e:
                        raise RdbError(f"{e} (key {key!r})") from None
                    if value is _EMPTY:
                        expire = None
                        continue
                    if expire is None:
                        if data is None:
                            append(new_key(Key, (db, key, value, None)))
                        else:
                            data[key] = value
                            if expires and key in expires:
                                del expires[key]  # a duplicate key replaces an earlier one
                        loaded += 1
                        continue
                elif t == OP_EXPIRETIME_MS:
                    if pos + 9 > end:
                        raise _Short(pos + 9)
                    expire = int.from_bytes(buf[pos + 1:pos + 9], "little", signed=True)
                    pos += 9
                    continue
                else:
                    pos = self._opcode(t, buf, pos, end, db, append)
                    if t == OP_SELECTDB:
                        db = self._db
                        if into is not None:
                            data, expires = into(db)
                    elif t == OP_EXPIRETIME:
                        expire = self._expire
                    elif t == OP_EOF:
                        pos = 0
                        break
                    continue
                # A key with an expire time.
                if skip_before is not None and expire < skip_before:
                    expired += 1
                elif data is None:
                    append(new_key(Key, (db, key, value, expire)))
                    loaded += 1
                else:
                    data[key] = value
                    expires[key] = expire
                    loaded += 1
                expire = None
        except _Short as short:
            # Resume at the record (or collection element) that did not fit,
            # once the bytes it needs are there: exactly once per record.
            self._wait_for = short.need - start
            pos = start
        else:
            self._wait_for = 0
        finally:
            self._db = db
            self._expire = expire
            self.keys_loaded += loaded
            self.keys_expired += expired
        self._pos = pos
        return events

    def _continue_partial(self, buf: bytes, pos: int, end: int, db: int,
                          append) -> tuple[int, int]:
        """Read more elements of the collection in progress, delivering it when
        complete.  Returns (new position, position still needed or 0)."""
        partial = self._partial
        try:
            pos, partial.remaining, need = _collect(partial.rdb_type, buf, pos, end,
                                                    partial.items, partial.remaining)
            if partial.remaining:
                return pos, need
            value = _collection_value(partial.rdb_type, partial.items, partial.count,
                                      self._zset_factory)
        except RdbError as e:
            raise RdbError(f"{e} (key {partial.key!r})") from None
        self._partial = None
        expire = partial.expire
        if value is _EMPTY:
            pass
        elif expire is not None and self._skip_before is not None and expire < self._skip_before:
            self.keys_expired += 1
        else:
            self.keys_loaded += 1
            if self._into is None:
                append(Key(db, partial.key, value, expire))
            else:
                data, expires = self._into(db)
                data[partial.key] = value
                if expire is not None:
                    expires[partial.key] = expire
                elif partial.key in expires:
                    del expires[partial.key]
        return pos, 0

    def _opcode(self, t: int, buf: bytes, pos: int, end: int, db: int, append) -> int:
        """Parse one non-key record at buf[pos]; returns the position after it."""
        read_string = _read_string
        if t == OP_SELECTDB:
            dbid, pos = _read_len(buf, pos + 1, end)
            self._db = dbid
            return pos
        if t == OP_RESIZEDB:
            size, p = _read_len(buf, pos + 1, end)
            expires_size, p = _read_len(buf, p, end)
            append(ResizeDb(db, size, expires_size))
            return p
        if t == OP_AUX:
            name, p = read_string(buf, pos + 1, end)
            value, p = read_string(buf, p, end)
            append(Aux(name, value))
            return p
        if t == OP_EXPIRETIME:
            if pos + 5 > end:
                raise _Short(pos + 5)
            self._expire = int.from_bytes(buf[pos + 1:pos + 5], "little", signed=True) * 1000
            return pos + 5
        if t == OP_FREQ:
            if pos + 2 > end:
                raise _Short(pos + 2)
            return pos + 2
        if t == OP_IDLE:
            return _read_len(buf, pos + 1, end)[1]
        if t == OP_FUNCTION2:
            code, p = read_string(buf, pos + 1, end)
            append(Function(code))
            return p
        if t == OP_FUNCTION_PRE_GA:
            # 7.0 release candidates: name, engine, optional description, body.
            name, p = read_string(buf, pos + 1, end)
            engine, p = read_string(buf, p, end)
            has_desc, p = _read_len(buf, p, end)
            if has_desc:
                _, p = read_string(buf, p, end)
            body, p = read_string(buf, p, end)
            append(Function(b"#!%s name=%s\n%s" % (engine, name, body)))
            return p
        if t == OP_MODULE_AUX:
            module_id, p = _read_len(buf, pos + 1, end)
            when_opcode, p = _read_len(buf, p, end)
            _, p = _read_len(buf, p, end)
            if when_opcode != 2:
                raise RdbError("bad when_opcode in module AUX data")
            p = _skip_module_value(buf, p, end)
            append(ModuleAux(_module_name(module_id)))
            return p
        if t == OP_SLOT_INFO:
            p = pos + 1
            for _ in range(3):
                _, p = _read_len(buf, p, end)
            return p
        if t == OP_EOF:
            self._finish(buf, pos, end)
            return 0
        raise RdbError(f"Unknown RDB opcode {t}")

    def _finish(self, buf: bytes, pos: int, end: int) -> None:
        """At the EOF opcode (buf[pos]): verify the checksum, keep what follows."""
        after = pos + 1
        if self.version is not None and self.version >= 5:
            if after + 8 > end:
                raise _Short(after + 8)
            stored = int.from_bytes(buf[after:after + 8], "little")
            after += 8
            self.checksum = stored
            if self._verify and stored != 0:
                computed = crc64(buf[:pos + 1], self._crc)
                if computed != stored:
                    raise RdbError(f"Wrong RDB checksum expected: ({computed:x}) "
                                   f"but got ({stored:x})")
        self.unused = buf[after:]
        self.done = True
        self.eof_offset = self._consumed + pos + 1
        self._consumed += after
        self._buf = b""  # _parse leaves _pos at 0


_MAX_READ = 64 << 20  # a (possibly corrupt) length never makes us allocate more at once


def load(fileobj, *, chunk_size: int = 1 << 20, **options) -> Iterator:
    """Parse an RDB file from a binary file object; yields events (see module docstring).

    `options` are RdbParser's: zset_factory, verify_checksum, max_version,
    into, skip_expired_before.
    """
    yield from _parse_from(RdbParser(**options), fileobj.read, chunk_size)


def _parse_from(parser, read, chunk_size: int) -> Iterator:
    """Feed parser from read(n) until the dump ends; yields its events."""
    feed = parser.feed
    while not parser.done:
        chunk = read(min(max(chunk_size, parser.bytes_needed), _MAX_READ))
        if not chunk:
            break
        yield from feed(chunk)
    yield from parser.close()


def load_file(path: str | os.PathLike, *, chunk_size: int = 1 << 20, **options) -> Iterator:
    """load() on the file at `path`."""
    verify = options.pop("verify_checksum", True)
    ahead = None
    try:
        with open(path, "rb", buffering=0) as f:
            ahead = start_prefetch(f, checksum=verify)
            parser = RdbParser(prefetch=ahead, verify_checksum=verify and ahead is None,
                               **options)
            yield from _parse_from(parser, f.read, chunk_size)
            if verify and ahead is not None:
                verify_file_checksum(parser, f, ahead)
    finally:
        if ahead is not None:
            ahead.close()


def start_prefetch(fileobj, checksum: bool = False):
    """For a big file open at its start: a helper process decoding its compact
    values and LZF strings ahead of the parser (an rdb_prefetch.Prefetch: pass
    it as RdbParser(prefetch=...), close() it in any case), else None.  With
    `checksum`, the helper also computes the CRC64 of all but the file's last
    8 bytes (where a dump that ends the file keeps its checksum): give the
    parser verify_checksum=False, then call verify_file_checksum()."""
    from hakv.common.rdb_prefetch import Prefetch
    stop = None
    if checksum:
        try:
            stop = max(0, os.fstat(fileobj.fileno()).st_size - 8)
        except (OSError, ValueError, AttributeError):
            return None
    return Prefetch.start(fileobj, checksum_stop=stop)


def verify_file_checksum(parser: RdbParser, fileobj, ahead) -> None:
    """The check a parser made with verify_checksum=False skipped, with the
    CRC from start_prefetch(..., checksum=True)'s helper -- or computed here
    when the dump does not end the file or the helper failed.  `fileobj`: the
    file, open (binary).  Raises RdbError as the parser would."""
    stored = parser.checksum
    if not stored:
        return  # RDB < 5, or saved with rdbchecksum no
    computed = ahead.checksum() if parser.eof_offset == ahead.checksum_stop else None
    if computed is None:
        computed = 0
        left = parser.eof_offset
        fd = fileobj.fileno()
        at = 0
        while left > 0:
            data = os.pread(fd, min(left, 4 << 20), at)
            if not data:
                raise RdbError("Unexpected EOF reading RDB file")
            computed = crc64(data, computed)
            left -= len(data)
            at += len(data)
    if computed != stored:
        raise RdbError(f"Wrong RDB checksum expected: ({computed:x}) but got ({stored:x})")


def load_payload(data: bytes, *, zset_factory=None, max_version: int = RDB_VERSION,
                 verify_checksum: bool = True):
    """The value of a DUMP payload, as RESTORE reads it."""
    data = bytes(data)
    if len(data) < 10:
        raise RdbError(_BAD_PAYLOAD, "payload shorter than its 10-byte footer")
    version = data[-10] | (data[-9] << 8)
    if version > max_version:
        raise RdbError(_BAD_PAYLOAD, f"payload RDB version {version} is newer than {max_version}")
    if verify_checksum and crc64(data[:-8]) != int.from_bytes(data[-8:], "little"):
        raise RdbError(_BAD_PAYLOAD, "payload checksum mismatch")
    end = len(data) - 10
    try:
        if end < 1:
            raise RdbError("no value in payload")
        rdb_type = data[0]
        if rdb_type not in _VALUE_TYPES:
            raise RdbError(f"Unknown RDB encoding type {rdb_type}")
        if rdb_type in _STREAM_TYPES or rdb_type in _MODULE_TYPES:
            raise RdbError(_unsupported_type(rdb_type))
        value, _ = _read_value(rdb_type, data, 1, end, zset_factory or _default_zset_factory)
    except _Short:
        raise RdbError(_BAD_FORMAT, "payload value is truncated") from None
    except RdbError as e:
        raise RdbError(_BAD_FORMAT, str(e)) from None
    if value is _EMPTY:
        raise RdbError(_BAD_FORMAT, "empty collection")
    return value
