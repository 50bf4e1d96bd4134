"""Failover time, hakv next to real Redis measured in the same run.

Each round starts a fresh topology (1 primary, 2 replicas, 3 sentinels, all
on 127.0.0.1, down-after-milliseconds 1000, failover-timeout 10000), waits
until every sentinel knows every replica and every other sentinel, then
SIGKILLs the primary and measures the time until the first write accepted by
the new primary through redis-py's Sentinel client (a client retrying every
few milliseconds, 200 ms socket timeouts).

  hakv : hakv-server nodes + hakv-sentinel
  redis: redis-server nodes + redis-sentinel (Debian's 7.0.15)

Not part of the test suite. Usage:
    python bench/failover.py [--rounds 10] [--down-after 1000] [--only hakv,redis]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import redis  # noqa: E402

from sentinel_support import HA, MASTER, kill  # noqa: E402

SYSTEMS = {
    "hakv": dict(nodes_kind="hakv", sentinel_kinds=("hakv", "hakv", "hakv")),
    "redis": dict(nodes_kind="redis", sentinel_kinds=("redis", "redis", "redis")),
}


def one_round(system: str, down_after: int, root: str) -> float:
    """Seconds from SIGKILL of the primary to the first accepted write."""
    topo = HA(root, down_after=down_after, failover_timeout=10000, **SYSTEMS[system])
    try:
        topo.start()
        topo.wait_discovery(timeout=30)
        sentinel = topo.sentinel_client(socket_timeout=0.2)
        master = sentinel.master_for(MASTER, socket_timeout=0.2, socket_connect_timeout=0.2)
        master.set("warmup", "1")
        old = topo.nodes[0]
        kill(old)
        killed_at = time.monotonic()
        while True:
            try:
                master.set("probe", "1")
                elapsed = time.monotonic() - killed_at
                # the write went to the new primary (the old one is dead)
                host, port = sentinel.discover_master(MASTER)
                assert port != old.port, "a write was accepted by a dead primary?"
                return elapsed
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                    redis.exceptions.ReadOnlyError, redis.exceptions.ResponseError):
                pass
            if time.monotonic() - killed_at > 60:
                raise RuntimeError(f"{system}: no failover within 60 s\n{topo.diagnose()}")
            time.sleep(0.005)
    finally:
        topo.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--down-after", type=int, default=1000)
    parser.add_argument("--only", default="hakv,redis", help="comma-separated: hakv, redis")
    parser.add_argument("--keep", action="store_true", help="keep the logs of every round")
    args = parser.parse_args()
    systems = [s for s in args.only.split(",") if s]
    results: dict[str, list[float]] = {s: [] for s in systems}
    base = tempfile.mkdtemp(prefix="hakv-failover-bench-")
    try:
        for i in range(args.rounds):
            for system in systems:  # interleaved, so load drifts hit both alike
                took = one_round(system, args.down_after, os.path.join(base, f"{system}{i}"))
                results[system].append(took)
                print(f"round {i + 1:2d} {system:5s} {took * 1000:7.0f} ms", flush=True)
    finally:
        if args.keep:
            print("logs in", base)
        else:
            shutil.rmtree(base, ignore_errors=True)
    print()
    print(f"SIGKILL of the primary -> first write accepted by the new primary "
          f"(down-after {args.down_after} ms, {args.rounds} rounds)")
    print(f"{'':8s} {'median ms':>10s} {'max ms':>10s} {'min ms':>10s}")
    for system in systems:
        xs = results[system]
        print(f"{system:8s} {statistics.median(xs) * 1000:10.0f} {max(xs) * 1000:10.0f} "
              f"{min(xs) * 1000:10.0f}")
    if len(systems) == 2 and all(results.values()):
        a, b = (results[s] for s in systems)
        print(f"ratio {systems[0]}/{systems[1]}: median {statistics.median(a) / statistics.median(b):.2f}"
              f"  max {max(a) / max(b):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
