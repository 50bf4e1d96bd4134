"""`hakv clients`: what real client libraries do when the primary fails.

For every client library with its own Sentinel support (the writers in
tests/clients/failover/) and every fault (kill, pause, partition), one round:

  1. a fresh topology (1 primary, 2 replicas, 3 sentinels, down-after 1000 ms)
     with `hakv up`'s machinery (lab/topology.py), every member behind the
     lab's fault proxies (lab/proxy.py), hakv or Debian's redis-server +
     redis-sentinel (`--systems`), exactly as bench/failover.py does;
  2. the writer starts (SET <prefix><seq>, then WAIT 1 100, every 10 ms,
     through the client's own Sentinel support) and logs every answer as a
     JSON line: time, ok or the error text, the address where the client
     exposes it, WAIT's answer;
  3. the fault hits the primary (node1) through lab/faults.py:
       kill       SIGKILL
       pause      SIGSTOP, SIGCONT once the failover is over
       partition  cut off from everyone, healed once the failover is over
     and the round goes on a few seconds after the old primary is back, to
     see whether the client writes to it while it is still a primary;
  4. the new primary's data is read back.

Who executed a write is not taken from the client's word: the harness keeps
a MONITOR connection on the old primary at its private address (which faults
and partitions do not touch), so every SET it ran for a client is known, with
its server time. Any acknowledged write it did not run went to the node that
was primary then (replicas refuse writes). The address the client reports
is kept as a cross-check.

Measured per client, fault and system:
  first write new   fault -> the client's first acknowledged write on the new primary
  errors            errors the application saw (SET or WAIT), and their distinct texts
  demoted writes    acknowledged writes the old primary ran after a replica was promoted
  lost              acknowledged writes missing from the new primary at the end,
                    split by whether WAIT 1 confirmed a replica had them

`hakv clients --out docs/clients.md` writes the page (the table, the command,
the client versions, the settings used); `--json` keeps the raw rounds, and
`--merge` re-measures some combinations into an earlier run's page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field

import hiredis

from hakv.common.resp import encode_command
from hakv.lab.faults import LocalBackend
from hakv.lab.rpc import Rpc, RpcError, parse_info
from hakv.lab.topology import Topology, free_port_run

HERE = os.path.dirname(os.path.abspath(__file__))
WRITERS_DIR = os.path.normpath(os.path.join(HERE, "..", "tests", "clients", "failover"))
# client name -> (program, writer file, the npm package it needs: the Node writers use
# tests/clients/node's node_modules, the compatibility programs' pinned ioredis and
# node-redis, which ./run installs)
CLIENTS = {
    "redis-py": (sys.executable, "redis_py.py", None),
    "ioredis": ("node", "ioredis.js", "ioredis"),
    "node-redis": ("node", "node_redis.js", "redis"),
    "ruby-redis": ("ruby", "ruby_redis.rb", None),
    "phpredis": ("php", "phpredis.php", None),
    "perl-redis": ("perl", "perl_redis.pl", None),
}
FAULTS = {"kill": ("kill", None), "pause": ("stop", "cont"), "partition": ("partition", "heal")}
SYSTEMS = ("hakv", "redis")
PROFILES = ("tuned", "default")

WARMUP_WRITES = 30       # acknowledged writes before the fault
RECOVERY_WINDOW = 30.0   # seconds after the fault to wait for a write on the new primary
UNDO_AFTER = 10.0        # pause/partition: undo at the latest this long after the promotion
TAIL = 4.0               # seconds to keep writing after the old primary is back


# ---------------------------------------------------------------------------
# the topology


# ---------------------------------------------------------------------------
# watching the servers: who ran which write, who is primary when

MONITOR_SET = re.compile(rb'^\+?(\d+\.\d+) \[\d+ ([^\]]*)\] "set" "([^"]*)"', re.I)


class MonitorTap(threading.Thread):
    """MONITOR on one node at its private address: key -> server time of every
    SET of `prefix` keys it ran for a client (not its primary's stream)."""

    def __init__(self, address: tuple, prefix: str, node_ports: set):
        super().__init__(daemon=True)
        self.address, self.prefix, self.node_ports = address, prefix.encode(), node_ports
        self.executed: dict[str, float] = {}
        self.sock = socket.create_connection(address, timeout=2.0)
        self.sock.sendall(encode_command("MONITOR"))
        self.sock.settimeout(0.2)
        self.running = True

    def run(self) -> None:
        reader = hiredis.Reader()
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            reader.feed(data)
            while (line := reader.gets()) is not False:
                if isinstance(line, bytes) and self.prefix in line:
                    self._take(line)

    def _take(self, line: bytes) -> None:
        m = MONITOR_SET.match(line)
        if not m:
            return
        origin = m.group(2).decode(errors="replace")
        port = origin.rsplit(":", 1)[-1]
        if port.isdigit() and int(port) in self.node_ports:
            return  # replicated from a primary, not a client's write
        self.executed.setdefault(m.group(3).decode(errors="replace"), float(m.group(1)))

    def stop(self) -> None:
        self.running = False
        try:
            self.sock.close()
        except OSError:
            pass


class RoleWatch(threading.Thread):
    """Polls one node's role (private address) every 50 ms; keeps the changes."""

    def __init__(self, backend: LocalBackend, name: str):
        super().__init__(daemon=True)
        self.backend, self.name = backend, name
        self.changes: list[tuple[float, str]] = []
        self.running = True

    def run(self) -> None:
        last = None
        while self.running:
            try:
                role = parse_info(self.backend.call(self.name, "INFO", "replication",
                                                    timeout=0.3)).get("role", "")
            except (OSError, RpcError):
                role = ""
            if role and role != last:
                self.changes.append((time.time(), role))
                last = role
            time.sleep(0.05)

    def first(self, role: str, after: float) -> float | None:
        return next((t for t, r in self.changes if r == role and t >= after), None)


# ---------------------------------------------------------------------------
# the writer


class Writer:
    """One writer program; its JSON lines arrive in `lines`."""

    def __init__(self, client: str, cfg: dict, log_path: str, writers_dir: str):
        program, script, _ = CLIENTS[client]
        env = dict(os.environ, HAKV_NODE_MODULES=node_modules(writers_dir))
        self.log_path = log_path + ".jsonl"
        self.stderr = open(log_path + ".stderr", "ab")
        self.proc = subprocess.Popen([program, os.path.join(writers_dir, script),
                                      json.dumps(cfg)], stdout=subprocess.PIPE,
                                     stderr=self.stderr, stdin=subprocess.DEVNULL,
                                     cwd=writers_dir, env=env, start_new_session=True)
        self.lines: list[dict] = []
        self.start_line: dict = {}
        self.garbage: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with open(self.log_path, "ab") as copy:   # the raw lines, for a look afterwards
            for raw in self.proc.stdout:
                copy.write(raw)
                self._take(raw)

    def _take(self, raw: bytes) -> None:
        if raw:
            try:
                obj = json.loads(raw)
            except ValueError:
                self.garbage.append(raw.decode(errors="replace").rstrip())
                return
            if obj.get("ev") == "start":
                self.start_line = obj
            else:
                self.lines.append(obj)

    def acked(self) -> int:
        return sum(1 for x in list(self.lines) if x.get("ok"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(3)
        self.reader.join(3)
        self.stderr.close()


# ---------------------------------------------------------------------------
# one round


@dataclass
class Round:
    system: str
    client: str
    fault: str
    profile: str
    version: str = ""
    settings: dict = field(default_factory=dict)
    fault_at: float = 0.0
    promoted_at: float | None = None      # a replica says role:master
    undone_at: float | None = None        # SIGCONT / heal
    demoted_at: float | None = None       # the old primary says role:slave again
    first_new_s: float | None = None      # fault -> first acked write on the new primary
    gap_s: float | None = None            # last acked write before the fault -> that one
    writes: int = 0
    acked: int = 0
    errors: int = 0
    error_texts: dict = field(default_factory=dict)   # normalized text -> count
    demoted_writes: int = 0               # acked, run by the old primary after the promotion
    demoted_writes_client_addr: int = 0   # the same by the client's own address (cross-check)
    acked_wait: int = 0                   # acked and WAIT 1 said a replica has it
    lost_wait: int = 0
    acked_nowait: int = 0
    lost_nowait: int = 0
    lost_keys: list = field(default_factory=list)  # the first WAIT-confirmed ones lost
    old_ran: int = 0                      # client SETs the old primary's MONITOR saw
    crashed: bool = False                 # the writer exited by itself
    exit_code: int | None = None
    note: str = ""


ADDR = re.compile(r"\d+\.\d+\.\d+\.\d+(:\d+)?")
NUMBER = re.compile(r"\d+(\.\d+)?")
# 0x... object ids; "NxN..." is such an id as older runs folded it (digits to N)
HEX = re.compile(r"0x[0-9a-fA-F]+|\bNx[0-9a-fN]+")


def normalize(text: str) -> str:
    """An error text without addresses and numbers, so that the same error
    against different ports counts once."""
    text = ADDR.sub("<addr>", text)
    text = HEX.sub("<hex>", text)
    text = NUMBER.sub("N", text)
    return text[:160]


def run_round(system: str, client: str, fault: str, profile: str, root: str,
              writers_dir: str = WRITERS_DIR, log=print) -> Round:
    os.makedirs(root, exist_ok=True)
    topo = Topology.plan(root, free_port_run(3), free_port_run(3), down_after_ms=1000, impl=system)
    result = Round(system, client, fault, profile)
    writer = taps = None
    watches: list[RoleWatch] = []
    try:
        topo.start_all()
        backend = LocalBackend(topo.dir, topo)
        backend.wait_settled()
        old = "node1"
        old_addr = "%s:%d" % backend.address(old)
        prefix = "fo:%s:%s:" % (client, fault)
        node_ports = {backend.address(n)[1] for n in backend.nodes()}
        taps = MonitorTap(backend.observe_address(old), prefix, node_ports)
        taps.start()
        watches = [RoleWatch(backend, n) for n in backend.nodes()]
        for w in watches:
            w.start()
        cfg = {"sentinels": [list(a) for a in backend.sentinel_addresses()],
               "master": backend.master_name, "prefix": prefix, "interval_ms": 10,
               "wait_timeout_ms": 100, "max_seconds": 120, "profile": profile}
        writer = Writer(client, cfg, os.path.join(root, "writer"), writers_dir)
        deadline = time.time() + 30
        while writer.acked() < WARMUP_WRITES:
            if time.time() > deadline or writer.proc.poll() is not None:
                raise RuntimeError("%s wrote %d times in 30 s before any fault (see %s)"
                                   % (client, writer.acked(), root))
            time.sleep(0.05)
        verb, undo = FAULTS[fault]
        result.fault_at = backend.apply(verb, old).at

        def first_new() -> dict | None:
            for x in list(writer.lines):
                if x.get("ok") and x["t"] > result.fault_at and not acked_by(
                        taps.executed, "%s%d" % (prefix, x["seq"]), x["t"]):
                    return x
            return None

        others = [w for w in watches if w.name != old]
        limit = result.fault_at + RECOVERY_WINDOW
        while time.time() < limit:
            promoted = [t for t in (w.first("master", result.fault_at) for w in others) if t]
            if promoted:
                result.promoted_at = min(promoted)
            if undo and result.promoted_at and (
                    first_new() or time.time() > result.promoted_at + UNDO_AFTER):
                break
            if not undo and first_new():
                break
            time.sleep(0.05)
        if undo:
            time.sleep(0.5)
            result.undone_at = backend.apply(undo, old).at
            # a client stuck on the old primary may only move on now: give it
            # the tail, or up to 15 s more if it has not written to the new one
            tail_end = time.time() + TAIL
            stuck_end = time.time() + 15.0
            while time.time() < tail_end or (first_new() is None and time.time() < stuck_end):
                time.sleep(0.05)
        else:
            time.sleep(1.0)
        old_watch = next(w for w in watches if w.name == old)
        result.demoted_at = old_watch.first("slave", result.fault_at)
        if result.promoted_at is None:
            promoted = [t for t in (w.first("master", result.fault_at) for w in others) if t]
            result.promoted_at = min(promoted) if promoted else None
        writer.stop()
        result.exit_code = writer.proc.returncode
        result.crashed = writer.proc.returncode not in (0, -signal.SIGTERM, 143)
        time.sleep(0.3)   # the monitor's last lines
        result.version = str(writer.start_line.get("version", ""))
        result.settings = writer.start_line.get("settings", {}) or {}
        measure(result, writer.lines, prefix, taps.executed, old_addr, backend)
        with open(os.path.join(root, "observed.json"), "w") as f:  # for a look afterwards
            json.dump({"old_primary_ran": taps.executed, "fault_at": result.fault_at,
                       "roles": {w.name: w.changes for w in watches}}, f, indent=1)
        if writer.garbage:
            result.note = "non-JSON output: %s" % writer.garbage[0][:120]
        return result
    finally:
        if writer is not None:
            writer.stop()
        if taps is not None:
            taps.stop()
        for w in watches:
            w.running = False
        topo.stop_all()


def acked_by(executed: dict, key: str, acked_at: float) -> bool:
    """Whether the node whose MONITOR gave `executed` is the one that acknowledged
    the write of `key` the client saw at `acked_at`: it ran it, and not after the
    client had its answer (a client that timed out and sent the write again to the
    new primary gets its answer from there, while the frozen old one may still run
    the first copy later)."""
    ran = executed.get(key)
    return ran is not None and ran <= acked_at + 0.002


def measure(result: Round, lines: list, prefix: str, executed: dict, old_addr: str,
            backend: LocalBackend) -> None:
    fault_at = result.fault_at
    result.old_ran = len(executed)
    writes = [x for x in lines if x.get("ev") == "w"]
    result.writes = len(writes)
    acked = [x for x in writes if x.get("ok")]
    result.acked = len(acked)
    texts: dict[str, int] = {}
    for x in lines:
        for k in ("err", "werr"):
            if x.get(k):
                result.errors += 1
                t = normalize(x[k])
                texts[t] = texts.get(t, 0) + 1
    result.error_texts = texts
    key = lambda x: "%s%d" % (prefix, x["seq"])  # noqa: E731
    before = [x for x in acked if x["t"] <= fault_at]
    new = next((x for x in acked if x["t"] > fault_at
                and not acked_by(executed, key(x), x["t"])), None)
    if new is not None:
        result.first_new_s = new["t"] - fault_at
        if before:
            result.gap_s = new["t"] - before[-1]["t"]
    if result.promoted_at is not None:
        result.demoted_writes = sum(1 for x in acked if acked_by(executed, key(x), x["t"])
                                    and executed[key(x)] > result.promoted_at)
        result.demoted_writes_client_addr = sum(
            1 for x in acked if x["t"] > result.promoted_at and x.get("addr") == old_addr)
    present = read_back(backend, [key(x) for x in acked])
    for x in acked:
        confirmed = isinstance(x.get("wait"), int) and x["wait"] >= 1
        missing = key(x) not in present
        if missing and confirmed and len(result.lost_keys) < 10:
            result.lost_keys.append(key(x))
        if confirmed:
            result.acked_wait += 1
            result.lost_wait += missing
        else:
            result.acked_nowait += 1
            result.lost_nowait += missing


def read_back(backend: LocalBackend, keys: list[str]) -> set[str]:
    """Which of `keys` the primary the sentinels name now has."""
    deadline = time.time() + 10
    primary = None
    while primary is None and time.time() < deadline:
        primary = backend.primary()
        if primary is None:
            time.sleep(0.2)
    if primary is None:
        raise RuntimeError("no primary to read back from")
    present: set[str] = set()
    with Rpc(*backend.observe_address(primary), timeout=5.0) as rpc:
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            for k, v in zip(chunk, rpc.call("MGET", *chunk)):
                if v is not None:
                    present.add(k)
    return present


# ---------------------------------------------------------------------------
# the matrix and its page


def node_modules(writers_dir: str) -> str:
    return os.path.normpath(os.path.join(writers_dir, "..", "node", "node_modules"))


def available(client: str, writers_dir: str = WRITERS_DIR) -> str | None:
    """None if the client can run here, else why not."""
    program, script, needs = CLIENTS[client]
    if not shutil.which(program):
        return "%s is not installed" % program
    if needs and not os.path.exists(os.path.join(node_modules(writers_dir), needs)):
        return "the npm package %s is missing (cd %s && npm ci)" % (
            needs, os.path.dirname(node_modules(writers_dir)))
    checks = {"ruby-redis": ["ruby", "-e", "require 'redis'"],
              "phpredis": ["php", "-r", "exit(class_exists('RedisSentinel') ? 0 : 1);"],
              "perl-redis": ["perl", "-MRedis", "-e", "1"],
              "redis-py": [sys.executable, "-c", "import redis.sentinel"]}
    if client in checks:
        if subprocess.run(checks[client], capture_output=True).returncode != 0:
            return "the %s library is not installed" % client
    return None


def run_matrix(clients, faults, systems, profiles, rounds=1, base=None, log=print,
               writers_dir: str = WRITERS_DIR) -> list[Round]:
    base = base or tempfile.mkdtemp(prefix="hakv-clients-")
    results: list[Round] = []
    for i in range(rounds):
        for profile in profiles:
            for client in clients:
                for fault in faults:
                    for system in systems:  # interleaved so load drifts hit both alike
                        root = os.path.join(base, "%s-%s-%s-%s-%d" % (
                            system, client, fault, profile, i))
                        for attempt in range(2):  # a topology that did not start: once more
                            try:
                                r = run_round(system, client, fault, profile,
                                              root + "-%d" % attempt, writers_dir)
                                break
                            except Exception as exc:  # one broken round must not end the run
                                r = Round(system, client, fault, profile,
                                          note="round failed: %s" % str(exc)[:200])
                        results.append(r)
                        log(summary_line(r))
    return results


def summary_line(r: Round) -> str:
    return ("%-10s %-9s %-6s %-7s first-new %s  errors %4d  demoted %d  lost %d/%d WAIT, "
            "%d/%d other%s" % (r.client, r.fault, r.system, r.profile, fmt_s(r.first_new_s),
                               r.errors, r.demoted_writes, r.lost_wait, r.acked_wait,
                               r.lost_nowait, r.acked_nowait,
                               ("  " + r.note) if r.note else ""))


def fmt_s(x: float | None) -> str:
    return "never" if x is None else "%.2f s" % x


def render(results: list[Round], command: str, notes: dict | None = None) -> str:
    notes = notes or {}
    out = ["# Clients in a failover: the matrix", "",
           "What real client libraries do, through their own Sentinel support, when the",
           "primary is killed, paused or cut off, against hakv and against Debian's",
           "redis-server + redis-sentinel 7.0.15 under the same faults in the same run.",
           "Generated by `hakv clients` (lab/clients.py, the writers are in",
           "tests/clients/failover/); regenerate with:", "", "    " + command, "",
           "Each round is a fresh topology: 1 primary, 2 replicas, 3 sentinels (quorum 2,",
           "down-after-milliseconds 1000), every member behind the lab's fault proxies. The",
           "writer does `SET <unique key>` then `WAIT 1 100` every 10 ms. Faults hit the",
           "primary: **kill** = SIGKILL; **pause** = SIGSTOP, SIGCONT once a replica is",
           "promoted and the client wrote to it (or 10 s after the promotion); **partition**",
           "= cut off from nodes, sentinels and clients (no RST), healed at the same point.",
           "Writing goes on for %d s after the old primary is back." % TAIL, "",
           "Columns:", "",
           "- **promoted**: seconds from the fault until a replica said `role:master`",
           "  (the servers' part, the same for every client; polled every 50 ms, so it",
           "  can trail a first write by that much).",
           "- **first write new**: seconds from the fault to the client's first acknowledged",
           "  write on the new primary (`never` = not within %d s)." % RECOVERY_WINDOW,
           "- **gap**: last acknowledged write before the fault to that first write.",
           "- **errors**: errors the application saw (a SET or a WAIT raised/returned one),",
           "  then the number of distinct texts (addresses and numbers folded); texts below.",
           "- **demoted**: acknowledged writes that the old primary ran, and answered, after",
           "  a replica had been promoted (from a MONITOR on the old primary, not the client's",
           "  word; a write the frozen old primary ran only after the client had its answer",
           "  from the new one, after a timeout and a resend, is not counted).",
           "- **lost**: acknowledged writes missing on the final primary: `WAIT-confirmed`",
           "  (WAIT 1 said a replica had it) / `other`, each as lost/acknowledged. With two",
           "  replicas, WAIT 1 does not promise the one that gets promoted had the write.", "",
           "Reading it: **promoted** is the servers' part, and it differs. No client can",
           "write to the new primary before a sentinel names it: redis-sentinel does so once",
           "its next INFO to the promoted replica shows `role:master` (`+promoted-slave`,",
           "about 1 s after the promotion here), hakv's sentinels sooner; and hakv's",
           "sentinels also see the fault sooner (they count down-after from the last valid",
           "reply and PING every down-after/2, where Redis 7.0 counts from the first",
           "unanswered PING, sent every second). So compare a client's **first write new**",
           "with **promoted** in the same row, and two clients in the same system; the",
           "client's own behaviour shows most in the errors, the demoted writes and the",
           "losses. Single rounds on a shared 2-core machine:",
           "a few hundred ms either way is noise.", ""]
    by_profile: dict[str, list[Round]] = {}
    for r in results:
        by_profile.setdefault(r.profile, []).append(r)
    for profile in sorted(by_profile, key=profile_order):
        rows = by_profile[profile]
        title = {"tuned": "Recommended settings (per client below)",
                 "default": "Library defaults (only what Sentinel discovery needs)"}.get(
                     profile, "Profile `%s`" % profile)
        out += ["## %s" % title, "",
                "| client | fault | system | promoted | first write new | gap "
                "| errors (distinct) | demoted | lost WAIT-confirmed | lost other |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            if r.note.startswith("round failed"):
                out.append("| %s | %s | %s | %s | | | | | | |" % (
                    r.client, r.fault, r.system, r.note.replace("|", "/")))
                continue
            first = fmt_s(r.first_new_s)
            if r.crashed:
                first += " (writer exited)"
            gap = "-" if r.gap_s is None else "%.2f s" % r.gap_s
            demoted = str(r.demoted_writes)
            if r.demoted_writes_client_addr != r.demoted_writes:
                demoted += " (client says %d)" % r.demoted_writes_client_addr
            promoted = "-" if r.promoted_at is None else "%.2f s" % (r.promoted_at - r.fault_at)
            out.append("| %s | %s | %s | %s | %s | %s | %d (%d) | %s | %d / %d | %d / %d |" % (
                r.client, r.fault, r.system, promoted, first, gap, r.errors, len(r.error_texts),
                demoted, r.lost_wait, r.acked_wait, r.lost_nowait, r.acked_nowait))
        out.append("")
    out += findings(results)
    versions = {}
    settings = {}
    for r in results:
        if r.version:
            versions[r.client] = r.version
        if r.profile == "tuned" and r.settings:
            settings[r.client] = r.settings
    out += ["## Client versions", "", "| client | version | Sentinel support used |",
            "|---|---|---|"]
    for c in CLIENTS:
        if c in versions:
            out.append("| %s | %s | %s |" % (c, versions[c], SENTINEL_API.get(c, "")))
    out += ["", "Java (Jedis, Lettuce, Redisson) and C# (StackExchange.Redis) clients are not",
            "reachable from this machine's package registries, so they are not measured. Go's",
            "redigo (Debian) and C's hiredis have no Sentinel support of their own.", ""]
    out += ["## Settings that recovered fastest, per client", ""]
    for c in CLIENTS:
        if c not in settings and c not in notes:
            continue
        out.append("### %s" % c)
        out.append("")
        if c in settings:
            out.append("```json")
            out.append(json.dumps(settings[c], indent=1, sort_keys=True))
            out.append("```")
            out.append("")
        if c in notes:
            out.append(notes[c])
            out.append("")
    out += ["## Errors the applications saw", "",
            "Per round, the distinct texts (addresses, numbers and object ids folded) and how",
            "often. `UNBLOCKED force unblock from blocking operation, instance state changed",
            "(master -> replica?)` is what both servers answer a WAIT that is still blocked",
            "when the primary is turned into a replica (checked by hand against Redis 7.0.15);",
            "whether a round sees it is timing.", ""]
    for r in results:
        if r.error_texts:
            out.append("- %s / %s / %s / %s: " % (r.client, r.fault, r.system, r.profile)
                       + "; ".join("`%s` x%d" % (t.replace("`", "'"), n)
                                   for t, n in sorted(r.error_texts.items(),
                                                      key=lambda kv: -kv[1])))
    out.append("")
    return "\n".join(out)


def profile_order(profile: str) -> tuple:
    return (PROFILES.index(profile) if profile in PROFILES else len(PROFILES), profile)


def findings(results: list[Round]) -> list[str]:
    """What the table says, in sentences: the servers' part, and the rounds where
    an application lost acknowledged writes or never recovered."""
    import statistics

    out = ["## What the run shows", ""]
    measured = [r for r in results if r.fault_at and not r.note.startswith("round failed")]
    for fault in FAULTS:
        parts = []
        for system in SYSTEMS:
            xs = [r.promoted_at - r.fault_at for r in measured
                  if r.fault == fault and r.system == system and r.promoted_at]
            if xs:
                parts.append("%s %.2f s (%.2f-%.2f, %d rounds)" % (
                    system, statistics.median(xs), min(xs), max(xs), len(xs)))
        if parts:
            out.append("- Promotion after **%s** (median, range): %s." % (fault, "; ".join(parts)))
    for profile in sorted({r.profile for r in measured}, key=profile_order):
        rows = [r for r in measured if r.profile == profile]
        never = ["%s/%s/%s" % (r.client, r.fault, r.system) for r in rows
                 if r.first_new_s is None]
        demoted = ["%s/%s/%s: %d (the round lost %d acknowledged writes)" % (
            r.client, r.fault, r.system, r.demoted_writes, r.lost_nowait + r.lost_wait)
            for r in rows if r.demoted_writes]
        lost_wait = ["%s/%s/%s: %d%s" % (r.client, r.fault, r.system, r.lost_wait,
                                         " (%s)" % ", ".join(r.lost_keys[:3])
                                         if r.lost_keys else "")
                     for r in rows if r.lost_wait]
        crashed = ["%s/%s/%s (exit %s)" % (r.client, r.fault, r.system, r.exit_code)
                   for r in rows if r.crashed]
        out.append("- Profile `%s`: never wrote to the new primary: %s." % (
            profile, ", ".join(never) or "none"))
        out.append("  Acknowledged writes to the demoted primary: %s." % (
            "; ".join(demoted) or "none"))
        out.append("  WAIT-confirmed writes lost: %s." % ("; ".join(lost_wait) or "none"))
        if crashed:
            out.append("  Writer exited by itself: %s." % ", ".join(crashed))
    # an error text one system gives a client and the other never does, in any round:
    # a difference in what the servers answer, or timing (read the texts below)
    texts: dict[tuple, set] = {}
    for r in measured:
        for t in r.error_texts:
            texts.setdefault((r.client, t), set()).add(r.system)
    only = ["%s: `%s` (%s only)" % (c, t.replace("`", "'"), next(iter(systems)))
            for (c, t), systems in sorted(texts.items()) if len(systems) == 1]
    if only and len({r.system for r in measured}) > 1:
        out.append("- Error texts a client saw against one system only (a different answer, "
                   "or timing): " + "; ".join(only) + ".")
    out.append("")
    return out


def load_rounds(path: str) -> list[Round]:
    rounds = []
    with open(path) as f:
        for data in json.load(f):
            r = Round(**data)
            folded: dict[str, int] = {}   # fold again: the rules may have grown since
            for text, n in r.error_texts.items():
                folded[normalize(text)] = folded.get(normalize(text), 0) + n
            r.error_texts = folded
            rounds.append(r)
    return rounds


def merge(old: list[Round], new: list[Round]) -> list[Round]:
    """`old` with every (system, client, fault, profile) measured in `new`
    replaced, in the matrix's order."""
    combo = lambda r: (r.system, r.client, r.fault, r.profile)  # noqa: E731
    fresh = {combo(r) for r in new}
    rounds = [r for r in old if combo(r) not in fresh] + list(new)
    order = lambda r: (profile_order(r.profile), list(CLIENTS).index(r.client),  # noqa: E731
                       list(FAULTS).index(r.fault), SYSTEMS.index(r.system))
    return sorted(rounds, key=order)


SENTINEL_API = {
    "redis-py": "`redis.sentinel.Sentinel(...).master_for(name)`",
    "ioredis": "`new Redis({sentinels, name})`",
    "node-redis": "`createSentinel({name, sentinelRootNodes})`",
    "ruby-redis": "`Redis.new(url: 'redis://name', sentinels:, role: :master)`",
    "phpredis": "`RedisSentinel::getMasterAddrByName` + reconnect on error (the app's loop)",
    "perl-redis": "`Redis->new(sentinels => [...], service => name)`",
}


def cmd_clients(args) -> int:
    clients = [c for c in args.clients.split(",") if c]
    for c in clients:
        if c not in CLIENTS:
            print("hakv clients: unknown client %r (one of %s)" % (c, ", ".join(CLIENTS)),
                  file=sys.stderr)
            return 2
    skipped = {}
    for c in list(clients):
        why = available(c, args.writers)
        if why:
            skipped[c] = why
            clients.remove(c)
            print("hakv clients: skipping %s: %s" % (c, why), file=sys.stderr)
    faults = [f for f in args.faults.split(",") if f]
    systems = [s for s in args.systems.split(",") if s]
    profiles = list(PROFILES) if args.profile == "both" else args.profile.split(",")
    base = tempfile.mkdtemp(prefix="hakv-clients-")
    try:
        results = run_matrix(clients, faults, systems, profiles, args.rounds, base,
                             writers_dir=args.writers)
    finally:
        if args.keep:
            print("logs in", base)
        else:
            shutil.rmtree(base, ignore_errors=True)
    if args.merge:
        results = merge(load_rounds(args.merge), results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in results], f, indent=1)
    if args.out:
        command = "hakv clients --clients %s --faults %s --systems %s --profile %s%s --out %s" % (
            ",".join(clients + list(skipped)), ",".join(faults), ",".join(systems),
            args.profile, " --rounds %d" % args.rounds if args.rounds != 1 else "", args.out)
        with open(args.out, "w") as f:
            f.write(render(results, command, NOTES))
        print("wrote", args.out)
    return 0


# What was tried per client and why the recommended settings are what they are
# (written from the measured runs; see docs/clients.md).
NOTES: dict[str, str] = {
    "redis-py": (
        "Tried: the defaults (redis-py 8 has 5 s socket and connect timeouts and no retry),"
        " then short timeouts, then short timeouts plus a `Retry`. The pool asks the"
        " sentinels again for every new connection and treats READONLY as a lost"
        " connection, so the only thing to tune is how long a frozen or cut primary may"
        " hold a call: with the defaults the first write after a pause or partition waits"
        " out the 5 s timeout; with 250 ms it fails over as soon as the sentinels have"
        " promoted. The `Retry` (3 tries, 50 ms apart, on ConnectionError, TimeoutError"
        " and ReadOnlyError) turns most of the errors of the switch into a slower call:"
        " after a kill the application saw about 10x fewer errors than with the"
        " defaults. Sentinel connections get the same short timeouts (`sentinel_kwargs`),"
        " or a dead sentinel costs 5 s per lookup."),
    "ioredis": (
        "Tried: the defaults, then `commandTimeout` with `failoverDetector`,"
        " `reconnectOnError` for READONLY, fixed 50 ms `retryStrategy` and"
        " `sentinelRetryStrategy`. With the defaults a paused or cut primary holds every"
        " command (no command timeout, the offline queue waits), and when the old"
        " primary comes back the queued and following writes are acknowledged by it"
        " before the sentinels demote it: dozens of acknowledged writes lost per round."
        " `commandTimeout: 250` is the setting that matters (a call fails with `Command"
        " timed out` instead of hanging); `failoverDetector: true` makes it reconnect,"
        " through the sentinels, on their +switch-master instead of waiting for the"
        " connection to break; `reconnectOnError` returning 2 on READONLY moves it off a"
        " demoted primary and resends the command; `maxRetriesPerRequest: 3` bounds how"
        " long a call may wait for a reconnection. Without `failoverDetector` (profile"
        " `no-detector`, one round per system) a pause or partition left it on the"
        " frozen primary until that came back (21-23 s) and 70-87 acknowledged writes"
        " went to the demoted primary and were lost. With it, though, 3 of 11 kill rounds"
        " (2 against hakv, 1 against Redis) ended with ioredis in status `end`: every call failed"
        " with `Connection is closed.` and it never reconnected (the symptom reported in"
        " redis/ioredis#1683); 0 of 6 kill rounds without it. So the recommended setup keeps"
        " `failoverDetector` and the application replaces the client on its `end` event"
        " (`recreateOnEnd` in the writer, not an ioredis option): in 6 more kill rounds"
        " with it, ioredis ended twice and the new client wrote to the new primary as"
        " soon as in the other rounds (1.1 s against hakv, 2.3 s against Redis)."),
    "node-redis": (
        "Tried: the defaults, `scanInterval: 100` (ask the sentinels every 100 ms instead"
        " of 10 s), that plus short `connectTimeout` and `reconnectStrategy: 50`, and the"
        " full set of timeouts (`socketTimeout`, a per-command `timeout`; profile"
        " `timeouts`). node-redis' `createSentinel` follows the topology itself and"
        " surfaced no error at all to the application in any round; the defaults"
        " recovered in 1-5 s. The timeouts made it worse: the SET sent to a frozen"
        " primary stayed pending until the old primary came back (11-12 s), with no"
        " error. Recommended: the defaults plus `scanInterval: 100` as a safety net;"
        " no socket or command timeouts; better, node-redis 6.2 or later (below)."
        " In 5 of 29 kill rounds against hakv and 1 of 21 against Redis (this page's"
        " run, the tuning runs and 21 re-runs) the SET in flight when the primary died"
        " never completed: no error, no reply, and the writer (which awaits each write)"
        " stopped. The cause is node-redis 5.x (redis/node-redis#3061, fixed in 6.2.0 by"
        " #3331): when its master connection breaks it asks a sentinel (SENTINEL MASTER)"
        " at once; if the answer still calls the dead primary healthy (no `disconnected`,"
        " `s_down` or `failover_in_progress` flag yet), it opens a new connection to that"
        " same address and awaits its connect(), which with the default"
        " `reconnectStrategy` retries forever and never settles. Every later"
        " re-resolution (the scan timer, the sentinels' messages) waits behind it, and so"
        " does every command: the SET's promise is never settled, even after the"
        " sentinels name the new primary. The stuck rounds' traces (`setTracer`), against"
        " both systems, end in `created master client to <old primary>` with no"
        " `transform: exit`. A scripted sentinel that keeps naming a killed redis-server"
        " for 1.5 s hung 5.12.1 in 3 of 3 runs; 6.3.1 retries every second and writes to the"
        " new primary as soon as the sentinel names it, and so does 5.12.1 with a node"
        " `reconnectStrategy` that gives up (`retries >= 20 ? false : 50`; node-redis 5"
        " then prints the connect error with console.log). The sentinels' answers are"
        " the same on both systems (fields, order, flags, RESP2); only the window"
        " differs: a sentinel says `disconnected` once it sees the dead primary's"
        " connection close, Redis 1-3 ms after the kill and hakv 5-8 ms (through the"
        " lab's proxies), and node-redis asks 5-25 ms after the kill, so it falls into"
        " the window more often against hakv. (Its `switch-master` pattern also lacks"
        " the `+`, so +switch-master itself never triggers a re-resolution; +slave and"
        " the scan timer do.)"
        " A WAIT-confirmed write was lost twice in earlier runs (node-redis, pause "
        "and partition, hakv), and the logs point to the client: the write's SET was "
        "answered by the old primary just before the cut, its WAIT was still pending "
        "on the frozen connection, and the writer's next write went to the new "
        "primary before the old one was healed, so the WAIT's `1` cannot have come "
        "from the old primary: after the switch node-redis sent the pending WAIT to "
        "the new primary, where it counted that primary's replica. A WAIT only speaks"
        " for the server that runs it; a client that moves it to another server makes"
        " its answer meaningless. Neither replica had the write (both resynced from "
        "offset 3644 in that round)."),
    "ruby-redis": (
        "Tried: the defaults (5 s timeout, 1 reconnect attempt), then 250 ms timeouts with"
        " 3 reconnect attempts 50 ms apart. Note that redis-rb 4.x takes the master name"
        " from the URL (`url: 'redis://mymaster'`), not from `name:`. Each reconnect asks"
        " the sentinels again and checks ROLE, so with short timeouts it moves as soon as"
        " the sentinels do; with the defaults a paused or cut primary costs the 5 s"
        " timeout. The reconnect attempts hide most errors: after a pause or partition"
        " the application saw 0-2 errors."),
    "phpredis": (
        "phpredis has no Sentinel-managed connection: `RedisSentinel` only answers"
        " questions, so the application's loop asks `getMasterAddrByName` and reconnects"
        " on any error (including READONLY). Tried: phpredis' defaults (no connect"
        " timeout, reads wait `default_socket_timeout`, 60 s) and 250 ms connect/read"
        " timeouts on the node and the sentinels. With the defaults a paused or cut"
        " primary holds the write until it comes back, and then it acknowledges writes"
        " as the demoted primary until the sentinels reconfigure it: all of them lost."
        " With 250 ms timeouts it follows the sentinels within one timeout; the errors"
        " after a kill are the loop's fast retries against a refused port (each one"
        " surfaced, as the application's loop sees them)."),
    "perl-redis": (
        "Tried: the defaults (no reconnect), then `reconnect => 2, every => 50_000` with"
        " 250 ms `cnx_timeout`/`read_timeout`/`write_timeout` for the node and the"
        " sentinels, and SIGPIPE ignored. With the defaults the client never recovers:"
        " after a kill every call dies with `Not connected to any server`; after a pause"
        " or partition it acknowledges writes on the demoted primary (lost) and then"
        " dies the same way. Without `$SIG{PIPE} = 'IGNORE'` a write to a connection the"
        " dead primary reset kills the whole process (SIGPIPE), so that is part of the"
        " recommended setup. `reconnect` re-resolves through the sentinels; a call that"
        " fails during it sometimes dies with Redis.pm's internal"
        " `Redis::X::Reconnect=SCALAR(...)` object instead of a message."),
}


def add_parser(sub) -> None:
    p = sub.add_parser("clients", help="the client failover matrix (writes docs/clients.md)",
                       description=__doc__, formatter_class=_raw())
    p.add_argument("--clients", default=",".join(CLIENTS),
                   help="comma-separated, of: %s" % ", ".join(CLIENTS))
    p.add_argument("--faults", default=",".join(FAULTS), help="comma-separated: kill,pause,partition")
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated: hakv,redis")
    p.add_argument("--profile", default="tuned",
                   help="the writers' client settings: tuned, default, both (= tuned,default), "
                        "or a comma-separated list of profile names a writer knows")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--out", default=None, help="write the Markdown page here (docs/clients.md)")
    p.add_argument("--json", default=None, help="write the raw rounds here")
    p.add_argument("--merge", default=None, metavar="JSON",
                   help="rounds from an earlier --json: the page shows them, with the "
                        "combinations measured now replaced")
    p.add_argument("--writers", default=WRITERS_DIR, help="the writers' directory")
    p.add_argument("--keep", action="store_true", help="keep every round's logs")
    p.set_defaults(func=cmd_clients)


def _raw():
    import argparse

    return argparse.RawDescriptionHelpFormatter
