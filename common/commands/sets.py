"""Set commands: SADD SREM SCARD SISMEMBER SMISMEMBER SMEMBERS SRANDMEMBER SPOP
SMOVE SINTER SINTERCARD SUNION SDIFF SINTERSTORE SUNIONSTORE SDIFFSTORE SSCAN.

A set is a Python `set` of bytes. Random picks (SRANDMEMBER, SPOP) go
through common/types/sampler.py, which every change here keeps informed;
SSCAN is common/scan.py's `collection_scan`. `numkeys_finder` (the key
positions of `CMD numkeys key ...` commands) is shared with lists.py and
zsets.py.
"""

from __future__ import annotations

import random

from hakv.common import errors
from hakv.common.commands.table import command
from hakv.common.numbers import get_count, get_int, parse_int, parse_rand_count
from hakv.common.resp import ErrorReply
from hakv.common.scan import collection_scan
from hakv.common.types.sampler import sampler

G = "set"
K1 = (1, 1, 1)

# ---------------------------------------------------------------- helpers


def _notify(ctx, event: bytes, key: bytes) -> None:
    ctx.server.keyspace.notify(ctx.db, "s", event, key)


def _delete_if_empty(ctx, key: bytes, s: set) -> None:
    """The empty-key rule: a set emptied by a command no longer exists."""
    if not s:
        sampler.forget(s)
        ctx.db.delete(key)
        ctx.server.keyspace.notify(ctx.db, "g", b"del", key)


def _sets_for(ctx, keys) -> list:
    """The sets at keys, None for missing ones; WRONGTYPE if any is not a set."""
    get = ctx.db.get_typed
    return [get(key, set) for key in keys]


def _store(ctx, dst: bytes, result: set, event: bytes) -> int:
    """Store the result of an *STORE command: an empty result deletes dst."""
    db = ctx.db
    server = ctx.server
    if result:
        db.set(dst, result)
        server.keyspace.notify(db, "s", event, dst)
        server.dirty += 1
        return len(result)
    if db.delete(dst):
        server.dirty += 1
        server.keyspace.notify(db, "g", b"del", dst)
    return 0


def _is_intset(s: set, settings) -> bool:
    """Would Redis 7.0 keep this set as an intset (SSCAN returns it whole)?"""
    if len(s) > settings["set-max-intset-entries"]:
        return False
    for m in s:
        if parse_int(m) is None:
            return False
    return True


# ---------------------------------------------------------------- commands


@command("sadd", -3, "write denyoom fast", keys=K1, group=G)
def sadd(ctx, argv):
    db = ctx.db
    key = argv[1]
    s = db.get_typed(key, set)
    if s is None:
        s = set(argv[2:])
        db.set(key, s)
        added = len(s)
    else:
        before = len(s)
        if sampler.entries:
            for m in argv[2:]:
                if m not in s:
                    s.add(m)
                    sampler.added(s, m)
        else:
            s.update(argv[2:])
        added = len(s) - before
        if added and db.watched:  # (modified()'s own test: no call per write)
            db.modified(key)
    if added:
        ctx.server.dirty += added
        ctx.server.keyspace.notify(db, "s", b"sadd", key)
    return added


@command("srem", -3, "write fast", keys=K1, group=G)
def srem(ctx, argv):
    db = ctx.db
    key = argv[1]
    s = db.get_typed(key, set)
    if s is None:
        return 0
    removed = 0
    for m in argv[2:]:
        if m in s:
            s.remove(m)
            sampler.removed(s, m)
            removed += 1
            if not s:
                break
    if removed:
        db.modified(key)
        ctx.server.dirty += removed
        _notify(ctx, b"srem", key)
        _delete_if_empty(ctx, key, s)
    return removed


@command("scard", 2, "readonly fast", keys=K1, group=G)
def scard(ctx, argv):
    s = ctx.db.get_typed(argv[1], set)
    return 0 if s is None else len(s)


@command("sismember", 3, "readonly fast", keys=K1, group=G)
def sismember(ctx, argv):
    s = ctx.db.get_typed(argv[1], set)
    return 1 if s is not None and argv[2] in s else 0


