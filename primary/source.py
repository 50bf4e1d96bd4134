"""The upstream side of replication: this node's replication history (ids,
offset, backlog) and the replicas that follow it.

Every node has one ReplicationSource, replica or not: a replica keeps the id
and offset of the history it follows (so it can PSYNC after a lost link and,
once promoted, let its former siblings PSYNC from it), and serves its own
replicas (chained replication) by passing on the exact bytes it applies.

Stream in: on a primary, the core's propagation (`feed`, a server sink) with
SELECT inserted when the database changes; on a replica, `proxy(raw_bytes)`
from the link to its primary. Either way `_append` advances the offset, fills
the backlog and writes to the replicas.
"""

from __future__ import annotations

import time

from hakv.common import dispatch
from hakv.common.connection import Block
from hakv.common.resp import ErrorReply, encode_command
from hakv.primary import psync as psync_logic
from hakv.primary.backlog import Backlog
from hakv.primary.failover import Failover
from hakv.primary.fullsync import DISK, SOCKET, SnapshotJob
from hakv.primary.links import ReplicaLink
from hakv.primary.psync import ReplIds, new_replid

# At most one write to each replica per FLUSH_INTERVAL while writes keep
# coming (an idle primary writes at once): every write wakes the replica
# process. 0 writes once per loop turn, as Redis does: 5 ms saved about
# 1 us per SET on each process but doubled the replication delay (probe
# median 4 -> 5-8 ms), and delay is what a failover loses. WAIT, shutdown,
# failover and new replicas flush at once.
FLUSH_INTERVAL = 0.0

PING = encode_command(b"PING")
GETACK = encode_command(b"REPLCONF", b"GETACK", b"*")
_SELECTS = [encode_command(b"SELECT", str(i).encode()) for i in range(16)]


def select_command(dbid: int) -> bytes:
    return _SELECTS[dbid] if dbid < 16 else encode_command(b"SELECT", str(dbid).encode())


