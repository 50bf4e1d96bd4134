"""`hakv watch`: a live failover timeline, then a report.

An `Observer` (asyncio, one event loop) watches a topology through a
`FaultBackend` (lab/faults.py), so a `hakv up` topology and a compose project
look the same:

* every sentinel's events: PSUBSCRIBE * on each sentinel (+sdown, +odown,
  +vote-for-leader, +elected-leader, +promoted-slave, +switch-master, ...);
* every node's INFO replication and stats, polled (roles, offsets, links,
  sync_full / sync_partial_ok for the resync count);
* what every sentinel names as primary, polled;
* the fault log the fault tool appends to;
* a probe writer (`ProbeWriter`) that behaves like a Sentinel-aware client:
  asks the sentinels for the primary, writes to it at its client address
  (so a partition cuts it off like any client), reconnects on errors, and
  follows every other write with WAIT 1 100.

The observers use `observe_address` (a partitioned member's own view stays
visible locally); the probe writer uses the client addresses.
`hakv dashboard` runs the same Observer behind a web page.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field

from hakv.common.client import Client, ReplyError
from hakv.lab.faults import FaultBackend, FaultError, open_backend, wall_ms
from hakv.lab.rpc import parse_info

PROBE_TTL_MS = 3600_000
NET_ERRORS = (OSError, asyncio.TimeoutError, ConnectionError, EOFError)


@dataclass
class Event:
    """One line of the timeline."""

    at: float              # time.time()
    source: str            # "sentinel2", "node1", "probe", "fault"
    kind: str              # "+sdown", "role", "fault", "write", ...
    text: str
    data: dict = field(default_factory=dict)

    def line(self, t0: float | None = None) -> str:
        rel = "%+8.3fs " % (self.at - t0) if t0 else ""
        return "%s%s  %-10s %-18s %s" % (rel, wall_ms(self.at), self.source, self.kind, self.text)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Write:
    """One probe write: SET key seq, maybe followed by WAIT 1 100."""

    seq: int
    key: str
    sent: float
    member: str | None = None      # the node it was sent to
    acked: float | None = None     # when the SET was answered +OK
    done: float | None = None      # when the outcome was known (the error's time)
    waited: bool = False           # followed by WAIT
    replicas: int | None = None    # WAIT's answer
    error: str | None = None

    @property
    def wait_confirmed(self) -> bool:
        return self.acked is not None and (self.replicas or 0) >= 1


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def parse_sentinel_event(backend: FaultBackend, channel: str, text: str) -> dict:
    """What a sentinel event is about, with addresses mapped to member names."""
    words = text.split()
    data: dict = {}
    try:
        if channel == "+switch-master" and len(words) >= 5:
            data = {"name": words[0], "old": backend.member_at(words[1], words[2]),
                    "new": backend.member_at(words[3], words[4]),
                    "new_addr": [words[3], int(words[4])]}
        elif channel in ("+vote-for-leader", "+new-epoch", "+config-update-from"):
            data = {"args": words}
        elif len(words) >= 4 and words[0] in ("master", "slave", "sentinel"):
            data = {"type": words[0], "member": backend.member_at(words[2], words[3])}
            if "@" in words and len(words) >= words.index("@") + 4:
                at = words.index("@")
                data["master"] = backend.member_at(words[at + 2], words[at + 3])
            if "#quorum" in words:
                data["quorum"] = words[words.index("#quorum") + 1]
    except (ValueError, IndexError):
        pass
    return data


class ProbeWriter:
    """A minimal Sentinel-aware writer (what redis-py's Sentinel client does):
    ask a sentinel for the primary, write there, on any error reconnect and
    ask again. Keys are `prefix:seq`, values `seq`, expiring after an hour."""

    def __init__(self, backend: FaultBackend, prefix: str, on_write=None, interval: float = 0.02,
                 wait_every: int = 2, timeout: float = 0.5):
        self.backend = backend
        self.prefix = prefix
        self.on_write = on_write
        self.interval = interval
        self.wait_every = wait_every
        self.timeout = timeout
        self.writes: list[Write] = []
        self.client: Client | None = None
        self.member: str | None = None
        self.running = True
        self.max_writes: int | None = None  # keep every write (the report checks them all)
        self._next_sentinel = 0

    async def discover(self) -> str | None:
        sentinels = self.backend.sentinels()
        for i in range(len(sentinels)):
            name = sentinels[(self._next_sentinel + i) % len(sentinels)]
            try:
                host, port = self.backend.address(name)
                c = await Client.connect(host, port, timeout=self.timeout)
                try:
                    reply = await c.execute("SENTINEL", "GET-MASTER-ADDR-BY-NAME",
                                            self.backend.master_name, timeout=self.timeout)
                finally:
                    c.close()
            except NET_ERRORS + (ReplyError,):
                self._next_sentinel += 1  # try the next one first next time
                continue
            if reply:
                return self.backend.member_at(_text(reply[0]), _text(reply[1]))
        return None

    def _drop(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None

    async def run(self) -> None:
        seq = 0
        while self.running:
            if self.client is None or self.client.closed:
                self.member = await self.discover()
                if self.member is None:
                    await asyncio.sleep(0.05)
                    continue
                try:
                    host, port = self.backend.address(self.member)
                    self.client = await Client.connect(host, port, timeout=self.timeout)
                except NET_ERRORS as exc:
                    now = time.time()
                    self._record(Write(seq, "", now, self.member, done=now,
                                       error="connect: %s" % (_short(exc))))
                    self._drop()
                    await asyncio.sleep(self.interval)
                    continue
            seq += 1
            w = Write(seq, "%s:%d" % (self.prefix, seq), time.time(), self.member,
                      waited=seq % self.wait_every == 0)
            try:
                await self.client.execute("SET", w.key, seq, "PX", PROBE_TTL_MS,
                                          timeout=self.timeout)
                w.acked = time.time()
                if w.waited:
                    w.replicas = int(await self.client.execute("WAIT", 1, 100,
                                                               timeout=self.timeout + 0.1))
            except ReplyError as exc:
                w.error = str(exc)[:80]
                self._drop()
            except NET_ERRORS as exc:
                if not self.running:
                    break  # stopped under our feet: not a failed write
                w.error = _short(exc)
                self._drop()
            w.done = time.time()
            self._record(w)
            await asyncio.sleep(self.interval)
        self._drop()

    def _record(self, w: Write) -> None:
        self.writes.append(w)
        if self.max_writes and len(self.writes) > self.max_writes:
            del self.writes[:len(self.writes) // 2]  # a long-running dashboard
        if self.on_write:
            self.on_write(w)


def _short(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    return (str(exc) or exc.__class__.__name__)[:80]


@dataclass
class NodeState:
    name: str
    reachable: bool = False
    error: str = ""
    role: str = ""
    master: str | None = None      # member it replicates from
    link: str = ""
    offset: int = 0
    sync_full: int = 0
    sync_partial_ok: int = 0
    sync_partial_err: int = 0
    replicas: int = 0
    keys: int | None = None
    at: float = 0.0


@dataclass
class SentinelState:
    name: str
    reachable: bool = False
    error: str = ""
    primary: str | None = None
    flags: str = ""
    epoch: str = ""
    replicas: str = ""
    sentinels: str = ""
    at: float = 0.0


class Observer:
    """Collects a topology's events, states and probe writes (see the module doc)."""

    def __init__(self, backend: FaultBackend, on_event=None, poll_interval: float = 0.2,
                 probe: bool = True, probe_interval: float = 0.02,
                 probe_timeout: float = 0.5, max_events: int | None = None):
        self.backend = backend
        self.on_event = on_event
        self.poll_interval = poll_interval
        self.max_events = max_events   # None: keep all (a watch); a dashboard bounds it
        self.started = time.time()
        self.events: list[Event] = []
        self.nodes: dict[str, NodeState] = {n: NodeState(n) for n in backend.nodes()}
        self.first_stats: dict[str, NodeState] = {}
        self.role_history: dict[str, list[tuple[float, str]]] = {n: [] for n in self.nodes}
        self.sentinel_states = {s: SentinelState(s) for s in backend.sentinels()}
        self.sentinel_ids: dict[str, str] = {}
        self.subscribed: set[str] = set()
        self.initial_primary: str | None = None
        self.partitioned: set[str] = set()
        self.probe = ProbeWriter(backend, "hakv:probe:%d" % (self.started * 1000),
                                 on_write=self._on_write, interval=probe_interval,
                                 timeout=probe_timeout) \
            if probe else None
        self.switches: list[Event] = []
        self.tasks: list[asyncio.Task] = []
        self.clients: set[Client] = set()   # long-lived connections, closed by stop()
        self._fault_seen = 0
        self._running = False

    # -- lifecycle

    async def start(self) -> None:
        self._running = True
        loop = asyncio.get_running_loop()
        self.initial_primary = await loop.run_in_executor(None, self.backend.primary)
        for s in self.sentinel_states:
            self.tasks.append(loop.create_task(self._subscribe(s)))
            self.tasks.append(loop.create_task(self._poll_sentinel(s)))
        for n in self.nodes:
            self.tasks.append(loop.create_task(self._poll_node(n)))
        self.tasks.append(loop.create_task(self._poll_faults()))

    def start_probe(self) -> None:
        if self.probe is not None:
            self.tasks.append(asyncio.get_running_loop().create_task(self.probe.run()))

    async def wait_ready(self, timeout: float = 10.0) -> bool:
        """Until every reachable sentinel is subscribed and every node polled once."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if (self.subscribed >= {s for s, st in self.sentinel_states.items()
                                    if st.reachable}
                    and all(st.at for st in self.nodes.values())
                    and all(st.at for st in self.sentinel_states.values())):
                return True
            await asyncio.sleep(0.05)
        return False

    async def stop(self) -> None:
        # Closing the connections ends the loops cleanly (pending replies fail
        # with ConnectionLost); what is still running after that is cancelled.
        self._running = False
        if self.probe:
            self.probe.running = False
            self.probe._drop()
        for c in list(self.clients):
            c.close()
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=2.0)
            for t in pending:
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    async def _connect(self, name: str) -> Client:
        client = await Client.connect(*self.backend.observe_address(name), timeout=0.5)
        self.clients.add(client)
        if not self._running:
            client.close()
        return client

    def _forget(self, client: Client | None) -> None:
        if client is not None:
            client.close()
            self.clients.discard(client)

    # -- events

    def emit(self, source: str, kind: str, text: str, data: dict | None = None,
             at: float | None = None) -> Event:
        ev = Event(at if at is not None else time.time(), source, kind, text, data or {})
        self.events.append(ev)
        if self.max_events and len(self.events) > self.max_events:
            del self.events[:len(self.events) // 2]
        if kind == "+switch-master":
            self.switches.append(ev)
        if self.on_event:
            self.on_event(ev)
        return ev

    def _on_write(self, w: Write) -> None:
        # Only transitions make the timeline: first error, first success after errors.
        prev = self.probe.writes[-2] if self.probe and len(self.probe.writes) > 1 else None
        ok = w.acked is not None
        prev_ok = prev is not None and prev.acked is not None
        prev_member = prev.member if prev is not None else None
        if prev is None or ok != prev_ok or (ok and w.member != prev_member):
            if ok:
                self.emit("probe", "write-ok", "%s accepted write #%d%s" % (
                    w.member, w.seq, "" if not w.waited else " (WAIT: %s)" % w.replicas),
                    {"member": w.member, "seq": w.seq}, at=w.acked)
            else:
                self.emit("probe", "write-error", "write #%d to %s failed: %s" % (
                    w.seq, w.member, w.error), {"member": w.member, "seq": w.seq},
                    at=w.done or w.sent)

    # -- sentinels

    async def _subscribe(self, name: str) -> None:
        while self._running:
            client = None
            try:
                client = await self._connect(name)
                ident = await client.execute("SENTINEL", "MYID", timeout=0.5)
                self.sentinel_ids[_text(ident)] = name
                client.on_message = lambda msg, n=name: self._sentinel_message(n, msg)
                await client.psubscribe("*", timeout=0.5)
                self.subscribed.add(name)
                await client.wait_closed()
            except NET_ERRORS + (ReplyError,):
                pass
            finally:
                self.subscribed.discard(name)
                self._forget(client)
            if self._running:
                await asyncio.sleep(0.2)

    def _sentinel_message(self, sentinel: str, msg) -> None:
        channel = _text(msg.channel)
        if channel.startswith("__"):
            return
        text = _text(msg.data)
        data = parse_sentinel_event(self.backend, channel, text)
        if channel == "+vote-for-leader" and data.get("args"):
            data["leader"] = self.sentinel_ids.get(data["args"][0], data["args"][0][:8])
        data["sentinel"] = sentinel
        shown = text
        names = [data.get(k) for k in ("member", "new") if data.get(k)]
        if names:
            shown += "  (%s)" % ", ".join(names)
        if data.get("leader"):
            shown += "  (leader %s)" % data["leader"]
        self.emit(sentinel, channel, shown, data)

    async def _poll_sentinel(self, name: str) -> None:
        state = self.sentinel_states[name]
        client = None
        while self._running:
            started = time.monotonic()
            try:
                if client is None or client.closed:
                    self._forget(client)
                    client = await self._connect(name)
                addr, master = await client.pipeline([
                    ("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.backend.master_name),
                    ("SENTINEL", "MASTER", self.backend.master_name)], timeout=0.8)
                if isinstance(addr, ReplyError) or isinstance(master, ReplyError):
                    raise ReplyError(str(addr if isinstance(addr, ReplyError) else master))
                fields = {_text(k): _text(v) for k, v in zip(master[::2], master[1::2])}
                primary = self.backend.member_at(_text(addr[0]), _text(addr[1])) \
                    if addr else None
                changed = state.reachable is False or primary != state.primary
                state.reachable, state.error, state.primary = True, "", primary
                state.flags = fields.get("flags", "")
                state.epoch = fields.get("config-epoch", "")
                state.replicas = fields.get("num-slaves", "")
                others = fields.get("num-other-sentinels", "")
                state.sentinels = str(int(others) + 1) if others.isdigit() else ""
                if changed and state.at:
                    self.emit(name, "view", "names %s as primary" % primary, {"primary": primary})
            except NET_ERRORS + (ReplyError,) as exc:
                self._forget(client)
                client = None
                if not self._running:
                    break
                if state.reachable or not state.at:
                    state.error = _short(exc)
                    if state.at:
                        self.emit(name, "unreachable", state.error)
                state.reachable = False
            state.at = time.time()
            await asyncio.sleep(max(0.0, self.poll_interval - (time.monotonic() - started)))
        self._forget(client)

    # -- nodes

    async def _poll_node(self, name: str) -> None:
        client = None
        while self._running:
            started = time.monotonic()
            prev = self.nodes[name]
            state = NodeState(name)
            try:
                if client is None or client.closed:
                    self._forget(client)
                    client = await self._connect(name)
                repl, stats, size = await client.pipeline(
                    [("INFO", "replication"), ("INFO", "stats"), ("DBSIZE",)], timeout=0.8)
                if isinstance(repl, ReplyError):
                    raise ReplyError(str(repl))
                info = parse_info(repl)
                st = parse_info(stats) if not isinstance(stats, ReplyError) else {}
                state.reachable = True
                state.role = info.get("role", "?")
                if state.role == "master":
                    state.offset = int(info.get("master_repl_offset", 0))
                    state.replicas = int(info.get("connected_slaves", 0))
                else:
                    state.offset = int(info.get("slave_repl_offset", 0) or 0)
                    state.master = self.backend.member_at(info.get("master_host", ""),
                                                          info.get("master_port", 0) or 0)
                    state.link = info.get("master_link_status", "")
                state.sync_full = int(st.get("sync_full", 0))
                state.sync_partial_ok = int(st.get("sync_partial_ok", 0))
                state.sync_partial_err = int(st.get("sync_partial_err", 0))
                state.keys = size if isinstance(size, int) else None
            except NET_ERRORS + (ReplyError, ValueError) as exc:
                self._forget(client)
                client = None
                if not self._running:
                    break
                state.error = _short(exc)
            state.at = time.time()
            self.nodes[name] = state
            if state.reachable and name not in self.first_stats:
                self.first_stats[name] = state
            self._node_changed(prev, state)
            await asyncio.sleep(max(0.0, self.poll_interval - (time.monotonic() - started)))
        self._forget(client)

    def _node_changed(self, prev: NodeState, now: NodeState) -> None:
        what = describe_node(now)
        if prev.at and what == describe_node(prev):
            return
        hist = self.role_history[now.name]
        hist.append((now.at, now.role if now.reachable else "down"))
        if prev.at:
            self.emit(now.name, "role", what, {"role": now.role if now.reachable else "down",
                                               "master": now.master})

    # -- the fault log

    async def _poll_faults(self) -> None:
        loop = asyncio.get_running_loop()
        while self._running:
            faults = await loop.run_in_executor(None, self.backend.fault_log, self.started)
            for f in faults[self._fault_seen:]:
                self.emit("fault", f.verb, "%s %s%s" % (
                    f.verb, f.member, " (%s)" % f.role if f.role else ""),
                    {"member": f.member, "verb": f.verb, "role": f.role, "detail": f.detail},
                    at=f.at)
            self._fault_seen = len(faults)
            try:
                self.partitioned = await loop.run_in_executor(None, self.backend.partitioned)
            except FaultError:
                pass
            await asyncio.sleep(0.1)

    # -- questions

    def failover_done(self) -> Event | None:
        """The +switch-master after which the probe wrote to the new primary."""
        if not self.switches:
            return None
        sw = self.switches[0]
        new = sw.data.get("new")
        if self.probe is None:
            return sw
        for w in reversed(self.probe.writes):
            if w.acked is None or w.acked < sw.at:
                break
            if w.member == new:
                return sw
        return None

    async def read_back(self, member: str, keys: list[str]) -> set[str]:
        """Which of `keys` exist on `member` now (at its observe address)."""
        present: set[str] = set()
        if not keys:
            return present
        client = await Client.connect(*self.backend.observe_address(member), timeout=1.0)
        try:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                values = await client.execute("MGET", *chunk, timeout=5.0)
                present.update(k for k, v in zip(chunk, values) if v is not None)
        finally:
            client.close()
        return present

    def snapshot(self) -> dict:
        """The topology now, for the dashboard."""
        top = max((n.offset for n in self.nodes.values() if n.reachable), default=0)
        nodes = []
        for name, n in self.nodes.items():
            nodes.append({
                "name": name, "address": "%s:%d" % self.backend.address(name),
                "reachable": n.reachable, "error": n.error, "role": n.role if n.reachable
                else "down", "master": n.master, "link": n.link, "offset": n.offset,
                "lag": (top - n.offset) if n.reachable and n.role != "master" else None,
                "replicas": n.replicas, "keys": n.keys,
                "partitioned": name in self.partitioned,
            })
        sentinels = []
        for name, s in self.sentinel_states.items():
            sentinels.append({
                "name": name, "address": "%s:%d" % self.backend.address(name),
                "reachable": s.reachable, "error": s.error, "primary": s.primary,
                "flags": s.flags, "epoch": s.epoch, "replicas": s.replicas,
                "sentinels": s.sentinels, "partitioned": name in self.partitioned,
            })
        writes = self.probe.writes if self.probe else []
        last_ok = next((w for w in reversed(writes) if w.acked is not None), None)
        return {
            "at": time.time(), "master_name": self.backend.master_name,
            "nodes": nodes, "sentinels": sentinels,
            "probe": {"writes": len(writes), "ok": sum(1 for w in writes if w.acked),
                      "last_ok_member": last_ok.member if last_ok else None,
                      "last_error": next((w.error for w in reversed(writes) if w.error), None)},
        }


def describe_node(n: NodeState) -> str:
    if not n.reachable:
        return "unreachable: %s" % n.error
    if n.role == "master":
        return "master (%d replicas)" % n.replicas
    return "replica of %s, link %s" % (n.master, n.link)


# ---------------------------------------------------------------------------
# hakv watch


async def watch(backend: FaultBackend, *, out=sys.stdout, probe: bool = True,
                until_failover: bool = True, settle: float = 2.0, timeout: float | None = None,
                poll_interval: float = 0.2, stop_event: asyncio.Event | None = None,
                ready_file: str | None = None, probe_timeout: float = 0.5):
    """Run the observer, print the timeline live; return the Report when a
    failover completed (+settle seconds), at timeout, or when stop_event is set."""
    from hakv.lab.report import build_report

    t0: list[float | None] = [None]

    def show(ev: Event) -> None:
        if ev.source == "fault" and t0[0] is None:
            t0[0] = ev.at
        print(ev.line(t0[0]), file=out, flush=True)

    obs = Observer(backend, on_event=show, poll_interval=poll_interval, probe=probe,
                   probe_timeout=probe_timeout)
    await obs.start()
    ready = await obs.wait_ready()
    if probe:
        obs.start_probe()
        # the probe's first write is the baseline: wait for it (bounded)
        deadline = time.time() + 5
        while time.time() < deadline and not any(w.acked for w in obs.probe.writes):
            await asyncio.sleep(0.02)
    print("watching %s: primary %s, %d nodes, %d sentinels%s; inject a fault "
          "(hakv fault ...) or Ctrl-C for the report"
          % (backend.master_name, obs.initial_primary, len(obs.nodes), len(obs.sentinel_states),
             "" if ready else " (not every member answers)"), file=out, flush=True)
    if ready_file:
        with open(ready_file, "w") as f:
            f.write(str(time.time()))
    stop_event = stop_event or asyncio.Event()
    deadline = time.time() + timeout if timeout else None
    done_at = None
    try:
        while not stop_event.is_set():
            if deadline and time.time() > deadline:
                print("(watch timed out)", file=out, flush=True)
                break
            if until_failover and done_at is None and obs.failover_done():
                done_at = time.time()
                print("failover complete; collecting resyncs for %.1fs ..." % settle,
                      file=out, flush=True)
            if done_at is not None and time.time() - done_at >= settle:
                break
            try:
                await asyncio.wait_for(stop_event.wait(), 0.05)
            except asyncio.TimeoutError:
                pass
    finally:
        if obs.probe:
            obs.probe.running = False
        report = await build_report(obs)
        await obs.stop()
    return report


def cmd_watch(args) -> int:
    from hakv.lab.svg import render_svg

    try:
        backend = open_backend(args.dir, args.compose)
    except FaultError as exc:
        print("hakv watch: %s" % exc, file=sys.stderr)
        return 1

    async def main() -> object:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal as _signal
        for sig in (_signal.SIGINT, _signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await watch(backend, probe=not args.no_probe, until_failover=not args.forever,
                           settle=args.settle, timeout=args.timeout, stop_event=stop,
                           poll_interval=args.poll, ready_file=args.ready_file,
                           probe_timeout=args.probe_timeout)

    try:
        report = asyncio.run(main())
    finally:
        backend.close()
    print()
    print(report.text())
    if args.svg:
        with open(args.svg, "w") as f:
            f.write(render_svg(report))
        print("timeline written to %s" % os.path.abspath(args.svg))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report.to_dict(), f, indent=2)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("watch", help="live failover timeline, then a report (text and SVG)",
                       description=__doc__.split("\n\n")[0])
    where = p.add_mutually_exclusive_group()
    where.add_argument("--dir", default="hakv-data", help="a `hakv up` topology")
    where.add_argument("--compose", metavar="PROJECT", help="a Docker Compose project")
    p.add_argument("--svg", help="write the timeline as one self-contained SVG file")
    p.add_argument("--json", help="write the report as JSON")
    p.add_argument("--no-probe", action="store_true", help="do not write probe keys")
    p.add_argument("--forever", action="store_true",
                   help="keep watching after a failover (until Ctrl-C)")
    p.add_argument("--settle", type=float, default=2.0,
                   help="seconds to keep watching after the failover completed (resyncs)")
    p.add_argument("--timeout", type=float, help="give up after this many seconds")
    p.add_argument("--poll", type=float, default=0.2, help="node/sentinel poll interval (s)")
    p.add_argument("--probe-timeout", type=float, default=0.5,
                   help="the probe writer's timeout per command (s): bounds how soon it "
                        "notices a frozen primary")
    p.add_argument("--ready-file", help=argparse.SUPPRESS)  # tests: written once watching
    p.set_defaults(func=cmd_watch)
