"""What ACL checks and eviction cost, hakv next to real Redis in the same run.

SET and GET throughput (redis-benchmark, random keys `key:N`, 100-byte
values), each server in four setups, compared in two pairs:

  default    the default user (all permissions: the ACL check's fast path)
  acl        a user with key patterns (`~a:* ~b:* ~key:*`, +@all): every
             command's keys are matched against the patterns
  nolimit    no maxmemory, a keyspace of 1M possible keys
  evicting   maxmemory 8mb + allkeys-lru, filled past the limit first, so
             nearly every SET of a new key evicts one

For each run it records requests per second and the server's CPU time per
request, read from /proc (the time the kernel's scheduler counted on a CPU,
summed over the server's threads, in ns: /proc/PID/task/*/schedstat) just
before and after redis-benchmark, the same way for both servers. On a
shared, loaded machine the CPU per request moves far less than the
throughput, which also depends on how much CPU the benchmark client and
everyone else got. The ratios are setup/baseline for throughput and
cpu(baseline)/cpu(setup) for CPU: the throughput the setup would keep if the
server's CPU were the limit. Target: each costs hakv <= 10% (ratio >= 0.90).
Redis's own ratios in the same run show how much of a difference is noise.

Robustness: a round measures each pair as baseline, setup, setup, baseline
(the reverse every other round) and takes the ratio of the two sums, so a
load that drifts linearly during a round cancels out; the two servers take
turns going first. The report gives the median over --rounds rounds with
the lowest and highest round next to it, rather than a best-of that favours
lucky runs. The load average is printed at the start and the end.

Not part of the test suite. Usage:
    python bench/acl_eviction.py [--requests N] [--clients N] [--pipeline N]
                                 [--rounds N] [--pairs acl,eviction]
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from procs import hakv_server, redis_server  # noqa: E402

BENCHMARK = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
KEYSPACE = 1_000_000
LIMIT = "8mb"
FILL = 200_000  # SETs of random keys: some 30 MB of data, well past LIMIT
TESTS = ("set", "get")
# name -> (setup, baseline)
PAIRS = {"acl": ("acl", "default"), "eviction": ("evicting", "nolimit")}
LABELS = {"acl": "acl/default", "eviction": "evicting/nolimit"}


def run_benchmark(port: int, test: str, requests: int, clients: int, pipeline: int,
                  auth: tuple | None = None) -> float:
    argv = [BENCHMARK, "-p", str(port), "-c", str(clients), "-n", str(requests),
            "-P", str(pipeline), "-r", str(KEYSPACE), "-d", "100", "-t", test, "--csv"]
    if auth:
        argv += ["--user", auth[0], "-a", auth[1]]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=True).stdout
    rows = [row for row in csv.reader(io.StringIO(out)) if row and row[0] != "test"]
    if not rows:
        raise RuntimeError("unexpected redis-benchmark output: %r" % out)
    return float(rows[-1][1])


def cpu_ns(pid: int) -> int:
    """Nanoseconds the process's threads have spent on a CPU (user and
    system): the first field of each thread's schedstat. Far finer than
    /proc/PID/stat's clock ticks (10 ms), which a short run would feel."""
    total = 0
    for path in glob.glob("/proc/%d/task/*/schedstat" % pid):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended meanwhile
    return total


def setup(client, name: str) -> tuple | None:
    """Put the server in a setup; returns the credentials to use, if any."""
    client.flushall()
    client.config_set("maxmemory", "0")
    client.config_set("maxmemory-policy", "noeviction")
    if name == "acl":
        client.execute_command("ACL", "SETUSER", "bench", "on", ">benchpw", "resetkeys",
                               "~a:*", "~b:*", "~key:*", "+@all")
        return ("bench", "benchpw")
    if name == "evicting":
        client.config_set("maxmemory-policy", "allkeys-lru")
        client.config_set("maxmemory", LIMIT)
    return None


def measure(proc, client, name: str, opts) -> dict:
    """One run of a setup: {test: (rps, us of server CPU per request)}."""
    auth = setup(client, name)
    if name == "evicting":
        # Fill past the limit first (pipelined: not measured), so that
        # nearly every SET of what follows evicts a key.
        evicted = client.info("stats")["evicted_keys"]
        run_benchmark(proc.port, "set", FILL, opts.clients, 32)
        assert client.info("stats")["evicted_keys"] > evicted
    out = {}
    for test in TESTS:
        before = cpu_ns(proc.pid)
        rps = run_benchmark(proc.port, test, opts.requests, opts.clients, opts.pipeline, auth)
        out[test] = (rps, (cpu_ns(proc.pid) - before) / opts.requests / 1000)
    if name == "evicting":
        info = client.info("memory")
        out["used/max"] = info["used_memory"] / info["maxmemory"]
    return out


