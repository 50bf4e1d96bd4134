"""List commands: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX LSET
LREM LTRIM LINSERT LPOS LMOVE RPOPLPUSH LMPOP, and the blocking BLPOP BRPOP
BLMOVE BRPOPLPUSH BLMPOP.

A list is a `collections.deque` of bytes: O(1) at both ends, and indexing
walks 64-element blocks from the nearer end, so LINDEX/LSET never copy.
Ranges are read with islice from the nearer end; LTRIM pops the smaller side
(or keeps the smaller side when that is what is left); LREM counts matches
at C speed first and touches the list only if something matches.

Blocking (shared with the sorted-set family: BZPOPMIN, BZPOPMAX, BZMPOP):
`parse_timeout` reads a timeout exactly as Redis 7.0 does, `serve_or_block`
serves the first non-empty key now or, through `block_client`, parks the
client with `Server.block` (FIFO per key; the server serves the
waiters from `handle_ready_keys` after every write command, EXEC or script,
times them out, and forgets them when they disconnect or get CLIENT
UNBLOCK). A served pop is propagated as its non-blocking form (LPOP, RPOP,
LMOVE), so replicas and the AOF replay it deterministically.
"""

from __future__ import annotations

import math
import time
from collections import deque
from itertools import islice, repeat

from hakv.common import errors
from hakv.common.commands.sets import numkeys_finder
from hakv.common.commands.table import command
from hakv.common.connection import Block
from hakv.common.dispatch import NO_REPLY
from hakv.common.numbers import (LLONG_MAX, LLONG_MIN, get_count, get_int, parse_long_double,
                                 round_long_double)
from hakv.common.resp import NULL_ARRAY, ErrorReply

G = "list"
K1 = (1, 1, 1)

RANK_ZERO = ("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
             "or use negative to start from the end of the list")


# ---------------------------------------------------------------- blocking helpers


def parse_timeout(raw: bytes) -> float | None:
    """A blocking command's timeout in seconds, as Redis 7.0 reads it: a long
    double, times 1000, rounded up to whole ms; 0 means forever. Returns the
    absolute deadline (time.time() scale) or None for forever."""
    value = parse_long_double(raw)
    if value is None:
        raise ErrorReply("ERR timeout is not a float or out of range")
    if isinstance(value, float):  # +/-inf: converts to LLONG_MIN in Redis
        raise ErrorReply("ERR timeout is negative")
    ms = round_long_double(value * 1000)
    if isinstance(ms, float):
        raise ErrorReply("ERR timeout is negative")
    ms = math.ceil(ms)
    if ms < 0 or ms > LLONG_MAX:  # beyond LLONG_MAX the C conversion goes negative
        raise ErrorReply("ERR timeout is negative")
    if ms == 0:
        return None
    return time.time() + ms / 1000.0


def block_client(ctx, keys, deadline, on_ready, on_timeout=NULL_ARRAY):
    """Park ctx until one of keys gets data or the deadline passes.

    on_ready(client, key) runs (with client.db on the key's database) each
    time a key it waits on is signalled: it does the pop/move, propagates it
    in its non-blocking form, and returns the reply (an ErrorReply is sent as
    an error), or None to keep waiting (the key is empty or of another type).
    on_timeout is the reply on timeout and on CLIENT UNBLOCK ... TIMEOUT.
    Returns NO_REPLY, which the handler returns."""
    block = Block(list(dict.fromkeys(keys)), deadline, on_ready, on_timeout)
    ctx.server.block(ctx, block)
    return NO_REPLY


def first_nonempty(db, keys, cls):
    """(key, value) of the first key holding a non-empty cls (a list or a
    sorted set), or (None, None); WRONGTYPE on the way, as Redis checks."""
    get = db.get_typed
    for key in keys:
        value = get(key, cls)
        if value:
            return key, value
    return None, None


