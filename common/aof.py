"""The append-only file, in Redis 7's multi-part layout.

Files live in `appenddirname` (under `dir`), named after `appendfilename`:

    appendonly.aof.1.base.rdb    a snapshot (RDB, or commands if
                                 aof-use-rdb-preamble is no: .base.aof)
    appendonly.aof.1.incr.aof    the write commands since that snapshot
    appendonly.aof.manifest      which files make up the AOF, in order:
                                 file appendonly.aof.1.base.rdb seq 1 type b
                                 file appendonly.aof.1.incr.aof seq 1 type i

so a redis-server 7.0 started on the same directory loads our AOF and we load
its.  The AOF is a propagation sink: every write command reaches `feed`
(as [(dbid, resp_bytes)]); a SELECT is inserted when the database changes.

Durability (appendfsync):
- always:   feed() writes at once; the fdatasync runs once per batch,
            right before the replies acknowledging it are written
            (server.fsync_before_reply), so an acknowledged write survives
            kill -9 and power loss.
- everysec: written at once (so kill -9 loses nothing acknowledged: the
            data is in the page cache); fdatasync runs from the cron about
            once a second, so an OS crash loses at most about a second.
- no:       written at once; the OS decides when to sync.

Rewrite (BGREWRITEAOF, auto-aof-rewrite-*, turning appendonly on): the
parent first opens a new incr file and, when the AOF is on, records it in the
manifest, so base + all incr files stay a complete history at every moment;
then a forked child writes the new base (the snapshot at fork time) to a
temporary file.  When the child succeeds the parent renames it, writes a
manifest with the new base and only the newest incr file, and deletes the
older files.  A crash at any point leaves a manifest that loads.
"""

from __future__ import annotations

import os
import time

from hakv.common import dispatch, rdb, snapshot
from hakv.common.resp import ErrorReply, encode_command

_SELECT_CACHE: dict[int, bytes] = {}
_ITEMS_PER_CMD = 64  # elements per RPUSH/SADD/... in a command-form rewrite
_BAD_FORMAT_HINT = ("make a backup of your AOF file, then use ./redis-check-aof --fix "
                    "<filename.manifest>")


class AofError(Exception):
    """A problem that stops the node from loading its AOF (the message says which)."""


def select_command(dbid: int) -> bytes:
    cmd = _SELECT_CACHE.get(dbid)
    if cmd is None:
        cmd = _SELECT_CACHE[dbid] = encode_command(b"SELECT", b"%d" % dbid)
    return cmd


# ---------------------------------------------------------------- manifest


class AofInfo:
    __slots__ = ("name", "seq", "type")

    def __init__(self, name: str, seq: int, type_: str):
        self.name = name
        self.seq = seq
        self.type = type_

    def line(self) -> str:
        return "file %s seq %d type %s\n" % (_quote(self.name), self.seq, self.type)


