"""HA topologies for the sentinel tests and the failover benchmark.

`HA` starts one primary, N replicas and M sentinels as real processes on
free loopback ports: nodes are hakv-server or redis-server, each sentinel is
hakv-sentinel or redis-sentinel (mixed quorums are a list like
["hakv", "hakv", "redis"]). Every process is stopped by `HA.stop()`, which
the `ha` fixture calls at teardown.
"""
from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import redis
from redis.sentinel import Sentinel

from procs import Proc, free_port, hakv_server, redis_server, wait_ready

REDIS_SENTINEL = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"
MASTER = "mymaster"


def wait_until(predicate: Callable[[], object], timeout: float, what: str = "",
               interval: float = 0.05, diagnose: Callable[[], str] | None = None):
    """Poll `predicate` until it returns a truthy value (returned); connection
    errors count as "not yet"."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (redis.exceptions.RedisError, OSError) as exc:
            last_exc = exc
        if time.monotonic() > deadline:
            details = diagnose() if diagnose else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}"
                                 f" (last error: {last_exc!r})\n{details}")
        time.sleep(interval)


def sentinel_conf(port: int, workdir: str, master_port: int, *, quorum: int, down_after: int,
                  failover_timeout: int, extra: tuple[str, ...] = ()) -> str:
    lines = [
        f"port {port}",
        "bind 127.0.0.1",
        f"dir {workdir}",
        f"sentinel monitor {MASTER} 127.0.0.1 {master_port} {quorum}",
        f"sentinel down-after-milliseconds {MASTER} {down_after}",
        f"sentinel failover-timeout {MASTER} {failover_timeout}",
        f"sentinel parallel-syncs {MASTER} 1",
        *extra,
    ]
    return "\n".join(lines) + "\n"


def sentinel_proc(kind: str, workdir: str, port: int, conf_text: str) -> Proc:
    os.makedirs(workdir, exist_ok=True)
    conf = os.path.join(workdir, "sentinel.conf")
    if not os.path.exists(conf):
        with open(conf, "w") as fh:
            fh.write(conf_text)
    if kind == "hakv":
        argv = [sys.executable, "-m", "hakv.sentinel.main", conf]
    else:
        argv = [REDIS_SENTINEL, conf]
    proc = Proc(argv, port, workdir, f"{kind}-sentinel")
    proc.conf_path = conf  # type: ignore[attr-defined]
    proc.kind = kind  # type: ignore[attr-defined]
    return proc


@dataclass
class HA:
    root: str
    nodes_kind: str = "hakv"
    sentinel_kinds: tuple[str, ...] = ("hakv", "hakv", "hakv")
    replicas: int = 2
    quorum: int = 2
    down_after: int = 1000
    failover_timeout: int = 10000
    node_args: tuple[str, ...] = ()
    sentinel_extra: tuple[str, ...] = ()
    nodes: list[Proc] = field(default_factory=list)
    sentinels: list[Proc] = field(default_factory=list)

    # -- starting and stopping

    def _node(self, index: int, port: int, *args: str) -> Proc:
        workdir = os.path.join(self.root, f"node{index}")
        if self.nodes_kind == "hakv":
            proc = hakv_server(workdir, port, "--repl-diskless-sync-delay", "0", *self.node_args, *args)
        else:
            proc = redis_server(workdir, port, "--repl-diskless-sync-delay", "0", *self.node_args, *args)
        self.nodes.append(proc)
        return proc

    def start(self) -> HA:
        primary = self._node(0, free_port()).start()
        replicas = [self._node(i + 1, free_port(), "--replicaof", "127.0.0.1", str(primary.port))
                    for i in range(self.replicas)]
        # Processes of one kind start together: each Python process takes a while to boot.
        _start_together(replicas)
        # Sentinels learn replicas from the primary's INFO, polled every 10 s:
        # start them once the primary lists every replica.
        wait_until(lambda: len(_replica_lines(primary)) >= self.replicas, 20,
                   "the replicas to connect to the primary", diagnose=self.diagnose)
        for i, kind in enumerate(self.sentinel_kinds):
            self.add_sentinel(kind, i)
        _start_together(self.sentinels)
        return self

    def add_sentinel(self, kind: str, index: int | None = None) -> Proc:
        index = len(self.sentinels) if index is None else index
        port = free_port()
        workdir = os.path.join(self.root, f"sentinel{index}")
        text = sentinel_conf(port, workdir, self.nodes[0].port, quorum=self.quorum,
                             down_after=self.down_after, failover_timeout=self.failover_timeout,
                             extra=self.sentinel_extra)
        proc = sentinel_proc(kind, workdir, port, text)
        self.sentinels.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.sentinels + self.nodes:
            try:
                proc.stop()
            except Exception:  # keep stopping the others
                if proc.alive():
                    proc.proc.kill()

    # -- looking at it

    @property
    def live_sentinels(self) -> list[Proc]:
        return [s for s in self.sentinels if s.alive()]

    def sentinel_client(self, **kw) -> Sentinel:
        kw.setdefault("socket_timeout", 0.5)
        return Sentinel([("127.0.0.1", s.port) for s in self.live_sentinels], **kw)

    def node_by_port(self, port: int) -> Proc:
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(port)

    def master_port_seen_by(self, sentinel: Proc) -> int | None:
        reply = sentinel.client(socket_timeout=1).sentinel_get_master_addr_by_name(MASTER)
        return int(reply[1]) if reply else None

    def discovered(self) -> bool:
        """Every live sentinel knows every replica and every other sentinel."""
        replica_ports = {n.port for n in self.nodes[1:] if n.alive()}
        for s in self.live_sentinels:
            c = s.client(socket_timeout=1)
            replicas = {int(r["port"]) for r in c.sentinel_slaves(MASTER)}
            peers = {int(p["port"]) for p in c.sentinel_sentinels(MASTER)}
            others = {o.port for o in self.sentinels if o is not s}
            if not replica_ports <= replicas or peers != others:
                return False
        return True

    def wait_discovery(self, timeout: float = 20.0) -> None:
        wait_until(self.discovered, timeout, "sentinels to discover replicas and each other",
                   interval=0.1, diagnose=self.diagnose)

    def wait_new_master(self, old_port: int, timeout: float = 30.0) -> Proc:
        """Wait until every live sentinel names the same new master and that
        node says it is a master; returns it."""
        def agreed():
            ports = {self.master_port_seen_by(s) for s in self.live_sentinels}
            if len(ports) != 1 or old_port in ports or None in ports:
                return None
            node = self.node_by_port(ports.pop())
            return node if node.client(socket_timeout=1).info("replication")["role"] == "master" else None
        return wait_until(agreed, timeout, "the sentinels to agree on a new master",
                          interval=0.05, diagnose=self.diagnose)

    def wait_replica_of(self, node: Proc, master: Proc, timeout: float = 30.0) -> None:
        def following():
            info = node.client(socket_timeout=1).info("replication")
            return (info.get("role") == "slave" and int(info.get("master_port", 0)) == master.port
                    and info.get("master_link_status") == "up")
        wait_until(following, timeout, f"node {node.port} to replicate from {master.port}",
                   interval=0.1, diagnose=self.diagnose)

    def diagnose(self) -> str:
        out = []
        for proc in self.nodes + self.sentinels:
            text = proc.output()
            out.append(f"----- {proc.name} :{proc.port} (alive={proc.alive()}) -----\n"
                       + "\n".join(text.splitlines()[-40:]))
        return "\n".join(out)


def _start_together(procs: list[Proc]) -> None:
    for proc in procs:
        proc.start(wait=False)
    for proc in procs:
        wait_ready(proc.port, proc.proc)


def _replica_lines(node: Proc) -> list[str]:
    info = node.client(socket_timeout=1).info("replication")
    return [k for k in info if k.startswith("slave") and k[5:].isdigit()]


@pytest.fixture
def ha(tmp_path):
    """ha(**options) -> a started HA topology; everything is stopped after."""
    made: list[HA] = []

    def make(**kw) -> HA:
        topo = HA(str(tmp_path / f"ha{len(made)}"), **kw)
        made.append(topo)
        topo.start()
        return topo

    yield make
    for topo in made:
        topo.stop()


class Writer:
    """Writes k<i> = <i> through redis-py's Sentinel client in a thread,
    confirming each with WAIT 1; remembers what was confirmed and when writes
    succeeded, so a test can check nothing confirmed was lost."""

    def __init__(self, sentinel: Sentinel, wait_replicas: int = 1, wait_ms: int = 500):
        self.master = sentinel.master_for(MASTER, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.wait_replicas = wait_replicas
        self.wait_ms = wait_ms
        self.confirmed: list[int] = []
        self.ok_times: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._next = 0

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.master.connection_pool.disconnect()

    def _run(self) -> None:
        while not self._stop.is_set():
            i = self._next
            try:
                self.master.set(f"k{i}", i)
                self._next += 1
                self.ok_times.append(time.monotonic())
                if self.master.wait(self.wait_replicas, self.wait_ms) >= self.wait_replicas:
                    self.confirmed.append(i)
            except redis.exceptions.RedisError as exc:
                self.errors.append(repr(exc))
                time.sleep(0.02)
            time.sleep(0.005)

    def writes_after(self, t: float) -> int:
        return sum(1 for x in self.ok_times if x > t)


def kill(proc: Proc, sig: int = signal.SIGKILL) -> None:
    proc.proc.send_signal(sig)
    if sig == signal.SIGKILL:
        proc.proc.wait(10)
