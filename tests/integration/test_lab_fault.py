"""`hakv fault` on a `hakv up` topology (lab/faults.py LocalBackend, lab/proxy.py):
the same scenarios as the compose tests, without Docker.

* kill the primary: redis-py's Sentinel client finds the new primary and writes;
* stop then cont the primary: it comes back as a replica, with no diverging history;
* partition the primary from everyone: with min-replicas-to-write 1 it stops
  accepting writes, a replica is promoted, and no WAIT-acknowledged write is
  lost after heal;
* the partition itself: established connections hang without a reset, new
  ones get no answer, heal lets the held bytes through.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import redis
from redis.sentinel import Sentinel

from hakv.lab.faults import LocalBackend
from hakv.lab.topology import Topology
from hakv.lab.topology import free_port_run as free_run
from sentinel_support import MASTER, Writer, wait_until


def hakv_cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hakv.lab.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def start_topology(path: str, *extra: str) -> LocalBackend:
    run = hakv_cli("up", "--once", "--keep", "--dir", path, "--port", str(free_run(3)),
                   "--sentinel-port", str(free_run(3)), *extra)
    assert run.returncode == 0, run.stdout + run.stderr
    backend = LocalBackend(path)
    wait_settled(backend, "node1")
    return backend


def sentinel_view(backend: LocalBackend, sentinel: str) -> dict:
    reply = backend.call(sentinel, "SENTINEL", "MASTER", MASTER)
    return {k.decode(): v.decode() for k, v in zip(reply[::2], reply[1::2])}


def wait_settled(backend: LocalBackend, primary: str, replicas: int = 2,
                 timeout: float = 30) -> None:
    """Every sentinel names `primary`, knows `replicas` replicas and the other sentinels."""
    def settled():
        for s in backend.sentinels():
            v = sentinel_view(backend, s)
            if (backend.member_at(v["ip"], v["port"]) != primary
                    or int(v["num-slaves"]) < replicas or int(v["num-other-sentinels"]) != 2
                    or "down" in v["flags"]):
                return False
        return True
    wait_until(settled, timeout, "the sentinels to settle on %s" % primary, interval=0.1,
               diagnose=lambda: diagnose(backend))


def diagnose(backend: LocalBackend) -> str:
    out = []
    for m in backend.topo.members:
        path = os.path.join(backend.dir, m.workdir, m.kind + ".log")
        try:
            with open(path) as f:
                lines = f.read().splitlines()[-25:]
        except OSError:
            lines = []
        out.append("----- %s -----\n%s" % (m.name, "\n".join(lines)))
    return "\n".join(out)


def node_client(backend: LocalBackend, name: str, **kw) -> redis.Redis:
    """A client at the member's private address (bypasses partitions: an observer)."""
    host, port = backend.observe_address(name)
    kw.setdefault("socket_timeout", 2)
    return redis.Redis(host=host, port=port, **kw)


def sentinel_client(backend: LocalBackend) -> Sentinel:
    return Sentinel(backend.sentinel_addresses(), socket_timeout=0.5)


def wait_primary_other_than(backend: LocalBackend, old: str, timeout: float = 30) -> str:
    def agreed():
        names = {backend.member_at(*backend.call(s, "SENTINEL", "GET-MASTER-ADDR-BY-NAME",
                                                 MASTER)) for s in backend.sentinels()}
        if len(names) != 1:
            return None
        name = names.pop()
        if name == old or name is None:
            return None
        return name if node_client(backend, name).info("replication")["role"] == "master" \
            else None
    return wait_until(agreed, timeout, "a new primary", interval=0.1,
                      diagnose=lambda: diagnose(backend))


def wait_replica_of(backend: LocalBackend, node: str, primary: str, timeout: float = 30) -> None:
    def following():
        info = node_client(backend, node).info("replication")
        return (info["role"] == "slave" and info.get("master_link_status") == "up"
                and backend.member_at(info["master_host"], info["master_port"]) == primary)
    wait_until(following, timeout, "%s to replicate from %s" % (node, primary), interval=0.1,
               diagnose=lambda: diagnose(backend))


