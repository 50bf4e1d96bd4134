"""Generic key commands: DEL UNLINK EXISTS TYPE RENAME RENAMENX COPY MOVE KEYS
SCAN RANDOMKEY TOUCH OBJECT, and expiry: EXPIRE PEXPIRE EXPIREAT PEXPIREAT
TTL PTTL EXPIRETIME PEXPIRETIME PERSIST.

Expiry is propagated as PEXPIREAT with an absolute time in ms (a replica's lag
cannot stretch a TTL); a deadline already past deletes the key and propagates
DEL, except on the link from our primary (its DEL will follow).

OBJECT ENCODING reports what Redis 7.0 would. Values are plain Python objects,
so the encoding is derived from the content (length, integer-ness, element
counts against the *-max-listpack-* / set-max-intset-entries settings). Two
things the content cannot tell are kept in a small side table per key
(`KeyMeta`): strings that Redis holds "raw" although short (after APPEND,
SETRANGE, SETBIT, BITFIELD, BITOP, see `note_string_encoding`) or "embstr"
although numeric (INCRBYFLOAT), and collections once seen above the compact
limits (Redis never converts back). Entries hold the value object itself and
only apply while the key still holds that very object.

OBJECT IDLETIME / FREQ: hakv keeps no per-access bookkeeping on the GET/SET
hot path (it would cost a dict entry per key). Accesses are recorded in the
side table only by the commands of this module and commands/bits.py (TOUCH,
EXPIRE, SETBIT, GETBIT ...) and by anyone calling `note_access`; a key with no
record counts as accessed when OBJECT first asks about it (idle 0, LFU
counter 5), then ages from there. Access entries find their value by id()
(holding it could keep a big value alive): a value replaced by another
counts as new, except for b"" and 1-byte strings, which CPython shares.
"""

from __future__ import annotations

import random
import time
from collections import deque

from hakv.common import errors
from hakv.common.commands.table import command, container
from hakv.common.glob import compile_glob
from hakv.common.keyspace import TYPE_NAMES, now_ms
from hakv.common.numbers import LLONG_MAX, get_int, parse_int
from hakv.common.resp import ErrorReply
from hakv.common.scan import Scanner, parse_cursor
from hakv.common.types.zset import ZSet

G = "generic"
K1 = (1, 1, 1)
KALL = (1, -1, 1)

INT_MAX = 2**31 - 1
SHARED_INTEGERS = 10000  # Redis shares the objects of the integers 0..9999
LFU_INIT_VAL = 5
_LFU_POLICIES = ("allkeys-lfu", "volatile-lfu")
_LRU_LFU_POLICIES = ("allkeys-lru", "volatile-lru", "allkeys-lfu", "volatile-lfu")
EMBSTR_MAX = 44


# ---------------------------------------------------------------- side table


