"""The gate: may this command run now, and then run it.

Checks, in Redis's order (processCommand):
  1. known command, 2. arity, 3. authenticated, 4. ACL permission,
  4b. no_multi commands inside MULTI,
  5. maxmemory (OOM) for denyoom commands, 6. MISCONF after a failed save,
  7. min-replicas-to-write (NOREPLICAS), 8. read-only replica (READONLY),
  9. subscribe context (RESP2), 10. stale replica (MASTERDOWN),
  11. LOADING, 12. BUSY script, 13. MULTI queueing; then the call itself,
  MONITOR feeding, statistics, and propagation of what the command changed.
Errors found while queueing in MULTI make EXEC fail with EXECABORT.
"""

from __future__ import annotations

import time
import traceback

from hakv.common import errors
from hakv.common.resp import BULK_HEADERS, CRLF, ErrorReply, encode

NO_REPLY = object()  # the handler already replied, or replies later
_OK = b"+OK\r\n"
_perf_counter_ns = time.perf_counter_ns
_BULK_HEADER_COUNT = len(BULK_HEADERS)

# How many typed command names a client remembers (dispatch.execute).
_NAMES_PER_CLIENT = 64

# Commands that run immediately inside MULTI instead of being queued.
_MULTI_IMMEDIATE = frozenset((b"exec", b"discard", b"multi", b"watch", b"quit", b"reset"))


def lookup(server, argv: list):
    """The Command for argv (descending into subcommands), or an error reply."""
    table = server.table.commands
    name = argv[0]
    cmd = table.get(name)
    if cmd is None:
        cmd = table.get(name.lower())
        if cmd is None:
            return errors.unknown_command(argv)
    if cmd.subcommands and (len(argv) >= 2 or cmd.handler is None):
        if len(argv) < 2:
            err = errors.wrong_args(cmd.name)
            err.command = cmd
            return err
        sub = cmd.subcommands.get(argv[1].lower())
        if sub is None or cmd.name == "debug" and (
                (sub.arity > 0 and len(argv) != sub.arity) or len(argv) < -sub.arity):
            if cmd.name == "debug":  # not a container in Redis: its own parser's error
                return ErrorReply("ERR unknown subcommand or wrong number of arguments for "
                                  "'%s'. Try DEBUG HELP." % argv[1].decode("utf-8", "replace"))
            return errors.unknown_subcommand(argv)
        cmd = sub
        if (sub.arity > 0 and len(argv) != sub.arity) or len(argv) < -sub.arity:
            err = errors.wrong_sub_args(cmd.parent.name, cmd.name)
            err.command = cmd
            return err
        return cmd
    arity = cmd.arity
    if (arity > 0 and len(argv) != arity) or len(argv) < -arity:
        err = errors.wrong_args(cmd.name)
        err.command = cmd
        return err
    return cmd


def find_command(server, argv: list):
    """lookup() with its common case first (a top-level command, its arity
    right): the per-request path of clients, scripts and the replica link."""
    commands = server.table.commands
    cmd = commands.get(argv[0])
    if cmd is None:
        cmd = commands.get(argv[0].lower())
    if (cmd is None or cmd.subcommands
            or (cmd.arity != len(argv) if cmd.arity > 0 else len(argv) < -cmd.arity)):
        return lookup(server, argv)
    return cmd


