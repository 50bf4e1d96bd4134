"""Persistence, the node component: RDB snapshots and the AOF.

- At start (after the listeners are up, so clients get -LOADING): load the
  AOF if appendonly is yes and an AOF exists, else the RDB file. A corrupt or
  truncated file stops the node with a clear message and is left untouched.
- SAVE / BGSAVE (a forked child, see snapshot.fork_child), save points
  (`save 3600 1 300 100 60 10000`) checked from the cron, LASTSAVE.
- SHUTDOWN / SIGTERM (server.shutdown_hooks): stop the child, fsync the AOF,
  save when asked or when save points are configured.
- stop-writes-on-bgsave-error and AOF write errors: MISCONF (server.write_checks).
- INFO persistence, with Redis's field names.

`server.persistence` is the Persistence object; other modules may call:
  bgsave(on_done=None) -> ErrorReply | str   (on_done(ok) after the child ends)
  save() -> bool                             (synchronous, in this process)
  rdb_path() -> str
  loaded_aux: dict[str, bytes]               (AUX fields of the RDB loaded at start:
                                              repl-id, repl-offset ...)
  dataset_replaced()                         (after a replica's full sync: the AOF
                                              is rebuilt from the new dataset)
"""

from __future__ import annotations

import asyncio
import os
import time

from hakv.common import errors, rdb, snapshot
from hakv.common.aof import AofError, AppendOnlyFile
from hakv.common.resp import ErrorReply

BGSAVE_RETRY_DELAY = 5  # seconds before a save point retries after a failed BGSAVE
LOAD_SLICE = 0.02  # seconds of loading between two turns of the event loop


