"""Replication between hakv and the real Redis 7.0 from Debian, both ways:
full sync under a write load (disk and diskless transfers), the stream, TTLs,
partial resyncs after a dropped link, WAIT through REPLCONF GETACK, and PSYNC2
across a promotion in a mixed topology."""

from __future__ import annotations

import time

import pytest
import redis

from replication_support import (
    WriteLoad, assert_same_contents, collection_kinds, raw_client, repl_info, seed, stats,
    wait_caught_up, wait_for, wait_link_up,
)

pytestmark = pytest.mark.interop

FAST = ("--repl-diskless-sync-delay", "0")


def replica_of(proc) -> tuple:
    return ("--replicaof", "127.0.0.1", str(proc.port))


@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_hakv_primary_real_redis_replica(make_hakv, start_redis, diskless):
    primary = make_hakv(*FAST, "--repl-diskless-sync", diskless)
    p = primary.client()
    seed(p, 3000)
    kinds = collection_kinds(p)
    with WriteLoad(primary.port, use=kinds) as load:
        wait_for(lambda: load.ops > 50)
        replica = start_redis(*replica_of(primary))
        r = replica.client()
        wait_link_up(r)
        wait_for(lambda: load.ops > 300)
    load.stop()
    wait_caught_up(p, r)
    assert assert_same_contents(p, r) > 3000
    assert "MASTER <-> REPLICA sync: Finished with success" in replica.output()
    # WAIT: the Redis replica answers our REPLCONF GETACK.
    p.set("acked", "1")
    assert p.wait(1, 5000) == 1
    # A dropped link resumes with a partial resync.
    before = stats(p)
    with WriteLoad(primary.port, use=kinds, seed_value=2) as load:
        wait_for(lambda: load.ops > 100)
        r.client_kill_filter(_type="master")
        wait_for(lambda: load.ops > 300)
    load.stop()
    wait_caught_up(p, r)
    after = stats(p)
    assert after["sync_full"] == before["sync_full"]
    assert after["sync_partial_ok"] == before["sync_partial_ok"] + 1
    assert "Successful partial resynchronization with master." in replica.output()
    assert_same_contents(p, r)


@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_real_redis_primary_hakv_replica(make_hakv, start_redis, diskless):
    primary = start_redis(*FAST, "--repl-diskless-sync", diskless)
    p = primary.client()
    seed(p, 3000)
    replica = make_hakv(*replica_of(primary))
    r = replica.client()
    kinds = collection_kinds(r)
    wait_link_up(r)
    with WriteLoad(primary.port, use=kinds) as load:
        wait_for(lambda: load.ops > 50)
        # A second replica syncs while the load runs.
        replica2 = make_hakv(*replica_of(primary), "--repl-diskless-load", "on-empty-db")
        r2 = replica2.client()
        wait_link_up(r2)
        wait_for(lambda: load.ops > 300)
    load.stop()
    wait_caught_up(p, r, r2)
    assert assert_same_contents(p, r) > 3000
    assert_same_contents(p, r2)
    assert repl_info(r)["master_replid"] == repl_info(p)["master_replid"]
    p.set("acked", "1")
    assert p.wait(2, 5000) == 2
    before = stats(p)
    r.client_kill_filter(_type="master")
    p.set("during-blip", "1")
    wait_caught_up(p, r)
    after = stats(p)
    assert after["sync_full"] == before["sync_full"]
    assert after["sync_partial_ok"] == before["sync_partial_ok"] + 1
    assert r.get("during-blip") == b"1"


def test_psync2_across_implementations(make_hakv, start_redis):
    """Redis primary P with a hakv replica H and a Redis replica D. H is
    promoted; D and then P (cut off, unchanged since) follow H with partial
    resyncs. Then D is promoted and H follows it, partially too."""
    primary = start_redis(*FAST, "--repl-ping-replica-period", "60")
    hk = make_hakv(*FAST, *replica_of(primary))
    rd = start_redis(*FAST, *replica_of(primary))
    p, h, d = primary.client(), hk.client(), rd.client()
    seed(p, 1000)
    wait_caught_up(p, h, d)
    assert h.replicaof("NO", "ONE")
    h.set("on-hakv", "1")
    d.replicaof("127.0.0.1", hk.port)
    wait_caught_up(h, d)
    p.replicaof("127.0.0.1", hk.port)
    wait_caught_up(h, p)
    assert stats(h) == {"sync_full": 0, "sync_partial_ok": 2, "sync_partial_err": 0}
    assert d.get("on-hakv") == b"1" and p.get("on-hakv") == b"1"
    assert_same_contents(h, d)
    assert_same_contents(h, p)
    # Now the other way: the Redis node is promoted, hakv follows it.
    assert d.replicaof("NO", "ONE")
    d.set("on-redis", "1")
    h.replicaof("127.0.0.1", rd.port)
    wait_caught_up(d, h)
    assert stats(d) == {"sync_full": 0, "sync_partial_ok": 1, "sync_partial_err": 0}
    assert h.get("on-redis") == b"1"
    assert_same_contents(d, h)


