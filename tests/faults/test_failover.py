"""Failovers of hakv nodes driven by hakv sentinels, with real faults:
kill -9 and SIGSTOP of the primary, a manual SENTINEL FAILOVER, and a
minority of sentinels that must not be able to fail over.

Topology: 1 primary + 2 replicas (hakv-server) + 3 hakv-sentinels with
down-after 1000 ms; clients go through redis-py's Sentinel.
"""
from __future__ import annotations

import threading
import time

import pytest
import redis

from sentinel_support import MASTER, Writer, ha, kill, wait_until  # noqa: F401


def _dataset(node) -> dict:
    c = node.client(socket_timeout=5)
    keys = sorted(c.scan_iter(count=1000))
    return dict(zip(keys, c.mget(keys))) if keys else {}


def _wait_same_data(a, b, timeout: float = 20.0) -> dict:
    def same():
        left = _dataset(a)
        return left if left == _dataset(b) else None
    return wait_until(same, timeout, f"nodes {a.port} and {b.port} to hold the same data")


class EventListener:
    """Collects the messages a sentinel publishes on its own pub/sub."""

    def __init__(self, sentinel_proc, pattern: str = "*"):
        self.client = sentinel_proc.client(socket_timeout=5)
        self.pubsub = self.client.pubsub()
        self.pubsub.psubscribe(pattern)
        self.messages: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.pubsub.get_message(timeout=0.1)
            except redis.exceptions.RedisError:
                return
            if msg and msg["type"] == "pmessage":
                self.messages.append((msg["channel"].decode(), msg["data"].decode()))

    def seen(self, channel: str) -> list[str]:
        return [data for ch, data in self.messages if ch == channel]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.pubsub.close()
        self.client.close()


@pytest.mark.slow
def test_kill_primary_failover_keeps_confirmed_writes_and_old_primary_rejoins(ha):
    topo = ha()
    topo.wait_discovery()
    old = topo.nodes[0]
    # discovery: every sentinel lists both replicas and the two other sentinels
    for s in topo.sentinels:
        c = s.client()
        assert {int(r["port"]) for r in c.sentinel_slaves(MASTER)} == {n.port for n in topo.nodes[1:]}
        assert len(c.sentinel_sentinels(MASTER)) == 2
        assert c.sentinel_master(MASTER)["port"] == old.port
    events = EventListener(topo.sentinels[0])
    try:
        with Writer(topo.sentinel_client()) as writer:
            wait_until(lambda: len(writer.confirmed) >= 20, 10, "confirmed writes before the kill")
            kill(old)
            killed_at = time.monotonic()
            new = topo.wait_new_master(old.port)
            wait_until(lambda: writer.writes_after(killed_at) >= 20, 20, "writes after the failover",
                       diagnose=topo.diagnose)
        # +switch-master <name> <old ip> <old port> <new ip> <new port>
        wait_until(lambda: events.seen("+switch-master"), 5, "+switch-master on the sentinel's pub/sub")
        assert events.seen("+switch-master")[0] == \
            f"{MASTER} 127.0.0.1 {old.port} 127.0.0.1 {new.port}"
    finally:
        events.close()
    data = new.client()
    lost = [i for i in writer.confirmed if data.get(f"k{i}") != str(i).encode()]
    assert not lost, f"writes confirmed with WAIT 1 were lost: {lost[:20]}"
    other = next(n for n in topo.nodes[1:] if n is not new)
    topo.wait_replica_of(other, new)
    # the old primary comes back (empty, as a master); the sentinels demote it
    old.start()
    topo.wait_replica_of(old, new, timeout=40)
    _wait_same_data(old, new)
    assert old.client().get(f"k{writer.confirmed[-1]}") == str(writer.confirmed[-1]).encode()