class KeyMeta:
    """Per-keyspace side tables, keyed by (db id, key).

    strings:     (dbid, key) -> (value, encoding, shared_ok) for strings whose
                 encoding is not what their content says.
    collections: (dbid, key) -> (value, encoding) for collections seen above
                 the compact limits.
    access:      (dbid, key) -> [last access ms, LFU counter, last decay ms,
                 id of the value]; keyed on id() rather than holding the value,
                 so that a big value is never kept alive by it.
    Stale entries (the key now holds another object, or is gone) are ignored
    when read and dropped when a table doubles in size.
    """

    def __init__(self, ks):
        self.ks = ks
        self.strings: dict = {}
        self.collections: dict = {}
        self.access: dict = {}
        self._strings_limit = 1024
        self._access_limit = 1024
        self._collections_limit = 64

    def _current(self, dbid: int, key: bytes):
        dbs = self.ks.dbs
        return dbs[dbid].data.get(key) if 0 <= dbid < len(dbs) else None

    def mark_string(self, dbid: int, key: bytes, value: bytes, encoding: bytes,
                    shared_ok: bool = True) -> None:
        self.strings[(dbid, key)] = (value, encoding, shared_ok)
        if len(self.strings) > self._strings_limit:
            self.strings = {k: e for k, e in self.strings.items()
                            if self._current(*k) is e[0]}
            self._strings_limit = max(1024, 2 * len(self.strings))

    def string_entry(self, dbid: int, key: bytes, value):
        entry = self.strings.get((dbid, key))
        if entry is not None and entry[0] is value:
            return entry
        return None

    def mark_collection(self, dbid: int, key: bytes, value, encoding: bytes) -> None:
        self.collections[(dbid, key)] = (value, encoding)
        if len(self.collections) > self._collections_limit:
            self.prune_collections()

    def prune_collections(self) -> None:
        """Drop entries whose key no longer holds their collection. Runs when
        the table doubles and from the cron (once a second), so a deleted big
        collection is not kept alive for long."""
        colls = self.collections
        for k in [k for k, e in colls.items() if self._current(*k) is not e[0]]:
            del colls[k]
        self._collections_limit = max(64, 2 * len(colls))

    def collection_encoding(self, dbid: int, key: bytes, value):
        entry = self.collections.get((dbid, key))
        if entry is not None and entry[0] is value:
            return entry[1]
        return None

    def _access_entry(self, dbid: int, key: bytes, now: int) -> list:
        """The access entry of the value now at key; a missing entry, or one
        left by a value that was replaced since, starts afresh (accessed now,
        LFU counter at its initial value)."""
        value_id = id(self._current(dbid, key))
        entry = self.access.get((dbid, key))
        if entry is None or entry[3] != value_id:
            entry = self.access[(dbid, key)] = [now, LFU_INIT_VAL, now, value_id]
            if len(self.access) > self._access_limit:
                self.access = {k: e for k, e in self.access.items()
                               if id(self._current(*k)) == e[3]}
                self._access_limit = max(1024, 2 * len(self.access))
        return entry

    def touch(self, dbid: int, key: bytes, now: int, settings) -> list:
        """An access: refresh the LRU time, bump the LFU counter."""
        entry = self._access_entry(dbid, key, now)
        counter = _lfu_decayed(entry, now, settings)
        entry[0] = now
        entry[1] = _lfu_log_incr(counter, settings["lfu-log-factor"])
        entry[2] = now
        return entry

    def peek(self, dbid: int, key: bytes, now: int) -> list:
        """The access entry, without counting an access."""
        return self._access_entry(dbid, key, now)

    def forget(self, dbid: int, key: bytes) -> None:
        k = (dbid, key)
        self.strings.pop(k, None)
        self.collections.pop(k, None)
        self.access.pop(k, None)

    def move(self, src: tuple, dst: tuple) -> None:
        """RENAME / MOVE: the value object moves, and its metadata with it."""
        for table in (self.strings, self.collections, self.access):
            entry = table.pop(src, None)
            if entry is not None:
                table[dst] = entry
            else:
                table.pop(dst, None)

    def copy(self, src: tuple, dst: tuple, new_value, now: int) -> None:
        """COPY: the copy keeps the source's encoding, but gets a fresh LRU."""
        entry = self.strings.get(src)
        if isinstance(new_value, bytes):
            value = self._current(*src)
            if entry is not None and entry[0] is value:
                self.strings[dst] = (new_value, entry[1], False)
            else:
                # An integer copy is a new object: Redis does not share it.
                self.strings[dst] = (new_value, b"", False)
        else:
            self.strings.pop(dst, None)
        coll = self.collections.get(src)
        if coll is not None and coll[0] is self._current(*src):
            self.collections[dst] = (new_value, coll[1])
        else:
            self.collections.pop(dst, None)
        self.access[dst] = [now, LFU_INIT_VAL, now, id(new_value)]


def key_meta(ks) -> KeyMeta:
    meta = ks.__dict__.get("key_meta")
    if meta is None:
        meta = ks.key_meta = KeyMeta(ks)
    return meta


def _existing_meta(ks):
    return ks.__dict__.get("key_meta")


