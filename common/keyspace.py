"""The keyspace: numbered databases of keys, their expiry, and the hooks that
other parts of the server hang on key changes.

Values are plain Python objects (see common/types): bytes for strings, deque
for lists, dict for hashes, set for sets, ZSet for sorted sets.

Expiry works as in Redis: a read of an expired key deletes it first (lazy),
and an active cycle on the event loop removes keys nobody reads. Redis samples
random keys; a Python dict cannot pick a random key cheaply, so each database
keeps a heap of (deadline, key) instead, and the cycle pops what is due,
time-boxed so a million keys expiring at once never stall the loop. Entries
whose TTL changed since are skipped when popped (checked against `expires`).

Hooks, called by commands through the database:
- `modified(key)`   WATCH: the transactions watching the key will fail.
- `signal_ready(key)` a list/zset got elements: blocked clients may proceed.
- `Keyspace.notify`   keyspace notifications (set by the pub/sub layer).
- `Keyspace.propagate` the replication/AOF stream (set by the server).
"""

from __future__ import annotations

import heapq
import random
import time
from collections import deque

from hakv.common.errors import WRONGTYPE
from hakv.common.resp import ErrorReply
from hakv.common.types.zset import ZSet

TYPE_NAMES = {bytes: b"string", deque: b"list", dict: b"hash", set: b"set", ZSet: b"zset"}


def now_ms() -> int:
    return int(time.time() * 1000)


