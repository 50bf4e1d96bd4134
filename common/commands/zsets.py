"""Sorted-set commands, complete to Redis 7.0: ZADD ZINCRBY ZREM ZCARD ZSCORE
ZMSCORE ZRANK ZREVRANK, the ZRANGE family (ZRANGE ZRANGESTORE ZREVRANGE
Z[REV]RANGEBYSCORE Z[REV]RANGEBYLEX), ZCOUNT ZLEXCOUNT, pops (ZPOPMIN ZPOPMAX
ZMPOP and the blocking BZPOPMIN BZPOPMAX BZMPOP), ZRANDMEMBER, ZREMRANGEBY*,
the set operations (ZUNION ZINTER ZDIFF, their *STORE forms, ZINTERCARD) and
ZSCAN.

Values are `hakv.common.types.zset.ZSet`. Scores are IEEE doubles; replies
carry them as Python floats (RESP2: a bulk "%.17g", RESP3: a double), except
ZSCAN, whose scores are bulk strings in both protocols as in Redis. Range
replies (ZRANGE & co, ZRANDMEMBER, ZUNION ...) are encoded here in one pass
as `Raw` RESP (same bytes, a fraction of the generic encoder's cost).

Number parsing follows Redis's two different readers:
* ZADD / ZINCRBY increments and WEIGHTS use getDoubleFromObject: strtod on
  the whole argument, no leading space, overflow (1e400) and underflow to
  zero (1e-400) refused, NaN refused (`parse_score`).
* Score range bounds use zslParseRange: strtod up to the end of the C
  string, so leading spaces, hex, overflow to inf and even "" (= 0) pass,
  only trailing garbage and NaN fail (`parse_score_bound`).

Redis 7.0 keeps small sorted sets in a listpack, where a score is stored as
text and "-0" comes back as the integer 0: a -0.0 score survives only in
skiplist-encoded sets. hakv reproduces that (ZSCORE of a small set given -0
answers 0, a big one -0) with the same conversion points as Redis: ZADD
converts when an insertion would exceed zset-max-listpack-entries/-value
(and marks the key in keys.py's encoding side table, since Redis never
converts back), the *STORE commands build a skiplist and shrink it to a
listpack when it fits, ZRANGESTORE fills a listpack and converts on the way.

Blocking pops reuse commands/lists.py's helpers (timeouts as Redis reads
them, FIFO per key, MULTI/scripts = immediate timeout) and are propagated as
ZPOPMIN/ZPOPMAX, as are ZMPOP and BZMPOP.
"""

from __future__ import annotations

import math
import random
import re

from hakv.common import errors
from hakv.common.commands.keys import encoding_of, key_meta
from hakv.common.commands.lists import (clamp_range, parse_mpop, parse_timeout, serve_first,
                                        serve_or_block)
from hakv.common.commands.sets import numkeys_finder
from hakv.common.commands.table import command
from hakv.common.numbers import get_count, get_int, parse_rand_count
from hakv.common.resp import ErrorReply, Raw, format_double
from hakv.common.scan import collection_scan
from hakv.common.types.zset import LEX_MAX, LEX_MIN, ZSet

G = "sorted-set"
K1 = (1, 1, 1)

INF = math.inf
LONG_MAX = 2**63 - 1

NOT_FLOAT = errors.NOT_FLOAT
NAN_SCORE = "ERR resulting score is not a number (NaN)"
BAD_SCORE_RANGE = "ERR min or max is not a float"
BAD_LEX_RANGE = "ERR min or max not valid string range item"
LIMIT_NEEDS_BY = ("ERR syntax error, LIMIT is only supported in combination with either "
                  "BYSCORE or BYLEX")
WITHSCORES_BYLEX = "ERR syntax error, WITHSCORES not supported in combination with BYLEX"

# ---------------------------------------------------------------- number parsing

# What glibc's strtod accepts (minus NaN, which every caller refuses anyway).
_STRTOD = re.compile(
    rb"[+-]?(?:(?P<inf>inf(?:inity)?)"
    rb"|0x(?P<hex>[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?"
    rb"|(?P<dec>[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?)",
    re.IGNORECASE,
)
_SPACE = b" \t\n\v\f\r"


def _strtod(text: bytes):
    """(value, erange) if strtod reads all of text, else None. erange is
    True when strtod reports ERANGE with an infinite or zero result (the
    cases getDoubleFromObject refuses)."""
    m = _STRTOD.fullmatch(text)
    if m is None:
        return None
    negative = text[:1] == b"-"
    if m.group("inf") is not None:
        return (-INF if negative else INF), False
    digits = m.group("hex")
    if digits is not None:
        try:
            value = float.fromhex(text.decode())
        except OverflowError:
            return (-INF if negative else INF), True
    else:
        digits = m.group("dec")
        value = float(text)
        if value == INF or value == -INF:
            return value, True
    if value == 0.0 and digits.strip(b"0."):
        return value, True  # a non-zero mantissa that underflowed to zero
    return value, False


_PLAIN = b"0123456789.-"


def _plain_decimal(raw: bytes):
    """Fast path for short texts of digits, '.' and '-' only (no exponent,
    so no overflow or underflow): float() and strtod agree on what they
    accept there. Returns the value, None if refused, or False when the
    text is not of that kind."""
    if len(raw) < 24 and not raw.translate(None, _PLAIN):
        try:
            return float(raw)
        except ValueError:
            return None
    return False


def _plain_scores(raws: list):
    """Many scores at once (a bulk ZADD): when every text is short and has
    only digits, '.' and '-', one float() pass over them all (as in
    _plain_decimal, float() and strtod agree there); None otherwise,
    including when one of them is refused, for the caller's exact pass."""
    if max(map(len, raws)) < 24 and not b"".join(raws).translate(None, _PLAIN):
        try:
            return list(map(float, raws))
        except ValueError:
            return None
    return None