def serve_first(ctx, keys, cls, serve):
    """LMPOP / ZMPOP: serve(ctx, key, value) on the first non-empty key,
    or a null array."""
    key, value = first_nonempty(ctx.db, keys, cls)
    return NULL_ARRAY if key is None else serve(ctx, key, value)


def serve_or_block(ctx, keys, deadline, cls, serve, unblocked_reply=NULL_ARRAY):
    """The blocking pops (BLPOP, BLMOVE, BLMPOP, BZPOPMIN, BZMPOP ...):
    serve(client, key, value) pops from the non-empty cls at key, propagates
    that in its non-blocking form and returns the reply. It runs now on the
    first non-empty key; else inside MULTI or a script (which may not block)
    the answer is unblocked_reply at once; else the client waits for one of
    keys to get elements."""
    key, value = first_nonempty(ctx.db, keys, cls)
    if key is not None:
        return serve(ctx, key, value)
    if not ctx.may_block:
        return unblocked_reply

    def on_ready(client, key):
        value = client.db.get(key)
        if value.__class__ is not cls or not value:
            return None
        return serve(client, key, value)

    return block_client(ctx, keys, deadline, on_ready)


def parse_mpop(argv, numkeys_at: int, ends=(b"left", b"right")):
    """[B]LMPOP / [B]ZMPOP arguments from numkeys on: (keys, index of the
    end in `ends`, count). ZMPOP passes ends=(b"min", b"max")."""
    numkeys = get_int(argv[numkeys_at], "ERR numkeys should be greater than 0")
    if numkeys < 1:
        raise ErrorReply("ERR numkeys should be greater than 0")
    where_at = numkeys_at + numkeys + 1
    if where_at >= len(argv):
        raise ErrorReply(errors.SYNTAX)
    end = argv[where_at].lower()
    if end not in ends:
        raise ErrorReply(errors.SYNTAX)
    count = -1
    i, n = where_at + 1, len(argv)
    while i < n:
        if argv[i].lower() == b"count" and i + 1 < n and count == -1:
            count = get_int(argv[i + 1], "ERR count should be greater than 0")
            if count < 1:
                raise ErrorReply("ERR count should be greater than 0")
            i += 2
        else:
            raise ErrorReply(errors.SYNTAX)
    return argv[numkeys_at + 1:where_at], ends.index(end), max(count, 1)


def _bl_keys(argv):
    """BLMPOP's keys: after timeout and numkeys."""
    return [i + 1 for i in numkeys_finder(argv[1:])]


# ---------------------------------------------------------------- core operations


def _where(raw: bytes) -> bool:
    """LEFT -> True, RIGHT -> False."""
    w = raw.lower()
    if w == b"left":
        return True
    if w == b"right":
        return False
    raise ErrorReply(errors.SYNTAX)


def _after_pop(ctx, key: bytes, lst: deque, left: bool, n: int) -> None:
    """Bookkeeping after n elements were popped from the list at key."""
    db = ctx.db
    server = ctx.server
    server.keyspace.notify(db, "l", b"lpop" if left else b"rpop", key)
    if not lst:
        db.delete(key)
        server.keyspace.notify(db, "g", b"del", key)
    elif db.watched:  # (modified()'s own test: no call while nobody WATCHes)
        db.modified(key)
    server.dirty += n


def _pop_many(lst: deque, left: bool, count: int) -> list:
    if count >= len(lst):
        out = list(lst) if left else list(reversed(lst))
        lst.clear()
        return out
    pop = lst.popleft if left else lst.pop
    return [pop() for _ in repeat(None, count)]


def _pop_from(ctx, key: bytes, lst: deque, left: bool, count: int) -> list:
    """Pop up to count elements (for LMPOP / BLMPOP); propagated as [LR]POP."""
    out = _pop_many(lst, left, count)
    _after_pop(ctx, key, lst, left, len(out))
    ctx.propagate([b"LPOP" if left else b"RPOP", key, b"%d" % len(out)])
    return out


