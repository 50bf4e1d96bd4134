"""Key expiry on a started hakv-server: lazy on access, the active cycle frees
keys nobody reads (within 200 ms of their deadline), and a mass expiry never
stalls the event loop.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from hakv.common.config import Settings
from hakv.common.node import load_families
from hakv.common.server import Server


def dbsize_all(r, dbs=range(16)) -> int:
    total = 0
    for db in dbs:
        r.execute_command("SELECT", db)
        total += r.dbsize()
    r.execute_command("SELECT", 0)
    return total


def bulk_set_pxat(port: int, keys: list[bytes], when_ms: int, db: int = 0) -> None:
    """SET key v PXAT when for every key, pipelined in one stream."""
    when = b"%d" % when_ms
    data = [b"*2\r\n$6\r\nSELECT\r\n$%d\r\n%d\r\n" % (len(str(db)), db)]
    for k in keys:
        data.append(b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n$4\r\nPXAT\r\n$%d\r\n%s\r\n"
                    % (len(k), k, len(when), when))
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.sendall(b"".join(data))
    want = len(keys) + 1
    got = b""
    while got.count(b"\r\n") < want:
        chunk = sock.recv(1 << 20)
        assert chunk, "connection closed while loading"
        got += chunk
    assert got == b"+OK\r\n" * want
    sock.close()


def test_lazy_expiry_on_access(r):
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        r.set("k", "v", px=100)
        r.set("keep", "v")
        time.sleep(0.25)
        assert r.dbsize() == 2  # nobody removed it yet
        before = r.info("stats")["expired_keys"]
        assert r.get("k") is None  # the read removes it
        assert r.dbsize() == 1
        assert r.info("stats")["expired_keys"] == before + 1
        r.set("k2", "v", px=50)
        time.sleep(0.1)
        assert r.exists("k2") == 0
        assert r.mget("k2", "keep") == [None, b"v"]
        assert r.dbsize() == 1
    finally:
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_active_expiry_frees_untouched_keys_within_200ms(hakv, r):
    """Keys nobody reads are invisible and freed (DBSIZE drops) within 200 ms
    of their deadline, in every database."""
    now = int(time.time() * 1000)
    deadline = now + 1500
    for db in (0, 5, 15):
        bulk_set_pxat(hakv.port, [b"db%d:%d" % (db, i) for i in range(2000)], deadline, db)
    r.set("persistent", "v")
    assert dbsize_all(r) == 6001
    while time.time() * 1000 < deadline - 50:
        time.sleep(0.01)
    # Only DBSIZE from now on: it looks at no key, so nothing is expired lazily.
    seen_gone = None
    while time.time() * 1000 < deadline + 1000:
        if dbsize_all(r, (0, 5, 15)) == 1:
            seen_gone = time.time() * 1000
            break
        time.sleep(0.005)
    assert seen_gone is not None, "keys still there a second after their deadline"
    assert seen_gone - deadline <= 200, seen_gone - deadline
    assert r.info("keyspace") == {"db0": {"keys": 1, "expires": 0, "avg_ttl": 0}}
    assert r.info("stats")["expired_keys"] >= 6000


def test_ttl_changes_are_honoured(r):
    r.set("a", "v", px=100)
    r.persist("a")  # no longer volatile
    r.set("b", "v", px=100)
    r.set("b", "new")  # a plain SET drops the TTL
    r.set("c", "v", ex=100)
    r.pexpire("c", 100)  # shorter now
    r.set("d", "v", px=100)
    r.pexpire("d", 100000)  # longer now
    time.sleep(0.4)
    assert r.dbsize() == 3
    assert r.get("a") == b"v" and r.get("b") == b"new" and r.exists("c") == 0
    assert r.ttl("d") > 90
    r.set("e", "v", pxat=int(time.time() * 1000) - 1)  # already past: never visible
    assert r.exists("e") == 0


def test_swapdb_moves_deadlines_along(hakv, r):
    r.set("k", "v", px=300)
    r.swapdb(0, 1)
    assert r.exists("k") == 0
    r.execute_command("SELECT", 1)
    assert r.pttl("k") > 0
    r.execute_command("SELECT", 0)
    time.sleep(0.6)
    assert dbsize_all(r, (0, 1)) == 0


def test_disabling_active_expiry_keeps_keys_until_read(r):
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        for i in range(100):
            r.set("k%d" % i, "v", px=50)
        time.sleep(0.3)
        assert r.dbsize() == 100
    finally:
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    time.sleep(0.3)
    assert r.dbsize() == 0


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (from /proc, in clock ticks)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ping_latencies(pinger, pid: int, until) -> list:
    """(wall seconds, server CPU seconds spent meanwhile) per PING, until
    until(count) is true."""
    out = []
    while True:
        c0 = _cpu_seconds(pid)
        t0 = time.perf_counter()
        pinger.ping()
        out.append((time.perf_counter() - t0, _cpu_seconds(pid) - c0))
        if until(len(out)):
            return out


def test_mass_expiry_does_not_stall_other_clients(hakv):
    """200k keys expiring at the same millisecond: the server keeps answering
    PINGs from another client while the active cycle works through them in
    time-boxed slices (expiring them all in one go takes Python most of a
    second, which every PING issued meanwhile would wait for).

    The keys get their deadline while the active cycle is off, so however
    long loading takes on a busy machine they are all due together when it
    is switched on. A stall is judged two ways: by wall time, over what the
    same PINGs take on this machine right before (scheduler noise from other
    processes is in both), and by the server's own CPU time spent during any
    one PING, which other processes cannot inflate."""
    n = 200_000
    r = hakv.client(socket_timeout=120)
    keys = [b"mass:%d" % i for i in range(n)]
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    margin = None  # seconds for the PEXPIREATs to get in before the deadline
    for _ in range(3):
        t0 = time.time()
        for i in range(0, n, 10_000):
            r.mset({k: b"v" for k in keys[i:i + 10_000]})
        started = time.time()
        if margin is None:  # 200k PEXPIREATs take a few times 20 MSETs of 10k keys
            margin = max(2.0, 10 * (started - t0))
        deadline = int((started + margin) * 1000)
        when = b"%d" % deadline
        sock = socket.create_connection(("127.0.0.1", hakv.port), timeout=120)
        sock.sendall(b"".join(b"*3\r\n$9\r\nPEXPIREAT\r\n$%d\r\n%s\r\n$13\r\n%s\r\n"
                              % (len(k), k, when) for k in keys))
        got = b""
        while len(got) < 4 * n:
            got += sock.recv(1 << 20)
        sock.close()
        assert got == b":1\r\n" * n
        while time.time() * 1000 < deadline + 10:
            time.sleep(0.01)
        # A PEXPIREAT that came in after the deadline deleted its key at once:
        # on a machine that slow, try again with more room.
        if r.dbsize() == n:
            break  # all due, none freed: nobody touched them
        margin = 4 * (time.time() - started)
    else:
        pytest.fail("could not load the keys before their deadline")
    pinger = hakv.client(socket_timeout=120)
    baseline = _ping_latencies(pinger, hakv.pid, lambda count: count >= 300)
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    started = time.time()
    during = _ping_latencies(pinger, hakv.pid, lambda count: (
        (count % 50 == 0 and r.dbsize() == 0) or time.time() > started + 60))
    left = r.dbsize()
    assert left == 0, "keys left: %d" % left
    base_wall = sorted(w for w, _ in baseline)
    wall = sorted(w for w, _ in during)
    p99 = wall[int(len(wall) * 0.99)] * 1000
    worst = wall[-1] * 1000
    base_p99 = base_wall[int(len(base_wall) * 0.99)] * 1000
    base_worst = base_wall[-1] * 1000
    worst_cpu = max(c for _, c in during) * 1000
    print("mass expiry: %d keys gone in %.2f s; %d PINGs meanwhile, p99 %.2f ms, max %.2f ms "
          "(before: p99 %.2f ms, max %.2f ms); most server CPU during one PING %.0f ms"
          % (n, time.time() - started, len(wall), p99, worst, base_p99, base_worst, worst_cpu))
    assert len(wall) > 200  # the loop kept serving all along
    assert p99 < 20 + 2 * base_p99, (p99, base_p99)
    # No PING waited behind a long run of server work: one unboxed pass over
    # 200k keys is most of a second of CPU. (The slowest PING by wall time is
    # printed, not asserted: on a loaded machine it is the scheduler's.)
    assert worst_cpu < 100, worst_cpu


@pytest.fixture
def keyspace_with_due_keys():
    load_families()
    server = Server(Settings())
    db = server.keyspace[0]
    past = int(time.time() * 1000) - 1
    for i in range(200_000):
        key = b"k:%d" % i
        db.set(key, b"v")
        db.set_expire(key, past)
    return server.keyspace


def test_active_cycle_is_time_boxed(keyspace_with_due_keys):
    """In process, measured in thread CPU time (immune to other processes):
    each cycle given 3 ms stays within a few ms, and the cycles together
    remove everything."""
    ks = keyspace_with_due_keys
    worst = 0.0
    removed = 0
    cycles = 0
    while ks.has_due_keys():
        t0 = time.thread_time()
        removed += ks.active_expire_cycle(0.003)
        worst = max(worst, time.thread_time() - t0)
        cycles += 1
    assert removed == 200_000
    assert len(ks[0].data) == 0 and len(ks[0].expires) == 0
    assert cycles >= 20  # it was sliced, not done in one go
    assert worst < 0.006, worst
