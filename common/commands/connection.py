"""Connection commands: PING ECHO SELECT AUTH HELLO QUIT RESET CLIENT."""

from __future__ import annotations

import time

from hakv.common import errors
from hakv.common.commands.table import command, container
from hakv.common.config import REDIS_VERSION
from hakv.common.connection import Block
from hakv.common.dispatch import NO_REPLY
from hakv.common.numbers import get_int, parse_int
from hakv.common.resp import ErrorReply, Verbatim

G = "connection"


@command("ping", -1, "fast sentinel", group=G)
def ping(ctx, argv):
    if len(argv) > 2:
        raise ErrorReply(errors.wrong_args("ping").message)
    if ctx.subscribed and not ctx.resp3:
        return [b"pong", argv[1] if len(argv) > 1 else b""]
    return argv[1] if len(argv) > 1 else "PONG"


@command("echo", 2, "fast", group=G)
def echo(ctx, argv):
    return argv[1]


@command("select", 2, "loading stale fast", group=G)
def select(ctx, argv):
    dbid = parse_int(argv[1])
    if dbid is None:
        raise ErrorReply(errors.NOT_INTEGER)
    if not 0 <= dbid < len(ctx.server.keyspace):
        raise ErrorReply(errors.DB_INDEX)
    ctx.select(dbid)
    return "OK"


@command("quit", -1, "no_auth allow_busy loading stale fast", group=G)
def quit_(ctx, argv):
    ctx.close_after_reply = True
    return "OK"


def authenticate(ctx, username: bytes | None, password: bytes) -> ErrorReply | None:
    server = ctx.server
    if server.acl is not None:
        return server.acl.authenticate(ctx, username, password)
    requirepass = server.settings["requirepass"]
    if username is not None and username != b"default":
        return ErrorReply(errors.WRONGPASS)
    if not requirepass:
        if username is None:
            return ErrorReply(
                "ERR AUTH <password> called without any password configured for the default "
                "user. Are you sure your configuration is correct?"
            )
        return None  # default user has nopass
    if password.decode("utf-8", "surrogateescape") != requirepass:
        return ErrorReply(errors.WRONGPASS)
    ctx.authenticated = True
    ctx.parser.unauthenticated = False
    ctx.user = "default"
    return None


@command("auth", -2, "noscript loading stale fast no_auth sentinel allow_busy", group=G)
def auth(ctx, argv):
    if len(argv) > 3:
        raise ErrorReply(errors.SYNTAX)
    username = argv[1] if len(argv) == 3 else None
    err = authenticate(ctx, username, argv[-1])
    if err is not None:
        raise err
    ctx.authenticated = True
    ctx.parser.unauthenticated = False
    return "OK"


@command("hello", -1, "noscript loading stale fast no_auth sentinel allow_busy", group=G)
def hello(ctx, argv):
    version = None
    i = 1
    if len(argv) > 1:
        version = parse_int(argv[1])
        if version is None:
            raise ErrorReply("ERR Protocol version is not an integer or out of range")
        i = 2
        if version not in (2, 3):
            raise ErrorReply("NOPROTO unsupported protocol version")
    setname = None
    while i < len(argv):
        opt = argv[i].lower()
        more = len(argv) - i - 1
        if opt == b"auth" and more >= 2:
            err = authenticate(ctx, argv[i + 1], argv[i + 2])
            if err is not None:
                raise err
            ctx.authenticated = True
            ctx.parser.unauthenticated = False
            i += 3
        elif opt == b"setname" and more >= 1:
            setname = argv[i + 1]
            i += 2
        else:
            raise ErrorReply("ERR Syntax error in HELLO option '%s'"
                             % argv[i].decode("utf-8", "replace"))
    if not ctx.authenticated:
        raise ErrorReply(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO AUTH <user> <pass> option can be used to authenticate the client and "
            "select the RESP protocol version at the same time"
        )
    if setname is not None:
        check_client_name(setname)
        ctx.name = setname
    if version is not None:
        ctx.resp3 = version == 3
    server = ctx.server
    return {
        b"server": b"redis",
        b"version": REDIS_VERSION.encode(),
        b"proto": 3 if ctx.resp3 else 2,
        b"id": ctx.id,
        b"mode": server.mode_name().encode(),
        b"role": server.role_name().encode() if hasattr(server, "role_name") else b"master",
        b"modules": [],
    }


@command("reset", 1, "noscript loading stale fast no_auth allow_busy", group=G)
def reset(ctx, argv):
    server = ctx.server
    ctx.multi = None
    ctx.multi_error = False
    server.unwatch_all(ctx)
    server.unsubscribe_all(ctx)
    if ctx.monitor:
        ctx.monitor = False
        if ctx in server.monitors:
            server.monitors.remove(ctx)
    ctx.select(0)
    ctx.resp3 = False
    ctx.name = b""
    ctx.reply_mode = "on"
    ctx.no_evict = False
    ctx.no_touch = False
    ctx.authenticated = not server.auth_required()
    ctx.parser.unauthenticated = not ctx.authenticated
    ctx.user = "default"
    return "RESET"


