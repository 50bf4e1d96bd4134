"""Replication benchmarks, hakv next to real Redis measured in the same run.

1. Full sync: a primary holding N keys (default 1M, loaded from an RDB at
   start), a fresh replica told REPLICAOF; the time until its
   master_link_status is up and its DBSIZE equals the primary's.
   Target: hakv <= 2x Redis. Also the CPU seconds each side used (with
   their children: snapshot child, checksum helpers), steadier than the
   time on a shared machine.
2. Replication lag under a 50-client write load (redis-benchmark SET, no
   pipelining): bytes behind (primary offset - replica offset) sampled every
   100 ms, and the time a probe write takes to show up on the replica.
3. Write throughput with 2 replicas attached vs none (redis-benchmark, 50
   clients). Target: hakv's ratio >= 0.8. Also the CPU microseconds per SET
   of the primary and of each replica (from /proc), steadier than SET/s on
   a shared machine.

Not part of the test suite. Usage:
    python bench/replication.py [--keys N] [--requests N] [--only sync,lag,throughput]
                                [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import redis  # noqa: E402

from bench_support import cpu_seconds  # noqa: E402
from hakv.common import rdb  # noqa: E402
from procs import hakv_server, redis_server  # noqa: E402

BENCHMARK = "redis-benchmark"


def write_dump(path: str, n: int) -> None:
    with open(path, "wb") as f:
        w = rdb.RdbWriter(f)
        w.write_header({"redis-ver": "7.0.15", "redis-bits": 64})
        w.write_db(0, n, 0, ((b"key:%d" % i, b"value:%d" % i, None) for i in range(n)))
        w.finish()


def start(kind: str, workdir: str, *args, dump: str | None = None):
    os.makedirs(workdir, exist_ok=True)
    if dump:
        os.link(dump, os.path.join(workdir, "dump.rdb"))
    make = hakv_server if kind == "hakv" else redis_server
    proc = make(workdir, None, "--repl-diskless-sync-delay", "0", *args)
    proc.start()
    c = proc.client(socket_timeout=120)
    while c.info("persistence").get("loading"):
        time.sleep(0.05)
    return proc


def wait_synced(primary, replica, timeout=600) -> None:
    p, r = primary.client(socket_timeout=120), replica.client(socket_timeout=120)
    want = p.dbsize()
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if r.info("replication").get("master_link_status") == "up" and r.dbsize() == want:
                return
        except (redis.exceptions.BusyLoadingError, redis.exceptions.ConnectionError):
            pass
        time.sleep(0.02)
    raise TimeoutError("replica did not sync")


# ------------------------------------------------------------ 1. full sync


def cpu_with_children(pid: int) -> float:
    """CPU seconds of a process and of its children that ended (a snapshot
    child, a checksum helper): the work of a full sync on each side."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def bench_full_sync(kind: str, root: str, dump: str, diskless: str, load: str) -> tuple:
    """(seconds until synced, CPU seconds of the replica, of the primary)."""
    name = "%s-%s-%s" % (kind, diskless, load)
    primary = start(kind, os.path.join(root, name + "-p"), "--repl-diskless-sync", diskless,
                    dump=dump)
    replica = start(kind, os.path.join(root, name + "-r"), "--repl-diskless-load", load)
    try:
        r = replica.client(socket_timeout=120)
        cpu0 = cpu_with_children(replica.pid), cpu_with_children(primary.pid)
        t0 = time.perf_counter()
        r.replicaof("127.0.0.1", primary.port)
        wait_synced(primary, replica)
        elapsed = time.perf_counter() - t0
        # The primary reaps its snapshot child within a cron tick.
        time.sleep(0.2)
        return (elapsed, cpu_with_children(replica.pid) - cpu0[0],
                cpu_with_children(primary.pid) - cpu0[1])
    finally:
        replica.stop()
        primary.stop()
        for proc in (primary, replica):
            shutil.rmtree(proc.workdir, ignore_errors=True)  # --repeat starts afresh


# ------------------------------------------------------------ 2. lag


def run_benchmark(port: int, requests: int, clients: int = 50) -> float:
    out = subprocess.run(
        [BENCHMARK, "-p", str(port), "-c", str(clients), "-n", str(requests), "-t", "set",
         "-r", "1000000", "-d", "16", "-q", "--csv"],
        capture_output=True, text=True, check=True).stdout
    # "SET","<rps>",...
    for line in out.splitlines():
        if line.startswith('"SET"'):
            return float(line.split(",")[1].strip('"'))
    raise RuntimeError("unexpected redis-benchmark output: %r" % out)


