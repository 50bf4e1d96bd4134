"""Replication between hakv nodes: full sync under a write load (disk and
diskless), streaming, REPLICAOF at runtime, INFO/ROLE, partial resyncs
(dropped link, restart, promotion: PSYNC2), chained replicas, WAIT,
min-replicas-to-write, read-only and stale-data rules, expiry on replicas."""

from __future__ import annotations

import random
import re
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from replication_support import (
    WriteLoad, assert_same_contents, collection_kinds, link_up, raw_client, raw_reply,
    repl_info, seed,
    stats, wait_caught_up, wait_for, wait_link_up,
)

FAST = ("--repl-diskless-sync-delay", "0")


def replica_of(primary) -> tuple:
    return ("--replicaof", "127.0.0.1", str(primary.port))


# ------------------------------------------------------------------ full sync


@pytest.mark.parametrize("diskless_sync, diskless_load", [
    ("yes", "disabled"), ("no", "disabled"), ("yes", "on-empty-db"), ("no", "swapdb"),
])
def test_full_sync_under_write_load_then_stream(make_hakv, diskless_sync, diskless_load):
    primary = make_hakv(*FAST, "--repl-diskless-sync", diskless_sync)
    p = primary.client()
    seed(p, 3000)
    kinds = collection_kinds(p)
    with WriteLoad(primary.port, use=kinds) as load:
        wait_for(lambda: load.ops > 50, what="the load to start")
        replica = make_hakv(*replica_of(primary), "--repl-diskless-load", diskless_load)
        r = replica.client()
        wait_link_up(r)
        wait_for(lambda: load.ops > 300, what="writes after the sync")
    load.stop()
    wait_caught_up(p, r)
    n = assert_same_contents(p, r)
    assert n > 3000
    assert stats(p)["sync_full"] == 1
    # Streaming after the sync.
    p.set("after", "sync")
    p.execute_command("SELECT", 0)
    wait_for(lambda: r.get("after") == b"sync", what="streamed write")


def test_two_replicas_share_one_diskless_snapshot(make_hakv):
    # A long delay, cut short when the second replica arrives (max-replicas).
    primary = make_hakv("--repl-diskless-sync-delay", "30",
                        "--repl-diskless-sync-max-replicas", "2")
    p = primary.client()
    seed(p, 500)
    r1 = make_hakv(*replica_of(primary)).client()
    r2 = make_hakv(*replica_of(primary)).client()
    wait_link_up(r1)
    wait_link_up(r2)
    wait_caught_up(p, r1, r2)
    assert stats(p)["sync_full"] == 2
    assert "Starting BGSAVE for SYNC" in primary.output()
    assert primary.output().count("Background RDB transfer started") == 1
    assert_same_contents(p, r1)
    assert_same_contents(p, r2)


def test_replica_answers_loading_during_a_long_full_sync(make_hakv):
    primary = make_hakv(*FAST, "--repl-diskless-sync", "no")
    p = primary.client()
    pipe = p.pipeline(transaction=False)
    for i in range(150_000):
        pipe.set("big:%d" % i, "x" * 20)
        if i % 10000 == 9999:
            pipe.execute()
    pipe.execute()
    replica = make_hakv()
    # No retries: redis-py retries LOADING errors by default.
    r = replica.client(retry=Retry(NoBackoff(), 0))
    r.set("stale", "data")
    r.replicaof("127.0.0.1", primary.port)
    seen = set()
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            r.get("stale")
            if link_up(r):
                break
        except redis.exceptions.BusyLoadingError:
            seen.add("loading")
        time.sleep(0.005)
    assert "loading" in seen
    wait_caught_up(p, r)
    assert r.dbsize() == 150_000 and r.get("stale") is None


# ------------------------------------------------------------------ REPLICAOF, INFO, ROLE


