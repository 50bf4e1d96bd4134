"""The sorted-set value type: members (bytes) ordered by (score, member).

Layout
------
A ZSet keeps two views of the same data:

* ``z.dict``: member -> score, for O(1) ZSCORE / membership.  Callers may read
  it freely but must never write it (use ``add`` / ``remove``).
* an ordered "list of chunks": the elements sorted by (score, member), cut
  into chunks of 250..1000 elements.  Chunk ``i`` is stored as two parallel
  Python lists, ``_scores[i]`` (floats) and ``_members[i]`` (bytes), plus the
  chunk's last (largest) element in ``_max_scores[i]`` / ``_max_members[i]``.
  The float objects are the very objects stored in ``z.dict``, so a member
  costs two list slots (16 bytes) on top of its dict entry and its score.
  Parallel lists instead of (score, member) tuples save ~60 bytes/member.

Finding an element is three C-level bisects: one over the chunk maxima by
score, one by member among the chunks whose maximum has that same score, then
the same two inside the chunk.  Inserting or deleting is a ``list.insert`` /
``del`` in a chunk of at most 1000 slots (a short memmove); a new score that
keeps a member between its neighbours (a small ZINCRBY) is written in place.
A run of one score that reaches a chunk's end is searched by member alone
(no bisects by score for its bounds): sets of equal scores are common.
Positions (ranks) come from a Fenwick tree over the chunk lengths, built
lazily on the first rank query and then kept up to date in O(log chunks) per
write; splitting or merging chunks just drops it.  So every operation is
O(log n) plus a bounded memmove, and nothing ever re-sorts the set.

Ordering
--------
Scores are IEEE doubles compared numerically (-0.0 == 0.0, -inf and +inf
allowed, NaN is never stored: callers reject it).  Equal scores are ordered
by member bytes in memcmp order with the shorter string first on a common
prefix -- Python's ``bytes`` ordering, which is exactly Redis's.  As in Redis,
``add`` with a score equal to the current one (including 0.0 vs -0.0) leaves
the stored score untouched.

API (ranks are 0-based, ascending, i.e. rank 0 has the lowest score)
---------------------------------------------------------------------
``ZSet()``, ``ZSet.from_items(iterable of (member, score))`` (bulk build, O(n
log n) in C; later duplicates win), ``z.copy()``, ``len(z)``, ``member in z``,
``z.dict``.

Writes: ``z.add(member, score) -> None`` (insert or update; ``z.insert``
and ``z.move(member, old, score)`` are its two halves for callers that
looked the member up already);
``z.remove(member) -> bool``; ``z.pop_min(count) -> list[(member, score)]``
ascending; ``z.pop_max(count) -> list[(member, score)]`` descending (highest
first, like ZPOPMAX); ``z.remove_rank_range(start, stop) -> int`` removes
ranks start..stop inclusive (for ZREMRANGEBYRANK/BYSCORE/BYLEX).

Reads: ``z.score(member) -> float | None``; ``z.rank(member) -> int | None``;
``z.at(rank) -> (member, score)`` (IndexError outside 0..len-1);
``z.items()`` ascending (member, score) iterator; ``z.range(start, stop,
reverse=False)`` iterates ranks start..stop inclusive -- the caller has already
normalized them to 0 <= start, stop < len (out-of-range values are clamped,
start > stop yields nothing); with ``reverse=True`` the same ranks come out
from ``stop`` down to ``start``.  So ZREVRANGE key a b is
``z.range(n-1-b, n-1-a, reverse=True)``.

Score and lex searches return ranks: ``z.rank_of_score(score, exclusive)`` is
the first rank whose score is >= score (> score when exclusive), len(z) if
none.  ``z.count_in_score(min, max, min_excl, max_excl)`` counts elements in
the interval.  ``z.score_range(min, max, min_excl, max_excl) -> (start,
end)`` gives the half-open rank interval [start, end) of that interval
(empty when start >= end).  The lex variants ``rank_of_lex(bound,
exclusive)``, ``count_in_lex``, ``lex_range`` take a ``bytes`` bound or the
infinities ``LEX_MIN`` ('-') / ``LEX_MAX`` ('+'); as in Redis they are only
meaningful when all elements have the same score (the caller's promise).
``parse_lex_bound(b"[a" | b"(a" | b"-" | b"+") -> (bound, exclusive)`` parses
ZRANGEBYLEX syntax and raises ValueError otherwise.

Iterators (``items``, ``range``) read the chunks lazily (copying at most one
chunk slice at a time), so they must be consumed before the set is modified.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import islice
from operator import eq
from typing import Iterable, Iterator

__all__ = ["ZSet", "LEX_MIN", "LEX_MAX", "parse_lex_bound"]

# Chunk sizing: a chunk is split above 2*_LOAD elements and merged with a
# neighbour below _LOAD//2.  500 keeps the memmove of an insert short while
# keeping the chunk count (and so the Fenwick tree and maxima lists) small;
# 250..2000 measured within 15% of each other for 1M random ZADDs.
_LOAD = 500
_SPLIT_ABOVE = 2 * _LOAD
_MERGE_BELOW = _LOAD // 2


class _LexInfinity:
    """'-' or '+' in a ZRANGEBYLEX bound."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