class Database:
    __slots__ = ("id", "data", "expires", "watched", "blocked", "heap", "ks")

    def __init__(self, ks: "Keyspace", dbid: int):
        self.id = dbid
        self.ks = ks
        self.data: dict = {}
        self.expires: dict = {}
        self.watched: dict = {}  # key -> set of clients in WATCH
        self.blocked: dict = {}  # key -> deque of clients blocked on it
        self.heap: list = []  # (deadline_ms, key), lazily cleaned

    # -- reads

    def get(self, key: bytes):
        """The value at key, or None; an expired key is removed first."""
        if self.expires and key in self.expires and self._expired(key):
            value = None
        else:
            value = self.data.get(key)
        ks = self.ks
        if ks.track_reads:
            ks.count_read(value is not None, self, key)
        if ks.touch is not None and value is not None:
            ks.touch(self, key)  # LRU/LFU access tracking (eviction.py)
        return value

    def get_typed(self, key: bytes, cls):
        """The value if it is of type cls, None if the key is missing;
        WRONGTYPE otherwise."""
        value = self.get(key)
        if value is not None and value.__class__ is not cls:
            raise ErrorReply(WRONGTYPE)
        return value

    def exists(self, key: bytes) -> bool:
        if self.expires and key in self.expires and self._expired(key):
            found = False
        else:
            found = key in self.data
        if self.ks.track_reads:
            self.ks.count_read(found, self, key)
        return found

    def ttl_ms(self, key: bytes) -> int:
        """Remaining time to live in ms; -2 when the key is missing, -1 when
        it has no TTL."""
        if not self.exists(key):
            return -2
        when = self.expires.get(key)
        if when is None:
            return -1
        return max(0, when - now_ms())

    def random_key(self):
        for _ in range(100):
            if not self.data:
                return None
            # Python dicts have no random access; a sample from an iterator
            # walk is O(n) for big dicts, so bound the walk.
            n = len(self.data)
            idx = random.randrange(n)
            if n > 4096:
                idx %= 4096
            for i, key in enumerate(self.data):
                if i == idx:
                    break
            if not self.expires or key not in self.expires or not self._expired(key):
                return key
        return None

    # -- writes (each marks the key modified for WATCH)

    def set(self, key: bytes, value, keepttl: bool = False) -> None:
        """Set a key, dropping its TTL unless keepttl."""
        if self.ks.notify_new and key not in self.data:
            self.ks.notify(self, "n", b"new", key)  # keyspace notification class 'n'
        self.data[key] = value
        if not keepttl and self.expires:
            self.expires.pop(key, None)
        if self.watched:
            self._touch_watched(key)

    def delete(self, key: bytes) -> bool:
        if self.expires and key in self.expires and self._expired(key):
            return False
        if self.data.pop(key, None) is None:
            return False
        if self.expires:
            self.expires.pop(key, None)
        if self.watched:
            self._touch_watched(key)
        return True

    def set_expire(self, key: bytes, when_ms: int) -> None:
        self.expires[key] = when_ms
        heapq.heappush(self.heap, (when_ms, key))
        if len(self.heap) > 2 * len(self.expires) + 1024:
            self._rebuild_heap()
        if self.watched:
            self._touch_watched(key)

    def persist(self, key: bytes) -> bool:
        if self.expires.pop(key, None) is None:
            return False
        if self.watched:
            self._touch_watched(key)
        return True

    def modified(self, key: bytes) -> None:
        """Called after a command changed a value in place (HSET, LPUSH ...)."""
        if self.watched:
            self._touch_watched(key)

    def signal_ready(self, key: bytes) -> None:
        """A list or sorted set at key got elements: wake clients blocked on it."""
        if key in self.blocked:
            self.ks.ready_keys.append((self, key))

    def flush(self, lazy: bool = False) -> int:
        """Empty the database; lazy (FLUSHDB ASYNC) leaves freeing the old
        values to the event loop, a slice at a time."""
        removed = len(self.data)
        if self.watched:
            for key in list(self.watched):
                if key in self.data:
                    self._touch_watched(key)
        if lazy and removed:
            self.ks.lazyfree.append(self.data)
        self.data = {}
        self.expires = {}
        self.heap = []
        return removed

    # -- expiry

    def _expired(self, key: bytes) -> bool:
        """True if key is past its deadline (and removes it, on a primary)."""
        if self.expires[key] > now_ms():
            return False
        ks = self.ks
        if ks.replica_mode:
            # Replicas never expire keys themselves: the primary sends the DEL.
            # Its stream still sees the key; everyone else sees it gone.
            return not ks.applying_primary_stream
        self._expire(key)
        return True

    def _expire(self, key: bytes) -> None:
        value = self.data.pop(key, None)
        self.expires.pop(key, None)
        ks = self.ks
        if ks.on_expired is not None:
            ks.on_expired(self, key, value)  # memory accounting (eviction.py)
        ks.stat_expired_keys += 1
        if self.watched:
            self._touch_watched(key, expiring=True)
        ks.notify(self, "x", b"expired", key)
        ks.propagate(self.id, [b"DEL", key])

    def active_expire(self, deadline: float) -> int:
        """Remove keys whose time has come, until time.perf_counter() passes
        deadline. Returns how many were removed."""
        heap = self.heap
        expires = self.expires
        now = now_ms()
        removed = 0
        work = 0  # since the clock was last read: 16 per key removed, 1 per stale entry
        pop = heapq.heappop
        clock = time.perf_counter
        while heap and heap[0][0] <= now:
            when, key = pop(heap)
            if expires.get(key) == when:
                self._expire(key)  # may be slow: a big value, notifications, accounting
                removed += 1
                work += 16
            else:
                work += 1  # a stale entry (its TTL changed since) costs next to nothing
            # Every 16 removals (or 256 stale entries) the clock is read, so a
            # run of slow keys cannot carry the cycle far past its time box.
            if work >= 256:
                work = 0
                if clock() > deadline:
                    break
        return removed

    def has_due_keys(self) -> bool:
        return bool(self.heap) and self.heap[0][0] <= now_ms()

    def _rebuild_heap(self) -> None:
        self.heap = [(when, key) for key, when in self.expires.items()]
        heapq.heapify(self.heap)

    def _touch_watched(self, key: bytes, expiring: bool = False) -> None:
        clients = self.watched.get(key)
        if clients:
            for client in clients:
                if expiring and (self, key) in client.watch_expired:
                    # It was already expired when WATCHed: its removal
                    # changes nothing the client could have seen.
                    client.watch_expired.discard((self, key))
                    continue
                client.dirty_cas = True

    def is_logically_expired(self, key: bytes) -> bool:
        """Past its deadline but not removed yet (no side effects)."""
        when = self.expires.get(key)
        return when is not None and when <= now_ms() and key in self.data


