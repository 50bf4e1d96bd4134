"""hakv-sentinel next to the real Redis: the same replies as redis-sentinel,
failovers of real redis-server nodes, and mixed quorums where a real
redis-sentinel votes with hakv sentinels."""
from __future__ import annotations

import socket
import time

import hiredis
import pytest
import redis

from hakv.common.resp import encode_command
from procs import free_port
from sentinel_support import MASTER, Writer, ha, kill, sentinel_conf, sentinel_proc, wait_until  # noqa: F401

pytestmark = pytest.mark.interop


# ----------------------------------------------------------------------
# Same command, same reply
# ----------------------------------------------------------------------


def _raw(port: int, *args: str, resp3: bool = False):
    """One command on a fresh connection; errors come back as ("ERR", text)."""
    reader = hiredis.Reader(replyError=lambda text: ("ERROR", text))
    expected = 1
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if resp3:
            sock.sendall(encode_command("HELLO", "3"))
            expected = 2
        sock.sendall(encode_command(*args))
        replies = []
        while len(replies) < expected:
            data = sock.recv(65536)
            assert data, f"connection closed before the reply to {args}"
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                replies.append(reply)
    return replies[-1]


# Commands whose whole reply must be byte-identical to redis-sentinel's.
SAME_REPLY = """\
PING
PING hello
PING a b
GET x
SELECT 1
CONFIG GET port
SENTINEL
SENTINEL FOO
SENTINEL MASTER
SENTINEL MASTER nosuch
SENTINEL REPLICAS nosuch
SENTINEL GET-MASTER-ADDR-BY-NAME mymaster
SENTINEL GET-MASTER-ADDR-BY-NAME nosuch
SENTINEL CKQUORUM mymaster
SENTINEL SET mymaster quorum abc
SENTINEL SET mymaster foo 1
SENTINEL IS-MASTER-DOWN-BY-ADDR 127.0.0.1 1 0 *
SENTINEL IS-MASTER-DOWN-BY-ADDR 127.0.0.1 x 0 *
SENTINEL CONFIG GET *
SENTINEL CONFIG SET foo bar
SENTINEL HELP
SENTINEL SIMULATE-FAILURE foo
SENTINEL SIMULATE-FAILURE help
SENTINEL FAILOVER mymaster
SENTINEL FAILOVER nosuch
SENTINEL RESET nosuch*
SENTINEL PENDING-SCRIPTS
SENTINEL INFO-CACHE nosuch
SENTINEL MONITOR mymaster 127.0.0.1 1 2
SENTINEL MONITOR other 127.0.0.1 1 0
SENTINEL MONITOR other 127.0.0.1 1 x
SENTINEL MONITOR other 127.0.0.1 x 2
SENTINEL MONITOR other nohost 1 2
SENTINEL REMOVE nosuch
SENTINEL MYID x
ROLE
PUBLISH foo bar
AUTH x
AUTH x y
CLIENT GETNAME
CLIENT SETNAME a b
CLIENT FOO
INFO memory
SUBSCRIBE a b
PSUBSCRIBE a*
UNSUBSCRIBE
SHUTDOWN foo
HELLO 4
HELLO 3 foo
""".splitlines()


@pytest.fixture
def sentinel_pair(tmp_path):
    """A hakv-sentinel and a redis-sentinel with the same configuration,
    watching an address where nothing listens (so nothing they learn
    differs between them)."""
    nowhere = free_port()
    procs = {}
    for kind in ("hakv", "redis"):
        port = free_port()
        workdir = str(tmp_path / kind)
        text = sentinel_conf(port, workdir, nowhere, quorum=2, down_after=60000,
                             failover_timeout=10000)
        procs[kind] = sentinel_proc(kind, workdir, port, text)
    try:
        for proc in procs.values():
            proc.start()
        yield procs["hakv"].port, procs["redis"].port
    finally:
        for proc in procs.values():
            proc.stop()


def test_replies_match_redis_sentinel(sentinel_pair):
    ours, theirs = sentinel_pair
    mismatches = []
    for line in SAME_REPLY:
        args = line.split()
        mine, real = _raw(ours, *args), _raw(theirs, *args)
        if mine != real:
            mismatches.append(f"{line}\n  hakv : {mine!r}\n  redis: {real!r}")
    assert not mismatches, "\n".join(mismatches)


def _fields(reply) -> list:
    """The field names of a map reply (RESP3 map or RESP2 flat array)."""
    return list(reply) if isinstance(reply, dict) else list(reply[::2])


def test_reply_shapes_match_redis_sentinel(sentinel_pair):
    """Replies with timings or IDs inside: same fields, same order, same types."""
    ours, theirs = sentinel_pair
    for args in (["SENTINEL", "MASTER", MASTER], ["HELLO", "3"], ["SENTINEL", "CONFIG", "GET", "*"],
                 ["SENTINEL", "MASTERS"], ["SENTINEL", "DEBUG"]):
        for resp3 in (False, True):
            mine, real = _raw(ours, *args, resp3=resp3), _raw(theirs, *args, resp3=resp3)
            assert type(mine) is type(real), (args, resp3, mine, real)
            if args == ["SENTINEL", "MASTERS"]:
                assert [_fields(m) for m in mine] == [_fields(m) for m in real], resp3
            else:
                assert _fields(mine) == _fields(real), (args, resp3)
    # INFO: the same sections, and the same sentinel section apart from numbers
    for section in ([], ["all"], ["everything"], ["sentinel"], ["server", "sentinel"], ["memory"]):
        mine = _raw(ours, "INFO", *section).decode()
        real = _raw(theirs, "INFO", *section).decode()
        heads = lambda text: [ln for ln in text.splitlines() if ln.startswith("#")]  # noqa: E731
        assert heads(mine) == heads(real), section
        sentinel_part = lambda text: text.split("# Sentinel")[1:]  # noqa: E731
        if sentinel_part(real):
            mine_lines = [ln.split(":")[0] for ln in sentinel_part(mine)[0].splitlines()]
            real_lines = [ln.split(":")[0] for ln in sentinel_part(real)[0].splitlines()]
            assert mine_lines == real_lines
    assert b"redis_mode:sentinel" in _raw(ours, "INFO", "server")