def note_string_encoding(db, key: bytes, value: bytes, encoding: bytes = b"raw") -> None:
    """Tell OBJECT ENCODING that the string just stored at key is held in
    `encoding` (b"raw" after APPEND/SETRANGE/SETBIT ..., b"embstr" after
    INCRBYFLOAT) whatever its content looks like. Cheap; call after db.set."""
    n = len(value)
    if n > EMBSTR_MAX or n == 0:
        return  # long strings are raw whatever made them; b"" is never marked
    if n == 1:
        # CPython shares one bytes object per 1-byte value: give this key a
        # private copy, so that the mark identifies this value only.
        value = value[0].to_bytes(1, "big")
        db.data[key] = value
    key_meta(db.ks).mark_string(db.id, key, value, encoding)


def note_converted(ctx, key: bytes, value) -> None:
    """For the hash/set/zset commands: the collection at key (in ctx's db)
    just grew past its compact encoding's limits. OBJECT ENCODING then keeps
    reporting hashtable/skiplist after it shrinks, as Redis never converts
    back. Call it when the limit is crossed, not on every write."""
    encoding = _BIG.get(value.__class__)
    if encoding is not None:
        _ensure_prune_job(ctx.server)
        key_meta(ctx.server.keyspace).mark_collection(ctx.db.id, key, value, encoding)


def note_access(ctx, db, key: bytes) -> None:
    """Record an access to key by ctx's command for OBJECT IDLETIME / FREQ
    (skipped for clients in CLIENT NO-TOUCH mode)."""
    if ctx.no_touch:
        return
    tracker = ctx.server.memory_tracker
    if tracker is not None and tracker.touch_key(db, key):
        return  # eviction.py keeps the LRU/LFU records
    key_meta(db.ks).touch(db.id, key, now_ms(), ctx.server.settings)


def idle_ms(db, key: bytes) -> int:
    """Milliseconds since the last recorded access to key (see the module
    docstring for what is recorded)."""
    now = now_ms()
    return max(0, now - key_meta(db.ks).peek(db.id, key, now)[0])


def _lfu_decayed(entry: list, now: int, settings) -> int:
    period = settings["lfu-decay-time"]
    counter = entry[1]
    if period:
        periods = (now - entry[2]) // 60000 // period
        if periods:
            counter = max(0, counter - periods)
    return counter


def _lfu_log_incr(counter: int, factor: int) -> int:
    if counter >= 255:
        return 255
    base = max(0, counter - LFU_INIT_VAL)
    if random.random() < 1.0 / (base * factor + 1):
        counter += 1
    return counter


# ---------------------------------------------------------------- encodings


def _string_encoding(value: bytes) -> bytes:
    n = len(value)
    if n <= 20 and parse_int(value) is not None:
        return b"int"
    return b"embstr" if n <= EMBSTR_MAX else b"raw"


def _compact_fits(value, settings) -> bool | None:
    """True if a collection fits its compact encoding, None for lists."""
    cls = value.__class__
    if cls is dict:
        if len(value) > settings["hash-max-listpack-entries"]:
            return False
        limit = settings["hash-max-listpack-value"]
        return all(len(f) <= limit and len(v) <= limit for f, v in value.items())
    if cls is set:
        if len(value) > settings["set-max-intset-entries"]:
            return False
        for m in value:
            if len(m) > 20 or parse_int(m) is None:
                return False
        return True
    if cls is ZSet:
        if len(value) > settings["zset-max-listpack-entries"]:
            return False
        limit = settings["zset-max-listpack-value"]
        return all(len(m) <= limit for m in value.dict)
    return None


_BIG = {dict: b"hashtable", set: b"hashtable", ZSet: b"skiplist"}
_COMPACT = {dict: b"listpack", set: b"intset", ZSet: b"listpack"}


