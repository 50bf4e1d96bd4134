"""Collection commands: hakv against Redis 7.0, measured in the same run.

Starts a redis-server and a hakv-server side by side (free ports, temporary
directories, no persistence), then for every test runs redis-benchmark
(-c 50, once non-pipelined and once with -P 16) against Redis and right after
against hakv, and prints requests/s for both and the ratio hakv/Redis:

* redis-benchmark's own tests (-t): lpush lpop sadd hset zadd zpopmin, and
  get and set as the baselines of what the server core allows for a read
  and a write (a type command's gap to set is its own handler's cost);
* sorted-set commands given on its command line (random members and scores
  through __rand_int__): ZADD, ZINCRBY, ZSCORE, ZRANK, ZRANGE ... WITHSCORES,
  ZRANGEBYSCORE ... LIMIT, ZREVRANGE 0 99;
* a 1M-member sorted set: loaded with pipelined ZADDs (members/s), then
  ZRANGEBYSCORE / ZRANK / ZSCORE / ZADD on it through redis-benchmark.

Not part of the test suite. Usage:

    python bench/types.py [--requests 100000] [--pipelined-requests 400000]
                          [--only zadd,zrange] [--skip-big] [--repeat 1]
                          [--pipelines 1,16]

The machine's other load shows in both columns; the ratio is what counts.
To keep a load that changes during the run from favouring one server, each
test runs in --rounds slices alternating between the two servers (Redis
first in odd slices, hakv first in even ones); a server's rate is its
requests over its total time. The "cpu ratio" column compares requests per
CPU-second of each server process (from /proc): what each would serve with
a core to itself, which the machine's other load does not change.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from bench_support import Server, cpu_seconds, encode, free_port

BENCHMARK = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"

# (label, redis-benchmark arguments): "-t name" tests, or a command line.
TESTS = [
    ("get (core baseline)", ["-t", "get"]),
    ("set (write baseline)", ["-t", "set"]),
    ("lpush", ["-t", "lpush"]),
    ("lpop", ["-t", "lpop"]),
    ("sadd", ["-t", "sadd"]),
    ("hset", ["-t", "hset"]),
    ("zadd", ["-t", "zadd"]),
    ("zpopmin", ["-t", "zpopmin"]),
    ("ZADD rand", ["ZADD", "myzset", "__rand_int__", "member:__rand_int__"]),
    ("ZINCRBY", ["ZINCRBY", "myzset", "1.5", "member:__rand_int__"]),
    ("ZSCORE", ["ZSCORE", "myzset", "member:__rand_int__"]),
    ("ZRANK", ["ZRANK", "myzset", "member:__rand_int__"]),
    ("ZRANGE 0 9 WS", ["ZRANGE", "myzset", "0", "9", "WITHSCORES"]),
    ("ZRANGEBYSCORE L10", ["ZRANGEBYSCORE", "myzset", "__rand_int__", "+inf", "LIMIT", "0",
                           "10"]),
    ("ZREVRANGE 0 99", ["ZREVRANGE", "myzset", "0", "99"]),
]
# Shown for comparison, left out of the geometric means (which keep the
# rows of earlier sessions' figures).
UNAVERAGED = {"set (write baseline)"}

BIG = 1_000_000
BIG_TESTS = [
    ("1M ZRANGEBYSCORE L10", ["ZRANGEBYSCORE", "bigz", "__rand_int__", "+inf", "LIMIT", "0",
                              "10"]),
    ("1M ZRANGEBYSCORE 100", ["ZRANGEBYSCORE", "bigz", "__rand_int__", "+inf", "LIMIT", "0",
                              "100", "WITHSCORES"]),
    ("1M ZRANK", ["ZRANK", "bigz", "m:__rand_int__"]),
    ("1M ZSCORE", ["ZSCORE", "bigz", "m:__rand_int__"]),
    ("1M ZADD update", ["ZADD", "bigz", "__rand_int__", "m:__rand_int__"]),
]


def run_benchmark(port: int, args: list, requests: int, pipeline: int, keyspace: int) -> float:
    argv = [BENCHMARK, "-p", str(port), "-c", "50", "-n", str(requests), "-P", str(pipeline),
            "-r", str(keyspace), "--csv"] + args
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600).stdout
    rows = [row for row in csv.reader(io.StringIO(out)) if row and row[0] != "test"]
    if not rows:
        raise RuntimeError("no result from %s" % " ".join(argv))
    return float(rows[-1][1])


def measure(servers: list, args: list, requests: int, pipeline: int, keyspace: int,
            rounds: int) -> tuple[list, list]:
    """For one test, run in alternating slices: each server's requests/s,
    and its requests per CPU-second (what it would serve with a core of its
    own: on a loaded machine wall-clock rates depend on what else runs)."""
    per_round = max(1, requests // rounds)
    seconds = [0.0] * len(servers)
    cpu = [0.0] * len(servers)
    for i in range(rounds):
        order = list(range(len(servers)))
        if i % 2:
            order.reverse()
        for k in order:
            before = cpu_seconds(servers[k].proc.pid)
            rps = run_benchmark(servers[k].port, args, per_round, pipeline, keyspace)
            cpu[k] += cpu_seconds(servers[k].proc.pid) - before
            seconds[k] += per_round / rps
    total = per_round * rounds
    return [total / t for t in seconds], [total / max(c, 0.01) for c in cpu]


def load_big(server: Server) -> float:
    """1M members m:<12 digits> with score i, pipelined ZADDs of 1000
    pairs, in random order; returns members/s."""
    order = list(range(BIG))
    random.Random(1).shuffle(order)
    batches = []
    for lo in range(0, BIG, 1000):
        args = [b"ZADD", b"bigz"]
        for i in order[lo:lo + 1000]:
            args += [b"%d" % i, b"m:%012d" % i]
        batches.append(encode(args))
    with socket.create_connection(("127.0.0.1", server.port), timeout=300) as s:
        start = time.perf_counter()
        got = b""
        for batch in batches:
            s.sendall(batch)  # the replies (":1000") are tiny: read them at the end
        while got.count(b"\r\n") < len(batches):
            got += s.recv(65536)
        elapsed = time.perf_counter() - start
    return BIG / elapsed


def row(label: str, pipeline: int, rps: list, per_cpu: list) -> tuple[float, float]:
    """Print a test's line; returns (ratio, CPU-time ratio), hakv / Redis."""
    ratio = rps[1] / rps[0]
    cpu_ratio = per_cpu[1] / per_cpu[0]
    print("%-24s %3s %12.0f %12.0f %7.2f %9.2f" % (label, "P%d" % pipeline, rps[0], rps[1],
                                                 ratio, cpu_ratio), flush=True)
    return ratio, cpu_ratio


