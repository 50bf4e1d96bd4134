"""Receiving and loading the snapshot of a full sync (repl-diskless-load).

- DiskTransfer (`disabled`, or `on-empty-db` with data): the payload goes to
  a temporary file; when complete, the old data is flushed and the file is
  loaded in slices on the event loop (clients get -LOADING meanwhile).
- DisklessTransfer(live=True) (`on-empty-db` on an empty node): the bytes are
  parsed as they arrive, straight into the keyspace (-LOADING meanwhile).
- DisklessTransfer(live=False) (`swapdb`): parsed into a separate keyspace
  while the old data keeps being served; swapped in once complete.

Any failure (a bad or truncated RDB, the link dropping) discards what was
loaded: a replica never serves a half-loaded dataset.
"""

from __future__ import annotations

import os
import time
from collections import deque

from hakv.common import rdb, snapshot
from hakv.common.crc64 import CrcHelper, crc64
from hakv.common.keyspace import Keyspace

LOAD_SLICE = 256 * 1024
SLICE_SECONDS = 0.05
# The snapshot's CRC64 was a fifth to a third of the replica's CPU in a full
# sync: past this many bytes it is computed by a helper process, on the other
# core, while this one parses (the helper costs ~70 ms of CPU to start: not
# for small snapshots; the first MiB costs ~30 ms here).
CRC_HELPER_AFTER = 1 << 20
# Bytes the parser may run ahead of the checksum helper before it waits for
# it (the helper, at ~80 MB/s, is faster than the parser but is not always
# scheduled when its pipe fills: waiting then cost 10% of a 1M-key sync).
CRC_QUEUE_LIMIT = 32 << 20


