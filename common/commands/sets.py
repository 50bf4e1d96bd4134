"""Set commands: SADD SREM SCARD SISMEMBER SMISMEMBER SMEMBERS SRANDMEMBER SPOP
SMOVE SINTER SINTERCARD SUNION SDIFF SINTERSTORE SUNIONSTORE SDIFFSTORE SSCAN.

A set is a Python `set` of bytes. Two helpers here are shared with the other
collection families (hashes.py and zsets.py import them):

* `sampler`: random picks. A Python set or dict has no random access, so
  `random.choice(list(s))` costs O(n) per call. For big collections the
  sampler keeps, per collection, a list of its members (8 bytes each) that is
  maintained incrementally: an addition is appended, a removal is only
  recorded in a small "dead" set; a pick draws a random slot and retries on
  a dead one (removing it from the list by swapping it with the last slot).
  Each live member is in the list exactly once, so picks stay uniform, and
  a pick costs O(1) on average while fewer than half the slots are dead
  (beyond that the list is rebuilt). The list is checked against the
  collection's size on every use and rebuilt if they disagree, and a pick is
  checked for membership, so a change made behind the sampler's back costs
  a rebuild, never a wrong answer. Small collections (under
  `Sampler.THRESHOLD`) are simply copied. At most `Sampler.CAPACITY` lists
  are kept; a server cron job drops those of deleted or idle collections.
* `scan_command`: the HSCAN/SSCAN/ZSCAN argument handling and reply around
  common/scan.py's Scanner, with Redis's "small encodings are returned whole
  with cursor 0" rule.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from itertools import islice

from hakv.common import errors
from hakv.common.commands.table import command
from hakv.common.glob import compile_glob
from hakv.common.numbers import LLONG_MIN, get_int, parse_int
from hakv.common.resp import ErrorReply
from hakv.common.scan import Scanner, parse_cursor

G = "set"
K1 = (1, 1, 1)

COUNT_RANGE = ("ERR value is out of range, value must between -9223372036854775807 and "
               "9223372036854775807")
MUST_BE_POSITIVE = "ERR value is out of range, must be positive"


# ---------------------------------------------------------------- random picks


class _Index:
    __slots__ = ("obj", "items", "dead", "used", "db", "key")

    def __init__(self, obj, db, key):
        self.obj = obj  # a strong reference: id(obj) cannot be reused meanwhile
        self.items = list(obj)
        self.dead: set = set()
        self.used = time.monotonic()
        self.db = db  # where obj lives, to notice when it is deleted or replaced
        self.key = key


class Sampler:
    """Uniform random members of sets and dicts (fields) without copying
    them on every call; see the module docstring."""

    THRESHOLD = 1024  # below this, copying the collection is cheaper
    CAPACITY = 8  # collections indexed at once (LRU)
    MAX_IDLE = 60.0  # seconds; an index unused that long is dropped

    def __init__(self):
        self.entries: OrderedDict = OrderedDict()  # id(obj) -> _Index

    def cron(self) -> None:
        """Drop indexes of collections deleted or replaced since (so they are
        not kept alive) and of idle ones. Runs in the server's cron."""
        now = time.monotonic()
        for oid, entry in list(self.entries.items()):
            if (now - entry.used > self.MAX_IDLE
                    or (entry.db is not None and entry.db.data.get(entry.key) is not entry.obj)):
                del self.entries[oid]

    # -- keeping indexes up to date (cheap no-ops for unindexed collections)

    def added(self, obj, member) -> None:
        """`member` was just added to `obj` (it was not there before)."""
        entries = self.entries
        if entries:
            entry = entries.get(id(obj))
            if entry is not None and entry.obj is obj:
                if member in entry.dead:
                    entry.dead.discard(member)
                else:
                    entry.items.append(member)

    def removed(self, obj, member) -> None:
        """`member` was just removed from `obj`."""
        entries = self.entries
        if entries:
            entry = entries.get(id(obj))
            if entry is not None and entry.obj is obj:
                entry.dead.add(member)

    def forget(self, obj) -> None:
        if self.entries:
            entry = self.entries.get(id(obj))
            if entry is not None and entry.obj is obj:
                del self.entries[id(obj)]

    # -- picks

    def _index(self, obj, owner) -> _Index:
        """The index of obj, built if needed. owner: (ctx, key) of the
        command, so the index can be dropped once the key no longer holds obj."""
        entries = self.entries
        now = time.monotonic()
        while entries:
            oldest = next(iter(entries.values()))
            if now - oldest.used < self.MAX_IDLE:
                break
            entries.popitem(last=False)
        key = id(obj)
        entry = entries.get(key)
        if (entry is None or entry.obj is not obj
                or len(entry.items) - len(entry.dead) != len(obj)
                or len(entry.dead) * 2 > len(entry.items)):
            db = where = None
            if owner is not None:
                ctx, where = owner
                db = ctx.db
                if self.cron not in ctx.server.cron_jobs:
                    ctx.server.cron_jobs.append(self.cron)
            entry = _Index(obj, db, where)
            entries[key] = entry
            while len(entries) > self.CAPACITY:
                entries.popitem(last=False)
        else:
            entries.move_to_end(key)
        entry.used = now
        return entry

    def choice(self, obj, owner=None):
        """One uniformly random member of a non-empty set or dict."""
        n = len(obj)
        if n < self.THRESHOLD:
            return next(islice(iter(obj), random.randrange(n), None))
        entry = self._index(obj, owner)
        items, dead = entry.items, entry.dead
        while items:
            i = random.randrange(len(items))
            member = items[i]
            if member in obj and (not dead or member not in dead):
                return member
            # Drop the dead slot: swap in the last one.
            last = items.pop()
            if i < len(items):
                items[i] = last
            dead.discard(member)
        # Only reachable after changes behind the sampler's back.
        self.forget(obj)
        return next(islice(iter(obj), random.randrange(n), None))

    def pop(self, s: set, owner=None):
        """Remove and return a uniformly random member of a non-empty set."""
        if len(s) < self.THRESHOLD:
            member = self.choice(s)
            s.remove(member)
            self.removed(s, member)
            return member
        entry = self._index(s, owner)
        items, dead = entry.items, entry.dead
        while True:
            if not items:  # only after changes behind the sampler's back
                self.forget(s)
                entry = self._index(s, owner)
                items, dead = entry.items, entry.dead
            i = random.randrange(len(items))
            member = items[i]
            last = items.pop()
            if i < len(items):
                items[i] = last
            if (dead and member in dead) or member not in s:
                dead.discard(member)
                continue
            s.remove(member)
            return member

    def sample(self, obj, k: int, owner=None) -> list:
        """k distinct random members, 0 <= k <= len(obj), in random order."""
        if len(obj) < self.THRESHOLD:
            return random.sample(list(obj), k)
        picked = random.sample(self._live_items(obj, owner), k)
        if any(m not in obj for m in picked):  # changed behind the sampler's back
            self.forget(obj)
            picked = random.sample(self._live_items(obj, owner), k)
        return picked

    def _live_items(self, obj, owner) -> list:
        """The index's list with the dead slots removed."""
        entry = self._index(obj, owner)
        if entry.dead:
            entry.items = [m for m in entry.items if m not in entry.dead]
            entry.dead = set()
        return entry.items

    def choices(self, obj, k: int, owner=None) -> list:
        """k random members with repetition (negative counts)."""
        if len(obj) < self.THRESHOLD:
            return random.choices(list(obj), k=k)
        return random.choices(self._live_items(obj, owner), k=k)