@pytest.fixture
def topo_path(tmp_path):
    path = str(tmp_path / "topo")
    yield path
    if os.path.exists(os.path.join(path, "topology.json")):
        Topology.load(path).stop_all()


def fault(path: str, verb: str, node: str) -> str:
    run = hakv_cli("fault", verb, node, "--dir", path, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


# ---------------------------------------------------------------------------


def test_fault_help_and_errors(topo_path):
    run = hakv_cli("fault", "--help")
    assert run.returncode == 0
    for verb in ("kill", "stop", "cont", "restart", "partition", "heal", "primary"):
        assert verb in run.stdout
    run = hakv_cli("fault", "kill", "node1", "--dir", topo_path)
    assert run.returncode == 1 and "no topology" in run.stderr


@pytest.mark.slow
def test_kill_primary_then_sentinel_client_writes_to_the_new_one(topo_path):
    backend = start_topology(topo_path)
    sentinel = sentinel_client(backend)
    master = sentinel.master_for(MASTER, socket_timeout=0.5, socket_connect_timeout=0.5)
    master.set("before", "1")
    old_pid = backend.pid("node1")

    out = fault(topo_path, "kill", "primary")          # "primary" resolves to node1
    assert "kill node1" in out and "SIGKILL pid %d" % old_pid in out
    logged = backend.fault_log()
    assert [(e.verb, e.member, e.role) for e in logged] == [("kill", "node1", "master")]
    assert abs(logged[0].at - time.time()) < 30

    new = wait_primary_other_than(backend, "node1")
    assert new in ("node2", "node3")

    def write():
        master.set("after", "2")
        return True
    wait_until(write, 20, "a write through redis-py's Sentinel client")
    assert sentinel.discover_master(MASTER) == backend.address(new)
    c = node_client(backend, new)
    assert c.get("before") == b"1" and c.get("after") == b"2"

    # restart: the old primary comes back, and the sentinels make it a replica
    out = fault(topo_path, "restart", "node1")
    assert "restart node1" in out and backend.pid("node1") != old_pid
    wait_replica_of(backend, "node1", new)
    wait_until(lambda: node_client(backend, "node1").get("after") == b"2", 10,
               "node1 to catch up")


@pytest.mark.slow
def test_stop_then_cont_primary_comes_back_as_replica_without_divergence(topo_path):
    backend = start_topology(topo_path)
    sentinel = sentinel_client(backend)
    master = sentinel.master_for(MASTER, socket_timeout=0.5, socket_connect_timeout=0.5)
    for i in range(50):
        master.set("pre%d" % i, i)

    fault(topo_path, "stop", "primary")
    new = wait_primary_other_than(backend, "node1")
    wait_until(lambda: master.set("post", "x"), 20, "a write on the new primary")
    fault(topo_path, "cont", "node1")

    # node1 wakes up believing it is the primary; the sentinels turn it into a replica
    wait_replica_of(backend, "node1", new, timeout=40)
    old, cur = node_client(backend, "node1"), node_client(backend, new)
    wait_until(lambda: old.info("replication")["slave_repl_offset"]
               == cur.info("replication")["master_repl_offset"], 15, "node1 to catch up")
    # one history: node1 follows the new primary's replication id and has its data, no more
    assert old.info("replication")["master_replid"] == cur.info("replication")["master_replid"]
    assert set(old.keys("*")) == set(cur.keys("*"))
    assert old.get("post") == b"x" and old.get("pre49") == b"49"
    with pytest.raises(redis.exceptions.ReadOnlyError):
        old.set("diverge", "1")
    verbs = [(e.verb, e.member) for e in backend.fault_log()]
    assert verbs == [("stop", "node1"), ("cont", "node1")]


@pytest.mark.slow
def test_partition_primary_min_replicas_no_wait_acked_write_lost(topo_path):
    backend = start_topology(topo_path, "--node-conf", "min-replicas-to-write 1",
                             "--node-conf", "min-replicas-max-lag 2")
    sentinel = sentinel_client(backend)
    with Writer(sentinel, wait_replicas=1, wait_ms=200) as writer:
        wait_until(lambda: len(writer.confirmed) >= 20, 20, "WAIT-confirmed writes")
        out = fault(topo_path, "partition", "primary")
        assert "partition node1" in out
        assert backend.partitioned() == {"node1"}
        # clients cannot reach the old primary any more: no answer, no reset
        with pytest.raises(redis.exceptions.TimeoutError):
            redis.Redis(*backend.address("node1"), socket_timeout=0.5,
                        socket_connect_timeout=0.5).ping()
        # seen from inside (its private address), it soon refuses writes: no replica acks
        old = node_client(backend, "node1")

        def refuses():
            try:
                old.set("split-brain", "1")
                return False
            except redis.exceptions.ResponseError as exc:
                return "NOREPLICAS" in str(exc)
        wait_until(refuses, 15, "the partitioned primary to refuse writes")
        new = wait_primary_other_than(backend, "node1")
        cut_at = time.monotonic()
        wait_until(lambda: writer.writes_after(cut_at) >= 10, 20, "writes on the new primary")
        fault(topo_path, "heal", "node1")
        assert backend.partitioned() == set()
        wait_replica_of(backend, "node1", new, timeout=40)
    assert old.get("split-brain") is None
    confirmed = writer.confirmed
    assert len(confirmed) >= 30
    cur = node_client(backend, new)
    values = cur.mget(["k%d" % i for i in confirmed])
    lost = [i for i, v in zip(confirmed, values) if v is None]
    assert lost == [], "WAIT-acknowledged writes lost: %s" % lost[:20]
    # and the healed old primary holds the same
    wait_until(lambda: old.info("replication")["slave_repl_offset"]
               == cur.info("replication")["master_repl_offset"], 15, "node1 to catch up")
    assert old.mget(["k%d" % i for i in confirmed]) == values


@pytest.mark.slow
def test_partition_freezes_established_connections_without_reset(topo_path):
    backend = start_topology(topo_path)
    host, port = backend.address("node2")
    sock = socket.create_connection((host, port), timeout=5)
    sock.sendall(b"PING\r\n")
    assert sock.recv(100) == b"+PONG\r\n"

    fault(topo_path, "partition", "node2")
    sock.settimeout(0.5)
    sock.sendall(b"ECHO held\r\n")
    with pytest.raises(socket.timeout):  # hangs: no reply, no RST, no FIN
        sock.recv(100)
    fresh = socket.create_connection((host, port), timeout=2)  # accepted, never answered
    fresh.settimeout(0.5)
    fresh.sendall(b"PING\r\n")
    with pytest.raises(socket.timeout):
        fresh.recv(100)
    # the replica's own link to the primary is cut too: the primary loses it
    primary = node_client(backend, "node1")
    def lagging():
        info = primary.info("replication")
        mine = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)
                and int(v["port"]) == port]
        return not mine or int(mine[0]["lag"]) >= 2
    wait_until(lagging, 15, "the primary to stop hearing from node2")

    fault(topo_path, "heal", "node2")
    sock.settimeout(5)
    assert sock.recv(100) == b"$4\r\nheld\r\n"     # the held command went through
    with pytest.raises((ConnectionResetError, ConnectionError, socket.timeout)):
        fresh.settimeout(5)
        if fresh.recv(100) == b"":
            raise ConnectionError("closed")
    sock.close()
    fresh.close()
    wait_replica_of(backend, "node2", "node1")
    log = [json.loads(line)["verb"] for line in open(os.path.join(topo_path, "faults.jsonl"))]
    assert log == ["partition", "heal"]
