"""Full synchronization: one forked child snapshots the keyspace for every
replica waiting for a full sync, while the primary keeps serving.

Two transports, as in Redis:
- disk: the child saves the RDB to `dbfilename`; the parent then sends each
  replica `$<size>\\r\\n` and the file, and puts it online.
- diskless (repl-diskless-sync, replicas with `capa eof`): the child writes
  the RDB into a pipe; the parent forwards it to the replicas' sockets framed
  as `$EOF:<40 random hex>\\r\\n<rdb><the same 40 bytes>` (the closing mark
  written by the child, so the snapshot is complete once the pipe shows it).
  The replica says it has loaded the snapshot with its first REPLCONF ACK,
  and only then does the stream start (so a replica that finds the end by the
  last 40 bytes it read never sees stream bytes glued to them).

Whatever the primary writes after the fork is buffered per replica
(ReplicaLink.pending) and delivered after the snapshot.
"""

from __future__ import annotations

import fcntl
import gc
import os
import time

from hakv.common import snapshot

DISK = "disk"
SOCKET = "socket"
CHUNK = 256 * 1024
HIGH_WATER = 8 * 1024 * 1024  # a replica's socket buffer above this pauses the transfer
LOW_WATER = 1024 * 1024


PIPE_SIZE = 1024 * 1024
MARK_LEN = 40  # the EOF mark of a diskless transfer: 40 random hex digits


def _widen_pipe(fd: int) -> None:
    """A 1 MiB pipe instead of 64 KiB: the child's 1 MiB writes go in one
    piece, with fewer wake-ups of both processes."""
    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
    except OSError:
        pass  # over /proc/sys/fs/pipe-max-size: keep the default


class FdSink:
    """A file descriptor as an RDB sink (the child's end of the pipe)."""

    def __init__(self, fd: int):
        self.fd = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]