def bench_lag(kind: str, root: str, requests: int) -> dict:
    primary = start(kind, os.path.join(root, kind + "-lag-p"))
    replica = start(kind, os.path.join(root, kind + "-lag-r"), "--replicaof", "127.0.0.1",
                    str(primary.port))
    try:
        wait_synced(primary, replica)
        p, r = primary.client(), replica.client()
        behind: list = []
        probes: list = []
        done = threading.Event()

        def sample():
            n = 0
            while not done.is_set():
                po = p.info("replication")["master_repl_offset"]
                ro = r.info("replication").get("slave_repl_offset", 0)
                behind.append(max(0, po - ro))
                n += 1
                token = "%d" % n
                t0 = time.perf_counter()
                p.set("lag-probe", token)
                while r.get("lag-probe") != token.encode() and not done.is_set():
                    time.sleep(0.0005)
                probes.append(time.perf_counter() - t0)
                time.sleep(0.1)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        rps = run_benchmark(primary.port, requests)
        done.set()
        t.join(30)
        probes.sort()
        return {
            "rps": rps,
            "bytes_behind_median": statistics.median(behind) if behind else 0,
            "bytes_behind_max": max(behind) if behind else 0,
            "probe_ms_median": 1000 * statistics.median(probes) if probes else 0,
            "probe_ms_p99": 1000 * probes[min(len(probes) - 1, int(len(probes) * 0.99))]
            if probes else 0,
        }
    finally:
        replica.stop()
        primary.stop()


# ------------------------------------------------------------ 3. throughput


def bench_throughput(kind: str, root: str, requests: int) -> dict:
    """SET/s alone and with 2 replicas, and the CPU microseconds per request
    of the primary (alone, with replicas) and of each replica (from /proc:
    less moved than SET/s by other work on the machine)."""
    primary = start(kind, os.path.join(root, kind + "-tp-p"))
    replicas = []
    try:
        cpu0 = cpu_seconds(primary.pid)
        alone = run_benchmark(primary.port, requests)
        cpu_alone = cpu_seconds(primary.pid) - cpu0
        for i in range(2):
            replicas.append(start(kind, os.path.join(root, "%s-tp-r%d" % (kind, i)),
                                  "--replicaof", "127.0.0.1", str(primary.port)))
        for rep in replicas:
            wait_synced(primary, rep)
        procs = [primary] + replicas
        cpu0 = [cpu_seconds(p.pid) for p in procs]
        with_replicas = run_benchmark(primary.port, requests)
        used = [cpu_seconds(p.pid) - c for p, c in zip(procs, cpu0)]
        per_req = 1e6 / requests
        return {"alone": alone, "with": with_replicas, "cpu_alone": cpu_alone * per_req,
                "cpu_primary": used[0] * per_req,
                "cpu_replica": sum(used[1:]) / len(replicas) * per_req}
    finally:
        for rep in replicas:
            rep.stop()
        primary.stop()
        for proc in [primary] + replicas:
            shutil.rmtree(proc.workdir, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--only", default="sync,lag,throughput")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each measurement N times, alternating hakv and Redis, and keep "
                         "each one's best (a loaded machine adds noise, never speed)")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="hakv-bench-repl-")
    print("hakv replication benchmark (root %s, %d CPUs)" % (root, os.cpu_count()))
    try:
        run(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def run(args, root: str) -> None:
    only = set(args.only.split(","))
    if "sync" in only:
        dump = os.path.join(root, "seed.rdb")
        t0 = time.perf_counter()
        write_dump(dump, args.keys)
        print("\n1. full sync of %d keys (%.1f MB RDB, written in %.1fs)"
              % (args.keys, os.path.getsize(dump) / 1e6, time.perf_counter() - t0))
        for diskless, load in (("yes", "disabled"), ("no", "disabled"), ("yes", "on-empty-db")):
            times = {}
            for _ in range(args.repeat):
                for kind in ("redis", "hakv"):
                    t = bench_full_sync(kind, root, dump, diskless, load)
                    times[kind] = min(t, times.get(kind, t))  # the best wall time's CPU
            print("   repl-diskless-sync %-3s repl-diskless-load %-11s  redis %6.2fs   "
                  "hakv %6.2fs   ratio %.2fx   CPU s replica/primary: redis %.2f/%.2f, "
                  "hakv %.2f/%.2f"
                  % (diskless, load, times["redis"][0], times["hakv"][0],
                     times["hakv"][0] / times["redis"][0], times["redis"][1],
                     times["redis"][2], times["hakv"][1], times["hakv"][2]))
    if "lag" in only:
        print("\n2. replication lag under a 50-client SET load (%d requests)" % args.requests)
        for kind in ("redis", "hakv"):
            res = bench_lag(kind, root, args.requests)
            print("   %-5s  %8.0f SET/s   behind: median %6.0f B, max %8.0f B   "
                  "probe write visible on replica: median %.1f ms, p99 %.1f ms"
                  % (kind, res["rps"], res["bytes_behind_median"], res["bytes_behind_max"],
                     res["probe_ms_median"], res["probe_ms_p99"]))
    if "throughput" in only:
        print("\n3. write throughput, 2 replicas attached vs none (50 clients, %d SETs)"
              % args.requests)
        for kind in ("redis", "hakv"):
            runs = [bench_throughput(kind, root, args.requests) for _ in range(args.repeat)]
            alone = max(r["alone"] for r in runs)
            with_two = max(r["with"] for r in runs)
            cpu = {k: min(r[k] for r in runs) for k in ("cpu_alone", "cpu_primary", "cpu_replica")}
            print("   %-5s  alone %8.0f SET/s   with 2 replicas %8.0f SET/s   ratio %.2f   "
                  "CPU us/SET: primary %.1f alone, %.1f with replicas; each replica %.1f"
                  % (kind, alone, with_two, with_two / alone, cpu["cpu_alone"],
                     cpu["cpu_primary"], cpu["cpu_replica"]))


if __name__ == "__main__":
    sys.exit(main())