def _move(ctx, src_key: bytes, src: deque, dst_key: bytes, dst, from_left: bool,
          to_left: bool) -> bytes:
    """LMOVE's work once the types are checked: src is a non-empty list, dst
    a list or None."""
    db = ctx.db
    server = ctx.server
    notify = server.keyspace.notify
    value = src.popleft() if from_left else src.pop()
    if dst is None:
        dst = deque()
        db.set(dst_key, dst)
    if to_left:
        dst.appendleft(value)
    else:
        dst.append(value)
    db.modified(dst_key)
    notify(db, "l", b"lpush" if to_left else b"rpush", dst_key)
    db.signal_ready(dst_key)
    notify(db, "l", b"lpop" if from_left else b"rpop", src_key)
    if not src:
        db.delete(src_key)
        notify(db, "g", b"del", src_key)
    else:
        db.modified(src_key)
    server.dirty += 1
    return value


def _move_types(db, src_key, dst_key):
    """(src list or None, dst list or None); WRONGTYPE as LMOVE checks it:
    the destination only matters when the source has elements."""
    src = db.get_typed(src_key, deque)
    if not src:
        return None, None
    dst = db.get(dst_key)
    if dst is not None and dst.__class__ is not deque:
        raise ErrorReply(errors.WRONGTYPE)
    return src, dst


def _side(left: bool) -> bytes:
    return b"LEFT" if left else b"RIGHT"


# ---------------------------------------------------------------- push


def _push(ctx, argv, left: bool, only_existing: bool):
    db = ctx.db
    key = argv[1]
    lst = db.get_typed(key, deque)
    if lst is None:
        if only_existing:
            return 0
        lst = deque(argv[2:])
        if left:
            lst.reverse()
        db.set(key, lst)
    else:
        if len(argv) == 3:
            if left:
                lst.appendleft(argv[2])
            else:
                lst.append(argv[2])
        elif left:
            lst.extendleft(argv[2:])
        else:
            lst.extend(argv[2:])
        if db.watched:  # modified()'s and signal_ready()'s own tests: no call per push
            db.modified(key)
    server = ctx.server
    server.dirty += len(argv) - 2
    server.keyspace.notify(db, "l", b"lpush" if left else b"rpush", key)
    if db.blocked:
        db.signal_ready(key)
    return len(lst)


@command("lpush", -3, "write denyoom fast", keys=K1, group=G)
def lpush(ctx, argv):
    return _push(ctx, argv, True, False)


@command("rpush", -3, "write denyoom fast", keys=K1, group=G)
def rpush(ctx, argv):
    return _push(ctx, argv, False, False)


@command("lpushx", -3, "write denyoom fast", keys=K1, group=G)
def lpushx(ctx, argv):
    return _push(ctx, argv, True, True)


@command("rpushx", -3, "write denyoom fast", keys=K1, group=G)
def rpushx(ctx, argv):
    return _push(ctx, argv, False, True)


# ---------------------------------------------------------------- pop


def _pop(ctx, argv, left: bool):
    n = len(argv)
    if n > 3:
        raise ErrorReply(errors.wrong_args(argv[0].decode("utf-8", "replace").lower()).message)
    key = argv[1]
    db = ctx.db
    if n == 2:
        lst = db.get_typed(key, deque)
        if lst is None:
            return None
        value = lst.popleft() if left else lst.pop()
        _after_pop(ctx, key, lst, left, 1)
        return value
    count = get_count(argv[2])
    lst = db.get_typed(key, deque)
    if lst is None:
        return NULL_ARRAY
    if count == 0:
        return []
    out = _pop_many(lst, left, count)
    _after_pop(ctx, key, lst, left, len(out))
    return out


@command("lpop", -2, "write fast", keys=K1, group=G)
def lpop(ctx, argv):
    return _pop(ctx, argv, True)


@command("rpop", -2, "write fast", keys=K1, group=G)
def rpop(ctx, argv):
    return _pop(ctx, argv, False)


# ---------------------------------------------------------------- reads


