"""Snapshots of the keyspace: the one way every RDB is written and read.

A disk save (SAVE / BGSAVE / shutdown), a replication full sync (disk or
diskless), the AOF base file and DUMP payloads all use rdb.py's writer; this
module adds what depends on the node: the AUX fields Redis writes, the
encoding limits from the config, function libraries, and applying a loaded
dump to the keyspace.

API
---
``write_rdb(server, sink, extra_aux=None, *, aof_base=False) -> int``
    The whole keyspace as one RDB to ``sink`` (anything with ``write(bytes)``);
    returns the bytes written.  The checksum of a big dump is computed by a
    helper process on another core (rdb.RdbWriter's crc_helper); sorted sets
    are written as ZSET_2, the fastest to write and read (binary_zsets).
``save_rdb_file(server, path, extra_aux=None) -> int``
    write_rdb to a temporary file next to ``path``, fsync, rename, fsync the
    directory: a crash mid-save never destroys the previous dump.
``load_rdb(server, fileobj, *, keep_expired=None) -> dict``
    Apply a dump into the keyspace (the caller flushes first if it must);
    returns the AUX fields as {str: bytes}.  Keys already expired are dropped
    on a primary and kept on a replica (its primary sends the DELs), as Redis.
``KeyspaceLoader(server, keep_expired=None)``
    The same in pieces (loads that yield to the event loop, bytes arriving
    from a socket): ``p = loader.parser()`` is an rdb.RdbParser storing keys
    straight into the databases; ``loader.apply(p.feed(data))`` ...
    ``loader.apply(p.close())``, then ``loader.finish() -> aux``. apply() also
    takes Key events from a parser made elsewhere. ``keys_loaded`` /
    ``keys_expired`` count. Raises LoadError for a dump with more databases
    than the node has.
``gc_paused(freeze=False)``
    Context manager: no cyclic GC inside (loads and saves of millions of
    objects), with freeze the loaded dataset goes to the permanent generation.
``fork_child(server, kind, target, on_done, keep_fds=()) -> ChildProcess``
    Run ``target()`` in a forked child (one child at a time for the node:
    ``server.child`` / ``server.child_kind`` / ``server.child_pid``, else
    ChildBusy); the child exits with 0 if target returned, 1 if it raised,
    never running atexit handlers or asyncio. It closes the listening and
    client sockets (except `keep_fds`), runs without GC at nice +10, and dies
    with the parent (PR_SET_PDEATHSIG). The parent reaps it without blocking
    the loop (a pidfd on the event loop, a cron poll as the fallback) and
    calls ``on_done(ok)``; files in ``child.cleanup`` are removed if it
    failed. ``server.kill_child()`` stops it (on_done(False) runs,
    child.killed is set). INFO stats: server.stat_latest_fork_usec,
    server.stat_total_forks.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import os
import signal
import sys
import time
import traceback

from hakv.common import rdb
from hakv.common.config import REDIS_VERSION

__all__ = [
    "write_rdb", "save_rdb_file", "load_rdb", "KeyspaceLoader", "encoding_limits",
    "fork_child", "ChildProcess", "ChildBusy", "fsync_directory", "gc_paused",
]


@contextlib.contextmanager
def gc_paused(freeze: bool = False):
    """No cyclic garbage collection inside (a load or a save of millions of
    objects would otherwise trigger collections that scan the whole, growing
    keyspace: a third of the time). With freeze, what exists afterwards (the
    dataset just loaded) moves to the permanent generation, so later
    collections -- and their copy-on-write in a fork -- skip it; keyspace
    values hold no reference cycles, so nothing collectable is lost."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()


# ---------------------------------------------------------------- writing


def encoding_limits(settings) -> rdb.EncodingLimits:
    """The compact-encoding thresholds of redis.conf, for the RDB writer."""
    return rdb.EncodingLimits(
        list_max_listpack_size=settings["list-max-listpack-size"],
        hash_max_listpack_entries=settings["hash-max-listpack-entries"],
        hash_max_listpack_value=settings["hash-max-listpack-value"],
        set_max_intset_entries=settings["set-max-intset-entries"],
        zset_max_listpack_entries=settings["zset-max-listpack-entries"],
        zset_max_listpack_value=settings["zset-max-listpack-value"],
    )