def test_replicaof_at_runtime_both_directions(make_hakv):
    primary = make_hakv(*FAST)
    node = make_hakv()
    p, n = primary.client(), raw_client(primary.client())
    r = raw_client(node.client())
    p.set("k", "v")
    assert r.execute_command("REPLICAOF", "127.0.0.1", primary.port) == b"OK"
    assert r.execute_command("REPLICAOF", "127.0.0.1", primary.port) == \
        b"OK Already connected to specified master"
    wait_for(lambda: r.execute_command("GET", "k") == b"v", what="sync")
    assert raw_reply(node.port, "SET", "x", "1") == (
        b"-READONLY You can't write against a read only replica.")
    assert r.execute_command("ROLE")[:4] == [b"slave", b"127.0.0.1", primary.port, b"connected"]
    role = n.execute_command("ROLE")
    assert role[0] == b"master" and role[2] == [[b"127.0.0.1", str(node.port).encode(),
                                                  str(role[2][0][2].decode()).encode()]]
    with pytest.raises(redis.exceptions.ResponseError, match="Invalid master port"):
        r.execute_command("SLAVEOF", "127.0.0.1", "notaport")
    assert r.execute_command("SLAVEOF", "NO", "ONE") == b"OK"
    assert r.execute_command("ROLE")[0] == b"master"
    assert r.execute_command("SET", "x", "1") == b"OK"
    assert r.execute_command("GET", "k") == b"v"  # the data stays
    assert "MASTER MODE enabled" in node.output()
    # And back: a replica again, its local write is gone after the resync.
    assert r.execute_command("REPLICAOF", "127.0.0.1", primary.port) == b"OK"
    wait_for(lambda: link_up(node.client()), what="link up again")
    wait_caught_up(p, node.client())
    assert r.execute_command("GET", "x") is None


INFO_REPLICA_ORDER = [
    "role", "master_host", "master_port", "master_link_status", "master_last_io_seconds_ago",
    "master_sync_in_progress", "slave_read_repl_offset", "slave_repl_offset", "slave_priority",
    "slave_read_only", "replica_announced", "connected_slaves", "master_failover_state",
    "master_replid", "master_replid2", "master_repl_offset", "second_repl_offset",
    "repl_backlog_active", "repl_backlog_size", "repl_backlog_first_byte_offset",
    "repl_backlog_histlen",
]


def _info_fields(text: bytes) -> list:
    lines = text.decode().split("\r\n")
    assert lines[0] == "# Replication"
    return [tuple(line.split(":", 1)) for line in lines[1:] if line]


def test_info_replication_format(make_hakv):
    primary = make_hakv(*FAST, "--min-replicas-to-write", "1", "--min-replicas-max-lag", "10")
    replica = make_hakv(*replica_of(primary), "--replica-priority", "42",
                        "--replica-announce-ip", "127.0.0.1")
    p, r = raw_client(primary.client()), raw_client(replica.client())
    wait_link_up(replica.client())
    p.execute_command("SET", "a", "b")
    wait_caught_up(primary.client(), replica.client())
    fields = _info_fields(r.execute_command("INFO", "replication"))
    assert [k for k, _ in fields] == INFO_REPLICA_ORDER
    rf = dict(fields)
    assert rf["role"] == "slave" and rf["master_link_status"] == "up"
    assert rf["master_port"] == str(primary.port) and rf["slave_priority"] == "42"
    pf = dict(_info_fields(p.execute_command("INFO", "replication")))
    assert pf["role"] == "master" and pf["connected_slaves"] == "1"
    assert pf["min_slaves_good_slaves"] == "1"
    assert re.fullmatch(r"ip=127\.0\.0\.1,port=%d,state=online,offset=\d+,lag=\d+" % replica.port,
                        pf["slave0"])
    assert pf["master_replid"] == rf["master_replid"] and re.fullmatch("[0-9a-f]{40}",
                                                                      pf["master_replid"])
    assert pf["master_replid2"] == "0" * 40 and pf["second_repl_offset"] == "-1"
    assert pf["master_repl_offset"] == rf["master_repl_offset"] == rf["slave_repl_offset"]
    assert pf["repl_backlog_active"] == "1" and pf["repl_backlog_first_byte_offset"] == "1"
    assert pf["repl_backlog_histlen"] == pf["master_repl_offset"]
    assert b"sync_full:1\r\nsync_partial_ok:0\r\nsync_partial_err:0" in p.execute_command(
        "INFO", "stats")
    assert p.execute_command("HELLO", "3")[b"role"] == b"master"
    assert r.execute_command("HELLO", "3")[b"role"] == b"replica" or \
        r.execute_command("HELLO", "3")[b"role"] == b"slave"
    # A replica whose primary is gone: link down since N seconds.
    primary.kill()
    wait_for(lambda: repl_info(replica.client())["master_link_status"] == "down")
    info = repl_info(replica.client())
    assert info["master_link_down_since_seconds"] >= 0
    assert info["master_last_io_seconds_ago"] == -1