class QueuedCrcHelper(CrcHelper):
    """A CrcHelper that does not make the caller wait while its pipe is full
    (up to CRC_QUEUE_LIMIT bytes behind): what does not fit is queued, by
    reference (update() takes bytes that do not change), and written by
    later updates, the rest by result()."""

    def __init__(self, crc: int = 0):
        super().__init__(crc)
        self._fd = self._stdin.fileno()
        os.set_blocking(self._fd, False)
        self._queue: deque = deque()
        self._queued = 0

    def update(self, data) -> None:
        if data:
            self._queue.append(data)
            self._queued += len(data)
        self._drain()
        if self._queued > CRC_QUEUE_LIMIT:
            self._drain_waiting(CRC_QUEUE_LIMIT // 2)

    def _drain(self, keep: int = 0) -> None:
        """Write queued bytes until `keep` or fewer remain or the pipe is full
        (OSError if the helper died)."""
        queue, fd = self._queue, self._fd
        while self._queued > keep:
            head = queue[0]
            try:
                n = os.write(fd, head)
            except BlockingIOError:
                return
            self._queued -= n
            if n < len(head):
                queue[0] = memoryview(head)[n:]  # (a full pipe says so next time round)
            else:
                queue.popleft()

    def _drain_waiting(self, keep: int) -> None:
        os.set_blocking(self._fd, True)
        try:
            self._drain(keep)
        finally:
            os.set_blocking(self._fd, False)

    def result(self) -> int:
        self._drain_waiting(0)
        return super().result()


class _KeyspaceShim:
    """A server whose keyspace is a separate one (for swapdb loading)."""

    def __init__(self, server, keyspace):
        self._server = server
        self.keyspace = keyspace

    def __getattr__(self, name):
        return getattr(self._server, name)


def _flush_live(server) -> None:
    server.keyspace.flushall()


class StreamChecksum:
    """The CRC64 check RdbParser would make, for a parser fed the snapshot
    with verify_checksum=False: the bytes go to a CrcHelper process once the
    snapshot is big, so the checksum runs beside the parsing.

    The checksum covers the RDB up to its EOF opcode (parser.eof_offset),
    which is known only at the end: the last 8 bytes seen (maybe the stored
    checksum) are held back until then."""

    HOLD = 8

    def __init__(self, helper_after: int = CRC_HELPER_AFTER):
        self.crc = 0
        self.summed = 0  # bytes given to the checksum so far
        self.held = b""
        self.helper: CrcHelper | None = None
        self.helper_after = helper_after

    def update(self, data: bytes) -> None:
        data = self.held + data if self.held else data
        cut = len(data) - self.HOLD
        if cut <= 0:
            self.held = data
            return
        self.held = data[cut:]
        self._sum(data[:cut])

    def _sum(self, data: bytes) -> None:
        self.summed += len(data)
        if self.helper is not None:
            try:
                self.helper.update(data)
            except OSError as exc:  # the helper died: the check can't be made
                self.close()
                raise rdb.RdbError("Can't verify the RDB checksum: %s" % exc) from None
            return
        self.crc = crc64(data, self.crc)
        if self.summed >= self.helper_after:
            try:
                self.helper = QueuedCrcHelper(self.crc)
            except OSError:
                self.helper_after = float("inf")  # no helper: summed here

    def verify(self, parser, last: bytes = b"") -> None:
        """Once parser.done (last: the bytes that completed it, not given to
        update): raises RdbError as the parser would have."""
        stored = parser.checksum
        if not stored or parser.version is None or parser.version < 5:
            self.close()
            return  # no checksum (RDB < 5, or saved with rdbchecksum no)
        rest = self.held + last
        tail = parser.eof_offset - self.summed
        if not 0 <= tail <= len(rest):
            # Only with bytes after the stored checksum that the parser saw
            # only at close(): a primary sends none.
            self.close()
            raise rdb.RdbError("Unexpected bytes after the RDB checksum")
        self._sum(rest[:tail])
        self.held = b""
        helper, self.helper = self.helper, None
        computed = self.crc
        if helper is not None:
            try:
                computed = helper.result()
            except OSError as exc:
                raise rdb.RdbError("Can't verify the RDB checksum: %s" % exc) from None
            finally:
                helper.close()
        if computed != stored:
            raise rdb.RdbError(f"Wrong RDB checksum expected: ({computed:x}) "
                               f"but got ({stored:x})")

    def close(self) -> None:
        helper, self.helper = self.helper, None
        if helper is not None:
            helper.close()


class SnapshotLoader:
    """RDB bytes in, keys straight into a keyspace's dicts (the parser's fast
    path); AUX fields and function libraries go through snapshot's loader.
    Expired keys are kept: the primary sends their DELs. The checksum is
    StreamChecksum's (a helper process for a big snapshot). close() after a
    failure."""

    def __init__(self, server, keyspace):
        self.keyspace = keyspace
        self.parser = rdb.RdbParser(into=self._into, verify_checksum=False)
        self.checksum = StreamChecksum()
        self.verified = False
        target = server if keyspace is server.keyspace else _KeyspaceShim(server, keyspace)
        self.meta = snapshot.KeyspaceLoader(target, keep_expired=True)

    def _into(self, dbid: int):
        if dbid >= len(self.keyspace):
            raise snapshot.LoadError(
                "FATAL: Data file was created with a Redis server configured to handle more "
                "than %d databases. Exiting" % len(self.keyspace))
        db = self.keyspace[dbid]
        return db.data, db.expires

    @property
    def done(self) -> bool:
        return self.parser.done

    @property
    def keys_loaded(self) -> int:
        return self.parser.keys_loaded

    def feed(self, data: bytes) -> None:
        parser = self.parser
        if parser.done:
            return  # bytes after the snapshot's end are not the parser's either
        self.meta.apply(parser.feed(data))
        if parser.done:
            self._verify(data)  # the checksum covers a part of data
        else:
            self.checksum.update(data)

    def _verify(self, last: bytes = b"") -> None:
        if not self.verified:
            self.verified = True
            self.checksum.verify(self.parser, last)

    def close(self) -> None:
        """The load was abandoned: stop the checksum helper."""
        self.checksum.close()

    def finish(self) -> None:
        """The input ended: raises RdbError if the snapshot was cut short or
        its checksum is wrong."""
        self.meta.apply(self.parser.close())
        self._verify()
        for db in self.keyspace.dbs:
            if db.expires:
                db._rebuild_heap()
        self.meta.finish()


class DiskTransfer:
    kind = "disk"

    def __init__(self, server):
        self.server = server
        self.path = os.path.abspath("temp-%d.%d.rdb" % (int(time.time()), os.getpid()))
        self.file = open(self.path, "wb")
        self.src = None
        self.loader: SnapshotLoader | None = None
        self.loading = False
        self.aborted = False
        self.on_success = None
        self.on_failure = None

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)

    def keys_loaded(self) -> int:
        return self.loader.keys_loaded if self.loader else 0

    def complete(self, on_success, on_failure) -> None:
        server = self.server
        self.file.close()
        self.on_success, self.on_failure = on_success, on_failure
        server.log("notice", "MASTER <-> REPLICA sync: Flushing old data")
        _flush_live(server)
        server.loading = True
        self.loading = True
        server.log("notice", "MASTER <-> REPLICA sync: Loading DB in memory")
        self.src = open(self.path, "rb")
        self.loader = SnapshotLoader(server, server.keyspace)
        server.loop.call_soon(self._step)

    def _step(self) -> None:
        if self.aborted:
            return
        deadline = time.perf_counter() + SLICE_SECONDS
        try:
            while time.perf_counter() < deadline:
                data = self.src.read(LOAD_SLICE)
                if data:
                    self.loader.feed(data)
                if not data or self.loader.done:
                    self.loader.finish()
                    self._cleanup()
                    self.server.loading = False
                    self.loading = False
                    self.on_success()
                    return
        except (rdb.RdbError, snapshot.LoadError) as exc:
            self.server.log("warning", "Failed trying to load the MASTER synchronization DB "
                            "from disk: %s" % exc)
            self.abort()
            self.on_failure("Failed trying to load the MASTER synchronization DB from disk")
            return
        self.server.loop.call_soon(self._step)

    def _cleanup(self) -> None:
        if self.loader is not None:
            self.loader.close()
        for f in (self.file, self.src):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def abort(self) -> None:
        if self.aborted:
            return
        self.aborted = True
        self._cleanup()
        if self.loading:
            # Half loaded: drop it all rather than serve part of a dataset.
            _flush_live(self.server)
            self.server.loading = False
            self.loading = False


