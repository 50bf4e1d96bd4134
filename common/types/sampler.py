"""Uniform random members of sets and hashes (SRANDMEMBER, SPOP,
HRANDFIELD) without copying the collection on every call.

A Python set or dict has no random access, so `random.choice(list(s))` costs
O(n) per call. For big collections the sampler keeps, per collection, a list
of its members (8 bytes each) that is maintained incrementally: an addition
is appended, a removal is only recorded in a small "dead" set; a pick draws a
random slot and retries on a dead one (removing it from the list by swapping
it with the last slot). Each live member is in the list exactly once, so
picks stay uniform, and a pick costs O(1) on average while fewer than half
the slots are dead (beyond that the list is rebuilt). The list is checked
against the collection's size on every use and rebuilt if they disagree, and
a pick is checked for membership, so a change made behind the sampler's back
costs a rebuild, never a wrong answer. Small collections (under
`Sampler.THRESHOLD`) are simply copied. At most `Sampler.CAPACITY` lists are
kept; a server cron job drops those of deleted or idle collections.

Sorted sets do not need it: ZSet has random access by rank (`z.at`).

Commands that change an indexed collection tell the sampler (`added`,
`removed`, `forget`: cheap no-ops while nothing is indexed). The module-wide
`sampler` is the one instance the commands share.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from itertools import islice

__all__ = ["Sampler", "sampler"]


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