def parse_score(raw: bytes) -> float | None:
    """A score or weight as Redis's getDoubleFromObject reads it; None if
    refused."""
    value = _plain_decimal(raw)
    if value is not False:
        return value
    if not raw or raw[0] in _SPACE:
        return None
    parsed = _strtod(raw)
    if parsed is None or parsed[1]:
        return None
    return parsed[0]


def get_score(raw: bytes, message: str = NOT_FLOAT) -> float:
    value = parse_score(raw)
    if value is None:
        raise ErrorReply(message)
    return value


_COMMON_BOUNDS = {b"-inf": (-INF, False), b"+inf": (INF, False), b"inf": (INF, False),
                  b"(-inf": (-INF, True), b"(+inf": (INF, True), b"(inf": (INF, True)}


def parse_score_bound(raw: bytes):
    """A ZRANGEBYSCORE-style bound ("1.5", "(1.5", "-inf" ...) as Redis's
    zslParseRange reads it: (value, exclusive), or None."""
    common = _COMMON_BOUNDS.get(raw)
    if common is not None:
        return common
    exclusive = raw[:1] == b"("
    text = raw[1:] if exclusive else raw
    if text:
        value = _plain_decimal(text)
        if value is not False:
            return None if value is None else (value, exclusive)
    nul = text.find(b"\0")
    if nul >= 0:
        text = text[:nul]  # strtod stops at the C string's end
    if not text:
        return 0.0, exclusive  # nothing to convert: strtod gives 0 and ends there
    stripped = text.lstrip(_SPACE)
    if not stripped:
        return None
    parsed = _strtod(stripped)
    if parsed is None:
        return None
    return parsed[0], exclusive


def _score_range(min_raw: bytes, max_raw: bytes):
    lo = parse_score_bound(min_raw)
    hi = parse_score_bound(max_raw)
    if lo is None or hi is None:
        raise ErrorReply(BAD_SCORE_RANGE)
    return lo[0], hi[0], lo[1], hi[1]


def _lex_bound(raw: bytes):
    first = raw[:1]
    if first == b"+" or first == b"-":
        if len(raw) > 1 and raw[1] != 0:  # Redis looks at the C string
            return None
        return (LEX_MAX if first == b"+" else LEX_MIN), False
    if first == b"(":
        return raw[1:], True
    if first == b"[":
        return raw[1:], False
    return None


def _lex_range(min_raw: bytes, max_raw: bytes):
    lo = _lex_bound(min_raw)
    hi = _lex_bound(max_raw)
    if lo is None or hi is None:
        raise ErrorReply(BAD_LEX_RANGE)
    return lo[0], hi[0], lo[1], hi[1]


def _is_neg_zero(score: float) -> bool:
    return score == 0.0 and math.copysign(1.0, score) < 0


# ---------------------------------------------------------------- encoding


def _limits(server) -> tuple[int, int]:
    """(zset-max-listpack-entries, zset-max-listpack-value), read straight
    from the settings model (this runs on the ZADD hot path)."""
    model = server.settings.model
    return model.zset_max_listpack_entries, model.zset_max_listpack_value


def _is_skiplist(ctx, key: bytes, z: ZSet) -> bool:
    """Does Redis 7.0 hold the sorted set at key as a skiplist now?"""
    return encoding_of(z, ctx.server.settings, ctx.db, key) == b"skiplist"


def _fits_listpack(items: dict, limits) -> bool:
    """Would Redis convert a set with these members to a listpack?"""
    if len(items) > limits[0]:
        return False
    value = limits[1]
    for m in items:
        if len(m) > value:
            return False
    return True


def _listpack_zeros(scores: dict) -> None:
    """A set converted to a listpack stores -0.0 as 0."""
    for m, s in scores.items():
        if s == 0.0:
            scores[m] = 0.0


# ---------------------------------------------------------------- small helpers


def _notify(ctx, event: bytes, key: bytes) -> None:
    ctx.server.keyspace.notify(ctx.db, "z", event, key)


def _removed(ctx, key: bytes, z: ZSet, before: int) -> None:
    """After elements left z (which held `before`): the empty-key rule, or
    a WATCH touch; a skiplist that shrinks back under the listpack limit
    stays a skiplist in Redis, so the side table must remember it."""
    db = ctx.db
    n = len(z.dict)  # (len(z) and `not z` are Python-level calls)
    if not n:
        db.delete(key)
        ctx.server.keyspace.notify(db, "g", b"del", key)
        return
    if db.watched:  # (modified()'s own test: no call per write)
        db.modified(key)
    if before > n and before > ctx.server.settings.model.zset_max_listpack_entries >= n:
        _mark_skiplist(db, key, z)


def _mark_skiplist(db, key: bytes, z: ZSet) -> None:
    meta = key_meta(db.ks)
    if meta.collection_encoding(db.id, key, z) is None:
        meta.mark_collection(db.id, key, z, b"skiplist")


# "$<len>" headers of bulk strings, by length (a score's text is at most
# 24 bytes; longer members take the slow path). Range replies are built from
# C-level passes over whole lists (lengths, headers, one join) rather than a
# format per element: cheaper from a few elements on (measured: members alone
# from 8, with scores from 8 in RESP2; RESP3's nested pairs keep a format
# per pair), while a format per element is cheaper for shorter replies.
_BULK_HEAD = [b"$%d" % n for n in range(256)]
_BATCH_FROM = 8


def _heads(texts: list) -> list:
    return _heads_of_lengths(list(map(len, texts)))


def _heads_of_lengths(lens: list) -> list:
    try:
        return list(map(_BULK_HEAD.__getitem__, lens))
    except IndexError:
        return [b"$%d" % k for k in lens]