def rdb_aux(server, extra_aux=None, aof_base: bool = False) -> dict:
    """The AUX fields, in the order Redis 7.0 writes them."""
    aux = {
        "redis-ver": REDIS_VERSION,
        "redis-bits": 64,
        "ctime": int(time.time()),
        "used-mem": server.used_memory(),
    }
    # repl-stream-db, repl-id, repl-offset: only when replication has them.
    repl = getattr(server, "replication_aux", None)
    if repl is not None:
        aux.update(repl() or {})
    aux["aof-base"] = 1 if aof_base else 0
    if extra_aux:
        aux.update(extra_aux)
    return aux


def write_rdb(server, sink, extra_aux=None, *, aof_base: bool = False) -> int:
    """Write the whole keyspace (all dbs, TTLs, function libraries) as an RDB."""
    settings = server.settings
    writer = rdb.RdbWriter(sink, compress=settings["rdbcompression"],
                           checksum=settings["rdbchecksum"], limits=encoding_limits(settings),
                           crc_helper=True, binary_zsets=True)
    try:
        writer.write_header(rdb_aux(server, extra_aux, aof_base))
        codes = getattr(server, "function_codes", None)
        if codes is not None:
            writer.write_functions(codes())
        for db in server.keyspace.dbs:
            if db.data:
                writer.write_db_dicts(db.id, db.data, db.expires)
        writer.finish()
    finally:
        writer.close()
    return writer.bytes_written


def fsync_directory(directory: str) -> None:
    """Make a rename in `directory` durable."""
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_rdb_path(path: str, pid: int | None = None) -> str:
    """Where a save by process `pid` writes before renaming (Redis's name)."""
    directory = os.path.dirname(os.path.abspath(path))
    return os.path.join(directory, "temp-%d.rdb" % (pid or os.getpid()))


def save_rdb_file(server, path: str, extra_aux=None, *, aof_base: bool = False) -> int:
    """Atomically replace `path` by a snapshot; returns its size.

    The data goes to temp-<pid>.rdb in the same directory, is fsynced, then
    renamed over `path`, and the directory is fsynced; on any error the
    temporary file is removed and the old dump is left as it was."""
    tmp = temp_rdb_path(path)
    try:
        with open(tmp, "wb") as f, gc_paused():
            size = write_rdb(server, f, extra_aux, aof_base=aof_base)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_directory(os.path.dirname(os.path.abspath(path)))
    return size


# ---------------------------------------------------------------- loading


class LoadError(Exception):
    """A dump that cannot be applied (bad file, or it does not fit this node)."""


class KeyspaceLoader:
    """Applies a dump to a server's keyspace.

    Either ask it for a parser (``loader.parser()``: rdb.py's fast path, keys
    go straight into the databases' dicts) and pass it the events that parser
    returns, or feed it rdb.py events that include Key events. Values bypass
    the per-key hooks: the keyspace is empty or was just flushed when a dump
    is loaded. Expiry heaps are rebuilt once, in finish()."""

    def __init__(self, server, keep_expired: bool | None = None):
        self.server = server
        if keep_expired is None:
            keep_expired = is_replica(server)
        self.keep_expired = keep_expired
        self.aux: dict[str, bytes] = {}
        self.functions: list[bytes] = []
        self.now = int(time.time() * 1000)
        self._keys_loaded = 0
        self._keys_expired = 0
        self._parsers: list = []
        self._touched: set = set()
        self._dbid = -1
        self._db = None

    def parser(self, **options) -> "rdb.RdbParser":
        """An RdbParser storing keys straight into this server's databases."""
        p = rdb.RdbParser(into=self._into,
                          skip_expired_before=None if self.keep_expired else self.now,
                          **options)
        self._parsers.append(p)
        return p

    @property
    def keys_loaded(self) -> int:
        return self._keys_loaded + sum(p.keys_loaded for p in self._parsers)

    @property
    def keys_expired(self) -> int:
        return self._keys_expired + sum(p.keys_expired for p in self._parsers)

    def _database(self, dbid: int):
        dbs = self.server.keyspace.dbs
        if dbid >= len(dbs):
            raise LoadError("FATAL: Data file was created with a Redis server configured to "
                            "handle more than %d databases. Exiting" % len(dbs))
        db = dbs[dbid]
        self._touched.add(db)
        return db

    def _into(self, dbid: int):
        db = self._database(dbid)
        return db.data, db.expires

    def apply(self, events) -> None:
        """Handle parsed events: AUX fields, function libraries, and keys (if
        the parser was not made by parser())."""
        Key = rdb.Key
        dbid = self._dbid
        db = self._db
        keep = self.keep_expired
        now = self.now
        loaded = expired = 0
        try:
            for event in events:
                cls = event.__class__
                if cls is Key:
                    d, key, value, when = event
                    if d != dbid:
                        dbid, db = d, self._database(d)
                    if when is not None:
                        if not keep and when < now:
                            expired += 1
                            continue
                        db.expires[key] = when
                    elif db.expires and key in db.expires:
                        del db.expires[key]  # a duplicate key replaces the earlier one
                    db.data[key] = value
                    loaded += 1
                elif cls is rdb.Aux:
                    self.aux[event.name.decode("utf-8", "replace")] = event.value
                elif cls is rdb.Function:
                    self.functions.append(event.code)
                # ResizeDb is only a hint; ModuleAux data is skipped by the parser.
        finally:
            self._dbid, self._db = dbid, db
            self._keys_loaded += loaded
            self._keys_expired += expired

    def finish(self) -> dict:
        """Rebuild the expiry heaps, hand over function libraries; the AUX fields."""
        for db in self._touched:
            if db.expires:
                db.heap = [(when, key) for key, when in db.expires.items()]
                heapq.heapify(db.heap)
        self._touched = set()
        if self.functions:
            restore = getattr(self.server, "load_function_codes", None)
            if restore is not None:
                restore(self.functions)
            else:
                self.server.log("warning", "Skipping %d function libraries from the RDB: "
                                "functions are not available" % len(self.functions))
        return self.aux


