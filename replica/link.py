"""The connection from a replica to its primary.

It is a Client (the "primary client", flags=M in CLIENT LIST) whose input is
not requests but, in turn: the handshake replies, the snapshot payload, and
the replication stream. The stream is applied through the normal dispatch
(one implementation of every command), with the replies discarded: runs of
plain data commands batch-wise (replica/apply.py), the rest through
dispatch.call() one by one. The bytes of each applied command (a whole
MULTI/EXEC block at once) advance the replication offset and are passed on
unchanged to our own replicas.
"""

from __future__ import annotations

import time

from hakv.common import dispatch, rdb, snapshot
from hakv.common.connection import Client, _fmt_addr
from hakv.common.resp import ErrorReply, encode_command
from hakv.replica.apply import apply_plain
from hakv.replica.payload import PayloadReader
from hakv.replica.stream import CommandStream, batch_length

HANDSHAKE = "handshake"
PAYLOAD = "payload"
LOADING = "loading"
STREAM = "stream"

_MAX_LINE = 64 * 1024


# Commands run at once even inside a MULTI block (subcommands are queued).
_NOT_QUEUED = frozenset(("exec", "discard", "multi", "watch"))


class TransferError(Exception):
    pass


class PrimaryLink(Client):
    def __init__(self, follower, generation: int):
        super().__init__(follower.server)
        self.follower = follower
        self.generation = generation  # which REPLICAOF this connection is for
        self.authenticated = True
        self.parser.unauthenticated = False
        self.phase = HANDSHAKE
        self.lines = bytearray()
        self.handshake = follower.make_handshake()
        self.payload: PayloadReader | None = None
        self.transfer = None
        self.full = None  # the PsyncResult of a full sync
        self.held = bytearray()  # stream bytes that arrived while the snapshot loaded
        self.stream = CommandStream()
        self.unapplied = bytearray()  # stream bytes read but not yet passed on
        self.open_block: list = []  # commands of a MULTI block still waiting for its EXEC
        # While a batch is applied: its commands (an open block's first) and
        # how many of them count as applied (a MULTI block counts at its EXEC).
        self.batch: list | None = None
        self.batch_done = 0
        self.registered = False
        self.errors_logged = 0

    # ------------------------------------------------------------ asyncio

    def connection_made(self, transport):
        self.transport = transport
        self.addr = _fmt_addr(transport.get_extra_info("peername"))
        self.laddr = _fmt_addr(transport.get_extra_info("sockname"))
        if not self.follower.link_connected(self):
            transport.close()
            return
        transport.write(self.handshake.start())

    def data_received(self, data: bytes):
        now = time.time()
        self.last_interaction = now
        follower = self.follower
        follower.last_io = now
        follower.source.stat_repl_in += len(data)
        try:
            self._dispatch_input(data)
        except Exception as exc:  # a protocol, RDB or stream error: drop and retry
            follower.link_failed(self, str(exc) or exc.__class__.__name__)

    def eof_received(self):
        return None  # the link's loss is handled once, in connection_lost

    def connection_lost(self, exc):
        self.closed = True
        if self.registered:
            self.registered = False
            self.server.client_disconnected(self)
        self.follower.link_lost(self)

    # Replies to the primary's stream are discarded (Redis never answers it,
    # except REPLCONF ACK, which is written explicitly).
    def reply(self, value) -> None:
        pass

    def reply_raw(self, data: bytes) -> None:
        pass

    def send(self, data: bytes) -> None:
        pass

    def flush(self) -> None:
        self.out.clear()

    # ------------------------------------------------------------ phases

    def _dispatch_input(self, data: bytes) -> None:
        phase = self.phase
        if phase == STREAM:
            self._apply_stream(data)
        elif phase == PAYLOAD:
            self._payload(data)
        elif phase == LOADING:
            self.held += data
        elif phase == HANDSHAKE:
            self._handshake(data)

    def _handshake(self, data: bytes) -> None:
        self.lines += data
        follower = self.follower
        while self.phase == HANDSHAKE and not self.closed:
            eol = self.lines.find(b"\n")
            if eol < 0:
                if len(self.lines) > _MAX_LINE:
                    follower.link_failed(self, "Reply from MASTER too long during handshake")
                return
            line = bytes(self.lines[:eol]).rstrip(b"\r").decode("utf-8", "replace")
            del self.lines[: eol + 1]
            step = self.handshake.on_line(line)
            for level, message in step.logs:
                self.server.log(level, message)
            if step.error:
                follower.link_failed(self, step.error)
                if self.handshake.done:
                    follower.psync_refused()  # a FAILOVER we started ends here
                return
            if step.send:
                self.transport.write(step.send)
            if step.result is not None:
                rest = bytes(self.lines)
                self.lines.clear()
                follower.psync_result(self, step.result)
                if rest and not self.closed:
                    self._dispatch_input(rest)
                return

    def begin_payload(self, result, transfer) -> None:
        self.full = result
        self.transfer = transfer
        self.payload = PayloadReader()
        self.phase = PAYLOAD

    def _payload(self, data: bytes) -> None:
        reader = self.payload
        header_before = reader.in_header
        chunk, rest = reader.feed(data)
        if header_before and not reader.in_header:
            self.follower.payload_started(self)
        if chunk:
            try:
                self.transfer.write(chunk)
            except (rdb.RdbError, snapshot.LoadError) as exc:
                raise TransferError("Failed trying to load the MASTER synchronization DB "
                                    "from socket: %s" % exc) from None
        if reader.done:
            self.held += rest
            self.phase = LOADING
            self.transport.pause_reading()
            self.follower.payload_complete(self)

    def start_stream(self, dbid: int) -> None:
        """The stream begins: register as the primary client and apply what
        already arrived."""
        self.phase = STREAM
        self.is_primary = True
        self.select(dbid)
        if not self.registered and not self.closed:
            self.server.clients[self.id] = self
            self.registered = True
        self.transport.resume_reading()
        if self.held:
            held = bytes(self.held)
            self.held.clear()
            self._apply_stream(held)

    def _apply_stream(self, data: bytes) -> None:
        self.unapplied += data
        commands = self.stream.feed(data)
        if not commands:
            return
        carried = self.open_block
        batch = carried + commands if carried else commands
        self.batch = batch
        self.batch_done = 0
        done = len(carried)
        server = self.server
        find_command = dispatch.find_command
        call = dispatch.call
        ks = server.keyspace
        ks.applying_primary_stream = True
        i = 0
        end = len(commands)
        try:
            while i < end:
                if self.closed:
                    return
                if self.multi is None:
                    # A run of plain data commands (most of a primary's stream).
                    j = apply_plain(self, commands, i, end)
                    if j != i:
                        done += j - i
                        self.batch_done = done
                        i = j
                        continue
                argv = commands[i]
                i += 1
                done += 1
                # No gate: the primary's writes are trusted, as Redis does for
                # its master client.
                cmd = find_command(server, argv)
                if cmd.__class__ is ErrorReply:
                    # Counted as Redis counts a rejected command of its master client.
                    server.stat_rejected_calls += 1
                    found = getattr(cmd, "command", None)
                    if found is not None:  # known command, wrong arity
                        found.rejected_calls += 1
                    server.count_error(cmd)
                    self.log_error(argv, cmd)
                    if self.multi is None:
                        self.batch_done = done
                    continue
                if self.multi is not None and (cmd.parent is not None
                                               or cmd.name not in _NOT_QUEUED):
                    self.multi.append((cmd, argv))
                    continue
                try:
                    reply = call(self, cmd, argv)
                except Exception as exc:  # a bug in a command must not stop replication
                    self.in_exec = False
                    reply = ErrorReply("ERR internal error applying the command: %r" % (exc,))
                if reply.__class__ is ErrorReply:
                    self.log_error(argv, reply)
                if self.multi is None:
                    self.batch_done = done  # applied (a MULTI block once its EXEC ran)
        finally:
            ks.applying_primary_stream = False
            self._pass_on()

    def _pass_on(self) -> None:
        """Advance the offset by what the batch applied and hand those exact
        bytes to our backlog and replicas; an open MULTI block waits."""
        batch, done = self.batch, self.batch_done
        self.batch = None
        self.batch_done = 0
        self.open_block = batch[done:]
        if done:
            n = batch_length(batch if done == len(batch) else batch[:done])
            unapplied = self.unapplied
            if n == len(unapplied):  # the usual case: the read ended with a command
                applied = bytes(unapplied)
                unapplied.clear()
            else:
                applied = bytes(unapplied[:n])
                del unapplied[:n]
            self.follower.source.proxy(applied)

    def _applied_in_batch(self) -> int:
        batch = self.batch
        return batch_length(batch[:self.batch_done]) if batch else 0

    def applied_offset(self) -> int:
        """The replication offset including the commands applied in the batch
        being processed (REPLCONF GETACK answers from inside a batch)."""
        return self.follower.source.ids.offset + self._applied_in_batch()

    def log_error(self, argv, reply) -> None:
        if self.errors_logged >= 100:
            return
        self.errors_logged += 1
        self.server.log("warning", "== CRITICAL == This replica is sending an error to its "
                        "master: '%s' after processing the command '%s'"
                        % (reply.message, argv[0].decode("utf-8", "replace")))

    # ------------------------------------------------------------ output

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def send_ack(self, offset: int) -> None:
        self.write(encode_command(b"REPLCONF", b"ACK", str(offset).encode()))

    def unapplied_bytes(self) -> int:
        return len(self.unapplied) - self._applied_in_batch()
