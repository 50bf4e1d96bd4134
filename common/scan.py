"""Cursor machinery for SCAN, HSCAN, SSCAN and ZSCAN.

The guarantee (Redis's): an element present in the collection for the whole
duration of a full iteration is returned at least once, whatever else
happens to the collection (growth, shrinking, rewrites); a full iteration
ends with cursor 0 after a finite number of calls even under constant
writes; elements added or removed during the iteration may or may not be
returned (here: added ones are not, removed ones are not returned after
their removal); COUNT is a hint.  MATCH / TYPE filtering is the caller's.

Design
------
Redis walks its hash table's buckets in reverse-binary order, which keeps
the cursor meaningful while the table is resized.  Python dicts and sets
hide their buckets, so hakv uses a different fixed order that no write can
disturb: the order of ``crc32(element)``.  A cursor is a *position in that
hash space*: "every element whose crc32 is below P has been dealt with".

* At cursor 0 the iteration takes a snapshot, ``list(collection)`` (about
  10 ms for 1M keys; 8 bytes per element).  It is then partitioned by crc32
  into ~n/512 buckets, at most ``prepare_step`` elements per call, so even a
  10M-key SCAN never stalls the event loop: while that runs, calls return
  an empty batch and a non-zero cursor (allowed: COUNT is a hint).
* Each later call sorts the bucket it has reached (~512 elements), returns
  the next ~COUNT snapshot elements in crc32 order that are still present in
  the collection, never splitting a group of equal crc32, and answers the
  crc32 position P of the first element not yet returned.
* The cursor is ``P << 20 | tag``, tag being a 20-bit iteration number, so
  it stays below 2^52 (safe for clients that hold cursors in signed 64-bit
  integers or in JavaScript doubles).  The state is cached under
  (id(collection), cursor).

Because P alone says which elements remain, the cache is only an
accelerator: for a cursor the cache does not know (evicted, idle too long,
another process after a restart or a failover -- crc32 is the same
everywhere), a new snapshot of the elements at or after P is built (in one
call, O(n): ~150 ms for 1M elements, so that every call makes progress) and
the iteration goes on.  Every present-throughout element at or after P is in
that snapshot, and those before P were returned earlier, so the guarantee
holds; termination holds because P strictly grows with each call (groups of
equal crc32 are never split, so even a rebuilt state moves on).  If the
state were lost on every call while the collection grows faster than COUNT
per call, the iteration would crawl, exactly as Redis's does when its table
keeps doubling; with the cache working, growth does not lengthen it at all.

Cursors are looked up by the collection object's id().  If a key is deleted
and its id reused by a new object, a stale cursor continues on the new
object: harmless, since nothing of the new object was present for the whole
iteration.  A replaced object with the same contents (full resync, RESTORE)
gets a rebuild or continues from the old snapshot; both keep the guarantee.

Memory: one pointer per snapshot element (8.7 bytes/element measured, 16
while partitioning), shrinking as buckets are consumed.  Iterations are
dropped least-recently-used first when more than ``max_iterations`` are
held, or when more than ``max_elements`` snapshot elements are held -- but
the element budget only drops iterations idle for ``active_grace`` seconds,
so two clients scanning a keyspace bigger than the budget do not evict each
other on every call -- and after ``max_idle`` seconds without a call.
Dropping costs only a rebuild if the client comes back.  Snapshots reference
elements, not the collection, so a deleted key's members stay alive only
until its iterations are consumed or dropped.

Small collections: at cursor 0, a collection of at most ``max(count,
whole_if_at_most)`` elements is returned whole with cursor 0.  HSCAN / SSCAN
/ ZSCAN pass ``whole_if_at_most`` to mimic Redis's one-shot reply for
listpack / intset encoded values (e.g. 128 for hashes and sorted sets).

API
---
``Scanner(max_iterations=1024, max_elements=8_000_000, max_idle=300.0,
active_grace=2.0, prepare_step=50_000)``, owned by the server (one for all databases and
keys).  ``scanner.scan(collection, cursor, count=10, whole_if_at_most=0) ->
(next_cursor, elements)`` where ``collection`` is a dict (keyspace, hash,
``ZSet.dict``) or a set, of ``bytes`` elements, and the result lists
elements (keys / fields / members; the caller fetches values).
``scanner.clear()`` forgets all iterations; ``len(scanner)`` is the number
held, ``scanner.held_elements`` their snapshot sizes, ``scanner.rebuilds``
counts unknown-cursor rebuilds.  ``parse_cursor(raw: bytes) -> int`` parses a
cursor exactly like Redis 7.0 (``ValueError`` -> reply "ERR invalid cursor").

The HSCAN / SSCAN / ZSCAN commands share ``collection_scan(ctx, argv, cls,
whole, reply_items, collection_of=None)``: the argument handling, Redis's error
order, MATCH, and its rule that a collection held in a small encoding
(listpack, intset) is answered whole with cursor 0 whatever the cursor.
``scanner_of(server)`` is the server's one Scanner.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from zlib import crc32

from hakv.common import errors
from hakv.common.glob import compile_glob
from hakv.common.numbers import get_int
from hakv.common.resp import ErrorReply

__all__ = ["Scanner", "parse_cursor", "scanner_of", "collection_scan"]

_TAG_BITS = 20
_TAG_MASK = (1 << _TAG_BITS) - 1
_HASH_SPACE = 1 << 32          # crc32 values are 0 .. 2^32-1
_BUCKET_TARGET = 512           # elements per bucket, on average
_U64 = 1 << 64


def parse_cursor(raw: bytes) -> int:
    """Parse a SCAN cursor like Redis 7.0 (strtoul plus its own checks):
    decimal digits with an optional sign, '-N' wraps modulo 2^64, the empty
    string is 0; leading whitespace, other characters and values beyond
    2^64-1 raise ValueError."""
    s = bytes(raw)
    if not s:
        return 0
    negative = False
    if s[:1] in (b"+", b"-"):
        negative = s[:1] == b"-"
        s = s[1:]
    if not s or not s.isdigit():
        raise ValueError("invalid cursor")
    value = int(s)
    if value >= _U64:
        raise ValueError("invalid cursor")
    return (_U64 - value) % _U64 if negative else value


class _Iteration:
    """One iteration's snapshot, partitioned by crc32 bucket."""

    __slots__ = ("floor", "pending", "pending_at", "buckets", "bucketed",
                 "shift", "bucket", "offset", "bucket_sorted", "charged",
                 "last_used")

    def __init__(self, elements: list, floor: int) -> None:
        self.floor = floor                      # nothing below it is wanted
        self.pending: list | None = elements    # not yet partitioned
        self.pending_at = 0
        bits = min((len(elements) // _BUCKET_TARGET).bit_length(), 24)
        self.shift = 32 - bits
        self.buckets: list[list] = [[] for _ in range(1 << bits)]
        self.bucketed = 0                       # elements left in buckets
        self.bucket = floor >> self.shift       # where take() resumes
        self.offset = 0
        self.bucket_sorted = False
        self.charged = 0                        # what the Scanner counted
        self.last_used = 0.0

    @property
    def held(self) -> int:
        """Element references this state keeps alive."""
        pending = len(self.pending) if self.pending is not None else 0
        return pending + self.bucketed

    def partition(self, budget: int) -> bool:
        """Move up to `budget` pending elements into their buckets; True
        when nothing is pending any more."""
        pending = self.pending
        if pending is None:
            return True
        start = self.pending_at
        end = min(len(pending), start + budget)
        buckets = self.buckets
        shift = self.shift
        floor = self.floor
        before = 0
        if floor:
            for e in pending[start:end]:
                h = crc32(e)
                if h >= floor:
                    buckets[h >> shift].append(e)
                else:
                    before += 1
        else:
            for e in pending[start:end]:
                buckets[crc32(e) >> shift].append(e)
        self.bucketed += end - start - before
        if end == len(pending):
            self.pending = None
            return True
        self.pending_at = end
        return False

    def take(self, collection, count: int) -> tuple[list, int | None]:
        """Up to about `count` snapshot elements, in crc32 order, that are
        still in `collection`; and the crc32 position of the first element
        not yet dealt with, or None when the iteration is complete."""
        out: list = []
        examined = 0
        buckets = self.buckets
        nb = len(buckets)
        b = self.bucket
        offset = self.offset
        done_sorting = self.bucket_sorted
        while b < nb:
            bucket = buckets[b]
            if offset >= len(bucket):
                buckets[b] = []        # free consumed buckets early
                b += 1
                offset = 0
                done_sorting = False
                continue
            if examined >= count:
                break
            if not done_sorting:
                bucket.sort(key=crc32)
                done_sorting = True
            end = min(len(bucket), offset + count - examined)
            if end < len(bucket):
                # never split elements with equal crc32 across calls
                last = crc32(bucket[end - 1])
                while end < len(bucket) and crc32(bucket[end]) == last:
                    end += 1
            out.extend([e for e in bucket[offset:end] if e in collection])
            examined += end - offset
            self.bucketed -= end - offset
            offset = end
        self.bucket, self.offset, self.bucket_sorted = b, offset, done_sorting
        if b >= nb:
            return out, None
        if offset:
            position = crc32(buckets[b][offset])
        else:
            position = b << self.shift
        return out, max(position, self.floor)


class Scanner:
    """Cursor state for all SCAN-family iterations of one server."""

    def __init__(self, max_iterations: int = 1024, max_elements: int = 8_000_000,
                 max_idle: float = 300.0, active_grace: float = 2.0,
                 prepare_step: int = 50_000) -> None:
        self.max_iterations = max_iterations
        self.max_elements = max_elements
        self.max_idle = max_idle
        self.active_grace = active_grace
        self.prepare_step = prepare_step
        self._cache: OrderedDict[tuple[int, int], _Iteration] = OrderedDict()
        self._held = 0
        self._next_tag = 0
        self.rebuilds = 0

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def held_elements(self) -> int:
        return self._held

    def clear(self) -> None:
        self._cache.clear()
        self._held = 0

    def _new_tag(self) -> int:
        self._next_tag = self._next_tag % _TAG_MASK + 1   # 1 .. 2^20-1
        return self._next_tag

    def scan(self, collection, cursor: int, count: int = 10,
             whole_if_at_most: int = 0) -> tuple[int, list]:
        """One SCAN step over `collection` (dict or set of bytes); see the
        module docstring.  `cursor` is an already parsed unsigned 64-bit
        integer, `count` >= 1."""
        count = max(1, count)
        now = time.monotonic()
        self._expire_idle(now)
        if cursor == 0:
            if len(collection) <= max(count, whole_if_at_most):
                return 0, list(collection)
            state = _Iteration(list(collection), 0)
            tag = self._new_tag()
        else:
            position, tag = cursor >> _TAG_BITS, cursor & _TAG_MASK
            if position >= _HASH_SPACE:
                return 0, []
            state = self._cache.pop((id(collection), cursor), None)
            if state is not None:
                self._held -= state.charged
            else:
                # Unknown cursor: rebuild from its position, all at once so
                # that this call makes progress whatever the cache does.
                self.rebuilds += 1
                state = _Iteration(list(collection), position)
                state.partition(len(collection))
                if tag == 0:
                    tag = self._new_tag()
        if not state.partition(max(self.prepare_step, 10 * count)):
            return self._keep(collection, state, state.floor, tag, now), []
        elements, position = state.take(collection, count)
        if position is None:
            return 0, elements
        return self._keep(collection, state, position, tag, now), elements

    def _keep(self, collection, state: _Iteration, position: int, tag: int,
              now: float) -> int:
        cursor = position << _TAG_BITS | tag
        state.last_used = now
        state.charged = state.held
        cache = self._cache
        clash = cache.pop((id(collection), cursor), None)
        if clash is not None:   # same cursor from another iteration: drop it
            self._held -= clash.charged
        cache[(id(collection), cursor)] = state
        self._held += state.charged
        while len(cache) > 1 and (len(cache) > self.max_iterations
                                  or self._held > self.max_elements):
            oldest = next(iter(cache.values()))
            if len(cache) <= self.max_iterations \
                    and now - oldest.last_used < self.active_grace:
                break   # all in active use (LRU order): tolerate the excess
            _, old = cache.popitem(last=False)
            self._held -= old.charged
        return cursor

    def _expire_idle(self, now: float) -> None:
        cache = self._cache
        limit = now - self.max_idle
        while cache:
            key = next(iter(cache))
            if cache[key].last_used >= limit:
                break
            self._held -= cache.pop(key).charged


# ---------------------------------------------------------------- HSCAN SSCAN ZSCAN


def scanner_of(server) -> Scanner:
    """The server's cursor state, shared by SCAN, HSCAN, SSCAN and ZSCAN."""
    scanner = getattr(server, "scanner", None)
    if scanner is None:
        scanner = server.scanner = Scanner()
    return scanner


def collection_scan(ctx, argv, cls, whole, reply_items, collection_of=None):
    """HSCAN / SSCAN / ZSCAN key cursor [MATCH pattern] [COUNT count].

    cls: the value's type (WRONGTYPE otherwise); whole(value) -> all the
    elements, in Redis's order, when Redis holds the value in a small
    encoding and so answers it in one reply, else None; reply_items(value,
    elements, is_whole) -> the flat reply list of the elements kept by
    MATCH; collection_of(value) -> the dict or set to iterate (default: the
    value itself)."""
    try:
        cursor = parse_cursor(argv[2])
    except ValueError:
        raise ErrorReply("ERR invalid cursor") from None
    value = ctx.db.get_typed(argv[1], cls)
    if value is None:
        return [b"0", []]
    count = 10
    match = None
    i, n = 3, len(argv)
    while i < n:
        opt = argv[i].lower()
        if opt == b"count" and i + 1 < n:
            count = get_int(argv[i + 1])
            if count < 1:
                raise ErrorReply(errors.SYNTAX)
        elif opt == b"match" and i + 1 < n:
            pattern = argv[i + 1]
            match = None if pattern == b"*" else compile_glob(pattern)
        else:
            raise ErrorReply(errors.SYNTAX)
        i += 2
    elements = whole(value)
    is_whole = elements is not None
    if is_whole:
        cursor = 0
    else:
        collection = value if collection_of is None else collection_of(value)
        cursor, elements = scanner_of(ctx.server).scan(collection, cursor, count)
    if match is not None:
        elements = [e for e in elements if match(e)]
    return [b"%d" % cursor, reply_items(value, elements, is_whole)]
