"""The sentinel's command table.

A sentinel answers a small set of commands, the same set as Redis 7.0's
sentinel mode (PING, SENTINEL, INFO, ROLE, CLIENT, pub/sub, AUTH, HELLO,
SHUTDOWN, COMMAND), plus RESET and QUIT which clients use for connection
hygiene. Everything else gets Redis's "unknown command" error from the shared
dispatcher, because it is simply not in this table.

Connection, pub/sub, CLIENT and COMMAND handlers are the node's own: they work
on `ctx.server`, which here is the SentinelServer. What is sentinel-specific
(SENTINEL, PUBLISH, ROLE, INFO, HELLO's reply) asks the state machine through
the server (`server.state`, `server.complete`).
"""
from __future__ import annotations

from hakv.common.commands import connection as node_connection
from hakv.common.commands import pubsub as _node_pubsub  # noqa: F401  (registers SUBSCRIBE ...)
from hakv.common.commands import server as _node_server  # noqa: F401  (registers COMMAND, SHUTDOWN)
from hakv.common.commands.table import Command, CommandTable, node_table
from hakv.common.resp import NULL_ARRAY, ErrorReply, Verbatim

from .commands import ARITY
from .replies import NULL_ARRAY as SENTINEL_NULL_ARRAY
from .replies import Err, Status

sentinel_table = CommandTable()


def _copy(cmd: Command, handler=None) -> Command:
    """Register a node command (and its subcommands) in the sentinel table."""
    flags = " ".join(sorted(cmd.flags - {"movablekeys"}))
    keys = (cmd.first_key, cmd.last_key, cmd.step)
    copied = sentinel_table.add(cmd.fullname, cmd.arity, flags, keys, cmd.group, cmd.summary,
                                cmd.since, " ".join(sorted(cmd.categories)), cmd.key_finder,
                                handler or cmd.handler)
    for sub in cmd.subcommands.values():
        _copy(sub)
    return copied


def _node(name: str) -> Command:
    cmd = node_table.commands.get(name.encode())
    if cmd is None:  # pragma: no cover - the node modules are imported above
        raise RuntimeError(f"node command {name!r} is missing")
    return cmd


# ----------------------------------------------------------------------
# Reply conversion: sentinel reply values -> the shared RESP encoder's values
# ----------------------------------------------------------------------


def to_resp(value: object) -> object:
    """Map a reply of the state machine (replies.py conventions) onto the
    values hakv.common.resp encodes: str is a *bulk* string there, Status a
    simple string, Err an error."""
    if isinstance(value, Err):
        return ErrorReply(str(value))
    if isinstance(value, Status):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if value is SENTINEL_NULL_ARRAY:
        return NULL_ARRAY
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict):
        return {to_resp(k): to_resp(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_resp(v) for v in value]
    return value


def _reply(value: object) -> object:
    converted = to_resp(value)
    if isinstance(converted, ErrorReply):
        raise converted
    return converted


# ----------------------------------------------------------------------
# Sentinel-specific handlers
# ----------------------------------------------------------------------


def sentinel_subcommand(ctx, argv):
    server = ctx.server
    result = server.state.sentinel_command(argv[1:], server.now_ms())
    return _reply(server.complete(result))


def sentinel_publish(ctx, argv):
    server = ctx.server
    result = server.state.publish(argv[1], argv[2], server.now_ms())
    return _reply(server.complete(result))


def sentinel_role(ctx, argv):
    return _reply(ctx.server.state.role())


def sentinel_info(ctx, argv):
    return Verbatim(ctx.server.info([a.decode("utf-8", "replace") for a in argv[1:]]))


def sentinel_hello(ctx, argv):
    reply = node_connection.hello(ctx, argv)
    reply.pop(b"role", None)  # a sentinel's HELLO has no role field (Redis 7.0)
    return reply


# ----------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------

_copy(_node("ping"))
_copy(_node("auth"))
_copy(_node("hello"), sentinel_hello)
_copy(_node("quit"))
_copy(_node("reset"))
_copy(_node("client"))
_copy(_node("command"))
_copy(_node("shutdown"))
for _name in ("subscribe", "psubscribe", "unsubscribe", "punsubscribe"):
    _copy(_node(_name))

sentinel_table.add("info", -1, "loading stale sentinel", (0, 0, 0), "server", "", "1.0.0", "",
                   None, sentinel_info)
sentinel_table.add("role", 1, "noscript loading stale fast sentinel", (0, 0, 0), "server", "",
                   "2.8.12", "admin dangerous", None, sentinel_role)
sentinel_table.add("publish", 3, "pubsub loading stale fast sentinel", (0, 0, 0), "pubsub", "",
                   "2.0.0", "", None, sentinel_publish)
sentinel_table.container("sentinel", -2, "admin sentinel", group="sentinel", since="2.8.4")
for _sub, _arity in ARITY.items():
    # Redis's flags: every subcommand is admin except HELP.
    _flags = "loading stale sentinel" if _sub == "help" else "admin sentinel"
    sentinel_table.add("sentinel|" + _sub, _arity, _flags, (0, 0, 0), "sentinel", "", "2.8.4", "",
                       None, sentinel_subcommand)

__all__ = ["sentinel_table", "to_resp"]
