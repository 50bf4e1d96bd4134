"""A local HA topology: 1 primary, N replicas, M sentinels as processes on
127.0.0.1, with their configs, logs and data under one directory.

The topology is described in <dir>/topology.json so that `hakv status` and
`hakv fault` find the processes that `hakv up` started.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

from hakv.lab.rpc import RpcError, call

STATE_FILE = "topology.json"


@dataclass
class Member:
    name: str
    kind: str  # "node" or "sentinel"
    port: int
    pid: int = 0

    @property
    def workdir(self) -> str:
        return self.name


@dataclass
class Topology:
    dir: str
    master_name: str = "mymaster"
    quorum: int = 2
    down_after_ms: int = 1000
    failover_timeout_ms: int = 10000
    members: list = field(default_factory=list)

    # -- description

    @classmethod
    def plan(cls, dir: str, base_port: int, sentinel_base_port: int, replicas: int = 2,
             sentinels: int = 3, **kw) -> "Topology":
        topo = cls(dir=os.path.abspath(dir), **kw)
        for i in range(1 + replicas):
            topo.members.append(Member("node%d" % (i + 1), "node", base_port + i))
        for i in range(sentinels):
            topo.members.append(Member("sentinel%d" % (i + 1), "sentinel",
                                       sentinel_base_port + i))
        return topo

    @property
    def nodes(self) -> list:
        return [m for m in self.members if m.kind == "node"]

    @property
    def sentinels(self) -> list:
        return [m for m in self.members if m.kind == "sentinel"]

    def member(self, name: str) -> Member:
        for m in self.members:
            if m.name == name or str(m.port) == name:
                return m
        raise KeyError(name)

    def save(self) -> None:
        path = os.path.join(self.dir, STATE_FILE)
        data = asdict(self)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, path)

    @classmethod
    def load(cls, dir: str) -> "Topology":
        with open(os.path.join(dir, STATE_FILE)) as f:
            data = json.load(f)
        members = [Member(**m) for m in data.pop("members")]
        return cls(members=members, **data)

    # -- configs

    def write_configs(self) -> None:
        primary = self.nodes[0]
        for m in self.members:
            d = os.path.join(self.dir, m.workdir)
            os.makedirs(d, exist_ok=True)
            path = os.path.join(d, m.kind + ".conf")
            if os.path.exists(path):
                continue  # keep rewritten state (sentinel epochs, replicaof) across runs
            if m.kind == "node":
                lines = [
                    "port %d" % m.port,
                    "bind 127.0.0.1",
                    "dir %s" % d,
                    "save 60 1000",
                    "appendonly no",
                    "repl-diskless-sync-delay 0",
                ]
                if m is not primary:
                    lines.append("replicaof 127.0.0.1 %d" % primary.port)
            else:
                lines = [
                    "port %d" % m.port,
                    "bind 127.0.0.1",
                    "dir %s" % d,
                    "sentinel monitor %s 127.0.0.1 %d %d"
                    % (self.master_name, primary.port, self.quorum),
                    "sentinel down-after-milliseconds %s %d"
                    % (self.master_name, self.down_after_ms),
                    "sentinel failover-timeout %s %d"
                    % (self.master_name, self.failover_timeout_ms),
                    "sentinel parallel-syncs %s 1" % self.master_name,
                ]
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")

    # -- processes

    def argv(self, m: Member) -> list:
        conf = os.path.join(self.dir, m.workdir, m.kind + ".conf")
        module = "hakv.common.main" if m.kind == "node" else "hakv.sentinel.main"
        return [sys.executable, "-m", module, conf]

    def start(self, m: Member) -> None:
        d = os.path.join(self.dir, m.workdir)
        log = open(os.path.join(d, m.kind + ".log"), "ab")
        proc = subprocess.Popen(self.argv(m), cwd=d, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        m.pid = proc.pid
        self.save()

    def start_all(self) -> None:
        for m in self.members:
            if not port_free(m.port):
                raise RuntimeError("port %d (%s) is in use: pick other ports with --port"
                                   % (m.port, m.name))
        self.write_configs()
        for m in self.nodes:
            self.start(m)
        wait_ports([m.port for m in self.nodes])
        # Sentinels learn replicas from the primary's INFO (polled every 10 s):
        # start them once the replicas are attached, so they see everyone at once.
        wait_replicas(self.nodes[0].port, len(self.nodes) - 1)
        for m in self.sentinels:
            self.start(m)
        wait_ports([m.port for m in self.sentinels])

    def signal(self, m: Member, sig: int) -> bool:
        if not m.pid:
            return False
        try:
            os.kill(m.pid, sig)
            return True
        except ProcessLookupError:
            return False

    def alive(self, m: Member) -> bool:
        if not m.pid:
            return False
        try:
            pid, _ = os.waitpid(m.pid, os.WNOHANG)
            if pid == m.pid:
                return False
        except ChildProcessError:
            pass
        try:
            os.kill(m.pid, 0)
        except ProcessLookupError:
            return False
        return _not_zombie(m.pid)

    def stop_all(self, timeout: float = 10.0) -> None:
        for m in self.sentinels + self.nodes:
            self.signal(m, signal.SIGCONT)
            self.signal(m, signal.SIGTERM)
        deadline = time.time() + timeout
        for m in self.members:
            while self.alive(m) and time.time() < deadline:
                time.sleep(0.05)
            if self.alive(m):
                self.signal(m, signal.SIGKILL)
            m.pid = 0
        self.save()


def _not_zombie(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_replicas(port: int, count: int, timeout: float = 20.0) -> None:
    """Until the primary at port reports `count` online replicas."""
    from hakv.lab.rpc import parse_info

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            info = parse_info(call("127.0.0.1", port, "INFO", "replication", timeout=0.5))
            online = sum(1 for k, v in info.items()
                         if k.startswith("slave") and "state=online" in v)
            if online >= count:
                return
        except (OSError, RpcError):
            pass
        time.sleep(0.1)
    raise RuntimeError("the replicas did not attach to port %d within %ds" % (port, timeout))


def wait_ports(ports: list, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    pending = list(ports)
    while pending and time.time() < deadline:
        for p in list(pending):
            try:
                call("127.0.0.1", p, "PING", timeout=0.5)
                pending.remove(p)
            except RpcError:
                pending.remove(p)  # answering with an error (LOADING) is alive
            except OSError:
                pass
        time.sleep(0.05)
    if pending:
        raise RuntimeError("not answering: ports %s" % pending)