def test_redis_py_resp3_against_hakv_sentinel(sentinel_pair):
    ours, _ = sentinel_pair
    for protocol in (2, 3):
        c = redis.Redis(port=ours, protocol=protocol, socket_timeout=5)
        master = c.sentinel_master(MASTER)
        assert master["name"] == MASTER and master["is_master"] and master["num-other-sentinels"] == 0
        assert c.sentinel_get_master_addr_by_name(MASTER)[1] == master["port"]
        assert c.execute_command("ROLE") == [b"sentinel", [MASTER.encode()]]
        c.close()


# ----------------------------------------------------------------------
# Failovers with real Redis processes taking part
# ----------------------------------------------------------------------


def _failover_with_writer(topo, timeout: float = 30.0):
    """Kill -9 the primary while a writer runs through redis-py's Sentinel;
    returns (new primary, writer, seconds from kill to first accepted write)."""
    topo.wait_discovery()
    old = topo.nodes[0]
    with Writer(topo.sentinel_client()) as writer:
        wait_until(lambda: len(writer.confirmed) >= 20, 10, "confirmed writes before the kill")
        kill(old)
        killed_at = time.monotonic()
        new = topo.wait_new_master(old.port, timeout)
        wait_until(lambda: writer.writes_after(killed_at) >= 10, timeout, "writes after the failover",
                   diagnose=topo.diagnose)
        first = min(t for t in writer.ok_times if t > killed_at) - killed_at
    data = new.client()
    lost = [i for i in writer.confirmed if data.get(f"k{i}") != str(i).encode()]
    assert not lost, f"writes confirmed with WAIT 1 were lost: {lost[:20]}"
    return new, writer, first


def test_hakv_sentinels_fail_over_real_redis_nodes(ha):
    topo = ha(nodes_kind="redis", sentinel_kinds=("hakv", "hakv", "hakv"), down_after=1000)
    new, _, first = _failover_with_writer(topo)
    assert first < 10, first
    # the other replica is reconfigured to follow the promoted one
    for node in topo.nodes[1:]:
        if node is not new:
            topo.wait_replica_of(node, new)


@pytest.mark.slow
def test_mixed_quorum_real_sentinel_with_hakv_sentinels_on_hakv_nodes(ha):
    topo = ha(nodes_kind="hakv", sentinel_kinds=("hakv", "hakv", "redis"), down_after=2000)
    topo.wait_discovery()
    real = topo.sentinels[2]
    # the real sentinel knows both hakv sentinels, and they know it
    peers = {int(p["port"]) for p in real.client().sentinel_sentinels(MASTER)}
    assert peers == {topo.sentinels[0].port, topo.sentinels[1].port}
    new, _, _ = _failover_with_writer(topo)
    assert topo.master_port_seen_by(real) == new.port


@pytest.mark.slow
def test_mixed_quorum_real_sentinels_majority_on_real_nodes(ha):
    """One hakv sentinel among two redis-sentinels: it must vote, follow and
    report the new master exactly as they do."""
    topo = ha(nodes_kind="redis", sentinel_kinds=("redis", "redis", "hakv"), down_after=2000)
    new, _, _ = _failover_with_writer(topo)
    ours = topo.sentinels[2]
    assert topo.master_port_seen_by(ours) == new.port
    master = ours.client().sentinel_master(MASTER)
    assert master["config-epoch"] >= 1 and master["num-other-sentinels"] == 2


@pytest.mark.slow
def test_real_sentinel_leads_a_failover_of_hakv_nodes(ha):
    """SENTINEL FAILOVER on the redis-sentinel: the real one is the leader,
    drives the hakv nodes (MULTI/SLAVEOF/CONFIG REWRITE/CLIENT KILL/EXEC),
    and the hakv sentinels adopt the new configuration from its hellos."""
    topo = ha(nodes_kind="hakv", sentinel_kinds=("hakv", "hakv", "redis"), down_after=2000)
    topo.wait_discovery()
    old = topo.nodes[0]
    old.client().set("before", "1")
    real = topo.sentinels[2]
    assert real.client().sentinel_failover(MASTER)
    new = topo.wait_new_master(old.port)
    assert new.client().get("before") == b"1"
    for s in topo.sentinels[:2]:
        assert s.client().sentinel_master(MASTER)["config-epoch"] >= 1
    other = next(n for n in topo.nodes[1:] if n is not new)
    topo.wait_replica_of(other, new)
    topo.wait_replica_of(old, new, timeout=40)
    master = topo.sentinel_client().master_for(MASTER, socket_timeout=1)
    assert master.set("after", "2")
    wait_until(lambda: old.client().get("after") == b"2", 10, "the demoted primary to replicate")
