"""Server commands: INFO DBSIZE FLUSHDB FLUSHALL SWAPDB CONFIG COMMAND TIME
DEBUG MONITOR SHUTDOWN SLOWLOG MEMORY LATENCY."""

from __future__ import annotations

import os
import re
import time

from hakv.common import config, errors
from hakv.common.commands.table import command, container
from hakv.common.config import BY_NAME, MULTI_ARG_KINDS, ConfigError
from hakv.common.glob import compile_glob
from hakv.common.numbers import get_int, parse_int
from hakv.common.resp import ErrorReply, Verbatim

G = "server"


@command("info", -1, "loading stale sentinel", group=G)
def info(ctx, argv):
    return Verbatim(ctx.server.info([a.decode("utf-8", "replace") for a in argv[1:]]))


@command("dbsize", 1, "readonly fast", group=G, categories="keyspace")
def dbsize(ctx, argv):
    return len(ctx.db.data)


def _flush_lazy(ctx, argv) -> bool:
    """FLUSHDB/FLUSHALL [ASYNC|SYNC]: True to free in the background (ASYNC,
    or no argument with lazyfree-lazy-user-flush)."""
    if len(argv) > 2:
        raise ErrorReply(errors.SYNTAX)
    if len(argv) == 2:
        mode = argv[1].lower()
        if mode not in (b"async", b"sync"):
            raise ErrorReply(errors.SYNTAX)
        return mode == b"async"
    return ctx.server.settings["lazyfree-lazy-user-flush"]


@command("flushdb", -1, "write", group=G, categories="keyspace dangerous")
def flushdb(ctx, argv):
    lazy = _flush_lazy(ctx, argv)
    ctx.server.dirty += ctx.db.flush(lazy) + 1
    return "OK"


@command("flushall", -1, "write", group=G, categories="keyspace dangerous")
def flushall(ctx, argv):
    lazy = _flush_lazy(ctx, argv)
    server = ctx.server
    server.dirty += server.keyspace.flushall(lazy) + 1
    for hook in getattr(server, "flushall_hooks", ()):
        hook()
    return "OK"


@command("swapdb", 3, "write fast", group=G, categories="keyspace dangerous")
def swapdb(ctx, argv):
    a = parse_int(argv[1])
    b = parse_int(argv[2])
    if a is None:
        raise ErrorReply("ERR invalid first DB index")
    if b is None:
        raise ErrorReply("ERR invalid second DB index")
    n = len(ctx.server.keyspace)
    if not (0 <= a < n and 0 <= b < n):
        raise ErrorReply("ERR DB index is out of range")
    ctx.server.keyspace.swap(a, b)
    ctx.server.dirty += 1
    return "OK"


@command("time", 1, "loading stale fast", group=G)
def time_(ctx, argv):
    now = time.time()
    sec = int(now)
    return [b"%d" % sec, b"%d" % int((now - sec) * 1e6)]


@command("monitor", 1, "admin noscript loading stale", group=G)
def monitor(ctx, argv):
    if ctx.monitor:
        return "OK"
    ctx.monitor = True
    ctx.server.monitors.append(ctx)
    return "OK"


@command("shutdown", -1, "admin noscript loading stale no_multi sentinel allow_busy", group=G)
def shutdown(ctx, argv):
    save = None
    now = force = abort = False
    nosave_and_save = False
    for a in argv[1:]:
        a = a.lower()
        if a == b"nosave":
            nosave_and_save = nosave_and_save or save is True
            save = False
        elif a == b"save":
            nosave_and_save = nosave_and_save or save is False
            save = True
        elif a == b"now":
            now = True
        elif a == b"force":
            force = True
        elif a == b"abort":
            abort = True
        else:
            raise ErrorReply(errors.SYNTAX)
    if nosave_and_save or (abort and (save is not None or now or force)):
        raise ErrorReply(errors.SYNTAX)
    server = ctx.server
    if abort:
        if getattr(server, "abort_shutdown", None) is None or not server.abort_shutdown():
            raise ErrorReply("ERR No shutdown in progress.")
        return "OK"
    if server.mode_name() == "sentinel":
        err = server.shutdown(save)
    else:
        # Unless NOW, a primary may first wait for lagging replicas (shutdown-timeout).
        err = server.shutdown(save, now=now, force=force, client=ctx)
    if err is not None:
        return err
    from hakv.common.dispatch import NO_REPLY
    return NO_REPLY


# ------------------------------------------------------------------ CONFIG

container("config", -2, group=G)