@command("llen", 2, "readonly fast", keys=K1, group=G)
def llen(ctx, argv):
    lst = ctx.db.get_typed(argv[1], deque)
    return 0 if lst is None else len(lst)


def clamp_range(start: int, end: int, n: int):
    """Redis's index sanitizing (LRANGE, LTRIM, ZRANGE ...): negative
    indexes count from the end, then both are clamped to 0..n-1; None when
    the range is empty."""
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if start > end or start >= n:
        return None
    if end >= n:
        end = n - 1
    return start, end


def _range(lst: deque, start: int, end: int) -> list:
    """Elements start..end inclusive (Redis's normalization), read from the
    nearer end of the deque."""
    n = len(lst)
    span = clamp_range(start, end, n)
    if span is None:
        return []
    start, end = span
    if start == 0 and end == n - 1:
        return list(lst)
    if start <= n - 1 - end:
        return list(islice(lst, start, end + 1))
    out = list(islice(reversed(lst), n - 1 - end, n - start))
    out.reverse()
    return out


@command("lrange", 4, "readonly", keys=K1, group=G)
def lrange(ctx, argv):
    start = get_int(argv[2])
    end = get_int(argv[3])
    lst = ctx.db.get_typed(argv[1], deque)
    if lst is None:
        return []
    return _range(lst, start, end)


@command("lindex", 3, "readonly", keys=K1, group=G)
def lindex(ctx, argv):
    lst = ctx.db.get_typed(argv[1], deque)
    if lst is None:
        return None
    index = get_int(argv[2])
    if -len(lst) <= index < len(lst):
        return lst[index]
    return None


@command("lpos", -3, "readonly", keys=K1, group=G)
def lpos(ctx, argv):
    element = argv[2]
    rank, count, maxlen = 1, -1, 0
    i, n = 3, len(argv)
    while i < n:
        opt = argv[i].lower()
        if i + 1 >= n:
            raise ErrorReply(errors.SYNTAX)
        if opt == b"rank":
            rank = get_int(argv[i + 1])
            if rank == 0:
                raise ErrorReply(RANK_ZERO)
        elif opt == b"count":
            count = get_int(argv[i + 1], "ERR COUNT can't be negative")
            if count < 0:
                raise ErrorReply("ERR COUNT can't be negative")
        elif opt == b"maxlen":
            maxlen = get_int(argv[i + 1], "ERR MAXLEN can't be negative")
            if maxlen < 0:
                raise ErrorReply("ERR MAXLEN can't be negative")
        else:
            raise ErrorReply(errors.SYNTAX)
        i += 2
    lst = ctx.db.get_typed(argv[1], deque)
    if lst is None:
        return [] if count != -1 else None
    want = 1 if count == -1 else count
    if rank == LLONG_MIN:
        # Redis negates it in C, which leaves it negative: every match from
        # the tail counts, and the COUNT test overflows so COUNT is ignored.
        rank, want = -1, (1 if count == -1 else 0)
    found = _positions(lst, element, abs(rank) - 1, rank > 0, want, maxlen)
    if count != -1:
        return found
    return found[0] if found else None


def _positions(lst: deque, element: bytes, skip: int, forward: bool, want: int,
               maxlen: int) -> list:
    """Indexes of the matches of element, after skipping `skip` matches,
    at most `want` of them (0: all), looking at the first `maxlen` elements
    from the chosen end (0: all)."""
    n = len(lst)
    limit = n if maxlen == 0 else min(n, maxlen)
    out: list = []
    if not forward and limit < n // 8:
        # A short look from the tail: walk it.
        for j, x in enumerate(islice(reversed(lst), limit)):
            if x == element:
                if skip:
                    skip -= 1
                else:
                    out.append(n - 1 - j)
                    if want and len(out) >= want:
                        break
        return out
    if not forward:
        lst.reverse()  # search from the tail at C speed, then restore
    try:
        i = 0
        index = lst.index
        while True:
            try:
                i = index(element, i, limit)
            except ValueError:
                break
            if skip:
                skip -= 1
            else:
                out.append(i if forward else n - 1 - i)
                if want and len(out) >= want:
                    break
            i += 1
    finally:
        if not forward:
            lst.reverse()
    return out