class ReplicationSource:
    def __init__(self, server):
        self.server = server
        self.settings = server.settings
        self.ids = ReplIds(new_replid())
        self.backlog: Backlog | None = None
        self.replicas: list[ReplicaLink] = []
        self.seldb = -1  # the db the stream is in (-1: the next write starts with SELECT)
        self.job: SnapshotJob | None = None
        self.follower = None  # hakv.replica.follower.Follower, set by the replica component
        self.no_replicas_since = time.time()
        self.last_ping = 0.0
        self.last_second = 0.0
        self.waiters: list = []  # WAIT: (client, block, target offset, numreplicas)
        self.getack_scheduled = False
        self.flush_scheduled = False
        # The stream of this loop turn, written to the backlog and the
        # replicas at its end: one join, one backlog append and one socket
        # write per replica per turn. Flushed before any replica starts or
        # changes how it takes the stream (see deliver), and before the
        # backlog is read or replaced (settle).
        self.unsent: list = []
        self.last_flush = 0.0
        self.sink_registered = False
        self.stat_sync_full = 0
        self.stat_sync_partial_ok = 0
        self.stat_sync_partial_err = 0
        self.min_replicas = self.settings["min-replicas-to-write"]
        self.stat_repl_out = 0  # bytes sent to replicas
        self.stat_repl_in = 0  # bytes received from our primary
        self.failover = Failover(self)

    # ------------------------------------------------------------ role

    def is_replica(self) -> bool:
        f = self.follower
        return f is not None and f.host is not None

    def update_sink(self) -> None:
        """Take the core's propagation only as a primary with a backlog; a
        replica passes on its primary's bytes instead."""
        want = self.backlog is not None and not self.is_replica()
        if want and not self.sink_registered:
            self.server.add_sink(self)
            self.sink_registered = True
        elif not want and self.sink_registered:
            self.server.remove_sink(self)
            self.sink_registered = False

    def create_backlog(self) -> None:
        if self.backlog is None:
            self.settle()
            self.backlog = Backlog(self.settings["repl-backlog-size"], self.ids.offset + 1)
        self.update_sink()

    def promoted(self) -> None:
        """REPLICAOF NO ONE: a new history that remembers the old one."""
        self.settle()
        ids = self.ids
        ids.shift()
        self.server.log("notice", "Setting secondary replication ID to %s, valid up to offset: "
                        "%d. New replication ID is %s"
                        % (ids.replid2, ids.second_offset, ids.replid))
        self.seldb = -1
        self.disconnect_replicas()
        self.no_replicas_since = time.time()
        self.update_sink()

    def demoted(self) -> None:
        """REPLICAOF host port. Our replicas stay (as in Redis 7): from now on
        they get the new primary's stream through us; they are disconnected
        only if our history changes (a full sync, or +CONTINUE with a new id)."""
        self.update_sink()
        for client, blk, _, _ in self.waiters:
            if client.block is blk:
                self.server.unblock(client, self.acked_count(0))
        self.waiters = []

    def adopt(self, replid: str, offset: int) -> None:
        """A full sync loaded: our history is now the primary's, from offset on."""
        self.settle()
        self.ids.replid = replid
        self.ids.offset = offset
        self.ids.clear_second()
        self.seldb = -1
        self.backlog = Backlog(self.settings["repl-backlog-size"], offset + 1)
        self.update_sink()

    def new_primary_id(self, replid: str) -> None:
        """+CONTINUE <new id>: our primary changed history (it was promoted)."""
        self.settle()
        ids = self.ids
        ids.replid2 = ids.replid
        ids.second_offset = ids.offset + 1
        ids.replid = replid
        self.server.log("notice", "Master replication ID changed to %s" % replid)
        self.disconnect_replicas()

    def drop_history(self) -> None:
        """+FULLRESYNC: whatever we had is about to be replaced."""
        self.settle()
        self.disconnect_replicas()
        self.backlog = None
        self.update_sink()

    def disconnect_replicas(self) -> None:
        for link in list(self.replicas):
            link.client.close()

    # ------------------------------------------------------------ stream in

    def feed(self, items) -> None:
        """Server sink: [(dbid, resp_bytes)] of what the last command changed."""
        if len(items) == 1:
            dbid, data = items[0]
            if dbid == self.seldb:
                # _append(), inlined: the path of every write on a primary.
                self.ids.offset += len(data)
                if self.unsent or self.replicas:
                    self.unsent.append(data)
                    if not self.flush_scheduled:
                        self._schedule_flush()
                elif self.backlog is not None:
                    self.backlog.append(data)
                return
        parts = []
        seldb = self.seldb
        for dbid, data in items:
            if dbid != seldb:
                parts.append(select_command(dbid))
                seldb = dbid
            parts.append(data)
        self.seldb = seldb
        self._append(parts[0] if len(parts) == 1 else b"".join(parts))

    def proxy(self, data: bytes) -> None:
        """A replica passes on the bytes it applied from its primary."""
        if self.backlog is None:
            self.create_backlog()
        self._append(data)

    def _append(self, data: bytes) -> None:
        self.ids.offset += len(data)
        unsent = self.unsent
        if unsent or self.replicas:
            # The backlog too takes the turn's stream at its end, in one
            # piece (one append per turn, not per command): whatever reads
            # the backlog calls settle() first.
            unsent.append(data)
            if not self.flush_scheduled:
                self._schedule_flush()
        elif self.backlog is not None:
            self.backlog.append(data)

    def _schedule_flush(self) -> None:
        self.flush_scheduled = True
        loop = self.server.loop
        wait = self.last_flush + FLUSH_INTERVAL - loop.time() if FLUSH_INTERVAL else 0
        if wait > 0:
            loop.call_later(wait, self._flush_links)
        else:
            loop.call_soon(self._flush_links)

    def _flush_links(self) -> None:
        self.flush_scheduled = False
        unsent = self.unsent
        if unsent:
            self.unsent = []
            if FLUSH_INTERVAL:
                self.last_flush = self.server.loop.time()
            data = unsent[0] if len(unsent) == 1 else b"".join(unsent)
            if self.backlog is not None:
                self.backlog.append(data)
            for link in self.replicas:
                link.deliver(data)

    # The backlog holds the whole stream once what this turn buffered is
    # written out: before reading or replacing it.
    settle = _flush_links

    # ------------------------------------------------------------ REPLCONF / SYNC

    def link_for(self, client) -> ReplicaLink:
        link = client.replica_info
        if link is None:
            link = client.replica_info = ReplicaLink(client, self)
        return link

    def replconf(self, client, argv):
        if len(argv) % 2 == 0:
            raise ErrorReply("ERR syntax error")
        for i in range(1, len(argv), 2):
            opt = argv[i].lower()
            val = argv[i + 1]
            if opt == b"listening-port":
                try:
                    port = int(val)
                except ValueError:
                    raise ErrorReply("ERR value is not an integer or out of range") from None
                self.link_for(client).listening_port = port
            elif opt == b"ip-address":
                self.link_for(client).announce_ip = val.decode("utf-8", "replace")
            elif opt == b"capa":
                self.link_for(client).capa.add(val.decode("utf-8", "replace").lower())
            elif opt == b"ack":
                # A replica's ACK has no reply.
                if client.is_replica and client.replica_info is not None:
                    try:
                        offset = int(val)
                    except ValueError:
                        return dispatch.NO_REPLY
                    self.on_ack(client.replica_info, offset)
                return dispatch.NO_REPLY
            elif opt == b"getack":
                follower = self.follower
                if follower is not None and client.is_primary:
                    follower.send_ack()
                return dispatch.NO_REPLY
            elif opt in (b"rdb-only", b"rdb-filter-only", b"fack"):
                pass
            else:
                raise ErrorReply("ERR Unrecognized REPLCONF option: %s"
                                 % argv[i].decode("utf-8", "replace"))
        return "OK"

    def sync(self, client, argv):
        """SYNC / PSYNC replid offset."""
        if client.is_replica:
            return dispatch.NO_REPLY
        server = self.server
        if len(argv) > 3 and argv[0].lower() == b"psync" and argv[3].lower() == b"failover":
            self._failover_request(client, argv[1])
        if self.failover.active:
            raise ErrorReply("NOMASTERLINK Can't SYNC while failing over")
        if self.is_replica() and not self.follower.link_up():
            raise ErrorReply("NOMASTERLINK Can't SYNC while not connected with my master")
        is_psync = argv[0].lower() == b"psync"
        offset = 0
        if is_psync:
            try:
                offset = int(argv[2])
            except ValueError:
                raise ErrorReply("ERR value is not an integer or out of range") from None
        link = self.link_for(client)
        server.log("notice", "Replica %s asks for synchronization" % link.name())
        if is_psync:
            replid = argv[1].decode("utf-8", "replace")
            self.settle()
            ok, reason = psync_logic.try_partial(self.ids, self.backlog, replid, offset)
            if ok:
                self._continue(link, offset)
                self.stat_sync_partial_ok += 1
                return dispatch.NO_REPLY
            if replid != "?":
                self.stat_sync_partial_err += 1
                server.log("notice", "Partial resynchronization not accepted: %s" % reason)
            else:
                server.log("notice", "Full resync requested by replica %s" % link.name())
        else:
            link.old_sync = True
        self.stat_sync_full += 1
        client.flush()  # replies to commands before PSYNC go first
        self._flush_links()  # what the others were sent is in its snapshot
        client.is_replica = True
        link.state = ReplicaLink.WAIT_START
        link.requested_at = time.time()
        self.replicas.append(link)
        if self.backlog is None:
            if not self.is_replica():
                # Nothing recorded the history so far: start a new one here.
                self.ids.change()
                self.ids.clear_second()
            self.create_backlog()
            server.log("notice", "Replication backlog created, my new replication IDs are "
                       "'%s' and '%s'" % (self.ids.replid, self.ids.replid2))
        if self.job is not None and self.job.attach(link):
            return dispatch.NO_REPLY
        self.start_pending_sync()
        return dispatch.NO_REPLY

    def _failover_request(self, client, replid: bytes) -> None:
        """PSYNC <replid> <offset> FAILOVER: our primary hands over to us."""
        self.server.log("notice", "Failover request received for replid %s."
                        % replid.decode("utf-8", "replace"))
        if not self.is_replica():
            raise ErrorReply("ERR PSYNC FAILOVER can't be sent to a master.")
        if replid.decode("utf-8", "replace") != self.ids.replid:
            raise ErrorReply("ERR PSYNC FAILOVER replid must match my replid.")
        self.follower.unset_primary()
        self.server.log("notice", "MASTER MODE enabled (failover request from '%s')"
                        % client.info_line())

    def find_replica(self, host: str, port: int) -> ReplicaLink | None:
        """The replica known by this address (its announced or peer IP and its
        listening port), as FAILOVER TO names it."""
        host = host.lower()
        for link in self.replicas:
            if not link.closed and link.listening_port == port and link.ip().lower() == host:
                return link
        return None

    def lagging_replicas(self) -> int:
        """Replicas that have not acked our whole stream (SHUTDOWN waits for them)."""
        target = self.ids.offset
        return sum(1 for l in self.replicas if not l.closed and l.ack_offset != target)

    def log_lagging_at_shutdown(self, save) -> None:
        """Shutdown hook: hand the replicas what is buffered for them, and say
        which ones would miss writes."""
        self._flush_links()
        target = self.ids.offset
        replicas = [l for l in self.replicas if not l.closed]
        lagging = 0
        now = time.time()
        for link in replicas:
            if link.ack_offset != target:
                lagging += 1
                lag = int(now - link.ack_time) if link.state == ReplicaLink.ONLINE else 0
                self.server.log("warning", "Lagging replica %s reported offset %d behind master, "
                                "lag=%d, state=%s." % (link.name(), target - link.ack_offset,
                                                      lag, link.info_state()))
        if replicas:
            self.server.log("notice", "%d of %d replicas are in sync when shutting down."
                            % (len(replicas) - lagging, len(replicas)))
        return None

    def _continue(self, link: ReplicaLink, offset: int) -> None:
        client = link.client
        client.flush()
        self._flush_links()  # the backlog sent below already holds those bytes
        client.is_replica = True
        link.state = ReplicaLink.ONLINE
        link.ack_time = time.time()
        link.ack_offset = offset - 1
        self.replicas.append(link)
        if "psync2" in link.capa:
            link.write_raw(b"+CONTINUE %s\r\n" % self.ids.replid.encode())
        else:
            link.write_raw(b"+CONTINUE\r\n")
        data = self.backlog.since(offset)
        if data:
            link.write_raw(data)
        self.server.log("notice", "Partial resynchronization request from %s accepted. Sending "
                        "%d bytes of backlog starting from offset %d."
                        % (link.name(), len(data), offset))

    # ------------------------------------------------------------ full sync

    def start_pending_sync(self) -> None:
        """Fork a snapshot for the replicas waiting for one, when allowed."""
        if self.job is not None:
            return
        waiting = [l for l in self.replicas if l.state == ReplicaLink.WAIT_START and not l.closed]
        if not waiting:
            return
        if getattr(self.server, "child", None) is not None:
            return  # another child (BGSAVE, AOF rewrite) runs: retried from the cron
        settings = self.settings
        diskless = settings["repl-diskless-sync"] and all(
            "eof" in l.capa and not l.old_sync for l in waiting)
        if diskless:
            delay = settings["repl-diskless-sync-delay"]
            most = settings["repl-diskless-sync-max-replicas"]
            oldest = min(l.requested_at for l in waiting)
            if time.time() - oldest < delay and not (most and len(waiting) >= most):
                return
        job = SnapshotJob(self, SOCKET if diskless else DISK, waiting)
        self.job = job
        if not job.start():
            self.job = None  # busy: try again later
        elif job.finished:
            self.job = None

    def setup_full_resync(self, link: ReplicaLink, offset: int) -> None:
        """The snapshot for link starts now, at offset: tell it, hold the stream."""
        self._flush_links()  # the snapshot holds the writes so far: not for this link
        link.state = ReplicaLink.WAIT_END
        link.fullsync_offset = offset
        link.pending = []
        link.pending_len = 0
        # The stream after the snapshot must say which db it is in.
        self.seldb = -1
        if not link.old_sync:
            link.write_raw(b"+FULLRESYNC %s %d\r\n" % (self.ids.replid.encode(), offset))

    def snapshot_sent(self, link: ReplicaLink, wait_ack: bool) -> None:
        link.state = ReplicaLink.ONLINE
        link.ack_time = time.time()
        if wait_ack:
            link.wait_first_ack = True
            self.server.log("notice", "Streamed RDB transfer with replica %s succeeded (socket). "
                            "Waiting for REPLCONF ACK from replica to enable streaming"
                            % link.name())
            return
        self._flush_links()  # held bytes go first
        link.start_stream()
        self.server.log("notice", "Synchronization with replica %s succeeded" % link.name())

    def fullsync_failed(self, links, reason: str) -> None:
        for link in links:
            self.server.log("warning", "SYNC failed for replica %s: %s" % (link.name(), reason))
            link.write_raw(b"-ERR %s\r\n" % reason.encode())
            link.client.close()

    def job_finished(self, job: SnapshotJob) -> None:
        if self.job is job:
            self.job = None
        self.server.loop.call_soon(self.start_pending_sync)

    # ------------------------------------------------------------ acks, WAIT

    def on_ack(self, link: ReplicaLink, offset: int) -> None:
        if offset > link.ack_offset:
            link.ack_offset = offset
        link.ack_time = time.time()
        if link.wait_first_ack:
            link.wait_first_ack = False
            self._flush_links()  # held bytes go first
            link.start_stream()
            self.server.log("notice", "Synchronization with replica %s succeeded" % link.name())
        if self.waiters:
            self._check_waiters()
        if self.failover.active or self.server.shutdown_deadline:
            # Not from inside the ACK: the failover turns us into a replica.
            self.server.loop.call_soon(self._progress_after_ack)

    def _progress_after_ack(self) -> None:
        self.failover.check()
        self.server.shutdown_check()

    def acked_count(self, offset: int) -> int:
        return sum(1 for l in self.replicas
                   if l.state == ReplicaLink.ONLINE and l.ack_offset >= offset and not l.closed)

    def wait(self, client, numreplicas: int, timeout_ms: int):
        target = self.ids.offset
        acked = self.acked_count(target)
        if acked >= numreplicas or not client.may_block:
            return acked
        blk = Block([], None, None, 0)
        self.server.block(client, blk)
        if timeout_ms > 0:
            blk.timer = self.server.loop.call_later(timeout_ms / 1000.0, self._wait_timeout,
                                                    client, blk, target)
        self.waiters.append((client, blk, target, numreplicas))
        self.request_acks()
        return dispatch.NO_REPLY

    def _wait_timeout(self, client, blk, target) -> None:
        self.waiters = [w for w in self.waiters if w[1] is not blk]
        if client.block is blk:
            blk.timer = None
            self.server.unblock(client, self.acked_count(target))

    def _check_waiters(self) -> None:
        keep = []
        for client, blk, target, num in self.waiters:
            if client.block is not blk:
                continue  # disconnected or unblocked otherwise
            count = self.acked_count(target)
            if count >= num:
                self.server.unblock(client, count)
            else:
                keep.append((client, blk, target, num))
        self.waiters = keep

    def request_acks(self) -> None:
        """Ask the replicas for their offsets, once per event loop turn."""
        if not self.getack_scheduled:
            self.getack_scheduled = True
            self.server.loop.call_soon(self._send_getack)

    def _send_getack(self) -> None:
        self.getack_scheduled = False
        if self.replicas and not self.is_replica():
            self._append(GETACK)
            self._flush_links()  # WAIT is waiting: no coalescing delay

    # ------------------------------------------------------------ checks

    def good_replicas(self) -> int:
        max_lag = self.settings["min-replicas-max-lag"]
        now = time.time()
        return sum(1 for l in self.replicas
                   if l.state == ReplicaLink.ONLINE and int(now) - int(l.ack_time) <= max_lag)

    def min_replicas_check(self, client, cmd):
        """Write check: -NOREPLICAS when fewer good replicas than configured."""
        need = self.min_replicas  # cached: this runs for every write
        if (need and cmd.is_write and self.settings["min-replicas-max-lag"]
                and not client.is_primary and not self.is_replica()
                and self.good_replicas() < need):
            return ErrorReply("NOREPLICAS Not enough good replicas to write.")
        return None

    # ------------------------------------------------------------ cron

    def cron(self) -> None:
        now = time.time()
        self.start_pending_sync()
        if self.failover.active:
            self.failover.check()
        if now - self.last_second < 1.0:
            return
        self.last_second = now
        settings = self.settings
        if self.replicas and not self.is_replica():
            period = settings["repl-ping-replica-period"]
            # No PING while writes are held: a FAILOVER / SHUTDOWN waits for
            # the replicas to reach an offset that must stay put.
            if now - self.last_ping >= period and not self.server.write_holds:
                self.last_ping = now
                self._append(PING)
        for link in list(self.replicas):
            if link.state == ReplicaLink.WAIT_START or (
                    link.state == ReplicaLink.WAIT_END and self.job is not None
                    and self.job.mode == DISK and link.tail is None):
                link.write_raw(b"\n")  # keepalive while the snapshot is prepared
        self._check_output_limits(now)
        timeout = settings["repl-timeout"]
        for link in list(self.replicas):
            last_heard = max(link.ack_time, link.client.last_interaction)
            if link.state == ReplicaLink.ONLINE and now - last_heard > timeout:
                self.server.log("warning", "Disconnecting timedout replica (streaming sync): %s"
                                % link.name())
                link.client.close()
        if self.replicas:
            self.no_replicas_since = now
        elif (self.backlog is not None and not self.is_replica()
              and settings["repl-backlog-ttl"]
              and now - self.no_replicas_since > settings["repl-backlog-ttl"]):
            # Without replicas for a while: free the memory; a new history starts.
            self.settle()
            self.ids.change()
            self.ids.clear_second()
            self.backlog = None
            self.update_sink()
            self.server.log("notice", "Replication backlog freed after %d seconds without "
                            "connected replicas." % settings["repl-backlog-ttl"])

    def _check_output_limits(self, now: float) -> None:
        """client-output-buffer-limit replica <hard> <soft> <seconds>: what a
        replica has not taken yet (socket buffer + stream held during its
        sync) may not grow without bound."""
        try:
            hard, soft, seconds = self.settings["client-output-buffer-limit"]["replica"]
        except (KeyError, TypeError, ValueError):
            return
        for link in list(self.replicas):
            used = link.buffered() + link.pending_len
            over = bool(hard) and used > hard
            if soft and used > soft:
                if not link.soft_since:
                    link.soft_since = now
                elif now - link.soft_since > seconds:
                    over = True
            else:
                link.soft_since = 0.0
            if over:
                self.server.log("warning", "Client %s scheduled to be closed ASAP for "
                                "overcoming of output buffer limits." % link.client.info_line())
                link.client.close()

    def client_gone(self, client) -> None:
        link = client.replica_info
        if link is None or not client.is_replica:
            return
        if link in self.replicas:
            self.replicas.remove(link)
            self.server.log("notice", "Connection with replica %s lost." % link.name())
            if self.job is not None:
                self.job.drop(link)
            if not self.replicas:
                self.no_replicas_since = time.time()

    def config_changed(self, name: str, value) -> None:
        if name == "repl-backlog-size" and self.backlog is not None:
            self.settle()
            self.backlog.resize(value)
        elif name == "min-replicas-to-write":
            self.min_replicas = value

    # ------------------------------------------------------------ RDB aux

    def rdb_aux(self) -> dict:
        """repl-stream-db / repl-id / repl-offset for an RDB, when we have a
        history worth continuing (as Redis: a primary with a backlog, or a replica)."""
        follower = self.follower
        if follower is not None and follower.host is not None:
            if not follower.can_psync and not follower.link_up():
                return {}
            return {"repl-stream-db": follower.stream_db(), "repl-id": self.ids.replid,
                    "repl-offset": self.ids.offset}
        if self.backlog is None:
            return {}
        return {"repl-stream-db": 0 if self.seldb < 0 else self.seldb,
                "repl-id": self.ids.replid, "repl-offset": self.ids.offset}

    def restore_from_aux(self, aux: dict) -> bool:
        """After loading an RDB at startup: continue the history it names.
        A replica will PSYNC with it; a primary keeps it as its secondary id
        so its replicas can continue (the offset is exact only if the dump
        was taken at shutdown)."""
        replid = aux.get("repl-id")
        offset = aux.get("repl-offset")
        if not replid or offset is None:
            return False
        try:
            replid = replid.decode() if isinstance(replid, bytes) else str(replid)
            offset = int(offset)
            stream_db = int(aux.get("repl-stream-db", 0) or 0)
        except (ValueError, UnicodeDecodeError):
            return False
        if len(replid) != 40:
            return False
        self.ids.replid = replid
        self.ids.offset = offset
        follower = self.follower
        if follower is not None and follower.host is not None:
            follower.restored_history(stream_db)
        else:
            # Keep the loaded history as the secondary id, and record new writes.
            self.ids.shift()
            self.create_backlog()
        return True

    # ------------------------------------------------------------ INFO

    def info_lines(self) -> list:
        now = time.time()
        lines = []
        follower = self.follower
        if follower is not None and follower.host is not None:
            lines.append(("role", "slave"))
            lines.extend(follower.info_lines())
        else:
            lines.append(("role", "master"))
        online = [l for l in self.replicas if not l.closed]
        lines.append(("connected_slaves", str(len(online))))
        if self.settings["min-replicas-to-write"] and self.settings["min-replicas-max-lag"]:
            lines.append(("min_slaves_good_slaves", str(self.good_replicas())))
        for i, link in enumerate(online):
            lines.append(("slave%d" % i, "ip=%s,port=%d,state=%s,offset=%d,lag=%d" % (
                link.ip(), link.listening_port, link.info_state(), link.ack_offset,
                int(now) - int(link.ack_time))))
        self.settle()
        backlog = self.backlog
        lines += [
            ("master_failover_state", self.failover.state),
            ("master_replid", self.ids.replid),
            ("master_replid2", self.ids.replid2),
            ("master_repl_offset", str(self.ids.offset)),
            ("second_repl_offset", str(self.ids.second_offset)),
            ("repl_backlog_active", "1" if backlog is not None else "0"),
            ("repl_backlog_size", str(self.settings["repl-backlog-size"])),
            ("repl_backlog_first_byte_offset", str(backlog.first if backlog else 0)),
            ("repl_backlog_histlen", str(backlog.histlen if backlog else 0)),
        ]
        return lines

    def role_reply(self) -> list:
        replicas = [[l.ip().encode(), str(l.listening_port).encode(), str(l.ack_offset).encode()]
                    for l in self.replicas if not l.closed and l.state == ReplicaLink.ONLINE]
        return [b"master", self.ids.offset, replicas]