def is_replica(server) -> bool:
    return bool(server.keyspace.replica_mode or server.settings["replicaof"])


def load_rdb(server, fileobj, *, keep_expired: bool | None = None) -> dict:
    """Apply the dump read from a binary file object; returns its AUX fields.

    Raises rdb.RdbError for a malformed file and LoadError for one that does
    not fit this node (more databases than configured)."""
    loader = KeyspaceLoader(server, keep_expired)
    parser = loader.parser()
    with gc_paused(freeze=True):
        read = fileobj.read
        while not parser.done:
            chunk = read(max(1 << 20, parser.bytes_needed))
            if not chunk:
                break
            loader.apply(parser.feed(chunk))
        loader.apply(parser.close())
        return loader.finish()


# ---------------------------------------------------------------- forking


CHILD_NICENESS = 10


class ChildBusy(RuntimeError):
    """Another child (BGSAVE, AOF rewrite, full sync) is running."""


class ChildProcess:
    __slots__ = ("pid", "kind", "started", "on_done", "killed", "pidfd", "cleanup", "exitcode")

    def __init__(self, pid: int, kind: str, on_done):
        self.pid = pid
        self.kind = kind
        self.started = time.time()
        self.on_done = on_done
        self.killed = False
        self.pidfd = -1
        self.cleanup: list[str] = []  # files to remove if the child dies or is killed
        self.exitcode: int | None = None


def _ensure_child_state(server) -> None:
    if getattr(server, "_child_state_ready", False):
        return
    server._child_state_ready = True
    server.child = None
    server.child_kind = None
    server.child_pid = None
    server.stat_latest_fork_usec = 0
    server.stat_total_forks = 0
    server.kill_child = lambda: kill_child(server)
    server.cron_jobs.append(lambda: _poll_child(server))


def fork_child(server, kind: str, target, on_done, keep_fds=()) -> ChildProcess:
    """Fork; the child runs target() and exits, the parent gets on_done(ok).

    `kind` names the child for INFO and for the one-child rule ("rdb" for
    BGSAVE and replication snapshots, "aof" for rewrites). `keep_fds` are
    sockets the child needs (a diskless sync's replica links); the other
    client and listening sockets are closed in the child, so connections the
    parent closes really close. Raises ChildBusy or OSError (fork failed)."""
    _ensure_child_state(server)
    if server.child is not None:
        raise ChildBusy("child %d (%s) is active" % (server.child_pid, server.child_kind))
    start = time.perf_counter()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # ------------------------------------------------ child
        code = 1
        try:
            _prepare_child(server, set(keep_fds), parent)
            target()
            code = 0
        except BaseException:
            try:
                server.log("warning", "Child process failed: %s"
                           % traceback.format_exc().strip().replace("\n", " | "))
            except BaseException:
                pass
        finally:
            os._exit(code)
    # ---------------------------------------------------------------- parent
    server.stat_latest_fork_usec = int((time.perf_counter() - start) * 1e6)
    server.latency_monitor.add("fork", server.stat_latest_fork_usec / 1000)
    server.stat_total_forks += 1
    child = ChildProcess(pid, kind, on_done)
    server.child = child
    server.child_kind = kind
    server.child_pid = pid
    _watch_child(server, child)
    return child


