"""Used memory, maxmemory and the eviction policies.

How used memory is counted
--------------------------
`used_memory` is what the keyspace takes in this process, kept up to date
incrementally rather than by walking the keyspace:

* Every write command is measured around its handler (dispatch.call calls
  `before` and `after`): the keys it names (the command table's key
  positions) are sized before and after, and the difference is added to the
  database's total. The same happens for a blocked client served later
  (server.handle_ready_keys), for keys that expire (keyspace `on_expired`) and
  for the keys evicted here. FLUSHDB / FLUSHALL / SWAPDB / MOVE / COPY ... DB
  are handled by name.
* A key's size is memsize's: the dict slot, the key, the value object, its
  elements, plus the expiry record when it has a TTL. A string is measured
  exactly (STRING_ENTRY + two len() calls). A collection is its container (exact)
  plus `len * average element size`, the average sampled from 16 elements
  and cached per key until the length halves or doubles or 32 writes went by
  -- so HSET on a million-field hash costs O(1), not a walk. It is sampled
  again only when sizing a key after a write, never for the size before one
  (that is what was accounted), and the size a write leaves a collection at
  is kept for the next write to it (Memory.last): one measure per write.
* Two kinds of write skip the measuring. SET key value (no options) is
  accounted from its arguments before it runs: the key will hold that
  string, without a TTL. And further writes to the collection the last
  write left (LPUSH after LPUSH on one list) run unmeasured while nothing
  needs each write's size (no maxmemory, no access records, no TTL on the
  key): the key is sized again once, when anything reads the totals or
  another key's write is measured (Memory.unsettled, Memory._settle). The `total`
  and `nkeys` properties and used_memory() settle first, so the totals are
  exact whenever read.
* With an LRU/LFU policy each key also has an access record
  (memsize.ACCESS_ENTRY_LRU / _LFU bytes per key).
* Anything that changes the keyspace behind these hooks (loading an RDB,
  a full resync, DEBUG RELOAD) shows up as a key count that differs from
  ours, or a database dict that was replaced; the cron then recounts that
  database once, walking it.

`used_memory_startup` is the empty keyspace's own structures. The Python
interpreter, the code and the I/O buffers are not counted: they are in
used_memory_rss, and maxmemory bounds the data, as it does in Redis.

Eviction
--------
Before a write (a write check, first in server.write_checks), if used memory
is above maxmemory, keys are evicted by the policy until it is a little
below (1/1024 of maxmemory: see SLACK_SHIFT; each round bounded in time by
maxmemory-eviction-tenacity; the cron carries on).
If nothing can be evicted (noeviction, or a volatile-* policy without keys
with a TTL), commands flagged denyoom get the OOM error. Each eviction is
propagated as DEL (UNLINK with lazyfree-lazy-eviction), notified as
`evicted`, and counted in INFO's evicted_keys. A replica never evicts
(replica-ignore-maxmemory): its primary's DELs keep it in step, and the
primary link's commands are never refused.

Choosing keys: a Python dict has no random access, so each database keeps a
snapshot list of its keys (or of its keys with a TTL for volatile-*), taken
again when many of them are gone or the dict grew by a quarter; random
picks come from it. LRU / LFU / TTL follow Redis: every round samples
maxmemory-samples keys per database into a pool of the 16 best candidates
and evicts the best one still present -- except allkeys-lru, which keeps
each database's keys in access order (an OrderedDict) and evicts from its
front, with no sampling. LRU uses the time of the last access
(Database.get's touch hook, and every write) from a clock the cron and each
eviction round read (as Redis caches its LRU clock), LFU Redis's logarithmic
counter with decay (lfu-log-factor, lfu-decay-time), TTL the nearest deadline.
"""

from __future__ import annotations

import random
import sys
import time
from bisect import insort
from collections import OrderedDict, deque

from hakv.common import errors
from hakv.common.memsize import (ACCESS_ENTRY_LFU, ACCESS_ENTRY_LRU, DICT_SLOT, EXPIRE_ENTRY,
                                 GC_HEADER, ZSET_OBJECT, average_element, container_size,
                                 deque_sizeof as _deque_sizeof, dict_sizeof as _dict_sizeof,
                                 elements_size, set_sizeof as _set_sizeof, value_size)
from hakv.common.resp import ErrorReply

_getsizeof = sys.getsizeof
_monotonic = time.monotonic
_perf_counter = time.perf_counter
_INF = float("inf")

# A string key: its dict slot, the key and the value, both bytes. A bytes
# object takes its length plus a fixed header (sys.getsizeof(b"") + len):
# len() is ten times cheaper than getsizeof, and strings are sized per write.
STRING_ENTRY = DICT_SLOT + 2 * _getsizeof(b"")
KEY_ENTRY = DICT_SLOT + _getsizeof(b"")  # the dict slot and a key's bytes header
POOL_SIZE = 16
# A round evicts until used memory is this far below maxmemory (1/1024 of
# it), not merely under it: under a steady write load the next few dozen
# writes then find room without starting a round of their own. Redis stops
# right under the limit; its rounds cost less than ours to start.
SLACK_SHIFT = 10
SMALL_COLLECTION = 8  # measured exactly; bigger ones from a cached average
AVERAGE_SAMPLES = 16
RESAMPLE_AFTER = 32
# Averages are kept in fixed point (1/256 byte): `avg * n >> AVERAGE_SHIFT`
# is integer arithmetic, a third of int(avg * n)'s cost per collection write.
AVERAGE_SHIFT = 8
LFU_INIT_VAL = 5
_ONLY_BYTES = {bytes}  # the value types of a database of strings only (_walk)
LRU_POLICIES = ("allkeys-lru", "volatile-lru")
LFU_POLICIES = ("allkeys-lfu", "volatile-lfu")


def _slack(maxmemory: int) -> int:
    return maxmemory >> SLACK_SHIFT


def _cross_db_target(server, argv, at: int):
    """The database a MOVE / COPY ... DB argument names, or None."""
    try:
        n = int(argv[at])
    except (ValueError, IndexError):
        return None
    ks = server.keyspace
    return ks[n] if 0 <= n < len(ks) else None