class DisklessTransfer:
    kind = "diskless"

    def __init__(self, server, live: bool, quiet: bool = False):
        """quiet: a separate keyspace for an empty node (not swapdb's log line)."""
        self.server = server
        self.live = live
        self.aborted = False
        if live:
            server.log("notice", "MASTER <-> REPLICA sync: Flushing old data")
            _flush_live(server)
            server.loading = True
            keyspace = server.keyspace
        else:
            self.temp = keyspace = Keyspace(len(server.keyspace))
        self.loader = SnapshotLoader(server, keyspace)
        server.log("notice", "MASTER <-> REPLICA sync: Loading DB in memory%s"
                   % ("" if live or quiet else " (swapdb: the old data is served meanwhile)"))

    def keys_loaded(self) -> int:
        return self.loader.keys_loaded

    def write(self, chunk: bytes) -> None:
        self.loader.feed(chunk)

    def complete(self, on_success, on_failure) -> None:
        try:
            self.loader.finish()
        except (rdb.RdbError, snapshot.LoadError) as exc:
            self.server.log("warning", "Failed trying to load the MASTER synchronization DB "
                            "from socket: %s" % exc)
            self.abort()
            on_failure("Failed trying to load the MASTER synchronization DB from socket")
            return
        if not self.live:
            self._swap_in()
        self.server.loading = False
        on_success()

    def _swap_in(self) -> None:
        ks = self.server.keyspace
        for live, loaded in zip(ks.dbs, self.temp.dbs):
            live.flush()  # WATCHers of keys that existed see the change
            live.data, live.expires, live.heap = loaded.data, loaded.expires, loaded.heap
            for key in live.blocked:
                if key in live.data:
                    ks.ready_keys.append((live, key))
        self.temp = None

    def abort(self) -> None:
        if self.aborted:
            return
        self.aborted = True
        self.loader.close()
        if self.live:
            _flush_live(self.server)
            self.server.loading = False
        else:
            self.temp = None
