"""The compose demo (compose.yaml) on a real Docker engine: readiness of `up --wait`,
failovers seen by clients on the host and in the compose network, a frozen and a
partitioned primary that come back without diverging history, restarts that keep
data and sentinel identity, and a `down -v` that leaves nothing behind.

Topology: node1 (primary), node2, node3 (replicas), sentinel1..3; down-after 1000 ms,
min-replicas-to-write 1 / min-replicas-max-lag 3 on every node.
"""
from __future__ import annotations

import re
import time

import pytest
import redis

from compose_support import (MASTER, PublishedSentinel, compose, leftovers, record,
                             wait_until)
from sentinel_support import Writer

pytestmark = [pytest.mark.compose, pytest.mark.slow, pytest.mark.timeout(600)]

NODES = ["node1", "node2", "node3"]
SENTINELS = ["sentinel1", "sentinel2", "sentinel3"]


def test_up_wait_returns_a_ready_topology_and_down_removes_everything(project, compose_image):
    # Checked at once, without waiting: `up --wait` must only return when this holds.
    primary = project.node("node1").info("replication")
    assert primary["role"] == "master"
    assert primary["connected_slaves"] == 2
    for replica in ("node2", "node3"):
        info = project.node(replica).info("replication")
        assert info["role"] == "slave" and info["master_host"] == "node1", info
        assert info["master_link_status"] == "up" and not int(info["master_sync_in_progress"])
    for s in SENTINELS:
        c = project.sentinel(s)
        master = c.sentinel_master(MASTER)
        assert master["ip"] == "node1" and master["port"] == 6379
        assert master["num-slaves"] == 2 and master["num-other-sentinels"] == 2, master
        # Everyone is known by service name (announce-hostnames, replica-announce-ip,
        # sentinel announce-ip), never by a container IP that a restart changes.
        assert sorted(r["ip"] for r in c.sentinel_slaves(MASTER)) == ["node2", "node3"]
        others = sorted(p["ip"] for p in c.sentinel_sentinels(MASTER))
        assert others == sorted(set(SENTINELS) - {s})
    # Both replicas are really there: a write is acknowledged by two.
    p = project.node("node1")
    p.set("ready", "yes")
    assert p.wait(2, 2000) == 2
    # A host client through the sentinels' published ports.
    master = PublishedSentinel(project.backend).master_for(MASTER, socket_timeout=1)
    assert master.get("ready") == b"yes"
    master.connection_pool.disconnect()

    started = time.monotonic()
    compose(project.name, "--profile", "demo", "down", "-v", "--remove-orphans", "-t", "10")
    took = time.monotonic() - started
    record("down -v (in test)", took)
    assert leftovers(compose_image, project.name) == {"containers": [], "networks": [],
                                                      "volumes": []}
    # SIGTERM reaches the processes (init: true): no 10 s grace period per container
    # (which would make it 20 s: sentinels, then nodes).
    assert took < 9.5, "down took %.1f s" % took


def test_killed_primary_host_and_container_clients_find_the_new_one(project):
    backend = project.backend
    host_sentinel = PublishedSentinel(backend)
    master = host_sentinel.master_for(MASTER, socket_timeout=0.5, socket_connect_timeout=0.5)
    master.set("before", "1")
    assert master.wait(1, 2000) >= 1
    old = project.wait_primary()
    assert old == "node1"
    # The demo profile's writer (README: up, kill the primary, watch the writer's log).
    project.compose("--profile", "demo", "up", "-d", "--no-build", "writer")
    writer_log = lambda: project.compose("logs", "--no-color", "writer").stdout  # noqa: E731
    wait_until(lambda: "ok    demo:3 -> node1:6379" in writer_log(), 30,
               "the demo writer to write to node1")

    event = backend.kill(old)  # event.at: when the kill was sent (the API returns later)
    assert event.verb == "kill" and event.role == "master"

    def host_write():
        try:
            master.set("after-kill-host", "1")
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.ReadOnlyError):
            return None
        return host_sentinel.discover_master(MASTER)

    addr = wait_until(host_write, 30, "the host client to write to a new primary",
                      interval=0.05, diagnose=project.diagnose)
    record("kill -> host client wrote to new primary", time.time() - event.at)
    new = backend.member_at(*addr)
    assert new in ("node2", "node3"), addr
    assert project.wait_primary(exclude=old) == new

    # The writer logged its failures, the new primary, and when writes worked again.
    log = wait_until(lambda: (lambda text: text if "back: writes work again" in text
                              else None)(writer_log()), 30, "the demo writer to recover")
    assert "FAIL  demo:" in log and "primary is now %s:6379 (was node1:6379)" % new in log, log
    gap = re.search(r"writes work again after ([0-9.]+) s", log)
    record("kill -> demo writer (in network) writes again", float(gap.group(1)))

    # A client in another container of the network, by service name.
    out = project.run_client(CONTAINER_CLIENT)
    assert "PRIMARY %s 6379" % new in out, out
    data = project.node(new).mget("before", "after-kill-host", "after-kill-container")
    assert data == [b"1", b"1", b"container"]

    # The killed node comes back (same volume and config) as a replica of the new one.
    backend.restart(old)
    project.wait_replica_of(old, new)
    wait_until(lambda: project.dataset(old) == project.dataset(new), 20,
               "the restarted node to hold the new primary's data")


CONTAINER_CLIENT = """
import time
from redis.sentinel import Sentinel
s = Sentinel([("sentinel1", 26379), ("sentinel2", 26379), ("sentinel3", 26379)],
             socket_timeout=0.5)
deadline = time.time() + 30
while True:
    try:
        m = s.master_for("mymaster", socket_timeout=0.5, socket_connect_timeout=0.5)
        m.set("after-kill-container", "container")
        break
    except Exception as exc:
        if time.time() > deadline:
            raise
        time.sleep(0.1)
print("PRIMARY", *s.discover_master("mymaster"))
"""


