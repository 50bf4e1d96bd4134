"""Fault injection for a running topology: the interface and the local backend.

`FaultBackend` is what `hakv fault`, `hakv watch`, `hakv dashboard` and the
failover benchmark drive. Two implementations exist:

  LocalBackend    (this module)            a `hakv up` topology of local processes
  ComposeBackend  (lab/compose_backend.py) a Docker Compose project, through the docker SDK

The verbs
---------
  kill       crash: SIGKILL (compose: `docker kill`)
  stop       freeze: SIGSTOP, the process keeps its sockets but answers nothing (docker pause)
  cont       thaw what `stop` froze: SIGCONT (docker unpause)
  restart    start the member again with the same config (after a kill, or kill+start)
  partition  cut the member off from everyone (nodes, sentinels, clients), both directions;
             established connections stop carrying bytes without an RST, as a real cut
  heal       undo `partition`

Each verb returns a `FaultEvent` (what, on whom, when: wall clock, ms precision)
and appends it to the backend's fault log (JSON lines), which `hakv watch`
reads to place the fault on its timeline.

How the local backend cuts a partition without root
---------------------------------------------------
Every member of a `hakv up` topology has a public address 127.0.0.1:PORT (what
clients, sentinels and replicas use and what everyone announces) served by a
small TCP proxy (lab/proxy.py, one helper process per topology). The server
process itself listens on a private address of its own, 127.A.B.(11+i):PORT
(all of 127/8 is loopback on Linux), and makes its outgoing connections from
that address too (`bind-source-addr`). So a proxy knows for every connection
both its destination (the member behind the proxy) and its source (a member,
by its private address, or an outside client, from anywhere else). Partitioning
member X tells the proxy to freeze every connection whose destination or
source is X: bytes stop flowing both ways and are held (as TCP would keep
retransmitting them), new connections are accepted but get no answer. `heal`
releases what was held, like a network coming back before TCP gave up.
Announced addresses (replica-announce-ip/port, sentinel announce-ip/port) are
the public ones, so nobody learns a private address by accident.
The private address of a member is still reachable from the host: that is
`observe_address`, which the lab's observers (watch, dashboard, report) use to
see a partitioned member's own view; clients must use `address`.
"""

from __future__ import annotations

import abc
import json
import os
import signal
import time
from dataclasses import asdict, dataclass

from hakv.lab.rpc import RpcError, call, parse_info

VERBS = ("kill", "stop", "cont", "restart", "partition", "heal")
FAULT_LOG = "faults.jsonl"


def wall_ms(t: float) -> str:
    """A wall-clock timestamp with millisecond precision: 14:03:07.512."""
    return time.strftime("%H:%M:%S", time.localtime(t)) + ".%03d" % int((t % 1) * 1000)


@dataclass
class FaultEvent:
    """One fault injected: `verb` on `member` at `at` (time.time(), seconds)."""

    verb: str
    member: str
    at: float
    detail: str = ""
    address: tuple = ()
    role: str = ""           # what the member was when hit: "master"/"slave"/"sentinel"/""

    def __str__(self) -> str:
        text = "%s %s %s" % (wall_ms(self.at), self.verb, self.member)
        if self.address:
            text += " (%s:%d)" % tuple(self.address)
        return text + (": " + self.detail if self.detail else "")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: str) -> "FaultEvent":
        data = json.loads(line)
        data["address"] = tuple(data.get("address") or ())
        return cls(**data)


class FaultError(Exception):
    """A verb that could not be applied (unknown member, nothing to heal, ...)."""


def _settled(reply, replicas: int, others: int) -> bool:
    v = {k.decode(): x.decode() for k, x in zip(reply[::2], reply[1::2])}
    return (int(v["num-slaves"]) >= replicas and int(v["num-other-sentinels"]) == others
            and v["flags"] == "master")