# ------------------------------------------------------------------ partial resync


def test_partial_resync_after_dropped_link(make_hakv):
    primary = make_hakv(*FAST)
    replica = make_hakv(*replica_of(primary))
    p, r = primary.client(), replica.client()
    seed(p, 500)
    wait_caught_up(p, r)
    before = stats(p)
    with WriteLoad(primary.port) as load:
        for _ in range(3):
            wait_for(lambda: load.ops > 50)
            assert r.client_kill_filter(_type="master") == 1
            time.sleep(0.3)
    load.stop()
    wait_caught_up(p, r)
    after = stats(p)
    assert after["sync_full"] == before["sync_full"]
    assert after["sync_partial_ok"] >= before["sync_partial_ok"] + 3
    assert "Partial resynchronization request from" in primary.output()
    assert_same_contents(p, r)


def test_partial_resync_after_replica_restart(make_hakv):
    primary = make_hakv(*FAST)
    replica = make_hakv(*replica_of(primary))
    p, r = primary.client(), replica.client()
    seed(p, 500)
    p.execute_command("SELECT", 0)
    wait_caught_up(p, r)
    # The replica saves on shutdown (its RDB records repl-id / repl-offset).
    r.config_set("save", "3600 1")
    replica.stop()
    p.set("while-down", "1")
    p3 = redis.Redis(port=primary.port, db=3)
    p3.set("while-down-db3", "1")
    before = stats(p)
    replica.start()
    r = replica.client()
    wait_caught_up(p, r)
    after = stats(p)
    assert after["sync_full"] == before["sync_full"]
    assert after["sync_partial_ok"] == before["sync_partial_ok"] + 1
    assert r.get("while-down") == b"1"
    assert_same_contents(p, r)


def test_psync2_promoted_replica_serves_its_siblings(make_hakv):
    # A long ping period: the old primary must not write (PING) after the promotion.
    primary = make_hakv(*FAST, "--repl-ping-replica-period", "60")
    a = make_hakv(*FAST, *replica_of(primary))
    b = make_hakv(*FAST, *replica_of(primary))
    p, ra, rb = primary.client(), a.client(), b.client()
    seed(p, 1000)
    wait_caught_up(p, ra, rb)
    old_id = repl_info(p)["master_replid"]
    # Failover (the old primary is cut off, not dead): A is promoted, B follows A.
    assert ra.replicaof("NO", "ONE")
    info = repl_info(ra)
    assert info["role"] == "master" and info["master_replid"] != old_id
    assert info["master_replid2"] == old_id
    assert info["second_repl_offset"] == info["master_repl_offset"] + 1
    ra.set("written-on-a", "1")
    rb.replicaof("127.0.0.1", a.port)
    wait_caught_up(ra, rb)
    sa = stats(ra)
    assert sa["sync_full"] == 0 and sa["sync_partial_ok"] == 1
    assert rb.get("written-on-a") == b"1"
    assert repl_info(rb)["master_replid"] == repl_info(ra)["master_replid"]
    assert repl_info(rb)["master_replid2"] == old_id
    assert_same_contents(ra, rb)
    # The old primary is reconfigured as a replica of A: partial too, since it
    # wrote nothing after the promotion point.
    p.replicaof("127.0.0.1", a.port)
    wait_caught_up(ra, p)
    assert stats(ra) == {"sync_full": 0, "sync_partial_ok": 2, "sync_partial_err": 0}
    assert p.get("written-on-a") == b"1"
    assert_same_contents(ra, p)