def _score_texts(scores: list) -> list:
    """Scores as Redis 7.0 prints doubles ("%.17g"), formatted by one %
    over the whole tuple and split: the per-call overhead of a format per
    score is most of its cost (%.17g never prints a newline)."""
    texts = (b"%.17g\n" * len(scores) % tuple(scores)).split(b"\n")
    texts.pop()
    return texts


def _flat(ctx, members: list, scores: list, withscores: bool) -> Raw:
    """A range reply: members, or member/score pairs (flat in RESP2, nested
    in RESP3), encoded here from the two parallel lists: the generic encoder
    costs several times more per element."""
    n = len(members)
    if n < _BATCH_FROM or (withscores and ctx.resp3 and n < 16):
        if not withscores:
            body = [b"$%d\r\n%s\r\n" % (len(m), m) for m in members]
        elif ctx.resp3:
            body = [b"*2\r\n$%d\r\n%s\r\n,%.17g\r\n" % (len(m), m, s)
                    for m, s in zip(members, scores)]
        else:
            body = [b"$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(m), m, len(t := b"%.17g" % s), t)
                    for m, s in zip(members, scores)]
            n *= 2
        return Raw(b"*%d\r\n%s" % (n, b"".join(body)))
    if not withscores:
        k = len(members[0])
        if len(members[-1]) == k:
            lens = list(map(len, members))
            if lens.count(k) == n:
                # Members of one length (generated names, fixed-width ids):
                # one header, repeated by the join itself, half the work.
                return Raw(b"*%d\r\n$%d\r\n%s\r\n" % (
                    n, k, (b"\r\n$%d\r\n" % k).join(members)))
            heads = _heads_of_lengths(lens)
        else:
            heads = _heads(members)
        parts = [None] * (2 * n)
        parts[0::2] = heads
        parts[1::2] = members
        return Raw(b"*%d\r\n%s\r\n" % (n, b"\r\n".join(parts)))
    texts = _score_texts(scores)
    if ctx.resp3:
        body = [b"*2\r\n$%d\r\n%s\r\n,%s\r\n" % (len(m), m, t)
                for m, t in zip(members, texts)]
        return Raw(b"*%d\r\n%s" % (n, b"".join(body)))
    parts = [None] * (4 * n)
    parts[0::4] = _heads(members)
    parts[1::4] = members
    parts[2::4] = map(_BULK_HEAD.__getitem__, map(len, texts))
    parts[3::4] = texts
    return Raw(b"*%d\r\n%s\r\n" % (2 * n, b"\r\n".join(parts)))


def _pairs(items) -> list:
    """Nested [member, score] pairs (ZMPOP, RESP3 pops)."""
    return [[m, s] for m, s in items]


def _store(ctx, dst: bytes, z: ZSet | None, event: bytes) -> int:
    """Store the result of a *STORE command; an empty result deletes dst."""
    db = ctx.db
    server = ctx.server
    if z:
        db.set(dst, z)
        if not _fits_listpack(z.dict, _limits(server)):
            _mark_skiplist(db, dst, z)
        server.dirty += 1
        server.keyspace.notify(db, "z", event, dst)
        db.signal_ready(dst)
        return len(z)
    if db.delete(dst):
        server.dirty += 1
        server.keyspace.notify(db, "g", b"del", dst)
    return 0


# ---------------------------------------------------------------- ZADD ZINCRBY

_ZADD_FLAGS = {b"nx": 1, b"xx": 2, b"ch": 4, b"incr": 8, b"gt": 16, b"lt": 32}


def _zadd(ctx, argv, incr: bool):
    flags = 8 if incr else 0
    at = 2
    n = len(argv)
    get_flag = _ZADD_FLAGS.get
    while at < n:
        flag = get_flag(argv[at].lower())
        if flag is None:
            break
        flags |= flag
        at += 1
    pairs = n - at
    if pairs == 0 or pairs & 1:
        raise ErrorReply(errors.SYNTAX)
    pairs >>= 1
    if flags:
        nx, xx, incr = flags & 1, flags & 2, flags & 8
        gt, lt = flags & 16, flags & 32
        if nx and xx:
            raise ErrorReply("ERR XX and NX options at the same time are not compatible")
        if (gt and nx) or (lt and nx) or (gt and lt):
            raise ErrorReply(
                "ERR GT, LT, and/or NX options at the same time are not compatible")
        if incr and pairs > 1:
            raise ErrorReply("ERR INCR option supports a single increment-element pair")
    else:
        nx = xx = incr = gt = lt = 0
    if pairs == 1:
        scores = [get_score(argv[at])]
    else:
        raws = argv[at:n:2]
        scores = _plain_scores(raws)
        if scores is None:
            scores = [get_score(raw) for raw in raws]

    db = ctx.db
    key = argv[1]
    z = db.get_typed(key, ZSet)
    created = False
    if z is None:
        if xx:
            return None if incr else 0
        z = ZSet()
        db.set(key, z)
        created = True
    d = z.dict
    insert, move = z.insert, z.move
    limits = None
    marked = False  # known to be (or to have just become) a skiplist
    added = updated = processed = 0
    for score, member in zip(scores, argv[at + 1::2] if pairs > 1 else (argv[at + 1],)):
        current = d.get(member)
        if current is None:
            if xx:
                continue
            if not marked:
                # Redis converts to a skiplist before an insertion that would
                # pass a limit. Content shows a set longer than the limit to
                # be a skiplist (and shrinking is watched by _removed), so
                # only the crossing itself and long members need a mark.
                if limits is None:
                    limits = _limits(ctx.server)
                if len(d) == limits[0] or len(member) > limits[1]:
                    _mark_skiplist(db, key, z)
                    marked = True
            if score == 0.0 and _is_neg_zero(score) and not _is_skiplist(ctx, key, z):
                insert(member, 0.0)
            else:
                insert(member, score)
            added += 1
            continue
        if nx:
            continue
        if incr:
            score += current
            if score != score:
                raise ErrorReply(NAN_SCORE)
        if (lt and score >= current) or (gt and score <= current):
            continue
        processed += 1
        if score != current:
            if score == 0.0 and _is_neg_zero(score) and not _is_skiplist(ctx, key, z):
                move(member, current, 0.0)
            else:
                move(member, current, score)
            updated += 1
    processed += added
    if created and not z:
        db.delete(key)
    changed = added + updated
    if changed:
        server = ctx.server
        server.dirty += changed
        if not created and db.watched:  # (see _zadd_one)
            db.modified(key)
        server.keyspace.notify(db, "z", b"zincr" if incr else b"zadd", key)
        if db.blocked:
            db.signal_ready(key)
    if incr:
        return score if processed else None
    return changed if flags & 4 else added


