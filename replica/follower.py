"""Following a primary: REPLICAOF, the link's lifecycle, reconnects with
partial resync, acks, timeouts, and the replica's INFO/ROLE view.

States (as Redis names them in ROLE): none (not a replica), connect (waiting
to connect), connecting, handshake, sync (the snapshot transfer), connected.

The history this node can continue -- Redis's "cached master" -- is the
ReplicationSource's id and offset; `can_psync` says whether they are
usable: true after a completed sync, after losing an established link, when
a primary turns into a replica, or after a restart from an RDB that recorded
them; false from a +FULLRESYNC until the new snapshot is loaded.
"""

from __future__ import annotations

import asyncio
import time

from hakv.common.resp import ErrorReply
from hakv.primary import failover as failover_mod
from hakv.replica import link as link_mod
from hakv.replica.handshake import Handshake
from hakv.replica.link import PrimaryLink
from hakv.replica.transfer import DisklessTransfer, DiskTransfer

PROGRESS_EVERY = 5.0  # seconds between progress lines of a long full sync

READONLY = ErrorReply("READONLY You can't write against a read only replica.")
MASTERDOWN = ErrorReply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is "
                        "set to 'no'.")


class Follower:
    def __init__(self, server, source):
        self.server = server
        self.source = source
        self.settings = server.settings
        self.host: str | None = None
        self.port = 0
        self.state = "none"
        self.link: PrimaryLink | None = None
        self.can_psync = False
        self._stream_db = 0
        self.down_since = 0.0  # when an established link was lost (0: never was up)
        self.last_io = 0.0
        self.attempt_started = 0.0
        self.retry_at = 0.0
        self.generation = 0  # bumps on every REPLICAOF: late connects are dropped
        self.last_second = 0.0
        self.sync_started = 0.0
        self.last_progress = 0.0
        # No connection before the node has started and loaded its data
        # (the RDB may name the history to continue).
        self.enabled = False
        self.orphan = None  # a complete snapshot still loading after its link was lost

    # ------------------------------------------------------------ queries

    def link_up(self) -> bool:
        return self.state == "connected"

    def stream_db(self) -> int:
        link = self.link
        if link is not None and link.phase == link_mod.STREAM:
            return link.dbid
        return self._stream_db

    def processed_offset(self) -> int:
        return self.source.ids.offset

    # ------------------------------------------------------------ REPLICAOF

    def set_primary(self, host: str, port: int, who: str = "", startup: bool = False) -> None:
        """Follow host:port (REPLICAOF, or `replicaof` in the config at startup,
        when there is no history yet unless the RDB loaded next names one)."""
        server = self.server
        was_primary = self.host is None and not startup
        self._drop_link()
        self.generation += 1
        self.host, self.port = host, port
        self.settings.model.replicaof = (host, port)
        server.keyspace.replica_mode = True
        server.role_char = "S"
        self._set_stale_gate()
        if was_primary:
            # Our own history may continue on the new primary (it may be our
            # former replica, promoted).
            self.can_psync = True
            self._stream_db = 0 if self.source.seldb < 0 else self.source.seldb
            server.log("notice", "Before turning into a replica, using my own master "
                       "parameters to synthesize a cached master: I may be able to synchronize "
                       "with the new master with just a partial transfer.")
            self._unblock_clients()
        self.source.demoted()
        self.state = "connect"
        self.retry_at = 0.0
        if who:
            server.log("notice", "REPLICAOF %s:%d enabled (user request from '%s')"
                       % (host, port, who))
        if server.loop is not None:
            self.connect()

    def unset_primary(self, who: str = "") -> None:
        if self.host is None:
            return
        server = self.server
        self._drop_link()
        self.generation += 1
        self.host = None
        self.port = 0
        self.state = "none"
        self.settings.model.replicaof = None
        server.keyspace.replica_mode = False
        server.role_char = "M"
        server.stale_gate = None
        self.can_psync = False
        self.source.promoted()
        if who:
            server.log("notice", "MASTER MODE enabled (user request from '%s')" % who)

    def restored_history(self, stream_db: int) -> None:
        """The RDB loaded at startup named the history we followed."""
        self.can_psync = True
        self._stream_db = stream_db if 0 <= stream_db < len(self.server.keyspace) else 0

    def _unblock_clients(self) -> None:
        err = ErrorReply("UNBLOCKED force unblock from blocking operation, instance state "
                         "changed (master -> replica?)")
        for client in list(self.server.clients.values()):
            if client.block is not None:
                self.server.unblock(client, err)

    def _set_stale_gate(self) -> None:
        self.server.stale_gate = self.stale_check

    # ------------------------------------------------------------ gates

    def readonly_check(self, client, cmd):
        if (self.host is not None and cmd.is_write and not client.is_primary
                and self.settings["replica-read-only"]):
            return READONLY
        return None

    def stale_check(self, client, cmd):
        if (self.host is not None and self.state != "connected"
                and not self.settings["replica-serve-stale-data"]):
            return MASTERDOWN
        return None

    # ------------------------------------------------------------ connecting

    def connect(self) -> None:
        if (not self.enabled or self.host is None or self.link is not None
                or self.state != "connect" or self.orphan is not None):
            return
        server = self.server
        self.state = "connecting"
        self.attempt_started = time.time()
        server.log("notice", "Connecting to MASTER %s:%d" % (self.host, self.port))
        server.log("notice", "MASTER <-> REPLICA sync started")
        server.loop.create_task(self._connect(self.host, self.port, self.generation))

    async def _connect(self, host: str, port: int, generation: int) -> None:
        loop = self.server.loop
        source = self.settings["bind-source-addr"] or None  # outgoing address, as Redis
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: PrimaryLink(self, generation), host, port,
                                       local_addr=(source, 0) if source else None),
                timeout=self.settings["repl-timeout"])
        except (OSError, asyncio.TimeoutError, ValueError) as exc:
            if generation != self.generation or self.state != "connecting":
                return
            reason = getattr(exc, "strerror", None) or str(exc) or "timeout"
            self.server.log("warning", "Error condition on socket for SYNC: %s" % reason)
            self.state = "connect"
            self.retry_at = time.time() + 1.0

    def link_connected(self, link: PrimaryLink) -> bool:
        """A connection was made; False if it is not wanted any more."""
        if (self.host is None or self.state != "connecting" or self.link is not None
                or link.generation != self.generation):
            return False
        self.link = link
        self.state = "handshake"
        self.last_io = time.time()
        self.server.log("notice", "Non blocking connect for SYNC fired the event.")
        return True

    def make_handshake(self) -> Handshake:
        s = self.settings
        replid = None
        offset = -1
        if self.can_psync:
            replid = self.source.ids.replid
            offset = self.source.ids.offset
        return Handshake(
            listening_port=s["replica-announce-port"] or self.server.port,
            announce_ip=s["replica-announce-ip"], auth_user=s["masteruser"],
            auth_pass=s["masterauth"], replid=replid, offset=offset,
            failover=self.source.failover.state == failover_mod.IN_PROGRESS)

    # ------------------------------------------------------------ sync

    def psync_refused(self) -> None:
        self.source.failover.psync_answered(False)

    def psync_result(self, link: PrimaryLink, result) -> None:
        server = self.server
        self.source.failover.psync_answered(True)
        if result.kind == "continue":
            if result.replid and result.replid != self.source.ids.replid:
                self.source.new_primary_id(result.replid)
            self.source.create_backlog()
            server.log("notice", "MASTER <-> REPLICA sync: Master accepted a Partial "
                       "Resynchronization.")
            self._link_established(link, self._stream_db)
            return
        # Full sync: the history we had is being replaced.
        self.can_psync = False
        self.source.drop_history()
        self.state = "transfer"
        self.sync_started = self.last_progress = time.time()
        mode = self.settings["repl-diskless-load"]
        empty = server.keyspace.key_count() == 0
        if mode == "swapdb":
            transfer = DisklessTransfer(server, live=False)
        elif mode == "on-empty-db" and empty:
            transfer = DisklessTransfer(server, live=True)
        elif empty:
            # `disabled` on a node without data: nothing to serve meanwhile, so
            # nothing to protect by receiving the whole file first; parsing as
            # the bytes arrive (into a separate keyspace, swapped in once
            # complete) overlaps our load with the primary's snapshot.
            transfer = DisklessTransfer(server, live=False, quiet=True)
        else:
            transfer = DiskTransfer(server)
        link.begin_payload(result, transfer)

    def payload_started(self, link: PrimaryLink) -> None:
        where = "to disk" if link.transfer.kind == "disk" else "into memory"
        self.server.log("notice", "MASTER <-> REPLICA sync: receiving %s %s"
                        % (link.payload.describe(), where))

    def payload_complete(self, link: PrimaryLink) -> None:
        link.transfer.complete(lambda: self._loaded(link),
                               lambda reason: self.link_failed(link, reason))

    def _loaded(self, link: PrimaryLink) -> None:
        if link is not self.link or link.closed:
            return
        full = link.full
        self.source.adopt(full.replid, full.offset)
        self.can_psync = True
        keys = link.transfer.keys_loaded()
        link.transfer = None
        self.server.log("notice", "Done loading RDB, keys loaded: %d." % keys)
        persistence = getattr(self.server, "persistence", None)
        if persistence is not None:
            persistence.dataset_replaced()  # the AOF is rebuilt from the new dataset
        self.server.log("notice", "MASTER <-> REPLICA sync: Finished with success")
        self._link_established(link, 0)

    def _link_established(self, link: PrimaryLink, dbid: int) -> None:
        self.state = "connected"
        self.down_since = 0.0
        self.last_io = time.time()
        link.start_stream(dbid)
        self.send_ack()  # a diskless primary starts the stream on our first ACK

    def send_ack(self) -> None:
        link = self.link
        if link is not None and link.phase == link_mod.STREAM:
            link.send_ack(link.applied_offset())

    # ------------------------------------------------------------ failures

    def link_failed(self, link: PrimaryLink, reason: str) -> None:
        if link is self.link:
            self.server.log("warning", reason)
        link.close()

    def link_lost(self, link: PrimaryLink) -> None:
        if link is not self.link:
            return
        self.link = None
        now = time.time()
        transfer = link.transfer
        if transfer is not None:
            link.transfer = None
            if link.phase == link_mod.LOADING and transfer.kind == "disk" and transfer.loading:
                # The snapshot arrived whole: finish loading it and continue
                # from it with a partial resync (as Redis, whose load does not
                # depend on the link).
                self.orphan = transfer
                full = link.full
                transfer.on_success = lambda: self._orphan_loaded(transfer, full)
                transfer.on_failure = lambda reason: self._orphan_failed(transfer, reason)
            else:
                transfer.abort()
        if link.phase == link_mod.STREAM:
            self.server.log("warning", "Connection with master lost.")
            self.server.log("notice", "Caching the disconnected master state.")
            self._stream_db = link.dbid
            self.can_psync = True
            self.down_since = now
            self.retry_at = now  # reconnect at once
        else:
            self.retry_at = now + 1.0
        if self.host is not None:
            self.state = "connect"

    def _orphan_loaded(self, transfer, full) -> None:
        if self.orphan is not transfer:
            return
        self.orphan = None
        self.source.adopt(full.replid, full.offset)
        self.can_psync = True
        self._stream_db = 0
        self.down_since = time.time()
        self.retry_at = time.time()
        persistence = getattr(self.server, "persistence", None)
        if persistence is not None:
            persistence.dataset_replaced()
        self.server.log("notice", "MASTER <-> REPLICA sync: Finished with success (the link "
                        "was lost meanwhile: a partial resynchronization will follow)")

    def _orphan_failed(self, transfer, reason: str) -> None:
        if self.orphan is transfer:
            self.orphan = None
            self.server.log("warning", reason)
            self.retry_at = time.time() + 1.0

    def _abort_orphan(self) -> None:
        orphan, self.orphan = self.orphan, None
        if orphan is not None:
            orphan.abort()

    def shutdown(self, save) -> None:
        """Shutdown hook: a transfer in progress leaves no temporary file."""
        link = self.link
        if link is not None and link.transfer is not None:
            link.transfer.abort()
            link.transfer = None
        self._abort_orphan()
        return None

    def _drop_link(self) -> None:
        self._abort_orphan()
        link = self.link
        if link is None:
            return
        link.close()  # connection_lost runs later: forget the link now
        self.link_lost(link)

    # ------------------------------------------------------------ cron

    def cron(self) -> None:
        if self.host is None:
            return
        now = time.time()
        if self.state == "connect" and now >= self.retry_at:
            self.connect()
        if now - self.last_second < 1.0:
            return
        self.last_second = now
        timeout = self.settings["repl-timeout"]
        link = self.link
        if self.state in ("connecting", "handshake") and now - self.attempt_started > timeout:
            self.server.log("warning", "Timeout connecting to the MASTER...")
            if link is not None:
                link.close()
            else:
                self.generation += 1
                self.state = "connect"
                self.retry_at = now
            return
        if link is None:
            return
        if link.phase == link_mod.PAYLOAD and now - self.last_io > timeout:
            self.server.log("warning", "Timeout receiving bulk data from MASTER... If the problem "
                            "persists try to set the 'repl-timeout' parameter in redis.conf to "
                            "a larger value.")
            link.close()
            return
        if link.phase == link_mod.STREAM:
            if now - self.last_io > timeout:
                self.server.log("warning", "MASTER timeout: no data nor PING received...")
                link.close()
                return
            self.send_ack()
        elif link.phase in (link_mod.PAYLOAD, link_mod.LOADING):
            link.write(b"\n")  # keep the primary from timing us out while we load
            if now - self.last_progress >= PROGRESS_EVERY:
                self.last_progress = now
                self._log_progress(link, now)

    def _log_progress(self, link: PrimaryLink, now: float) -> None:
        received = link.payload.received if link.payload else 0
        total = link.payload.total if link.payload else -1
        loaded = link.transfer.keys_loaded() if link.transfer else 0
        elapsed = max(now - self.sync_started, 0.001)
        size = ("%d of %d bytes" % (received, total)) if total >= 0 else ("%d bytes" % received)
        self.server.log("notice", "MASTER <-> REPLICA sync in progress: %s received (%.1f MB/s), "
                        "%d keys loaded, %.0f seconds elapsed"
                        % (size, received / elapsed / 1e6, loaded, elapsed))

    # ------------------------------------------------------------ INFO / ROLE

    def role_state(self) -> str:
        return {"connect": "connect", "connecting": "connecting", "handshake": "handshake",
                "transfer": "sync", "connected": "connected"}.get(self.state, "none")

    def info_lines(self) -> list:
        now = time.time()
        link = self.link
        streaming = link is not None and link.phase == link_mod.STREAM
        if streaming:
            processed = self.source.ids.offset
            read = processed + link.unapplied_bytes()
        elif self.can_psync:
            processed = read = self.source.ids.offset
        else:
            processed = read = 0
        lines = [
            ("master_host", self.host),
            ("master_port", str(self.port)),
            ("master_link_status", "up" if self.state == "connected" else "down"),
            ("master_last_io_seconds_ago", str(int(now - self.last_io)) if streaming else "-1"),
            ("master_sync_in_progress", "1" if self.state == "transfer" else "0"),
            ("slave_read_repl_offset", str(read)),
            ("slave_repl_offset", str(processed)),
        ]
        if self.state == "transfer" and link is not None and link.payload is not None:
            total = link.payload.total
            got = link.payload.received
            lines += [
                ("master_sync_total_bytes", str(total)),
                ("master_sync_read_bytes", str(got)),
                ("master_sync_left_bytes", str(total - got if total >= 0 else -1)),
                ("master_sync_perc", "%.2f" % (got * 100.0 / total if total > 0 else 0.0)),
                ("master_sync_last_io_seconds_ago", str(int(now - self.last_io))),
            ]
        if self.state != "connected":
            lines.append(("master_link_down_since_seconds",
                          str(int(now - self.down_since)) if self.down_since else "-1"))
        s = self.settings
        lines += [
            ("slave_priority", str(s["replica-priority"])),
            ("slave_read_only", "1" if s["replica-read-only"] else "0"),
            ("replica_announced", "1" if s["replica-announced"] else "0"),
        ]
        return lines

    def role_reply(self) -> list:
        link = self.link
        offset = (self.source.ids.offset
                  if link is not None and link.phase == link_mod.STREAM else -1)
        return [b"slave", self.host.encode(), self.port, self.role_state().encode(), offset]