@pytest.mark.slow
def test_frozen_primary_is_demoted_and_drops_its_diverging_writes(ha):
    topo = ha()
    topo.wait_discovery()
    old = topo.nodes[0]
    stale = old.client(socket_timeout=5)
    stale.ping()  # a client that stays on the old primary through the freeze
    with Writer(topo.sentinel_client()) as writer:
        wait_until(lambda: len(writer.confirmed) >= 20, 10, "confirmed writes before the freeze")
        old.pause()
        frozen_at = time.monotonic()
        try:
            new = topo.wait_new_master(old.port)
            wait_until(lambda: writer.writes_after(frozen_at) >= 20, 20, "writes after the failover")
        finally:
            old.resume()
        # woken up, it still believes it is the primary (sentinels demote a
        # master that reappears only after 4 hello periods): it accepts a write
        assert stale.set("diverged", "yes")
        topo.wait_replica_of(old, new, timeout=40)
    data = _wait_same_data(old, new)
    assert b"diverged" not in data
    info_old, info_new = old.client().info("replication"), new.client().info("replication")
    assert info_old["master_replid"] == info_new["master_replid"]
    lost = [i for i in writer.confirmed if data.get(f"k{i}".encode()) != str(i).encode()]
    assert not lost, f"writes confirmed with WAIT 1 were lost: {lost[:20]}"


@pytest.mark.slow
def test_manual_failover_promotes_a_replica_and_demotes_the_primary(ha, tmp_path):
    calls = tmp_path / "reconfig-calls"
    script = tmp_path / "reconfig.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    script.chmod(0o755)
    topo = ha(sentinel_extra=(f"sentinel client-reconfig-script {MASTER} {script}",))
    topo.wait_discovery()
    old = topo.nodes[0]
    old.client().set("before", "1")
    assert topo.sentinels[1].client().sentinel_failover(MASTER)
    new = topo.wait_new_master(old.port)
    # client-reconfig-script: <master> <role> <state> <from-ip> <from-port> <to-ip> <to-port>
    wait_until(lambda: calls.exists() and len(calls.read_text().splitlines()) == 3, 10,
               "the client-reconfig-script of the 3 sentinels")
    lines = sorted(calls.read_text().splitlines())
    move = f"start 127.0.0.1 {old.port} 127.0.0.1 {new.port}"
    assert lines == [f"{MASTER} leader {move}", f"{MASTER} observer {move}", f"{MASTER} observer {move}"]
    assert new.client().get("before") == b"1"
    master = topo.sentinels[1].client().sentinel_master(MASTER)
    assert master["config-epoch"] >= 1
    topo.wait_replica_of(old, new, timeout=40)
    new.client().set("after", "2")
    wait_until(lambda: old.client().get("after") == b"2", 10, "the demoted primary to replicate")


def test_minority_of_sentinels_cannot_fail_over(ha):
    # quorum 1: the lone survivor reaches ODOWN by itself, but it still
    # needs a majority of the 3 sentinels to be elected, and never gets it.
    topo = ha(quorum=1)
    topo.wait_discovery()
    survivor = topo.sentinels[0]
    for s in topo.sentinels[1:]:
        kill(s)
    old = topo.nodes[0]
    kill(old)
    c = survivor.client()
    wait_until(lambda: "o_down" in c.sentinel_master(MASTER)["flags"], 10, "ODOWN on the survivor",
               diagnose=topo.diagnose)
    time.sleep(3)  # room for an (illegal) election and promotion
    assert topo.master_port_seen_by(survivor) == old.port
    for node in topo.nodes[1:]:
        assert node.client().info("replication")["role"] == "slave"
    log = survivor.output()
    assert "+try-failover" in log and "+elected-leader" not in log
    assert c.sentinel_master(MASTER)["config-epoch"] == 0


@pytest.mark.slow
def test_sentinel_crash_after_promotion_still_completes(ha):
    """SENTINEL SIMULATE-FAILURE: the leader dies right after promoting,
    before telling anyone; the others wait out 2 x failover-timeout, elect
    a new leader among themselves and finish, and clients find the primary."""
    topo = ha(failover_timeout=3000)
    topo.wait_discovery()
    for s in topo.sentinels:
        s.client().execute_command("SENTINEL", "SIMULATE-FAILURE", "CRASH-AFTER-PROMOTION")
    old = topo.nodes[0]
    kill(old)
    crashed = wait_until(lambda: [s for s in topo.sentinels if not s.alive()], 20,
                         "a leader to crash after promoting", diagnose=topo.diagnose)
    assert len(crashed) == 1 and crashed[0].proc.returncode == 99
    for s in topo.sentinels:
        if s.alive():
            s.client().execute_command("SENTINEL", "SIMULATE-FAILURE", "HELP")  # clears the flags
    new = topo.wait_new_master(old.port, timeout=40)
    master = topo.sentinel_client().master_for(MASTER, socket_timeout=1)
    wait_until(lambda: master.set("after-crash", "1"), 10, "a write through the sentinels")
    assert new.client().get("after-crash") == b"1"