def print_means(title: str, table: dict) -> None:
    for pipeline, values in table.items():
        if values:
            for i, kind in enumerate(("", "CPU-time ")):
                geo = 1.0
                for v in values:
                    geo *= v[i]
                print("geometric mean %sratio%s P%d: %.2f" % (kind, title, pipeline,
                                                             geo ** (1 / len(values))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000,
                        help="requests per non-pipelined test")
    parser.add_argument("--pipelined-requests", type=int, default=400_000,
                        help="requests per -P 16 test")
    parser.add_argument("--keyspace", type=int, default=100_000, help="-r for the tests")
    parser.add_argument("--only", default="", help="comma-separated label substrings")
    parser.add_argument("--skip-big", action="store_true", help="skip the 1M-member part")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per test")
    parser.add_argument("--rounds", type=int, default=4,
                        help="alternating slices per test (see the module docstring)")
    parser.add_argument("--pipelines", default="1,16", help="pipeline depths to run")
    opts = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="hakv-bench-types-")
    redis_port, hakv_port = free_port(), free_port()
    servers = []
    try:
        redis = Server("redis", [REDIS, "--port", str(redis_port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", workdir],
                       redis_port, workdir).start()
        servers.append(redis)
        hakv = Server("hakv", [sys.executable, "-m", "hakv.common.main", "--port",
                               str(hakv_port), "--bind", "127.0.0.1", "--save", ""],
                      hakv_port, workdir).start()
        servers.append(hakv)
        wanted = [w.strip().lower() for w in opts.only.split(",") if w.strip()]
        print("%-24s %3s %12s %12s %7s %9s" % ("test", "", "redis rps", "hakv rps", "ratio",
                                              "cpu ratio"))
        depths = [int(p) for p in opts.pipelines.split(",")]
        runs = [(p, opts.requests if p == 1 else opts.pipelined_requests) for p in depths]
        ratios = {p: [] for p in depths}
        big_ratios: dict = {}
        for pipeline, requests in runs:
            for s in servers:
                s.call(b"FLUSHALL")
            for label, args in TESTS:
                if wanted and not any(w in label.lower() for w in wanted):
                    continue
                best, best_cpu = [0.0, 0.0], [0.0, 0.0]
                for _ in range(opts.repeat):
                    rates, per_cpu = measure(servers, args, requests, pipeline, opts.keyspace,
                                             opts.rounds)
                    best = [max(b, r) for b, r in zip(best, rates)]
                    best_cpu = [max(b, r) for b, r in zip(best_cpu, per_cpu)]
                result = row(label, pipeline, best, best_cpu)
                if label not in UNAVERAGED:
                    ratios[pipeline].append(result)
        if not opts.skip_big:
            print()
            rates = []
            for s in servers:
                s.call(b"FLUSHALL")
                rates.append(load_big(s))
            print("%-24s %3s %12.0f %12.0f %7.2f   (members/s)" % (
                "1M ZADD load, 1000/cmd", "", rates[0], rates[1], rates[1] / rates[0]))
            for label, args in BIG_TESTS:
                for pipeline, requests in runs:
                    rps, per_cpu = measure(servers, args, requests, pipeline, BIG, opts.rounds)
                    big_ratios.setdefault(pipeline, []).append(row(label, pipeline, rps, per_cpu))
        print_means("", ratios)
        print_means(" (1M-member set)", big_ratios)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
