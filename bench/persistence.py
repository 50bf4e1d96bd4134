"""Persistence benchmarks, hakv next to real Redis measured in the same run.

1. Snapshots of N keys of mixed types (default 1M: strings and integers,
   lists, hashes, sets, sorted sets, 10% with a TTL):
   - load time of the same dump (written by Redis) at start, and of each
     server's own dump (from the servers' "DB loaded from disk" log line),
   - SAVE time (the command's round trip) and the dump's size,
   - the CPU seconds of each load and SAVE (hakv's load from its "DB load
     CPU time" log line): on a busy machine the wall times swing, these less.
     hakv's include its helper processes, which run on another core (for a
     SAVE the CRC64; for a load one rdb_prefetch helper, decoding compressed
     values ahead and computing the CRC64); "loading process only" leaves
     them out.
   Target: SAVE and load <= 3x Redis's time.
2. BGSAVE's effect on request latency: p50/p99 of GET/SET round trips on one
   connection without a BGSAVE, and while the BGSAVE child runs.
   Target: p99 during BGSAVE <= 2x p99 without.

Not part of the test suite. Usage:
    python bench/persistence.py [--keys N] [--only snapshot,bgsave] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import deque

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from hakv.common import rdb  # noqa: E402
from hakv.common.types.zset import ZSet  # noqa: E402
from procs import hakv_server, redis_server  # noqa: E402
from bench_support import cpu_seconds  # noqa: E402


# ------------------------------------------------------------------ dataset


def mixed_items(n: int, seed: int = 7):
    """(key, value, expire_ms) for n keys: 70% strings, 10% lists, 8% hashes,
    6% sets, 6% sorted sets; one key in ten expires in a day."""
    rng = random.Random(seed)
    expire_at = int(time.time() * 1000) + 86_400_000
    for i in range(n):
        kind = rng.random()
        if kind < 0.35:
            key, value = b"str:%d" % i, b"value-%d-" % i + b"x" * rng.randrange(0, 50)
        elif kind < 0.70:
            key, value = b"int:%d" % i, b"%d" % rng.randrange(-10**9, 10**9)
        elif kind < 0.80:
            key = b"list:%d" % i
            value = deque(b"item-%d" % j for j in range(rng.randrange(3, 12)))
        elif kind < 0.88:
            key = b"hash:%d" % i
            value = {b"field-%d" % j: b"v%d" % rng.randrange(10**6) for j in range(rng.randrange(3, 12))}
        elif kind < 0.94:
            key = b"set:%d" % i
            if rng.random() < 0.5:
                value = {b"%d" % rng.randrange(10**6) for _ in range(rng.randrange(3, 12))}
            else:
                value = {b"member-%d" % rng.randrange(10**6) for _ in range(rng.randrange(3, 12))}
        else:
            key = b"zset:%d" % i
            value = ZSet()
            for j in range(rng.randrange(3, 12)):
                value.add(b"m%d" % j, rng.random() * 100)
        yield key, value, (expire_at if rng.random() < 0.1 else None)


def write_dataset(path: str, n: int) -> None:
    with open(path, "wb") as f:
        w = rdb.RdbWriter(f)
        w.write_header({"redis-ver": "7.0.15", "redis-bits": 64})
        w.write_db(0, n, n // 10, mixed_items(n))
        w.finish()


# ------------------------------------------------------------------ servers


STARTED: list = []  # every server started, stopped at the end whatever happens


def start(kind: str, workdir: str, dump: str | None = None, *args):
    os.makedirs(workdir, exist_ok=True)
    if dump is not None:
        shutil.copy(dump, os.path.join(workdir, "dump.rdb"))
    make = hakv_server if kind == "hakv" else redis_server
    proc = make(workdir, None, *args)
    STARTED.append(proc)
    proc.start(wait=False)
    wait_loaded(proc)
    return proc


def wait_loaded(proc, timeout: float = 600) -> None:
    """Until the server answers and has finished loading (patient: on a busy
    machine a loading server may take seconds to answer)."""
    import redis

    deadline = time.time() + timeout
    while time.time() < deadline:
        if not proc.alive():
            raise RuntimeError("%s exited:\n%s" % (proc.name, proc.output()[-2000:]))
        try:
            if not proc.client(socket_timeout=30).info("persistence").get("loading"):
                return
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError("%s did not finish loading" % proc.name)


def load_seconds(proc) -> float:
    """The last "DB loaded from disk: X seconds" in the server's log."""
    found = re.findall(r"DB loaded from disk: ([0-9.]+) seconds", proc.output())
    if not found:
        raise RuntimeError("no load time in the log of %s:\n%s" % (proc.name, proc.output()[-2000:]))
    return float(found[-1])


