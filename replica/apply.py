"""Applying runs of plain data commands from the primary's stream at once.

The link to our primary (replica/link.py) is a trusted client, as Redis's
master client: no gate (ACL, write checks, stale data, READONLY), no replies.
What a command still needs is what dispatch.call() does after the gate:
memory accounting, INFO commandstats / latencystats, slowlog, latency
monitor, propagation (our AOF), blocked clients served. For a run of plain
commands (Command.plain: they cannot start a MULTI, a MONITOR or a script,
nor block or change the link) this does that work with what depends only on
the command looked up once per run of equal commands, the way
dispatch.run_plain does for a client's pipeline.

Everything else (MULTI/EXEC blocks, REPLCONF GETACK, PING ...) and any
moment the fast way cannot account for (a MONITOR is watching: it must see
each command) goes through dispatch.call() one by one, in link.py.
"""

from __future__ import annotations

import time

from hakv.common import dispatch
from hakv.common.resp import ErrorReply

_perf_counter_ns = time.perf_counter_ns

# How many command names, as the primary spells them, the link remembers.
_NAMES_PER_LINK = 64


def apply_plain(link, commands: list, i: int, end: int) -> int:
    """Apply commands[i:end] while they are plain commands of the right
    arity; returns the index of the first one not applied (i if none was).
    The caller holds keyspace.applying_primary_stream."""
    server = link.server
    if server.monitors or link.multi is not None or link.in_exec or link.in_script:
        return i
    names = link.command_names
    table = server.table.commands
    ks = server.keyspace
    tracker = server.memory_tracker
    latency = server.latency
    slow_ns, event_ns, quick = dispatch.batch_thresholds(server)
    perf_counter_ns = _perf_counter_ns
    current = buckets = None  # the command of the current run, its latency histogram
    calls = usec_total = quick_calls = 0
    try:
        while i < end:
            argv = commands[i]
            name = argv[0]
            cmd = names.get(name)  # only plain commands are remembered
            if cmd is None:
                cmd = table.get(name) or table.get(name.lower())
                if cmd is None or not cmd.plain:
                    return i
                if len(names) < _NAMES_PER_LINK:
                    names[name] = cmd
            if cmd is not current:
                if current is not None:
                    dispatch._add_stats(server, current, buckets, calls, usec_total,
                                        quick_calls)
                    calls = usec_total = quick_calls = 0
                current = cmd
                link.last_cmd = cmd.name  # CLIENT LIST shows the running command
                handler = cmd.handler
                arity = cmd.arity
                measure = tracker is not None and cmd.is_write
                reads = cmd.reads
                buckets = latency.get(cmd)
                if buckets is None:
                    buckets = latency[cmd] = {}
            if len(argv) != arity if arity > 0 else len(argv) < -arity:
                return i  # call()'s way logs the error
            dirty_before = server.dirty
            link.custom_propagation = False
            ks.track_reads = reads
            measured = tracker.before(link, cmd, argv) if measure else None
            start = perf_counter_ns()
            try:
                reply = handler(link, argv)
            except ErrorReply as exc:
                reply = exc
            except Exception as exc:  # a bug in a command must not stop replication
                reply = dispatch._handler_bug(server, cmd, exc)
            nanos = perf_counter_ns() - start
            if measured is not None:
                tracker.after(link, measured)
            if reads:
                ks.track_reads = False
            calls += 1
            if nanos < quick:
                quick_calls += 1
            else:
                usec = nanos // 1000
                usec_total += usec
                bucket = usec.bit_length()
                buckets[bucket] = buckets.get(bucket, 0) + 1
                if nanos > slow_ns:
                    server.slowlog_add(link, argv, nanos / 1e9)
                if nanos >= event_ns:
                    server.latency_monitor.command_event(cmd, nanos)
            if server.dirty != dirty_before and not link.custom_propagation \
                    and server.propagating:
                ks.propagate(link.dbid, argv)
            if server.pending_propagation:
                server.flush_propagation()
            if ks.ready_keys:
                server.handle_ready_keys()
            if reply.__class__ is ErrorReply:
                cmd.failed_calls += 1
                server.count_error(reply)
                link.log_error(argv, reply)
            i += 1
        return i
    finally:
        if current is not None:
            dispatch._add_stats(server, current, buckets, calls, usec_total, quick_calls)