# ------------------------------------------------------------------ FAILOVER, SHUTDOWN


def _raw_errors(client, commands) -> list:
    out = []
    for args in commands:
        try:
            out.append(("ok", client.execute_command(*args)))
        except redis.exceptions.ResponseError as exc:
            out.append(("err", str(exc)))
    return out


def _failover_probes(replica_port) -> list:
    return [
        ("FAILOVER", "TIMEOUT", "0"), ("FAILOVER", "TIMEOUT", "-5"), ("FAILOVER", "TIMEOUT", "x"),
        ("FAILOVER", "TO", "h"), ("FAILOVER", "TO", "h", "x"), ("FAILOVER", "FOO"),
        ("FAILOVER", "FORCE", "FORCE"), ("FAILOVER", "ABORT", "TIMEOUT", "5"),
        ("FAILOVER", "ABORT"), ("FAILOVER", "TIMEOUT", "5", "TIMEOUT", "6"),
        ("FAILOVER", "TO", "127.0.0.1", "1"), ("FAILOVER", "TO", "127.0.0.1", "1", "FORCE"),
        ("FAILOVER", "TO", "127.0.0.1", str(replica_port), "FORCE"),
        ("FAILOVER", "FORCE", "TIMEOUT", "100"),
        ("SHUTDOWN", "ABORT"), ("SHUTDOWN", "SAVE", "NOSAVE"), ("SHUTDOWN", "ABORT", "NOW"),
        ("SHUTDOWN", "NOW", "BOGUS"),
    ]


def test_failover_and_shutdown_errors_match_redis(make_hakv, start_redis):
    """The same commands against hakv and Redis, without and with a replica,
    and on the replica: the same replies, byte for byte."""
    results = {}
    for kind in ("redis", "hakv"):
        make = start_redis if kind == "redis" else make_hakv
        primary = make(*FAST)
        p = raw_client(primary.client())
        before = _raw_errors(p, _failover_probes(1) + [("FAILOVER",)])
        replica = make(*replica_of(primary))
        r = raw_client(replica.client())
        wait_link_up(replica.client())
        with_replica = _raw_errors(p, _failover_probes(replica.port))
        on_replica = _raw_errors(r, [("FAILOVER",), ("FAILOVER", "ABORT")])
        results[kind] = (before, with_replica, on_replica)
    assert results["hakv"] == results["redis"]


@pytest.mark.parametrize("primary_kind, replica_kind", [("hakv", "redis"), ("redis", "hakv")])
def test_failover_across_implementations(make_hakv, start_redis, primary_kind, replica_kind):
    """FAILOVER TO a replica of the other implementation: PSYNC ... FAILOVER
    makes it the primary; the old primary and a sibling follow it, partially."""
    make = {"hakv": make_hakv, "redis": start_redis}
    primary = make[primary_kind](*FAST)
    target = make[replica_kind](*replica_of(primary))
    sibling = make[replica_kind](*replica_of(primary))
    p, t, s = primary.client(), target.client(), sibling.client()
    seed(p, 500)
    wait_caught_up(p, t, s)
    with WriteLoad(primary.port, pause=0.001):
        time.sleep(0.3)
        assert p.execute_command("FAILOVER", "TO", "127.0.0.1", target.port, "TIMEOUT", 10000)
        wait_for(lambda: repl_info(p)["role"] == "slave"
                 and repl_info(p)["master_failover_state"] == "no-failover",
                 what="the hand-over")
        # The load's writes now fail with -READONLY: the thread stops on its own.
    assert repl_info(t)["role"] == "master"
    assert repl_info(p)["master_port"] == target.port
    t.set("written-on-new-primary", "1")
    wait_caught_up(t, p)
    wait_for(lambda: s.get("written-on-new-primary") == b"1", what="the sibling")
    assert stats(t)["sync_full"] == 0  # the old primary continued with a partial resync
    assert_same_contents(t, p)
    assert_same_contents(t, s)