class Persistence:
    def __init__(self, server):
        self.server = server
        self.settings = server.settings
        server.persistence = self
        snapshot.ensure_child_state(server)
        self.aof = AppendOnlyFile(server)
        self.lastsave = int(time.time())
        self.dirty_at_last_save = 0
        self.dirty_before_bgsave = 0
        self.last_bgsave_status = "ok"
        self.last_bgsave_try = 0.0
        self.last_bgsave_time_sec = -1
        self.bgsave_child = None
        self.bgsave_started = 0.0
        self.bgsave_scheduled = False
        self.bgsave_callbacks: list = []
        self.rdb_saves = 0
        self.loaded_aux: dict[str, bytes] = {}
        self.keys_loaded = 0
        self.keys_expired = 0
        self.loading_start = 0.0
        self.loading_source = ""
        self.loading_total_bytes = 0
        self.loading_loaded_bytes = 0
        server.cron_jobs.append(self.cron)
        server.shutdown_hooks.append(self.on_shutdown)
        server.write_checks.append(self.write_check)
        # With AOF on, a write error may come in the middle of a batch.
        server.write_check_armed[self.write_check] = lambda: (
            self.last_bgsave_status != "ok" or self.aof.state != "off")
        server.info_sections["persistence"] = self.info
        server.settings.listeners.append(self.on_config_set)

    # ------------------------------------------------------------ startup

    async def started(self) -> None:
        """Load the dataset, serving -LOADING meanwhile; exit on a bad file."""
        server = self.server
        server.loading = True
        self.loading_start = time.time()
        saved_propagating = server.propagating
        server.propagating = False  # a load is not new writes: feed no sink
        try:
            with snapshot.gc_paused(freeze=True):
                loaded_aof = await self._load_dataset()
        except (AofError, rdb.RdbError, snapshot.LoadError, OSError) as exc:
            what = self.loading_source
            server.log("warning", "Fatal error loading the DB (%s): %s. Exiting." % (what, exc))
            raise SystemExit(1)
        finally:
            server.loading = False
            server.propagating = saved_propagating
            server.set_propagating()
        self.dirty_at_last_save = server.dirty
        self.aof.start_after_load(loaded_aof)

    async def _load_dataset(self) -> bool:
        """The AOF if appendonly is yes and one exists, else the RDB file;
        True if the AOF was loaded."""
        if self.settings["appendonly"] and self.aof.exists():
            self.loading_source = "append only file"
            start = time.perf_counter()
            for _ in self.aof.load_steps(LOAD_SLICE):
                await asyncio.sleep(0)
            self.server.log("notice", "DB loaded from append only file: %.3f seconds"
                            % (time.perf_counter() - start))
            return True
        if os.path.exists(self.rdb_path()):
            self.loading_source = self.rdb_path()
            await self._load_rdb_file(self.rdb_path())
        return False

    async def _load_rdb_file(self, path: str) -> None:
        server = self.server
        start = time.perf_counter()
        start_cpu = time.process_time()
        self.loading_total_bytes = os.path.getsize(path)
        self.loading_loaded_bytes = 0
        start_children_cpu = _children_cpu()
        loader = snapshot.KeyspaceLoader(server)
        ahead = None
        try:
            with open(path, "rb") as f:
                # A big file's compact values are decoded, and its checksum
                # computed, by a helper process meanwhile.
                ahead = rdb.start_prefetch(f, checksum=True)
                parser = loader.parser(verify_checksum=ahead is None, prefetch=ahead)
                deadline = time.perf_counter() + LOAD_SLICE
                while not parser.done:
                    chunk = f.read(max(1 << 20, parser.bytes_needed))
                    if not chunk:
                        break
                    self.loading_loaded_bytes += len(chunk)
                    loader.apply(parser.feed(chunk))
                    if time.perf_counter() > deadline:
                        await asyncio.sleep(0)
                        deadline = time.perf_counter() + LOAD_SLICE
                loader.apply(parser.close())
                if ahead is not None:
                    rdb.verify_file_checksum(parser, f, ahead)
        finally:
            if ahead is not None:
                ahead.close()
        self.loaded_aux = loader.finish()
        self.keys_loaded = loader.keys_loaded
        self.keys_expired = loader.keys_expired
        aux = self.loaded_aux
        if "redis-ver" in aux:
            server.log("notice", "Loading RDB produced by version %s"
                       % aux["redis-ver"].decode("utf-8", "replace"))
        server.log("notice", "Done loading RDB, keys loaded: %d, keys expired: %d."
                   % (loader.keys_loaded, loader.keys_expired))
        server.log("notice", "DB loaded from disk: %.3f seconds" % (time.perf_counter() - start))
        # (Not a Redis line: the CPU time, which a busy machine hardly moves;
        # the helpers' included, and apart.)
        helpers_cpu = _children_cpu() - start_children_cpu
        server.log("notice", "DB load CPU time: %.3f seconds (%.3f in helper processes)"
                   % (time.process_time() - start_cpu + helpers_cpu, helpers_cpu))

    # ------------------------------------------------------------ RDB saves

    def rdb_path(self) -> str:
        return self.settings["dbfilename"]

    def changes_since_save(self) -> int:
        return max(0, self.server.dirty - self.dirty_at_last_save)

    def save(self) -> bool:
        """SAVE: write the dump in this process. True on success."""
        server = self.server
        dirty = server.dirty
        try:
            snapshot.save_rdb_file(server, self.rdb_path())
        except Exception as exc:
            # (As Redis: a failed SAVE leaves rdb_last_bgsave_status alone.)
            server.log("warning", "Failed saving the DB: %s" % _reason(exc))
            return False
        server.log("notice", "DB saved on disk")
        self.dirty_at_last_save = dirty
        self.lastsave = int(time.time())
        self.last_bgsave_status = "ok"
        self.rdb_saves += 1
        return True

    def bgsave(self, on_done=None):
        """Start a BGSAVE child: "Background saving started", or an ErrorReply.
        on_done(ok) runs after the child ended (also when it failed)."""
        server = self.server
        if server.child is not None:
            return ErrorReply("ERR Background save already in progress"
                              if server.child_kind == "rdb" else
                              "ERR Another child process is active (AOF?): can't BGSAVE right "
                              "now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever "
                              "possible.")
        path = self.rdb_path()
        self.last_bgsave_try = time.time()
        dirty = server.dirty

        def child_target():
            snapshot.save_rdb_file(server, path)
            server.log("notice", "DB saved on disk")

        try:
            child = snapshot.fork_child(server, "rdb", child_target, self._bgsave_done)
        except OSError as exc:
            self.last_bgsave_status = "err"
            server.log("warning", "Can't save in background: fork: %s" % exc.strerror)
            return ErrorReply("ERR")
        child.cleanup.append(snapshot.temp_rdb_path(path, child.pid))
        self.bgsave_child = child
        self.bgsave_started = time.time()
        self.dirty_before_bgsave = dirty
        self.bgsave_scheduled = False
        if on_done is not None:
            self.bgsave_callbacks.append(on_done)
        server.log("notice", "Background saving started by pid %d" % child.pid)
        return "Background saving started"

    def _bgsave_done(self, ok: bool) -> None:
        server = self.server
        child = self.bgsave_child
        self.bgsave_child = None
        self.last_bgsave_time_sec = int(time.time() - self.bgsave_started)
        if ok:
            server.log("notice", "Background saving terminated with success")
            self.dirty_at_last_save = self.dirty_before_bgsave
            self.lastsave = int(time.time())
            self.last_bgsave_status = "ok"
            self.rdb_saves += 1
        elif child is not None and child.killed:
            server.log("warning", "Background saving terminated by signal %d"
                       % (-(child.exitcode or 0)))
        else:
            server.log("warning", "Background saving error")
            self.last_bgsave_status = "err"
        callbacks, self.bgsave_callbacks = self.bgsave_callbacks, []
        for cb in callbacks:
            cb(ok)

    # ------------------------------------------------------------ AOF

    def bgrewriteaof(self):
        server = self.server
        aof = self.aof
        if server.child_kind == "aof":
            return ErrorReply("ERR Background append only file rewriting already in progress")
        if server.child is not None:
            aof.rewrite_scheduled = True
            return "Background append only file rewriting scheduled"
        if aof.start_rewrite() is None:
            return "Background append only file rewriting started"
        return ErrorReply("ERR Can't execute an AOF background rewriting. Please check the "
                          "server logs for more information.")

    def dataset_replaced(self) -> None:
        """The keyspace was replaced wholesale (a replica's full sync): the AOF
        must be rebuilt from it, as Redis restarts the AOF after a sync."""
        aof = self.aof
        if aof.state == "off":
            return
        aof.disable()
        aof.enable()

    # ------------------------------------------------------------ cron

    def cron(self) -> None:
        server = self.server
        self.aof.cron()
        if server.loading or server.child is not None:
            return
        if self.bgsave_scheduled:
            self.bgsave()
            return
        points = self.settings["save"]
        if not points:
            return
        now = time.time()
        changes = self.changes_since_save()
        for seconds, needed in points:
            if (changes >= needed and now - self.lastsave > seconds
                    and (now - self.last_bgsave_try > BGSAVE_RETRY_DELAY
                         or self.last_bgsave_status == "ok")):
                server.log("notice", "%d changes in %d seconds. Saving..." % (needed, seconds))
                self.bgsave()
                break

    # ------------------------------------------------------------ shutdown

    def on_shutdown(self, save):
        server = self.server
        if server.child_kind == "rdb":
            server.log("warning", "There is a child saving an .rdb. Killing it!")
            server.kill_child()
        try:
            self.aof.shutdown()
        except OSError as exc:
            server.log("warning", "Error writing the AOF before exiting: %s" % exc.strerror)
            return ErrorReply("ERR Errors trying to SHUTDOWN. Check logs.")
        if save is False:
            return None
        if not (save or self.settings["save"]):
            return None
        if server.loading:
            server.log("warning", "Not saving the DB: the dataset is still loading.")
            return None
        server.log("notice", "Saving the final RDB snapshot before exiting.")
        if not self.save():
            server.log("warning", "Error trying to save the DB, can't exit.")
            return ErrorReply("ERR Errors trying to SHUTDOWN. Check logs.")
        return None

    # ------------------------------------------------------------ gate

    def write_check(self, client, cmd):
        if client.is_primary:
            return None
        if (self.last_bgsave_status == "err" and self.settings["stop-writes-on-bgsave-error"]
                and self.settings["save"]):
            return ErrorReply(errors.MISCONF)
        if self.aof.state != "off" and self.aof.last_write_status != "ok":
            return ErrorReply("MISCONF Errors writing to the AOF file: %s"
                              % self.aof.last_write_error)
        return None

    # ------------------------------------------------------------ config

    def on_config_set(self, name: str, value) -> None:
        if name == "appendonly":
            if value:
                self.aof.enable()
            else:
                self.aof.disable()
        elif name == "appendfsync" and value == "always":
            self.aof.flush(fsync=True)
        elif name == "dir":
            try:
                os.chdir(value)
            except OSError as exc:
                self.server.log("warning", "Can't chdir to '%s': %s" % (value, exc.strerror))

    # ------------------------------------------------------------ INFO

    def info(self) -> list:
        server = self.server
        now = time.time()
        loading = server.loading
        fields = [
            ("loading", "1" if loading else "0"),
            ("async_loading", "0"),
        ]
        if loading:
            total = self.loading_total_bytes
            done = self.loading_loaded_bytes
            elapsed = now - self.loading_start
            perc = 100.0 * done / total if total else 0.0
            eta = int(elapsed * (total - done) / done) if done else 1
            fields += [
                ("loading_start_time", str(int(self.loading_start))),
                ("loading_total_bytes", str(total)),
                ("loading_rdb_used_mem", "0"),
                ("loading_loaded_bytes", str(done)),
                ("loading_loaded_perc", "%.2f" % perc),
                ("loading_eta_seconds", str(eta)),
            ]
        # An RDB child is a BGSAVE or a replication snapshot: both count, as in Redis.
        rdb_child = server.child if server.child_kind == "rdb" else None
        fields += [
            ("current_cow_peak", "0"),
            ("current_cow_size", "0"),
            ("current_cow_size_age", "0"),
            ("current_fork_perc", "0.00"),
            ("current_save_keys_processed", "0"),
            ("current_save_keys_total", "0"),
            ("rdb_changes_since_last_save", str(self.changes_since_save())),
            ("rdb_bgsave_in_progress", "1" if rdb_child is not None else "0"),
            ("rdb_last_save_time", str(self.lastsave)),
            ("rdb_last_bgsave_status", self.last_bgsave_status),
            ("rdb_last_bgsave_time_sec", str(self.last_bgsave_time_sec)),
            ("rdb_current_bgsave_time_sec",
             str(int(now - rdb_child.started)) if rdb_child is not None else "-1"),
            ("rdb_saves", str(self.rdb_saves)),
            ("rdb_last_cow_size", "0"),
            ("rdb_last_load_keys_expired", str(self.keys_expired)),
            ("rdb_last_load_keys_loaded", str(self.keys_loaded)),
        ]
        fields += self.aof.info_fields()
        return fields


def _children_cpu() -> float:
    """CPU seconds of this process's reaped children (the load's helpers)."""
    times = os.times()
    return times.children_user + times.children_system


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or exc.__class__.__name__


def attach(server) -> Persistence:
    return Persistence(server)