def check_client_name(name: bytes) -> None:
    for b in name:
        if b < 33 or b > 126:
            raise ErrorReply("ERR Client names cannot contain spaces, newlines or special "
                             "characters.")


# ------------------------------------------------------------------ CLIENT

container("client", -2, "sentinel", group=G)


@command("client|id", 2, "noscript loading stale", group=G)
def client_id(ctx, argv):
    return ctx.id


@command("client|setname", 3, "noscript loading stale", group=G)
def client_setname(ctx, argv):
    check_client_name(argv[2])
    ctx.name = argv[2]
    return "OK"


@command("client|getname", 2, "noscript loading stale", group=G)
def client_getname(ctx, argv):
    return ctx.name or None


# No CLIENT SETINFO: it arrived in Redis 7.2, and 7.0.15 (the version we answer as)
# rejects it as an unknown subcommand; clients that send it at connect ignore that error.


_CLIENT_TYPES = {"normal": "normal", "master": "master", "replica": "replica",
                 "slave": "replica", "pubsub": "pubsub"}


def _client_type(name: bytes) -> str:
    t = _CLIENT_TYPES.get(name.lower().decode("utf-8", "replace"))
    if t is None:
        raise ErrorReply("ERR Unknown client type '%s'" % name.decode("utf-8", "replace"))
    return t


def _user_exists(server, name: bytes) -> bool:
    acl = server.acl
    if acl is not None and hasattr(acl, "get_user"):
        return acl.get_user(name.decode("utf-8", "surrogateescape")) is not None
    return name == b"default"


@command("client|list", -2, "admin noscript loading stale", group=G)
def client_list(ctx, argv):
    # Redis accepts exactly TYPE <type> or ID <id> [<id> ...]; IDs are listed in
    # the order given.
    clients = ctx.server.clients
    if len(argv) == 4 and argv[2].lower() == b"type":
        t = _client_type(argv[3])
        chosen = [c for c in sorted(clients.values(), key=lambda c: c.id) if c.kind() == t]
    elif len(argv) > 3 and argv[2].lower() == b"id":
        chosen = []
        for v in argv[3:]:
            cid = get_int(v, "ERR Invalid client ID")
            if cid in clients:
                chosen.append(clients[cid])
    elif len(argv) != 2:
        raise ErrorReply(errors.SYNTAX)
    else:
        chosen = sorted(clients.values(), key=lambda c: c.id)
    return Verbatim("".join(c.info_line() + "\n" for c in chosen).encode())


@command("client|info", 2, "noscript loading stale", group=G)
def client_info(ctx, argv):
    return Verbatim((ctx.info_line() + "\n").encode())


@command("client|kill", -3, "admin noscript loading stale", group=G)
def client_kill(ctx, argv):
    server = ctx.server
    conds = []
    skipme = True
    if len(argv) == 3:
        # Old form CLIENT KILL <ip:port>: may kill the caller too.
        conds.append(lambda c, v=argv[2].decode("utf-8", "replace"): c.addr == v)
        skipme = False
    else:
        i = 2
        while i < len(argv):
            opt = argv[i].lower()
            if i + 1 >= len(argv):
                raise ErrorReply(errors.SYNTAX)
            val = argv[i + 1]
            if opt == b"id":
                cid = parse_int(val)
                if cid is None or cid < 1:
                    raise ErrorReply("ERR client-id should be greater than 0")
                conds.append(lambda c, cid=cid: c.id == cid)
            elif opt == b"type":
                conds.append(lambda c, t=_client_type(val): c.kind() == t)
            elif opt == b"addr":
                conds.append(lambda c, v=val.decode("utf-8", "replace"): c.addr == v)
            elif opt == b"laddr":
                conds.append(lambda c, v=val.decode("utf-8", "replace"): c.laddr == v)
            elif opt == b"user":
                if not _user_exists(server, val):
                    raise ErrorReply("ERR No such user '%s'" % val.decode("utf-8", "replace"))
                conds.append(lambda c, v=val.decode("utf-8", "surrogateescape"): c.user == v)
            elif opt == b"skipme":
                if val.lower() == b"yes":
                    skipme = True
                elif val.lower() == b"no":
                    skipme = False
                else:
                    raise ErrorReply(errors.SYNTAX)
            else:
                raise ErrorReply(errors.SYNTAX)
            i += 2
    killed = 0
    for c in list(server.clients.values()):
        if skipme and c is ctx:
            continue
        if all(f(c) for f in conds):
            killed += 1
            if c is ctx:
                c.close_after_reply = True
            else:
                c.flush()
                c.close()
    if len(argv) == 3:
        if not killed:
            raise ErrorReply("ERR No such client")
        return "OK"
    return killed


def _subcommand_syntax(name: str) -> ErrorReply:
    return ErrorReply("ERR unknown subcommand or wrong number of arguments for '%s'. "
                      "Try CLIENT HELP." % name)