def test_restarted_primary_keeps_its_history_as_secondary_id(make_hakv):
    primary = make_hakv(*FAST, "--save", "3600", "1")
    replica = make_hakv(*replica_of(primary))
    p, r = primary.client(), replica.client()
    seed(p, 200)
    wait_caught_up(p, r)
    # Acked too: a primary with a lagging replica asks for ACKs (REPLCONF
    # GETACK, in the stream) before it shuts down.
    wait_for(lambda: repl_info(p)["slave0"]["offset"] == repl_info(p)["master_repl_offset"])
    old = repl_info(p)
    primary.stop()  # saves on shutdown: the RDB records repl-id and repl-offset
    wait_for(lambda: not link_up(r))
    primary.start()
    p = primary.client()
    info = repl_info(p)
    assert info["master_replid2"] == old["master_replid"]
    assert info["second_repl_offset"] == old["master_repl_offset"] + 1
    wait_caught_up(p, r)
    assert stats(p)["sync_full"] == 0 and stats(p)["sync_partial_ok"] == 1
    p.set("after-restart", "1")
    wait_for(lambda: r.get("after-restart") == b"1")


def test_chained_replicas(make_hakv):
    primary = make_hakv(*FAST)
    middle = make_hakv(*FAST, *replica_of(primary))
    leaf = make_hakv(*replica_of(middle))
    p, m, lf = primary.client(), middle.client(), leaf.client()
    seed(p, 500)
    with WriteLoad(primary.port, use=collection_kinds(p)) as load:
        wait_for(lambda: load.ops > 200)
    load.stop()
    wait_caught_up(p, m)
    wait_caught_up(m, lf)
    assert repl_info(lf)["master_repl_offset"] == repl_info(p)["master_repl_offset"]
    assert repl_info(lf)["master_replid"] == repl_info(p)["master_replid"]
    assert_same_contents(p, lf)
    assert repl_info(m)["connected_slaves"] == 1
    # The middle one loses its primary: the leaf keeps its link to it.
    assert m.client_kill_filter(_type="master") == 1
    p.set("after-blip", "1")
    wait_for(lambda: lf.get("after-blip") == b"1")
    assert stats(m)["sync_full"] == 1


# ------------------------------------------------------------------ WAIT, min-replicas


def test_wait_and_min_replicas_with_a_stopped_replica(make_hakv):
    primary = make_hakv(*FAST)
    replica = make_hakv(*replica_of(primary))
    p = primary.client()
    wait_link_up(replica.client())
    p.set("a", "1")
    assert p.wait(1, 2000) == 1
    assert p.wait(2, 200) == 1  # only one replica: times out with 1
    replica.pause()
    try:
        p.set("b", "2")
        start = time.time()
        assert p.wait(1, 500) == 0
        assert 0.45 <= time.time() - start < 3
        p.config_set("min-replicas-max-lag", "2")
        p.config_set("min-replicas-to-write", "1")
        wait_for(lambda: repl_info(p).get("min_slaves_good_slaves") == 0, timeout=10)
        assert raw_reply(primary.port, "SET", "c", "3") == (
            b"-NOREPLICAS Not enough good replicas to write.")
        assert p.get("a") == b"1"  # reads still work
    finally:
        replica.resume()
    wait_for(lambda: repl_info(p).get("min_slaves_good_slaves") == 1, timeout=10)
    assert p.set("c", "3")
    assert p.wait(1, 5000) == 1
    with pytest.raises(redis.exceptions.ResponseError, match="timeout is negative"):
        p.wait(1, -1)
    with pytest.raises(redis.exceptions.ResponseError, match="WAIT cannot be used with replica"):
        replica.client().wait(0, 0)