def encoding_of(value, settings, db=None, key: bytes | None = None) -> bytes:
    """The encoding Redis 7.0 would report for value (OBJECT ENCODING).
    With db and key, what the side table knows about that key is used too
    (raw short strings, collections that were converted before)."""
    cls = value.__class__
    meta = _existing_meta(db.ks) if db is not None else None
    if cls is bytes:
        if meta is not None:
            entry = meta.string_entry(db.id, key, value)
            if entry is not None and entry[1]:
                return entry[1]
        return _string_encoding(value)
    if cls is deque:
        return b"quicklist"  # Redis 7.0 has no listpack-encoded lists
    if meta is not None:
        known = meta.collection_encoding(db.id, key, value)
        if known is not None:
            return known
    fits = _compact_fits(value, settings)
    if fits is None:
        return b"unknown"
    if fits:
        return _COMPACT[cls]
    if db is not None:
        key_meta(db.ks).mark_collection(db.id, key, value, _BIG[cls])
    return _BIG[cls]


def _refcount(ctx, db, key, value) -> int:
    if value.__class__ is not bytes:
        return 1
    meta = _existing_meta(db.ks)
    entry = meta.string_entry(db.id, key, value) if meta is not None else None
    if entry is not None and (entry[1] not in (b"", b"int") or not entry[2]):
        return 1
    if _string_encoding(value) != b"int":
        return 1
    n = int(value)
    settings = ctx.server.settings
    if 0 <= n < SHARED_INTEGERS and (
            settings["maxmemory"] == 0 or settings["maxmemory-policy"] not in _LRU_LFU_POLICIES):
        return INT_MAX
    return 1


# ---------------------------------------------------------------- helpers


def _notify(ctx, db, event: bytes, key: bytes) -> None:
    ctx.server.keyspace.notify(db, "g", event, key)


def _signal_if_blocking_type(db, key, value) -> None:
    if value.__class__ is deque or value.__class__ is ZSet:
        db.signal_ready(key)


def _db_index(ctx, raw: bytes) -> int:
    """A DB index argument with Redis's checks (getIntFromObjectOrReply then
    selectDb)."""
    n = get_int(raw)
    if n < -2**31 or n > INT_MAX:
        raise ErrorReply("ERR value is out of range, value must between -2147483648 and "
                         "2147483647")
    if n < 0 or n >= len(ctx.server.keyspace):
        raise ErrorReply(errors.DB_INDEX)
    return n


def _duplicate(value):
    cls = value.__class__
    if cls is bytes:
        # Immutable: share it, except CPython's shared 1-byte objects, which
        # the side table could not tell apart (see note_string_encoding).
        return value[0].to_bytes(1, "big") if len(value) == 1 else value
    if cls is deque:
        return deque(value)
    if cls is dict:
        return dict(value)
    if cls is set:
        return set(value)
    return value.copy()  # ZSet


def _forget(db, key) -> None:
    meta = _existing_meta(db.ks)
    if meta is not None:
        meta.forget(db.id, key)


# ---------------------------------------------------------------- DEL EXISTS TYPE


def _delete_keys(ctx, argv):
    db = ctx.db
    removed = 0
    for key in argv[1:]:
        if db.delete(key):
            _forget(db, key)
            _notify(ctx, db, b"del", key)
            removed += 1
    ctx.server.dirty += removed
    return removed


@command("del", -2, "write", keys=KALL, group=G, summary="Delete keys")
def del_(ctx, argv):
    return _delete_keys(ctx, argv)


@command("unlink", -2, "write fast", keys=KALL, group=G, since="4.0.0",
         summary="Delete keys (memory reclaimed at once: there is no background thread)")
def unlink(ctx, argv):
    return _delete_keys(ctx, argv)


@command("exists", -2, "readonly fast", keys=KALL, group=G, summary="Count existing keys")
def exists(ctx, argv):
    db = ctx.db
    n = 0
    for key in argv[1:]:
        if db.exists(key):
            n += 1
    return n


@command("type", 2, "readonly fast", keys=K1, group=G, summary="The type of a key's value")
def type_(ctx, argv):
    value = ctx.db.get(argv[1])
    if value is None:
        return "none"
    name = TYPE_NAMES.get(value.__class__)
    return name.decode() if name is not None else "none"


@command("touch", -2, "readonly fast", keys=KALL, group=G, since="3.2.1",
         summary="Mark keys as accessed; count the existing ones")