def execute(client, argv: list):
    """Run one command from a client; returns the reply (or NO_REPLY)."""
    server = client.server
    # find_command, inlined: this runs per request. Names as the client
    # types them (clients mostly send "GET", the table has b"get") are
    # remembered per client: the table does not change once the server runs.
    cmd = client.command_names.get(argv[0])
    if cmd is None:
        commands = server.table.commands
        cmd = commands.get(argv[0])
        if cmd is None:
            cmd = commands.get(argv[0].lower())
        if cmd is not None and len(client.command_names) < _NAMES_PER_CLIENT:
            client.command_names[argv[0]] = cmd
    if (cmd is None or cmd.subcommands
            or (cmd.arity != len(argv) if cmd.arity > 0 else len(argv) < -cmd.arity)):
        cmd = lookup(server, argv)
    if cmd.__class__ is ErrorReply:
        if client.multi is not None:
            client.multi_error = True
        server.stat_rejected_calls += 1
        found = getattr(cmd, "command", None)
        if found is not None:  # known command, wrong arity
            found.rejected_calls += 1
            if found.name == "exec" and found.parent is None:
                cmd = _exec_abort(client, cmd)
        server.count_error(cmd)
        return cmd
    if (client.multi is None and client.authenticated and not server.loading
            and server.busy_script is None and server.stale_gate is None
            and (client.resp3 or not (client.channels or client.patterns or client.shard_channels))):
        # Nothing unusual about the client or the server: of the gate's checks
        # only ACL and the write checks can refuse (same order as gate()).
        acl = server.acl
        # An unrestricted user (the default one) passes the ACL check; no_auth
        # commands still go through it (it notes their name for the ACL log).
        reject = (acl.check(client, cmd, argv) if acl is not None and (
            cmd.no_auth or client.user not in acl.unrestricted) else None)
        if reject is None and (cmd.is_write or cmd.denyoom):
            for check in server.write_checks:  # server.write_gate, inlined
                reject = check(client, cmd)
                if reject is not None:
                    break
        if reject is None:
            if server.paused_until and server.client_paused(client, cmd):
                client.paused_argv = argv
                server.paused_clients.append(client)
                return NO_REPLY
            return call(client, cmd, argv)
    else:
        reject = gate(server, client, cmd, argv)
    if reject is not None:
        if client.multi is not None and cmd.name.encode() not in _MULTI_IMMEDIATE:
            client.multi_error = True
        cmd.rejected_calls += 1
        if cmd.name == "exec" and cmd.parent is None:
            reject = _exec_abort(client, reject)
        server.count_error(reject)
        return reject
    if client.multi is not None and cmd.parent is None and cmd.name.encode() not in _MULTI_IMMEDIATE:
        client.multi.append((cmd, argv))
        return "QUEUED"
    if client.multi is not None and cmd.parent is not None:
        client.multi.append((cmd, argv))
        return "QUEUED"
    if server.paused_until and server.client_paused(
            client, _QueuedFlags(client.multi) if client.multi and cmd.name == "exec" else cmd):
        # CLIENT PAUSE: hold this command (and what follows) until unpaused.
        client.paused_argv = argv
        server.paused_clients.append(client)
        return NO_REPLY
    return call(client, cmd, argv)


def _exec_abort(client, err):
    """A rejected EXEC (bad arity, NOAUTH, ...) discards the transaction, even
    when there is none, and says why (Redis's execCommandAbort)."""
    client.multi = None
    client.multi_error = False
    client.server.unwatch_all(client)
    reason = err.message[4:] if err.message.startswith("ERR ") else err.message
    return ErrorReply("EXECABORT Transaction discarded because of: " + reason)


def gate(server, client, cmd, argv):
    """None if cmd may run now, else the error reply."""
    if not client.authenticated and not cmd.no_auth:
        return ErrorReply(errors.NOAUTH)
    acl = server.acl
    if acl is not None:
        denied = acl.check(client, cmd, argv)
        if denied is not None:
            return denied
    if cmd.no_multi and client.multi is not None:
        return ErrorReply("ERR Command not allowed inside a transaction")
    if cmd.is_write or cmd.denyoom:
        denied = server.write_gate(client, cmd)
        if denied is not None:
            return denied
    elif client.multi and cmd.name == "exec" and cmd.parent is None:
        # EXEC is a write when what it runs writes: the write checks (READONLY,
        # MISCONF, NOREPLICAS, OOM) reject the whole transaction, as in Redis.
        queued = _QueuedFlags(client.multi)
        if queued.is_write or queued.denyoom:
            denied = server.write_gate(client, queued)
            if denied is not None:
                return denied
    if not client.resp3 and client.subscribed and not cmd.pubsub_context:
        return ErrorReply(
            "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
            "RESET are allowed in this context" % cmd.fullname
        )
    if server.stale_gate and not cmd.allow_stale and not client.is_primary:
        denied = server.stale_gate(client, cmd)
        if denied is not None:
            return denied
    if server.loading and not cmd.allow_loading:
        return ErrorReply(errors.LOADING)
    if server.busy_script is not None and not _allowed_while_busy(cmd, argv):
        return ErrorReply(server.busy_script.busy_error())
    return None