def _measure_plan(cmd) -> tuple:
    """(position of the only key, or 0; the command's name when it needs
    more than its keys measured)."""
    name = cmd.fullname
    special = name if name in ("move", "copy") or name in _WHOLE_DB_WRITES else None
    if (special is None and cmd.key_finder is None and cmd.first_key > 0
            and cmd.last_key == cmd.first_key):
        return cmd.first_key, None
    return 0, special


def _average(value, n: int) -> list:
    """A collection's `averages` record, sampled now: valid while it has
    between half and twice its n elements, for RESAMPLE_AFTER uses."""
    return [int(average_element(value, AVERAGE_SAMPLES) * (1 << AVERAGE_SHIFT)), n // 2, 2 * n, 0]


def _copy_target(server, argv):
    for i in range(3, len(argv) - 1):
        if argv[i].lower() == b"db":
            return _cross_db_target(server, argv, i + 1)
    return None


class _NoClient:
    """The client after() is given when settling (see Memory._settle)."""

    block = None


_NO_CLIENT = _NoClient()


class _TimeBox:
    """One eviction round's time limit (maxmemory-eviction-tenacity). Most
    rounds evict one key, so the clock is read only every 16 evictions."""

    __slots__ = ("memory", "n", "deadline")

    def __init__(self, memory):
        self.memory = memory
        self.n = 0
        self.deadline = None

    def spent(self) -> bool:
        """Count one eviction; whether the round must stop now."""
        self.n += 1
        if self.n & 15:
            return False
        if self.deadline is None:
            limit = self.memory._time_limit()
            if limit is not None:
                self.deadline = time.perf_counter() + limit
            return False
        return time.perf_counter() > self.deadline


class Memory:
    """server.memory / server.memory_tracker: accounting and eviction."""

    def __init__(self, server):
        self.server = server
        self.settings = server.settings
        ks = self.ks = server.keyspace
        n = len(ks)
        self.db_bytes = [0] * n
        self.db_keys = [0] * n
        # The totals (the `total` and `nkeys` properties settle first: see
        # `unsettled`).
        self._total = 0
        self._nkeys = 0
        self.seen = [db.data for db in ks.dbs]
        # (dbid, key) -> _average(): [average element bytes << AVERAGE_SHIFT,
        # fewest elements, most elements it stands for, uses]
        self.averages: dict = {}
        self.startup = sum(_getsizeof(db.data) + _getsizeof(db.expires) for db in ks.dbs)
        self.peak = self.startup
        # The write being measured: a list of (db, key), or before()'s
        # single-key tuple (db, key, size, argv, None).
        self.measuring = None
        # The collection the last single-key write left, as after() sized
        # it: (db, key, value, size, its `averages` record or None). The
        # next write to the same key finds the same object there and takes
        # that size as its `before` instead of measuring again (what is
        # accounted for the key is that size), and after() that record.
        # Dropped whenever the key's accounted size may change elsewhere.
        self.last = None
        # Writes to `last`'s collection that before() let run unmeasured
        # (see before()): its accounted size is still `last`'s until
        # _settle() sizes it again. Whatever reads the totals settles first.
        self.unsettled = False
        self._plans: dict = {}  # Command -> _measure_plan(cmd)
        self._single: dict = {}  # Command -> its plan's key position (0: not one key)
        # LRU / LFU access records, per database: key -> monotonic seconds
        # (LRU) or (minutes << 8 | counter) (LFU). None when not tracked.
        self.access: list | None = None
        self.lru: list | None = None  # `access` in LRU mode (the write path's test)
        # The LRU clock: monotonic seconds, read by the cron and at each
        # eviction round rather than per access (a clock read and a float
        # per write). Redis's LRU clock is likewise cached, at 1 s resolution.
        self.clock = _monotonic()
        self.mode = None
        self.access_entry = 0  # bytes of one key's access record (0: not tracked)
        self.lru_db = 0  # where _pick_least_recent found the last key
        self.epoch = _monotonic()
        self.snapshots: dict = {}  # (dbid, volatile) -> [source dict, keys list, dead]
        self.pool: list = []  # (score, dbid, key), sorted: the best candidate last
        self.pool_members: set = set()  # (dbid, key) in the pool
        self.next_db = 0
        # When an eviction round last ended with memory still over the
        # limit (INFO current/total_eviction_exceeded_time).
        self.exceeded_since: float | None = None
        self.exceeded_total = 0.0
        self.stat_evicted = 0
        server.stat_evicted_keys = 0
        self._read_settings()

    # ------------------------------------------------------------ sizes

    def size_of(self, db, key: bytes, fresh: bool = False) -> int:
        """The key's accounted size: a collection's average element is the
        one its last measure used (so a key's size before a write is what
        was added for it). fresh: the size after a write, which may sample
        the average again (see _collection_size)."""
        value = db.data.get(key)
        if value is None:
            return 0
        if value.__class__ is bytes:
            size = STRING_ENTRY + len(key) + len(value)
        else:
            size = self._collection_size(db.id, key, value, not fresh)
        expires = db.expires
        if expires and key in expires:
            size += EXPIRE_ENTRY
        return size

    def _collection_size(self, dbid: int, key: bytes, value, keep: bool = False) -> int:
        """Container + len * average element. The average is sampled again
        (a new estimate) only when sizing a key after a change (keep=False);
        sizes before a change or of a key going away (keep=True) use the
        average as it is, else the difference would count the new estimate
        as a change of the data and the totals would drift from a walk."""
        # `own`: getsizeof of the container(s) less one GC header, from the
        # types' own __sizeof__ (memsize.GC_HEADER: a third of the cost).
        cls = value.__class__
        if cls is set:
            n = len(value)
            own = _set_sizeof(value)
        elif cls is dict:
            n = len(value)
            own = _dict_sizeof(value)
        elif cls is deque:
            n = len(value)
            own = _deque_sizeof(value)
        else:  # ZSet: its member -> score table (and no Python-level __len__ call)
            members = value.dict
            n = len(members)
            own = ZSET_OBJECT + _dict_sizeof(members)
        if n <= SMALL_COLLECTION:
            return container_size(key, value) + elements_size(value)
        k = (dbid, key)
        entry = self.averages.get(k)
        if entry is None or not keep and (entry[3] >= RESAMPLE_AFTER
                                          or not entry[1] <= n <= entry[2]):
            entry = self.averages[k] = _average(value, n)
        entry[3] += 1
        # container_size, inlined (it runs per collection write): a bytes
        # key's getsizeof is its length plus the bytes header.
        return KEY_ENTRY + GC_HEADER + len(key) + own + (entry[0] * n >> AVERAGE_SHIFT)

    @property
    def total(self) -> int:
        """Bytes of the keyspace (used_memory_dataset)."""
        if self.unsettled:
            self._settle()
        return self._total

    @property
    def nkeys(self) -> int:
        if self.unsettled:
            self._settle()
        return self._nkeys

    def used_memory(self) -> int:
        if self.unsettled:
            self._settle()
        return self.startup + self._total + self._nkeys * self.access_entry

    def dataset(self) -> int:
        return self.total

    def _add(self, dbid: int, nbytes: int, nkeys: int) -> None:
        self.db_bytes[dbid] += nbytes
        self.db_keys[dbid] += nkeys
        self._total += nbytes
        self._nkeys += nkeys

    # ------------------------------------------------------------ measuring writes

    def before(self, client, cmd, argv):
        """Sizes of the keys a write names, before it runs (dispatch.call)."""
        single = self._single.get(cmd)
        if single is None:
            single = self._plan(cmd)[0]
            if cmd.fullname == "set":
                single = self._single[cmd] = -1
        if single < 0:  # SET (see _set_plain), with options: as any one-key write
            if len(argv) == 3:
                key = argv[1]
                db = client.db
                old_value = db.data.get(key)
                last = self.last
                if (last is None or last[1] != key) and self.access is None:
                    # _set_plain's common cases, inlined: a new key or a
                    # string replaced, and no access record to keep.
                    if old_value is None:
                        delta = STRING_ENTRY + len(key) + len(argv[2])
                        self.db_keys[db.id] += 1
                        self._nkeys += 1
                    elif old_value.__class__ is bytes:
                        delta = len(argv[2]) - len(old_value)
                        if db.expires and key in db.expires:
                            delta -= EXPIRE_ENTRY  # SET drops the TTL
                    else:
                        return self._set_plain(db, key, argv[2])
                    if delta:
                        self.db_bytes[db.id] += delta
                        self._total += delta
                    return None
                return self._set_plain(db, key, argv[2])
            single = 1
        if single and len(argv) > single:
            # The common case, one key: no lists, a 5-tuple that after()
            # recognises by its length (and on_expired as `measuring`).
            key = argv[single]
            db = client.db
            value = db.data.get(key)
            if value is None:
                size = 0
            elif value.__class__ is bytes:  # size_of(db, key), inlined for strings
                size = STRING_ENTRY + len(key) + len(value)
                if db.expires and key in db.expires:
                    size += EXPIRE_ENTRY
            else:
                last = self.last
                if last is not None and last[2] is value and last[1] == key and last[0] is db:
                    # Another write to the collection the last write left.
                    # Unless something needs each write's size (access
                    # records, maxmemory's check before every write) or
                    # the key may expire under the command (its removal
                    # would be accounted on its own), the writes go on
                    # unmeasured until something reads the totals: one
                    # sizing for a run of them (_settle).
                    if self.access is None and not self.maxmemory \
                            and not (db.expires and key in db.expires):
                        self.unsettled = True
                        return None
                    if self.unsettled:
                        self._settle()
                        last = self.last
                    # This key's accounted size (see `last`); after() takes
                    # its average's record from it.
                    measured = self.measuring = (db, key, last[3], argv, last)
                    return measured
                if self.unsettled:
                    self._settle()
                size = self.size_of(db, key)
            if self.unsettled:
                self._settle()  # not `last`'s key: its size above is unaffected
            measured = self.measuring = (db, key, size, argv, None)
            return measured
        return self._before_many(client, cmd, argv)

    def _settle(self) -> None:
        """Account for the writes before() let through to `last`'s
        collection: size the key as it is now (whatever happened to it:
        grown, shrunk, emptied and deleted, replaced), as after() would have
        after the last of them."""
        self.unsettled = False
        last = self.last
        measuring = self.measuring  # a write being measured may be what settles
        self.after(_NO_CLIENT, (last[0], last[1], last[3], None, last))
        self.measuring = measuring

    def _set_plain(self, db, key: bytes, value: bytes) -> None:
        """SET key value, accounted before it runs: what it leaves is known
        from its arguments alone (the key holds value, a string without a
        TTL, whatever it held and whatever else happens; it never fails once
        past the gate), so there is no after() for it: None to dispatch."""
        if self.unsettled:
            self._settle()
        old_value = db.data.get(key)
        new = STRING_ENTRY + len(key) + len(value)
        last = self.last
        if old_value is None:
            old = 0
        elif old_value.__class__ is bytes:
            old = STRING_ENTRY + len(key) + len(old_value)
            if db.expires and key in db.expires:
                old += EXPIRE_ENTRY
        elif last is not None and last[2] is old_value and last[1] == key and last[0] is db:
            old = last[3]  # a collection's accounted size: see `last`
        else:
            old = self.size_of(db, key)
        if last is not None and last[1] == key:
            self.last = None  # not a collection any more: do not keep the old one alive
        if new != old:
            dbid = db.id
            delta = new - old
            self.db_bytes[dbid] += delta
            self._total += delta
            if not old:
                self.db_keys[dbid] += 1
                self._nkeys += 1
        if self.access is not None:
            self._written(db, key, old)
        return None

    def _written(self, db, key: bytes, old: int) -> None:
        """The access record of a key a write leaves (access records kept):
        a new key's, or an access to an existing one."""
        if self.lru is not None:
            acc = self.lru[db.id]
            acc[key] = self.clock
            if old:
                acc.move_to_end(key)  # LRU order: the most recent last (a new key is)
        elif old:
            self._touch_lfu(db, key)  # a write to an existing key is an access
        else:
            self.access[db.id][key] = (self._minutes() << 8) | LFU_INIT_VAL  # new key

    def _plan(self, cmd) -> tuple:
        plan = self._plans[cmd] = _measure_plan(cmd)
        self._single[cmd] = plan[0]
        return plan

    def _before_many(self, client, cmd, argv):
        """before() for a write naming several keys (or none, or a whole
        database): a list of (db, key) and their sizes."""
        if self.unsettled:
            self._settle()
        db = client.db
        plan = self._plans.get(cmd) or self._plan(cmd)
        single, name = plan
        if single:
            pairs = []  # too few arguments for the key: nothing to measure
        else:
            pairs = [(db, k) for k in dict.fromkeys(argv[i] for i in cmd.key_indexes(argv))]
            self.last = None
            if name in ("move", "copy"):
                target = (_cross_db_target(self.server, argv, 2) if name == "move"
                          else _copy_target(self.server, argv))
                if target is not None and target is not db:
                    pairs.append((target, argv[2] if name == "copy" else argv[1]))
        size_of = self.size_of
        sizes = [size_of(d, k) for d, k in pairs]
        self.measuring = pairs
        return (pairs, sizes, name, argv)

    def before_served(self, client, block, key):
        """A blocked client is about to be served: its command's keys (the
        ready key, and a BLMOVE's destination) are measured."""
        if self.unsettled:
            self._settle()
        db = client.db
        pairs = [(db, key)]
        argv = block.argv
        if argv is not None:
            from hakv.common.dispatch import lookup
            cmd = lookup(self.server, argv)
            if cmd.__class__ is not ErrorReply:
                for i in cmd.key_indexes(argv):
                    if argv[i] != key:
                        pairs.append((db, argv[i]))
        sizes = [self.size_of(d, k) for d, k in pairs]
        self.measuring = pairs
        self.last = None
        return (pairs, sizes, "", None)

    def after(self, client, measured) -> None:
        """Account for the write before() measured: the common single-key
        case here, inlined (it runs per write), the others in _after_many."""
        if len(measured) != 5:
            self._after_many(client, measured)
            return
        db, key, old, argv, hit = measured  # hit: `last` when before() found it there
        self.measuring = None
        value = db.data.get(key)
        # size_of(db, key, fresh=True), inlined.
        if value is None or value.__class__ is bytes:
            new = STRING_ENTRY + len(key) + len(value) if value is not None else 0
            if new and db.expires and key in db.expires:
                new += EXPIRE_ENTRY
            last = self.last
            if last is not None and last[1] == key:
                self.last = None  # not a collection any more: do not keep the old one alive
        else:
            # _collection_size(db.id, key, value), inlined; the average's
            # record comes from `last` when before() found this collection
            # there (no (dbid, key) tuple, no lookup).
            cls = value.__class__
            if cls is dict:
                n = len(value)
                own = _dict_sizeof(value)
            elif cls is set:
                n = len(value)
                own = _set_sizeof(value)
            elif cls is deque:
                n = len(value)
                own = _deque_sizeof(value)
            else:  # ZSet
                members = value.dict
                n = len(members)
                own = ZSET_OBJECT + _dict_sizeof(members)
            if n <= SMALL_COLLECTION:
                new = container_size(key, value) + elements_size(value)
                entry = None
            else:
                if hit is not None and hit[2] is value and hit[4] is not None:
                    entry = hit[4]
                else:
                    entry = self.averages.get((db.id, key))
                if entry is None or entry[3] >= RESAMPLE_AFTER or not entry[1] <= n <= entry[2]:
                    entry = self.averages[(db.id, key)] = _average(value, n)
                entry[3] += 1
                new = KEY_ENTRY + GC_HEADER + len(key) + own + (entry[0] * n >> AVERAGE_SHIFT)
            if db.expires and key in db.expires:
                new += EXPIRE_ENTRY
            # Kept for the next write to it (see `last`).
            self.last = (db, key, value, new, entry)
        if new != old:
            dbid = db.id
            delta = new - old
            self.db_bytes[dbid] += delta
            self._total += delta
            if not old or not new:
                self.db_keys[dbid] += 1 if new else -1
                self._nkeys += 1 if new else -1
        if not new:
            if old:
                self._forget(db.id, key)
        elif self.access is not None:
            self._written(db, key, old)
        if client.block is not None and client.block.argv is None:
            client.block.argv = argv  # for before_served

    def _after_many(self, client, measured) -> None:
        pairs, sizes, name, argv = measured
        self.measuring = None
        self.last = None
        for (db, key), old in zip(pairs, sizes):
            new = self.size_of(db, key, True)
            if new != old:
                self._add(db.id, new - old, (new > 0) - (old > 0))
            if not new:
                if old:
                    self._forget(db.id, key)
            elif self.access is not None:
                self._written(db, key, old)
        if name is not None and name in _WHOLE_DB_WRITES:
            _WHOLE_DB_WRITES[name](self, client, argv)
        if argv is not None and client.block is not None and client.block.argv is None:
            client.block.argv = argv  # for before_served

    def _forget(self, dbid: int, key: bytes) -> None:
        if self.averages:
            self.averages.pop((dbid, key), None)
        if self.access is not None:
            self.access[dbid].pop(key, None)

    def on_expired(self, db, key: bytes, value) -> None:
        """A key expired (lazily or by the active cycle)."""
        last = self.last
        if last is not None and last[1] == key:
            if self.unsettled:
                self._settle()
                if last[0] is db:
                    return  # the settling accounted for its removal (gone from db.data)
            self.last = None  # gone: do not keep it alive
        pairs = self.measuring
        if pairs is not None:
            if pairs.__class__ is tuple:  # before()'s single-key 5-tuple (else a list of pairs)
                if pairs[0] is db and pairs[1] == key:
                    return  # the write being measured accounts for it
            elif (db, key) in pairs:
                return
        if value is None:
            return
        if value.__class__ is bytes:
            size = STRING_ENTRY + len(key) + len(value)
        else:
            size = self._collection_size(db.id, key, value, True)
        self._add(db.id, -(size + EXPIRE_ENTRY), -1)
        self._forget(db.id, key)

    # -- FLUSHDB, FLUSHALL, SWAPDB: whole databases at once

    def _flushed(self, dbids) -> None:
        if self.unsettled:
            self._settle()
        self.last = None
        for i in dbids:
            self._add(i, -self.db_bytes[i], -self.db_keys[i])
            self.seen[i] = self.ks[i].data
            if self.access is not None:
                self.access[i] = self._new_access()
        self.averages = {k: v for k, v in self.averages.items() if k[0] not in dbids}

    def _after_flushdb(self, client, argv) -> None:
        self._flushed({client.db.id})

    def _after_flushall(self, client, argv) -> None:
        self._flushed(set(range(len(self.ks))))

    def _after_swapdb(self, client, argv) -> None:
        try:
            a, b = int(argv[1]), int(argv[2])
        except ValueError:
            return
        n = len(self.ks)
        if not (0 <= a < n and 0 <= b < n) or a == b:
            return
        if self.ks[a].data is not self.seen[b]:
            return  # the swap did not happen
        for lst in (self.db_bytes, self.db_keys, self.seen):
            lst[a], lst[b] = lst[b], lst[a]
        if self.access is not None:
            self.access[a], self.access[b] = self.access[b], self.access[a]
        # The averages go with their keys: sampled again, a collection's
        # size would change without a write and the totals drift from a walk.
        swapped = {a: b, b: a}
        self.averages = {(swapped.get(k[0], k[0]), k[1]): v for k, v in self.averages.items()}

    # ------------------------------------------------------------ recounting

    def recount(self, dbids=None) -> None:
        """Walk databases and set their totals (after a load or anything that
        changed them behind the hooks)."""
        if self.unsettled:
            self._settle()
        self.last = None
        for i in (range(len(self.ks)) if dbids is None else dbids):
            db = self.ks[i]
            self.averages = {k: v for k, v in self.averages.items() if k[0] != i}
            total = self._walk(db)
            self._add(i, total - self.db_bytes[i], len(db.data) - self.db_keys[i])
            self.seen[i] = db.data
            if self.access is not None:
                acc = self.access[i]
                data = db.data
                if not acc:  # a load into an empty database: every key is new here
                    if self.mode == "lru" and data:
                        self.access[i] = OrderedDict.fromkeys(data, self.epoch)
                    continue
                for key in [k for k in acc if k not in data]:
                    del acc[key]
                if self.mode == "lru" and len(acc) < len(data):
                    # Keys that came in behind the hooks (a load): the oldest.
                    fresh = OrderedDict.fromkeys((k for k in data if k not in acc), self.epoch)
                    fresh.update(acc)
                    self.access[i] = fresh

    def _walk(self, db) -> int:
        """The sum of size_of over db's keys, with C-level passes for what
        is common to all keys and for strings (a million keys after a load
        or a full resync: a call per key would take most of a second); only
        collections are sized one by one."""
        data = db.data
        values = data.values()
        # Every key as if a string: the entry and the key; then the values.
        total = len(data) * STRING_ENTRY + sum(map(len, data))
        if set(map(type, values)) == _ONLY_BYTES:
            total += sum(map(len, values))
        else:
            collection_size = self._collection_size
            dbid = db.id
            for key, value in data.items():
                if value.__class__ is bytes:
                    total += len(value)
                else:
                    total += collection_size(dbid, key, value) - STRING_ENTRY - len(key)
        expires = db.expires
        if expires:
            total += EXPIRE_ENTRY * sum(map(data.__contains__, expires))
        return total

    def _drifted(self) -> list:
        if self.unsettled:
            self._settle()
        return [i for i, db in enumerate(self.ks.dbs)
                if db.data is not self.seen[i] or len(db.data) != self.db_keys[i]]

    # ------------------------------------------------------------ access tracking

    def set_mode(self, policy: str) -> None:
        """Track accesses for the LRU/LFU policies only (a dict entry per
        key); switching between them starts the records afresh."""
        mode = "lru" if policy in LRU_POLICIES else "lfu" if policy in LFU_POLICIES else None
        if mode == self.mode:
            return
        self.mode = mode
        self.epoch = _monotonic()
        self.access_entry = {None: 0, "lru": ACCESS_ENTRY_LRU, "lfu": ACCESS_ENTRY_LFU}[mode]
        self.clock = self.epoch
        self.lru = None
        if mode is None:
            self.access = None
            self.ks.touch = None
        elif mode == "lru":
            # An OrderedDict in access order: the front is the least recently
            # used key (exact LRU for allkeys-lru; timestamps for the rest).
            self.access = [OrderedDict.fromkeys(db.data, self.epoch) for db in self.ks.dbs]
            self.lru = self.access  # the same list: its items are replaced in place
            self.ks.touch = self._touch_lru
        else:
            self.access = [{} for _ in self.ks.dbs]
            self.ks.touch = self._touch_lfu

    def _new_access(self):
        return OrderedDict() if self.mode == "lru" else {}

    def _touch_lru(self, db, key: bytes) -> None:
        acc = self.lru[db.id]
        acc[key] = self.clock
        acc.move_to_end(key)

    def _touch_lfu(self, db, key: bytes) -> None:
        acc = self.access[db.id]
        counter = self._lfu_counter(acc.get(key))
        if counter < 255:
            base = counter - LFU_INIT_VAL
            if base < 0:
                base = 0
            if random.random() < 1.0 / (base * self.lfu_log_factor + 1):
                counter += 1
        acc[key] = (self._minutes() << 8) | counter

    def _minutes(self) -> int:
        return int(_monotonic() // 60) & 0xFFFF

    def _lfu_counter(self, packed) -> int:
        """The counter after decay (lfu-decay-time minutes per step)."""
        if packed is None:
            when, counter = int(self.epoch // 60) & 0xFFFF, LFU_INIT_VAL
        else:
            when, counter = packed >> 8, packed & 0xFF
        period = self.lfu_decay_time
        if period:
            elapsed = (self._minutes() - when) & 0xFFFF
            counter = max(0, counter - elapsed // period)
        return counter

    def touch_key(self, db, key: bytes) -> bool:
        """An access by TOUCH, SETBIT ... (keys.note_access); False when
        accesses are not tracked here."""
        if self.access is None:
            return False
        if key in db.data:
            self.ks.touch(db, key)
        return True

    def idle_ms(self, db, key: bytes):
        """OBJECT IDLETIME's source when accesses are tracked, else None."""
        if self.access is None or self.mode != "lru":
            return None
        when = self.access[db.id].get(key, self.epoch)
        return int(max(0.0, _monotonic() - when) * 1000)

    def freq(self, db, key: bytes):
        if self.access is None or self.mode != "lfu":
            return None
        return self._lfu_counter(self.access[db.id].get(key))

    # ------------------------------------------------------------ eviction

    def write_check(self, client, cmd):
        """First of the write checks: make room, or refuse denyoom commands."""
        maxmemory = self.maxmemory
        # The totals without settling: nothing is unsettled while maxmemory is set (before()).
        if not maxmemory or (self.startup + self._total + self._nkeys * self.access_entry
                             <= maxmemory):
            return None
        if client.is_primary or (self.ks.replica_mode and self.replica_ignores):
            return None
        if self.server.loading:
            return None
        if not self.evict() and cmd.denyoom:
            return ErrorReply(errors.OOM)
        return None

    def _time_limit(self) -> float | None:
        """Seconds one eviction round may take (maxmemory-eviction-tenacity:
        10 -> 500 us; 100 -> no limit)."""
        t = self.tenacity
        if t >= 100:
            return None
        if t <= 10:
            return 50e-6 * t
        return 500e-6 * 1.15 ** (t - 10)

    def evict(self) -> bool:
        """Evict until used memory is within maxmemory. False when it could
        not (nothing evictable); True when done, or when the time ran out
        (the cron goes on, as Redis's eviction timer does)."""
        self.clock = _monotonic()  # keeps the LRU clock fresh under a write load
        monitor = self.server.latency_monitor
        start = time.perf_counter() if monitor.threshold else 0.0
        done = self._evict_round()
        if start:
            monitor.add("eviction-cycle", (time.perf_counter() - start) * 1000)
        over = self.startup + self.total + self.nkeys * self.access_entry > self.maxmemory
        if over or self.exceeded_since is not None:
            self._note_exceeded(over)
        return done

    def _note_exceeded(self, over: bool) -> None:
        if over:
            if self.exceeded_since is None:
                self.exceeded_since = _monotonic()
        elif self.exceeded_since is not None:
            self.exceeded_total += _monotonic() - self.exceeded_since
            self.exceeded_since = None

    def exceeded_ms(self) -> tuple[int, int]:
        """(current, total) milliseconds spent over maxmemory after an
        eviction round could not get under it."""
        current = 0.0
        if self.exceeded_since is not None:
            current = _monotonic() - self.exceeded_since
        return int(current * 1000), int((self.exceeded_total + current) * 1000)

    def _evict_round(self) -> bool:
        maxmemory = self.maxmemory
        policy = self.policy
        if policy == "noeviction":
            return self.used_memory() <= maxmemory
        if policy == "allkeys-lru" and self.db_keys[self.lru_db] == self.nkeys:
            done = self._evict_lru_front(maxmemory)
            if done is not None:
                return done
        server = self.server
        flush = not server.pending_propagation
        pick, evict_key, used_memory = self._picker(policy), self._evict_key, self.used_memory
        budget = _TimeBox(self)
        target = maxmemory - _slack(maxmemory)
        while used_memory() > target:
            picked = pick()
            if picked is None:
                return used_memory() <= maxmemory
            evict_key(*picked)
            if flush and server.pending_propagation:
                server.flush_propagation()  # each DEL on its own, before the write
            if budget.spent():
                break
        return True

    def _evict_lru_front(self, maxmemory: int):
        """allkeys-lru while every key is in one database (the usual case):
        evict from the front of its access order, popping each record on the
        way (the cheapest path: no scan of the other databases). None when
        the order ran out first: evict()'s general loop takes over.

        Under a steady write load every write evicts a key or two, so this
        is the hot path of eviction: the common key (a string without a TTL
        that nobody WATCHes) is evicted inline, what _evict_key does for
        any key; the time box is _TimeBox's, inlined."""
        dbid = self.lru_db
        acc = self.access[dbid]
        ks = self.ks
        db = ks.dbs[dbid]
        data = db.data
        server = self.server
        propagating = server.propagating
        flush = propagating and not server.pending_propagation
        pop_front = acc.popitem
        notify = ks.notify
        expires, watched, averages = db.expires, db.watched, self.averages
        entry = self.access_entry
        # Evict while used_memory() is above the target: `over` bytes above.
        # The keys evicted inline are counted in locals, written back at the end.
        room = maxmemory - _slack(maxmemory) - self.startup
        over = self.total + self.nkeys * entry - room
        freed = inlined = 0
        n = 0
        deadline = None
        done = True
        try:
            while over > 0:
                if not acc:
                    done = None
                    break
                key = pop_front(False)[0]
                value = data.get(key)
                if value is None:
                    continue  # a record left behind
                if value.__class__ is not bytes or watched or (expires and key in expires):
                    self._evict_key(db, key, False)
                    over = self.total - freed + (self.nkeys - inlined) * entry - room
                else:
                    del data[key]
                    size = STRING_ENTRY + len(key) + len(value)
                    freed += size
                    inlined += 1
                    over -= size + entry
                    if propagating:
                        ks.propagate(dbid, [b"UNLINK" if self.lazy else b"DEL", key])
                    if averages:
                        averages.pop((dbid, key), None)
                    notify(db, "e", b"evicted", key)
                if flush and server.pending_propagation:
                    server.flush_propagation()  # each DEL on its own, before the write
                n += 1
                if not n & 15:  # the clock is read every 16 evictions (see _TimeBox)
                    if deadline is None:
                        limit = self._time_limit()
                        deadline = _perf_counter() + limit if limit is not None else _INF
                    elif _perf_counter() > deadline:
                        break
        finally:
            if inlined:
                self._add(dbid, -freed, -inlined)
                self.stat_evicted += inlined
                server.stat_evicted_keys = self.stat_evicted
        return done

    def _evict_key(self, db, key: bytes, forget_access: bool = True) -> None:
        if self.last is not None and self.last[1] == key:
            self.last = None  # gone: do not keep it alive
        size = self.size_of(db, key)
        ks = self.ks
        if self.server.propagating:
            ks.propagate(db.id, [b"UNLINK" if self.lazy else b"DEL", key])
        monitor = self.server.latency_monitor
        start = time.perf_counter() if monitor.threshold else 0.0
        deleted = db.delete(key)
        if start:  # freeing a big value is what makes an eviction slow
            monitor.add("eviction-del", (time.perf_counter() - start) * 1000)
        if deleted:
            dbid = db.id
            self._add(dbid, -size, -1)
            if forget_access:
                self._forget(dbid, key)
            elif self.averages:
                self.averages.pop((dbid, key), None)
            ks.notify(db, "e", b"evicted", key)
        self.stat_evicted += 1
        self.server.stat_evicted_keys = self.stat_evicted

    def _picker(self, policy: str):
        """A function () -> (db, key) to evict under policy, or None."""
        volatile = policy.startswith("volatile-")
        if policy.endswith("-random"):
            return lambda: self._pick_random(volatile)
        if policy == "allkeys-lru":
            return lambda: (self._pick_least_recent()
                            or self._pick_from_pool(policy, volatile))
        return lambda: self._pick_from_pool(policy, volatile)

    def _pick_least_recent(self):
        """allkeys-lru: the key at the front of the access order, over all
        databases (no sampling needed)."""
        dbs = self.ks.dbs
        i = self.lru_db
        if self.db_keys[i] == self.nkeys:
            # Every key is in this database (the usual case): its front.
            acc = self.access[i]
            data = dbs[i].data
            while acc:
                key = next(iter(acc))
                if key in data:
                    return dbs[i], key
                del acc[key]  # a record left behind: drop it
        best = None
        for i, acc in enumerate(self.access):
            if not acc:
                continue
            db = dbs[i]
            data = db.data
            while acc:
                key = next(iter(acc))
                if key in data:
                    break
                del acc[key]  # a record left behind: drop it
            else:
                continue
            when = acc[key]
            if best is None or when < best[0]:
                best = (when, db, key)
        if best is None:
            return None
        self.lru_db = best[1].id
        return best[1], best[2]

    def _candidates(self, db, volatile: bool):
        source = db.expires if volatile else db.data
        if not source:
            return None
        k = (db.id, volatile)
        snap = self.snapshots.get(k)
        if (snap is None or snap[0] is not source or snap[2] * 2 > len(snap[1])
                or len(source) * 4 > len(snap[1]) * 5):
            snap = self.snapshots[k] = [source, list(source), 0]
        return snap

    def _sample(self, db, volatile: bool, count: int) -> list:
        """Up to `count` random keys of db (with a TTL when volatile) that
        still exist."""
        snap = self._candidates(db, volatile)
        if snap is None:
            return []
        out = []
        rand = random.random
        misses = 0
        data = db.data
        while len(out) < count:
            source, keys = snap[0], snap[1]
            key = keys[int(rand() * len(keys))]
            if key in data and (source is data or key in source):
                out.append(key)
                continue
            snap[2] += 1
            misses += 1
            if misses > count * 4 or snap[2] * 2 > len(keys):
                # Too many keys of the snapshot are gone: take a fresh one.
                self.snapshots.pop((db.id, volatile), None)
                snap = self._candidates(db, volatile)
                if snap is None or misses > count * 8:
                    break
        return out

    def _pick_random(self, volatile: bool):
        dbs = [db for db in self.ks.dbs if (db.expires if volatile else db.data)]
        for _ in range(len(dbs)):
            db = dbs[self.next_db % len(dbs)]
            self.next_db += 1
            keys = self._sample(db, volatile, 1)
            if keys:
                return db, keys[0]
        return None

    def _pick_from_pool(self, policy: str, volatile: bool):
        """Redis's eviction pool: sample maxmemory-samples keys per database,
        keep the best POOL_SIZE candidates seen (sorted, best last), evict
        the best one that still exists."""
        samples = self.samples
        pool = self.pool
        members = self.pool_members
        by_ttl = policy.endswith("-ttl")
        lfu = self.mode == "lfu"
        epoch = self.epoch
        if lfu:  # _lfu_counter, inlined below: the clock is read once per pick
            now_min, period = self._minutes(), self.lfu_decay_time
            epoch_min = int(epoch // 60) & 0xFFFF
        for db in self.ks.dbs:
            source = db.expires if volatile else db.data
            if not source:
                continue
            dbid = db.id
            acc = self.access[dbid] if self.access is not None else {}
            expires = db.expires
            for key in self._sample(db, volatile, samples):
                member = (dbid, key)
                if member in members:
                    continue
                if by_ttl:
                    score = -expires.get(key, 0)  # the nearest deadline first
                elif lfu:
                    packed = acc.get(key)
                    if packed is None:
                        when, counter = epoch_min, LFU_INIT_VAL
                    else:
                        when, counter = packed >> 8, packed & 0xFF
                    if period:
                        counter -= ((now_min - when) & 0xFFFF) // period
                        if counter < 0:
                            counter = 0
                    score = 255 - counter
                else:
                    score = -acc.get(key, epoch)  # the least recent access first
                if len(pool) < POOL_SIZE:
                    insort(pool, (score, dbid, key))
                    members.add(member)
                elif score > pool[0][0]:
                    insort(pool, (score, dbid, key))
                    members.add(member)
                    _, d, k = pool.pop(0)
                    members.discard((d, k))
        dbs = self.ks.dbs
        while pool:
            _, dbid, key = pool.pop()
            members.discard((dbid, key))
            db = dbs[dbid]
            if key in db.data and (not volatile or key in db.expires):
                return db, key
        return None

    # ------------------------------------------------------------ periodic work

    def cron(self) -> None:
        self.clock = _monotonic()
        server = self.server
        if server.loading:
            return
        drifted = self._drifted()
        if drifted:
            self.recount(drifted)
        used = self.used_memory()
        if used > self.peak:
            self.peak = used
        maxmemory = self.maxmemory
        if maxmemory and used > maxmemory and not (self.ks.replica_mode and self.replica_ignores):
            self.evict()
            if server.pending_propagation:
                server.flush_propagation()
        elif self.exceeded_since is not None:
            self._note_exceeded(False)  # the limit was raised or memory freed

    def _read_settings(self) -> None:
        """The settings the write path reads, kept as attributes (a settings
        lookup costs a pydantic attribute access)."""
        s = self.settings
        self.maxmemory = s["maxmemory"]
        self.policy = s["maxmemory-policy"]
        self.samples = s["maxmemory-samples"]
        self.replica_ignores = s["replica-ignore-maxmemory"]
        self.lazy = s["lazyfree-lazy-eviction"]
        self.lfu_log_factor = s["lfu-log-factor"]
        self.lfu_decay_time = s["lfu-decay-time"]
        self.tenacity = s["maxmemory-eviction-tenacity"]

    def on_config_set(self, name: str, value) -> None:
        if self.unsettled:
            self._settle()  # before(): no write goes unmeasured with maxmemory or access records
        self._read_settings()
        if name == "maxmemory-policy":
            self.pool = []  # scores of another policy do not compare
            self.pool_members = set()
            self.set_mode(value)
        elif name == "maxmemory" and value and self.used_memory() > value:
            if not (self.ks.replica_mode and self.replica_ignores):
                self.evict()

    # ------------------------------------------------------------ reporting

    def info_memory(self):
        used = self.used_memory()
        self.peak = max(self.peak, used)
        lines = self.server._info_memory()
        overhead = used - self.total
        replace = {
            "used_memory": str(used),
            "used_memory_human": _human(used),
            "used_memory_peak": str(self.peak),
            "used_memory_peak_human": _human(self.peak),
            "used_memory_peak_perc": "%.2f%%" % (100.0 * used / self.peak if self.peak else 0),
            "used_memory_overhead": str(overhead),
            "used_memory_startup": str(self.startup),
            "used_memory_dataset": str(self.total),
            "used_memory_dataset_perc": "%.2f%%" % (
                100.0 * self.total / (used - self.startup) if used > self.startup else 0),
            "allocator_allocated": str(used),
            "allocator_active": str(used),
        }
        out = []
        for item in lines:
            if isinstance(item, tuple) and item[0] in replace:
                out.append((item[0], replace[item[0]]))
            else:
                out.append(item)
        return out

    def stats(self) -> dict:
        """MEMORY STATS."""
        used = self.used_memory()
        keys = self.nkeys
        return {
            b"peak.allocated": max(self.peak, used),
            b"total.allocated": used,
            b"startup.allocated": self.startup,
            b"replication.backlog": 0,
            b"clients.slaves": 0,
            b"clients.normal": 0,
            b"aof.buffer": 0,
            b"lua.caches": 0,
            b"overhead.total": used - self.total,
            b"keys.count": keys,
            b"keys.bytes-per-key": (used - self.startup) // keys if keys else 0,
            b"dataset.bytes": self.total,
            b"dataset.percentage": (100.0 * self.total / (used - self.startup)
                                    if used > self.startup else 0.0),
            b"peak.percentage": 100.0 * used / self.peak if self.peak else 100.0,
            b"fragmentation": 1.0,
        }

    def doctor(self) -> str:
        """MEMORY DOCTOR: what the accounting sees, and what stands out."""
        used = self.used_memory()
        maxmemory = self.settings["maxmemory"]
        policy = self.settings["maxmemory-policy"]
        lines = ["Memory report (hakv): %s used by %d keys (%s of data), peak %s."
                 % (_human(used), self.nkeys, _human(self.total), _human(self.peak))]
        if not maxmemory:
            lines.append("No maxmemory is set: the dataset may grow without bound.")
        else:
            lines.append("maxmemory is %s with policy %s; %.1f%% of it is in use."
                         % (_human(maxmemory), policy, 100.0 * used / maxmemory))
            if used > maxmemory and policy == "noeviction":
                lines.append("Used memory is above maxmemory and nothing is evicted: writes "
                             "that add data are refused with OOM.")
            elif policy.startswith("volatile-") and not any(db.expires for db in self.ks.dbs):
                lines.append("The policy evicts only keys with a TTL, and no key has one.")
        if self.stat_evicted:
            lines.append("%d keys were evicted so far." % self.stat_evicted)
        if len(lines) == 1 or (len(lines) == 2 and not maxmemory):
            lines.append("Nothing else stands out.")
        return "\n".join(lines) + "\n"

    def usage(self, db, key: bytes, samples: int):
        """MEMORY USAGE key [SAMPLES n]."""
        ks = self.ks
        touch, ks.touch = ks.touch, None  # MEMORY USAGE is not an access
        try:
            value = db.get(key)
        finally:
            ks.touch = touch
        if value is None:
            return None
        size = value_size(key, value, samples)
        if db.expires and key in db.expires:
            size += EXPIRE_ENTRY
        return size


def _human(n: int) -> str:
    from hakv.common.server import human_bytes
    return human_bytes(n)


_WHOLE_DB_WRITES = {
    "flushdb": Memory._after_flushdb,
    "flushall": Memory._after_flushall,
    "swapdb": Memory._after_swapdb,
}


def attach(server) -> Memory:
    memory = Memory(server)
    server.memory = memory
    server.memory_tracker = memory
    server.keyspace.on_expired = memory.on_expired
    memory.set_mode(server.settings["maxmemory-policy"])
    server.write_checks.insert(0, memory.write_check)  # OOM comes first (dispatch's order)
    server.write_check_armed[memory.write_check] = lambda: bool(memory.maxmemory)
    server.cron_jobs.append(memory.cron)
    server.info_sections["memory"] = memory.info_memory
    server.used_memory = memory.used_memory
    server.settings.listeners.append(memory.on_config_set)
    return memory
