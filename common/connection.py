"""One client connection: bytes in, commands to the dispatcher, replies out.

A read may hold many commands (pipelining); their replies are joined and
written once. A client that blocks (BLPOP, CLIENT PAUSE) keeps the commands it
sent after the blocking one in `pending` and resumes them when unblocked, so
its replies stay in order.
"""

from __future__ import annotations

import asyncio
import time

from hakv.common import dispatch
from hakv.common.resp import ErrorReply, ProtocolError, RequestParser, encode

NO_REPLY = dispatch.NO_REPLY
_time = time.time
_OK = b"+OK\r\n"


class Block:
    """Returned by a blocking command's handler: park the client on keys.

    on_ready(client, key) is called when one of the keys got data; it returns
    the reply (and does the pop/move, propagating it), or None to keep
    waiting. on_timeout is the reply when the timeout passes (deadline is a
    time.time() value, or None for forever)."""

    __slots__ = ("keys", "deadline", "on_ready", "on_timeout", "db", "timer", "argv")

    def __init__(self, keys, deadline, on_ready, on_timeout):
        self.keys = keys
        self.deadline = deadline
        self.on_ready = on_ready
        self.on_timeout = on_timeout
        self.db = None
        self.timer = None
        self.argv = None


class Client(asyncio.Protocol):
    next_id = 1

    def __init__(self, server):
        self.server = server
        self.id = Client.next_id
        Client.next_id += 1
        self.transport = None
        self.parser = RequestParser(server.settings["proto-max-bulk-len"])
        self.dbid = 0
        self.db = server.keyspace[0]
        self.resp3 = False
        self.name = b""
        self.lib_name = b""
        self.lib_ver = b""
        self.user = "default"
        self.authenticated = not server.auth_required()
        self.parser.unauthenticated = not self.authenticated
        self.command_names: dict = {}  # name as typed -> Command (dispatch.execute)
        self.addr = "?"
        self.laddr = "?"
        self.created = time.time()
        self.last_interaction = self.created
        self.last_cmd = "NULL"
        # Transaction state.
        self.multi: list | None = None  # queued (cmd, argv) while in MULTI
        self.multi_error = False
        self.dirty_cas = False
        self.watched: list = []  # (db, key)
        self.watch_expired: set = set()  # (db, key) already expired when WATCHed
        self.in_exec = False
        self.in_script = False
        # Pub/sub state.
        self.channels: set = set()
        self.patterns: set = set()
        self.shard_channels: set = set()  # SSUBSCRIBE
        self.monitor = False
        # Blocking / pausing.
        self.block: Block | None = None
        self.paused_argv = None  # a command held by CLIENT PAUSE
        self.pending: list = []
        self.close_after_reply = False
        self.closed = False
        self.disconnected = False  # the server has forgotten this client
        self.reply_mode = "on"  # on / off / skip (CLIENT REPLY)
        self.no_evict = False
        self.no_touch = False
        # Replication roles: set by primary/ and replica/ on their links.
        self.is_replica = False  # a replica of ours, after SYNC/PSYNC
        self.is_primary = False  # the link to our primary, applying its stream
        self.replica_info = None
        # Propagation of the command being executed.
        self.custom_propagation = False
        self.out: list = []
        self.in_batch = False
        self.flags_extra = ""

    # -- asyncio.Protocol

    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.addr = _fmt_addr(peer)
        self.laddr = _fmt_addr(sock)
        self.server.client_connected(self)

    def data_received(self, data: bytes):
        self.last_interaction = _time()
        server = self.server
        server.stat_net_in += len(data)
        server.stat_reads += 1
        error = None
        parser = self.parser
        try:
            commands = parser.feed(data)
        except ProtocolError as exc:
            commands = exc.commands
            error = exc
        if (parser.buf  # the fast path leaves it empty: no limit to look up
                and parser.pending_bytes() > server.settings["client-query-buffer-limit"]):
            server.log("warning", "Closing client that reached max query buffer length")
            self.close()
            return
        if error is not None:
            # The error is answered after the commands before it, then we close.
            server.stat_protocol_errors += 1
            commands.append(ErrorReply("ERR " + str(error)))
        if commands:
            if self.block is not None or self.paused_argv is not None or self.pending:
                self.pending.extend(commands)
            else:
                self.run(commands)
        self.flush()

    def eof_received(self):
        # Redis frees a client as soon as a read returns 0. asyncio reports the loss
        # one loop pass later, and a PUBLISH in that pass would still count (and
        # write to) this subscriber. What is already written is still flushed.
        self.closed = True
        self._forget()
        return None  # asyncio then closes the transport

    def connection_lost(self, exc):
        self.closed = True
        self._forget()

    def _forget(self) -> None:
        if not self.disconnected:
            self.disconnected = True
            self.server.client_disconnected(self)

    # -- running commands

    def run(self, commands: list) -> None:
        self.in_batch = True
        execute = dispatch.execute
        names = self.command_names
        out = self.out
        # Replies are encoded here unless a subclass collects them its own way.
        direct = type(self).reply is Client.reply
        i = 0
        n = len(commands)
        # A protocol error can only be last: the fast path stops before it.
        end = n - 1 if commands[-1].__class__ is ErrorReply else n
        try_plain = True  # False: run_plain() refused this client, until a non-plain command
        while i < n:
            if self.close_after_reply or self.closed:
                break
            argv = commands[i]
            # A lone command is cheaper through execute(): no batch set-up.
            if end - i > 1 and direct:
                cmd = names.get(argv[0])
                if cmd is None or not cmd.plain:
                    try_plain = True  # this command may change what run_plain() checks
                elif try_plain:
                    # A run of plain data commands: the gate's client checks once.
                    j = dispatch.run_plain(self, commands, i, end, out)
                    if j != i:
                        i = j
                        continue
                    try_plain = False  # not a plain client (or a wrong arity)
            if argv.__class__ is ErrorReply:  # a protocol error: reply, then close
                self.server.count_error(argv)
                self.reply_mode = "on"
                self.reply(argv)
                self.close_after_reply = True
                break
            reply = execute(self, argv)
            if reply is not NO_REPLY:
                if direct and self.reply_mode == "on":
                    # encode(), its commonest cases inlined: this runs per request.
                    cls = reply.__class__
                    if cls is bytes:
                        out.append(b"$%d\r\n%s\r\n" % (len(reply), reply))
                    elif cls is str and reply == "OK":
                        out.append(_OK)
                    else:
                        out.append(encode(reply, self.resp3))
                else:
                    self.reply(reply)
            i += 1
            if self.block is not None or self.paused_argv is not None:
                self.pending = list(commands[i:]) + self.pending
                break
        self.in_batch = False

    def resume(self) -> None:
        """Continue with commands that arrived while blocked or paused."""
        if self.closed:
            return
        if self.paused_argv is not None:
            argv, self.paused_argv = self.paused_argv, None
            pending, self.pending = self.pending, []
            self.run([argv] + pending)
        elif self.pending and self.block is None:
            pending, self.pending = self.pending, []
            self.run(pending)
        self.flush()
        if self.close_after_reply:
            self.close()

    # -- output

    def reply(self, value) -> None:
        mode = self.reply_mode
        if mode != "on":
            if mode == "skip":
                self.reply_mode = "on"
            return
        self.out.append(encode(value, self.resp3))

    def reply_raw(self, data: bytes) -> None:
        self.out.append(data)

    def flush(self) -> None:
        out = self.out
        if out:
            if self.transport is not None and not self.closed:
                server = self.server
                if server.fsync_before_reply is not None:
                    server.fsync_before_reply()  # appendfsync always: durable, then acked
                data = b"".join(out)  # one element: that element, no copy
                self.transport.write(data)
                server.stat_net_out += len(data)
                server.stat_writes += 1
            out.clear()
        if self.close_after_reply and self.block is None:
            self.close()

    def send(self, data: bytes) -> None:
        """Out-of-band write (pub/sub message, MONITOR line, unblocked reply)."""
        if self.in_batch:
            self.out.append(data)
        elif self.transport is not None and not self.closed:
            if self.server.fsync_before_reply is not None:
                self.server.fsync_before_reply()
            self.transport.write(data)
            self.server.stat_net_out += len(data)

    def send_value(self, value) -> None:
        self.send(encode(value, self.resp3))

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    # -- helpers for handlers

    def select(self, dbid: int) -> None:
        self.dbid = dbid
        self.db = self.server.keyspace[dbid]

    def propagate(self, argv: list) -> None:
        """Replace the default propagation of the running command by argv
        (may be called several times: each call is one command)."""
        self.custom_propagation = True
        self.server.keyspace.propagate(self.dbid, argv)

    @property
    def subscribed(self) -> bool:
        """In pub/sub mode: subscribed to a channel, pattern or shard channel."""
        return bool(self.channels or self.patterns or self.shard_channels)

    @property
    def may_block(self) -> bool:
        return not (self.in_exec or self.in_script)

    def kind(self) -> str:
        if self.is_replica:
            return "replica"
        if self.is_primary:
            return "master"
        if self.subscribed:
            return "pubsub"
        return "normal"

    def flag_string(self) -> str:
        f = ""
        if self.is_replica:
            f += "S"
        if self.is_primary:
            f += "M"
        if self.subscribed:
            f += "P"
        if self.multi is not None:
            f += "x"
        if self.block is not None:
            f += "b"
        if self.dirty_cas:
            f += "d"
        if self.close_after_reply:
            f += "c"
        if self.monitor:
            f += "O"
        if self.no_evict:
            f += "e"
        if self.no_touch:
            f += "T"
        return f or "N"

    def info_line(self) -> str:
        now = time.time()
        cmd = self.last_cmd
        return (
            "id=%d addr=%s laddr=%s fd=%d name=%s age=%d idle=%d flags=%s db=%d sub=%d "
            "psub=%d ssub=%d multi=%d qbuf=%d qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 "
            "rbp=0 obl=0 oll=0 omem=0 tot-mem=%d events=r cmd=%s user=%s redir=-1 resp=%d"
            % (
                self.id, self.addr, self.laddr, self._fd(), self.name.decode("utf-8", "replace"),
                int(now - self.created), int(now - self.last_interaction), self.flag_string(),
                self.dbid, len(self.channels), len(self.patterns), len(self.shard_channels),
                -1 if self.multi is None else len(self.multi), self.parser.pending_bytes(),
                1024 + self.parser.pending_bytes(), cmd, self.user, 3 if self.resp3 else 2,
            )
        )

    def _fd(self) -> int:
        if self.transport is None:
            return -1
        sock = self.transport.get_extra_info("socket")
        try:
            return sock.fileno() if sock is not None else -1
        except OSError:
            return -1


def _fmt_addr(addr) -> str:
    if not addr:
        return "?"
    if isinstance(addr, tuple):
        host, port = addr[0], addr[1]
        return "%s:%d" % (host, port)
    return str(addr)
