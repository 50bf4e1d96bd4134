"""Persistence commands: SAVE BGSAVE BGREWRITEAOF LASTSAVE DUMP RESTORE DEBUG RELOAD.

The work is done by the persistence component (server.persistence, see
common/persistence.py); DUMP payloads are rdb.py's, with the node's
rdbcompression and encoding limits, so a real Redis 7.0 RESTOREs ours and we
RESTORE its.
"""

from __future__ import annotations

import time
from collections import deque

from hakv.common import errors, rdb, snapshot
from hakv.common.commands import server as _server_family  # noqa: F401  (the DEBUG container)
from hakv.common.commands.table import command
from hakv.common.numbers import get_int
from hakv.common.resp import ErrorReply
from hakv.common.types.zset import ZSet

K1 = (1, 1, 1)

BUSYKEY = "BUSYKEY Target key name already exists."
ALREADY_SAVING = "ERR Background save already in progress"


def _persistence(ctx):
    p = getattr(ctx.server, "persistence", None)
    if p is None:
        raise ErrorReply("ERR persistence is not available on this node")
    return p


# ------------------------------------------------------------------ snapshots


@command("save", 1, "admin noscript no_async_loading no_multi", group="server")
def save(ctx, argv):
    p = _persistence(ctx)
    if ctx.server.child_kind == "rdb":
        raise ErrorReply(ALREADY_SAVING)
    if p.save():
        return "OK"
    raise ErrorReply("ERR")


@command("bgsave", -1, "admin noscript no_async_loading", group="server")
def bgsave(ctx, argv):
    p = _persistence(ctx)
    schedule = False
    if len(argv) > 1:
        if len(argv) == 2 and argv[1].lower() == b"schedule":
            schedule = True
        else:
            raise ErrorReply(errors.SYNTAX)
    server = ctx.server
    if server.child_kind == "rdb":
        raise ErrorReply(ALREADY_SAVING)
    if server.child is not None or ctx.in_exec:
        if schedule or ctx.in_exec:
            p.bgsave_scheduled = True
            return "Background saving scheduled"
        raise ErrorReply("ERR Another child process is active (AOF?): can't BGSAVE right now. "
                         "Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.")
    reply = p.bgsave()
    if isinstance(reply, ErrorReply):
        raise reply
    return reply


@command("bgrewriteaof", 1, "admin noscript no_async_loading", group="server")
def bgrewriteaof(ctx, argv):
    p = _persistence(ctx)
    if ctx.in_exec and ctx.server.child_kind != "aof":
        p.aof.rewrite_scheduled = True
        return "Background append only file rewriting scheduled"
    reply = p.bgrewriteaof()
    if isinstance(reply, ErrorReply):
        raise reply
    return reply


@command("lastsave", 1, "loading stale fast", group="server", categories="admin dangerous")
def lastsave(ctx, argv):
    return _persistence(ctx).lastsave


@command("debug|reload", -2, "admin noscript loading stale", group="server")
def debug_reload(ctx, argv):
    """Save, flush and load the dump again (options MERGE NOFLUSH NOSAVE)."""
    p = _persistence(ctx)
    opts = {a.lower() for a in argv[2:]}
    if not opts <= {b"merge", b"noflush", b"nosave"}:
        raise ErrorReply(errors.SYNTAX)
    server = ctx.server
    if b"nosave" not in opts and not p.save():
        raise ErrorReply("ERR Error trying to save the DB")
    if b"noflush" not in opts and b"merge" not in opts:
        server.keyspace.flushall()
    try:
        with open(p.rdb_path(), "rb") as f:
            snapshot.load_rdb(server, f)
    except (OSError, rdb.RdbError, snapshot.LoadError) as exc:
        raise ErrorReply("ERR Error trying to load the RDB dump: %s" % exc) from None
    return "OK"


# ------------------------------------------------------------------ DUMP / RESTORE


@command("dump", 2, "readonly", keys=K1, group="generic")
def dump(ctx, argv):
    value = ctx.db.get(argv[1])
    if value is None:
        return None
    settings = ctx.server.settings
    return rdb.dump_payload(value, compress=settings["rdbcompression"],
                            limits=snapshot.encoding_limits(settings))


@command("restore", -4, "write denyoom", keys=K1, group="generic",
         categories="keyspace dangerous")
def restore(ctx, argv):
    key = argv[1]
    replace = absttl = False
    idle = freq = None
    i = 4
    while i < len(argv):
        opt = argv[i].lower()
        more = i + 1 < len(argv)
        if opt == b"replace":
            replace = True
        elif opt == b"absttl":
            absttl = True
        elif opt == b"idletime" and more and freq is None:
            idle = get_int(argv[i + 1])
            if idle < 0:
                raise ErrorReply("ERR Invalid IDLETIME value, must be >= 0")
            i += 1
        elif opt == b"freq" and more and idle is None:
            freq = get_int(argv[i + 1])
            if not 0 <= freq <= 255:
                raise ErrorReply("ERR Invalid FREQ value, must be >= 0 and <= 255")
            i += 1
        else:
            raise ErrorReply(errors.SYNTAX)
        i += 1
    db = ctx.db
    server = ctx.server
    if not replace and db.exists(key):
        raise ErrorReply(BUSYKEY)
    ttl = get_int(argv[2])
    if ttl < 0:
        raise ErrorReply("ERR Invalid TTL value, must be >= 0")
    try:
        value = rdb.load_payload(argv[3])
    except rdb.RdbError as exc:
        raise ErrorReply("ERR %s" % exc) from None
    deleted = db.delete(key) if replace else False
    now = int(time.time() * 1000)
    if ttl and not absttl:
        ttl += now
    ks = server.keyspace
    if ttl and ttl <= now and not (ctx.is_primary or ks.replica_mode or server.loading):
        # Already expired on a primary: the key is gone (and its old value too).
        if deleted:
            ctx.propagate([b"DEL", key])
            server.dirty += 1
            ks.notify(db, "g", b"del", key)
        return "OK"
    db.set(key, value)
    if ttl:
        db.set_expire(key, ttl)
    if value.__class__ is deque or value.__class__ is ZSet:
        db.signal_ready(key)
    ks.notify(db, "g", b"restore", key)
    server.dirty += 1
    if ttl and not absttl:
        # Propagate the absolute deadline, so a replica or an AOF replayed
        # later does not stretch the TTL.
        out = [b"RESTORE", key, b"%d" % ttl, argv[3], b"ABSTTL"]
        if replace:
            out.append(b"REPLACE")
        if idle is not None:
            out += [b"IDLETIME", b"%d" % idle]
        if freq is not None:
            out += [b"FREQ", b"%d" % freq]
        ctx.propagate(out)
    return "OK"