def _double_reply(ctx, score: float):
    """A double reply: RESP2 sends it as the bulk string "%.17g" (which is
    also "inf" / "-inf", as Redis prints them), and bytes take the reply
    encoder's fast path where a float goes through its generic one; a
    script sees the same string either way. RESP3 keeps the float."""
    return score if ctx.resp3 else b"%.17g" % score


def _zadd_one(ctx, key: bytes, score: float, member: bytes, incr: bool):
    """ZADD key score member / ZINCRBY key increment member, the common
    forms without options: _zadd's work without its option and pair
    parsing. Returns the reply."""
    db = ctx.db
    z = db.get_typed(key, ZSet)
    created = z is None
    if created:
        z = ZSet()
        db.set(key, z)
    d = z.dict
    current = d.get(member)
    if current is None:
        model = ctx.server.settings.model  # _limits(), inlined
        if (len(d) == model.zset_max_listpack_entries
                or len(member) > model.zset_max_listpack_value):
            _mark_skiplist(db, key, z)  # see _zadd: the insertion crosses a limit
    elif incr:
        score += current
        if score != score:
            raise ErrorReply(NAN_SCORE)
    if current is not None and current == score:
        return _double_reply(ctx, score) if incr else 0
    stored = score
    if score == 0.0 and _is_neg_zero(score) and not _is_skiplist(ctx, key, z):
        stored = 0.0
    if current is None:
        z.insert(member, stored)
    else:
        z.move(member, current, stored)
    server = ctx.server
    server.dirty += 1
    # modified()'s and signal_ready()'s own tests, made here: no call per
    # write while nobody WATCHes or blocks.
    if not created and db.watched:
        db.modified(key)
    server.keyspace.notify(db, "z", b"zincr" if incr else b"zadd", key)
    if db.blocked:
        db.signal_ready(key)
    if incr:
        return _double_reply(ctx, score)
    return 1 if current is None else 0


@command("zadd", -4, "write denyoom fast", keys=K1, group=G, since="1.2.0")
def zadd(ctx, argv):
    if len(argv) == 4:
        raw = argv[2]
        # An option word never reads as a score. _plain_decimal's test,
        # inlined (ZADD key score member is the commonest form).
        if len(raw) < 24 and not raw.translate(None, _PLAIN):
            try:
                score = float(raw)
            except ValueError:
                score = None
        else:
            score = parse_score(raw)
        if score is not None:
            return _zadd_one(ctx, argv[1], score, argv[3], False)
    return _zadd(ctx, argv, False)


@command("zincrby", 4, "write denyoom fast", keys=K1, group=G, since="1.2.0")
def zincrby(ctx, argv):
    score = parse_score(argv[2])  # an option word never reads as a score
    if score is not None:
        return _zadd_one(ctx, argv[1], score, argv[3], True)
    return _zadd(ctx, argv, True)


# ---------------------------------------------------------------- simple reads and ZREM


@command("zrem", -3, "write fast", keys=K1, group=G, since="1.2.0")
def zrem(ctx, argv):
    db = ctx.db
    key = argv[1]
    z = db.get_typed(key, ZSet)
    if z is None:
        return 0
    before = len(z)
    deleted = 0
    remove = z.remove
    for member in argv[2:]:
        if remove(member):
            deleted += 1
            if not z:
                break
    if deleted:
        _notify(ctx, b"zrem", key)
        _removed(ctx, key, z, before)
        ctx.server.dirty += deleted
    return deleted


@command("zcard", 2, "readonly fast", keys=K1, group=G, since="1.2.0")
def zcard(ctx, argv):
    z = ctx.db.get_typed(argv[1], ZSet)
    return 0 if z is None else len(z)


@command("zscore", 3, "readonly fast", keys=K1, group=G, since="1.2.0")
def zscore(ctx, argv):
    z = ctx.db.get_typed(argv[1], ZSet)
    if z is None:
        return None
    score = z.dict.get(argv[2])
    if score is None or ctx.resp3:
        return score
    return b"%.17g" % score  # RESP2: see _double_reply


@command("zmscore", -3, "readonly fast", keys=K1, group=G, since="6.2.0")
def zmscore(ctx, argv):
    z = ctx.db.get_typed(argv[1], ZSet)
    if z is None:
        return [None] * (len(argv) - 2)
    get = z.dict.get
    return [get(m) for m in argv[2:]]


def _rank(ctx, argv, reverse: bool):
    z = ctx.db.get_typed(argv[1], ZSet)
    if z is None:
        return None
    rank = z.rank(argv[2])
    if rank is None:
        return None
    return len(z) - 1 - rank if reverse else rank


@command("zrank", 3, "readonly fast", keys=K1, group=G, since="2.0.0")
def zrank(ctx, argv):
    return _rank(ctx, argv, False)