# ---------------------------------------------------------------- writes in place


@command("lset", 4, "write denyoom", keys=K1, group=G)
def lset(ctx, argv):
    db = ctx.db
    key = argv[1]
    lst = db.get_typed(key, deque)
    if lst is None:
        raise ErrorReply(errors.NO_SUCH_KEY)
    index = get_int(argv[2])
    if not -len(lst) <= index < len(lst):
        raise ErrorReply(errors.OUT_OF_RANGE)
    lst[index] = argv[3]
    db.modified(key)
    ctx.server.dirty += 1
    ctx.server.keyspace.notify(db, "l", b"lset", key)
    return "OK"


@command("linsert", 5, "write denyoom", keys=K1, group=G)
def linsert(ctx, argv):
    where = argv[2].lower()
    if where not in (b"before", b"after"):
        raise ErrorReply(errors.SYNTAX)
    db = ctx.db
    key = argv[1]
    lst = db.get_typed(key, deque)
    if lst is None:
        return 0
    try:
        i = lst.index(argv[3])
    except ValueError:
        return -1
    lst.insert(i if where == b"before" else i + 1, argv[4])
    db.modified(key)
    ctx.server.dirty += 1
    ctx.server.keyspace.notify(db, "l", b"linsert", key)
    return len(lst)


@command("lrem", 4, "write", keys=K1, group=G)
def lrem(ctx, argv):
    count = get_int(argv[2])
    db = ctx.db
    key = argv[1]
    lst = db.get_typed(key, deque)
    if lst is None:
        return 0
    element = argv[3]
    total = lst.count(element)
    if not total:
        return 0
    k = total if count == 0 else min(abs(count), total)
    if k == total and k > 4:
        # Remove every match: one filtering pass at C speed.
        kept = list(filter(element.__ne__, lst))
        lst.clear()
        lst.extend(kept)
    elif count >= 0:
        _remove_first(lst, element, k)
    else:
        lst.reverse()
        try:
            _remove_first(lst, element, k)
        finally:
            lst.reverse()
    server = ctx.server
    server.keyspace.notify(db, "l", b"lrem", key)
    if not lst:
        db.delete(key)
        server.keyspace.notify(db, "g", b"del", key)
    else:
        db.modified(key)
    server.dirty += k
    return k


def _remove_first(lst: deque, element: bytes, k: int) -> None:
    """Remove the first k matches (there are at least k)."""
    if k <= 8:
        for _ in repeat(None, k):
            lst.remove(element)
        return
    # Many: rotate the prefix holding the first k matches out, filter it, and
    # put the survivors back in front.
    end = -1
    for _ in repeat(None, k):
        end = lst.index(element, end + 1)
    prefix = [lst.popleft() for _ in repeat(None, end + 1)]
    survivors = [x for x in prefix if x != element]
    lst.extendleft(reversed(survivors))


@command("ltrim", 4, "write", keys=K1, group=G)
def ltrim(ctx, argv):
    start = get_int(argv[2])
    end = get_int(argv[3])
    db = ctx.db
    key = argv[1]
    lst = db.get_typed(key, deque)
    if lst is None:
        return "OK"
    n = len(lst)
    span = clamp_range(start, end, n)
    left_cut, right_cut = (n, 0) if span is None else (span[0], n - 1 - span[1])
    removed = left_cut + right_cut
    if removed >= n:
        lst.clear()
    elif removed:
        if removed <= n - removed:
            for _ in repeat(None, left_cut):
                lst.popleft()
            for _ in repeat(None, right_cut):
                lst.pop()
        else:
            kept = _range(lst, left_cut, n - 1 - right_cut)
            lst.clear()
            lst.extend(kept)
    server = ctx.server
    server.keyspace.notify(db, "l", b"ltrim", key)
    if not lst:
        db.delete(key)
        server.keyspace.notify(db, "g", b"del", key)
    else:
        db.modified(key)
    server.dirty += removed
    return "OK"


