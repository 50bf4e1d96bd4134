"""The latency monitor (Redis's LATENCY LATEST / HISTORY / GRAPH / DOCTOR).

When `latency-monitor-threshold` is N > 0 ms, any monitored operation that
took at least N ms is recorded as a sample of its event ("command",
"fast-command", "expire-cycle", "eviction-cycle", "fork", "aof-write", ...).
Each event keeps its last 160 samples (unix second, ms) and its all-time
maximum; two samples in the same second are merged into one (the larger),
as Redis does, so a burst of slow calls reads as one spike per second.

Call sites report with `server.latency_monitor.add(event, ms)`; the command
path compares its duration with `server.latency_event_ns` first (one
attribute compare per call: a huge number while the monitor is off).
"""

from __future__ import annotations

import time

HISTORY_LEN = 160  # samples kept per event
GRAPH_COLUMNS = 80  # a graph wider than this is cut into several blocks
GRAPH_ROWS = 4
_OFF_NS = 1 << 62  # latency_event_ns while the monitor is off: never reached
_FILL_CHARS = "_o#"  # the levels inside one graph row, bottom to top


class EventSeries:
    """One event's ring of samples (times in unix seconds, latencies in ms)."""

    __slots__ = ("times", "latencies", "next", "max")

    def __init__(self):
        self.times = [0] * HISTORY_LEN
        self.latencies = [0] * HISTORY_LEN
        self.next = 0  # the slot the next new second goes to
        self.max = 0

    def add(self, now: int, ms: int) -> None:
        if ms > self.max:
            self.max = ms
        last = (self.next - 1) % HISTORY_LEN
        if self.times[last] == now:  # same second: keep the worst of the two
            if ms > self.latencies[last]:
                self.latencies[last] = ms
            return
        self.times[self.next] = now
        self.latencies[self.next] = ms
        self.next = (self.next + 1) % HISTORY_LEN

    def latest(self) -> tuple[int, int]:
        last = (self.next - 1) % HISTORY_LEN
        return self.times[last], self.latencies[last]

    def samples(self) -> list[tuple[int, int]]:
        """The samples held, oldest first."""
        out = []
        for j in range(HISTORY_LEN):
            i = (self.next + j) % HISTORY_LEN
            if self.times[i]:
                out.append((self.times[i], self.latencies[i]))
        return out