@command("smismember", -3, "readonly fast", keys=K1, group=G)
def smismember(ctx, argv):
    s = ctx.db.get_typed(argv[1], set)
    if s is None:
        return [0] * (len(argv) - 2)
    return [1 if m in s else 0 for m in argv[2:]]


class _IntsetReply(set):
    """A set reply that iterates in ascending numeric order. Redis keeps a small
    all-integer set as a sorted intset, so SMEMBERS, SINTER, SUNION and SDIFF
    answer such sets sorted; clients see the same order from us."""

    __slots__ = ("_order",)

    def __init__(self, members):
        super().__init__(members)
        self._order = sorted(members, key=int)

    def __iter__(self):
        return iter(self._order)


def _members_out(ctx, s: set | None) -> set:
    if not s:
        return set()
    if _is_intset(s, ctx.server.settings):
        return _IntsetReply(s)
    return set(s)


@command("smembers", 2, "readonly", keys=K1, group=G)
def smembers(ctx, argv):
    return _members_out(ctx, ctx.db.get_typed(argv[1], set))


@command("srandmember", -2, "readonly", keys=K1, group=G)
def srandmember(ctx, argv):
    if len(argv) > 3:
        raise ErrorReply(errors.SYNTAX)
    if len(argv) == 2:
        s = ctx.db.get_typed(argv[1], set)
        return None if not s else sampler.choice(s, (ctx, argv[1]))
    count = parse_rand_count(argv[2])
    s = ctx.db.get_typed(argv[1], set)
    if not s or count == 0:
        return []
    if count < 0:
        return sampler.choices(s, -count, (ctx, argv[1]))
    if count >= len(s):
        return list(s)
    return sampler.sample(s, count, (ctx, argv[1]))


@command("spop", -2, "write fast", keys=K1, group=G)
def spop(ctx, argv):
    db = ctx.db
    key = argv[1]
    server = ctx.server
    if len(argv) == 2:
        s = db.get_typed(key, set)
        if not s:
            return None
        member = sampler.pop(s, (ctx, key))
        db.modified(key)
        server.dirty += 1
        _notify(ctx, b"spop", key)
        ctx.propagate([b"SREM", key, member])
        _delete_if_empty(ctx, key, s)
        return member
    if len(argv) > 3:
        raise ErrorReply(errors.SYNTAX)
    count = get_count(argv[2])
    s = db.get_typed(key, set)
    if not s or count == 0:
        return set()
    _notify(ctx, b"spop", key)
    if count >= len(s):
        # The whole set: as Redis, propagated as a DEL.
        popped = set(s)
        sampler.forget(s)
        db.delete(key)
        server.dirty += len(popped)
        server.keyspace.notify(db, "g", b"del", key)
        ctx.propagate([b"DEL", key])
        return popped
    if count * 4 > len(s):
        # Popping a large part: choosing what stays is as cheap, and the
        # sampler's index would only fill with dead slots.
        sampler.forget(s)
        popped = random.sample(list(s), count)
        s.difference_update(popped)
    else:
        popped = sampler.sample(s, count, (ctx, key))
        for m in popped:
            s.remove(m)
            sampler.removed(s, m)
    db.modified(key)
    server.dirty += count
    for i in range(0, len(popped), 1024):
        ctx.propagate([b"SREM", key] + popped[i:i + 1024])
    return set(popped)


@command("smove", 4, "write fast", keys=(1, 2, 1), group=G)
def smove(ctx, argv):
    db = ctx.db
    src_key, dst_key, member = argv[1], argv[2], argv[3]
    src = db.get(src_key)
    dst = db.get(dst_key)
    if src is None:
        return 0
    if src.__class__ is not set or (dst is not None and dst.__class__ is not set):
        raise ErrorReply(errors.WRONGTYPE)
    if src is dst:
        return 1 if member in src else 0
    if member not in src:
        return 0
    server = ctx.server
    src.remove(member)
    sampler.removed(src, member)
    _notify(ctx, b"srem", src_key)
    _delete_if_empty(ctx, src_key, src)
    db.modified(src_key)
    server.dirty += 1
    if dst is None:
        db.set(dst_key, {member})
        server.dirty += 1
        _notify(ctx, b"sadd", dst_key)
    elif member not in dst:
        dst.add(member)
        sampler.added(dst, member)
        db.modified(dst_key)
        server.dirty += 1
        _notify(ctx, b"sadd", dst_key)
    return 1