@command("zrevrank", 3, "readonly fast", keys=K1, group=G, since="2.0.0")
def zrevrank(ctx, argv):
    return _rank(ctx, argv, True)


@command("zcount", 4, "readonly fast", keys=K1, group=G, since="2.0.0")
def zcount(ctx, argv):
    lo, hi, lo_ex, hi_ex = _score_range(argv[2], argv[3])
    z = ctx.db.get_typed(argv[1], ZSet)
    if z is None:
        return 0
    return z.count_in_score(lo, hi, lo_ex, hi_ex)


@command("zlexcount", 4, "readonly fast", keys=K1, group=G, since="2.8.9")
def zlexcount(ctx, argv):
    lo, hi, lo_ex, hi_ex = _lex_range(argv[2], argv[3])
    z = ctx.db.get_typed(argv[1], ZSet)
    if z is None:
        return 0
    return z.count_in_lex(lo, hi, lo_ex, hi_ex)


# ---------------------------------------------------------------- the ZRANGE family

RANK, SCORE, LEX = 1, 2, 3


def _limited(start: int, end: int, offset: int, limit: int, n: int, reverse: bool):
    """Apply LIMIT offset count to the half-open rank interval [start, end):
    the ranks to emit, in emission order, as (first, last) inclusive, or
    None. As in Redis a negative offset skips everything and a negative
    count means all."""
    if start >= end or offset < 0 or (offset > 0 and offset >= n):
        return None
    if reverse:
        last = end - 1 - offset
        if last < start:
            return None
        first = start if limit < 0 else max(start, last - limit + 1)
    else:
        first = start + offset
        if first >= end:
            return None
        last = end - 1 if limit < 0 else min(end - 1, first + limit - 1)
    if first > last:
        return None
    return first, last


def _zrange_items(z: ZSet, kind: int, reverse: bool, args):
    """(members, scores) in emission order, and a length hint for
    ZRANGESTORE: the count for rank ranges, -1 otherwise."""
    n = len(z)
    if kind == RANK:
        span = clamp_range(args[0], args[1], n)
        if span is None:
            return [], [], 0
        start, end = span
        if reverse:
            members, scores = z.slice(n - 1 - end, n - 1 - start, reverse=True)
        else:
            members, scores = z.slice(start, end)
        return members, scores, len(members)
    lo, hi, lo_ex, hi_ex, offset, limit = args
    if kind == SCORE and limit >= 0:
        # LIMIT offset count: walk from one end of the interval (a negative
        # offset skips everything, as in Redis).
        if offset < 0 or (offset > 0 and offset >= n):
            return [], [], -1
        members, scores = z.score_slice(lo, hi, lo_ex, hi_ex, offset, limit, reverse)
        return members, scores, -1
    if kind == SCORE:
        start, end = z.score_range(lo, hi, lo_ex, hi_ex)
    else:
        start, end = z.lex_range(lo, hi, lo_ex, hi_ex)
    span = _limited(start, end, offset, limit, n, reverse)
    if span is None:
        return [], [], -1
    members, scores = z.slice(span[0], span[1], reverse=reverse)
    return members, scores, -1


def _zrange(ctx, argv, at: int, kind: int, reverse, store: bool):
    """The common parser of the ZRANGE family (Redis's zrangeGenericCommand).
    kind 0 / reverse None mean "not fixed by the command name"."""
    withscores = False
    offset, limit = 0, -1
    n = len(argv)
    j = at + 3
    while j < n:
        opt = argv[j].lower()
        left = n - j - 1
        if not store and opt == b"withscores":
            withscores = True
        elif opt == b"limit" and left >= 2:
            offset = get_int(argv[j + 1])
            limit = get_int(argv[j + 2])
            j += 2
        elif reverse is None and opt == b"rev":
            reverse = True
        elif kind == 0 and opt == b"bylex":
            kind = LEX
        elif kind == 0 and opt == b"byscore":
            kind = SCORE
        else:
            raise ErrorReply(errors.SYNTAX)
        j += 1
    reverse = bool(reverse)
    kind = kind or RANK
    if limit != -1 and kind == RANK:
        raise ErrorReply(LIMIT_NEEDS_BY)
    if withscores and kind == LEX:
        raise ErrorReply(WITHSCORES_BYLEX)
    a, b = argv[at + 1], argv[at + 2]
    if reverse and kind != RANK:
        a, b = b, a  # given as max min
    if kind == RANK:
        args = (get_int(a), get_int(b))
    elif kind == SCORE:
        args = _score_range(a, b) + (offset, limit)
    else:
        args = _lex_range(a, b) + (offset, limit)
    z = ctx.db.get_typed(argv[at], ZSet)
    if store:
        if z is None:
            return _store(ctx, argv[1], None, b"zrangestore")
        members, scores, hint = _zrange_items(z, kind, reverse, args)
        return _store(ctx, argv[1], _rangestore_result(ctx, list(zip(members, scores)), hint),
                      b"zrangestore")
    if z is None:
        return []
    members, scores, _ = _zrange_items(z, kind, reverse, args)
    return _flat(ctx, members, scores, withscores)


def _rangestore_result(ctx, items: list, hint: int) -> ZSet | None:
    """ZRANGESTORE's new set. Redis 7.0 starts it as a skiplist when the
    rank range is longer than the listpack limit, else as a listpack that
    converts once an insertion would exceed a limit; entries inserted
    while it was a listpack lost a -0.0 sign."""
    if not items:
        return None
    if any(s == 0.0 for _, s in items):
        entries, value = _limits(ctx.server)
        big = hint > entries
        fixed = []
        for i, (m, s) in enumerate(items):
            if not big and (i + 1 > entries or len(m) > value):
                big = True
            if not big and s == 0.0:
                s = 0.0
            fixed.append((m, s))
        items = fixed
    return ZSet.from_items(items)