@command("config|get", -3, "admin noscript loading stale", group=G)
def config_get(ctx, argv):
    settings = ctx.server.settings
    out: dict = {}
    for pattern in argv[2:]:
        if not any(c in pattern for c in b"*?["):
            # A plain name is looked up, and answered with the name as typed.
            d = BY_NAME.get(pattern.decode("utf-8", "replace").lower())
            if d is not None and not d.multi and pattern not in out:
                value = settings.formatted(pattern.decode().lower())
                out[pattern] = value.encode("utf-8", "surrogateescape")
            continue
        match = compile_glob(pattern.lower(), nocase=True)
        for name, value in settings.matching(match):
            out[name.encode()] = value.encode("utf-8", "surrogateescape")
    if ctx.resp3:
        return out
    flat = []
    for k, v in out.items():
        flat += [k, v]
    return flat


@command("config|set", -4, "admin noscript loading stale", group=G)
def config_set(ctx, argv):
    if len(argv) % 2:
        raise ErrorReply(errors.SYNTAX)
    settings = ctx.server.settings
    # Redis's order: an unknown name anywhere wins; then immutable or repeated
    # names (reported as typed); then each value (reported in lower case).
    names = [argv[i].decode("utf-8", "replace") for i in range(2, len(argv), 2)]
    for name in names:
        d = BY_NAME.get(name.lower())
        if d is None or d.multi:
            raise ErrorReply("ERR Unknown option or number of arguments for CONFIG SET - '%s'"
                             % name)
    seen = set()
    for name in names:
        d = BY_NAME[name.lower()]
        reason = ("can't set immutable config" if not d.mutable
                  else "duplicate parameter" if d.name in seen else None)
        if reason:
            raise ErrorReply("ERR CONFIG SET failed (possibly related to argument '%s') - %s"
                             % (name, reason))
        seen.add(d.name)
    # Validate every value first, so a bad one leaves all settings unchanged.
    values = []
    for i, name in enumerate(names):
        d = BY_NAME[name.lower()]
        text = argv[3 + 2 * i].decode("utf-8", "surrogateescape")
        args = (text.split(" ") if text else []) if d.kind in MULTI_ARG_KINDS else [text]
        try:
            values.append((d.name, settings.parse(d.name, args)))
        except ConfigError as exc:
            raise ErrorReply("ERR CONFIG SET failed (possibly related to argument '%s') - %s"
                             % (name.lower(), exc)) from None
    for name, value in values:
        if name == "dir" and value:
            try:
                os.chdir(value)
            except OSError as exc:
                raise ErrorReply("ERR CONFIG SET failed (possibly related to argument 'dir') "
                                 "- %s" % exc.strerror) from None
        settings.store(name, value)
    return "OK"


@command("config|resetstat", 2, "admin noscript loading stale", group=G)
def config_resetstat(ctx, argv):
    server = ctx.server
    server.stat_commands = 0
    server.stat_connections = 0
    server.stat_rejected_calls = 0
    server.stat_net_in = server.stat_net_out = server.stat_reads = server.stat_writes = 0
    server.stat_rejected_conn = 0
    ks = server.keyspace
    ks.stat_hits = ks.stat_misses = ks.stat_expired_keys = ks.stat_expire_time_cap = 0
    ks.stat_expire_cpu = 0.0
    server.latency.clear()
    server.error_counts.clear()
    for cmd in server.table.all():
        cmd.calls = cmd.usec = cmd.rejected_calls = cmd.failed_calls = 0
    for hook in getattr(server, "resetstat_hooks", ()):
        hook()
    return "OK"


@command("config|rewrite", 2, "admin noscript loading stale", group=G)
def config_rewrite(ctx, argv):
    try:
        config.rewrite(ctx.server.settings)
    except ConfigError as exc:
        raise ErrorReply("ERR %s" % exc) from None
    except OSError as exc:
        raise ErrorReply("ERR Rewriting config file: %s" % exc.strerror) from None
    return "OK"


@command("config|help", 2, "loading stale", group=G)
def config_help(ctx, argv):
    return [b"CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            b"GET <pattern>", b"    Return parameters matching the glob-like <pattern> and "
            b"their values.", b"SET <directive> <value>", b"    Set the configuration "
            b"<directive> to <value>.", b"RESETSTAT", b"    Reset statistics reported by the "
            b"INFO command.", b"REWRITE", b"    Rewrite the configuration file.", b"HELP",
            b"    Print this help."]


# ------------------------------------------------------------------ COMMAND


# The order Redis lists flags and ACL categories in (others, like sentinel or
# may_replicate, it does not show).
_FLAG_ORDER = ("write readonly denyoom module admin pubsub noscript blocking loading stale "
               "skip_monitor skip_slowlog asking fast no_auth no_mandatory_keys "
               "no_async_loading no_multi movablekeys allow_busy").split()
_CATEGORY_ORDER = ("keyspace read write set sortedset list hash string bitmap hyperloglog geo "
                   "stream pubsub admin fast slow blocking dangerous connection transaction "
                   "scripting").split()