def touch(ctx, argv):
    db = ctx.db
    ks = ctx.server.keyspace
    meta = key_meta(ks)
    settings = ctx.server.settings
    now = now_ms()
    n = 0
    tracker = ctx.server.memory_tracker
    for key in argv[1:]:
        if db.exists(key):
            if tracker is None or not tracker.touch_key(db, key):
                meta.touch(db.id, key, now, settings)
            n += 1
    return n


# ---------------------------------------------------------------- RENAME COPY MOVE


def _rename(ctx, argv, nx: bool):
    db = ctx.db
    src, dst = argv[1], argv[2]
    value = db.get(src)
    if value is None:
        raise ErrorReply(errors.NO_SUCH_KEY)
    if src == dst:
        return 0 if nx else "OK"
    note_access(ctx, db, src)
    when = db.expires.get(src)
    if db.exists(dst):
        if nx:
            return 0
        db.delete(dst)
    db.delete(src)
    db.set(dst, value)
    if when is not None:
        db.set_expire(dst, when)
    meta = _existing_meta(db.ks)
    if meta is not None:
        meta.move((db.id, src), (db.id, dst))
    _signal_if_blocking_type(db, dst, value)
    _notify(ctx, db, b"rename_from", src)
    _notify(ctx, db, b"rename_to", dst)
    ctx.server.dirty += 1
    return 1 if nx else "OK"


@command("rename", 3, "write", keys=(1, 2, 1), group=G, summary="Rename a key")
def rename(ctx, argv):
    return _rename(ctx, argv, False)


@command("renamenx", 3, "write fast", keys=(1, 2, 1), group=G,
         summary="Rename a key unless the new name exists")
def renamenx(ctx, argv):
    return _rename(ctx, argv, True)


@command("copy", -3, "write denyoom", keys=(1, 2, 1), group=G, since="6.2.0",
         summary="Copy a key's value (and TTL) to another key or database")
def copy(ctx, argv):
    src_db = ctx.db
    dst_db = src_db
    replace = False
    i = 3
    n = len(argv)
    while i < n:
        opt = argv[i].lower()
        if opt == b"replace":
            replace = True
        elif opt == b"db" and i + 1 < n:
            dst_db = ctx.server.keyspace[_db_index(ctx, argv[i + 1])]
            i += 1
        else:
            raise ErrorReply(errors.SYNTAX)
        i += 1
    src, dst = argv[1], argv[2]
    if src_db is dst_db and src == dst:
        raise ErrorReply("ERR source and destination objects are the same")
    value = src_db.get(src)
    if value is None:
        return 0
    note_access(ctx, src_db, src)
    when = src_db.expires.get(src)
    if dst_db.exists(dst):
        if not replace:
            return 0
        dst_db.delete(dst)
    new = _duplicate(value)
    dst_db.set(dst, new)
    if when is not None:
        dst_db.set_expire(dst, when)
    key_meta(src_db.ks).copy((src_db.id, src), (dst_db.id, dst), new, now_ms())
    _signal_if_blocking_type(dst_db, dst, new)
    _notify(ctx, dst_db, b"copy_to", dst)
    ctx.server.dirty += 1
    return 1


@command("move", 3, "write fast", keys=K1, group=G, summary="Move a key to another database")
def move(ctx, argv):
    src_db = ctx.db
    dst_db = ctx.server.keyspace[_db_index(ctx, argv[2])]
    if dst_db is src_db:
        raise ErrorReply("ERR source and destination objects are the same")
    key = argv[1]
    value = src_db.get(key)
    if value is None:
        return 0
    note_access(ctx, src_db, key)
    when = src_db.expires.get(key)
    if dst_db.exists(key):
        return 0
    dst_db.set(key, value)
    if when is not None:
        dst_db.set_expire(key, when)
    src_db.delete(key)
    meta = _existing_meta(src_db.ks)
    if meta is not None:
        meta.move((src_db.id, key), (dst_db.id, key))
    _signal_if_blocking_type(dst_db, key, value)
    _notify(ctx, src_db, b"move_from", key)
    _notify(ctx, dst_db, b"move_to", key)
    ctx.server.dirty += 1
    return 1


