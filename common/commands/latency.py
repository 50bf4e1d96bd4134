"""LATENCY: the latency monitor's events (common/latency.py) and the
per-command latency histograms kept for INFO latencystats."""

from __future__ import annotations

from hakv.common.commands.table import command, container
from hakv.common.resp import ErrorReply, Verbatim

G = "server"
_FLAGS = "admin noscript loading stale"

container("latency", -2, group=G, since="2.8.13")  # flags: only its subcommands


def _event(argv, i: int) -> str:
    return argv[i].decode("utf-8", "surrogateescape")


@command("latency|latest", 2, _FLAGS, group=G, since="2.8.13")
def latency_latest(ctx, argv):
    return ctx.server.latency_monitor.latest()


@command("latency|history", 3, _FLAGS, group=G, since="2.8.13")
def latency_history(ctx, argv):
    return ctx.server.latency_monitor.history(_event(argv, 2))


@command("latency|reset", -2, _FLAGS, group=G, since="2.8.13")
def latency_reset(ctx, argv):
    monitor = ctx.server.latency_monitor
    if len(argv) == 2:
        return monitor.reset()
    return monitor.reset([_event(argv, i) for i in range(2, len(argv))])


@command("latency|graph", 3, _FLAGS, group=G, since="2.8.13")
def latency_graph(ctx, argv):
    event = _event(argv, 2)
    graph = ctx.server.latency_monitor.graph(event)
    if graph is None:
        raise ErrorReply("ERR No samples available for event '%s'" % event)
    return Verbatim(graph.encode("utf-8", "surrogateescape"))


@command("latency|doctor", 2, _FLAGS, group=G, since="2.8.13")
def latency_doctor(ctx, argv):
    return Verbatim(ctx.server.latency_monitor.doctor().encode())


@command("latency|histogram", -2, _FLAGS, group=G, since="7.0.0")
def latency_histogram(ctx, argv):
    """Per command: its calls and a cumulative histogram keyed by each
    non-empty bucket's upper bound in microseconds (hakv's buckets are
    powers of two: bucket k holds calls shorter than 2**k us)."""
    server = ctx.server
    if len(argv) == 2:
        wanted = [cmd for cmd in server.table.all() if server.latency.get(cmd)]
    else:
        wanted = []
        for name in argv[2:]:
            for cmd in _find_commands(server, name):
                if server.latency.get(cmd) and cmd not in wanted:
                    wanted.append(cmd)
    out = {}
    for cmd in wanted:
        buckets = server.latency[cmd]
        cumulative, histogram = 0, {}
        for k in sorted(buckets):
            cumulative += buckets[k]
            histogram[1 << k] = cumulative
        out[cmd.fullname.encode()] = {b"calls": cumulative, b"histogram_usec": histogram}
    return out


def _find_commands(server, name: bytes) -> list:
    """The command a name means ('container|sub' for a subcommand), and a
    container's subcommands, as Redis lists them for a container's name."""
    base, _, sub = name.lower().partition(b"|")
    cmd = server.table.commands.get(base)
    if cmd is None:
        return []
    if sub:
        found = cmd.subcommands.get(sub)
        return [] if found is None else [found]
    return [cmd, *cmd.subcommands.values()]


_HELP = [
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram "
    "for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
]


@command("latency|help", 2, "loading stale", group=G, since="2.8.13")
def latency_help(ctx, argv):
    return _HELP