class _StatusSet(set):
    """Flags, categories and tips: Redis replies with a set of status strings
    (RESP3 `~`, RESP2 an array of `+`), in its own order."""

    __slots__ = ("_order",)

    def __init__(self, items):
        super().__init__(items)
        self._order = list(items)

    def __iter__(self):
        return iter(self._order)


def _command_info(cmd):
    flags = _StatusSet([f for f in _FLAG_ORDER if f in cmd.flags])
    cats = sorted(cmd.categories, key=lambda c: (
        _CATEGORY_ORDER.index(c) if c in _CATEGORY_ORDER else len(_CATEGORY_ORDER), c))
    keyspecs = []
    info = [
        cmd.fullname.encode(), cmd.arity, flags,
        cmd.first_key, cmd.last_key, cmd.step,
        _StatusSet(["@" + c for c in cats]), _StatusSet([]), keyspecs,
        [_command_info(s) for s in cmd.subcommands.values()],
    ]
    return info


def _command_names(table):
    return list(table.commands.values())


@command("command", -1, "loading stale", group=G, categories="connection")
def command_(ctx, argv):
    return [_command_info(c) for c in _command_names(ctx.server.table)]


def _lookup_full(table, name: bytes):
    name = name.lower()
    if b"|" in name:
        parent, sub = name.split(b"|", 1)
        p = table.commands.get(parent)
        return p.subcommands.get(sub) if p else None
    return table.commands.get(name)


@command("command|count", 2, "loading stale", group=G)
def command_count(ctx, argv):
    return len(ctx.server.table.commands)


@command("command|info", -2, "loading stale", group=G)
def command_info(ctx, argv):
    table = ctx.server.table
    if len(argv) == 2:
        return [_command_info(c) for c in _command_names(table)]
    out = []
    for name in argv[2:]:
        cmd = _lookup_full(table, name)
        out.append(_command_info(cmd) if cmd else None)
    return out


@command("command|list", -2, "loading stale", group=G)
def command_list(ctx, argv):
    table = ctx.server.table
    names = [c.fullname.encode() for c in table.all()]
    if len(argv) == 2:
        return names
    if len(argv) != 5 or argv[2].lower() != b"filterby":
        raise ErrorReply(errors.SYNTAX)
    kind, value = argv[3].lower(), argv[4]
    if kind == b"pattern":
        match = compile_glob(value, nocase=True)
        return [n for n in names if match(n)]
    if kind == b"aclcat":
        cat = value.lower().decode("utf-8", "replace")
        return [c.fullname.encode() for c in table.all() if cat in c.categories]
    if kind == b"module":
        return []
    raise ErrorReply(errors.SYNTAX)


@command("command|docs", -2, "loading stale", group=G)
def command_docs(ctx, argv):
    table = ctx.server.table
    cmds = ([_lookup_full(table, n) for n in argv[2:]] if len(argv) > 2
            else _command_names(table))
    out = {}
    for cmd in cmds:
        if cmd is None:
            continue
        doc = {b"summary": cmd.summary.encode() or cmd.fullname.upper().encode(),
               b"since": cmd.since.encode(), b"group": cmd.group.encode()}
        if cmd.subcommands:
            doc[b"subcommands"] = {
                s.fullname.encode(): {b"summary": s.summary.encode(), b"since": s.since.encode(),
                                      b"group": s.group.encode()}
                for s in cmd.subcommands.values()}
        out[cmd.fullname.encode()] = doc
    return out


@command("command|getkeys", -4, "loading stale", group=G)
def command_getkeys(ctx, argv):
    from hakv.common.dispatch import lookup
    sub = argv[2:]
    cmd = lookup(ctx.server, sub)
    if isinstance(cmd, ErrorReply):
        if getattr(cmd, "command", None) is None:  # unknown command or subcommand
            raise ErrorReply("ERR Invalid command specified")
        raise ErrorReply("ERR Invalid number of arguments specified for command")
    # Shard channels sit in key positions (for cluster slots) but are not keys.
    if cmd.first_key <= 0 and cmd.key_finder is None or "pubsub" in cmd.flags:
        raise ErrorReply("ERR The command has no key arguments")
    return [sub[i] for i in cmd.key_indexes(sub)]


@command("command|help", 2, "loading stale", group=G)
def command_help(ctx, argv):
    return [b"COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            b"(no subcommand)", b"    Return details about all Redis commands.",
            b"COUNT", b"    Return the total number of commands in this Redis server.",
            b"LIST", b"    Return a list of all commands in this Redis server.",
            b"INFO [<command-name> ...]", b"    Return details about multiple Redis commands.",
            b"DOCS [<command-name> ...]", b"    Return documentation details about multiple "
            b"Redis commands.", b"GETKEYS <full-command>", b"    Return the keys from a full "
            b"Redis command.", b"HELP", b"    Print this help."]