def test_paused_primary_comes_back_as_a_replica_without_diverging(project):
    backend = project.backend
    host_sentinel = PublishedSentinel(backend)
    master = host_sentinel.master_for(MASTER, socket_timeout=0.5, socket_connect_timeout=0.5)
    for i in range(20):
        master.set("pre%d" % i, i)
    assert master.wait(2, 2000) == 2
    old = project.wait_primary()
    stale = project.node(old, socket_timeout=5)  # a client that keeps talking to it
    stale.ping()

    backend.stop(old)
    paused_at = time.monotonic()
    new = project.wait_primary(exclude=old)

    def write_new():
        try:
            master.set("during-pause", "1")
            return master.wait(1, 1000) >= 1
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.ReadOnlyError):
            return False
    wait_until(write_new, 20, "a confirmed write on the new primary %s" % new)
    # Frozen longer than min-replicas-max-lag: when it thaws, its replicas' last acks
    # are too old, so it refuses writes even before the sentinels demote it.
    time.sleep(max(0.0, 4.0 - (time.monotonic() - paused_at)))
    backend.cont(old)
    with pytest.raises(redis.exceptions.ResponseError) as refused:
        stale.set("stale-write", "lost?")
    assert str(refused.value).startswith(("NOREPLICAS", "READONLY")), refused.value

    project.wait_replica_of(old, new)
    project.node(new).set("after-thaw", "1")
    wait_until(lambda: project.dataset(old) == project.dataset(new), 20,
               "%s to hold exactly the new primary's data" % old)
    old_info = project.node(old).info("replication")
    new_info = project.node(new).info("replication")
    assert old_info["master_replid"] == new_info["master_replid"]
    data = project.dataset(new)
    assert b"stale-write" not in data and data[b"during-pause"] == b"1"
    assert all(data[b"pre%d" % i] == str(i).encode() for i in range(20))


def test_partitioned_primary_stops_writes_and_no_acked_write_is_lost(project):
    backend = project.backend
    with Writer(PublishedSentinel(backend), wait_replicas=1, wait_ms=500) as writer:
        wait_until(lambda: len(writer.confirmed) >= 20, 20, "confirmed writes before the cut")
        old = project.wait_primary()
        backend.partition(old)
        cut_at = time.monotonic()
        assert backend.partitioned() == {old}

        # Cut off from its replicas, the old primary refuses writes once their acks are
        # older than min-replicas-max-lag (asked from inside its own container).
        def refuses():
            ok, text = project.exec_call(old, "SET", "written-while-cut", "x")
            return not ok and text.startswith("NOREPLICAS")
        wait_until(refuses, 15, "the cut-off primary to refuse writes", interval=0.3)
        record("partition -> old primary refuses writes", time.monotonic() - cut_at)

        new = project.wait_primary(exclude=old)
        before_heal = len(writer.confirmed)
        wait_until(lambda: len(writer.confirmed) >= before_heal + 20, 30,
                   "confirmed writes on the new primary %s" % new,
                   diagnose=project.diagnose)
        backend.heal(old)
        project.wait_replica_of(old, new)
        wait_until(lambda: len(writer.confirmed) >= before_heal + 40, 30,
                   "writes after the heal")
    confirmed = list(writer.confirmed)

    data = project.dataset(new)
    lost = [i for i in confirmed if data.get(b"k%d" % i) != str(i).encode()]
    assert not lost, "WAIT-acknowledged writes lost: %s" % lost[:20]
    assert b"written-while-cut" not in data
    wait_until(lambda: project.dataset(old) == project.dataset(new), 20,
               "the healed node to hold exactly the new primary's data")
    assert project.dataset(old).get(b"written-while-cut") is None


def test_restarted_topology_keeps_data_roles_and_sentinel_identity(project):
    # A failover first, so that there are epochs to keep and node1 is no longer primary.
    s1 = project.sentinel("sentinel1")
    s1.execute_command("SENTINEL", "FAILOVER", MASTER)
    new = project.wait_primary(exclude="node1")
    wait_until(lambda: all(project.primary_seen_by(s) == new for s in SENTINELS), 20,
               "every sentinel to follow the failover")
    project.wait_replica_of("node1", new)
    primary = project.node(new)
    for i in range(50):
        primary.set("persist%d" % i, i)
    assert primary.wait(2, 3000) == 2
    before = {s: (project.sentinel(s).execute_command("SENTINEL", "MYID"),
                  project.sentinel(s).sentinel_master(MASTER)["config-epoch"])
              for s in SENTINELS}
    assert all(epoch >= 1 for _, epoch in before.values())

    started = time.monotonic()
    compose(project.name, "stop", "-t", "10")
    record("stop (whole topology)", time.monotonic() - started)
    started = time.monotonic()
    compose(project.name, "up", "--wait", "--wait-timeout", "240", "--no-build")
    record("up --wait (restart, after a failover)", time.monotonic() - started)

    after = {s: (project.sentinel(s).execute_command("SENTINEL", "MYID"),
                 project.sentinel(s).sentinel_master(MASTER)["config-epoch"])
             for s in SENTINELS}
    assert after == before
    assert project.wait_primary() == new
    # Every node was stopped: the data came back from the volumes.
    for node in NODES:
        data = project.dataset(node)
        assert all(data.get(b"persist%d" % i) == str(i).encode() for i in range(50)), node