# ---------------------------------------------------------------- KEYS SCAN RANDOMKEY


def _not_expired(db, keys: list) -> list:
    """Drop keys past their deadline without deleting them (KEYS does not
    delete while it walks the keyspace)."""
    expires = db.expires
    if not expires:
        return keys
    now = now_ms()
    out = []
    for k in keys:
        when = expires.get(k)
        if when is None or when > now:
            out.append(k)
    return out


@command("keys", 2, "readonly", keys=(0, 0, 0), group=G, categories="dangerous",
         summary="Keys matching a glob-style pattern")
def keys(ctx, argv):
    db = ctx.db
    pattern = argv[1]
    if pattern == b"*":
        found = list(db.data)
    else:
        match = compile_glob(pattern)
        found = [k for k in db.data if match(k)]
    return _not_expired(db, found)


def scanner_of(server) -> Scanner:
    """The server's SCAN cursor state (one Scanner for the whole node)."""
    scanner = server.__dict__.get("scanner")
    if scanner is None:
        scanner = server.scanner = Scanner()
    return scanner


@command("scan", -2, "readonly", keys=(0, 0, 0), group=G, since="2.8.0",
         summary="Iterate the keyspace with a cursor")
def scan(ctx, argv):
    try:
        cursor = parse_cursor(argv[1])
    except ValueError:
        raise ErrorReply("ERR invalid cursor") from None
    count = 10
    pattern = None
    type_name = None
    i = 2
    n = len(argv)
    while i < n:
        opt = argv[i].lower()
        if i + 1 >= n:
            raise ErrorReply(errors.SYNTAX)
        if opt == b"count":
            count = get_int(argv[i + 1])
            if count < 1:
                raise ErrorReply(errors.SYNTAX)
        elif opt == b"match":
            pattern = argv[i + 1]
        elif opt == b"type":
            type_name = argv[i + 1].lower()
        else:
            raise ErrorReply(errors.SYNTAX)
        i += 2
    db = ctx.db
    next_cursor, found = scanner_of(ctx.server).scan(db.data, cursor, count)
    if pattern is not None and pattern != b"*":
        match = compile_glob(pattern)
        found = [k for k in found if match(k)]
    out = []
    for key in found:
        value = db.get(key)  # a key past its deadline is expired here, as Redis does
        if value is None:
            continue
        if type_name is not None and TYPE_NAMES.get(value.__class__) != type_name:
            continue
        out.append(key)
    return [b"%d" % next_cursor, out]


@command("randomkey", 1, "readonly", group=G, summary="A random key")
def randomkey(ctx, argv):
    return ctx.db.random_key()


# ---------------------------------------------------------------- OBJECT

container("object", -2, group=G, since="2.2.3", summary="Object introspection")


def _object_value(ctx, argv):
    ks = ctx.server.keyspace
    touch, ks.touch = ks.touch, None  # OBJECT is not an access (LRU/LFU records)
    try:
        return ctx.db.get(argv[2])
    finally:
        ks.touch = touch


def _ensure_prune_job(server) -> None:
    """A cron job (installed on first use) that lets go of deleted big
    collections the side table still holds, once a second."""
    if server.__dict__.get("_key_meta_cron"):
        return
    server._key_meta_cron = True
    meta = key_meta(server.keyspace)
    last = [0.0]

    def prune():
        now = time.monotonic()
        if meta.collections and now - last[0] >= 1.0:
            last[0] = now
            meta.prune_collections()

    server.cron_jobs.append(prune)


@command("object|encoding", 3, "readonly", keys=(2, 2, 1), group=G, since="2.2.3",
         summary="The internal representation of a key's value")
def object_encoding(ctx, argv):
    value = _object_value(ctx, argv)
    if value is None:
        return None
    _ensure_prune_job(ctx.server)
    return encoding_of(value, ctx.server.settings, ctx.db, argv[2])


