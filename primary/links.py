"""One replica as its primary sees it: the connection it came in on, what it
told us in REPLCONF, where it is in its synchronization, and what it acked."""

from __future__ import annotations

import time


class ReplicaLink:
    HANDSHAKE = "handshake"  # REPLCONF seen, no SYNC/PSYNC yet
    WAIT_START = "wait_bgsave_start"  # waiting for a snapshot child to start
    WAIT_END = "wait_bgsave_end"  # the child is writing the snapshot
    SEND_BULK = "send_bulk"  # sending a saved snapshot file
    ONLINE = "online"

    def __init__(self, client, source=None):
        self.client = client
        self.source = source  # counts the bytes sent (INFO total_net_repl_output_bytes)
        self.state = self.HANDSHAKE
        self.listening_port = 0
        self.announce_ip = ""
        self.capa: set[str] = set()
        self.old_sync = False  # SYNC rather than PSYNC: no +FULLRESYNC line
        self.requested_at = time.time()
        self.ack_offset = 0
        self.ack_time = time.time()
        self.pending: list | None = None  # stream held back until the snapshot is delivered
        self.pending_len = 0
        self.wait_first_ack = False  # diskless: the stream starts with the replica's first ACK
        self.fullsync_offset = -1
        self.soft_since = 0.0  # since when the output is over the soft limit
        self.tail = None  # the FileSender sending a disk snapshot while it is written
        self.tailed = False  # that one sends it, not one started after the save

    # -- identity

    @property
    def closed(self) -> bool:
        return self.client.closed

    def ip(self) -> str:
        if self.announce_ip:
            return self.announce_ip
        addr = self.client.addr
        return addr.rsplit(":", 1)[0] if ":" in addr else addr

    def name(self) -> str:
        """How logs name a replica: its IP and listening port."""
        return "%s:%d" % (self.ip(), self.listening_port)

    def info_state(self) -> str:
        if self.state in (self.WAIT_START, self.WAIT_END):
            return "wait_bgsave"
        if self.state == self.SEND_BULK:
            return "send_bulk"
        if self.state == self.ONLINE:
            return "online"
        return "handshake"

    # -- output

    def buffered(self) -> int:
        transport = self.client.transport
        if transport is None or self.client.closed:
            return 0
        return transport.get_write_buffer_size()

    def write_raw(self, data: bytes) -> None:
        """Bytes straight to the socket (protocol lines, the snapshot)."""
        client = self.client
        if client.transport is not None and not client.closed:
            client.transport.write(data)
            if self.source is not None:
                self.source.stat_repl_out += len(data)

    def deliver(self, data: bytes) -> None:
        """Replication stream bytes (a loop turn's worth, the same bytes
        object for every replica): sent now, or held while the replica syncs."""
        state = self.state
        if state == self.WAIT_START or state == self.HANDSHAKE:
            return  # its snapshot will contain these writes
        if self.pending is not None:
            self.pending.append(data)
            self.pending_len += len(data)
            return
        self.write_raw(data)

    def start_stream(self) -> None:
        """Deliver what was held back during the snapshot; stream from now on."""
        pending, self.pending = self.pending, None
        self.pending_len = 0
        if pending:
            self.write_raw(b"".join(pending))
