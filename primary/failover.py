"""Coordinated failover (FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms]),
as Redis 6.2+ does it:

1. waiting-for-sync: writes are paused (the stream stops growing) until a
   replica -- the named one, or the first one -- has acked our whole stream
   (or the timeout passes: abort, or with FORCE fail over to the named
   replica anyway);
2. failover-in-progress: we turn into a replica of it, and our handshake
   sends `PSYNC <replid> <offset> FAILOVER`, which tells it to become the
   primary first (same replid: it continues our history with +CONTINUE);
3. once it answers +CONTINUE / +FULLRESYNC the failover is over and writes
   resume (they now get -READONLY); any other answer aborts: we turn back
   into a primary.

FAILOVER ABORT (the only way out of a failover that cannot progress; REPLICAOF
is refused meanwhile) ends either phase.
"""

from __future__ import annotations

import time

from hakv.common.numbers import get_int
from hakv.common.resp import ErrorReply

NO_FAILOVER = "no-failover"
WAIT_FOR_SYNC = "waiting-for-sync"
IN_PROGRESS = "failover-in-progress"

HOLD = "failover"  # the purpose of our write pause (common/server.py hold_writes)


class Failover:
    def __init__(self, source):
        self.source = source
        self.server = source.server
        self.state = NO_FAILOVER
        self.host: str | None = None
        self.port = 0
        self.deadline = 0.0  # time.time() after which we give up (0: never)
        self.force = False

    @property
    def active(self) -> bool:
        return self.state != NO_FAILOVER

    # ------------------------------------------------------------ command

    def command(self, argv):
        """FAILOVER's handler body; returns the reply."""
        if len(argv) == 2 and argv[1].lower() == b"abort":
            if not self.active:
                raise ErrorReply("ERR No failover in progress.")
            self.abort("Failover manually aborted")
            return "OK"
        timeout_ms = 0
        force = False
        host = None
        port = 0
        i = 1
        while i < len(argv):
            opt = argv[i].lower()
            if opt == b"timeout" and i + 1 < len(argv) and timeout_ms == 0:
                timeout_ms = get_int(argv[i + 1])
                if timeout_ms <= 0:
                    raise ErrorReply("ERR FAILOVER timeout must be greater than 0")
                i += 2
            elif opt == b"to" and i + 2 < len(argv) and host is None:
                port = get_int(argv[i + 2])
                host = argv[i + 1].decode("utf-8", "surrogateescape")
                i += 3
            elif opt == b"force" and not force:
                force = True
                i += 1
            else:
                raise ErrorReply("ERR syntax error")
        source = self.source
        if self.active:
            raise ErrorReply("ERR FAILOVER already in progress.")
        if source.is_replica():
            raise ErrorReply("ERR FAILOVER is not valid when server is a replica.")
        if not source.replicas:
            raise ErrorReply("ERR FAILOVER requires connected replicas.")
        if force and (not timeout_ms or host is None):
            raise ErrorReply("ERR FAILOVER with force option requires both a timeout and "
                             "target HOST and IP.")
        log = self.server.log
        if host is not None:
            link = source.find_replica(host, port)
            if link is None:
                raise ErrorReply("ERR FAILOVER target HOST and PORT is not a replica.")
            if link.state != link.ONLINE:
                raise ErrorReply("ERR FAILOVER target replica is not online.")
            self.host, self.port = host, port
            log("notice", "FAILOVER requested to %s:%d." % (host, port))
        else:
            log("notice", "FAILOVER requested to any replica.")
        self.deadline = time.time() + timeout_ms / 1000.0 if timeout_ms else 0.0
        self.force = force
        self.state = WAIT_FOR_SYNC
        self.server.hold_writes(HOLD)
        return "OK"

    # ------------------------------------------------------------ progress

    def check(self) -> None:
        """From the cron and on every ACK: has a replica caught up?"""
        if self.state != WAIT_FOR_SYNC:
            return
        source = self.source
        if self.deadline and time.time() >= self.deadline:
            if self.force:
                self.server.log("notice", "FAILOVER to %s:%d time out exceeded, failing over."
                                % (self.host, self.port))
                self._hand_over()
            else:
                self.abort("Replica never caught up before timeout")
            return
        target = source.ids.offset
        if self.host is not None:
            link = source.find_replica(self.host, self.port)
            if link is None or link.ack_offset != target:
                return
        else:
            link = next((l for l in source.replicas if not l.closed
                         and l.state == l.ONLINE and l.ack_offset == target), None)
            if link is None:
                return
            self.host, self.port = link.ip(), link.listening_port
        self.server.log("notice", "Failover target %s:%d is synced, failing over."
                        % (self.host, self.port))
        self._hand_over()

    def _hand_over(self) -> None:
        """Become a replica of the target; our handshake carries FAILOVER."""
        self.state = IN_PROGRESS
        self.source.follower.set_primary(self.host, self.port)

    def psync_answered(self, accepted: bool) -> None:
        """The target answered our PSYNC FAILOVER."""
        if self.state != IN_PROGRESS:
            return
        if accepted:
            self.clear()
        else:
            self.abort("Failover target rejected psync request")

    def abort(self, reason: str) -> None:
        if not self.active:
            return
        if self.host is not None:
            self.server.log("notice", "FAILOVER to %s:%d aborted: %s"
                            % (self.host, self.port, reason))
        else:
            self.server.log("notice", "FAILOVER to any replica aborted: %s" % reason)
        if self.state == IN_PROGRESS:
            self.state = NO_FAILOVER  # so that turning back into a primary is allowed
            self.source.follower.unset_primary()
        self.clear()

    def clear(self) -> None:
        self.state = NO_FAILOVER
        self.host = None
        self.port = 0
        self.deadline = 0.0
        self.force = False
        self.server.release_writes(HOLD)