@command("object|refcount", 3, "readonly", keys=(2, 2, 1), group=G, since="2.2.3",
         summary="References to a key's value")
def object_refcount(ctx, argv):
    value = _object_value(ctx, argv)
    if value is None:
        return None
    return _refcount(ctx, ctx.db, argv[2], value)


@command("object|idletime", 3, "readonly", keys=(2, 2, 1), group=G, since="2.2.3",
         summary="Seconds since the last access to a key")
def object_idletime(ctx, argv):
    value = _object_value(ctx, argv)
    if value is None:
        return None
    if ctx.server.settings["maxmemory-policy"] in _LFU_POLICIES:
        raise ErrorReply(
            "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that "
            "when switching between policies at runtime LRU and LFU data will take some time "
            "to adjust.")
    tracker = ctx.server.memory_tracker
    ms = tracker.idle_ms(ctx.db, argv[2]) if tracker is not None else None
    return (idle_ms(ctx.db, argv[2]) if ms is None else ms) // 1000


@command("object|freq", 3, "readonly", keys=(2, 2, 1), group=G, since="4.0.0",
         summary="The logarithmic access frequency counter of a key")
def object_freq(ctx, argv):
    value = _object_value(ctx, argv)
    if value is None:
        return None
    if ctx.server.settings["maxmemory-policy"] not in _LFU_POLICIES:
        raise ErrorReply(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. "
            "Please note that when switching between policies at runtime LRU and LFU data "
            "will take some time to adjust.")
    db = ctx.db
    tracker = ctx.server.memory_tracker
    counter = tracker.freq(db, argv[2]) if tracker is not None else None
    if counter is not None:
        return counter  # eviction.py keeps the LFU counters
    now = now_ms()
    entry = key_meta(db.ks).peek(db.id, argv[2], now)
    return _lfu_decayed(entry, now, ctx.server.settings)


@command("object|help", 2, "loading stale", group=G, since="6.2.0",
         summary="Help on the OBJECT subcommands")
def object_help(ctx, argv):
    # Status lines, as Redis sends help texts.
    return [
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    The internal representation of the value stored at <key>.",
        "FREQ <key>",
        "    The logarithmic access frequency counter of <key> (LFU policies only).",
        "IDLETIME <key>",
        "    Seconds since <key> was last accessed (approximate).",
        "REFCOUNT <key>",
        "    How many references the value stored at <key> has.",
        "HELP",
        "    Print this help.",
    ]


# ---------------------------------------------------------------- expiry

_EXPIRE_NX, _EXPIRE_XX, _EXPIRE_GT, _EXPIRE_LT = 1, 2, 4, 8


def _expire_flags(argv) -> int:
    flags = 0
    for opt in argv[3:]:
        low = opt.lower()
        if low == b"nx":
            flags |= _EXPIRE_NX
        elif low == b"xx":
            flags |= _EXPIRE_XX
        elif low == b"gt":
            flags |= _EXPIRE_GT
        elif low == b"lt":
            flags |= _EXPIRE_LT
        else:
            raise ErrorReply("ERR Unsupported option %s" % opt.decode("utf-8", "replace"))
    if flags & _EXPIRE_NX and flags & (_EXPIRE_XX | _EXPIRE_GT | _EXPIRE_LT):
        raise ErrorReply("ERR NX and XX, GT or LT options at the same time are not compatible")
    if flags & _EXPIRE_GT and flags & _EXPIRE_LT:
        raise ErrorReply("ERR GT and LT options at the same time are not compatible")
    return flags


