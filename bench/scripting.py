"""Scripting benchmark, hakv next to real Redis measured in the same run.

EVALSHA of a small script that does a SET and a GET on a random key, through
redis-benchmark (50 clients, no pipelining by default), on both servers; also
EVALSHA of a script that calls nothing (what running any script costs: the
request, the dispatch, one trip into Lua) and plain SET and GET as a
reference for what a single command costs each server. Each measurement is
repeated and the best run kept (the machine may be shared). Prints requests
per second and hakv/Redis ratios, and each server's CPU time per request
(from /proc; Redis's over hakv's as the second ratio): on a loaded machine
the rps ratio swings, the CPU ratio much less. Target: EVALSHA set+get
ratio >= 0.5.

Not part of the test suite. Usage:
    python bench/scripting.py [--requests N] [--clients N] [--pipeline N] [--rounds N]
                              [--only TEXT]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from procs import hakv_server, redis_server  # noqa: E402
from bench_support import cpu_seconds  # noqa: E402

BENCHMARK = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
SCRIPT = "redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])"
NOOP_SCRIPT = "return 1"



def run_benchmark(server, args: list, requests: int, clients: int, pipeline: int):
    """(requests per second, server CPU microseconds per request). The CPU
    figure does not depend on how busy the machine is, the rps does."""
    argv = [BENCHMARK, "-p", str(server.port), "-c", str(clients), "-n", str(requests),
            "-P", str(pipeline), "-r", "100000", "--csv"] + args
    cpu_before = cpu_seconds(server.pid)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=True).stdout
    cpu = cpu_seconds(server.pid) - cpu_before
    rows = [row for row in csv.reader(io.StringIO(out)) if row and row[0] != "test"]
    if not rows:
        raise RuntimeError("unexpected redis-benchmark output: %r" % out)
    return float(rows[-1][1]), cpu * 1e6 / requests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--pipeline", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="",
                    help="run only the tests whose label contains this text (e.g. 'set+get')")
    opts = ap.parse_args()
    root = tempfile.mkdtemp(prefix="hakv-bench-scripting-")
    servers = []
    try:
        servers = [redis_server(os.path.join(root, "redis")).start(),
                   hakv_server(os.path.join(root, "hakv")).start()]
        shas = [s.client().script_load(SCRIPT) for s in servers]
        noop_shas = [s.client().script_load(NOOP_SCRIPT) for s in servers]
        assert shas[0] == shas[1] and noop_shas[0] == noop_shas[1]
        tests = [
            ("EVALSHA set+get", ["evalsha", shas[0], "1", "key:__rand_int__", "value"]),
            ("EVALSHA no-op", ["evalsha", noop_shas[0], "1", "key:__rand_int__", "value"]),
            ("SET", ["-t", "set"]),
            ("GET", ["-t", "get"]),
        ]
        tests = [t for t in tests if opts.only.lower() in t[0].lower()]
        print("redis-benchmark: %d requests, %d clients, pipeline %d, best of %d rounds"
              % (opts.requests, opts.clients, opts.pipeline, opts.rounds))
        # The machine may be shared: its load goes with the figures.
        print("load average before: %.2f %.2f %.2f" % os.getloadavg())
        print("%-18s %10s %10s %6s   %15s %6s" % ("test", "redis rps", "hakv rps", "ratio",
                                                 "CPU us/req r/h", "ratio"))
        for label, args in tests:
            best = [0.0, 0.0]
            cpu = [float("inf"), float("inf")]
            for _ in range(opts.rounds):
                for i, s in enumerate(servers):
                    rps, us = run_benchmark(s, args, opts.requests, opts.clients, opts.pipeline)
                    best[i] = max(best[i], rps)
                    cpu[i] = min(cpu[i], us)
            ratio = best[1] / best[0] if best[0] else float("nan")
            cpu_ratio = cpu[0] / cpu[1] if cpu[1] else float("nan")
            print("%-18s %10.0f %10.0f %6.2f   %7.1f/%-7.1f %6.2f" % (
                label, best[0], best[1], ratio, cpu[0], cpu[1], cpu_ratio))
            sys.stdout.flush()
        print("load average after:  %.2f %.2f %.2f" % os.getloadavg())
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