def _die_with_parent(parent: int) -> None:
    """A child outliving a killed node would hold its files and sockets: ask
    the kernel to SIGKILL it when the parent goes (Linux prctl)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _prepare_child(server, keep_fds: set, parent: int) -> None:
    _die_with_parent(parent)
    # Signals: the parent's asyncio handlers must not run here; SIGUSR1 (our
    # kill) and SIGTERM terminate.
    try:
        signal.set_wakeup_fd(-1)
    except (ValueError, OSError):
        pass
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_DFL)
    gc.disable()  # a collection would touch every object: copy-on-write for nothing
    try:
        # The parent serves clients: on a busy machine it keeps the CPU first.
        os.nice(CHILD_NICENESS)
    except OSError:
        pass
    server.role_char = "C"
    fds = []
    for srv in server.servers:
        for sock in srv.sockets or ():
            fds.append(sock.fileno())
    for client in list(server.clients.values()):
        transport = client.transport
        if transport is None:
            continue
        sock = transport.get_extra_info("socket")
        if sock is not None:
            fds.append(sock.fileno())
    for fd in fds:
        if fd >= 0 and fd not in keep_fds:
            try:
                os.close(fd)
            except OSError:
                pass


def _watch_child(server, child: ChildProcess) -> None:
    """Reap as soon as the child exits: a pidfd readable on the event loop."""
    loop = server.loop
    if loop is None or not hasattr(os, "pidfd_open"):
        return
    try:
        child.pidfd = os.pidfd_open(child.pid)
    except OSError:
        return  # the cron poll will reap it
    try:
        loop.add_reader(child.pidfd, _poll_child, server)
    except (NotImplementedError, RuntimeError, ValueError, OSError):
        os.close(child.pidfd)
        child.pidfd = -1


def _forget_child(server, child: ChildProcess) -> None:
    if child.pidfd >= 0:
        try:
            server.loop.remove_reader(child.pidfd)
        except Exception:
            pass
        os.close(child.pidfd)
        child.pidfd = -1
    server.child = None
    server.child_kind = None
    server.child_pid = None


def _poll_child(server) -> None:
    child = getattr(server, "child", None)
    if child is None:
        return
    try:
        pid, status = os.waitpid(child.pid, os.WNOHANG)
    except ChildProcessError:
        pid, status = child.pid, 1 << 8  # reaped elsewhere: treat as failed
    if pid == 0:
        return
    _finish_child(server, child, status)


def _finish_child(server, child: ChildProcess, status: int) -> None:
    code = os.waitstatus_to_exitcode(status)
    child.exitcode = code
    _forget_child(server, child)
    ok = code == 0 and not child.killed
    if not ok:
        for path in child.cleanup:
            try:
                os.unlink(path)
            except OSError:
                pass
    try:
        child.on_done(ok)
    except Exception as exc:  # the parent must survive a bug in a callback
        server.log("warning", "Error handling the end of child %d: %r" % (child.pid, exc))


def kill_child(server) -> bool:
    """Stop the running child (if any) and wait for it; on_done(False) runs."""
    child = getattr(server, "child", None)
    if child is None:
        return False
    child.killed = True
    try:
        os.kill(child.pid, signal.SIGUSR1)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 2.0
    while True:
        try:
            pid, status = os.waitpid(child.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = child.pid, 1 << 8
        if pid:
            break
        if time.monotonic() > deadline:
            os.kill(child.pid, signal.SIGKILL)
            pid, status = os.waitpid(child.pid, 0)
            break
        time.sleep(0.001)
    _finish_child(server, child, status)
    return True


def ensure_child_state(server) -> None:
    """Give the server its child attributes (child_kind, child_pid, kill_child)."""
    _ensure_child_state(server)


if sys.platform == "win32":  # pragma: no cover - fork is the whole point
    raise ImportError("hakv snapshots need fork()")