# C's LLONG_MIN / 1000 truncates toward zero.
_MIN_SECONDS = -(2**63 // 1000)
_MAX_SECONDS = LLONG_MAX // 1000


def _expire_generic(ctx, argv, name: str, relative: bool, unit_ms: int):
    flags = _expire_flags(argv)
    when = get_int(argv[2])
    if unit_ms == 1000:
        if when > _MAX_SECONDS or when < _MIN_SECONDS:
            raise ErrorReply("ERR invalid expire time in '%s' command" % name)
        when *= 1000
    base = now_ms() if relative else 0
    if when > LLONG_MAX - base:
        raise ErrorReply("ERR invalid expire time in '%s' command" % name)
    when += base
    db = ctx.db
    key = argv[1]
    if db.get(key) is None:
        return 0
    note_access(ctx, db, key)
    if flags:
        current = db.expires.get(key)
        if flags & _EXPIRE_NX and current is not None:
            return 0
        if flags & _EXPIRE_XX and current is None:
            return 0
        if flags & _EXPIRE_GT and (current is None or when <= current):
            return 0
        if flags & _EXPIRE_LT and current is not None and when >= current:
            return 0
    server = ctx.server
    if (when <= now_ms() and not ctx.is_primary and not server.keyspace.replica_mode
            and not server.loading):
        db.delete(key)
        _forget(db, key)
        ctx.propagate([b"DEL", key])
        _notify(ctx, db, b"del", key)
    else:
        db.set_expire(key, when)
        ctx.propagate([b"PEXPIREAT", key, b"%d" % when] + argv[3:])
        _notify(ctx, db, b"expire", key)
    server.dirty += 1
    return 1


@command("expire", -3, "write fast", keys=K1, group=G,
         summary="Set a key's time to live in seconds")
def expire(ctx, argv):
    return _expire_generic(ctx, argv, "expire", True, 1000)


@command("pexpire", -3, "write fast", keys=K1, group=G, since="2.6.0",
         summary="Set a key's time to live in milliseconds")
def pexpire(ctx, argv):
    return _expire_generic(ctx, argv, "pexpire", True, 1)


@command("expireat", -3, "write fast", keys=K1, group=G, since="1.2.0",
         summary="Set a key's expiry as a unix time in seconds")
def expireat(ctx, argv):
    return _expire_generic(ctx, argv, "expireat", False, 1000)


@command("pexpireat", -3, "write fast", keys=K1, group=G, since="2.6.0",
         summary="Set a key's expiry as a unix time in milliseconds")
def pexpireat(ctx, argv):
    return _expire_generic(ctx, argv, "pexpireat", False, 1)


def _ttl_generic(ctx, key: bytes, absolute: bool, in_ms: bool) -> int:
    db = ctx.db
    if not db.exists(key):
        return -2
    when = db.expires.get(key)
    if when is None:
        return -1
    left = when if absolute else when - now_ms()
    if left < 0:
        left = 0
    return left if in_ms else (left + 500) // 1000


@command("ttl", 2, "readonly fast", keys=K1, group=G,
         summary="A key's time to live in seconds")
def ttl(ctx, argv):
    return _ttl_generic(ctx, argv[1], False, False)


@command("pttl", 2, "readonly fast", keys=K1, group=G, since="2.6.0",
         summary="A key's time to live in milliseconds")
def pttl(ctx, argv):
    return _ttl_generic(ctx, argv[1], False, True)


@command("expiretime", 2, "readonly fast", keys=K1, group=G, since="7.0.0",
         summary="A key's expiry as a unix time in seconds")
def expiretime(ctx, argv):
    return _ttl_generic(ctx, argv[1], True, False)


@command("pexpiretime", 2, "readonly fast", keys=K1, group=G, since="7.0.0",
         summary="A key's expiry as a unix time in milliseconds")
def pexpiretime(ctx, argv):
    return _ttl_generic(ctx, argv[1], True, True)


@command("persist", 2, "write fast", keys=K1, group=G, since="2.2.0",
         summary="Remove a key's expiry")
def persist(ctx, argv):
    db = ctx.db
    key = argv[1]
    if db.get(key) is None:
        return 0
    note_access(ctx, db, key)
    if not db.persist(key):
        return 0
    _notify(ctx, db, b"persist", key)
    ctx.server.dirty += 1
    return 1


__all__ = ["encoding_of", "note_string_encoding", "note_converted", "note_access", "idle_ms",
           "scanner_of", "key_meta", "KeyMeta"]
