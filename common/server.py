"""The node: listeners, the client registry, the propagation stream, INFO,
and the event loop's periodic work (cron, active expiry).

Roles plug into it rather than the other way round: persistence, replication
and eviction register write checks (`write_checks`), INFO sections
(`info_sections`), cron jobs (`cron_jobs`), shutdown hooks and propagation
sinks (`sinks`: anything with feed(items) taking [(dbid, resp_bytes)]).
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import sys
import time
from collections import deque

from hakv.common import errors
from hakv.common.commands.table import node_table
from hakv.common.config import REDIS_VERSION, Settings
from hakv.common.connection import Client
from hakv.common.keyspace import Keyspace
from hakv.common.latency import LatencyMonitor
from hakv.common.resp import ErrorReply, Push, encode, encode_command

LOG_LEVELS = {"debug": 0, "verbose": 1, "notice": 2, "warning": 3}
_HELD = 1e-9  # paused_until while only write holds pause (see hold_writes)
_LOG_MARK = {0: ".", 1: "-", 2: "*", 3: "#"}

# Propagated commands are mostly 2-4 arguments, all bytes, short: joined
# from cached pieces (the "*<n>\r\n$<len>\r\n<name>\r\n" head of each
# command name, the "$<len>\r\n" of lengths below 1024), which costs less
# than a %-format of the whole command.
_LENGTHS = [b"$%d\r\n" % i for i in range(1024)]
_HEADS: dict = {}  # (argc, name) -> head
_CRLF = b"\r\n"


def _head(argc: int, name: bytes) -> bytes:
    head = b"*%d\r\n$%d\r\n%s\r\n" % (argc, len(name), name)
    if len(_HEADS) < 1024:  # names come in any case: bounded
        _HEADS[argc, name] = head
    return head


def encode_propagated(argv) -> bytes:
    """argv in RESP, as encode_command(*argv), faster for the common shapes."""
    n = len(argv)
    try:
        if n == 3:
            a, b, c = argv
            head = _HEADS.get((3, a)) or _head(3, a)
            return b"".join((head, _LENGTHS[len(b)], b, _CRLF, _LENGTHS[len(c)], c, _CRLF))
        if n == 2:
            a, b = argv
            head = _HEADS.get((2, a)) or _head(2, a)
            return b"".join((head, _LENGTHS[len(b)], b, _CRLF))
        if n == 4:
            a, b, c, d = argv
            head = _HEADS.get((4, a)) or _head(4, a)
            return b"".join((head, _LENGTHS[len(b)], b, _CRLF, _LENGTHS[len(c)], c, _CRLF,
                             _LENGTHS[len(d)], d, _CRLF))
    except (TypeError, IndexError):  # an int or str argument, a long one: the general way
        pass
    return encode_command(*argv)


class Server:
    role_char = "M"

    def __init__(self, settings: Settings, table=node_table):
        self.settings = settings
        self.table = table
        self.keyspace = Keyspace(settings["databases"])
        self.keyspace.propagate = self._queue_propagation
        # Keyspace notifications: common/notifications.py sets keyspace.notify.
        self.run_id = os.urandom(20).hex()
        self.start_time = time.time()
        self.clients: dict[int, Client] = {}
        self.monitors: list[Client] = []
        self.channels: dict[bytes, set] = {}
        self.shard_channels: dict[bytes, set] = {}  # SSUBSCRIBE / SPUBLISH
        self.patterns: dict[bytes, tuple] = {}  # pattern -> (matcher, set of clients)
        self.servers: list = []
        self.port = settings["port"]
        self.loop: asyncio.AbstractEventLoop | None = None
        self.shutdown_event: asyncio.Event | None = None
        self.exit_code = 0
        # State other components set.
        self.acl = None
        self.memory_tracker = None  # eviction.py: before/after(client, ...) around writes
        self.loading = False
        self.busy_script = None
        self.stale_gate = None
        self.write_checks: list = []
        # check -> fn(): may it refuse a write now? dispatch.run_plain calls only
        # those that may (once per batch); a check without one is always called.
        self.write_check_armed: dict = {}
        self.info_sections: dict = {}
        self.cron_jobs: list = []
        self.shutdown_hooks: list = []
        self.disconnect_hooks: list = []  # per server: a class-level list would be shared
        self.sinks: list = []
        # Set by the AOF with appendfsync always after it wrote: called (once)
        # before replies leave, so one fdatasync covers a whole batch.
        self.fsync_before_reply = None
        self.propagating = False
        self.pending_propagation: list = []
        self.paused_until = 0.0
        self.pause_all = False
        self.paused_clients: list = []
        # Write pauses with no end time (FAILOVER, SHUTDOWN waiting for
        # replicas), by purpose; CLIENT PAUSE/UNPAUSE do not lift them.
        self.write_holds: set = set()
        self.shutdown_deadline = 0.0  # a shutdown waits for lagging replicas until then
        self.shutdown_flags = (None, False)  # its (save, force)
        self.shutdown_waiters: list = []  # SHUTDOWN clients blocked meanwhile
        # Statistics.
        self.dirty = 0
        self.stat_commands = 0
        self.stat_connections = 0
        self.stat_rejected_conn = 0
        self.stat_rejected_calls = 0
        self.stat_protocol_errors = 0
        self.stat_net_in = 0
        self.stat_net_out = 0
        self.stat_reads = 0
        self.stat_writes = 0
        self.error_counts: dict[str, int] = {}
        self.latency: dict = {}  # Command -> {log2(usec) bucket: calls} (INFO latencystats)
        self.slowlog: deque = deque(maxlen=max(settings["slowlog-max-len"], 1))
        self.slowlog_id = 0
        self.slowlog_threshold = settings["slowlog-log-slower-than"]
        # LATENCY events; sets latency_event_ns, the duration dispatch.call checks.
        self.latency_monitor = LatencyMonitor(self)
        self.log_level = LOG_LEVELS[settings["loglevel"]]
        self.logfile = None
        self.ops_samples: deque = deque(maxlen=16)
        self._last_sample = (time.time(), 0)
        settings.listeners.append(self._on_config_set)

    # ------------------------------------------------------------ logging

    def log(self, level: str, message: str) -> None:
        lvl = LOG_LEVELS[level]
        if lvl < self.log_level:
            return
        now = time.time()
        stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime(now))
        line = "%d:%s %s.%03d %s %s\n" % (
            os.getpid(), self.role_char, stamp, int(now * 1000) % 1000, _LOG_MARK[lvl], message
        )
        out = self.logfile or sys.stdout
        try:
            out.write(line)
            out.flush()
        except (OSError, ValueError):
            pass

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.shutdown_event = asyncio.Event()
        logfile = self.settings["logfile"]
        if logfile:
            self.logfile = open(logfile, "a", buffering=1)
        port = self.settings["port"]
        binds = self.settings["bind"] or ["*"]
        for addr in binds:
            optional = addr.startswith("-")
            host = addr.lstrip("-")
            if host in ("*",):
                host = "0.0.0.0"
            elif host == "::*":
                host = "::"
            try:
                srv = await self.loop.create_server(
                    lambda: Client(self), host, port, reuse_address=True,
                    backlog=self.settings["tcp-backlog"],
                    family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                )
            except OSError as exc:
                if optional:
                    continue
                self.log("warning", "Warning: Could not create server TCP listening socket "
                         "%s:%d: %s" % (host, port, exc.strerror))
                raise SystemExit(1)
            self.servers.append(srv)
            if port == 0:
                port = srv.sockets[0].getsockname()[1]
        self.port = port
        self.log("notice", "Server initialized")
        self.log("notice", "Ready to accept connections tcp")
        self.loop.call_later(1 / self._hz(), self._cron)
        self.loop.call_later(0.05, self._expire_tick)

    async def serve_forever(self) -> int:
        await self.start()
        await self.shutdown_event.wait()
        return self.exit_code

    def request_shutdown(self, code: int = 0) -> None:
        self.exit_code = code
        if self.shutdown_event is not None:
            self.shutdown_event.set()

    def shutdown(self, save: bool | None = None, now: bool = False, force: bool = False,
                 client=None) -> ErrorReply | None:
        """SHUTDOWN / SIGTERM: run the hooks (save, fsync AOF, tell replicas),
        close the listeners, and end serve_forever.

        Unless `now`, a primary whose replicas have not acked its whole stream
        first waits for them, up to shutdown-timeout seconds, with writes
        paused (Redis 7); `client` (SHUTDOWN's) is blocked meanwhile and
        answered only if the shutdown fails or is aborted. `force`: errors
        saving the RDB / AOF do not stop the shutdown."""
        if self.shutdown_deadline:
            if client is not None:
                self._block_for_shutdown(client)  # one shutdown: this caller waits too
            return None
        self.log("warning", "User requested shutdown...")
        timeout = self.settings["shutdown-timeout"]
        source = getattr(self, "replication", None)
        if not now and timeout and source is not None and source.lagging_replicas():
            self.shutdown_deadline = time.time() + timeout
            self.shutdown_flags = (save, force)
            source.request_acks()
            self.hold_writes("shutdown")
            self.log("notice", "Waiting for replicas before shutting down.")
            if client is not None:
                self._block_for_shutdown(client)
            return None
        return self._finish_shutdown(save, force)

    def _block_for_shutdown(self, client) -> None:
        from hakv.common.connection import Block
        self.block(client, Block([], None, None, None))
        self.shutdown_waiters.append(client)

    def shutdown_check(self) -> None:
        """Cron (and replica ACKs): finish a shutdown waiting for replicas."""
        deadline = self.shutdown_deadline
        if not deadline:
            return
        source = getattr(self, "replication", None)
        if time.time() >= deadline or source is None or not source.lagging_replicas():
            save, force = self.shutdown_flags
            if self._finish_shutdown(save, force) is not None:
                self.log("warning", "Errors trying to shut down the server. Check the logs for "
                         "more information.")
                self._cancel_shutdown()

    def abort_shutdown(self) -> bool:
        """SHUTDOWN ABORT: False if no shutdown is waiting."""
        if not self.shutdown_deadline:
            return False
        self._cancel_shutdown()
        self.log("notice", "Shutdown manually aborted.")
        return True

    def _cancel_shutdown(self) -> None:
        self.shutdown_deadline = 0.0
        waiters, self.shutdown_waiters = self.shutdown_waiters, []
        for client in waiters:
            if not client.closed:
                self.unblock(client, ErrorReply("ERR Errors trying to SHUTDOWN. Check logs."))
        self.release_writes("shutdown")

    def _finish_shutdown(self, save, force) -> ErrorReply | None:
        for hook in self.shutdown_hooks:
            err = hook(save)
            if err is not None:
                if force and not err.message.startswith("BUSY"):
                    self.log("warning", "Errors trying to shut down (%s): exit anyway (FORCE)."
                             % err.message)
                    continue
                return err
        self.shutdown_deadline = 0.0
        for srv in self.servers:
            srv.close()
        for client in list(self.clients.values()):
            client.flush()
            client.close()
        self.log("warning", "Redis is now ready to exit, bye bye...")
        self.request_shutdown(0)
        return None

    # ------------------------------------------------------------ clients

    def auth_required(self) -> bool:
        if self.acl is not None:
            return self.acl.default_requires_auth()
        return bool(self.settings["requirepass"])

    def client_connected(self, client: Client) -> None:
        self.stat_connections += 1
        if len(self.clients) >= self.settings["maxclients"]:
            self.stat_rejected_conn += 1
            client.transport.write(b"-ERR max number of clients reached\r\n")
            client.close()
            return
        if self.acl is not None:
            denied = self.acl.protected_mode_denial(client)
            if denied:
                client.transport.write(b"-" + denied.encode() + b"\r\n")
                client.close()
                return
        self.clients[client.id] = client

    def client_disconnected(self, client: Client) -> None:
        self.clients.pop(client.id, None)
        if client.monitor and client in self.monitors:
            self.monitors.remove(client)
        self.unwatch_all(client)
        self.unsubscribe_all(client)
        if client.block is not None:
            self.unblock(client, None, send=False)
        if client in self.paused_clients:
            self.paused_clients.remove(client)
        for hook in self.disconnect_hooks:
            hook(client)

    def kill_clients(self, predicate) -> int:
        n = 0
        for client in list(self.clients.values()):
            if predicate(client):
                client.flush()
                client.close()
                n += 1
        return n

    # ------------------------------------------------------------ gates

    def write_gate(self, client, cmd):
        for check in self.write_checks:
            err = check(client, cmd)
            if err is not None:
                return err
        return None

    def count_error(self, err: ErrorReply) -> None:
        prefix = err.message.split(" ", 1)[0]
        self.error_counts[prefix] = self.error_counts.get(prefix, 0) + 1

    # ------------------------------------------------------------ propagation

    def _queue_propagation(self, dbid: int, argv: list) -> None:
        if self.propagating:
            self.pending_propagation.append((dbid, argv))

    def flush_propagation(self) -> None:
        """Send what the last command changed to the AOF and the replicas;
        several commands from one call (EXEC, a script, an expiry before a
        write) go as one MULTI/EXEC block."""
        items = self.pending_propagation
        self.pending_propagation = []
        if not items or not self.sinks:
            return
        if len(items) > 1:
            dbid = items[0][0]
            encoded = [(dbid, b"*1\r\n$5\r\nMULTI\r\n")]
            encoded += [(d, encode_propagated(argv)) for d, argv in items]
            encoded.append((items[-1][0], b"*1\r\n$4\r\nEXEC\r\n"))
        else:
            dbid, argv = items[0]
            items[0] = (dbid, encode_propagated(argv))  # the list is ours now
            encoded = items
        for sink in self.sinks:
            sink.feed(encoded)

    def set_propagating(self) -> None:
        self.propagating = bool(self.sinks)

    def add_sink(self, sink) -> None:
        if sink not in self.sinks:
            self.sinks.append(sink)
        self.set_propagating()

    def remove_sink(self, sink) -> None:
        if sink in self.sinks:
            self.sinks.remove(sink)
        self.set_propagating()

    # ------------------------------------------------------------ blocking

    def block(self, client, block) -> None:
        """Park client until one of block.keys gets data or the timeout passes."""
        client.block = block
        block.db = client.db
        for key in block.keys:
            waiters = client.db.blocked.get(key)
            if waiters is None:
                waiters = client.db.blocked[key] = deque()
            waiters.append(client)
        if block.deadline is not None:
            block.timer = self.loop.call_at(
                self.loop.time() + max(0.0, block.deadline - time.time()),
                self._block_timeout, client,
            )

    def _block_timeout(self, client) -> None:
        if client.block is not None:
            self.unblock(client, client.block.on_timeout)

    def unblock(self, client, reply, send: bool = True) -> None:
        block = client.block
        if block is None:
            return
        client.block = None
        if block.timer is not None:
            block.timer.cancel()
        db = block.db
        for key in block.keys:
            waiters = db.blocked.get(key)
            if waiters is not None:
                try:
                    waiters.remove(client)
                except ValueError:
                    pass
                if not waiters:
                    del db.blocked[key]
        if send:
            client.reply(reply)
            client.flush()
            self.loop.call_soon(client.resume)

    def handle_ready_keys(self) -> None:
        """Serve clients blocked on keys that got data, first come first served."""
        ks = self.keyspace
        while ks.ready_keys:
            ready, ks.ready_keys = ks.ready_keys, []
            for db, key in ready:
                waiters = db.blocked.get(key)
                if not waiters:
                    continue
                # A waiter that cannot use the key now (on_ready -> None, e.g. a
                # BLPOP while the key holds a sorted set) is skipped, so the
                # BZPOPMIN queued behind it is still served.
                for client in list(waiters):
                    block = client.block
                    if block is None or block.db is not db:
                        continue  # served meanwhile through another of its keys
                    saved = client.dbid
                    client.select(db.id)
                    tracker = self.memory_tracker
                    measured = (tracker.before_served(client, block, key)
                                if tracker is not None else None)
                    reply = block.on_ready(client, key)
                    if measured is not None:
                        tracker.after(client, measured)
                    client.select(saved)
                    if reply is None:
                        continue
                    # The pop reaches the AOF/replicas before its reply leaves
                    # (appendfsync always must not acknowledge an unlogged pop).
                    if self.pending_propagation:
                        self.flush_propagation()
                    self.unblock(client, reply)
                    if key not in db.data:
                        break  # emptied: nothing left for the others

    # ------------------------------------------------------------ pause

    def client_paused(self, client, cmd) -> bool:
        if client.is_primary or client.is_replica:
            return False
        if self.paused_until > time.time():
            if self.pause_all:
                return True
        elif not self.write_holds:
            return False
        return cmd.is_write or cmd.may_replicate

    def unpause(self) -> None:
        # While a write hold lasts, paused_until stays truthy (_HELD, in the
        # past) so that dispatch keeps asking client_paused.
        self.paused_until = _HELD if self.write_holds else 0.0
        waiting, self.paused_clients = self.paused_clients, []
        for client in waiting:
            self.loop.call_soon(client.resume)  # a still-held write pauses again

    def hold_writes(self, purpose: str) -> None:
        """Pause writes (as CLIENT PAUSE WRITE) until release_writes(purpose)."""
        self.write_holds.add(purpose)
        if not self.paused_until:
            self.paused_until = _HELD

    def release_writes(self, purpose: str) -> None:
        if purpose not in self.write_holds:
            return
        self.write_holds.discard(purpose)
        if not self.write_holds and self.paused_until <= time.time():
            self.unpause()

    # ------------------------------------------------------------ pub/sub

    def publish(self, channel: bytes, message: bytes) -> int:
        receivers = 0
        subs = self.channels.get(channel)
        if subs:
            for client in subs:
                client.send_value(Push([b"message", channel, message]))
            receivers += len(subs)
        if self.patterns:
            for pattern, (matcher, clients) in self.patterns.items():
                if matcher(channel):
                    for client in clients:
                        client.send_value(Push([b"pmessage", pattern, channel, message]))
                    receivers += len(clients)
        return receivers

    def spublish(self, channel: bytes, message: bytes) -> int:
        """SPUBLISH: a shard channel's subscribers get an smessage."""
        subs = self.shard_channels.get(channel)
        if not subs:
            return 0
        for client in subs:
            client.send_value(Push([b"smessage", channel, message]))
        return len(subs)

    def unsubscribe_all(self, client) -> None:
        for ch in client.channels:
            subs = self.channels.get(ch)
            if subs is not None:
                subs.discard(client)
                if not subs:
                    del self.channels[ch]
        for pat in client.patterns:
            entry = self.patterns.get(pat)
            if entry is not None:
                entry[1].discard(client)
                if not entry[1]:
                    del self.patterns[pat]
        for ch in client.shard_channels:
            subs = self.shard_channels.get(ch)
            if subs is not None:
                subs.discard(client)
                if not subs:
                    del self.shard_channels[ch]
        client.channels = set()
        client.patterns = set()
        client.shard_channels = set()

    # ------------------------------------------------------------ WATCH

    def unwatch_all(self, client) -> None:
        for db, key in client.watched:
            clients = db.watched.get(key)
            if clients is not None:
                clients.discard(client)
                if not clients:
                    del db.watched[key]
        client.watched = []
        client.watch_expired = set()
        client.dirty_cas = False

    # ------------------------------------------------------------ MONITOR

    def feed_monitors(self, client, argv: list) -> None:
        now = time.time()
        if client.in_script:
            origin = "lua"
        elif client.is_primary:
            origin = client.addr
        else:
            origin = client.addr
        parts = " ".join(_monitor_repr(a) for a in argv)
        line = "+%.6f [%d %s] %s\r\n" % (now, client.dbid, origin, parts)
        data = line.encode("utf-8", "surrogateescape")
        for mon in list(self.monitors):
            mon.send(data)

    # ------------------------------------------------------------ slowlog

    def slowlog_add(self, client, argv, duration: float) -> None:
        args = [a if len(a) <= 128 else a[:128] + b"... (%d more bytes)" % (len(a) - 128)
                for a in argv[:32]]
        if len(argv) > 32:
            args[-1] = b"... (%d more arguments)" % (len(argv) - 31)
        self.slowlog_id += 1
        self.slowlog.appendleft(
            [self.slowlog_id, int(time.time()), int(duration * 1e6), args,
             client.addr.encode(), client.name]
        )

    # ------------------------------------------------------------ cron

    def _hz(self) -> int:
        return min(max(self.settings["hz"], 1), 500)

    def _cron(self) -> None:
        try:
            now = time.time()
            self._sample_ops(now)
            self._client_timeouts(now)
            if self.paused_until > _HELD and self.paused_until <= now:
                self.unpause()
            if self.shutdown_deadline:
                self.shutdown_check()
            for job in self.cron_jobs:
                job()
        except Exception as exc:  # a bug in one job must not stop the cron
            self.log("warning", "cron error: %r" % (exc,))
        finally:
            self.loop.call_later(1 / self._hz(), self._cron)

    def _expire_tick(self) -> None:
        """Active expiry: keys are freed within ~50 ms of their deadline; each
        run is time-boxed (3 ms) so the loop keeps serving."""
        ks = self.keyspace
        spent = ks.stat_expire_cpu
        ks.active_expire_cycle(0.003)
        if self.latency_monitor.threshold:
            self.latency_monitor.add("expire-cycle", (ks.stat_expire_cpu - spent) * 1000)
        if self.pending_propagation:
            self.flush_propagation()
        if ks.lazyfree:
            ks.free_some(time.perf_counter() + 0.003)
        delay = 0.002 if ks.lazyfree or ks.has_due_keys() else 0.05
        self.loop.call_later(delay, self._expire_tick)

    def _client_timeouts(self, now: float) -> None:
        timeout = self.settings["timeout"]
        if not timeout:
            return
        for client in list(self.clients.values()):
            if (client.is_replica or client.is_primary or client.block is not None
                    or client.subscribed or client.monitor):
                continue
            if now - client.last_interaction > timeout:
                self.log("verbose", "Closing idle client")
                client.close()

    def _sample_ops(self, now: float) -> None:
        t0, c0 = self._last_sample
        if now - t0 >= 0.1:
            self.ops_samples.append((self.stat_commands - c0) / (now - t0))
            self._last_sample = (now, self.stat_commands)

    def _on_config_set(self, name: str, value) -> None:
        if name == "loglevel":
            self.log_level = LOG_LEVELS[value]
        elif name == "slowlog-log-slower-than":
            self.slowlog_threshold = value
        elif name == "slowlog-max-len":
            self.slowlog = deque(self.slowlog, maxlen=max(value, 1))

    # ------------------------------------------------------------ INFO

    _INFO_ORDER = ("server", "clients", "memory", "persistence", "stats", "replication", "cpu",
                   "modules", "commandstats", "errorstats", "latencystats", "cluster", "keyspace")
    _INFO_DEFAULT = frozenset(("server", "clients", "memory", "persistence", "stats",
                               "replication", "cpu", "modules", "errorstats", "cluster",
                               "keyspace"))

    def info(self, sections: list[str]) -> bytes:
        """INFO [section ...]: sections always come in Redis's order; no argument
        or 'default' means the default set, 'all'/'everything' every section."""
        want = set(s.lower() for s in sections) or {"default"}
        chosen = set(want)
        if "default" in want:
            chosen |= self._INFO_DEFAULT
        if "all" in want or "everything" in want:
            chosen |= set(self._INFO_ORDER)
        parts = []
        for name in self._INFO_ORDER:
            if name not in chosen:
                continue
            lines = self._info_section(name)
            if lines is None:
                continue
            title = "CPU" if name == "cpu" else name.capitalize()
            body = "".join("%s:%s\r\n" % kv if isinstance(kv, tuple) else kv + "\r\n"
                           for kv in lines)
            parts.append("# %s\r\n%s" % (title, body))
        return "\r\n".join(parts).encode()

    def _info_section(self, name: str):
        provider = self.info_sections.get(name)
        if provider is not None:
            return provider()
        fn = getattr(self, "_info_" + name, None)
        return fn() if fn else None

    def _info_server(self):
        now = time.time()
        return [
            ("redis_version", REDIS_VERSION),
            ("redis_git_sha1", "00000000"),
            ("redis_git_dirty", "0"),
            ("redis_build_id", "hakv"),
            ("redis_mode", self.mode_name()),
            ("hakv_version", "0.1.0"),
            ("os", " ".join((os.uname().sysname, os.uname().release, os.uname().machine))),
            ("arch_bits", "64"),
            ("monotonic_clock", "POSIX clock_gettime"),
            ("multiplexing_api", "epoll"),
            ("atomicvar_api", "python"),
            ("gcc_version", "0.0.0"),
            ("process_id", str(os.getpid())),
            ("process_supervised", "no"),
            ("run_id", self.run_id),
            ("tcp_port", str(self.port)),
            ("server_time_usec", str(int(now * 1e6))),
            ("uptime_in_seconds", str(int(now - self.start_time))),
            ("uptime_in_days", str(int((now - self.start_time) / 86400))),
            ("hz", str(self.settings["hz"])),
            ("configured_hz", str(self.settings["hz"])),
            ("lru_clock", str(int(now) & 0xFFFFFF)),
            ("executable", os.path.abspath(sys.argv[0])),
            ("config_file", self.settings.config_file or ""),
            ("io_threads_active", "0"),
        ] + ([("shutdown_in_milliseconds",
               str(max(0, int((self.shutdown_deadline - now) * 1000))))]
             if self.shutdown_deadline else [])

    def mode_name(self) -> str:
        return "standalone"

    def role_name(self) -> str:
        return "master"

    def _info_clients(self):
        blocked = sum(1 for c in self.clients.values() if c.block is not None)
        return [
            ("connected_clients", str(sum(1 for c in self.clients.values() if not c.is_replica))),
            ("cluster_connections", "0"),
            ("maxclients", str(self.settings["maxclients"])),
            ("client_recent_max_input_buffer", "0"),
            ("client_recent_max_output_buffer", "0"),
            ("blocked_clients", str(blocked)),
            ("tracking_clients", "0"),
            ("clients_in_timeout_table", str(blocked)),
        ]

    def used_memory(self) -> int:
        return _rss_bytes()

    def _info_memory(self):
        used = self.used_memory()
        rss = _rss_bytes()
        peak = max(used, getattr(self, "_peak_mem", 0))
        self._peak_mem = peak
        startup = getattr(self, "_startup_mem", None)
        if startup is None:
            startup = self._startup_mem = used
        total = _total_system_memory()
        maxmem = self.settings["maxmemory"]
        dataset = max(used - startup, 0)
        scripts = getattr(self, "scripts_memory", 0)
        n_scripts = getattr(self, "cached_scripts", 0)
        lines = [
            ("used_memory", str(used)),
            ("used_memory_human", human_bytes(used)),
            ("used_memory_rss", str(rss)),
            ("used_memory_rss_human", human_bytes(rss)),
            ("used_memory_peak", str(peak)),
            ("used_memory_peak_human", human_bytes(peak)),
            ("used_memory_peak_perc", "%.2f%%" % (100.0 * used / peak if peak else 0)),
            ("used_memory_overhead", str(startup)),
            ("used_memory_startup", str(startup)),
            ("used_memory_dataset", str(dataset)),
            ("used_memory_dataset_perc", "%.2f%%" % (100.0 * dataset / used if used else 0)),
            ("allocator_allocated", str(used)),
            ("allocator_active", str(used)),
            ("allocator_resident", str(rss)),
            ("total_system_memory", str(total)),
            ("total_system_memory_human", human_bytes(total)),
            ("used_memory_lua", "0"),
            ("used_memory_vm_eval", "0"),
            ("used_memory_lua_human", "0B"),
            ("used_memory_scripts_eval", str(scripts)),
            ("number_of_cached_scripts", str(n_scripts)),
            ("number_of_functions", "0"),
            ("number_of_libraries", "0"),
            ("used_memory_vm_functions", "0"),
            ("used_memory_vm_total", "0"),
            ("used_memory_vm_total_human", "0B"),
            ("used_memory_functions", "0"),
            ("used_memory_scripts", str(scripts)),
            ("used_memory_scripts_human", human_bytes(scripts)),
            ("maxmemory", str(maxmem)),
            ("maxmemory_human", human_bytes(maxmem)),
            ("maxmemory_policy", self.settings["maxmemory-policy"]),
            ("allocator_frag_ratio", "1.00"),
            ("allocator_frag_bytes", "0"),
            ("allocator_rss_ratio", "1.00"),
            ("allocator_rss_bytes", "0"),
            ("rss_overhead_ratio", "%.2f" % (rss / used if used else 1)),
            ("rss_overhead_bytes", str(rss - used)),
            ("mem_fragmentation_ratio", "%.2f" % (rss / used if used else 1)),
            ("mem_fragmentation_bytes", str(rss - used)),
            ("mem_not_counted_for_evict", "0"),
            ("mem_replication_backlog", "0"),
            ("mem_total_replication_buffers", "0"),
            ("mem_clients_slaves", "0"),
            ("mem_clients_normal", "0"),
            ("mem_cluster_links", "0"),
            ("mem_aof_buffer", "0"),
            ("mem_allocator", "pymalloc"),
            ("active_defrag_running", "0"),
            ("lazyfree_pending_objects", str(self.keyspace.lazyfree_pending())),
            ("lazyfreed_objects", str(self.keyspace.stat_lazyfreed)),
        ]
        scripting = getattr(self, "scripting", None)  # fills in its Lua/function figures
        return scripting.memory_info(lines) if scripting is not None else lines

    def _info_persistence(self):
        return [("loading", "1" if self.loading else "0")]

    def _info_stats(self):
        ops = self.ops_samples[-1] if self.ops_samples else 0
        ks = self.keyspace
        memory = getattr(self, "memory", None)
        exceeded = memory.exceeded_ms() if memory is not None else (0, 0)
        return [
            ("total_connections_received", str(self.stat_connections)),
            ("total_commands_processed", str(self.stat_commands)),
            ("instantaneous_ops_per_sec", str(int(ops))),
            ("total_net_input_bytes", str(self.stat_net_in)),
            ("total_net_output_bytes", str(self.stat_net_out)),
            ("total_net_repl_input_bytes", "0"),
            ("total_net_repl_output_bytes", "0"),
            ("instantaneous_input_kbps", "0.00"),
            ("instantaneous_output_kbps", "0.00"),
            ("instantaneous_input_repl_kbps", "0.00"),
            ("instantaneous_output_repl_kbps", "0.00"),
            ("rejected_connections", str(self.stat_rejected_conn)),
            ("sync_full", "0"),
            ("sync_partial_ok", "0"),
            ("sync_partial_err", "0"),
            ("expired_keys", str(ks.stat_expired_keys)),
            ("expired_stale_perc", "0.00"),
            ("expired_time_cap_reached_count", str(ks.stat_expire_time_cap)),
            ("expire_cycle_cpu_milliseconds", str(int(ks.stat_expire_cpu * 1000))),
            ("evicted_keys", str(getattr(self, "stat_evicted_keys", 0))),
            ("evicted_clients", "0"),
            ("total_eviction_exceeded_time", str(exceeded[1])),
            ("current_eviction_exceeded_time", str(exceeded[0])),
            ("keyspace_hits", str(ks.stat_hits)),
            ("keyspace_misses", str(ks.stat_misses)),
            ("pubsub_channels", str(len(self.channels))),
            ("pubsub_patterns", str(len(self.patterns))),
            ("pubsubshard_channels", str(len(self.shard_channels))),
            ("latest_fork_usec", str(getattr(self, "stat_latest_fork_usec", 0))),
            ("total_forks", str(getattr(self, "stat_total_forks", 0))),
            ("migrate_cached_sockets", "0"),
            ("slave_expires_tracked_keys", "0"),
            ("active_defrag_hits", "0"),
            ("active_defrag_misses", "0"),
            ("active_defrag_key_hits", "0"),
            ("active_defrag_key_misses", "0"),
            ("total_active_defrag_time", "0"),
            ("current_active_defrag_time", "0"),
            ("tracking_total_keys", "0"),
            ("tracking_total_items", "0"),
            ("tracking_total_prefixes", "0"),
            ("unexpected_error_replies", "0"),
            ("total_error_replies", str(sum(self.error_counts.values()))),
            ("dump_payload_sanitizations", "0"),
            ("total_reads_processed", str(self.stat_reads)),
            ("total_writes_processed", str(self.stat_writes)),
            ("io_threaded_reads_processed", "0"),
            ("io_threaded_writes_processed", "0"),
            ("reply_buffer_shrinks", "0"),
            ("reply_buffer_expands", "0"),
        ]

    def _info_replication(self):
        return [("role", "master"), ("connected_slaves", "0")]

    def _info_cpu(self):
        ru = resource.getrusage(resource.RUSAGE_SELF)
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        th = resource.getrusage(getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF))
        return [
            ("used_cpu_sys", "%.6f" % ru.ru_stime),
            ("used_cpu_user", "%.6f" % ru.ru_utime),
            ("used_cpu_sys_children", "%.6f" % ch.ru_stime),
            ("used_cpu_user_children", "%.6f" % ch.ru_utime),
            ("used_cpu_sys_main_thread", "%.6f" % th.ru_stime),
            ("used_cpu_user_main_thread", "%.6f" % th.ru_utime),
        ]

    def _info_modules(self):
        return []

    def _info_errorstats(self):
        return [("errorstat_%s" % k, "count=%d" % v) for k, v in sorted(self.error_counts.items())]

    def _info_cluster(self):
        return [("cluster_enabled", "0")]

    def _info_keyspace(self):
        out = []
        for db in self.keyspace.dbs:
            if db.data:
                out.append(("db%d" % db.id, "keys=%d,expires=%d,avg_ttl=0"
                            % (len(db.data), len(db.expires))))
        return out

    def _info_commandstats(self):
        out = []
        for cmd in self.table.all():
            if cmd.calls or cmd.rejected_calls or cmd.failed_calls:
                out.append(("cmdstat_%s" % cmd.fullname,
                            "calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,failed_calls=%d"
                            % (cmd.calls, cmd.usec, cmd.usec / cmd.calls if cmd.calls else 0,
                               cmd.rejected_calls, cmd.failed_calls)))
        return out

    def _info_latencystats(self):
        out = []
        for cmd in self.table.all():
            buckets = self.latency.get(cmd)
            if buckets:
                out.append(("latency_percentiles_usec_%s" % cmd.fullname,
                            "p50=%.3f,p99=%.3f,p99.9=%.3f" % tuple(
                                _percentile(buckets, p) for p in (50.0, 99.0, 99.9))))
        return out


