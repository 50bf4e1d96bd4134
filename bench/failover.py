"""Failover under faults, hakv next to real Redis measured in the same run.

Every round starts a fresh topology (1 primary, 2 replicas, 3 sentinels,
down-after-milliseconds 1000, failover-timeout 10000) with `hakv up`'s
machinery (lab/topology.py): every member behind the lab's fault proxies
(lab/proxy.py), so the harness, not the server, does the cutting, and both
systems get exactly the same faults. It waits until every sentinel knows
every replica and every other sentinel, starts `hakv watch`'s observer
(lab/watch.py: the sentinels' events, the nodes' roles, and a Sentinel-aware
probe writer that follows every other write with WAIT 1 100), injects the
fault into the primary and reads the failover report (lab/report.py):

  kill       SIGKILL
  pause      SIGSTOP (SIGCONT once the failover is over)
  partition  cut from every node, sentinel and client (healed once it is over)

  write unavailability: last write accepted before the failover -> first
                        write accepted by the new primary (the probe writes
                        every 20 ms, 200 ms timeouts: against a frozen or cut
                        primary it retries every ~200 ms, so that is the
                        resolution of this number for pause and partition)
  detection:            fault -> first sentinel's +sdown of the primary
  lost:                 writes the old primary acknowledged that the new one
                        does not have, with a successful WAIT 1 and without

  hakv : hakv-server nodes + hakv-sentinel
  redis: redis-server nodes + redis-sentinel (Debian's 7.0.15)

The SVG timeline of each system's first round of each scenario goes to
--svg-dir. The older measurement (SIGKILL, no proxies, redis-py's Sentinel
client retrying every few ms) is the scenario `kill-direct`.

Not part of the test suite. Usage:
    python bench/failover.py [--rounds 10] [--down-after 1000] [--only hakv,redis]
                             [--scenarios kill,pause,partition[,kill-direct]]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import redis  # noqa: E402

from hakv.lab.faults import LocalBackend  # noqa: E402
from hakv.lab.report import build_report  # noqa: E402
from hakv.lab.svg import render_svg  # noqa: E402
from hakv.lab.topology import Topology, free_port_run  # noqa: E402
from hakv.lab.watch import Observer  # noqa: E402
from sentinel_support import HA, MASTER, kill  # noqa: E402

SYSTEMS = {
    "hakv": dict(nodes_kind="hakv", sentinel_kinds=("hakv", "hakv", "hakv")),
    "redis": dict(nodes_kind="redis", sentinel_kinds=("redis", "redis", "redis")),
}
VERB = {"kill": "kill", "pause": "stop", "partition": "partition"}
UNDO = {"pause": "cont", "partition": "heal"}
PROBE_TIMEOUT = 0.2  # as the kill-direct client: a frozen primary costs at most this


# ---------------------------------------------------------------------------
# the old measurement: SIGKILL, no proxies, redis-py's Sentinel client


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


# ---------------------------------------------------------------------------
# the fault rounds


async def observe_fault(backend: LocalBackend, scenario: str, timeout: float = 40.0):
    obs = Observer(backend, poll_interval=0.1, probe_timeout=PROBE_TIMEOUT)
    await obs.start()
    await obs.wait_ready()
    obs.start_probe()
    loop = asyncio.get_running_loop()
    deadline = time.time() + 10
    while time.time() < deadline and sum(1 for w in obs.probe.writes if w.acked) < 50:
        await asyncio.sleep(0.02)
    await loop.run_in_executor(None, backend.apply, VERB[scenario], "node1")
    deadline = time.time() + timeout
    while not obs.failover_done() and time.time() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)
    obs.probe.running = False
    report = await build_report(obs)
    await obs.stop()
    if scenario in UNDO:
        await loop.run_in_executor(None, backend.apply, UNDO[scenario], "node1")
    return report


def fault_round(system: str, scenario: str, down_after: int, root: str):
    port, sport = free_port_run(3), free_port_run(3)
    topo = Topology.plan(root, port, sport, down_after_ms=down_after, impl=system)
    os.makedirs(topo.dir, exist_ok=True)
    try:
        topo.start_all()
        backend = LocalBackend(topo.dir, topo)
        backend.wait_settled()
        report = asyncio.run(observe_fault(backend, scenario))
        if report.first_write_new_at is None:
            raise RuntimeError("%s %s: no write on a new primary (see %s)"
                               % (system, scenario, root))
        return report
    finally:
        topo.stop_all()


# ---------------------------------------------------------------------------


def _ms(xs: list) -> tuple[str, str]:
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-", "-"
    return "%.0f" % (statistics.median(xs) * 1000), "%.0f" % (max(xs) * 1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--down-after", type=int, default=1000)
    parser.add_argument("--only", default="hakv,redis", help="comma-separated: hakv, redis")
    parser.add_argument("--scenarios", default="kill,pause,partition",
                        help="comma-separated: kill, pause, partition, kill-direct")
    parser.add_argument("--svg-dir", default="bench-failover-svg",
                        help="where the SVG timelines of the first rounds go")
    parser.add_argument("--keep", action="store_true", help="keep the logs of every round")
    args = parser.parse_args()
    systems = [s for s in args.only.split(",") if s]
    scenarios = [s for s in args.scenarios.split(",") if s]
    results: dict = {(sc, sy): [] for sc in scenarios for sy in systems}
    base = tempfile.mkdtemp(prefix="hakv-failover-bench-")
    os.makedirs(args.svg_dir, exist_ok=True)
    try:
        for i in range(args.rounds):
            for scenario in scenarios:
                for system in systems:  # interleaved, so load drifts hit both alike
                    root = os.path.join(base, f"{system}-{scenario}-{i}")
                    if scenario == "kill-direct":
                        took = one_round(system, args.down_after, root)
                        results[(scenario, system)].append({"unavailable": took})
                        print(f"round {i + 1:2d} {scenario:10s} {system:5s} "
                              f"first write {took * 1000:6.0f} ms", flush=True)
                        continue
                    r = fault_round(system, scenario, args.down_after, root)
                    results[(scenario, system)].append({
                        "unavailable": r.unavailable_s, "detection": r.detection_s,
                        "first_write": r.first_write_s,
                        "lost_wait": len(r.lost_wait), "acked_wait": r.acked_old_wait,
                        "lost_nowait": len(r.lost_nowait), "acked_nowait": r.acked_old_nowait,
                    })
                    if i == 0:
                        path = os.path.join(args.svg_dir, f"{system}-{scenario}.svg")
                        with open(path, "w") as f:
                            f.write(render_svg(r))
                    print(f"round {i + 1:2d} {scenario:10s} {system:5s} "
                          f"unavailable {r.unavailable_s * 1000:6.0f} ms  detection "
                          f"{(r.detection_s or 0) * 1000:6.0f} ms  lost {len(r.lost_wait)} "
                          f"WAIT-acked, {len(r.lost_nowait)} other", flush=True)
    finally:
        if args.keep:
            print("logs in", base)
        else:
            shutil.rmtree(base, ignore_errors=True)
    print()
    print(f"failover under faults: {args.rounds} rounds, down-after {args.down_after} ms "
          f"(times in ms; lost = acked by the old primary, missing on the new one)")
    head = (f"{'scenario':11s} {'system':6s} {'unavail med':>11s} {'max':>6s} "
            f"{'detect med':>10s} {'max':>6s} {'lost WAIT-acked':>16s} {'lost other':>12s}")
    print(head)
    print("-" * len(head))
    for scenario in scenarios:
        for system in systems:
            rows = results[(scenario, system)]
            um, ux = _ms([r["unavailable"] for r in rows])
            dm, dx = _ms([r.get("detection") for r in rows])
            if scenario == "kill-direct":
                lw = lo = "-"
            else:
                lw = "%d / %d" % (sum(r["lost_wait"] for r in rows),
                                  sum(r["acked_wait"] for r in rows))
                lo = "%d / %d" % (sum(r["lost_nowait"] for r in rows),
                                  sum(r["acked_nowait"] for r in rows))
            print(f"{scenario:11s} {system:6s} {um:>11s} {ux:>6s} {dm:>10s} {dx:>6s} "
                  f"{lw:>16s} {lo:>12s}")
        if len(systems) == 2 and all(results[(scenario, s)] for s in systems):
            a, b = ([r["unavailable"] for r in results[(scenario, s)]] for s in systems)
            print(f"{'':11s} ratio {systems[0]}/{systems[1]} unavailability: median "
                  f"{statistics.median(a) / statistics.median(b):.2f}  max {max(a) / max(b):.2f}")
    print("\nSVG timelines of the first rounds in", os.path.abspath(args.svg_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