sampler = Sampler()


# Redis builds the reply of a negative count whatever its size, and dies of
# it for absurd ones (SRANDMEMBER s -9223372036854775807 crashes 7.0); hakv
# refuses counts no reply could ever hold.
MAX_REPLY_ELEMENTS = 2**31 - 1


def parse_rand_count(raw: bytes) -> int:
    """SRANDMEMBER / HRANDFIELD / ZRANDMEMBER count: -LONG_MAX..LONG_MAX."""
    count = get_int(raw)
    if count == LLONG_MIN:
        raise ErrorReply(COUNT_RANGE)
    if count < -MAX_REPLY_ELEMENTS:
        raise ErrorReply("ERR value is out of range")
    return count


# ---------------------------------------------------------------- SCAN family


def scanner_of(server) -> Scanner:
    """The server's cursor state, shared by SCAN, HSCAN, SSCAN and ZSCAN."""
    scanner = getattr(server, "scanner", None)
    if scanner is None:
        scanner = server.scanner = Scanner()
    return scanner


def scan_command(ctx, argv, cls, collection_of, compact, reply_items):
    """HSCAN / SSCAN / ZSCAN key cursor [MATCH pattern] [COUNT count].

    collection_of(value) -> the dict or set to iterate; compact(value) ->
    True when Redis would hold the value in a small encoding (listpack,
    intset), which it returns whole with cursor 0 whatever the cursor;
    reply_items(value, elements) -> the flat reply list."""
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
    collection = collection_of(value)
    if compact(value):
        cursor, elements = 0, list(collection)
    else:
        cursor, elements = scanner_of(ctx.server).scan(collection, cursor, count)
    if match is not None:
        elements = [e for e in elements if match(e)]
    return [b"%d" % cursor, reply_items(value, elements)]


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
        if added:
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


@command("smembers", 2, "readonly", keys=K1, group=G)
def smembers(ctx, argv):
    s = ctx.db.get_typed(argv[1], set)
    return set() if s is None else set(s)


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
    count = get_int(argv[2], MUST_BE_POSITIVE)
    if count < 0:
        raise ErrorReply(MUST_BE_POSITIVE)
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
    return _intersection(_sets_for(ctx, argv[1:]))


@command("sunion", -2, "readonly", keys=(1, -1, 1), group=G)
def sunion(ctx, argv):
    return _union(_sets_for(ctx, argv[1:]))


@command("sdiff", -2, "readonly", keys=(1, -1, 1), group=G)
def sdiff(ctx, argv):
    return _difference(_sets_for(ctx, argv[1:]))


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
    return scan_command(ctx, argv, set, _identity, lambda s: _is_intset(s, settings),
                        _members_reply)


def _identity(value):
    return value


def _members_reply(value, elements):
    return elements


__all__ = ["sampler", "Sampler", "scan_command", "scanner_of", "numkeys_finder",
           "parse_rand_count", "COUNT_RANGE", "MUST_BE_POSITIVE"]
