"""kill -9 during a write load: what the AOF promises survives.

- appendfsync always: every write acknowledged to a client is there after
  the restart (the write and fdatasync happen before the reply leaves).
- appendfsync everysec: at most about one second of acknowledged writes may
  be missing (with kill -9 the page cache survives, so usually none are).
- kill -9 in the middle of BGREWRITEAOF: the manifest still names a complete
  AOF, and the rewrite child does not outlive the node.
"""

from __future__ import annotations

import os
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from persistence_support import fill_strings

WRITERS = 4


class Writer(threading.Thread):
    """SETs w<n>:<i> = i in order; remembers when each write was acknowledged."""

    def __init__(self, proc, n: int):
        super().__init__(daemon=True)
        self.client = proc.client(socket_timeout=5, retry=Retry(NoBackoff(), 0))
        self.n = n
        self.acked: list[float] = []  # acked[i] = time write i was acknowledged

    def run(self):
        i = 0
        try:
            while True:
                self.client.set("w%d:%d" % (self.n, i), i)
                self.acked.append(time.time())
                i += 1
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            pass


def load_and_kill(proc, seconds: float, during=None) -> tuple[list, float]:
    writers = [Writer(proc, n) for n in range(WRITERS)]
    for w in writers:
        w.start()
    time.sleep(seconds)
    if during is not None:
        during()
    killed_at = time.time()
    proc.kill()
    for w in writers:
        w.join(10)
        assert not w.is_alive()
    return writers, killed_at


def present(client, n: int, count: int) -> list[bool]:
    out = []
    for start in range(0, count, 1000):
        keys = ["w%d:%d" % (n, i) for i in range(start, min(count, start + 1000))]
        out += [v is not None for v in client.mget(keys)]
    return out


def test_appendfsync_always_loses_no_acknowledged_write(make_hakv):
    proc = make_hakv("--appendonly", "yes", "--appendfsync", "always")
    writers, _ = load_and_kill(proc, 1.5)
    total = sum(len(w.acked) for w in writers)
    assert total > 100, "too few writes to mean anything (%d)" % total
    proc.start()
    client = proc.client()
    for w in writers:
        found = present(client, w.n, len(w.acked))
        missing = [i for i, ok in enumerate(found) if not ok]
        assert not missing, "writer %d lost acknowledged writes %s" % (w.n, missing[:10])


def test_appendfsync_everysec_loses_at_most_a_second(make_hakv):
    proc = make_hakv("--appendonly", "yes", "--appendfsync", "everysec")
    writers, killed_at = load_and_kill(proc, 2.5)
    proc.start()
    client = proc.client()
    lost = 0
    for w in writers:
        found = present(client, w.n, len(w.acked))
        for i, ok in enumerate(found):
            if not ok:
                lost += 1
                assert w.acked[i] > killed_at - 1.5, (
                    "write %d of writer %d was acknowledged %.2fs before the kill and is lost"
                    % (i, w.n, killed_at - w.acked[i]))
    assert sum(len(w.acked) for w in writers) > 100
    print("everysec: %d acknowledged writes lost" % lost)


def _children(pid: int) -> list[int]:
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _running(pid: int) -> bool:
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("State:"):
                    return line.split()[1] not in ("Z", "X")
    except OSError:
        return False
    return False


def test_kill_during_rewrite_keeps_a_complete_aof(make_hakv):
    proc = make_hakv("--appendonly", "yes", "--appendfsync", "everysec")
    client = proc.client()
    fill_strings(client, 120_000, "base")
    client.config_set("appendfsync", "always")
    child = []

    def start_rewrite():
        client.bgrewriteaof()
        assert client.info("persistence")["aof_rewrite_in_progress"] == 1
        child.extend(_children(proc.pid))
        time.sleep(0.05)

    writers, _ = load_and_kill(proc, 0.5, during=start_rewrite)
    # (Kernels without CONFIG_PROC_CHILDREN do not list children; then only
    # the data is checked.)
    if os.path.exists("/proc/%d/task/%d/children" % (os.getpid(), os.getpid())):
        assert child, "no rewrite child was seen"
        deadline = time.time() + 5
        while any(_running(pid) for pid in child) and time.time() < deadline:
            time.sleep(0.05)
        assert not any(_running(pid) for pid in child), "the rewrite child outlived the node"
    proc.start()
    client = proc.client()
    assert client.dbsize() >= 120_000 + sum(len(w.acked) for w in writers)
    assert client.get("base:119999") == b"value-119999"
    for w in writers:
        assert all(present(client, w.n, len(w.acked)))