def _quote(name: str) -> str:
    if name and all(c.isprintable() and c not in ' "\'\\' for c in name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Manifest:
    """Which files make up the AOF: one base, incr files in order, history
    files (replaced, waiting to be deleted)."""

    def __init__(self):
        self.base: AofInfo | None = None
        self.incrs: list[AofInfo] = []
        self.history: list[AofInfo] = []
        self.base_seq = 0
        self.incr_seq = 0

    @classmethod
    def parse(cls, text: str) -> "Manifest":
        from hakv.common.resp import split_args

        m = cls()
        for number, raw in enumerate(text.split("\n"), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            args = split_args(line.encode("utf-8", "surrogateescape"))
            if args is None or len(args) % 2:
                raise AofError("Invalid AOF manifest file format (line %d)" % number)
            fields = {args[i].decode().lower(): args[i + 1].decode("utf-8", "surrogateescape")
                      for i in range(0, len(args), 2)}
            try:
                info = AofInfo(fields["file"], int(fields["seq"]), fields["type"])
            except (KeyError, ValueError):
                raise AofError("Invalid AOF manifest file format (line %d)" % number) from None
            if info.type == "b":
                if m.base is not None:
                    raise AofError("Found duplicate base file information in the AOF manifest")
                m.base = info
                m.base_seq = info.seq
            elif info.type == "i":
                if info.seq <= m.incr_seq:
                    raise AofError("Found a non-monotonic sequence number in the AOF manifest")
                m.incrs.append(info)
                m.incr_seq = info.seq
            elif info.type == "h":
                m.history.append(info)
            else:
                raise AofError("Unknown AOF file type '%s' in the AOF manifest" % info.type)
        if m.base is None and not m.incrs and not m.history:
            raise AofError("Found an empty AOF manifest")
        return m

    def render(self) -> str:
        files = ([self.base] if self.base else []) + self.history + self.incrs
        return "".join(f.line() for f in files)

    def copy(self) -> "Manifest":
        m = Manifest()
        m.base = self.base
        m.incrs = list(self.incrs)
        m.history = list(self.history)
        m.base_seq = self.base_seq
        m.incr_seq = self.incr_seq
        return m


# ---------------------------------------------------------------- reading commands


class _Truncated(Exception):
    def __init__(self, offset: int):
        self.offset = offset


class _BadFormat(Exception):
    def __init__(self, offset: int):
        self.offset = offset


_INCOMPLETE, _BAD = 1, 2


def _parse_commands(buf: bytes, pos: int):
    """Parse the complete commands in buf[pos:].

    Returns (commands, starts, end, status, need): the commands (lists of
    bytes) and where each starts in buf, where parsing stopped, why (None: the
    buffer was consumed, _INCOMPLETE: a command is cut at `end`, _BAD: `end`
    is not a command) and, when incomplete, how many bytes the buffer must at
    least hold to finish the command."""
    commands = []
    starts = []
    find = buf.find
    n = len(buf)
    while pos < n:
        start = pos
        lead = buf[pos]
        if lead == 42:  # '*'
            eol = find(b"\r\n", pos + 1)
            if eol < 0:
                return commands, starts, start, _INCOMPLETE, 0
            try:
                argc = int(buf[pos + 1:eol])
            except ValueError:
                return commands, starts, start, _BAD, 0
            if argc < 1:
                return commands, starts, start, _BAD, 0
            pos = eol + 2
            argv = []
            for _ in range(argc):
                if pos >= n:
                    return commands, starts, start, _INCOMPLETE, 0
                if buf[pos] != 36:  # '$'
                    return commands, starts, start, _BAD, 0
                eol = find(b"\r\n", pos + 1)
                if eol < 0:
                    return commands, starts, start, _INCOMPLETE, 0
                try:
                    size = int(buf[pos + 1:eol])
                except ValueError:
                    return commands, starts, start, _BAD, 0
                data = eol + 2
                end = data + size
                if end + 2 > n:
                    return commands, starts, start, _INCOMPLETE, end + 2 - start
                if buf[end] != 13 or buf[end + 1] != 10 or size < 0:
                    return commands, starts, start, _BAD, 0
                argv.append(buf[data:end])
                pos = end + 2
            commands.append(argv)
            starts.append(start)
        elif lead == 35:  # '#': an annotation line (aof-timestamp-enabled)
            eol = find(b"\n", pos)
            if eol < 0:
                return commands, starts, start, _INCOMPLETE, 0
            pos = eol + 1
        else:
            return commands, starts, start, _BAD, 0
    return commands, starts, pos, None, 0


class CommandReader:
    """Reads RESP commands (`*N $len arg ...`) from a binary file, in chunks.

    ``batches()`` yields (commands, starts): the commands parsed from one
    chunk and the file offset where each begins. A command cut by the end of
    the file raises _Truncated(offset of its start); anything that is not a
    command raises _BadFormat(offset). Lines starting with '#' are
    annotations (aof-timestamp-enabled) and are skipped."""

    CHUNK = 1 << 20

    def __init__(self, fileobj, start: int = 0, initial: bytes = b""):
        self.f = fileobj
        self.start = start
        self.initial = initial
        self.offset = start  # just after the last complete command

    def batches(self):
        buf = self.initial
        base = self.start  # file offset of buf[0]
        pos = 0
        need = 0
        while True:
            commands, starts, pos, status, need_total = _parse_commands(buf, pos)
            if commands:
                self.offset = base + pos
                yield commands, [base + s for s in starts]
            elif status is None:
                self.offset = base + pos
            if status is _BAD:
                raise _BadFormat(base + pos)
            need = max(0, need_total - (len(buf) - pos))
            chunk = self.f.read(max(self.CHUNK, need))
            if not chunk:
                if pos < len(buf):
                    raise _Truncated(base + pos)
                return
            buf = buf[pos:] + chunk
            base += pos
            pos = 0


# ---------------------------------------------------------------- the AOF


class AppendOnlyFile:
    """The node's AOF: loading, the write path, fsync policy and rewrites."""

    def __init__(self, server):
        self.server = server
        self.settings = server.settings
        self.state = "off"  # off | wait_rewrite (turned on, first base pending) | on
        self.manifest: Manifest | None = None
        self.fd = -1
        self.incr: AofInfo | None = None  # the file being appended to
        self.pending_incr: AofInfo | None = None  # opened for wait_rewrite, not in manifest
        self.buf: list[bytes] = []
        self.last_dbid = -1
        self.current_size = 0
        self.base_size = 0
        self.last_fsync = time.monotonic()
        self.unsynced = False
        self.last_write_status = "ok"
        self.last_write_error = ""
        # Rewrites.
        self.rewrite_scheduled = False
        self.rewrite_child = None
        self.rewrite_started = 0.0
        self.rewrite_preamble = True
        self.rewrite_retry_at = 0.0
        self.last_rewrite_time_sec = -1
        self.last_bgrewrite_status = "ok"
        self.rewrites = 0
        self.consecutive_failures = 0

    # -- paths

    @property
    def dirname(self) -> str:
        return self.settings["appenddirname"]

    @property
    def basename(self) -> str:
        return self.settings["appendfilename"]

    def path(self, name: str) -> str:
        return os.path.join(self.dirname, name)

    @property
    def manifest_name(self) -> str:
        return self.basename + ".manifest"

    def read_manifest(self, upgrade: bool = True) -> Manifest | None:
        """The manifest on disk (None if there is none); with `upgrade`, a
        Redis < 7 single-file AOF (`appendfilename` in `dir`) is first moved
        into the directory layout."""
        path = self.path(self.manifest_name)
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except FileNotFoundError:
            legacy = self.basename
            if upgrade and os.path.isfile(legacy):
                return self._upgrade_legacy(legacy)
            return None
        return Manifest.parse(text)

    def _upgrade_legacy(self, legacy: str) -> Manifest:
        os.makedirs(self.dirname, exist_ok=True)
        m = Manifest()
        m.base = AofInfo(self.basename, 1, "b")
        m.base_seq = 1
        os.replace(legacy, self.path(self.basename))
        snapshot.fsync_directory(".")
        self.write_manifest(m)
        self.server.log("notice", "Successfully migrated an old-style AOF into the AOF "
                        "directory")
        return m

    def exists(self) -> bool:
        return (os.path.isfile(self.path(self.manifest_name))
                or os.path.isfile(self.basename))

    def write_manifest(self, m: Manifest) -> None:
        """Atomically replace the manifest (temp file, fsync, rename, fsync dir)."""
        os.makedirs(self.dirname, exist_ok=True)
        tmp = self.path("temp-" + self.manifest_name)
        with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(m.render())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path(self.manifest_name))
        snapshot.fsync_directory(self.dirname)
        self.manifest = m

    def _file_size(self, info: AofInfo | None) -> int:
        if info is None:
            return 0
        try:
            return os.path.getsize(self.path(info.name))
        except OSError:
            return 0

    def _total_size(self) -> int:
        m = self.manifest
        if m is None:
            return 0
        return self._file_size(m.base) + sum(self._file_size(i) for i in m.incrs)

    # -- loading

    def load_steps(self, yield_every: float = 0.02):
        """Load the AOF into the keyspace; a generator that yields between
        slices of work so the caller can let the event loop run. Raises
        AofError for an AOF that must not be loaded."""
        server = self.server
        m = self.read_manifest()
        if m is None:
            return
        self.manifest = m
        files = ([m.base] if m.base else []) + m.incrs
        for info in files:
            if not os.path.exists(self.path(info.name)):
                raise AofError("The AOF file %s doesn't exist" % info.name)
        ks = server.keyspace
        saved_flags = (ks.replica_mode, ks.applying_primary_stream)
        # Replay exactly what was written: no key expires (lazily or actively)
        # while loading, as Redis does; expired keys go after the load.
        ks.replica_mode = ks.applying_primary_stream = True
        try:
            for i, info in enumerate(files):
                last = i == len(files) - 1
                start = time.perf_counter()
                yield from self._load_file(info, last, yield_every)
                server.log("notice", "DB loaded from %s file %s: %.3f seconds" % (
                    "base" if info.type == "b" else "incr", info.name,
                    time.perf_counter() - start))
        finally:
            ks.replica_mode, ks.applying_primary_stream = saved_flags
        self.current_size = self.base_size = self._total_size()

    def _load_file(self, info: AofInfo, last: bool, yield_every: float):
        path = self.path(info.name)
        with open(path, "rb") as f:
            head = f.read(5)
            f.seek(0)
            start_offset = 0
            initial = b""
            if head == b"REDIS":
                if info.type != "b":
                    raise AofError("Bad file format reading the append only file %s: %s"
                                   % (info.name, _BAD_FORMAT_HINT))
                # An RDB base (and, in a pre-7 AOF, commands after it).
                loader = snapshot.KeyspaceLoader(self.server, keep_expired=True)
                parser = loader.parser()
                deadline = time.perf_counter() + yield_every
                while not parser.done:
                    chunk = f.read(max(1 << 20, parser.bytes_needed))
                    if not chunk:
                        break
                    loader.apply(parser.feed(chunk))
                    if time.perf_counter() > deadline:
                        yield
                        deadline = time.perf_counter() + yield_every
                try:
                    loader.apply(parser.close())
                except rdb.RdbError as exc:
                    raise AofError("Error reading the RDB base file %s, AOF loading aborted: %s"
                                   % (info.name, exc)) from None
                loader.finish()
                self.server.log("notice", "RDB is base AOF; keys loaded: %d"
                                % loader.keys_loaded)
                initial = parser.unused
                start_offset = f.tell() - len(initial)
            yield from self._replay(f, info, last, start_offset, initial, yield_every)

    def _replay(self, f, info: AofInfo, last: bool, start: int, initial: bytes,
                yield_every: float):
        from hakv.common.connection import Client

        server = self.server
        client = Client(server)
        client.authenticated = True
        client.is_primary = True  # apply as written: no "already expired" shortcuts
        client.addr = "aof"
        reader = CommandReader(f, start, initial)
        lookup = dispatch.lookup
        call = dispatch.call
        in_multi: list | None = None
        multi_offset = 0
        n = 0
        deadline = time.perf_counter() + yield_every
        try:
            for commands, starts in reader.batches():
                for argv, offset in zip(commands, starts):
                    name = argv[0].lower()
                    if name == b"multi":
                        in_multi = []
                        multi_offset = offset
                        continue
                    if name == b"exec" and in_multi is not None:
                        batch, in_multi = in_multi, None
                        for cmd, args in batch:
                            call(client, cmd, args)
                        continue
                    cmd = lookup(server, argv)
                    if isinstance(cmd, ErrorReply):
                        raise AofError("Unknown command '%s' reading the append only file %s"
                                       % (argv[0].decode("utf-8", "replace"), info.name))
                    if in_multi is not None:
                        in_multi.append((cmd, argv))
                        continue
                    call(client, cmd, argv)
                    n += 1
                    if n & 511 == 0 and time.perf_counter() > deadline:
                        client.out.clear()
                        yield
                        deadline = time.perf_counter() + yield_every
            if in_multi is not None:
                raise _Truncated(multi_offset)
        except _Truncated as cut:
            offset = cut.offset
            if in_multi is not None:
                server.log("warning", "Revert incomplete MULTI/EXEC transaction in AOF file %s"
                           % info.name)
                offset = multi_offset
            self._truncated(info, last, offset)
        except _BadFormat:
            raise AofError("Bad file format reading the append only file %s: %s"
                           % (info.name, _BAD_FORMAT_HINT)) from None

    def _truncated(self, info: AofInfo, last: bool, offset: int) -> None:
        server = self.server
        if not last:
            raise AofError("Fatal error: the truncated file %s is not the last file" % info.name)
        if not self.settings["aof-load-truncated"]:
            raise AofError(
                "Unexpected end of file reading the append only file %s. You can: 1) Make a "
                "backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. "
                "2) Alternatively you can set the 'aof-load-truncated' configuration option to "
                "yes and restart the server." % info.name)
        server.log("warning", "!!! Warning: short read while loading the AOF file %s!!!"
                   % info.name)
        server.log("warning", "!!! Truncating the AOF %s at offset %d !!!" % (info.name, offset))
        try:
            os.truncate(self.path(info.name), offset)
        except OSError as exc:
            raise AofError("Error truncating the AOF file %s: %s" % (info.name, exc.strerror))
        server.log("warning", "AOF %s loaded anyway because aof-load-truncated is enabled"
                   % info.name)

    # -- starting and stopping

    def start_after_load(self, loaded: bool) -> None:
        """After the startup load: open the incr file to append to (appendonly
        yes), creating the AOF if there was none."""
        if not self.settings["appendonly"]:
            if self.manifest is None:  # (its numbering, for a BGREWRITEAOF)
                try:
                    self.manifest = self.read_manifest(upgrade=False)
                except AofError:
                    self.manifest = None
            return
        m = self.manifest
        if loaded and m is not None:
            self.state = "on"
            if m.incrs:
                self.incr = m.incrs[-1]
                self.server.log("notice", "Opening AOF incr file %s on server start"
                                % self.incr.name)
                self._open(self.incr, truncate=False)
            else:
                self._new_incr_in_manifest()
            self.current_size = self.base_size = self._total_size()
            self.server.add_sink(self)
        elif not any(db.data for db in self.server.keyspace.dbs):
            # Nothing to snapshot: create base, incr and manifest right away.
            self._create_synchronously()
            self.server.add_sink(self)
        else:
            self.enable()  # the data came from an RDB: write the first base in a child

    def _create_synchronously(self) -> None:
        """Write a base of the current keyspace in this process (empty dataset,
        or shutdown before the first background rewrite finished)."""
        old = self.manifest.copy() if self.manifest else Manifest()
        os.makedirs(self.dirname, exist_ok=True)
        # The base will hold everything, so an incr opened for a rewrite in
        # progress must not be replayed on top of it: start a fresh one.
        self._close()
        self.buf.clear()
        if self.pending_incr is not None:
            try:
                os.unlink(self.path(self.pending_incr.name))
            except OSError:
                pass
            self.pending_incr = None
        preamble = self.settings["aof-use-rdb-preamble"]
        base = AofInfo(self._base_name(old.base_seq + 1, preamble), old.base_seq + 1, "b")
        tmp = self.path("temp-rewriteaof-%d.aof" % os.getpid())
        try:
            self._write_base(tmp, preamble)
            os.replace(tmp, self.path(base.name))
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        incr = AofInfo(self._incr_name(old.incr_seq + 1), old.incr_seq + 1, "i")
        self._open(incr, truncate=True)
        self._install(old, base, incr)
        self.state = "on"

    def enable(self) -> None:
        """appendonly yes at runtime: the first base is written by a child;
        writes go to the AOF once that child is forked."""
        if self.state != "off":
            return
        self.state = "wait_rewrite"
        self.server.add_sink(self)
        server = self.server
        if server.child_kind == "aof":
            server.kill_child()  # a BGREWRITEAOF with appendonly no: restart it
        if server.child is not None:
            self.rewrite_scheduled = True
            server.log("notice", "AOF was enabled but there is already another background "
                       "operation. An AOF background was scheduled to start when possible.")
            return
        if self.start_rewrite() is not None:
            self.rewrite_scheduled = True
        else:
            server.log("notice", "AOF enabled")

    def disable(self) -> None:
        """appendonly no at runtime: flush, fsync and stop appending."""
        if self.state == "off":
            return
        server = self.server
        self.flush(fsync=True)
        if server.child_kind == "aof":
            server.log("notice", "Killing running AOF rewrite child: %d" % server.child_pid)
            server.kill_child()
        self._close()
        self.state = "off"
        self.rewrite_scheduled = False
        server.remove_sink(self)

    def shutdown(self) -> None:
        """At SHUTDOWN / SIGTERM: stop a rewrite, make everything durable.
        If the first base was not written yet, write it now."""
        server = self.server
        if server.child_kind == "aof":
            server.log("warning", "There is a child rewriting the AOF. Killing it!")
            server.kill_child()
        if self.state == "wait_rewrite":
            self._create_synchronously()
        if self.state != "off":
            server.log("notice", "Calling fsync() on the AOF file.")
            self.flush(fsync=True)

    # -- the write path (a propagation sink)

    def feed(self, items) -> None:
        if self.fd < 0:
            return  # wait_rewrite before the fork: the snapshot will have it
        buf = self.buf
        last = self.last_dbid
        for dbid, data in items:
            if dbid != last:
                buf.append(select_command(dbid))
                last = dbid
            buf.append(data)
        self.last_dbid = last
        # Written now, before the client's reply is flushed: a kill -9 after
        # the reply never loses the write (it is in the page cache), as with
        # Redis.  With "always" the fdatasync comes right before the next
        # reply leaves (server.fsync_before_reply, run by the connection), so
        # a pipelined batch or a MULTI costs one fdatasync, not one per
        # command, as Redis syncs once per event-loop turn in beforeSleep.
        self.flush(fsync=False)
        if self.unsynced and self.settings["appendfsync"] == "always":
            self.server.fsync_before_reply = self.sync_before_reply

    def sync_before_reply(self) -> None:
        """Make what feed() wrote durable: runs before the replies acknowledging it."""
        self.server.fsync_before_reply = None
        self.flush(fsync=True)

    def flush(self, fsync: bool) -> bool:
        """Write what is buffered (and fdatasync if asked); False on error."""
        if self.fd < 0:
            self.buf.clear()
            return True
        monitor = self.server.latency_monitor
        if self.buf:
            data = b"".join(self.buf) if len(self.buf) > 1 else self.buf[0]
            self.buf.clear()
            start = time.perf_counter() if monitor.threshold else 0.0
            view = memoryview(data)
            try:
                while view:
                    n = os.write(self.fd, view)
                    view = view[n:]
                    self.current_size += n
            except OSError as exc:
                self.buf.append(bytes(view))  # retry the rest later
                self._write_failed(exc)
                return False
            if start:
                ms = (time.perf_counter() - start) * 1000
                monitor.add("aof-write", ms)
                child = getattr(self.server, "child", None)
                monitor.add("aof-write-alone" if child is None else "aof-write-active-child", ms)
            self.unsynced = True
            if self.last_write_status != "ok":
                self.server.log("warning", "AOF write error looks solved, Redis can write again.")
                self.last_write_status = "ok"
        if fsync and self.unsynced:
            start = time.perf_counter() if monitor.threshold else 0.0
            try:
                os.fdatasync(self.fd)
            except OSError as exc:
                self._write_failed(exc)
                return False
            if start and self.settings["appendfsync"] == "always":
                monitor.add("aof-fsync-always", (time.perf_counter() - start) * 1000)
            self.unsynced = False
            self.last_fsync = time.monotonic()
        return True

    def _write_failed(self, exc: OSError) -> None:
        server = self.server
        self.last_write_error = exc.strerror or str(exc)
        if self.settings["appendfsync"] == "always":
            server.log("warning", "Can't recover from AOF write error when the AOF fsync "
                       "policy is 'always'. Exiting...")
            os._exit(1)
        if self.last_write_status == "ok":
            server.log("warning", "Error writing to the AOF file: %s" % self.last_write_error)
        self.last_write_status = "err"

    def cron(self) -> None:
        if self.state == "off":
            return
        now = time.monotonic()
        if self.buf and self.last_write_status != "ok":
            self.flush(fsync=False)
        if (self.settings["appendfsync"] == "everysec" and self.unsynced
                and now - self.last_fsync >= 1.0):
            self.flush(fsync=True)
        if self.server.fsync_before_reply is not None:
            self.sync_before_reply()  # "always", and no reply came: writes of the expiry cycle
        server = self.server
        if server.child is not None or server.loading:
            return
        if self.state == "wait_rewrite" or self.rewrite_scheduled:
            if time.monotonic() >= self.rewrite_retry_at:
                self.rewrite_scheduled = False
                if self.start_rewrite() is not None:
                    self.rewrite_scheduled = True
            return
        perc = self.settings["auto-aof-rewrite-percentage"]
        min_size = self.settings["auto-aof-rewrite-min-size"]
        if perc and self.current_size > min_size and time.monotonic() >= self.rewrite_retry_at:
            base = self.base_size or 1
            growth = (self.current_size * 100 // base) - 100
            if growth >= perc:
                server.log("notice", "Starting automatic rewriting of AOF on %d%% growth"
                           % growth)
                self.start_rewrite()

    # -- files

    def _base_name(self, seq: int, preamble: bool) -> str:
        return "%s.%d.base.%s" % (self.basename, seq, "rdb" if preamble else "aof")

    def _incr_name(self, seq: int) -> str:
        return "%s.%d.incr.aof" % (self.basename, seq)

    def _open(self, info: AofInfo, truncate: bool) -> None:
        os.makedirs(self.dirname, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        if truncate:
            flags |= os.O_TRUNC  # a new incr file starts empty, whatever was there
        self.fd = os.open(self.path(info.name), flags, 0o644)
        self.incr = info
        self.last_dbid = -1
        self.unsynced = False

    def _close(self) -> None:
        if self.fd >= 0:
            self.flush(fsync=True)
            os.close(self.fd)
            self.fd = -1

    def _new_incr_in_manifest(self) -> None:
        """Start appending to a new incr file, recorded in the manifest. If
        anything fails the current file stays in use (and the error is raised)."""
        m = self.manifest.copy() if self.manifest else Manifest()
        info = AofInfo(self._incr_name(m.incr_seq + 1), m.incr_seq + 1, "i")
        self.flush(fsync=True)
        os.makedirs(self.dirname, exist_ok=True)
        path = self.path(info.name)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644)
        m.incrs.append(info)
        m.incr_seq = info.seq
        try:
            self.write_manifest(m)
        except BaseException:
            os.close(fd)
            try:
                os.unlink(path)
            except OSError:
                pass
            raise
        old, self.fd = self.fd, fd
        self.incr = info
        self.last_dbid = -1
        self.unsynced = False
        if old >= 0:
            os.close(old)

    def _write_base(self, path: str, preamble: bool) -> None:
        with open(path, "wb") as f:
            if preamble:
                snapshot.write_rdb(self.server, f, aof_base=True)
            else:
                rewrite_commands(self.server, f)
            f.flush()
            os.fsync(f.fileno())

    def _install(self, old: Manifest, base: AofInfo, incr: AofInfo | None) -> None:
        """Make `base` (+ `incr`) the AOF; everything else in `old` becomes
        history and is deleted once the new manifest is durable."""
        m = Manifest()
        m.base = base
        m.base_seq = base.seq
        m.incr_seq = max(old.incr_seq, incr.seq if incr else 0)
        keep = {base.name}
        if incr is not None:
            m.incrs = [incr]
            keep.add(incr.name)
        history = [f for f in ([old.base] if old.base else []) + old.history + old.incrs
                   if f.name not in keep]
        snapshot.fsync_directory(self.dirname)
        self.write_manifest(m)
        for f in history:
            try:
                os.unlink(self.path(f.name))
            except OSError:
                pass
        self.current_size = self.base_size = self._total_size()

    # -- rewrite

    def start_rewrite(self):
        """BGREWRITEAOF: returns None when the child started, else the reason."""
        server = self.server
        if server.child is not None:
            return "busy"
        preamble = self.settings["aof-use-rdb-preamble"]
        old = self.manifest.copy() if self.manifest else Manifest()
        try:
            if self.state == "on":
                self._new_incr_in_manifest()
            elif self.state == "wait_rewrite":
                self.flush(fsync=False)
                self._close()
                info = AofInfo(self._incr_name(old.incr_seq + 1), old.incr_seq + 1, "i")
                self._open(info, truncate=True)
                self.pending_incr = info
            else:
                os.makedirs(self.dirname, exist_ok=True)
        except OSError as exc:
            server.log("warning", "Can't open the append-only file for the rewrite: %s"
                       % exc.strerror)
            self._rewrite_failed(killed=False)
            return "error"

        def child_target():
            tmp = self.path("temp-rewriteaof-bg-%d.aof" % os.getpid())
            self._write_base(tmp, preamble)
            server.log("notice", "Successfully created the temporary AOF base file %s"
                       % os.path.basename(tmp))

        try:
            child = snapshot.fork_child(server, "aof", child_target, self._rewrite_done)
        except (OSError, snapshot.ChildBusy) as exc:
            server.log("warning", "Can't rewrite append only file in background: fork: %s" % exc)
            self._rewrite_failed(killed=False)
            return "error"
        child.cleanup.append(self.path("temp-rewriteaof-bg-%d.aof" % child.pid))
        self.rewrite_child = child
        self.rewrite_started = time.time()
        self.rewrite_preamble = preamble
        self.rewrite_scheduled = False
        self.rewrites += 1  # counted when started, as Redis does
        server.log("notice", "Background append only file rewriting started by pid %d"
                   % child.pid)
        return None

    def _rewrite_done(self, ok: bool) -> None:
        server = self.server
        child = self.rewrite_child
        self.rewrite_child = None
        self.last_rewrite_time_sec = int(time.time() - self.rewrite_started)
        if not ok:
            killed = child is not None and child.killed
            if killed:
                server.log("warning", "Background AOF rewrite terminated by signal")
            else:
                server.log("warning", "Background AOF rewrite terminated with error")
            self._rewrite_failed(killed)
            return
        old = self.manifest.copy() if self.manifest else Manifest()
        base = AofInfo(self._base_name(old.base_seq + 1, self.rewrite_preamble),
                       old.base_seq + 1, "b")
        tmp = self.path("temp-rewriteaof-bg-%d.aof" % child.pid)
        try:
            os.replace(tmp, self.path(base.name))
            if self.state == "on":
                incr = self.incr
            elif self.state == "wait_rewrite":
                incr = self.pending_incr
            else:
                incr = None
            self._install(old, base, incr)
        except OSError as exc:
            server.log("warning", "Error installing the rewritten AOF: %s" % exc.strerror)
            self._rewrite_failed(killed=False)
            return
        server.log("notice", "Successfully renamed the temporary AOF base file into %s"
                   % base.name)
        if self.state == "wait_rewrite":
            self.pending_incr = None
            self.state = "on"
        self.last_bgrewrite_status = "ok"
        self.consecutive_failures = 0
        server.log("notice", "Background AOF rewrite finished successfully")

    def _rewrite_failed(self, killed: bool) -> None:
        if not killed:
            self.last_bgrewrite_status = "err"
            self.consecutive_failures += 1
            # Back off so a failing disk does not fork in a loop.
            self.rewrite_retry_at = time.monotonic() + min(60, 5 * self.consecutive_failures)
        if self.state == "wait_rewrite" and self.pending_incr is not None:
            # The unlisted incr file was only for the snapshot that failed.
            self.buf.clear()
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
            try:
                os.unlink(self.path(self.pending_incr.name))
            except OSError:
                pass
            self.pending_incr = None
            self.incr = None
            self.rewrite_scheduled = True

    def rewrite_in_progress(self) -> bool:
        return self.rewrite_child is not None

    # -- INFO

    def info_fields(self) -> list:
        now = time.time()
        fields = [
            ("aof_enabled", "1" if self.state != "off" else "0"),
            ("aof_rewrite_in_progress", "1" if self.rewrite_child is not None else "0"),
            ("aof_rewrite_scheduled", "1" if self.rewrite_scheduled else "0"),
            ("aof_last_rewrite_time_sec", str(self.last_rewrite_time_sec)),
            ("aof_current_rewrite_time_sec",
             str(int(now - self.rewrite_started)) if self.rewrite_child is not None else "-1"),
            ("aof_last_bgrewrite_status", self.last_bgrewrite_status),
            ("aof_rewrites", str(self.rewrites)),
            ("aof_rewrites_consecutive_failures", str(self.consecutive_failures)),
            ("aof_last_write_status", self.last_write_status),
            ("aof_last_cow_size", "0"),
            ("module_fork_in_progress", "0"),
            ("module_fork_last_cow_size", "0"),
        ]
        if self.state != "off":
            fields += [
                ("aof_current_size", str(self.current_size)),
                ("aof_base_size", str(self.base_size)),
                ("aof_pending_rewrite", "1" if self.rewrite_scheduled else "0"),
                ("aof_buffer_length", str(sum(len(b) for b in self.buf))),
                ("aof_pending_bio_fsync", "0"),
                ("aof_delayed_fsync", "0"),
            ]
        return fields


# ---------------------------------------------------------------- command-form rewrite


def _score(score: float) -> bytes:
    if score == float("inf"):
        return b"inf"
    if score == float("-inf"):
        return b"-inf"
    return b"%.17g" % score


def rewrite_commands(server, f) -> None:
    """The keyspace as the commands that rebuild it (aof-use-rdb-preamble no)."""
    from collections import deque

    write = f.write
    codes = getattr(server, "function_codes", None)
    for code in (codes() if codes is not None else ()):
        write(encode_command(b"FUNCTION", b"LOAD", code))
    n = _ITEMS_PER_CMD
    for db in server.keyspace.dbs:
        if not db.data:
            continue
        write(select_command(db.id))
        expires = db.expires
        out: list[bytes] = []
        for key, value in db.data.items():
            cls = value.__class__
            if cls is bytes:
                out.append(encode_command(b"SET", key, value))
            elif cls is deque:
                items = list(value)
                for i in range(0, len(items), n):
                    out.append(encode_command(b"RPUSH", key, *items[i:i + n]))
            elif cls is dict:
                flat = [x for pair in value.items() for x in pair]
                for i in range(0, len(flat), 2 * n):
                    out.append(encode_command(b"HMSET", key, *flat[i:i + 2 * n]))
            elif cls is set:
                items = list(value)
                for i in range(0, len(items), n):
                    out.append(encode_command(b"SADD", key, *items[i:i + n]))
            else:  # ZSet
                flat = [x for member, score in value.items() for x in (_score(score), member)]
                for i in range(0, len(flat), 2 * n):
                    out.append(encode_command(b"ZADD", key, *flat[i:i + 2 * n]))
            when = expires.get(key) if expires else None
            if when is not None:
                out.append(encode_command(b"PEXPIREAT", key, b"%d" % when))
            if len(out) >= 1024:
                write(b"".join(out))
                out.clear()
        if out:
            write(b"".join(out))
