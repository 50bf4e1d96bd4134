"""A local HA topology: 1 primary, N replicas, M sentinels as processes on
127.0.0.1, with their configs, logs and data under one directory.

The topology is described in <dir>/topology.json so that `hakv status` and
`hakv fault` find the processes that `hakv up` started.

Proxied (the default): every member really listens on a private loopback
address of its own (127.0.0.11, .12, ...) and connects out from it
(bind-source-addr); its public address 127.0.0.1:PORT, which everyone uses
and announces, is served by the proxy helper (lab/proxy.py), which can cut
partitions (see lab/faults.py). `proxied=False` puts the members directly on
127.0.0.1 (no partitions). `impl="redis"` runs Debian's redis-server and
redis-sentinel with the same configs (the failover benchmark's oracle).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields

from hakv.lab.rpc import RpcError, call

STATE_FILE = "topology.json"
PROXY_CONFIG = "proxy.json"
PROXY_CONTROL = "proxy.control"
PUBLIC_HOST = "127.0.0.1"
REDIS_SERVER = "/usr/bin/redis-server"
REDIS_SENTINEL = "/usr/bin/redis-sentinel"


def private_ip(index: int) -> str:
    """The private loopback address of the index-th member (all of 127/8 is loopback)."""
    return "127.0.0.%d" % (11 + index)


@dataclass
class Member:
    name: str
    kind: str  # "node" or "sentinel"
    port: int
    pid: int = 0
    ip: str = PUBLIC_HOST   # where the process listens and connects from

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
    impl: str = "hakv"            # or "redis": Debian's redis-server / redis-sentinel
    proxied: bool = True          # members behind the partition-capable proxies
    proxy_pid: int = 0
    node_conf: list = field(default_factory=list)      # extra redis.conf lines
    sentinel_conf: list = field(default_factory=list)  # extra sentinel.conf lines

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
        if topo.proxied:
            for i, m in enumerate(topo.members):
                m.ip = private_ip(i)
        return topo

    @property
    def nodes(self) -> list:
        return [m for m in self.members if m.kind == "node"]

    @property
    def sentinels(self) -> list:
        return [m for m in self.members if m.kind == "sentinel"]

    def public_address(self, m: Member) -> tuple:
        return (PUBLIC_HOST, m.port)

    def private_address(self, m: Member) -> tuple:
        return (m.ip, m.port)

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
        known = {f.name for f in fields(Member)}
        members = [Member(**{k: v for k, v in m.items() if k in known})
                   for m in data.pop("members")]
        known = {f.name for f in fields(cls)}
        return cls(members=members, **{k: v for k, v in data.items() if k in known})

    def refresh(self) -> None:
        """Take the pids from the state file: `hakv fault restart` may have
        started members again from another process."""
        try:
            fresh = Topology.load(self.dir)
        except (OSError, ValueError):
            return
        pids = {m.name: m.pid for m in fresh.members}
        for m in self.members:
            m.pid = pids.get(m.name, m.pid)
        self.proxy_pid = fresh.proxy_pid or self.proxy_pid

    # -- configs

    def write_configs(self) -> None:
        primary = self.nodes[0]
        for m in self.members:
            d = os.path.join(self.dir, m.workdir)
            os.makedirs(d, exist_ok=True)
            path = os.path.join(d, m.kind + ".conf")
            if os.path.exists(path):
                continue  # keep rewritten state (sentinel epochs, replicaof) across runs
            # Behind the proxies, a member listens on and connects from its private
            # address, and announces the public one that the proxy serves.
            own = ["bind %s" % m.ip, "protected-mode no"]
            if self.proxied:
                own.append("bind-source-addr %s" % m.ip)
            if m.kind == "node":
                lines = [
                    "port %d" % m.port,
                    *own,
                    "dir %s" % d,
                    "save 60 1000",
                    "appendonly no",
                    "repl-diskless-sync-delay 0",
                ]
                if self.proxied:
                    lines += ["replica-announce-ip %s" % PUBLIC_HOST,
                              "replica-announce-port %d" % m.port]
                if m is not primary:
                    lines.append("replicaof %s %d" % (PUBLIC_HOST, primary.port))
                lines += list(self.node_conf)
            else:
                lines = [
                    "port %d" % m.port,
                    *own,
                    "dir %s" % d,
                ]
                if self.proxied:
                    lines += ["sentinel announce-ip %s" % PUBLIC_HOST,
                              "sentinel announce-port %d" % m.port]
                lines += [
                    "sentinel monitor %s %s %d %d"
                    % (self.master_name, PUBLIC_HOST, primary.port, self.quorum),
                    "sentinel down-after-milliseconds %s %d"
                    % (self.master_name, self.down_after_ms),
                    "sentinel failover-timeout %s %d"
                    % (self.master_name, self.failover_timeout_ms),
                    "sentinel parallel-syncs %s 1" % self.master_name,
                ]
                lines += list(self.sentinel_conf)
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")

    # -- processes

    def argv(self, m: Member) -> list:
        conf = os.path.join(self.dir, m.workdir, m.kind + ".conf")
        if self.impl == "redis":
            return [REDIS_SERVER if m.kind == "node" else REDIS_SENTINEL, conf]
        module = "hakv.common.main" if m.kind == "node" else "hakv.sentinel.main"
        return [sys.executable, "-m", module, conf]

    # -- the proxies (lab/proxy.py)

    def start_proxy(self, timeout: float = 15.0) -> None:
        control = os.path.join(self.dir, PROXY_CONTROL)
        if os.path.exists(control):
            os.unlink(control)
        config = {
            "routes": [{"member": m.name, "listen": list(self.public_address(m)),
                        "target": list(self.private_address(m))} for m in self.members],
            "identities": {m.ip: m.name for m in self.members},
            "control_file": control,
        }
        path = os.path.join(self.dir, PROXY_CONFIG)
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
        log = open(os.path.join(self.dir, "proxy.log"), "ab")
        proc = subprocess.Popen([sys.executable, "-m", "hakv.lab.proxy", path], cwd=self.dir,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        log.close()
        self.proxy_pid = proc.pid
        self.save()
        deadline = time.time() + timeout
        while not os.path.exists(control):
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("the proxy helper did not start (see %s/proxy.log)"
                                   % self.dir)
            time.sleep(0.02)

    def proxy_control_port(self) -> int:
        """The proxy helper's control port (lab/proxy.py ProxyControl)."""
        with open(os.path.join(self.dir, PROXY_CONTROL)) as f:
            return int(json.load(f)["port"])

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
            for host in {PUBLIC_HOST, m.ip}:
                if not port_free(m.port, host):
                    raise RuntimeError("port %s:%d (%s) is in use: pick other ports with "
                                       "--port" % (host, m.port, m.name))
        self.write_configs()
        if self.proxied:
            self.start_proxy()
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
        self.refresh()
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
        if self.proxy_pid:
            proxy = Member("proxy", "proxy", 0, self.proxy_pid)
            self.signal(proxy, signal.SIGTERM)
            deadline = time.time() + 5
            while self.alive(proxy) and time.time() < deadline:
                time.sleep(0.02)
            if self.alive(proxy):
                self.signal(proxy, signal.SIGKILL)
            self.proxy_pid = 0
        self.save()

    def stop_member(self, m: Member, timeout: float = 5.0) -> None:
        """SIGTERM (after SIGCONT, in case it is frozen), SIGKILL if it lingers."""
        self.signal(m, signal.SIGCONT)
        self.signal(m, signal.SIGTERM)
        deadline = time.time() + timeout
        while self.alive(m) and time.time() < deadline:
            time.sleep(0.02)
        if self.alive(m):
            self.signal(m, signal.SIGKILL)
            while self.alive(m) and time.time() < deadline + 5:
                time.sleep(0.02)

    def restart(self, m: Member, timeout: float = 20.0) -> None:
        """Start `m` again with the same config (stopping it first if it runs);
        returns once it answers."""
        if self.alive(m):
            self.stop_member(m)
        self.start(m)
        wait_ports([m.port], timeout, host=m.ip)


def _not_zombie(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def free_port_run(count: int, members: int = 8) -> int:
    """A base port with `count` consecutive ports free on 127.0.0.1 and on the
    private addresses of the first `members` members (where the proxies put them)."""
    hosts = [PUBLIC_HOST] + [private_ip(i) for i in range(members)]
    for _ in range(200):
        with socket.socket() as s:
            s.bind((PUBLIC_HOST, 0))
            base = s.getsockname()[1]
        if base + count > 65000:
            continue
        held = []
        try:
            for port in range(base, base + count):
                for host in hosts:
                    sock = socket.socket()
                    held.append(sock)
                    sock.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError("no run of free ports")


def port_free(port: int, host: str = PUBLIC_HOST) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
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


def wait_ports(ports: list, timeout: float = 20.0, host: str = PUBLIC_HOST) -> None:
    deadline = time.time() + timeout
    pending = list(ports)
    while pending and time.time() < deadline:
        for p in list(pending):
            try:
                call(host, p, "PING", timeout=0.5)
                pending.remove(p)
            except RpcError:
                pending.remove(p)  # answering with an error (LOADING) is alive
            except OSError:
                pass
        time.sleep(0.05)
    if pending:
        raise RuntimeError("not answering: ports %s" % pending)