class Keyspace:
    def __init__(self, num_dbs: int = 16):
        self.dbs = [Database(self, i) for i in range(num_dbs)]
        self.ready_keys: list = []  # (db, key) with clients to wake
        self.lazyfree: list = []  # dicts of flushed databases still to free
        self.stat_lazyfreed = 0
        self.replica_mode = False  # set while this node follows a primary
        self.applying_primary_stream = False
        self.active_expire_enabled = True  # DEBUG SET-ACTIVE-EXPIRE
        self.stat_expired_keys = 0
        self.stat_expire_time_cap = 0  # active cycles that ran out of time
        self.stat_expire_cpu = 0.0  # seconds spent in active expiry
        # keyspace_hits / misses: counted while a read-only command runs.
        self.track_reads = False
        self.stat_hits = 0
        self.stat_misses = 0
        # Set by the server: keyspace notifications and the propagation stream.
        self.notify = _no_notify
        self.propagate = _no_propagate
        # Set by eviction.py: touch(db, key) on every read that finds the key
        # (LRU/LFU policies), on_expired(db, key, value) when a key expires.
        self.touch = None
        self.on_expired = None
        # Set by common/notifications.py when the 'n' / 'm' classes are on.
        self.notify_new = False
        self.notify_keymiss = False

    def count_read(self, hit: bool, db=None, key=None) -> None:
        if hit:
            self.stat_hits += 1
        else:
            self.stat_misses += 1
            if self.notify_keymiss and db is not None:
                self.notify(db, "m", b"keymiss", key)

    def __getitem__(self, dbid: int) -> Database:
        return self.dbs[dbid]

    def __len__(self) -> int:
        return len(self.dbs)

    def key_count(self) -> int:
        return sum(len(db.data) for db in self.dbs)

    def flushall(self, lazy: bool = False) -> int:
        return sum(db.flush(lazy) for db in self.dbs)

    def lazyfree_pending(self) -> int:
        return sum(len(d) for d in self.lazyfree)

    def free_some(self, deadline: float) -> None:
        """Drop values of flushed databases until time.perf_counter() passes
        deadline (a million values freed at once would stall the loop)."""
        while self.lazyfree:
            d = self.lazyfree[-1]
            popitem = d.popitem
            while d:
                for _ in range(min(len(d), 1024)):
                    popitem()
                if time.perf_counter() > deadline:
                    return
            self.lazyfree.pop()
            self.stat_lazyfreed += 1

    def swap(self, a: int, b: int) -> None:
        """SWAPDB: exchange the contents of two databases; clients stay on
        their numbers and see the other data."""
        if a == b:
            return  # nothing moves, nothing a WATCH could notice
        da, db_ = self.dbs[a], self.dbs[b]
        # WATCH: a watched key changes if it exists on either side of the swap.
        for d, other in ((da, db_), (db_, da)):
            if d.watched:
                for key in list(d.watched):
                    if key in d.data or key in other.data:
                        d._touch_watched(key)
        da.data, db_.data = db_.data, da.data
        da.expires, db_.expires = db_.expires, da.expires
        da.heap, db_.heap = db_.heap, da.heap
        # Clients blocked on keys now present must be woken.
        for d in (da, db_):
            for key in d.blocked:
                if key in d.data:
                    self.ready_keys.append((d, key))

    def active_expire_cycle(self, budget_s: float) -> int:
        start = time.perf_counter()
        deadline = start + budget_s
        removed = 0
        if self.replica_mode or not self.active_expire_enabled:
            return 0
        for db in self.dbs:
            if db.heap:
                removed += db.active_expire(deadline)
                if time.perf_counter() > deadline:
                    self.stat_expire_time_cap += 1
                    break
        self.stat_expire_cpu += time.perf_counter() - start
        return removed

    def has_due_keys(self) -> bool:
        return any(db.heap and db.has_due_keys() for db in self.dbs)


def _no_notify(db, cls, event, key):
    pass


def _no_propagate(dbid, argv):
    pass