def _percentile(buckets: dict, p: float) -> float:
    """A percentile of latencies kept in power-of-two microsecond buckets
    (bucket k holds durations below 2**k us): the bucket's upper bound."""
    total = sum(buckets.values())
    need = total * p / 100.0
    seen = 0
    for k in sorted(buckets):
        seen += buckets[k]
        if seen >= need:
            return float(1 << k) if k else 1.0
    return float(1 << max(buckets))


def _total_system_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def human_bytes(n: int) -> str:
    if n < 1024:
        return "%dB" % n
    for unit in "KMGTPE":
        n /= 1024
        if n < 1024 or unit == "E":
            return "%.2f%s" % (n, unit)
    return str(n)


def _monitor_repr(arg: bytes) -> str:
    out = ['"']
    for b in arg:
        if b == 34:
            out.append('\\"')
        elif b == 92:
            out.append("\\\\")
        elif b == 10:
            out.append("\\n")
        elif b == 13:
            out.append("\\r")
        elif b == 9:
            out.append("\\t")
        elif b == 7:
            out.append("\\a")
        elif b == 8:
            out.append("\\b")
        elif 32 <= b < 127:
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
    out.append('"')
    return "".join(out)


def check_error(value) -> ErrorReply:
    return value if isinstance(value, ErrorReply) else ErrorReply(str(value))


__all__ = ["Server", "errors", "encode"]