class _QueuedFlags:
    """Stands for EXEC in the write checks: the flags of the queued commands."""

    name = fullname = "exec"
    parent = None
    may_replicate = False

    def __init__(self, queued):
        self.is_write = any(c.is_write for c, _ in queued)
        self.denyoom = any(c.denyoom for c, _ in queued)
        self.flags = frozenset(f for c, _ in queued for f in c.flags)


# Configuration values that MONITOR and the slowlog hide, as Redis does.
_SENSITIVE_CONFIGS = frozenset((b"masterauth", b"masteruser", b"requirepass"))


def _redacted(cmd, argv):
    """argv as MONITOR and SLOWLOG show it: passwords (and ACL SETUSER's
    whole rule list) replaced by "(redacted)", as Redis does."""
    name = cmd.fullname
    if name == "auth":
        return argv[:1] + [b"(redacted)"] * (len(argv) - 1)
    if name == "acl|setuser":
        return argv[:2] + [b"(redacted)"] * (len(argv) - 2)
    if name == "hello":
        argv = list(argv)
        for i in range(2, len(argv) - 2):
            if argv[i].lower() == b"auth":
                argv[i + 1] = argv[i + 2] = b"(redacted)"
                break
    elif name == "config|set":
        argv = list(argv)
        for i in range(2, len(argv) - 1, 2):
            if argv[i].lower() in _SENSITIVE_CONFIGS:
                argv[i + 1] = b"(redacted)"
    return argv


def _allowed_while_busy(cmd, argv) -> bool:
    name = cmd.fullname
    return name in ("auth", "hello", "script|kill", "function|kill", "shutdown", "multi",
                    "discard", "watch", "unwatch", "reset", "replconf") or (
        "allow_busy" in cmd.flags
    )


def call(client, cmd, argv):
    """Execute a command that passed the gate."""
    server = client.server
    dirty_before = server.dirty
    client.custom_propagation = False
    # CLIENT LIST shows the running command.
    client.last_cmd = cmd.name if cmd.parent is None else cmd.fullname
    ks = server.keyspace
    ks.track_reads = cmd.reads  # keyspace_hits / misses count readonly commands only
    # Used-memory accounting (eviction.py) measures the keys a write touches.
    tracker = server.memory_tracker
    measured = tracker.before(client, cmd, argv) if tracker is not None and cmd.is_write else None
    start = _perf_counter_ns()
    try:
        reply = cmd.handler(client, argv)
    except ErrorReply as exc:
        reply = exc
    except Exception as exc:  # a bug in a handler: report it, keep the connection
        reply = _handler_bug(server, cmd, exc)
    nanos = _perf_counter_ns() - start
    if measured is not None:
        tracker.after(client, measured)
    ks.track_reads = False
    if reply.__class__ is ErrorReply:
        cmd.failed_calls += 1
        # A script's error that a command inside it already counted (scripting.py).
        if not getattr(reply, "stats_counted", False):
            server.count_error(reply)
    usec = nanos // 1000
    cmd.calls += 1
    cmd.usec += usec
    server.stat_commands += 1
    buckets = server.latency.get(cmd)
    if buckets is None:
        buckets = server.latency[cmd] = {}
    bucket = usec.bit_length()
    buckets[bucket] = buckets.get(bucket, 0) + 1
    # MONITOR sees a command once it ran (so SELECT shows the new db), with
    # passwords hidden, as Redis does.
    if server.monitors and not cmd.no_monitor and not client.is_replica:
        server.feed_monitors(client, _redacted(cmd, argv))
    if server.dirty != dirty_before and not client.custom_propagation and server.propagating:
        server.keyspace.propagate(client.dbid, argv)
    if not (client.in_exec or client.in_script):
        if server.pending_propagation:
            server.flush_propagation()
        if ks.ready_keys:
            server.handle_ready_keys()
    if nanos > server.slowlog_threshold * 1000 >= 0:
        server.slowlog_add(client, _redacted(cmd, argv), nanos / 1e9)
    if nanos >= server.latency_event_ns:  # huge while the latency monitor is off
        server.latency_monitor.command_event(cmd, nanos)
    return reply