def _spread(values: list) -> str:
    """The median of the rounds' values and their range."""
    return "%.2f [%.2f-%.2f]" % (statistics.median(values), min(values), max(values))


def _load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--pipeline", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pairs", default="acl,eviction",
                    help="which comparisons: acl, eviction or both (comma-separated)")
    opts = ap.parse_args()
    pairs = [p.strip() for p in opts.pairs.split(",") if p.strip()]
    for p in pairs:
        if p not in PAIRS:
            ap.error("unknown pair %r (known: %s)" % (p, ", ".join(PAIRS)))
    print("start:", _load(), flush=True)
    root = tempfile.mkdtemp(prefix="hakv-bench-acl-eviction-")
    servers = []
    try:
        servers = [("redis", redis_server(os.path.join(root, "redis")).start()),
                   ("hakv", hakv_server(os.path.join(root, "hakv")).start())]
        clients = {kind: proc.client() for kind, proc in servers}
        # (kind, setup, test) -> [(rps, cpu us/req) per run]; ratios per
        # round: (kind, pair, test, "rps" | "cpu") -> [ratio per round].
        runs: dict = {}
        ratios: dict = {}
        used: dict = {}
        for round_no in range(opts.rounds):
            flip = round_no % 2 == 1
            turn = servers[::-1] if flip else servers
            for pair in pairs:
                setup_name, base_name = PAIRS[pair]
                first, second = (setup_name, base_name) if flip else (base_name, setup_name)
                for kind, proc in turn:
                    client = clients[kind]
                    got = {setup_name: [], base_name: []}
                    for name in (first, second, second, first):
                        result = measure(proc, client, name, opts)
                        got[name].append(result)
                        if "used/max" in result:
                            used.setdefault(kind, []).append(result["used/max"])
                    for test in TESTS:
                        s_rps = sum(r[test][0] for r in got[setup_name])
                        b_rps = sum(r[test][0] for r in got[base_name])
                        s_cpu = sum(r[test][1] for r in got[setup_name])
                        b_cpu = sum(r[test][1] for r in got[base_name])
                        ratios.setdefault((kind, pair, test, "rps"), []).append(s_rps / b_rps)
                        ratios.setdefault((kind, pair, test, "cpu"), []).append(b_cpu / s_cpu)
                        for name in (setup_name, base_name):
                            runs.setdefault((kind, name, test), []).extend(
                                r[test] for r in got[name])
            print("round %d done: %s" % (round_no + 1, _load()), flush=True)
        for client in clients.values():
            client.close()
        print("redis-benchmark: %d requests, %d clients, pipeline %d, -r %d, 100-byte values; "
              "%d rounds of baseline/setup/setup/baseline" % (
                  opts.requests, opts.clients, opts.pipeline, KEYSPACE, opts.rounds))
        print("%-10s %-5s %10s %10s %10s %12s %12s" % (
            "setup", "test", "redis rps", "hakv rps", "hakv/redis", "redis us/req",
            "hakv us/req"))
        for pair in pairs:
            for name in PAIRS[pair][::-1]:
                for test in TESTS:
                    r = statistics.median(x[0] for x in runs[("redis", name, test)])
                    h = statistics.median(x[0] for x in runs[("hakv", name, test)])
                    rc = statistics.median(x[1] for x in runs[("redis", name, test)])
                    hc = statistics.median(x[1] for x in runs[("hakv", name, test)])
                    print("%-10s %-5s %10.0f %10.0f %10.2f %12.2f %12.2f"
                          % (name, test, r, h, h / r, rc, hc))
        print("(medians over all runs; us/req: the server's CPU time per request)")
        print()
        print("cost ratio (>= 0.90): median [lowest-highest] of the rounds' ratios")
        print("%-22s %18s %18s %18s %18s" % ("", "redis rps", "hakv rps", "redis cpu",
                                             "hakv cpu"))
        for pair in pairs:
            for test in TESTS:
                cells = [_spread(ratios[(kind, pair, test, measure_)])
                         for measure_ in ("rps", "cpu") for kind in ("redis", "hakv")]
                print("%-22s %18s %18s %18s %18s" % ("%s %s" % (LABELS[pair], test), *cells))
        if used:
            print("used_memory/maxmemory after the evicting runs: redis %s, hakv %s"
                  % (_spread(used["redis"]), _spread(used["hakv"])))
        print("end:", _load())
    finally:
        for _, proc in servers:
            proc.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