LEX_MIN = _LexInfinity("LEX_MIN")
LEX_MAX = _LexInfinity("LEX_MAX")


def parse_lex_bound(raw: bytes):
    """Parse a ZRANGEBYLEX-style bound into (bound, exclusive).

    b"-" -> (LEX_MIN, False), b"+" -> (LEX_MAX, False), b"[x" -> (b"x", False),
    b"(x" -> (b"x", True); anything else raises ValueError (the command
    replies "ERR min or max not valid string range item").
    """
    if raw == b"-":
        return LEX_MIN, False
    if raw == b"+":
        return LEX_MAX, False
    if raw[:1] == b"[":
        return bytes(raw[1:]), False
    if raw[:1] == b"(":
        return bytes(raw[1:]), True
    raise ValueError("min or max not valid string range item")


class ZSet:
    __slots__ = ("dict", "_scores", "_members", "_max_scores", "_max_members",
                 "_tree")

    def __init__(self) -> None:
        self.dict: dict[bytes, float] = {}
        self._scores: list[list[float]] = []
        self._members: list[list[bytes]] = []
        self._max_scores: list[float] = []
        self._max_members: list[bytes] = []
        # Fenwick tree over chunk lengths (1-based), or None when stale.
        self._tree: list[int] | None = None

    # ------------------------------------------------------------ building
    @classmethod
    def from_items(cls, items: Iterable[tuple[bytes, float]]) -> "ZSet":
        """Build from (member, score) pairs in any order; the last score given
        for a member wins."""
        z = cls()
        d = z.dict
        for member, score in items:
            d[member] = score
        if not d:
            return z
        # C-level sorts without a tuple per element: by score, and only if
        # some scores tie, a member sort first so the stable score sort
        # leaves ties in member order.
        members = sorted(d, key=d.__getitem__)
        scores = list(map(d.__getitem__, members))
        if any(map(eq, scores, islice(scores, 1, None))):
            members = sorted(d)
            members.sort(key=d.__getitem__)
            scores = list(map(d.__getitem__, members))
        z._load_sorted(members, scores)
        return z

    @classmethod
    def from_sorted(cls, members: list[bytes], scores: list[float]) -> "ZSet":
        """Build from parallel lists already in (score, member) order with
        distinct members -- as a dump's listpack stores a sorted set -- without
        sorting.  The caller checks that order (rdb.py does) and hands the
        lists over: the set may keep them."""
        z = cls()
        z.dict = dict(zip(members, scores))
        if len(members) > _LOAD:
            z._load_sorted(members, scores)
        elif members:  # one chunk: the lists themselves (the caller's to give)
            z._members, z._scores = [members], [scores]
            z._max_members, z._max_scores = [members[-1]], [scores[-1]]
        return z

    def _load_sorted(self, members: list[bytes], scores: list[float]) -> None:
        step = _LOAD
        self._members = [members[i:i + step] for i in range(0, len(members), step)]
        self._scores = [scores[i:i + step] for i in range(0, len(scores), step)]
        self._max_scores = [c[-1] for c in self._scores]
        self._max_members = [c[-1] for c in self._members]
        self._tree = None

    def copy(self) -> "ZSet":
        z = ZSet()
        z.dict = self.dict.copy()
        z._scores = [list(c) for c in self._scores]
        z._members = [list(c) for c in self._members]
        z._max_scores = list(self._max_scores)
        z._max_members = list(self._max_members)
        return z

    # ------------------------------------------------------------- basics
    def __len__(self) -> int:
        return len(self.dict)

    def __contains__(self, member: object) -> bool:
        return member in self.dict

    def __repr__(self) -> str:
        head = list(self.range(0, 4))
        more = ", ..." if len(self) > 5 else ""
        return f"ZSet({head!r}{more}, len={len(self)})"

    def score(self, member: bytes) -> float | None:
        return self.dict.get(member)

    # ------------------------------------------------------ locating helpers
    def _locate(self, member: bytes, score: float) -> tuple[int, int]:
        """(chunk index, offset in chunk) of a member stored with score:
        a bisect by score over the chunk maxima, by member among maxima of
        that same score, then the same two inside the chunk."""
        maxima = self._max_scores
        i = bisect_left(maxima, score)
        ends_with_score = False  # does chunk i end with this score?
        if maxima[i] == score:
            # The last maximum is the score when the whole set has one
            # score (as redis-benchmark's ZADD gives it): no bisect for the
            # end of the run.
            end = len(maxima) if maxima[-1] == score else bisect_right(maxima, score, i)
            i = bisect_left(self._max_members, member, i, end)
            ends_with_score = i < end
        scores = self._scores[i]
        members = self._members[i]
        if ends_with_score:
            # The equal scores reach the chunk's end, and in a chunk of one
            # score they start at 0: a search by member alone.
            j = 0 if scores[0] == score else bisect_left(scores, score)
            if members[j] != member:
                j = bisect_left(members, member, j + 1)
        else:
            j = bisect_left(scores, score)  # the first element with this score
            if members[j] != member:  # not that one: by member among the equal scores
                j = bisect_left(members, member, j + 1, bisect_right(scores, score, j + 1))
        return i, j

    # ------------------------------------------------------ Fenwick index
    def _index(self) -> list[int]:
        tree = self._tree
        if tree is None:
            tree = [0]
            tree.extend(map(len, self._members))
            k = len(tree) - 1
            for i in range(1, k + 1):
                j = i + (i & -i)
                if j <= k:
                    tree[j] += tree[i]
            self._tree = tree
        return tree

    def _offset(self, chunk: int) -> int:
        """Number of elements in chunks before `chunk`."""
        if chunk == 0:
            return 0
        tree = self._index()
        total = 0
        while chunk:
            total += tree[chunk]
            chunk &= chunk - 1
        return total

    def _bump(self, chunk: int, delta: int) -> None:
        tree = self._tree
        if tree is None:
            return
        k = len(tree)
        i = chunk + 1
        while i < k:
            tree[i] += delta
            i += i & -i

    def _find_rank(self, rank: int) -> tuple[int, int]:
        """(chunk index, offset in chunk) of the element at `rank`
        (0 <= rank < len, checked by the caller)."""
        first = len(self._members[0])
        if rank < first:
            return 0, rank
        tree = self._index()
        k = len(tree) - 1
        pos = 0
        step = 1 << (k.bit_length() - 1)
        while step:
            nxt = pos + step
            if nxt <= k and tree[nxt] <= rank:
                pos = nxt
                rank -= tree[nxt]
            step >>= 1
        return pos, rank

    # --------------------------------------------------------------- writes
    def add(self, member: bytes, score: float) -> None:
        """Insert `member` or move it to `score` (NaN must be rejected by the
        caller).  An equal score (0.0 vs -0.0 included) is a no-op."""
        old = self.dict.get(member)
        if old is None:
            self.insert(member, score)
        elif old != score:
            self.move(member, old, score)

    def move(self, member: bytes, old: float, score: float) -> None:
        """add() for a member the caller knows is stored with score `old`
        != `score`."""
        # ZINCRBY's path, and ZADD's for a member it updates.
        i, j = self._locate(member, old)
        scores = self._scores[i]
        members = self._members[i]
        size = len(scores) - 1
        if 0 < j < size:
            # Still between its neighbours in the chunk (a small ZINCRBY):
            # the score changes in place, nothing moves.
            below = scores[j - 1]
            above = scores[j + 1]
            if ((below < score or below == score and members[j - 1] < member)
                    and (score < above or score == above and member < members[j + 1])):
                scores[j] = score
                self.dict[member] = score
                return
        self._unlink_at(i, j)
        self.insert(member, score)

    def remove(self, member: bytes) -> bool:
        d = self.dict
        old = d.pop(member, None)
        if old is None:
            return False
        self._unlink(member, old)
        return True

    def insert(self, member: bytes, score: float) -> None:
        """add() for a member the caller knows is absent (ZADD's hot path:
        it has looked the member up already; the bisects of _locate are
        inlined)."""
        self.dict[member] = score
        max_scores = self._max_scores
        k = len(max_scores)
        if not k:
            self._scores = [[score]]
            self._members = [[member]]
            self._max_scores = [score]
            self._max_members = [member]
            self._tree = None
            return
        i = bisect_left(max_scores, score)
        ends_with_score = False  # does chunk i end with this score?
        if i < k and max_scores[i] == score:
            # (as in _locate: no bisect for the end of a run that reaches
            # the last chunk)
            end = k if max_scores[-1] == score else bisect_right(max_scores, score, i)
            i = bisect_left(self._max_members, member, i, end)
            ends_with_score = i < end
        if i == k:
            # Past the end: append to the last chunk, which gets a new max.
            i -= 1
            scores = self._scores[i]
            scores.append(score)
            self._members[i].append(member)
            max_scores[i] = score
            self._max_members[i] = member
        else:
            scores = self._scores[i]
            members = self._members[i]
            if ends_with_score:
                # The equal scores reach the chunk's end, and in a chunk of
                # one score (a set of ties) they start at 0: a search by
                # member alone.
                j = 0 if scores[0] == score else bisect_left(scores, score)
                if members[j] < member:
                    j = bisect_left(members, member, j + 1)
            else:
                j = bisect_left(scores, score)
                # Equal scores: by member. Before the first of them needs no
                # more search (runs of equal scores are mostly short).
                if scores[j] == score and members[j] < member:
                    j = bisect_left(members, member, j + 1, bisect_right(scores, score, j + 1))
            scores.insert(j, score)
            members.insert(j, member)
        if len(scores) > _SPLIT_ABOVE:
            self._split(i)
            return
        if self._tree is not None:  # (no call for a set without a rank tree)
            self._bump(i, 1)

    def _unlink(self, member: bytes, score: float) -> None:
        self._unlink_at(*self._locate(member, score))

    def _unlink_at(self, i: int, j: int) -> None:
        """Remove the element at offset j of chunk i."""
        scores = self._scores[i]
        members = self._members[i]
        del scores[j]
        del members[j]
        size = len(scores)
        if j == size and size:
            self._max_scores[i] = scores[-1]
            self._max_members[i] = members[-1]
        if size < _MERGE_BELOW:
            self._after_shrink(i, 1)
        elif self._tree is not None:
            self._bump(i, -1)

    def _after_shrink(self, i: int, removed: int) -> None:
        """Restore the chunk invariants after `removed` elements left chunk
        i (whose max entry must already be correct if it is non-empty)."""
        size = len(self._scores[i])
        if size == 0:
            self._drop_chunk(i)
        elif size < _MERGE_BELOW and len(self._scores) > 1:
            self._merge(i)
        else:
            self._bump(i, -removed)

    def _drop_chunk(self, i: int) -> None:
        del self._scores[i]
        del self._members[i]
        del self._max_scores[i]
        del self._max_members[i]
        self._tree = None

    def _split(self, i: int) -> None:
        scores = self._scores[i]
        members = self._members[i]
        half = len(scores) >> 1
        self._scores.insert(i + 1, scores[half:])
        self._members.insert(i + 1, members[half:])
        del scores[half:]
        del members[half:]
        self._max_scores.insert(i, scores[-1])
        self._max_members.insert(i, members[-1])
        self._tree = None

    def _merge(self, i: int) -> None:
        """Fold small chunk i into a neighbour (its predecessor if any)."""
        if i == 0:
            i = 1
        left = i - 1
        self._scores[left].extend(self._scores[i])
        self._members[left].extend(self._members[i])
        self._max_scores[left] = self._max_scores[i]
        self._max_members[left] = self._max_members[i]
        self._drop_chunk(i)
        if len(self._scores[left]) > _SPLIT_ABOVE:
            self._split(left)

    def pop_min(self, count: int = 1) -> list[tuple[bytes, float]]:
        """Remove and return up to `count` lowest elements, ascending."""
        if count == 1 and self._scores:  # ZPOPMIN's usual form: no slices
            scores = self._scores[0]
            members = self._members[0]
            member = members.pop(0)
            score = scores.pop(0)
            del self.dict[member]
            if len(scores) < _MERGE_BELOW:
                self._after_shrink(0, 1)
            elif self._tree is not None:  # (_after_shrink's common case, inlined)
                self._bump(0, -1)
            return [(member, score)]
        out: list[tuple[bytes, float]] = []
        d = self.dict
        while count > 0 and self._scores:
            scores = self._scores[0]
            members = self._members[0]
            take = min(count, len(scores))
            gone = members[:take]
            out.extend(zip(gone, scores[:take]))
            del scores[:take]
            del members[:take]
            for m in gone:
                del d[m]
            count -= take
            self._after_shrink(0, take)
        return out

    def pop_max(self, count: int = 1) -> list[tuple[bytes, float]]:
        """Remove and return up to `count` highest elements, highest first."""
        if count == 1 and self._scores:  # ZPOPMAX's usual form: no slices
            i = len(self._scores) - 1
            scores = self._scores[i]
            members = self._members[i]
            member = members.pop()
            score = scores.pop()
            del self.dict[member]
            if scores:
                self._max_scores[i] = scores[-1]
                self._max_members[i] = members[-1]
            if len(scores) < _MERGE_BELOW:
                self._after_shrink(i, 1)
            elif self._tree is not None:  # (as in pop_min)
                self._bump(i, -1)
            return [(member, score)]
        out: list[tuple[bytes, float]] = []
        d = self.dict
        while count > 0 and self._scores:
            i = len(self._scores) - 1
            scores = self._scores[i]
            members = self._members[i]
            take = min(count, len(scores))
            cut = len(scores) - take
            gone = members[cut:]
            gone.reverse()
            tail = scores[cut:]
            tail.reverse()
            out.extend(zip(gone, tail))
            del scores[cut:]
            del members[cut:]
            for m in gone:
                del d[m]
            if scores:
                self._max_scores[i] = scores[-1]
                self._max_members[i] = members[-1]
            count -= take
            self._after_shrink(i, take)
        return out

    def remove_rank_range(self, start: int, stop: int) -> int:
        """Remove ranks start..stop inclusive (clamped); return how many."""
        n = len(self.dict)
        start = max(start, 0)
        stop = min(stop, n - 1)
        if start > stop:
            return 0
        removed = stop - start + 1
        d = self.dict
        i, off = self._find_rank(start)
        first = i
        left = removed
        while left:
            scores = self._scores[i]
            members = self._members[i]
            end = min(len(scores), off + left)
            for m in members[off:end]:
                del d[m]
            del scores[off:end]
            del members[off:end]
            left -= end - off
            if scores:
                self._max_scores[i] = scores[-1]
                self._max_members[i] = members[-1]
                i += 1
            else:
                self._drop_chunk(i)
            off = 0
        # Only the first and the last touched chunk can be left partly
        # emptied; after the drops they sit at `first` and `first + 1`.
        self._tree = None
        for j in (first + 1, first):
            if j < len(self._scores) and len(self._scores) > 1 \
                    and len(self._scores[j]) < _MERGE_BELOW:
                self._merge(j)
        return removed

    # ---------------------------------------------------------------- reads
    def rank(self, member: bytes) -> int | None:
        score = self.dict.get(member)
        if score is None:
            return None
        i, j = self._locate(member, score)
        if not i:
            return j
        tree = self._index()
        while i:  # the Fenwick prefix sum of _offset, inlined: ZRANK's hot path
            j += tree[i]
            i &= i - 1
        return j

    def at(self, rank: int) -> tuple[bytes, float]:
        if not 0 <= rank < len(self.dict):
            raise IndexError("ZSet rank out of range")
        i, j = self._find_rank(rank)
        return self._members[i][j], self._scores[i][j]

    def items(self) -> Iterator[tuple[bytes, float]]:
        for members, scores in zip(self._members, self._scores):
            yield from zip(members, scores)

    def range(self, start: int, stop: int,
              reverse: bool = False) -> Iterator[tuple[bytes, float]]:
        n = len(self.dict)
        start = max(start, 0)
        stop = min(stop, n - 1)
        if start > stop:
            return iter(())
        if reverse:
            return self._iter_down(stop, stop - start + 1)
        return self._iter_up(start, stop - start + 1)

    def _iter_up(self, rank: int, left: int) -> Iterator[tuple[bytes, float]]:
        i, off = self._find_rank(rank)
        all_members = self._members
        all_scores = self._scores
        while left > 0:
            end = min(len(all_members[i]), off + left)
            yield from zip(all_members[i][off:end], all_scores[i][off:end])
            left -= end - off
            i += 1
            off = 0

    def _iter_down(self, rank: int, left: int) -> Iterator[tuple[bytes, float]]:
        i, off = self._find_rank(rank)
        all_members = self._members
        all_scores = self._scores
        while left > 0:
            begin = max(0, off + 1 - left)
            members = all_members[i][begin:off + 1]
            scores = all_scores[i][begin:off + 1]
            members.reverse()
            scores.reverse()
            yield from zip(members, scores)
            left -= off + 1 - begin
            i -= 1
            if i >= 0:
                off = len(all_members[i]) - 1

    def slice(self, start: int, stop: int, reverse: bool = False) -> tuple[list, list]:
        """Ranks start..stop inclusive (clamped) as two lists, members and
        scores, in emission order (highest rank first when reverse). The
        reply path of the ZRANGE family: whole chunk slices, no tuple or
        generator per element."""
        n = len(self.dict)
        if start < 0:
            start = 0
        if stop >= n:
            stop = n - 1
        if start > stop:
            return [], []
        i, off = self._find_rank(start)
        left = stop - start + 1
        all_members = self._members
        all_scores = self._scores
        end = off + left
        members = all_members[i][off:end]
        scores = all_scores[i][off:end]
        left -= len(members)
        while left > 0:
            i += 1
            chunk = all_members[i]
            if left >= len(chunk):
                members += chunk
                scores += all_scores[i]
                left -= len(chunk)
            else:
                members += chunk[:left]
                scores += all_scores[i][:left]
                break
        if reverse:
            members.reverse()
            scores.reverse()
        return members, scores

    def score_slice(self, min_score: float, max_score: float, min_excl: bool,
                    max_excl: bool, offset: int, count: int,
                    reverse: bool = False) -> tuple[list, list]:
        """ZRANGEBYSCORE ... LIMIT offset count (offset, count >= 0): the
        elements of the score interval after skipping `offset` of them, at
        most `count`, as (members, scores) lists in emission order (from the
        top of the interval down when reverse). Walks the chunks from one end
        of the interval: no rank arithmetic, and only what is emitted is
        copied."""
        all_members = self._members
        all_scores = self._scores
        maxima = self._max_scores
        k = len(maxima)
        members: list = []
        scores: list = []
        if not k or count <= 0:
            return members, scores
        if not reverse:
            find = bisect_right if min_excl else bisect_left
            i = find(maxima, min_score)
            if i == k:
                return members, scores
            pos = find(all_scores[i], min_score) + offset
            while pos >= len(all_scores[i]):
                pos -= len(all_scores[i])
                i += 1
                if i == k:
                    return members, scores
            cut = bisect_left if max_excl else bisect_right  # first score past the top
            while True:
                chunk = all_scores[i]
                end = pos + count
                if end > len(chunk):
                    end = len(chunk)
                stop = cut(chunk, max_score, pos, end)
                members += all_members[i][pos:stop]
                scores += chunk[pos:stop]
                count -= stop - pos
                i += 1
                if stop < end or not count or i == k:
                    return members, scores
                pos = 0
        find = bisect_left if max_excl else bisect_right  # first score past the top
        i = find(maxima, max_score)
        if i == k:
            i -= 1
            pos = len(all_scores[i])
        else:
            pos = find(all_scores[i], max_score)
        while offset >= pos:  # pos: elements of chunk i still below the window
            offset -= pos
            i -= 1
            if i < 0:
                return members, scores
            pos = len(all_scores[i])
        pos -= offset
        cut = bisect_right if min_excl else bisect_left  # first score inside the bottom
        while True:
            chunk = all_scores[i]
            begin = pos - count
            if begin < 0:
                begin = 0
            start = cut(chunk, min_score, begin, pos)
            members += all_members[i][start:pos][::-1]
            scores += chunk[start:pos][::-1]
            count -= pos - start
            i -= 1
            if start > begin or not count or i < 0:
                return members, scores
            pos = len(all_scores[i])

    def rank_of_score(self, score: float, exclusive: bool = False) -> int:
        """First rank whose score is >= score (> score if exclusive)."""
        find = bisect_right if exclusive else bisect_left
        i = find(self._max_scores, score)
        if i == len(self._max_scores):
            return len(self.dict)
        return self._offset(i) + find(self._scores[i], score)

    def score_range(self, min_score: float, max_score: float,
                    min_excl: bool = False, max_excl: bool = False) -> tuple[int, int]:
        """Half-open rank interval [start, end) of the elements with
        min <= score <= max (strict on the sides marked exclusive)."""
        start = self.rank_of_score(min_score, min_excl)
        end = self.rank_of_score(max_score, not max_excl)
        return start, max(start, end)

    def count_in_score(self, min_score: float, max_score: float,
                       min_excl: bool = False, max_excl: bool = False) -> int:
        start, end = self.score_range(min_score, max_score, min_excl, max_excl)
        return end - start

    def rank_of_lex(self, bound, exclusive: bool = False) -> int:
        """First rank whose member is >= bound (> bound if exclusive);
        LEX_MIN gives 0 and LEX_MAX gives len.  Assumes equal scores."""
        if bound is LEX_MIN:
            return 0
        if bound is LEX_MAX:
            return len(self.dict)
        find = bisect_right if exclusive else bisect_left
        i = find(self._max_members, bound)
        if i == len(self._max_members):
            return len(self.dict)
        return self._offset(i) + find(self._members[i], bound)

    def lex_range(self, min_bound, max_bound, min_excl: bool = False,
                  max_excl: bool = False) -> tuple[int, int]:
        """Half-open rank interval [start, end) of members between the two
        bounds (bytes, LEX_MIN or LEX_MAX).  Assumes equal scores."""
        start = self.rank_of_lex(min_bound, min_excl)
        if max_bound is LEX_MIN:
            end = 0
        else:
            end = self.rank_of_lex(max_bound, not max_excl)
        return start, max(start, end)

    def count_in_lex(self, min_bound, max_bound, min_excl: bool = False,
                     max_excl: bool = False) -> int:
        start, end = self.lex_range(min_bound, max_bound, min_excl, max_excl)
        return end - start

    # -------------------------------------------------------------- checks
    def _check(self) -> None:
        """Verify every internal invariant (for tests)."""
        k = len(self._scores)
        assert len(self._members) == k == len(self._max_scores) == len(self._max_members)
        flat = []
        for i in range(k):
            s, m = self._scores[i], self._members[i]
            assert len(s) == len(m) and s, "empty or ragged chunk"
            assert len(s) <= _SPLIT_ABOVE
            assert self._max_scores[i] == s[-1] and self._max_members[i] == m[-1]
            flat.extend(zip(s, m))
        assert len(flat) == len(self.dict)
        assert all(flat[x] < flat[x + 1] for x in range(len(flat) - 1))
        for s, m in flat:
            assert self.dict[m] is s
        if self._tree is not None:
            saved = self._tree
            self._tree = None
            assert self._index() == saved, "stale Fenwick tree"