class FaultBackend(abc.ABC):
    """A topology the lab can observe and hurt.

    Subclasses implement the `_do_*` primitives (and the member queries); the
    public verbs stamp the time, log the event and return it. Member names are
    "node1", "node2", ... and "sentinel1", ...
    """

    master_name: str = "mymaster"
    #: where verbs are appended as JSON lines (None: not logged)
    fault_log_path: str | None = None

    # -- what the topology is (subclasses)

    @abc.abstractmethod
    def members(self) -> list[str]:
        """Every member name: nodes first, then sentinels."""

    @abc.abstractmethod
    def role_of(self, name: str) -> str:
        """"node" or "sentinel" (what the member is, not its replication role)."""

    @abc.abstractmethod
    def address(self, name: str) -> tuple[str, int]:
        """Where a client on this host reaches the member (subject to faults)."""

    def observe_address(self, name: str) -> tuple[str, int]:
        """Where the lab's observers reach the member, bypassing a partition when
        the backend can (the local backend can; compose cannot: same as address)."""
        return self.address(name)

    def announced_address(self, name: str) -> tuple[str, int]:
        """How the members name each other (what the sentinels report for it):
        the same as `address` locally, ("node1", 6379) in a compose network."""
        return self.address(name)

    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """Client-side addresses of every sentinel (for redis-py's Sentinel)."""
        return [self.address(m) for m in self.members() if self.role_of(m) == "sentinel"]

    def nodes(self) -> list[str]:
        return [m for m in self.members() if self.role_of(m) == "node"]

    def sentinels(self) -> list[str]:
        return [m for m in self.members() if self.role_of(m) == "sentinel"]

    def partitioned(self) -> set[str]:
        """Members cut off right now (for display)."""
        return set()

    def wait_settled(self, replicas: int = 2, timeout: float = 30.0) -> None:
        """Until every sentinel sees the master up with `replicas` replicas and
        every other sentinel."""
        sentinels = self.sentinels()
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                views = [self.call(s, "SENTINEL", "MASTER", self.master_name) for s in sentinels]
            except (OSError, RpcError):
                views = None
            if views and all(_settled(reply, replicas, len(sentinels) - 1) for reply in views):
                return
            time.sleep(0.1)
        raise RuntimeError("the sentinels did not settle within %ds" % timeout)

    def close(self) -> None:
        """Release what the backend holds (sockets, SDK clients)."""

    # -- primitives (subclasses); each returns a short detail string, or
    #    (detail, at) when the fault took effect at a known time.time() `at`
    #    earlier than the primitive's return (kill: the signal, not the reaping)

    @abc.abstractmethod
    def _do_kill(self, name: str) -> str: ...

    @abc.abstractmethod
    def _do_stop(self, name: str) -> str: ...

    @abc.abstractmethod
    def _do_cont(self, name: str) -> str: ...

    @abc.abstractmethod
    def _do_restart(self, name: str) -> str: ...

    @abc.abstractmethod
    def _do_partition(self, name: str) -> str: ...

    @abc.abstractmethod
    def _do_heal(self, name: str) -> str: ...

    # -- the verbs

    def kill(self, name: str) -> FaultEvent:
        return self._apply("kill", name)

    def stop(self, name: str) -> FaultEvent:
        return self._apply("stop", name)

    def cont(self, name: str) -> FaultEvent:
        return self._apply("cont", name)

    def restart(self, name: str) -> FaultEvent:
        return self._apply("restart", name)

    def partition(self, name: str) -> FaultEvent:
        return self._apply("partition", name)

    def heal(self, name: str) -> FaultEvent:
        return self._apply("heal", name)

    def apply(self, verb: str, spec: str) -> FaultEvent:
        """`verb` on a member given as a name, a port or "primary"."""
        if verb not in VERBS:
            raise FaultError("unknown verb %r (one of %s)" % (verb, ", ".join(VERBS)))
        return self._apply(verb, self.resolve(spec))

    def _apply(self, verb: str, name: str) -> FaultEvent:
        if name not in self.members():
            raise FaultError("no member %r (members: %s)" % (name, ", ".join(self.members())))
        role = self.replication_role(name) if verb != "cont" else ""
        done = getattr(self, "_do_" + verb)(name)
        # a primitive may say when the fault took effect: (detail, time.time())
        detail, at = done if isinstance(done, tuple) else (done, time.time())
        event = FaultEvent(verb, name, at, detail or "", tuple(self.address(name)), role)
        self.record(event)
        return event

    # -- the fault log

    def record(self, event: FaultEvent) -> None:
        if not self.fault_log_path:
            return
        with open(self.fault_log_path, "a") as f:
            f.write(event.to_json() + "\n")

    def fault_log(self, since: float = 0.0) -> list[FaultEvent]:
        """Every logged verb at or after `since` (time.time())."""
        if not self.fault_log_path or not os.path.exists(self.fault_log_path):
            return []
        out = []
        with open(self.fault_log_path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        ev = FaultEvent.from_json(line)
                    except (ValueError, TypeError):
                        continue
                    if ev.at >= since:
                        out.append(ev)
        return out

    # -- finding members

    def call(self, name: str, *args, timeout: float = 0.5):
        """One command to a member at its observe address (lab/rpc.py)."""
        host, port = self.observe_address(name)
        return call(host, port, *args, timeout=timeout)

    def replication_role(self, name: str) -> str:
        """"master"/"slave" as the node says now, "sentinel", or "" if unreachable."""
        if self.role_of(name) == "sentinel":
            return "sentinel"
        try:
            return parse_info(self.call(name, "INFO", "replication")).get("role", "")
        except (OSError, RpcError):
            return ""

    def member_at(self, host, port) -> str | None:
        """The member a sentinel or a node names by (host, port), or None."""
        if isinstance(host, bytes):
            host = host.decode()
        port = int(port)
        for m in self.members():
            if (host, port) in (tuple(self.address(m)), tuple(self.announced_address(m)),
                                tuple(self.observe_address(m))):
                return m
        for m in self.members():
            if host == m and self.announced_address(m)[1] == port:
                return m
        return None

    def primary(self) -> str | None:
        """Who is the primary now: what most reachable sentinels say, else the
        only node that says it is a master."""
        votes: dict[str, int] = {}
        for s in self.sentinels():
            try:
                reply = self.call(s, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
            except (OSError, RpcError):
                continue
            if reply:
                m = self.member_at(reply[0], reply[1])
                if m:
                    votes[m] = votes.get(m, 0) + 1
        if votes:
            return max(votes, key=votes.get)
        masters = [n for n in self.nodes() if self.replication_role(n) == "master"]
        return masters[0] if len(masters) == 1 else None

    def resolve(self, spec: str) -> str:
        """A member name from a name, a port number or "primary"."""
        spec = str(spec)
        if spec == "primary":
            name = self.primary()
            if name is None:
                raise FaultError("cannot tell who the primary is now")
            return name
        if spec in self.members():
            return spec
        if spec.isdigit():
            for m in self.members():
                if int(spec) in (self.address(m)[1], self.announced_address(m)[1]):
                    return m
        raise FaultError("no member %r (members: %s, or a port, or 'primary')"
                         % (spec, ", ".join(self.members())))


# ---------------------------------------------------------------------------
# The local backend: a `hakv up` topology


def _gone(pid: int) -> bool:
    """The process has exited (or is a zombie nobody reaped yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] in "ZX"
    except (OSError, IndexError):
        return True


class LocalBackend(FaultBackend):
    """The processes of a `hakv up` topology (lab/topology.py), in its --dir."""

    def __init__(self, dir: str, topology=None):
        from hakv.lab.topology import Topology

        self.topo = topology if topology is not None else Topology.load(dir)
        self.dir = self.topo.dir
        self.master_name = self.topo.master_name
        self.fault_log_path = os.path.join(self.dir, FAULT_LOG)

    # -- members

    def members(self) -> list[str]:
        return [m.name for m in self.topo.nodes + self.topo.sentinels]

    def _member(self, name: str):
        return self.topo.member(name)

    def role_of(self, name: str) -> str:
        return self._member(name).kind

    def address(self, name: str) -> tuple[str, int]:
        return self.topo.public_address(self._member(name))

    def observe_address(self, name: str) -> tuple[str, int]:
        return self.topo.private_address(self._member(name))

    def pid(self, name: str) -> int:
        self.topo.refresh()
        return self._member(name).pid

    def partitioned(self) -> set[str]:
        if not self.topo.proxied:
            return set()
        try:
            return set(self._proxy().state()["cut"])
        except (OSError, RuntimeError, ValueError):
            return set()

    def _proxy(self):
        from hakv.lab.proxy import ProxyControl

        try:
            port = self.topo.proxy_control_port()
        except (OSError, ValueError, KeyError):
            raise FaultError("this topology runs without the proxies (or they are not "
                             "running): partition needs `hakv up` without --direct")
        return ProxyControl(port)

    # -- primitives

    def _signal(self, name: str, sig: int) -> int:
        pid = self.pid(name)
        if not pid or _gone(pid):
            raise FaultError("%s is not running" % name)
        os.kill(pid, sig)
        return pid

    def _do_kill(self, name: str):
        pid = self._signal(name, signal.SIGKILL)
        at = time.time()
        deadline = at + 5
        while not _gone(pid) and time.time() < deadline:
            time.sleep(0.005)
        return "SIGKILL pid %d" % pid, at

    def _do_stop(self, name: str) -> str:
        return "SIGSTOP pid %d" % self._signal(name, signal.SIGSTOP)

    def _do_cont(self, name: str) -> str:
        return "SIGCONT pid %d" % self._signal(name, signal.SIGCONT)

    def _do_restart(self, name: str) -> str:
        m = self._member(name)
        self.topo.refresh()
        was = "was running, stopped first; " if m.pid and not _gone(m.pid) else ""
        started = time.time()
        self.topo.restart(m)
        return "%sstarted pid %d, answering after %d ms" % (
            was, m.pid, (time.time() - started) * 1000)

    def _do_partition(self, name: str):
        answer = self._proxy().partition(name)
        return ("cut off from every node, sentinel and client (cut now: %s)"
                % ", ".join(answer["cut"]), answer["at"])

    def _do_heal(self, name: str):
        answer = self._proxy().heal(name)
        return "reconnected (still cut: %s)" % (", ".join(answer["cut"]) or "none"), answer["at"]


def open_backend(dir: str | None = None, compose: str | None = None) -> FaultBackend:
    """The backend for `--dir D` (a `hakv up` topology) or `--compose PROJECT`."""
    if compose:
        try:
            from hakv.lab.compose_backend import ComposeBackend
        except ImportError as exc:
            raise FaultError("the compose backend is not available: %s" % exc)
        return ComposeBackend(compose)
    from hakv.lab.topology import STATE_FILE

    if not dir or not os.path.exists(os.path.join(dir, STATE_FILE)):
        raise FaultError("no topology in %s (start one with hakv up)" % dir)
    return LocalBackend(dir)
