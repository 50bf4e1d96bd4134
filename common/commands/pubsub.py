"""Pub/sub: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE PUNSUBSCRIBE PUBLISH PUBSUB.

Subscriptions live in the server (channels / patterns registries); messages
go out as RESP3 pushes or RESP2 arrays through Server.publish.
"""

from __future__ import annotations

from hakv.common.commands.table import command, container
from hakv.common.dispatch import NO_REPLY
from hakv.common.glob import compile_glob
from hakv.common.resp import ErrorReply, Push

G = "pubsub"


def _count(ctx):
    return len(ctx.channels) + len(ctx.patterns)


@command("subscribe", -2, "pubsub noscript loading stale", group=G)
def subscribe(ctx, argv):
    server = ctx.server
    for ch in argv[1:]:
        if ch not in ctx.channels:
            ctx.channels.add(ch)
            server.channels.setdefault(ch, set()).add(ctx)
        ctx.reply(Push([b"subscribe", ch, _count(ctx)]))
    return NO_REPLY


@command("psubscribe", -2, "pubsub noscript loading stale", group=G)
def psubscribe(ctx, argv):
    server = ctx.server
    for pat in argv[1:]:
        if pat not in ctx.patterns:
            ctx.patterns.add(pat)
            entry = server.patterns.get(pat)
            if entry is None:
                entry = server.patterns[pat] = (compile_glob(pat), set())
            entry[1].add(ctx)
        ctx.reply(Push([b"psubscribe", pat, _count(ctx)]))
    return NO_REPLY


@command("unsubscribe", -1, "pubsub noscript loading stale", group=G)
def unsubscribe(ctx, argv):
    server = ctx.server
    targets = argv[1:] or list(ctx.channels)
    if not targets:
        ctx.reply(Push([b"unsubscribe", None, _count(ctx)]))
        return NO_REPLY
    for ch in targets:
        if ch in ctx.channels:
            ctx.channels.discard(ch)
            subs = server.channels.get(ch)
            if subs is not None:
                subs.discard(ctx)
                if not subs:
                    del server.channels[ch]
        ctx.reply(Push([b"unsubscribe", ch, _count(ctx)]))
    return NO_REPLY


@command("punsubscribe", -1, "pubsub noscript loading stale", group=G)
def punsubscribe(ctx, argv):
    server = ctx.server
    targets = argv[1:] or list(ctx.patterns)
    if not targets:
        ctx.reply(Push([b"punsubscribe", None, _count(ctx)]))
        return NO_REPLY
    for pat in targets:
        if pat in ctx.patterns:
            ctx.patterns.discard(pat)
            entry = server.patterns.get(pat)
            if entry is not None:
                entry[1].discard(ctx)
                if not entry[1]:
                    del server.patterns[pat]
        ctx.reply(Push([b"punsubscribe", pat, _count(ctx)]))
    return NO_REPLY


@command("publish", 3, "pubsub loading stale fast may_replicate sentinel", group=G)
def publish(ctx, argv):
    n = ctx.server.publish(argv[1], argv[2])
    ctx.propagate(argv)  # subscribers on replicas get it through the stream
    return n


container("pubsub", -2, group=G)


@command("pubsub|channels", -2, "pubsub loading stale", group=G)
def pubsub_channels(ctx, argv):
    if len(argv) > 3:
        raise _sub_syntax(argv)
    chans = list(ctx.server.channels)
    if len(argv) > 2:
        match = compile_glob(argv[2])
        chans = [c for c in chans if match(c)]
    return chans


@command("pubsub|numsub", -2, "pubsub loading stale", group=G)
def pubsub_numsub(ctx, argv):
    out = []
    for ch in argv[2:]:
        out += [ch, len(ctx.server.channels.get(ch, ()))]
    return out


@command("pubsub|numpat", 2, "pubsub loading stale", group=G)
def pubsub_numpat(ctx, argv):
    return len(ctx.server.patterns)


@command("pubsub|shardchannels", -2, "pubsub loading stale", group=G)
def pubsub_shardchannels(ctx, argv):
    if len(argv) > 3:
        raise _sub_syntax(argv)
    chans = list(ctx.server.shard_channels)
    if len(argv) > 2:
        match = compile_glob(argv[2])
        chans = [c for c in chans if match(c)]
    return chans


@command("pubsub|shardnumsub", -2, "pubsub loading stale", group=G)
def pubsub_shardnumsub(ctx, argv):
    out = []
    for ch in argv[2:]:
        out += [ch, len(ctx.server.shard_channels.get(ch, ()))]
    return out


def _sub_syntax(argv) -> ErrorReply:
    return ErrorReply("ERR unknown subcommand or wrong number of arguments for '%s'. "
                      "Try PUBSUB HELP." % argv[1].decode("utf-8", "surrogateescape"))


# Sharded pub/sub (Redis 7): without a cluster, shard channels are one more
# namespace, with their own subscription count and `smessage` messages.


@command("ssubscribe", -2, "pubsub noscript loading stale", keys=(1, -1, 1), group=G)
def ssubscribe(ctx, argv):
    server = ctx.server
    for ch in argv[1:]:
        if ch not in ctx.shard_channels:
            ctx.shard_channels.add(ch)
            server.shard_channels.setdefault(ch, set()).add(ctx)
        ctx.reply(Push([b"ssubscribe", ch, len(ctx.shard_channels)]))
    return NO_REPLY


@command("sunsubscribe", -1, "pubsub noscript loading stale", keys=(1, -1, 1), group=G)
def sunsubscribe(ctx, argv):
    server = ctx.server
    targets = argv[1:] or list(ctx.shard_channels)
    if not targets:
        ctx.reply(Push([b"sunsubscribe", None, 0]))
        return NO_REPLY
    for ch in targets:
        if ch in ctx.shard_channels:
            ctx.shard_channels.discard(ch)
            subs = server.shard_channels.get(ch)
            if subs is not None:
                subs.discard(ctx)
                if not subs:
                    del server.shard_channels[ch]
        ctx.reply(Push([b"sunsubscribe", ch, len(ctx.shard_channels)]))
    return NO_REPLY


@command("spublish", 3, "pubsub loading stale fast may_replicate", keys=(1, 1, 1), group=G)
def spublish(ctx, argv):
    n = ctx.server.spublish(argv[1], argv[2])
    ctx.propagate(argv)
    return n


@command("pubsub|help", 2, "loading stale", group=G)
def pubsub_help(ctx, argv):
    return [
        b"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"CHANNELS [<pattern>]", b"    Channels with at least one subscriber (matching the "
        b"glob-style <pattern> if given).",
        b"NUMPAT", b"    The number of pattern subscriptions.",
        b"NUMSUB [<channel> ...]", b"    The number of subscribers of each channel.",
        b"SHARDCHANNELS [<pattern>]", b"    Shard channels with subscribers (always none here).",
        b"SHARDNUMSUB [<shardchannel> ...]", b"    The number of subscribers of each shard "
        b"channel.",
        b"HELP", b"    This help.",
    ]