@command("client|pause", -3, "admin noscript loading stale", group=G)
def client_pause(ctx, argv):
    if len(argv) > 4:
        raise _subcommand_syntax("pause")
    mode = b"all"
    if len(argv) == 4:
        mode = argv[3].lower()
        if mode not in (b"write", b"all"):
            raise ErrorReply("ERR CLIENT PAUSE mode must be WRITE or ALL")
    ms = get_int(argv[2], "ERR timeout is not an integer or out of range")
    if ms < 0:
        raise ErrorReply("ERR timeout is negative")
    server = ctx.server
    until = time.time() + ms / 1000
    # A second pause never shortens the current one (Redis's rule).
    if until > server.paused_until or mode == b"all":
        server.paused_until = max(until, server.paused_until)
    server.pause_all = server.pause_all and server.paused_until > time.time() or mode == b"all"
    server.loop.call_later(ms / 1000 + 0.001, _maybe_unpause, server)
    return "OK"


def _maybe_unpause(server):
    if server.paused_until and server.paused_until <= time.time():
        server.unpause()


@command("client|unpause", 2, "admin noscript loading stale", group=G)
def client_unpause(ctx, argv):
    ctx.server.unpause()
    ctx.server.pause_all = False
    return "OK"


@command("client|reply", 3, "noscript loading stale", group=G)
def client_reply(ctx, argv):
    mode = argv[2].lower()
    if mode == b"on":
        ctx.reply_mode = "on"
        return "OK"
    if mode == b"off":
        ctx.reply_mode = "off"
    elif mode == b"skip":
        if ctx.reply_mode != "off":
            ctx.reply_mode = "skip"
    else:
        raise ErrorReply(errors.SYNTAX)
    return NO_REPLY


@command("client|unblock", -3, "admin noscript loading stale", group=G)
def client_unblock(ctx, argv):
    if len(argv) > 4:
        raise _subcommand_syntax("unblock")
    how = b"timeout"
    if len(argv) == 4:
        how = argv[3].lower()
        if how not in (b"timeout", b"error"):
            raise ErrorReply("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    cid = get_int(argv[2])
    target = ctx.server.clients.get(cid)
    if target is None or target.block is None:
        return 0
    if how == b"error":
        reply = ErrorReply("UNBLOCKED client unblocked via CLIENT UNBLOCK")
    else:
        reply = target.block.on_timeout
    ctx.server.unblock(target, reply)
    return 1


@command("client|no-evict", 3, "admin noscript loading stale", group=G)
def client_no_evict(ctx, argv):
    v = argv[2].lower()
    if v not in (b"on", b"off"):
        raise ErrorReply(errors.SYNTAX)
    ctx.no_evict = v == b"on"
    return "OK"


@command("client|no-touch", 3, "noscript loading stale", group=G)
def client_no_touch(ctx, argv):
    v = argv[2].lower()
    if v not in (b"on", b"off"):
        raise ErrorReply(errors.SYNTAX)
    ctx.no_touch = v == b"on"
    return "OK"


@command("client|tracking", -3, "noscript loading stale", group=G)
def client_tracking(ctx, argv):
    raise ErrorReply("ERR client tracking is not supported by hakv")


@command("client|trackinginfo", 2, "noscript loading stale", group=G)
def client_trackinginfo(ctx, argv):
    # Tracking is never on in hakv: Redis's answer for a client without it.
    return {b"flags": [b"off"], b"redirect": -1, b"prefixes": []}


@command("client|caching", 3, "noscript loading stale", group=G)
def client_caching(ctx, argv):
    raise ErrorReply("ERR CLIENT CACHING can be called only when the client is in tracking "
                     "mode with OPTIN or OPTOUT mode enabled")


@command("client|getredir", 2, "noscript loading stale", group=G)
def client_getredir(ctx, argv):
    return -1


@command("client|help", 2, "loading stale", group=G)
def client_help(ctx, argv):
    return [
        b"CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        b"ID", b"    Return the ID of the current connection.",
        b"INFO", b"    Return information about the current client connection.",
        b"KILL <ip:port>", b"    Kill connection made from <ip:port>.",
        b"KILL <option> <value> [<option> <value> [...]]",
        b"    Kill connections. Options are: ID, TYPE, USER, ADDR, LADDR, SKIPME.",
        b"LIST [options ...]", b"    Return information about client connections.",
        b"UNPAUSE", b"    Stop the current client pause, resuming traffic.",
        b"PAUSE <timeout> [WRITE|ALL]", b"    Suspend all, or just write, clients.",
        b"REPLY (ON|OFF|SKIP)", b"    Control the replies sent to the current connection.",
        b"SETNAME <name>", b"    Assign the name <name> to the current connection.",
        b"GETNAME", b"    Return the name of the current connection.",
        b"UNBLOCK <clientid> [TIMEOUT|ERROR]", b"    Unblock the specified blocked client.",
        b"HELP", b"    Print this help.",
    ]


__all__ = ["Block", "authenticate"]