def _intersection(sets: list) -> set:
    if not sets or any(s is None for s in sets):
        return set()
    ordered = sorted(sets, key=len)
    return ordered[0].intersection(*ordered[1:])


def _union(sets: list) -> set:
    return set().union(*[s for s in sets if s is not None])


def _difference(sets: list) -> set:
    first = sets[0]
    if first is None:
        return set()
    return first.difference(*[s for s in sets[1:] if s is not None])


@command("sinter", -2, "readonly", keys=(1, -1, 1), group=G)
def sinter(ctx, argv):
    return _members_out(ctx, _intersection(_sets_for(ctx, argv[1:])))


@command("sunion", -2, "readonly", keys=(1, -1, 1), group=G)
def sunion(ctx, argv):
    return _members_out(ctx, _union(_sets_for(ctx, argv[1:])))


@command("sdiff", -2, "readonly", keys=(1, -1, 1), group=G)
def sdiff(ctx, argv):
    return _members_out(ctx, _difference(_sets_for(ctx, argv[1:])))


@command("sinterstore", -3, "write denyoom", keys=(1, -1, 1), group=G)
def sinterstore(ctx, argv):
    return _store(ctx, argv[1], _intersection(_sets_for(ctx, argv[2:])), b"sinterstore")


@command("sunionstore", -3, "write denyoom", keys=(1, -1, 1), group=G)
def sunionstore(ctx, argv):
    return _store(ctx, argv[1], _union(_sets_for(ctx, argv[2:])), b"sunionstore")


@command("sdiffstore", -3, "write denyoom", keys=(1, -1, 1), group=G)
def sdiffstore(ctx, argv):
    return _store(ctx, argv[1], _difference(_sets_for(ctx, argv[2:])), b"sdiffstore")


def numkeys_finder(argv) -> list:
    """Keys of `CMD numkeys key ...` commands (SINTERCARD, LMPOP, ZINTER ...)."""
    n = parse_int(argv[1]) if len(argv) > 1 else None
    if n is None or n <= 0:
        return []
    return list(range(2, min(2 + n, len(argv))))


@command("sintercard", -3, "readonly", key_finder=numkeys_finder, group=G)
def sintercard(ctx, argv):
    numkeys = parse_int(argv[1])
    if numkeys is None or numkeys <= 0:
        raise ErrorReply("ERR numkeys should be greater than 0")
    if numkeys > len(argv) - 2:
        raise ErrorReply("ERR Number of keys can't be greater than number of args")
    limit = 0
    i = 2 + numkeys
    while i < len(argv):
        if argv[i].lower() == b"limit" and i + 1 < len(argv):
            limit = get_int(argv[i + 1], "ERR LIMIT can't be negative")
            if limit < 0:
                raise ErrorReply("ERR LIMIT can't be negative")
            i += 2
        else:
            raise ErrorReply(errors.SYNTAX)
    sets = _sets_for(ctx, argv[2:2 + numkeys])
    if any(s is None for s in sets):
        return 0
    ordered = sorted(sets, key=len)
    smallest, others = ordered[0], ordered[1:]
    if not limit or limit >= len(smallest):
        return len(smallest.intersection(*others))
    found = 0
    for m in smallest:
        for s in others:
            if m not in s:
                break
        else:
            found += 1
            if found >= limit:
                break
    return found


@command("sscan", -3, "readonly", keys=K1, group=G)
def sscan(ctx, argv):
    settings = ctx.server.settings

    def whole(s):
        # A set Redis holds as an intset is answered whole.
        return list(s) if _is_intset(s, settings) else None

    return collection_scan(ctx, argv, set, whole, _members_reply)


def _members_reply(value, elements, is_whole):
    return elements


__all__ = ["numkeys_finder"]
