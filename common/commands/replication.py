"""Replication commands: REPLICAOF/SLAVEOF, ROLE, REPLCONF, SYNC/PSYNC, WAIT, FAILOVER.

The logic lives in hakv.primary (ReplicationSource: server.replication) and
hakv.replica (Follower: server.follower); these handlers parse and delegate.
"""

from __future__ import annotations

from hakv.common import errors
from hakv.common.commands.table import command
from hakv.common.numbers import parse_int
from hakv.common.resp import ErrorReply

G = "server"


def _source(ctx):
    source = getattr(ctx.server, "replication", None)
    if source is None:
        raise ErrorReply("ERR replication is not available on this node")
    return source


def _follower(ctx):
    follower = getattr(ctx.server, "follower", None)
    if follower is None:
        raise ErrorReply("ERR replication is not available on this node")
    return follower


@command("replicaof", 3, "admin noscript stale no_async_loading", group=G)
def replicaof(ctx, argv):
    follower = _follower(ctx)
    if _source(ctx).failover.active:
        raise ErrorReply("ERR REPLICAOF not allowed while failing over.")
    if argv[1].lower() == b"no" and argv[2].lower() == b"one":
        if follower.host is not None:
            follower.unset_primary(ctx.info_line())
        return "OK"
    port = parse_int(argv[2])
    if port is None or not 0 <= port <= 65535:
        raise ErrorReply("ERR Invalid master port")
    host = argv[1].decode("utf-8", "surrogateescape")
    if follower.host is not None and follower.host.lower() == host.lower() \
            and follower.port == port:
        ctx.server.log("notice", "REPLICAOF would result into synchronization with the master "
                       "we are already connected with. No operation performed.")
        return "OK Already connected to specified master"
    follower.set_primary(host, port, ctx.info_line())
    return "OK"


@command("slaveof", 3, "admin noscript stale no_async_loading", group=G)
def slaveof(ctx, argv):
    return replicaof(ctx, argv)


@command("role", 1, "noscript loading stale fast sentinel", group=G, categories="admin dangerous")
def role(ctx, argv):
    follower = getattr(ctx.server, "follower", None)
    if follower is not None and follower.host is not None:
        return follower.role_reply()
    return _source(ctx).role_reply()


@command("replconf", -1, "admin noscript loading stale allow_busy", group=G)
def replconf(ctx, argv):
    return _source(ctx).replconf(ctx, argv)


@command("psync", -3, "admin noscript no_async_loading no_multi", group=G)
def psync(ctx, argv):
    return _source(ctx).sync(ctx, argv)


@command("sync", 1, "admin noscript no_async_loading no_multi", group=G)
def sync(ctx, argv):
    return _source(ctx).sync(ctx, argv)


@command("failover", -1, "admin noscript stale", group=G)
def failover(ctx, argv):
    """FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms] (hakv.primary.failover)."""
    return _source(ctx).failover.command(argv)


@command("wait", 3, "noscript", group="generic")
def wait(ctx, argv):
    source = _source(ctx)
    if source.is_replica():
        raise ErrorReply(
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis "
            "4.0 if a replica is configured to be writable (which is not the default) writes to "
            "replicas are just local and are not propagated.")
    numreplicas = parse_int(argv[1])
    if numreplicas is None:
        raise ErrorReply(errors.NOT_INTEGER)
    timeout = parse_int(argv[2])
    if timeout is None:
        raise ErrorReply("ERR timeout is not an integer or out of range")
    if timeout < 0:
        raise ErrorReply("ERR timeout is negative")
    return source.wait(ctx, numreplicas, timeout)
