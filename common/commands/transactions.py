"""Transactions: MULTI EXEC DISCARD WATCH UNWATCH.

Commands sent after MULTI are queued by the gate (dispatch.execute); errors
found while queueing make EXEC answer EXECABORT. WATCH marks keys; any write
to them (db.modified) sets the watcher's dirty_cas and EXEC then answers a
null array. What EXEC's commands change is propagated as one MULTI/EXEC block
(the server wraps a call's propagation when it holds several commands).
"""

from __future__ import annotations

from hakv.common import errors
from hakv.common.commands.table import command
from hakv.common.dispatch import NO_REPLY, call
from hakv.common.resp import NULL_ARRAY, ErrorReply, Raw, encode

G = "transactions"


@command("multi", 1, "noscript loading stale fast allow_busy", group=G)
def multi(ctx, argv):
    if ctx.multi is not None:
        raise ErrorReply("ERR MULTI calls can not be nested")
    ctx.multi = []
    ctx.multi_error = False
    return "OK"


@command("discard", 1, "noscript loading stale fast allow_busy", group=G)
def discard(ctx, argv):
    if ctx.multi is None:
        raise ErrorReply("ERR DISCARD without MULTI")
    ctx.multi = None
    ctx.multi_error = False
    ctx.server.unwatch_all(ctx)
    return "OK"


@command("exec", 1, "noscript loading stale skip_slowlog", group=G)
def exec_(ctx, argv):
    if ctx.multi is None:
        raise ErrorReply("ERR EXEC without MULTI")
    queued = ctx.multi
    ctx.multi = None
    server = ctx.server
    if ctx.multi_error:
        ctx.multi_error = False
        server.unwatch_all(ctx)
        raise ErrorReply(errors.EXECABORT)
    if ctx.dirty_cas or _watched_key_expired(ctx):
        server.unwatch_all(ctx)
        return NULL_ARRAY
    server.unwatch_all(ctx)
    # The reply is built as bytes: an array header counting the commands, then
    # what each command wrote, in order. Besides its reply, that may be the
    # replies a handler wrote itself (SUBSCRIBE) or messages the client got
    # meanwhile (a PUBLISH to its own channel): Redis interleaves them the same.
    parts = [b"*%d\r\n" % len(queued)]
    ctx.in_exec = True
    try:
        for cmd, cmd_argv in queued:
            # Only ACL rules are checked again per command, as in Redis (the
            # write checks ran for EXEC as a whole, in the gate).
            if server.acl is not None:
                denied = server.acl.check(ctx, cmd, cmd_argv)
                if denied is not None:
                    parts.append(encode(denied, ctx.resp3))
                    continue
            mark = len(ctx.out)
            reply = call(ctx, cmd, cmd_argv)
            parts.extend(ctx.out[mark:])
            del ctx.out[mark:]
            if reply is not NO_REPLY:
                parts.append(encode(reply, ctx.resp3))  # HELLO may have switched it
    finally:
        ctx.in_exec = False
    ctx.custom_propagation = True  # EXEC itself is not propagated; its commands are
    if server.pending_propagation:
        server.flush_propagation()
    if server.keyspace.ready_keys:
        server.handle_ready_keys()
    return Raw(b"".join(parts))


def _watched_key_expired(ctx) -> bool:
    """A key alive when WATCHed but past its deadline now (even if nobody
    removed it yet) counts as changed."""
    return any((db, key) not in ctx.watch_expired and db.is_logically_expired(key)
               for db, key in ctx.watched)


@command("watch", -2, "noscript loading stale fast allow_busy", keys=(1, -1, 1), group=G)
def watch(ctx, argv):
    if ctx.multi is not None:
        raise ErrorReply("ERR WATCH inside MULTI is not allowed")
    db = ctx.db
    for key in argv[1:]:
        if (db, key) in ctx.watched:
            continue
        ctx.watched.append((db, key))
        if db.is_logically_expired(key):
            ctx.watch_expired.add((db, key))
        clients = db.watched.get(key)
        if clients is None:
            clients = db.watched[key] = set()
        clients.add(ctx)
    return "OK"


@command("unwatch", 1, "noscript loading stale fast allow_busy", group=G)
def unwatch(ctx, argv):
    ctx.server.unwatch_all(ctx)
    return "OK"