# ------------------------------------------------------------------ DEBUG / SLOWLOG

container("debug", -2, "admin noscript loading stale", group=G)


@command("debug|sleep", 3, "admin noscript loading stale", group=G)
def debug_sleep(ctx, argv):
    # Like strtod: the longest number at the start counts, anything else is 0;
    # a negative time does not sleep.
    m = re.match(rb"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", argv[2])
    seconds = float(m.group()) if m else 0.0
    if seconds > 0:
        time.sleep(seconds)  # Blocking the loop is the point of DEBUG SLEEP.
    return "OK"


@command("debug|set-active-expire", 3, "admin noscript loading stale", group=G)
def debug_set_active_expire(ctx, argv):
    ctx.server.keyspace.active_expire_enabled = argv[2] != b"0"
    return "OK"


@command("debug|object", 3, "admin noscript loading stale", group=G)
def debug_object(ctx, argv):
    value = ctx.db.get(argv[2])
    if value is None:
        raise ErrorReply(errors.NO_SUCH_KEY)
    from hakv.common.commands.keys import encoding_of
    return "Value at:0x0 refcount:1 encoding:%s serializedlength:%d lru:0 lru_seconds_idle:0" % (
        encoding_of(value, ctx.server.settings).decode(), len(repr(value)))


@command("debug|jmap", 2, "admin noscript loading stale", group=G)
def debug_jmap(ctx, argv):
    return "OK"


@command("debug|change-repl-id", 2, "admin noscript loading stale", group=G)
def debug_change_repl_id(ctx, argv):
    hook = getattr(ctx.server, "change_repl_id", None)
    if hook:
        hook()
    return "OK"


container("slowlog", -2, "admin loading stale", group=G)


@command("slowlog|get", -2, "admin loading stale", group=G)
def slowlog_get(ctx, argv):
    count = 10
    if len(argv) == 3:
        count = get_int(argv[2])
        if count < -1:
            raise ErrorReply("ERR count should be greater than or equal to -1")
        if count == -1:
            count = len(ctx.server.slowlog)
    return [list(e) for e in list(ctx.server.slowlog)[:count]]


@command("slowlog|len", 2, "admin loading stale", group=G)
def slowlog_len(ctx, argv):
    return len(ctx.server.slowlog)


@command("slowlog|reset", 2, "admin loading stale", group=G)
def slowlog_reset(ctx, argv):
    ctx.server.slowlog.clear()
    return "OK"


# ------------------------------------------------------------------ MEMORY / LOLWUT

# LATENCY: common/commands/latency.py

container("memory", -2, group=G)


@command("memory|usage", -3, "readonly", keys=(2, 2, 1), group=G)
def memory_usage(ctx, argv):
    samples = 5  # Redis's default: collections estimated from 5 elements
    i = 3
    while i < len(argv):
        if argv[i].lower() == b"samples" and i + 1 < len(argv):
            samples = get_int(argv[i + 1])
            if samples < 0:
                raise ErrorReply(errors.SYNTAX)
            i += 2
        else:
            raise ErrorReply(errors.SYNTAX)
    memory = getattr(ctx.server, "memory", None)
    if memory is not None:  # eviction.py: no LRU touch, TTL record included
        return memory.usage(ctx.db, argv[2], samples)
    value = ctx.db.get(argv[2])
    if value is None:
        return None
    from hakv.common.memsize import value_size
    return value_size(argv[2], value, samples)


@command("memory|doctor", 2, "", group=G)
def memory_doctor(ctx, argv):
    memory = getattr(ctx.server, "memory", None)
    if memory is not None:
        return Verbatim(memory.doctor().encode())
    return Verbatim(b"Hi Sam, I can't find any memory issue in your instance. "
                    b"I can only account for what occurs on this base.")


@command("memory|stats", 2, "", group=G)
def memory_stats(ctx, argv):
    memory = getattr(ctx.server, "memory", None)
    if memory is not None:
        return memory.stats()
    used = ctx.server.used_memory()
    return {b"peak.allocated": used, b"total.allocated": used, b"startup.allocated": 0,
            b"keys.count": ctx.server.keyspace.key_count(), b"dataset.bytes": used}


@command("memory|malloc-stats", 2, "", group=G)
def memory_malloc_stats(ctx, argv):
    return Verbatim(b"Stats not supported for the current allocator")


@command("memory|purge", 2, "", group=G)
def memory_purge(ctx, argv):
    import gc
    gc.collect()
    return "OK"


@command("lolwut", -1, "readonly fast", group=G)
def lolwut(ctx, argv):
    return Verbatim(b"hakv ver. 0.1.0 (Redis-compatible 7.0)\n")


__all__ = ["get_int"]