@command("zrange", -4, "readonly", keys=K1, group=G, since="1.2.0")
def zrange(ctx, argv):
    return _zrange(ctx, argv, 1, 0, None, False)


@command("zrangestore", -5, "write denyoom", keys=(1, 2, 1), group=G, since="6.2.0")
def zrangestore(ctx, argv):
    return _zrange(ctx, argv, 2, 0, None, True)


@command("zrevrange", -4, "readonly", keys=K1, group=G, since="1.2.0")
def zrevrange(ctx, argv):
    return _zrange(ctx, argv, 1, RANK, True, False)


@command("zrangebyscore", -4, "readonly", keys=K1, group=G, since="1.0.5")
def zrangebyscore(ctx, argv):
    return _zrange(ctx, argv, 1, SCORE, False, False)


@command("zrevrangebyscore", -4, "readonly", keys=K1, group=G, since="2.2.0")
def zrevrangebyscore(ctx, argv):
    return _zrange(ctx, argv, 1, SCORE, True, False)


@command("zrangebylex", -4, "readonly", keys=K1, group=G, since="2.8.9")
def zrangebylex(ctx, argv):
    return _zrange(ctx, argv, 1, LEX, False, False)


@command("zrevrangebylex", -4, "readonly", keys=K1, group=G, since="2.8.9")
def zrevrangebylex(ctx, argv):
    return _zrange(ctx, argv, 1, LEX, True, False)


# ---------------------------------------------------------------- ZREMRANGEBY*


def _zremrange(ctx, argv, kind: int, event: bytes):
    if kind == RANK:
        start, end = get_int(argv[2]), get_int(argv[3])
    elif kind == SCORE:
        bounds = _score_range(argv[2], argv[3])
    else:
        bounds = _lex_range(argv[2], argv[3])
    key = argv[1]
    z = ctx.db.get_typed(key, ZSet)
    if z is None:
        return 0
    if kind == RANK:
        span = clamp_range(start, end, len(z))
        if span is None:
            return 0
        first, last = span
    else:
        lo, hi = (z.score_range if kind == SCORE else z.lex_range)(*bounds)
        first, last = lo, hi - 1
    before = len(z)
    deleted = z.remove_rank_range(first, last) if first <= last else 0
    if deleted:
        _notify(ctx, event, key)
        _removed(ctx, key, z, before)
        ctx.server.dirty += deleted
    return deleted


@command("zremrangebyrank", 4, "write", keys=K1, group=G, since="2.0.0")
def zremrangebyrank(ctx, argv):
    return _zremrange(ctx, argv, RANK, b"zremrangebyrank")


@command("zremrangebyscore", 4, "write", keys=K1, group=G, since="1.2.0")
def zremrangebyscore(ctx, argv):
    return _zremrange(ctx, argv, SCORE, b"zremrangebyscore")


@command("zremrangebylex", 4, "write", keys=K1, group=G, since="2.8.9")
def zremrangebylex(ctx, argv):
    return _zremrange(ctx, argv, LEX, b"zremrangebylex")


# ---------------------------------------------------------------- pops


def _pop(ctx, key: bytes, z: ZSet, use_max: bool, count: int) -> list:
    """Pop up to count elements of the non-empty z at key (with the
    bookkeeping); returns the (member, score) pairs in pop order."""
    before = len(z.dict)
    items = z.pop_max(count) if use_max else z.pop_min(count)
    server = ctx.server
    server.dirty += len(items)
    server.keyspace.notify(ctx.db, "z", b"zpopmax" if use_max else b"zpopmin", key)
    _removed(ctx, key, z, before)
    return items


def _pop_name(use_max: bool) -> bytes:
    return b"ZPOPMAX" if use_max else b"ZPOPMIN"


def _zpop(ctx, argv, use_max: bool):
    if len(argv) == 2:
        return _zpop_one(ctx, argv[1], use_max)
    if len(argv) > 3:
        raise ErrorReply(errors.SYNTAX)
    count = get_count(argv[2])
    key = argv[1]
    z = ctx.db.get_typed(key, ZSet)
    if z is None or count == 0:
        return []
    items = _pop(ctx, key, z, use_max, count)
    if ctx.resp3:
        return _pairs(items)
    # RESP2: the scores as their bulk text already (see _double_reply).
    out = []
    for m, s in items:
        out.append(m)
        out.append(b"%.17g" % s)
    return out


def _zpop_one(ctx, key: bytes, use_max: bool):
    """ZPOPMIN/ZPOPMAX key, without a count: one member and its score,
    flat in RESP3 too."""
    z = ctx.db.get_typed(key, ZSet)
    if z is None:
        return []
    (member, score), = _pop(ctx, key, z, use_max, 1)
    return [member, _double_reply(ctx, score)]


@command("zpopmin", -2, "write fast", keys=K1, group=G, since="5.0.0")
def zpopmin(ctx, argv):
    return _zpop(ctx, argv, False)


@command("zpopmax", -2, "write fast", keys=K1, group=G, since="5.0.0")
def zpopmax(ctx, argv):
    return _zpop(ctx, argv, True)


def _mpop_serve(use_max: bool, count: int):
    """serve() of ZMPOP / BZMPOP: pop up to count, propagated as
    ZPOPMIN/ZPOPMAX key count; the reply is [key, [[member, score] ...]]."""
    def serve(client, key, z):
        items = _pop(client, key, z, use_max, count)
        client.propagate([_pop_name(use_max), key, b"%d" % count])
        return [key, _pairs(items)]
    return serve


@command("zmpop", -4, "write", key_finder=numkeys_finder, group=G, since="7.0.0")
def zmpop(ctx, argv):
    keys, end, count = parse_mpop(argv, 1, (b"min", b"max"))
    return serve_first(ctx, keys, ZSet, _mpop_serve(end == 1, count))