# -- the batch fast path (Client.run): pipelines of plain data commands

def run_plain(client, commands: list, i: int, end: int, out: list) -> int:
    """Run commands[i:end], if the client is plain, while they are plain commands
    (Command.plain) this client has typed before, appending their encoded
    replies to out; returns the index of the first one not run. The same
    work as execute() + call() for such a client and command: ACL and write checks,
    memory accounting, statistics, latency histogram, slowlog, latency
    monitor, propagation, blocked clients served after each command.

    What depends only on the command is looked up once per run of equal
    commands (a pipeline of GETs), and their INFO commandstats counts are
    added when the command changes and at the end: before any other command
    (INFO among them) can read them."""
    server = client.server
    acl = server.acl
    # A plain client: nothing about it or the server needs more of the gate
    # than the ACL and write checks (no MULTI, authenticated, no
    # pause, no MONITOR, no loading / busy script / stale replica, not in
    # RESP2 pub/sub mode, replies on). Plain commands cannot change any of
    # this, so it is checked once for a run of them.
    if not (client.multi is None and client.authenticated and not server.loading
            and server.busy_script is None and server.stale_gate is None
            and not server.paused_until and not server.monitors
            and client.reply_mode == "on" and not (client.in_exec or client.in_script)
            and (client.resp3 or not (client.channels or client.patterns
                                      or client.shard_channels))):
        return i
    # A restricted user's commands go through the ACL check one by one, as in
    # execute() (plain commands are never no_auth: unrestricted users skip it).
    acl_check = acl.check if acl is not None and client.user not in acl.unrestricted else None
    names = client.command_names
    ks = server.keyspace
    tracker = server.memory_tracker
    write_checks = None  # the armed ones, at the first write (_armed_write_checks)
    latency = server.latency
    slow_ns, event_ns, quick = batch_thresholds(server)
    resp3 = client.resp3
    perf_counter_ns = _perf_counter_ns
    append = out.append
    current = None  # the command of the current run
    calls = usec_total = quick_calls = 0
    try:
        while i < end:
            argv = commands[i]
            cmd = names.get(argv[0])
            if cmd is not current:
                if cmd is None or not cmd.plain:
                    return i
                if current is not None:
                    _add_stats(server, current, buckets, calls, usec_total, quick_calls)
                    calls = usec_total = quick_calls = 0
                current = cmd
                client.last_cmd = cmd.name  # CLIENT LIST shows the running command
                handler = cmd.handler
                arity = cmd.arity
                checked = cmd.is_write or cmd.denyoom
                if checked and write_checks is None:
                    # Sorting out the armed ones pays from two commands on.
                    write_checks = (_armed_write_checks(server) if end - i > 1
                                    else server.write_checks)
                # Anything that may refuse this command (most runs: nothing).
                gated = acl_check is not None or (checked and len(write_checks) > 0)
                measure = tracker is not None and cmd.is_write
                reads = cmd.reads
                # keyspace_hits / misses count reads only; set for the whole
                # run (what runs between its commands reads nothing, or
                # turns it off: blocked clients served, the finally).
                ks.track_reads = reads
                buckets = latency.get(cmd)
                if buckets is None:
                    buckets = latency[cmd] = {}
            if len(argv) != arity if arity > 0 else len(argv) < -arity:
                return i
            if gated:
                reject = acl_check(client, cmd, argv) if acl_check is not None else None
                if reject is None and checked:
                    for check in write_checks:
                        reject = check(client, cmd)
                        if reject is not None:
                            break
                if reject is not None:
                    cmd.rejected_calls += 1
                    server.count_error(reject)
                    append(encode(reject, resp3))
                    i += 1
                    continue
            # call(), for a top-level command outside MULTI, scripts and MONITOR.
            # Without an AOF or replicas nothing propagates: no dirty counting.
            propagating = server.propagating
            if propagating:
                dirty_before = server.dirty
                client.custom_propagation = False
            measured = tracker.before(client, cmd, argv) if measure else None
            start = perf_counter_ns()
            try:
                reply = handler(client, argv)
            except ErrorReply as exc:
                reply = exc
            except Exception as exc:
                reply = _handler_bug(server, cmd, exc)
            nanos = perf_counter_ns() - start
            if measured is not None:
                tracker.after(client, measured)
            calls += 1
            if nanos < quick:
                quick_calls += 1
            else:
                usec = nanos // 1000
                usec_total += usec
                bucket = usec.bit_length()
                buckets[bucket] = buckets.get(bucket, 0) + 1
                if nanos > slow_ns:
                    server.slowlog_add(client, argv, nanos / 1e9)
                if nanos >= event_ns:
                    server.latency_monitor.command_event(cmd, nanos)
            if propagating:  # pending_propagation fills only while propagating
                if server.dirty != dirty_before and not client.custom_propagation:
                    ks.propagate(client.dbid, argv)
                if server.pending_propagation:
                    server.flush_propagation()
            if ks.ready_keys:
                ks.track_reads = False  # serving a blocked client is not a read
                server.handle_ready_keys()
                ks.track_reads = reads
            # The reply, encode()'s commonest cases inlined; a bulk string as
            # header, value, CRLF: no formatting, no copy of the value here.
            cls = reply.__class__
            if cls is bytes:
                size = len(reply)
                if size < _BULK_HEADER_COUNT:
                    append(BULK_HEADERS[size])
                    append(reply)
                    append(CRLF)
                else:
                    append(b"$%d\r\n%s\r\n" % (size, reply))
            elif cls is str and reply == "OK":
                append(_OK)
            elif reply is None:
                append(b"_\r\n" if resp3 else b"$-1\r\n")
            elif cls is int:
                append(b":%d\r\n" % reply)
            elif reply is not NO_REPLY:
                if cls is ErrorReply:
                    cmd.failed_calls += 1
                    server.count_error(reply)
                append(encode(reply, resp3))
            i += 1
        return i
    finally:
        ks.track_reads = False
        if current is not None:  # _add_stats(), inlined
            current.calls += calls
            current.usec += usec_total
            server.stat_commands += calls
            if quick_calls:
                buckets[0] = buckets.get(0, 0) + quick_calls


