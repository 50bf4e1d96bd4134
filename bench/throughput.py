"""Request-path throughput: hakv against Redis 7.0, measured in the same run.

Starts a redis-server and a hakv-server side by side (free ports, temporary
directories, no persistence) and, for every test and pipeline depth, runs
redis-benchmark (-c 50) against Redis and right after against hakv. Printed
per test: requests/s of both, the ratio hakv/Redis, and each server's CPU
seconds per 100k requests (utime+stime of the server process from
/proc/PID/stat, sampled around the benchmark run) with their ratio.

Tests: redis-benchmark's own SET GET INCR MSET (10 keys) and the collection
tests LPUSH RPUSH LPOP RPOP SADD HSET SPOP ZADD ZPOPMIN.

Then memory: both servers are flushed and restarted, 1M small keys
(key:<12 digits> -> 3 bytes, what redis-benchmark's SET writes) are loaded
with pipelined SETs, and the growth of the resident set size
(/proc/PID/statm) is divided by the key count: bytes per key, both servers,
and the ratio.

Targets (issue 2): non-pipelined SET/GET >= 0.75 of Redis, -P 16 >= 0.40,
CPU per request <= 2.5x Redis, RSS per key <= 2.5x Redis.

Not part of the test suite. Usage:

    python bench/throughput.py [--requests 100000] [--pipelined-requests 400000]
                               [--only set,get] [--pipelines 1,16] [--repeat 1]
                               [--keys 1000000] [--skip-memory]

The machine's other load shows in both columns; the ratio is what counts.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from bench_support import Server, encode, free_port

BENCHMARK = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"

# redis-benchmark -t names, in the order they run.
TESTS = ["set", "get", "incr", "mset", "lpush", "rpush", "lpop", "rpop", "sadd", "hset",
         "spop", "zadd", "zpopmin"]
# Where the targets apply.
TARGETS = {1: ("set", "get"), 16: ("set", "get")}
TARGET_RATIO = {1: 0.75, 16: 0.40}


def run_benchmark(server: Server, test: str, requests: int, pipeline: int,
                  keyspace: int) -> tuple[float, float]:
    """(requests/s, server CPU seconds per 100k requests) of one redis-benchmark run."""
    argv = [BENCHMARK, "-p", str(server.port), "-c", "50", "-n", str(requests), "-P",
            str(pipeline), "-r", str(keyspace), "--csv", "-t", test]
    cpu0 = server.cpu_seconds()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=900).stdout
    cpu = server.cpu_seconds() - cpu0
    rows = [row for row in csv.reader(io.StringIO(out)) if row and row[0] != "test"]
    if not rows:
        raise RuntimeError("no result from %s" % " ".join(argv))
    return float(rows[-1][1]), cpu * 100_000 / requests


def load_keys(server: Server, n: int) -> None:
    """n keys key:<12 digits> = b"xxx" through pipelined SETs, 1000 per write."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=300) as s:
        for lo in range(0, n, 1000):
            batch = b"".join(encode((b"SET", b"key:%012d" % i, b"xxx"))
                             for i in range(lo, min(lo + 1000, n)))
            s.sendall(batch)
            want = len(b"+OK\r\n") * (min(lo + 1000, n) - lo)
            got = 0
            while got < want:
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("%s closed the connection" % server.name)
                got += len(chunk)


def measure_memory(servers: list, n: int) -> list:
    """Bytes of RSS per key for n small keys, per server (fresh processes)."""
    per_key = []
    for s in servers:
        s.stop()
        s.start()
        time.sleep(0.5)
        before = s.rss_bytes()
        load_keys(s, n)
        time.sleep(0.5)
        after = s.rss_bytes()
        dbsize = s.call(b"DBSIZE")
        if dbsize.strip() != b":%d" % n:
            raise RuntimeError("%s holds %r keys, expected %d" % (s.name, dbsize, n))
        per_key.append((after - before) / n)
    return per_key