# ------------------------------------------------------------------ replica rules


def test_stale_data_and_writable_replica(make_hakv):
    primary = make_hakv(*FAST)
    replica = make_hakv(*replica_of(primary), "--replica-serve-stale-data", "no")
    p, r = primary.client(), replica.client()
    p.set("k", "v")
    wait_caught_up(p, r)
    assert r.get("k") == b"v"
    primary.kill()
    wait_for(lambda: not link_up(r))
    assert raw_reply(replica.port, "GET", "k") == (
        b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.")
    assert r.info("replication")["master_link_status"] == "down"  # INFO is allowed while stale
    r.config_set("replica-serve-stale-data", "yes")
    assert r.get("k") == b"v"
    r.config_set("replica-read-only", "no")
    assert r.set("local", "write")
    assert repl_info(r)["slave_read_only"] == 0


def test_replica_does_not_expire_keys_itself(make_hakv):
    primary = make_hakv(*FAST)
    replica = make_hakv(*replica_of(primary))
    p, r = primary.client(), replica.client()
    wait_link_up(r)
    p.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    p.set("soon", "gone", px=100)
    wait_caught_up(p, r)
    time.sleep(0.3)
    # Logically expired: hidden from reads, but still held until the primary says DEL.
    assert r.get("soon") is None
    assert r.dbsize() == 1
    before = repl_info(p)["master_repl_offset"]
    assert p.get("soon") is None  # the primary expires it now and propagates a DEL
    wait_for(lambda: repl_info(p)["master_repl_offset"] > before)
    wait_caught_up(p, r)
    assert r.dbsize() == 0


def test_masterauth_and_announce(make_hakv):
    primary = make_hakv(*FAST)
    primary.client().config_set("requirepass", "s3cret")
    primary.password = "s3cret"
    replica = make_hakv(*replica_of(primary), "--masterauth", "s3cret",
                        "--replica-announce-port", "4242")
    p, r = primary.client(password="s3cret"), replica.client()
    p.set("k", "v")
    wait_caught_up(p, r)
    assert r.get("k") == b"v"
    assert repl_info(p)["slave0"]["port"] == 4242
    # A wrong password: the replica logs why and keeps retrying.
    other = make_hakv(*replica_of(primary), "--masterauth", "wrong")
    wait_for(lambda: other.output().count("Unable to AUTH to MASTER") >= 2)
    assert repl_info(other.client())["master_link_status"] == "down"


def test_replicaof_in_the_config_file_and_rewrite(make_hakv, tmp_path):
    primary = make_hakv(*FAST)
    primary.client().set("from-config", "1")
    conf = tmp_path / "replica.conf"
    conf.write_text("replicaof 127.0.0.1 %d\nreplica-priority 7\n" % primary.port)
    replica = make_hakv(config=str(conf))
    r = replica.client()
    wait_for(lambda: r.get("from-config") == b"1")
    assert r.config_get("replicaof")["replicaof"] == "127.0.0.1 %d" % primary.port
    assert r.replicaof("NO", "ONE")
    assert r.config_get("replicaof")["replicaof"] == ""
    r.config_rewrite()
    text = conf.read_text()
    assert "replicaof" not in text and "replica-priority 7" in text
    r.replicaof("127.0.0.1", primary.port)
    r.config_rewrite()
    assert "replicaof 127.0.0.1 %d" % primary.port in conf.read_text()


# ------------------------------------------------------------------ FAILOVER


def failover_state(client) -> str:
    return repl_info(client)["master_failover_state"]


def _topology(make_hakv, n_replicas=2):
    primary = make_hakv(*FAST)
    replicas = [make_hakv(*replica_of(primary)) for _ in range(n_replicas)]
    p = primary.client()
    seed(p, 300)
    clients = [r.client() for r in replicas]
    wait_caught_up(p, *clients)
    return primary, replicas, p, clients


def test_failover_to_a_named_replica_waits_for_it_then_hands_over(make_hakv):
    primary, (target, sibling), p, (t, s) = _topology(make_hakv)
    target.pause()  # it cannot ack: the failover waits for it, writes paused
    try:
        p.set("last-write", "before")
        replid = repl_info(p)["master_replid"]
        assert p.execute_command("FAILOVER", "TO", "127.0.0.1", target.port) == b"OK"
        assert failover_state(p) == "waiting-for-sync"
        assert p.get("last-write") == b"before"  # reads are served
        writer = raw_client(p, socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
        with pytest.raises(redis.exceptions.TimeoutError):
            writer.set("during", "x")  # paused, not refused
        writer.close()
        with pytest.raises(redis.exceptions.ResponseError, match="FAILOVER already in progress."):
            p.execute_command("FAILOVER")
        with pytest.raises(redis.exceptions.ResponseError,
                           match="REPLICAOF not allowed while failing over."):
            p.replicaof("127.0.0.1", target.port)
        time.sleep(0.5)
        assert failover_state(p) == "waiting-for-sync"  # still waiting for *that* replica
    finally:
        target.resume()
    wait_for(lambda: repl_info(t)["role"] == "master" and repl_info(p)["role"] == "slave"
             and failover_state(p) == "no-failover", what="the hand-over")
    info = repl_info(p)
    assert (info["master_host"], info["master_port"]) == ("127.0.0.1", target.port)
    wait_link_up(p)
    # The old primary continued the same history: partial, not full.
    assert stats(t)["sync_full"] == 0 and stats(t)["sync_partial_ok"] >= 1
    assert "Failover target 127.0.0.1:%d is synced, failing over." % target.port \
        in primary.output()
    # The target was told by PSYNC <our replid> <offset> FAILOVER.
    assert "Failover request received for replid %s." % replid in target.output()
    assert "MASTER MODE enabled (failover request from" in target.output()
    # The write paused during the failover ran after it: on a replica now.
    with pytest.raises(redis.exceptions.ReadOnlyError):
        p.set("after", "x")
    t.set("from-new-primary", "1")
    wait_for(lambda: p.get("from-new-primary") == b"1", what="the old primary to follow")
    # The sibling stays a replica of the old primary (chained), on the new history.
    wait_for(lambda: s.get("from-new-primary") == b"1", what="the sibling to follow")
    assert repl_info(s)["master_port"] == primary.port
    assert stats(p)["sync_full"] == 2  # the two initial syncs only
    assert_same_contents(t, s)


def test_failover_to_any_replica_picks_one_that_caught_up(make_hakv):
    primary, replicas, p, clients = _topology(make_hakv)
    replicas[0].pause()
    try:
        assert p.execute_command("FAILOVER") == b"OK"
        wait_for(lambda: repl_info(p)["role"] == "slave" and failover_state(p) == "no-failover",
                 what="the failover")
    finally:
        replicas[0].resume()
    assert repl_info(p)["master_port"] == replicas[1].port
    assert repl_info(clients[1])["role"] == "master"


def test_failover_timeout_abort_and_force(make_hakv):
    primary, (target,), p, (t,) = _topology(make_hakv, 1)
    target.pause()
    try:
        # A write the paused target cannot ack: without it, an ACK it sent just
        # before the pause could show it in sync, and the hand-over would start.
        p.set("after-pause", "1")
        # Without FORCE the timeout gives up: still a primary, writes resume.
        p.execute_command("FAILOVER", "TO", "127.0.0.1", target.port, "TIMEOUT", 300)
        wait_for(lambda: failover_state(p) == "no-failover", what="the timeout")
        assert repl_info(p)["role"] == "master"
        assert p.set("after-timeout", "1")
        assert "FAILOVER to 127.0.0.1:%d aborted: Replica never caught up before timeout" \
            % target.port in primary.output()
        # ABORT while waiting.
        p.execute_command("FAILOVER", "TIMEOUT", 60000)
        assert failover_state(p) == "waiting-for-sync"
        assert p.execute_command("FAILOVER", "ABORT") == b"OK"
        assert failover_state(p) == "no-failover" and p.set("after-abort", "1")
        assert "FAILOVER to any replica aborted: Failover manually aborted" in primary.output()
        # FORCE: after the timeout, fail over to the target even though it lags.
        p.execute_command("FAILOVER", "TO", "127.0.0.1", target.port, "TIMEOUT", 300, "FORCE")
        wait_for(lambda: failover_state(p) == "failover-in-progress", what="the forced hand-over")
        assert repl_info(p)["role"] == "slave"
    finally:
        target.resume()
    wait_for(lambda: failover_state(p) == "no-failover" and link_up(p), what="the new link")
    assert repl_info(t)["role"] == "master"
    wait_caught_up(t, p)
    assert p.get("after-abort") == b"1"  # the lagging writes reached it before it took over


# ------------------------------------------------------------------ SHUTDOWN waits for replicas


def _wait_exit(proc, timeout=15.0) -> None:
    wait_for(lambda: not proc.alive(), timeout, what="the process to exit")


def test_shutdown_waits_for_a_lagging_replica_then_exits(make_hakv):
    primary = make_hakv(*FAST, "--shutdown-timeout", "2")
    replica = make_hakv(*replica_of(primary))
    p, r = primary.client(), replica.client()
    wait_caught_up(p, r)
    replica.pause()
    try:
        p.set("unacked", "1")
        shutter = raw_client(p, socket_timeout=10, retry=Retry(NoBackoff(), 0))
        started = time.time()
        done = {}

        def run():
            try:
                shutter.execute_command("SHUTDOWN")
            except redis.exceptions.ConnectionError as exc:
                done["closed"] = exc
        import threading
        th = threading.Thread(target=run, daemon=True)
        th.start()
        wait_for(lambda: "Waiting for replicas before shutting down." in primary.output())
        left = p.info("server")["shutdown_in_milliseconds"]
        assert 0 < left <= 2000
        writer = raw_client(p, socket_timeout=0.3, retry=Retry(NoBackoff(), 0))
        with pytest.raises(redis.exceptions.TimeoutError):
            writer.set("during", "x")  # writes are paused meanwhile
        writer.close()
        assert p.get("unacked") == b"1"  # reads are not
        _wait_exit(primary)
        th.join(5)
        assert "closed" in done  # SHUTDOWN never answered: the connection closed
        assert time.time() - started >= 1.5
    finally:
        replica.resume()
    log = primary.output()
    assert re.search(r"Lagging replica 127\.0\.0\.1:%d reported offset \d+ behind master, "
                     r"lag=\d+, state=online\." % replica.port, log)
    assert "0 of 1 replicas are in sync when shutting down." in log


def test_shutdown_lets_a_replica_catch_up_and_abort_or_now(make_hakv):
    primary = make_hakv(*FAST, "--shutdown-timeout", "30")
    replica = make_hakv(*replica_of(primary))
    p, r = primary.client(), replica.client()
    wait_caught_up(p, r)
    # ABORT: the waiting SHUTDOWN gets an error, writes resume.
    replica.pause()
    try:
        p.set("pending", "1")  # not acked: the replica lags
        shutter = raw_client(p, socket_timeout=10, retry=Retry(NoBackoff(), 0))
        conn = shutter.connection_pool.get_connection()
        conn.send_command("SHUTDOWN")
        wait_for(lambda: "Waiting for replicas before shutting down." in primary.output())
        assert raw_client(p).execute_command("SHUTDOWN", "ABORT") == b"OK"
        with pytest.raises(redis.exceptions.ResponseError,
                           match="Errors trying to SHUTDOWN. Check logs."):
            conn.read_response()
        assert p.set("after-abort", "1")
        assert "shutdown_in_milliseconds" not in p.info("server")
        assert "Shutdown manually aborted." in primary.output()
        with pytest.raises(redis.exceptions.ResponseError, match="No shutdown in progress."):
            p.execute_command("SHUTDOWN", "ABORT")
    finally:
        replica.resume()
    # A replica that lags only briefly: the shutdown waits for it, so it has
    # every write when the primary exits.
    replica.pause()
    p.set("final", "write")
    import threading
    threading.Timer(1.0, replica.resume).start()
    try:
        p.execute_command("SHUTDOWN", "NOSAVE")
    except redis.exceptions.ConnectionError:
        pass
    _wait_exit(primary)
    assert "1 of 1 replicas are in sync when shutting down." in primary.output()
    wait_for(lambda: r.get("final") == b"write", what="the final write on the replica")
    assert r.get("after-abort") == b"1"


def test_shutdown_now_and_sigterm(make_hakv):
    primary = make_hakv(*FAST, "--shutdown-timeout", "30")
    replica = make_hakv(*replica_of(primary))
    p, r = primary.client(), replica.client()
    wait_caught_up(p, r)
    replica.pause()
    try:
        p.set("x", "1")
        started = time.time()
        with pytest.raises(redis.exceptions.ConnectionError):
            p.execute_command("SHUTDOWN", "NOW")  # NOW does not wait
        _wait_exit(primary)
        assert time.time() - started < 10
        assert "Waiting for replicas" not in primary.output()
        primary.start()
        p = primary.client()
    finally:
        replica.resume()
    wait_caught_up(p, r)
    replica.pause()
    try:
        p.set("y", "1")
        p.config_set("shutdown-timeout", 1)
        started = time.time()
        primary.proc.send_signal(15)  # SIGTERM waits as SHUTDOWN does
        wait_for(lambda: "Waiting for replicas before shutting down." in primary.output())
        _wait_exit(primary)
        assert 0.8 <= time.time() - started < 10
    finally:
        replica.resume()


@pytest.mark.parametrize("diskless_sync, diskless_load", [
    ("yes", "on-empty-db"), ("no", "disabled"), ("yes", "swapdb"),
])
def test_full_sync_of_a_big_snapshot_checksummed_by_a_helper(make_hakv, diskless_sync,
                                                             diskless_load):
    # Past a MiB the replica checks the snapshot's CRC64 in a helper process
    # (replica/transfer.py): the sync completes, nothing is lost, no helper
    # is left behind.
    primary = make_hakv(*FAST, "--repl-diskless-sync", diskless_sync)
    p = primary.client()
    rng = random.Random(5)
    values = {b"big:%d" % i: rng.randbytes(80) for i in range(30000)}  # LZF can't shrink them
    items = list(values.items())
    for start in range(0, len(items), 5000):
        p.mset(dict(items[start:start + 5000]))
    # ~2.7 MB of RDB.
    replica = make_hakv(*replica_of(primary), "--repl-diskless-load", diskless_load)
    r = replica.client()
    wait_link_up(r, timeout=60)
    wait_caught_up(p, r)
    assert r.dbsize() == 30000
    for key in (b"big:0", b"big:12345", b"big:29999"):
        assert r.get(key) == values[key]
    children = open("/proc/%d/task/%d/children" % (replica.pid, replica.pid)).read().split()
    assert children == []
    p.set("after", "sync")
    wait_for(lambda: r.get("after") == b"sync", what="streamed write")