def _bzpop(ctx, argv, use_max: bool):
    deadline = parse_timeout(argv[-1])

    def serve(client, key, z):
        (m, s), = _pop(client, key, z, use_max, 1)
        client.propagate([_pop_name(use_max), key])
        return [key, m, s]

    return serve_or_block(ctx, argv[1:-1], deadline, ZSet, serve)


@command("bzpopmin", -3, "write noscript blocking fast", keys=(1, -2, 1), group=G,
         since="5.0.0")
def bzpopmin(ctx, argv):
    return _bzpop(ctx, argv, False)


@command("bzpopmax", -3, "write noscript blocking fast", keys=(1, -2, 1), group=G,
         since="5.0.0")
def bzpopmax(ctx, argv):
    return _bzpop(ctx, argv, True)


def _bzmpop_keys(argv) -> list:
    """BZMPOP timeout numkeys key ...: the keys follow numkeys at argv[2]."""
    return [i + 1 for i in numkeys_finder(argv[1:])]


@command("bzmpop", -5, "write blocking", key_finder=_bzmpop_keys, group=G, since="7.0.0")
def bzmpop(ctx, argv):
    keys, end, count = parse_mpop(argv, 2, (b"min", b"max"))
    deadline = parse_timeout(argv[1])
    return serve_or_block(ctx, keys, deadline, ZSet, _mpop_serve(end == 1, count))


# ---------------------------------------------------------------- ZRANDMEMBER


