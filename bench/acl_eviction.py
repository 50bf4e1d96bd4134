"""What ACL checks and eviction cost, hakv next to real Redis in the same run.

SET and GET throughput (redis-benchmark, random keys `key:N`, 100-byte
values), each server in four setups:

  default    the default user (all permissions: the ACL check's fast path)
  acl        a user with key patterns (`~a:* ~b:* ~key:*`, +@all): every
             command's keys are matched against the patterns
  nolimit    no maxmemory, a keyspace of 1M possible keys
  evicting   maxmemory 8mb + allkeys-lru, filled past the limit first, so
             nearly every SET of a new key evicts one

Prints requests per second and the server's CPU time per request (from
INFO cpu, before and after each run: far less sensitive to a shared, loaded
machine than the throughput), then the ratios acl/default and
evicting/nolimit for each server, from both: the CPU ratio is
cpu(baseline) / cpu(setup), the throughput the setup would keep if the
server's CPU were the limit. Target: each costs hakv <= 10% of its
throughput (ratio >= 0.90).

Robustness on a shared machine: a ratio is taken within each round (the
setup and its baseline run minutes apart at most, on the same server), and
the report gives the median over --rounds rounds with the lowest and
highest round next to it, rather than a best-of that favours lucky runs.
The setups run in the reverse order every other round, so a load that
drifts during a round does not always favour the same side. The load
average is printed at the start and the end.

Not part of the test suite. Usage:
    python bench/acl_eviction.py [--requests N] [--clients N] [--pipeline N] [--rounds N]
"""

from __future__ import annotations

import argparse
import csv
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


def cpu_seconds(client) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


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


def _median(values: list) -> float:
    return statistics.median(values)


def _spread(values: list) -> str:
    """The median of the rounds' values and their range."""
    return "%.2f [%.2f-%.2f]" % (_median(values), min(values), max(values))


def _load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--pipeline", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    opts = ap.parse_args()
    print("start:", _load(), flush=True)
    root = tempfile.mkdtemp(prefix="hakv-bench-acl-eviction-")
    servers = []
    try:
        servers = [("redis", redis_server(os.path.join(root, "redis")).start()),
                   ("hakv", hakv_server(os.path.join(root, "hakv")).start())]
        setups = ["default", "acl", "nolimit", "evicting"]
        # (kind, setup, test) -> [rps per round]; (kind, setup, test, "cpu") ->
        # [us per request per round]; (kind, "used/max") -> [per round].
        runs: dict = {}
        for round_no in range(opts.rounds):
            order = setups if round_no % 2 == 0 else setups[::-1]
            for kind, proc in servers:
                client = proc.client()
                for name in order:
                    auth = setup(client, name)
                    if name == "evicting":
                        # Fill past the limit first: what follows evicts.
                        run_benchmark(proc.port, "set", opts.requests, opts.clients,
                                      opts.pipeline)
                        assert client.info("stats")["evicted_keys"] > 0
                    for test in ("set", "get"):
                        cpu_before = cpu_seconds(client)
                        rps = run_benchmark(proc.port, test, opts.requests, opts.clients,
                                            opts.pipeline, auth)
                        cpu = (cpu_seconds(client) - cpu_before) / opts.requests * 1e6
                        runs.setdefault((kind, name, test), []).append(rps)
                        runs.setdefault((kind, name, test, "cpu"), []).append(cpu)
                    if name == "evicting":
                        info = client.info("memory")
                        runs.setdefault((kind, "used/max"), []).append(
                            info["used_memory"] / info["maxmemory"])
                client.close()
            print("round %d done: %s" % (round_no + 1, _load()), flush=True)
        print("redis-benchmark: %d requests, %d clients, pipeline %d, -r %d, 100-byte values, "
              "median of %d rounds" % (opts.requests, opts.clients, opts.pipeline, KEYSPACE,
                                       opts.rounds))
        print("%-10s %-5s %10s %10s %10s %12s %12s" % (
            "setup", "test", "redis rps", "hakv rps", "hakv/redis", "redis us/req",
            "hakv us/req"))
        for name in setups:
            for test in ("set", "get"):
                r = _median(runs[("redis", name, test)])
                h = _median(runs[("hakv", name, test)])
                rc = _median(runs[("redis", name, test, "cpu")])
                hc = _median(runs[("hakv", name, test, "cpu")])
                print("%-10s %-5s %10.0f %10.0f %10.2f %12.2f %12.2f"
                      % (name, test, r, h, h / r, rc, hc))
        print("(us/req: the server's CPU time per request)")
        print()
        print("cost ratio (>= 0.90): median [lowest-highest] of the rounds' ratios")
        print("%-22s %18s %18s %18s %18s" % ("", "redis rps", "hakv rps", "redis cpu",
                                             "hakv cpu"))
        for label, a, b in (("acl/default", "acl", "default"),
                            ("evicting/nolimit", "evicting", "nolimit")):
            for test in ("set", "get"):
                cells = []
                for key in ((), ("cpu",)):
                    for kind in ("redis", "hakv"):
                        setup_runs = runs[(kind, a, test) + key]
                        base_runs = runs[(kind, b, test) + key]
                        if key:  # CPU per request: less is better
                            ratios = [x / y for x, y in zip(base_runs, setup_runs)]
                        else:
                            ratios = [x / y for x, y in zip(setup_runs, base_runs)]
                        cells.append(_spread(ratios))
                print("%-22s %18s %18s %18s %18s" % ("%s %s" % (label, test), *cells))
        print("used_memory/maxmemory after the evicting run: redis %s, hakv %s"
              % (_spread(runs[("redis", "used/max")]), _spread(runs[("hakv", "used/max")])))
        print("end:", _load())
    finally:
        for _, proc in servers:
            proc.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