class LatencyMonitor:
    def __init__(self, server):
        self.server = server
        self.events: dict[str, EventSeries] = {}  # in order of first appearance
        self.threshold = 0
        self._set_threshold(server.settings["latency-monitor-threshold"])
        server.settings.listeners.append(self._on_config_set)

    # -- recording

    def _set_threshold(self, ms: int) -> None:
        self.threshold = ms
        self.server.latency_event_ns = ms * 1_000_000 if ms > 0 else _OFF_NS

    def _on_config_set(self, name: str, value) -> None:
        if name == "latency-monitor-threshold":
            self._set_threshold(value)

    def add(self, event: str, ms) -> None:
        """Record `ms` (int or float milliseconds, truncated as Redis does)
        for `event` if the monitor is on and it reaches the threshold."""
        ms = int(ms)
        if self.threshold and ms >= self.threshold:
            series = self.events.get(event)
            if series is None:
                series = self.events[event] = EventSeries()
            series.add(int(time.time()), ms)

    def command_event(self, cmd, nanos: int) -> None:
        """A command call took `nanos` >= the threshold (dispatch.call)."""
        self.add("fast-command" if "fast" in cmd.flags else "command", nanos // 1_000_000)

    def reset(self, events=None) -> int:
        """Forget the named events (all when None); how many existed."""
        if events is None:
            count = len(self.events)
            self.events.clear()
            return count
        return sum(self.events.pop(name, None) is not None for name in events)

    # -- reports

    def latest(self) -> list:
        out = []
        for name, series in self.events.items():
            when, ms = series.latest()
            out.append([name.encode(), when, ms, series.max])
        return out

    def history(self, event: str) -> list:
        series = self.events.get(event)
        return [] if series is None else [[t, ms] for t, ms in series.samples()]

    def graph(self, event: str, now: int | None = None) -> str | None:
        """The ASCII graph of an event's samples; None if it has none."""
        series = self.events.get(event)
        if series is None:
            return None
        samples = series.samples()
        values = [ms for _, ms in samples]
        now = int(time.time()) if now is None else now
        labels = [_age_label(now - t) for t, _ in samples]
        head = "%s - high %d ms, low %d ms (all time high %d ms)\n%s\n" % (
            event, max(values), min(values), series.max, "-" * GRAPH_COLUMNS)
        return head + render_sparkline(values, labels)

    def doctor(self) -> str:
        return doctor_report(self)


def _age_label(seconds: int) -> str:
    """How long ago, as the graph's column label: 12s, 5m, 3h, 2d."""
    seconds = max(seconds, 0)
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        return "%dm" % (seconds // 60)
    if seconds < 86400:
        return "%dh" % (seconds // 3600)
    return "%dd" % (seconds // 86400)


def render_sparkline(values: list, labels: list, rows: int = GRAPH_ROWS,
                     columns: int = GRAPH_COLUMNS) -> str:
    """A filled column chart, one column per value, scaled between the
    lowest and the highest value; each row has three levels (_ o #) and
    the rows under a column's top are drawn '|'. Under the chart, a blank
    line, then each label written vertically. Wider than `columns`: several
    such blocks one after the other."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1
    levels = len(_FILL_CHARS)
    steps = levels * rows
    heights = [min(int((v - low) / span * steps), steps - 1) for v in values]
    out = []
    for start in range(0, len(values), columns):
        chunk = heights[start:start + columns]
        for row in range(rows - 1, -1, -1):  # top row first
            line = []
            for h in chunk:
                above = h - row * levels
                if above < 0:
                    line.append(" ")
                elif above < levels:
                    line.append(_FILL_CHARS[above])
                else:
                    line.append("|")
            out.append("".join(line) + "\n")
        out.append(" " * len(chunk) + "\n")
        chunk_labels = labels[start:start + columns]
        for i in range(max(len(s) for s in chunk_labels)):
            out.append("".join(s[i] if i < len(s) else " " for s in chunk_labels) + "\n")
    return "".join(out)


# What to look at, per event, for DOCTOR (prefix match on the event name).
_ADVICE = [
    ("command", "Slow commands: SLOWLOG GET lists them. Commands that walk a whole "
                "collection or keyspace (KEYS, SMEMBERS, HGETALL, LRANGE 0 -1, SORT, "
                "big DEL/UNLINK targets, Lua scripts) block every other client while "
                "they run; prefer the SCAN family and smaller values."),
    ("fast-command", "Commands flagged fast (O(1) or O(log N)) were slow: the host is "
                     "likely starved of CPU (other processes, a busy VM neighbour, "
                     "swapping). Check the system load and that the dataset fits in RAM."),
    ("expire-cycle", "The active expiry cycle took long: many keys expired at the same "
                     "time, or expired values were big. Spread TTLs out, and consider "
                     "lazyfree-lazy-expire."),
    ("eviction", "Eviction under maxmemory took long: evicting big values blocks the "
                 "server. Raise maxmemory, keep values small, or enable "
                 "lazyfree-lazy-eviction."),
    ("fork", "fork() for BGSAVE / BGREWRITEAOF / full resyncs took long: its cost grows "
             "with the memory in use. Snapshot less often, or keep the dataset smaller."),
    ("aof", "Appending to the AOF was slow: the disk is slow or busy. appendfsync "
            "everysec trades at most a second of writes for much lower latency; "
            "no-appendfsync-on-rewrite helps while a rewrite runs."),
]


def doctor_report(monitor: LatencyMonitor) -> str:
    if not monitor.events:
        text = ("No latency spikes have been observed in this hakv instance: there is "
                "nothing to worry about.\n")
        if not monitor.threshold:
            text += ("Note that the latency monitor is disabled "
                     "(latency-monitor-threshold is 0), so nothing is being recorded. "
                     "Enable it with CONFIG SET latency-monitor-threshold "
                     "<milliseconds>.\n")
        return text
    lines = ["Latency spikes were observed in this hakv instance (threshold %d ms).\n"
             % monitor.threshold]
    advice = []
    for n, (name, series) in enumerate(monitor.events.items(), 1):
        samples = series.samples()
        values = [ms for _, ms in samples]
        avg = sum(values) / len(values)
        deviation = sum(abs(v - avg) for v in values) / len(values)
        line = ("%d. %s: %d spike%s recorded, average %d ms, mean deviation %d ms"
                % (n, name, len(values), "" if len(values) == 1 else "s", avg, deviation))
        if len(samples) > 1:
            line += ", one every %.1f s on average" % (
                (samples[-1][0] - samples[0][0]) / (len(samples) - 1))
        lines.append(line + "; worst ever %d ms.\n" % series.max)
        for prefix, text in _ADVICE:
            if name == prefix or (name.startswith(prefix) and prefix in ("eviction", "aof")):
                if text not in advice:
                    advice.append(text)
    if advice:
        lines.append("\nWhat to look at:\n\n")
        lines.extend("- %s\n" % text for text in advice)
    return "".join(lines)