@command("zrandmember", -2, "readonly", keys=K1, group=G, since="6.2.0")
def zrandmember(ctx, argv):
    n_args = len(argv)
    if n_args == 2:
        z = ctx.db.get_typed(argv[1], ZSet)
        if not z:
            return None
        return z.at(random.randrange(len(z)))[0]
    count = parse_rand_count(argv[2])
    withscores = False
    if n_args > 4 or (n_args == 4 and argv[3].lower() != b"withscores"):
        raise ErrorReply(errors.SYNTAX)
    if n_args == 4:
        withscores = True
        if count < -(LONG_MAX // 2) or count > LONG_MAX // 2:
            raise ErrorReply("ERR value is out of range")
    z = ctx.db.get_typed(argv[1], ZSet)
    if not z or count == 0:
        return []
    size = len(z)
    if count < 0:
        # Repetitions allowed: independent picks.
        count = -count
        if count * 4 > size:
            pool = list(z.items())
            items = random.choices(pool, k=count)
        else:
            at = z.at
            randrange = random.randrange
            items = [at(randrange(size)) for _ in range(count)]
    elif count >= size:
        # Redis answers the whole set, highest first.
        items = list(z.range(0, size - 1, reverse=True))
    elif count * 3 > size:
        items = random.sample(list(z.items()), count)
    else:
        at = z.at
        items = [at(r) for r in random.sample(range(size), count)]
    return _flat(ctx, [m for m, _ in items], [s for _, s in items], withscores)


# ---------------------------------------------------------------- ZUNION ZINTER ZDIFF

UNION, INTER, DIFF = 1, 2, 3


def _agg_sum(total: float, value: float) -> float:
    total += value
    return 0.0 if total != total else total  # inf + -inf: Redis says 0


def _agg_min(total: float, value: float) -> float:
    return value if value < total else total


def _agg_max(total: float, value: float) -> float:
    return value if value > total else total


_AGGREGATES = {b"sum": _agg_sum, b"min": _agg_min, b"max": _agg_max}


def _iterate(source):
    """(member, score) of a source: a ZSet, or a set whose members score 1."""
    if source.__class__ is ZSet:
        return source.items()
    return ((m, 1.0) for m in source)


def _lookup(source, member):
    if source.__class__ is ZSet:
        return source.dict.get(member)
    return 1.0 if member in source else None


def _setop(ctx, argv, dst: bytes | None, numkeys_at: int, op: int, card_only: bool = False):
    """Redis's zunionInterDiffGenericCommand: returns the reply."""
    numkeys = get_int(argv[numkeys_at])
    if numkeys < 1:
        raise ErrorReply("ERR at least 1 input key is needed for '%s' command"
                         % argv[0].decode("utf-8", "replace").lower())
    n = len(argv)
    if numkeys > n - numkeys_at - 1:
        raise ErrorReply(errors.SYNTAX)
    db = ctx.db
    j = numkeys_at + 1
    sources = []
    for key in argv[j:j + numkeys]:
        value = db.get(key)
        if value is not None and value.__class__ is not ZSet and value.__class__ is not set:
            raise ErrorReply(errors.WRONGTYPE)
        sources.append(value)
    j += numkeys
    weights = [1.0] * numkeys
    aggregate = _agg_sum
    withscores = False
    limit = 0
    while j < n:
        opt = argv[j].lower()
        left = n - j
        if op != DIFF and not card_only and left >= numkeys + 1 and opt == b"weights":
            for i in range(numkeys):
                weights[i] = get_score(argv[j + 1 + i], "ERR weight value is not a float")
            j += numkeys + 1
        elif op != DIFF and not card_only and left >= 2 and opt == b"aggregate":
            aggregate = _AGGREGATES.get(argv[j + 1].lower())
            if aggregate is None:
                raise ErrorReply(errors.SYNTAX)
            j += 2
        elif dst is None and not card_only and opt == b"withscores":
            withscores = True
            j += 1
        elif card_only and left >= 2 and opt == b"limit":
            limit = get_int(argv[j + 1], "ERR LIMIT can't be negative")
            if limit < 0:
                raise ErrorReply("ERR LIMIT can't be negative")
            j += 2
        else:
            raise ErrorReply(errors.SYNTAX)

    order = list(range(numkeys))
    if op != DIFF:
        # Redis visits the inputs smallest first (a stable sort): it decides
        # the order in which scores are added up.
        order.sort(key=lambda i: len(sources[i]) if sources[i] is not None else 0)
    if op == INTER:
        result = _inter(sources, weights, order, aggregate, card_only, limit)
        if card_only:
            return result
    elif op == UNION:
        result = _union(sources, weights, order, aggregate)
    else:
        result = _diff(sources)

    if dst is not None:
        event = (b"zunionstore", b"zinterstore", b"zdiffstore")[op - 1]
        if not result:
            return _store(ctx, dst, None, event)
        if _fits_listpack(result, _limits(ctx.server)):
            _listpack_zeros(result)
        return _store(ctx, dst, ZSet.from_items(result.items()), event)
    if not result:
        return []
    z = ZSet.from_items(result.items())
    members, scores = z.slice(0, len(z) - 1)
    return _flat(ctx, members, scores, withscores)


def _inter(sources, weights, order, aggregate, card_only: bool, limit: int):
    first = order[0]
    base = sources[first]
    if not base:
        return 0 if card_only else {}
    w0 = weights[first]
    others = [(sources[i], weights[i]) for i in order[1:]]
    for source, _ in others:
        if not source:
            return 0 if card_only else {}
    result = {}
    found = 0
    for member, score in _iterate(base):
        total = w0 * score
        if total != total:
            total = 0.0
        for source, weight in others:
            if source is base:
                value = score * weight
            else:
                value = _lookup(source, member)
                if value is None:
                    break
                value *= weight
            total = aggregate(total, value)
        else:
            if card_only:
                found += 1
                if limit and found >= limit:
                    break
            else:
                result[member] = total
    return found if card_only else result


def _union(sources, weights, order, aggregate) -> dict:
    acc: dict = {}
    for i in order:
        source = sources[i]
        if not source:
            continue
        weight = weights[i]
        if not acc and weight == 1.0 and source.__class__ is ZSet:
            acc = dict(source.dict)  # 1 * score is score
            continue
        for member, score in _iterate(source):
            value = weight * score
            if value != value:
                value = 0.0
            if member in acc:
                acc[member] = aggregate(acc[member], value)
            else:
                acc[member] = value
    return acc


def _diff(sources) -> dict:
    base = sources[0]
    if not base:
        return {}
    others = [s for s in sources[1:] if s]
    if base.__class__ is ZSet:
        result = dict(base.dict)
    else:
        result = dict.fromkeys(base, 1.0)
    for source in others:
        if not result:
            break
        if len(source) < len(result):
            for member in (source.dict if source.__class__ is ZSet else source):
                result.pop(member, None)
        else:
            result = {m: s for m, s in result.items() if m not in source}
    return result


def _store_keys(argv) -> list:
    """Z*STORE dst numkeys key ...: dst, then the inputs."""
    return [1] + [i + 1 for i in numkeys_finder(argv[1:])]


@command("zunionstore", -4, "write denyoom", keys=K1, key_finder=_store_keys,
         group=G, since="2.0.0")
def zunionstore(ctx, argv):
    return _setop(ctx, argv, argv[1], 2, UNION)


@command("zinterstore", -4, "write denyoom", keys=K1, key_finder=_store_keys,
         group=G, since="2.0.0")
def zinterstore(ctx, argv):
    return _setop(ctx, argv, argv[1], 2, INTER)


@command("zdiffstore", -4, "write denyoom", keys=K1, key_finder=_store_keys,
         group=G, since="6.2.0")
def zdiffstore(ctx, argv):
    return _setop(ctx, argv, argv[1], 2, DIFF)


@command("zunion", -3, "readonly", key_finder=numkeys_finder, group=G, since="6.2.0")
def zunion(ctx, argv):
    return _setop(ctx, argv, None, 1, UNION)


@command("zinter", -3, "readonly", key_finder=numkeys_finder, group=G, since="6.2.0")
def zinter(ctx, argv):
    return _setop(ctx, argv, None, 1, INTER)


@command("zdiff", -3, "readonly", key_finder=numkeys_finder, group=G, since="6.2.0")
def zdiff(ctx, argv):
    return _setop(ctx, argv, None, 1, DIFF)


@command("zintercard", -3, "readonly", key_finder=numkeys_finder, group=G, since="7.0.0")
def zintercard(ctx, argv):
    return _setop(ctx, argv, None, 1, INTER, card_only=True)


# ---------------------------------------------------------------- ZSCAN


@command("zscan", -3, "readonly", keys=K1, group=G, since="2.8.0")
def zscan(ctx, argv):
    key = argv[1]

    def whole(z):
        # A listpack is returned whole, in order, whatever the cursor.
        return None if _is_skiplist(ctx, key, z) else [m for m, _ in z.items()]

    return collection_scan(ctx, argv, ZSet, whole, _zscan_reply, _members)


def _members(z: ZSet) -> dict:
    return z.dict


def _zscan_reply(z: ZSet, members: list, is_whole: bool) -> list:
    # Scores as bulk strings in both protocols; a listpack's as it holds them.
    fmt = _listpack_score if is_whole else format_double
    scores = z.dict
    out = []
    for m in members:
        out.append(m)
        out.append(fmt(scores[m]))
    return out


_LL_SAFE = float(2**62)


def _listpack_score(score: float) -> bytes:
    """A score as Redis 7.0 writes it into a listpack: integral values
    within +-2^62 as integers (so 1.2345678901234568e+17 reads back as
    123456789012345680), others as %.17g."""
    if -_LL_SAFE <= score <= _LL_SAFE and score == int(score):
        return b"%d" % int(score)
    return format_double(score)


__all__ = ["parse_score", "get_score", "parse_score_bound"]