def batch_thresholds(server) -> tuple[int, int, int]:
    """For a batch path (run_plain, replica/apply.py): (slowlog threshold,
    latency-event threshold, quick), in ns. Durations below `quick` need no
    slowlog / latency event and land in latency bucket 0 (under 1 us), so a
    batch just counts them."""
    slow_ns = server.slowlog_threshold * 1000
    if slow_ns < 0:
        slow_ns = 1 << 62  # slowlog off
    event_ns = server.latency_event_ns
    quick = 1000 if slow_ns >= 1000 and event_ns >= 1000 else min(1000, slow_ns + 1, event_ns)
    return slow_ns, event_ns, quick


def _armed_write_checks(server) -> list:
    """The write checks that may refuse now (server.write_check_armed): the
    others return None whatever the write, as long as nothing changes their
    state, and plain commands do not (an AOF write error mid-batch is why an
    AOF keeps the MISCONF check armed)."""
    armed = server.write_check_armed
    return [check for check in server.write_checks
            if (may_refuse := armed.get(check)) is None or may_refuse()]


def _add_stats(server, cmd, buckets: dict, calls: int, usec: int, quick_calls: int) -> None:
    """INFO commandstats / latencystats of a run of run_plain()."""
    cmd.calls += calls
    cmd.usec += usec
    server.stat_commands += calls
    if quick_calls:
        buckets[0] = buckets.get(0, 0) + quick_calls


def _handler_bug(server, cmd, exc) -> ErrorReply:
    """A handler raised something other than an error reply: log it, answer
    with an error, keep the connection."""
    server.log("warning", "Error running %s: %s" % (
        cmd.fullname, "".join(traceback.format_exception(exc)).rstrip()))
    return ErrorReply("ERR internal error running '%s': %s" % (cmd.fullname, exc))