def load_cpu_seconds(proc) -> tuple[float, float]:
    """hakv's "DB load CPU time: X seconds (Y in helper processes)" log line
    (CPU spent loading only): (X, X - Y, the loading process's own)."""
    found = re.findall(r"DB load CPU time: ([0-9.]+) seconds \(([0-9.]+) in helper",
                       proc.output())
    if not found:
        raise RuntimeError("no load CPU time in the log of %s" % proc.name)
    total, helpers = map(float, found[-1])
    return total, total - helpers


def children_cpu_seconds(pid: int) -> float:
    """CPU time of a process's reaped children (hakv's checksum helper)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def timed_save(proc) -> tuple[float, int, float]:
    """SAVE's round trip (s), the dump's size, and the CPU seconds the server
    spent (its helper processes included)."""
    client = proc.client(socket_timeout=600)
    cpu0 = cpu_seconds(proc.pid) + children_cpu_seconds(proc.pid)
    t0 = time.perf_counter()
    assert client.save()
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds(proc.pid) + children_cpu_seconds(proc.pid) - cpu0
    return seconds, os.path.getsize(os.path.join(proc.workdir, "dump.rdb")), cpu



def rss_mb(pid: int) -> float:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def snapshot_bench(n: int, root: str) -> dict:
    source = os.path.join(root, "source.rdb")
    t0 = time.perf_counter()
    write_dataset(source, n)
    print("dataset: %d keys, %.1f MB (generated in %.1fs)"
          % (n, os.path.getsize(source) / 1e6, time.perf_counter() - t0))

    # Redis: load the dataset, SAVE it, load its own dump again.
    real = start("redis", os.path.join(root, "redis"), source)
    redis_load_source = load_seconds(real)
    redis_save, redis_size, redis_save_cpu = timed_save(real)
    redis_dump = os.path.join(root, "redis-dump.rdb")
    shutil.copy(os.path.join(real.workdir, "dump.rdb"), redis_dump)
    real.stop()
    real.start(wait=False)
    wait_loaded(real)
    redis_load = load_seconds(real)
    redis_load_cpu = cpu_seconds(real.pid)  # (the process did nothing else yet)
    redis_rss = rss_mb(real.pid)
    real.stop()

    # hakv: load Redis's dump, SAVE, load its own dump again.
    hakv = start("hakv", os.path.join(root, "hakv"), redis_dump)
    hakv_load_redis_dump = load_seconds(hakv)
    hakv_load_redis_dump_cpu, hakv_load_redis_dump_main = load_cpu_seconds(hakv)
    hakv_save, hakv_size, hakv_save_cpu = timed_save(hakv)
    hakv.stop()
    hakv.start(wait=False)
    wait_loaded(hakv)
    client = hakv.client(socket_timeout=300)
    hakv_load = load_seconds(hakv)
    hakv_load_cpu, hakv_load_main = load_cpu_seconds(hakv)
    hakv_rss = rss_mb(hakv.pid)
    assert client.dbsize() == n
    hakv.stop()

    rows = [
        ("load (Redis's dump)", redis_load, hakv_load_redis_dump, "s"),
        ("load (own dump)", redis_load, hakv_load, "s"),
        ("SAVE", redis_save, hakv_save, "s"),
        ("CPU: load (Redis's dump)", redis_load_cpu, hakv_load_redis_dump_cpu, "s"),
        ("  loading process only", redis_load_cpu, hakv_load_redis_dump_main, "s"),
        ("CPU: load (own dump)", redis_load_cpu, hakv_load_cpu, "s"),
        ("  loading process only", redis_load_cpu, hakv_load_main, "s"),
        ("CPU: SAVE", redis_save_cpu, hakv_save_cpu, "s"),
        ("dump size", redis_size / 1e6, hakv_size / 1e6, "MB"),
        ("RSS after load", redis_rss, hakv_rss, "MB"),
    ]
    print("\n%-26s %12s %12s %8s" % ("%d keys" % n, "redis", "hakv", "ratio"))
    for name, r, h, unit in rows:
        print("%-26s %10.3f%-2s %10.3f%-2s %7.2fx" % (name, r, unit, h, unit, h / r if r else 0))
    print("(first load of the generated file: redis %.3fs)" % redis_load_source)
    return {"redis_dump": redis_dump, "save_ratio": hakv_save / redis_save,
            "load_ratio": hakv_load / redis_load,
            "load_redis_dump_ratio": hakv_load_redis_dump / redis_load,
            "cpu_ratios": (hakv_save_cpu / redis_save_cpu, hakv_load_cpu / redis_load_cpu,
                           hakv_load_redis_dump_cpu / redis_load_cpu)}


# ------------------------------------------------------------------ BGSAVE latency


def percentile(values: list, p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def latency_run(proc, n: int, seconds: float, bgsave: bool) -> tuple[list, float]:
    """Round-trip times (s) of GET/SET on one connection for `seconds`, or
    while a BGSAVE runs (then also returns how long the BGSAVE took)."""
    client = proc.client(socket_timeout=60)
    rng = random.Random(1)
    samples = []
    started = time.perf_counter()
    if bgsave:
        client.bgsave()
    i = 0
    while True:
        i += 1
        key = "str:%d" % rng.randrange(n)
        t0 = time.perf_counter()
        if i & 1:
            client.get(key)
        else:
            client.set("bench:%d" % (i % 1000), "x")
        samples.append(time.perf_counter() - t0)
        if i % 50 == 0:
            if bgsave:
                if not client.info("persistence")["rdb_bgsave_in_progress"]:
                    break
            elif time.perf_counter() - started > seconds:
                break
    return samples, time.perf_counter() - started


def bgsave_bench(n: int, root: str, dump: str, rounds: int) -> dict:
    """Alternate quiet windows and BGSAVEs (`rounds` of each) and pool the
    samples, so a neighbour's load on the machine hits both sides alike.
    Returns {server: p99 during BGSAVE / p99 without}."""
    print("\nBGSAVE with %d keys: GET/SET round trips on one connection, %d rounds"
          % (n, rounds))
    print("%-8s %9s %9s %9s %9s %9s %8s %8s" % ("", "p50 off", "p99 off", "p50 on",
                                                "p99 on", "max on", "p99 x", "bgsave"))
    ratios = {}
    for kind in ("redis", "hakv"):
        proc = start(kind, os.path.join(root, "lat-" + kind), dump)
        try:
            latency_run(proc, n, 0.5, bgsave=False)  # warm up
            quiet: list = []
            during: list = []
            took = []
            for _ in range(rounds):
                samples, seconds = latency_run(proc, n, 0, bgsave=True)
                during += samples
                took.append(seconds)
                quiet += latency_run(proc, n, max(seconds, 1.0), bgsave=False)[0]
            p99_off, p99_on = percentile(quiet, 99), percentile(during, 99)
            ratios[kind] = p99_on / p99_off
            print("%-8s %7.0fus %7.0fus %7.0fus %7.0fus %7.1fms %7.2fx %7.2fs" % (
                kind, percentile(quiet, 50) * 1e6, p99_off * 1e6,
                percentile(during, 50) * 1e6, p99_on * 1e6, max(during) * 1e3,
                p99_on / p99_off, statistics.median(took)))
            info = proc.client().info("stats")
            print("         latest_fork_usec=%s  requests during BGSAVE=%d, without=%d"
                  % (info.get("latest_fork_usec"), len(during), len(quiet)))
        finally:
            proc.stop()
    return ratios


def verdict(name: str, value: float, target: float) -> None:
    print("%-34s %6.2fx  (target <= %gx: %s)"
          % (name, value, target, "met" if value <= target else "NOT met"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--only", default="snapshot,bgsave")
    parser.add_argument("--rounds", type=int, default=2, help="BGSAVEs per server")
    args = parser.parse_args()
    only = set(args.only.split(","))
    root = tempfile.mkdtemp(prefix="hakv-bench-persistence-")
    try:
        dump = None
        snapshot = bgsave = None
        if "snapshot" in only:
            snapshot = snapshot_bench(args.keys, root)
            dump = snapshot["redis_dump"]
        if "bgsave" in only:
            if dump is None:
                dump = os.path.join(root, "source.rdb")
                write_dataset(dump, args.keys)
            bgsave = bgsave_bench(args.keys, root, dump, args.rounds)
        print("\nsummary")
        if snapshot is not None:
            verdict("SAVE, hakv / redis", snapshot["save_ratio"], 3)
            verdict("load own dump, hakv / redis", snapshot["load_ratio"], 3)
            verdict("load Redis's dump, hakv / redis", snapshot["load_redis_dump_ratio"], 3)
            print("%-34s %s  (CPU seconds: SAVE, load own, load Redis's dump)"
                  % ("CPU time, hakv / redis", "  ".join("%.2fx" % r for r in snapshot["cpu_ratios"])))
        if bgsave is not None:
            verdict("hakv p99 during BGSAVE / without", bgsave["hakv"], 2)
            print("%-34s %6.2fx  (for comparison)" % ("redis p99 during BGSAVE / without",
                                                    bgsave["redis"]))
    finally:
        for proc in STARTED:
            proc.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