class SnapshotJob:
    """One RDB child and the replicas it serves."""

    def __init__(self, source, mode: str, links: list):
        self.source = source
        self.server = source.server
        self.mode = mode
        self.links = list(links)
        self.offset = source.ids.offset
        self.started = time.time()
        self.child = None
        self.rfd = -1
        self.mark = b""
        self.pipe_done = False
        self.child_result = None  # None while running, then True/False
        self.reading = False
        self.bytes = 0
        self.tail = b""  # the last bytes read from the pipe (the child's EOF mark?)
        self.delivered = False  # the whole snapshot, mark included, was forwarded
        self.finished = False

    # ------------------------------------------------------------ start

    def start(self) -> bool:
        server = self.server
        if self.mode == SOCKET:
            rfd, wfd = os.pipe()
            _widen_pipe(wfd)
            mark = self.mark = os.urandom(20).hex().encode()

            def target():
                os.close(rfd)
                gc.disable()  # the child only reads the keyspace, then exits
                sink = FdSink(wfd)
                snapshot.write_rdb(server, sink)
                # The closing EOF mark comes from the child, as in Redis: the
                # replicas have the whole snapshot as soon as the pipe is
                # drained, not once the child has exited (tens of ms for a
                # big heap) and been reaped.
                sink.write(mark)
                os.close(wfd)
        else:
            path = server.settings["dbfilename"]

            def target():
                snapshot.save_rdb_file(server, path)

        try:
            self.child = snapshot.fork_child(server, "rdb", target, self._child_done)
        except snapshot.ChildBusy:
            if self.mode == SOCKET:
                os.close(rfd)
                os.close(wfd)
            return False
        except OSError as exc:
            if self.mode == SOCKET:
                os.close(rfd)
                os.close(wfd)
            server.log("warning", "Can't save in background: fork: %s" % exc.strerror)
            self.source.fullsync_failed(self.links, "BGSAVE failed, replication can't continue")
            self.finished = True
            return True
        server.log("notice", "Starting BGSAVE for SYNC with target: %s"
                   % ("replicas sockets" if self.mode == SOCKET else "disk"))
        server.log("notice", "Background %s started by pid %d"
                   % ("RDB transfer" if self.mode == SOCKET else "saving", self.child.pid))
        for link in self.links:
            self.source.setup_full_resync(link, self.offset)
            self._maybe_tail(link)
        if self.mode == SOCKET:
            os.close(wfd)
            self.rfd = rfd
            os.set_blocking(rfd, False)
            header = b"$EOF:" + self.mark + b"\r\n"
            for link in self.links:
                link.write_raw(header)
            self._resume_reading()
        return True

    def attach(self, link) -> bool:
        """A replica arriving while a disk save for replication runs can use
        it: it gets the same snapshot and the stream buffered since the fork."""
        if self.mode != DISK or self.child_result is not None:
            return False
        donor = next((l for l in self.links if l.pending is not None and not l.closed), None)
        if donor is None:
            return False
        self.source.setup_full_resync(link, self.offset)
        link.pending = list(donor.pending)
        link.pending_len = donor.pending_len
        self.links.append(link)
        self.server.log("notice", "Waiting for end of BGSAVE for SYNC")
        self._maybe_tail(link)
        return True

    def _maybe_tail(self, link) -> None:
        """Disk sync to a replica that takes EOF framing: send the file while
        the child writes it (its load overlaps our save) rather than after."""
        if self.mode == DISK and "eof" in link.capa and not link.old_sync:
            link.tailed = True
            link.tail = FileSender(self.source, link, self.server.settings["dbfilename"], job=self)
            link.tail.start()

    def drop(self, link) -> None:
        if link in self.links:
            self.links.remove(link)

    # ------------------------------------------------------------ diskless pipe

    def _resume_reading(self) -> None:
        if self.rfd >= 0 and not self.reading:
            self.server.loop.add_reader(self.rfd, self._on_pipe)
            self.reading = True

    def _pause_reading(self) -> None:
        if self.reading:
            self.server.loop.remove_reader(self.rfd)
            self.reading = False

    def _on_pipe(self) -> None:
        try:
            data = os.read(self.rfd, CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._pause_reading()
            os.close(self.rfd)
            self.rfd = -1
            self.pipe_done = True
            self.server.log("warning", "Diskless rdb transfer, done reading from pipe, %d "
                            "replicas still up." % len([l for l in self.links if not l.closed]))
            self._maybe_finish()
            return
        self.bytes += len(data)
        busiest = 0
        for link in self.links:
            if not link.closed:
                link.write_raw(data)
                busiest = max(busiest, link.buffered())
        tail = self.tail + data if len(data) < MARK_LEN else data
        self.tail = tail[-MARK_LEN:]
        if self.tail == self.mark and not self.delivered:
            # The child wrote the whole snapshot (nothing follows its mark):
            # the replicas may load it and ACK from now on, before the child
            # is reaped. Marked before any ACK can be read.
            self.delivered = True
            for link in self.links:
                if not link.closed:
                    self.source.snapshot_sent(link, wait_ack=True)
        if busiest > HIGH_WATER:
            self._pause_reading()
            self.server.loop.call_later(0.01, self._check_drained)

    def _check_drained(self) -> None:
        if self.rfd < 0:
            return
        if all(l.closed or l.buffered() <= LOW_WATER for l in self.links):
            self._resume_reading()
        else:
            self.server.loop.call_later(0.01, self._check_drained)

    # ------------------------------------------------------------ end

    def _child_done(self, ok: bool) -> None:
        self.child_result = ok
        if self.mode == SOCKET and not ok and self.rfd >= 0:
            self._pause_reading()
            os.close(self.rfd)
            self.rfd = -1
            self.pipe_done = True
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self.finished or self.child_result is None:
            return
        if self.mode == SOCKET and not self.pipe_done:
            return
        self.finished = True
        server = self.server
        links = [l for l in self.links if not l.closed]
        if not self.child_result:
            server.log("warning", "Background %s terminated with error"
                       % ("RDB transfer" if self.mode == SOCKET else "saving"))
            if not self.delivered:  # else the replicas have it all (and check its CRC)
                self.source.fullsync_failed(links, "BGSAVE failed, replication can't continue")
        else:
            server.log("notice", "Background %s terminated with success"
                       % ("RDB transfer" if self.mode == SOCKET else "saving"))
            if self.mode == SOCKET:
                if not self.delivered:  # the pipe ended without the mark: cut short
                    self.source.fullsync_failed(links, "BGSAVE failed, replication can't "
                                                "continue")
            else:
                for link in links:
                    if not link.tailed:
                        FileSender(self.source, link, self.server.settings["dbfilename"]).start()
        self.source.job_finished(self)


class FileSender:
    """Sends a saved RDB file to one replica as `$<size>\\r\\n<bytes>`, paced by
    the replica's socket buffer.

    With `job` (a disk save still running), the file is tailed as the child
    writes it -- temp-<child pid>.rdb, renamed to `path` at the end -- and
    framed as `$EOF:<mark>\\r\\n<bytes><mark>` since its size is not known yet;
    the replica's first ACK then starts the stream (as after a diskless sync)."""

    def __init__(self, source, link, path: str, job=None):
        self.source = source
        self.link = link
        self.path = path
        self.job = job
        self.mark = os.urandom(20).hex().encode()
        self.file = None
        self.sent = 0
        self.size = 0

    def start(self) -> None:
        link = self.link
        if self.job is not None:
            link.state = link.SEND_BULK
            link.write_raw(b"$EOF:" + self.mark + b"\r\n")
            self._tail()
            return
        try:
            self.file = open(self.path, "rb")
            self.size = os.fstat(self.file.fileno()).st_size
        except OSError as exc:
            self.source.server.log("warning", "SYNC failed. Can't open/stat DB after BGSAVE: %s"
                                   % exc.strerror)
            self.source.fullsync_failed([link], "Can't open the DB after BGSAVE")
            return
        link.state = link.SEND_BULK
        link.write_raw(b"$%d\r\n" % self.size)
        self._pump()

    def _pump(self) -> None:
        link = self.link
        if link.closed:
            self.file.close()
            return
        while link.buffered() < HIGH_WATER:
            data = self.file.read(CHUNK)
            if not data:
                self.file.close()
                self.source.snapshot_sent(link, wait_ack=False)
                return
            link.write_raw(data)
            self.sent += len(data)
        self.source.server.loop.call_later(0.005, self._pump)

    def _tail(self) -> None:
        link, job = self.link, self.job
        if link.closed or job.child_result is False:
            if self.file is not None:
                self.file.close()  # a failed save: the job closes the link
            return
        if self.file is None:
            done = job.child_result
            try:
                self.file = open(self.path if done else
                                 snapshot.temp_rdb_path(self.path, job.child.pid), "rb")
            except FileNotFoundError:
                # Not created yet, or just renamed: look again shortly.
                self.source.server.loop.call_later(0.005, self._tail)
                return
            except OSError as exc:
                self.source.server.log("warning", "SYNC failed. Can't open the DB being "
                                       "saved: %s" % exc.strerror)
                self.source.fullsync_failed([link], "Can't open the DB after BGSAVE")
                return
        while link.buffered() < HIGH_WATER:
            done = job.child_result  # before the read: then an empty read is the end
            data = self.file.read(CHUNK)
            if data:
                link.write_raw(data)
                self.sent += len(data)
                continue
            if not done:
                break  # the child is still writing
            self.file.close()
            link.write_raw(self.mark)
            link.tail = None
            self.source.snapshot_sent(link, wait_ack=True)
            return
        self.source.server.loop.call_later(0.005, self._tail)