# ---------------------------------------------------------------- moves and multi-pops


@command("lmove", 5, "write denyoom", keys=(1, 2, 1), group=G)
def lmove(ctx, argv):
    from_left = _where(argv[3])
    to_left = _where(argv[4])
    src, dst = _move_types(ctx.db, argv[1], argv[2])
    if src is None:
        return None
    return _move(ctx, argv[1], src, argv[2], dst, from_left, to_left)


@command("rpoplpush", 3, "write denyoom", keys=(1, 2, 1), group=G)
def rpoplpush(ctx, argv):
    src, dst = _move_types(ctx.db, argv[1], argv[2])
    if src is None:
        return None
    return _move(ctx, argv[1], src, argv[2], dst, False, True)


def _mpop_serve(left: bool, count: int):
    """serve() of LMPOP / BLMPOP: pop up to count, reply [key, elements]."""
    def serve(client, key, lst):
        return [key, _pop_from(client, key, lst, left, count)]
    return serve


@command("lmpop", -4, "write", key_finder=numkeys_finder, group=G)
def lmpop(ctx, argv):
    keys, end, count = parse_mpop(argv, 1)
    return serve_first(ctx, keys, deque, _mpop_serve(end == 0, count))


# ---------------------------------------------------------------- blocking


def _serve_pop(left: bool):
    """serve() of BLPOP / BRPOP."""
    def serve(client, key, lst):
        value = lst.popleft() if left else lst.pop()
        _after_pop(client, key, lst, left, 1)
        client.propagate([b"LPOP" if left else b"RPOP", key])
        return [key, value]
    return serve


def _bpop(ctx, argv, left: bool):
    deadline = parse_timeout(argv[-1])
    return serve_or_block(ctx, argv[1:-1], deadline, deque, _serve_pop(left))


@command("blpop", -3, "write noscript blocking", keys=(1, -2, 1), group=G)
def blpop(ctx, argv):
    return _bpop(ctx, argv, True)


@command("brpop", -3, "write noscript blocking", keys=(1, -2, 1), group=G)
def brpop(ctx, argv):
    return _bpop(ctx, argv, False)


def _blmove(ctx, src_key, dst_key, from_left, to_left, deadline):
    def serve(client, key, src):
        dst = client.db.get(dst_key)
        if dst is not None and dst.__class__ is not deque:
            return ErrorReply(errors.WRONGTYPE)
        value = _move(client, src_key, src, dst_key, dst, from_left, to_left)
        client.propagate([b"LMOVE", src_key, dst_key, _side(from_left), _side(to_left)])
        return value

    # Inside MULTI or a script an empty source answers a null bulk string;
    # a real timeout answers a null array (Redis's replies).
    return serve_or_block(ctx, [src_key], deadline, deque, serve, unblocked_reply=None)


@command("blmove", 6, "write denyoom noscript blocking", keys=(1, 2, 1), group=G)
def blmove(ctx, argv):
    from_left = _where(argv[3])
    to_left = _where(argv[4])
    deadline = parse_timeout(argv[5])
    return _blmove(ctx, argv[1], argv[2], from_left, to_left, deadline)


@command("brpoplpush", 4, "write denyoom noscript blocking", keys=(1, 2, 1), group=G)
def brpoplpush(ctx, argv):
    deadline = parse_timeout(argv[3])
    return _blmove(ctx, argv[1], argv[2], False, True, deadline)


@command("blmpop", -5, "write blocking", key_finder=_bl_keys, group=G)
def blmpop(ctx, argv):
    keys, end, count = parse_mpop(argv, 2)
    deadline = parse_timeout(argv[1])
    return serve_or_block(ctx, keys, deadline, deque, _mpop_serve(end == 0, count))


__all__ = ["parse_timeout", "block_client", "parse_mpop", "first_nonempty", "serve_first",
           "serve_or_block", "clamp_range"]