def row(label: str, pipeline: int, rps: list, cpu: list) -> None:
    ratio = rps[1] / rps[0] if rps[0] else float("nan")
    cpu_ratio = cpu[1] / cpu[0] if cpu[0] else float("nan")
    print("%-9s %3s %11.0f %11.0f %6.2f   %8.3f %8.3f %6.2f" % (
        label, "P%d" % pipeline, rps[0], rps[1], ratio, cpu[0], cpu[1], cpu_ratio), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000,
                        help="requests per non-pipelined test")
    parser.add_argument("--pipelined-requests", type=int, default=400_000,
                        help="requests per -P 16 test")
    parser.add_argument("--keyspace", type=int, default=100_000, help="-r for the tests")
    parser.add_argument("--only", default="", help="comma-separated test names")
    parser.add_argument("--pipelines", default="1,16", help="pipeline depths to run")
    parser.add_argument("--repeat", type=int, default=1,
                        help="best of N runs per test (alternating which server goes first)")
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys for the memory test")
    parser.add_argument("--skip-memory", action="store_true")
    opts = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="hakv-bench-throughput-")
    redis_port, hakv_port = free_port(), free_port()
    servers = [
        Server("redis", [REDIS, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no", "--dir", workdir], redis_port, workdir),
        Server("hakv", [sys.executable, "-m", "hakv.common.main", "--port", str(hakv_port),
                        "--bind", "127.0.0.1", "--save", ""], hakv_port, workdir),
    ]
    try:
        for s in servers:
            s.start()
        wanted = [w.strip().lower() for w in opts.only.split(",") if w.strip()]
        tests = [t for t in TESTS if not wanted or t in wanted]
        depths = [int(p) for p in opts.pipelines.split(",")]
        print("redis-benchmark -c 50, %d CPUs; cpu = server CPU seconds per 100k requests"
              % os.cpu_count())
        print("%-9s %3s %11s %11s %6s   %8s %8s %6s" % (
            "test", "", "redis rps", "hakv rps", "ratio", "cpu red", "cpu hakv", "x"))
        results = {}
        for pipeline in depths:
            requests = opts.requests if pipeline == 1 else opts.pipelined_requests
            for s in servers:
                s.call(b"FLUSHALL")
            for test in tests:
                best_rps, best_cpu = [0.0, 0.0], [float("inf")] * 2
                for attempt in range(opts.repeat):
                    # Alternate who goes first, so a burst of outside load
                    # does not always land on the same server.
                    order = (0, 1) if attempt % 2 == 0 else (1, 0)
                    for i in order:
                        rps, cpu = run_benchmark(servers[i], test, requests, pipeline,
                                                 opts.keyspace)
                        best_rps[i] = max(best_rps[i], rps)
                        best_cpu[i] = min(best_cpu[i], cpu)
                row(test, pipeline, best_rps, best_cpu)
                results[(test, pipeline)] = (best_rps, best_cpu)
        print()
        for pipeline in depths:
            ratios = [r[1] / r[0] for (t, p), (r, _) in results.items() if p == pipeline]
            cpus = [c[1] / c[0] for (t, p), (_, c) in results.items() if p == pipeline and c[0]]
            if ratios:
                print("P%-2d geometric mean: throughput ratio %.2f, CPU per request %.2fx"
                      % (pipeline, _geomean(ratios), _geomean(cpus) if cpus else float("nan")))
            for test in TARGETS.get(pipeline, ()):
                if (test, pipeline) in results:
                    r, c = results[(test, pipeline)]
                    print("  target %s P%d: ratio %.2f (>= %.2f: %s), CPU %.2fx (<= 2.5: %s)" % (
                        test.upper(), pipeline, r[1] / r[0], TARGET_RATIO[pipeline],
                        "met" if r[1] / r[0] >= TARGET_RATIO[pipeline] else "NOT met",
                        c[1] / c[0], "met" if c[1] / c[0] <= 2.5 else "NOT met"))
        if not opts.skip_memory:
            per_key = measure_memory(servers, opts.keys)
            ratio = per_key[1] / per_key[0]
            print("\nRSS per key, %d keys of 16 bytes -> 3 bytes: redis %.0f B, hakv %.0f B, "
                  "ratio %.2f (<= 2.5: %s)" % (opts.keys, per_key[0], per_key[1], ratio,
                                              "met" if ratio <= 2.5 else "NOT met"))
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _geomean(values: list) -> float:
    product = 1.0
    for v in values:
        product *= v
    return product ** (1 / len(values))


if __name__ == "__main__":
    sys.exit(main())
