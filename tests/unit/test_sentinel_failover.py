"""Whole failovers with several SentinelState machines simulated in-process.

The harness (`World`) plays the network and the Redis processes: fake nodes
answer PING/INFO/PUBLISH/MULTI..EXEC like Redis does, sentinels talk to each
other through their own `sentinel_command` / `publish` methods, and every
message is delivered through a virtual clock with a configurable latency,
so elections, partitions and crashes happen in a scripted, repeatable order.
No sockets, no sleeps.
"""
from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field

import pytest

from hakv.sentinel.actions import (
    Connect,
    Disconnect,
    Event,
    Exit,
    FlushConfig,
    LinkKind,
    Send,
)
from hakv.sentinel.config import parse_config, render_config
from hakv.sentinel.replies import Err
from hakv.sentinel.state import SentinelState

HOST = "127.0.0.1"


class ReplyError(Exception):
    pass


@dataclass(eq=False)
class Node:
    """A fake Redis server: role, replication link, INFO, pub/sub."""

    world: World
    port: int
    role: str = "master"
    master_port: int | None = None
    offset: int = 1000
    priority: int = 100
    alive: bool = True
    hung: bool = False
    ignore_promotion: bool = False
    follow_since: int = 0
    died_at: int = 0
    run_id: str = ""
    received: list = field(default_factory=list)

    def __post_init__(self):
        self.run_id = "%040x" % (self.port * 7919 + self.world.rng.randrange(1 << 60))

    @property
    def addr(self):
        return (HOST, self.port)

    def master_node(self):
        return self.world.nodes.get((HOST, self.master_port)) if self.master_port else None

    def link_up(self, now):
        m = self.master_node()
        if m is None or not m.alive or m.hung or m.role != "master":
            return False
        return now >= self.follow_since + self.world.sync_ms

    def link_down_since(self, now):
        m = self.master_node()
        if m is not None and not m.alive:
            return max(m.died_at, self.follow_since)
        return self.follow_since

    def info(self, now) -> str:
        lines = ["# Server", f"run_id:{self.run_id}", f"tcp_port:{self.port}", "", "# Replication",
                 f"role:{self.role}"]
        if self.role == "master":
            replicas = [n for n in self.world.nodes.values()
                        if n.alive and n.role == "slave" and n.master_port == self.port]
            lines.append(f"connected_slaves:{len(replicas)}")
            for i, n in enumerate(replicas):
                state = "online" if n.link_up(now) else "wait_bgsave"
                lines.append(f"slave{i}:ip={HOST},port={n.port},state={state},offset={n.offset},lag=0")
            lines.append(f"master_repl_offset:{self.offset}")
        else:
            up = self.link_up(now)
            lines += [f"master_host:{HOST}", f"master_port:{self.master_port}",
                      f"master_link_status:{'up' if up else 'down'}"]
            if not up:
                lines.append(f"master_link_down_since_seconds:{(now - self.link_down_since(now)) // 1000}")
            lines += [f"slave_repl_offset:{self.offset}", f"slave_priority:{self.priority}",
                      "slave_read_only:1", "replica_announced:1"]
        return "\r\n".join(lines) + "\r\n"

    def slaveof(self, host, port, now):
        if host.upper() == "NO" and port.upper() == "ONE":
            if self.ignore_promotion:
                return
            self.role = "master"
            self.master_port = None
        else:
            self.role = "slave"
            self.master_port = int(port)
            self.follow_since = now

    def handle(self, conn, argv, now):
        name = argv[0].upper()
        self.received.append(tuple(argv))
        if conn.multi is not None and name not in ("EXEC", "MULTI"):
            conn.multi.append(argv)
            return "QUEUED"
        if name == "PING":
            return "PONG"
        if name == "INFO":
            return self.info(now)
        if name == "MULTI":
            conn.multi = []
            return "OK"
        if name == "EXEC":
            queued, conn.multi = conn.multi or [], None
            return [self._run(conn, a, now) for a in queued]
        if name == "PUBLISH":
            return self.world.publish(self, argv[1], argv[2])
        return self._run(conn, argv, now)

    def _run(self, conn, argv, now):
        name = argv[0].upper()
        if name in ("SLAVEOF", "REPLICAOF"):
            self.slaveof(argv[1], argv[2], now)
            return "OK"
        if name == "CLIENT" and argv[1].upper() == "KILL":
            if argv[3].lower() == "normal":  # every other command connection dies
                self.world.kill_connections_to(self.addr, except_conn=conn)
            return 1
        return "OK"


@dataclass(eq=False)
class Sim:
    """One simulated sentinel process around a SentinelState."""

    world: World
    port: int
    state: SentinelState
    alive: bool = True
    events: list = field(default_factory=list)
    flushes: int = 0
    offset: int = 0

    @property
    def addr(self):
        return (HOST, self.port)

    def process(self, actions):
        for action in actions:
            if not self.alive:
                return
            self.world.handle_action(self, action)

    def types(self):
        return [e[1] for e in self.events]


@dataclass(eq=False)
class Conn:
    serial: int
    sim: Sim
    link_id: int
    conn: int
    target: tuple
    kind: LinkKind
    multi: list | None = None  # MULTI state is per connection
    next_in: int = 0  # TCP keeps order: a message never overtakes the previous one
    next_out: int = 0


class World:
    def __init__(self, seed=1, down_after=1000, failover_timeout=5000, tick_ms=50, sync_ms=150):
        self.rng = random.Random(seed)
        self.now = 1_000_000
        self.queue: list = []
        self.seq = itertools.count()
        self.nodes: dict[tuple, Node] = {}
        self.sims: dict[tuple, Sim] = {}
        self.conns: dict[tuple, Conn] = {}  # (sim port, link_id, conn) -> Conn
        self.conn_serial = itertools.count(1)
        self.down_after = down_after
        self.failover_timeout = failover_timeout
        self.tick_ms = tick_ms
        self.sync_ms = sync_ms
        self.latency_fn = lambda src, dst, argv: 1
        self.blocked: set[tuple] = set()  # (src port, dst port) pairs that cannot talk

    # -- topology -----------------------------------------------------------

    def add_node(self, port, role="master", master_port=None, **kw) -> Node:
        node = Node(self, port, role=role, master_port=master_port, follow_since=self.now - 10_000, **kw)
        self.nodes[node.addr] = node
        return node

    def add_sentinel(self, port, master_port, quorum=2, peers=(), myid=None, extra="") -> Sim:
        text = f"port {port}\nsentinel monitor mymaster {HOST} {master_port} {quorum}\n"
        text += f"sentinel down-after-milliseconds mymaster {self.down_after}\n"
        text += f"sentinel failover-timeout mymaster {self.failover_timeout}\n"
        if myid:
            text += f"sentinel myid {myid}\n"
        text += extra
        cfg = parse_config(text)
        state = SentinelState(cfg, self.now, rng=random.Random(self.rng.randrange(1 << 30)))
        sim = Sim(self, port, state, offset=len(self.sims) * 17)
        self.sims[sim.addr] = sim
        return sim

    def start(self):
        for sim in self.sims.values():
            sim.process(sim.state.start(self.now))
            self.at(self.now + sim.offset % self.tick_ms, lambda s=sim: self._tick(s))

    def _tick(self, sim):
        if not sim.alive:
            return
        sim.process(sim.state.tick(self.now))
        self.at(self.now + self.tick_ms, lambda: self._tick(sim))

    # -- scheduling ----------------------------------------------------------

    def at(self, when, fn):
        heapq.heappush(self.queue, (when, next(self.seq), fn))

    def run_until(self, when):
        while self.queue and self.queue[0][0] <= when:
            t, _, fn = heapq.heappop(self.queue)
            self.now = max(self.now, t)
            fn()
        self.now = max(self.now, when)

    def run_for(self, ms):
        self.run_until(self.now + ms)

    def run_until_event(self, type_, timeout=60_000, sims=None):
        deadline = self.now + timeout
        while self.now < deadline:
            for sim in (sims or self.sims.values()):
                if type_ in sim.types():
                    return sim
            self.run_for(10)
        raise AssertionError(f"no {type_} within {timeout} ms")

    # -- network -------------------------------------------------------------

    def reachable(self, src_port, dst_port):
        return (src_port, dst_port) not in self.blocked and (dst_port, src_port) not in self.blocked

    def handle_action(self, sim: Sim, action):
        st = sim.state
        if isinstance(action, Event):
            sim.events.append((self.now, action.type, action.message))
        elif isinstance(action, FlushConfig):
            sim.flushes += 1
            text = render_config(None, st.to_config())
            parse_config(text)  # what we write must load again
        elif isinstance(action, Exit):
            self.kill_sentinel(sim)
        elif isinstance(action, Connect):
            target = (action.host, action.port)

            def deliver():
                if not sim.alive:
                    return
                alive = (target in self.nodes and self.nodes[target].alive) or (
                    target in self.sims and self.sims[target].alive)
                if not alive or not self.reachable(sim.port, action.port):
                    self.at(self.now + 1, lambda: sim.alive and sim.process(
                        st.on_link_down(action.link_id, action.conn, self.now, "Connection refused")))
                    return
                c = Conn(next(self.conn_serial), sim, action.link_id, action.conn, target, action.kind)
                self.conns[(sim.port, action.link_id, action.conn)] = c
                self.at(self.now + 1, lambda: sim.alive and sim.process(
                    st.on_link_up(action.link_id, action.conn, self.now, HOST)))

            self.at(self.now + 1, deliver)
        elif isinstance(action, Disconnect):
            self.conns.pop((sim.port, action.link_id, action.conn), None)
        elif isinstance(action, Send):
            self._send(sim, action)

    def _send(self, sim: Sim, send: Send):
        key = (sim.port, send.link_id, send.conn)
        c = self.conns.get(key)
        if c is None:
            return
        lat = self.latency_fn(sim.port, c.target[1], send.argv)
        arrive = c.next_in = max(self.now + lat, c.next_in)

        def deliver():
            if self.conns.get(key) is not c or not self.reachable(sim.port, c.target[1]):
                return
            reply = self._execute(c, send.argv)
            if reply is _NO_REPLY:
                return

            def back():
                if self.conns.get(key) is c and sim.alive:
                    sim.process(sim.state.on_reply(send, reply, self.now))

            c.next_out = max(self.now + lat, c.next_out)
            self.at(c.next_out, back)

        self.at(arrive, deliver)

    def _execute(self, c: Conn, argv):
        if c.target in self.nodes:
            node = self.nodes[c.target]
            if not node.alive or node.hung:
                return _NO_REPLY
            return node.handle(c, list(argv), self.now)
        target = self.sims[c.target]
        if not target.alive:
            return _NO_REPLY
        name = argv[0].upper()
        if name == "PING":
            return "PONG"
        if name == "SENTINEL":
            result = target.state.sentinel_command(list(argv[1:]), self.now)
        elif name == "PUBLISH":
            result = target.state.publish(argv[1], argv[2], self.now)
        else:
            return ReplyError("ERR unknown command")
        target.process(result.actions)
        if isinstance(result.reply, Err):
            return ReplyError(str(result.reply))
        return result.reply

    def publish(self, node: Node, channel, payload):
        receivers = 0
        for c in list(self.conns.values()):
            if c.target == node.addr and c.kind == LinkKind.REDIS and c.sim.alive:
                receivers += 1
                if not self.reachable(c.sim.port, node.port):
                    continue
                key = (c.sim.port, c.link_id, c.conn)

                def deliver(c=c, key=key):
                    if self.conns.get(key) is c and c.sim.alive:
                        c.sim.process(c.sim.state.on_pubsub_message(c.link_id, c.conn, channel, payload, self.now))

                self.at(self.now + 1, deliver)
        return receivers

    def kill_connections_to(self, target, except_conn=None):
        for key, c in list(self.conns.items()):
            if c.target == target and c is not except_conn:
                del self.conns[key]
                self.at(self.now + 1, lambda c=c: c.sim.alive and c.sim.process(
                    c.sim.state.on_link_down(c.link_id, c.conn, self.now, "Connection reset by peer")))

    def kill_node(self, node: Node):
        node.alive = False
        node.died_at = self.now
        self.kill_connections_to(node.addr)

    def revive_node(self, node: Node):
        node.alive = True
        node.run_id = "%040x" % self.rng.randrange(1 << 160)

    def kill_sentinel(self, sim: Sim):
        sim.alive = False
        for key, c in list(self.conns.items()):
            if c.sim is sim:
                del self.conns[key]
        self.kill_connections_to(sim.addr)

    def master_nodes(self):
        return [n for n in self.nodes.values() if n.alive and n.role == "master"]


_NO_REPLY = object()

RUNIDS = ["1" * 40, "2" * 40, "3" * 40]


def three_sentinel_world(replicas=((6380, 2000), (6381, 1000)), **kw):
    """Master 6379 with replicas (port, offset), three sentinels 26379..26381
    whose runids sort as 111.., 222.., 333.."""
    world = World(**kw)
    world.add_node(6379)
    for port, offset in replicas:
        world.add_node(port, "slave", 6379, offset=offset)
    for i, port in enumerate((26379, 26380, 26381)):
        world.add_sentinel(port, 6379, quorum=2, myid=RUNIDS[i])
    world.start()
    return world


def settle(world, ms=6000):
    """Let sentinels discover replicas and each other (hellos every 2 s)."""
    world.run_for(ms)
    for sim in world.sims.values():
        master = sim.state.masters["mymaster"]
        assert len(master.sentinels) == len(world.sims) - 1, sim.types()
        assert len(master.slaves) >= 1


def events_of(sim, type_):
    return [e for e in sim.events if e[1] == type_]


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def test_discovery_of_replicas_and_sentinels():
    world = three_sentinel_world()
    settle(world)
    for sim in world.sims.values():
        master = sim.state.masters["mymaster"]
        assert set(master.slaves) == {"127.0.0.1:6380", "127.0.0.1:6381"}
        assert {s.runid for s in master.sentinels.values()} == set(RUNIDS) - {sim.state.myid}
        assert "+sentinel" in sim.types() and "+slave" in sim.types()
        # the sentinels learned about each other and persisted it
        cfg = sim.state.to_config().masters[0]
        assert len(cfg.known_sentinels) == 2 and len(cfg.known_replicas) == 2
        assert not any(t in sim.types() for t in ("+sdown", "+odown", "+tilt"))


def test_full_failover_three_sentinels_is_fast():
    world = three_sentinel_world()
    settle(world)
    master = world.nodes[(HOST, 6379)]
    killed_at = world.now
    world.kill_node(master)
    winner = world.run_until_event("+promoted-slave", timeout=20_000)
    world.run_until_event("+switch-master", timeout=20_000, sims=[winner])
    new_master = world.nodes[(HOST, 6380)]  # the larger replication offset
    assert new_master.role == "master"
    # when did the replica get SLAVEOF NO ONE? (the moment it accepts writes)
    promoted = [e for e in winner.events if e[1] == "+promoted-slave"]
    assert promoted, winner.types()
    promotion_delay = promoted[0][0] - killed_at
    assert promotion_delay <= world.down_after + 300, promotion_delay

    # one leader, one epoch, everyone follows the new master
    leaders = [s for s in world.sims.values() if "+elected-leader" in s.types()]
    assert leaders == [winner]
    assert winner.state.myid == RUNIDS[0]  # smallest runid starts first
    world.run_for(3000)
    for sim in world.sims.values():
        m = sim.state.masters["mymaster"]
        assert (m.addr.ip, m.addr.port) == (HOST, 6380), sim.types()
        assert m.config_epoch == 1
        assert any(e[2] == "mymaster 127.0.0.1 6379 127.0.0.1 6380" for e in events_of(sim, "+switch-master"))
        assert sim.state.sentinel_command(["get-master-addr-by-name", "mymaster"], world.now).reply == \
            ["127.0.0.1", "6380"]
    observers = [s for s in world.sims.values() if s is not winner]
    for sim in observers:
        assert "+config-update-from" in sim.types()
        # observers learned the new master through hellos, well before the leader finished
        assert events_of(sim, "+switch-master")[0][0] - killed_at <= world.down_after + 400
    # the other replica now follows the new master
    assert world.nodes[(HOST, 6381)].master_port == 6380
    # the exact event sequence of the leader, Redis's names
    until_switch = winner.types()[:winner.types().index("+switch-master") + 1]
    seq = [t for t in until_switch if t in (
        "+sdown", "+odown", "+new-epoch", "+try-failover", "+vote-for-leader", "+elected-leader",
        "+failover-state-select-slave", "+selected-slave", "+failover-state-send-slaveof-noone",
        "+failover-state-wait-promotion", "+promoted-slave", "+failover-state-reconf-slaves",
        "+slave-reconf-sent", "+slave-reconf-inprog", "+slave-reconf-done", "+failover-end",
        "+switch-master")]
    assert seq == [
        "+sdown", "+odown", "+new-epoch", "+try-failover", "+vote-for-leader", "+elected-leader",
        "+failover-state-select-slave", "+selected-slave", "+failover-state-send-slaveof-noone",
        "+failover-state-wait-promotion", "+promoted-slave", "+failover-state-reconf-slaves",
        "+slave-reconf-sent", "+slave-reconf-inprog", "+slave-reconf-done", "+failover-end",
        "+switch-master"], seq
    assert events_of(winner, "+odown")[0][2] == "master mymaster 127.0.0.1 6379 #quorum 2/2" or \
        events_of(winner, "+odown")[0][2] == "master mymaster 127.0.0.1 6379 #quorum 3/2"
    # the promotion was sent the way Redis sends it
    assert ("SLAVEOF", "NO", "ONE") in new_master.received
    i = new_master.received.index(("SLAVEOF", "NO", "ONE"))
    assert new_master.received[i - 1] == ("MULTI",)
    assert new_master.received[i + 1:i + 5] == [("CONFIG", "REWRITE"), ("CLIENT", "KILL", "TYPE", "normal"),
                                                ("CLIENT", "KILL", "TYPE", "pubsub"), ("EXEC",)]


def test_old_master_returning_is_converted_to_replica():
    world = three_sentinel_world()
    settle(world)
    old = world.nodes[(HOST, 6379)]
    world.kill_node(old)
    world.run_until_event("+switch-master", timeout=20_000)
    world.run_for(2000)
    world.revive_node(old)  # restarts believing it is a master
    sim = world.run_until_event("+convert-to-slave", timeout=30_000)
    event = events_of(sim, "+convert-to-slave")[0]
    assert event[2] == "slave 127.0.0.1:6379 127.0.0.1 6379 @ mymaster 127.0.0.1 6380"
    world.run_for(1000)
    assert old.role == "slave" and old.master_port == 6380
    assert len(world.master_nodes()) == 1


def test_parallel_syncs_limits_concurrent_reconfiguration():
    world = World()
    world.add_node(6379)
    for port, off in ((6380, 5000), (6381, 100), (6382, 100), (6383, 100)):
        world.add_node(port, "slave", 6379, offset=off)
    for i, port in enumerate((26379, 26380, 26381)):
        world.add_sentinel(port, 6379, quorum=2, myid=RUNIDS[i])
    world.sync_ms = 400
    world.start()
    settle(world)
    world.kill_node(world.nodes[(HOST, 6379)])
    leader = world.run_until_event("+promoted-slave", timeout=30_000, sims=[world.sims[(HOST, 26379)]])
    # While the other replicas resync, SENTINEL MASTERS already shows the new
    # master without down flags (what redis-py's Sentinel.discover_master reads).
    m = leader.state.sentinel_command(["masters"], world.now).reply[0]
    assert (m["ip"], m["port"]) == ("127.0.0.1", "6380")
    assert m["flags"] == "master,failover_in_progress" and m["failover-state"] == "reconf_slaves"
    assert leader.state.sentinel_command(["get-master-addr-by-name", "mymaster"], world.now).reply == \
        ["127.0.0.1", "6380"]
    world.run_until_event("+switch-master", timeout=30_000, sims=[leader])
    in_flight = 0
    max_in_flight = 0
    for _, type_, _msg in leader.events:
        if type_ == "+slave-reconf-sent":
            in_flight += 1
        elif type_ == "+slave-reconf-done":
            in_flight -= 1
        max_in_flight = max(max_in_flight, in_flight)
    assert len(events_of(leader, "+slave-reconf-done")) == 3
    assert max_in_flight == 1  # parallel-syncs 1
    assert all(world.nodes[(HOST, p)].master_port == 6380 for p in (6381, 6382, 6383))


def test_split_vote_then_later_epoch_wins():
    world = three_sentinel_world()
    settle(world)
    kill_at = world.now

    # Vote requests are slow for a while: everybody votes for itself in epoch 1.
    def latency(src, dst, argv):
        slow = (argv[0] == "SENTINEL" and argv[1] == "is-master-down-by-addr" and argv[5] != "*"
                and world.now < kill_at + world.down_after + 1200)
        return 600 if slow else 1

    world.latency_fn = latency
    world.kill_node(world.nodes[(HOST, 6379)])
    world.run_until_event("+switch-master", timeout=30_000)
    aborted = [s for s in world.sims.values() if "-failover-abort-not-elected" in s.types()]
    assert len(aborted) >= 2
    tries = [e for s in world.sims.values() for e in events_of(s, "+try-failover")]
    assert len(tries) >= 4  # the first round for everybody, then a retry
    elected = [(s, e) for s in world.sims.values() for e in events_of(s, "+elected-leader")]
    assert len(elected) == 1
    leader = elected[0][0]
    epoch = leader.state.masters["mymaster"].config_epoch
    assert epoch >= 2
    # the split was resolved quickly, not after 2 x failover-timeout
    assert events_of(leader, "+elected-leader")[0][0] - kill_at < world.down_after + 3000
    world.run_for(3000)
    assert len(world.master_nodes()) == 1
    for sim in world.sims.values():
        assert sim.state.masters["mymaster"].config_epoch == epoch


def test_leader_crash_after_election_another_takes_over():
    world = three_sentinel_world(failover_timeout=3000)
    settle(world)
    first = world.sims[(HOST, 26379)]  # smallest runid: will be elected
    result = first.state.sentinel_command(["simulate-failure", "crash-after-election"], world.now)
    assert result.reply == "OK"
    kill_at = world.now
    world.kill_node(world.nodes[(HOST, 6379)])
    world.run_until_event("+elected-leader", timeout=10_000, sims=[first])
    assert not first.alive  # it crashed right after winning
    survivor = world.run_until_event("+switch-master", timeout=30_000,
                                     sims=[s for s in world.sims.values() if s is not first])
    took_over = [s for s in world.sims.values() if s is not first and "+elected-leader" in s.types()]
    assert len(took_over) == 1
    elected_at = events_of(took_over[0], "+elected-leader")[0][0]
    # the voters waited 2 x failover-timeout before trying themselves, as Redis does
    assert elected_at - kill_at >= 2 * world.failover_timeout
    assert survivor.state.masters["mymaster"].config_epoch >= 2
    assert len(world.master_nodes()) == 1


def test_leader_partitioned_before_promotion_then_takeover():
    world = three_sentinel_world(failover_timeout=3000)
    settle(world)
    first = world.sims[(HOST, 26379)]
    promoted_port = 6380
    world.nodes[(HOST, promoted_port)].ignore_promotion = True  # the leader's SLAVEOF NO ONE is lost
    world.kill_node(world.nodes[(HOST, 6379)])
    world.run_until_event("+failover-state-wait-promotion", timeout=10_000, sims=[first])
    world.kill_sentinel(first)
    world.nodes[(HOST, promoted_port)].ignore_promotion = False
    world.run_until_event("+switch-master", timeout=30_000,
                          sims=[s for s in world.sims.values() if s is not first])
    assert len(world.master_nodes()) == 1


def test_replica_that_never_confirms_promotion_aborts():
    world = World(failover_timeout=2000)
    world.add_node(6379)
    world.add_node(6380, "slave", 6379).ignore_promotion = True
    sim = world.add_sentinel(26379, 6379, quorum=1, myid=RUNIDS[0])
    world.start()
    world.run_for(3000)
    world.kill_node(world.nodes[(HOST, 6379)])
    world.run_until_event("+failover-state-wait-promotion", timeout=10_000)
    t0 = world.now
    world.run_until_event("-failover-abort-slave-timeout", timeout=10_000)
    assert world.now - t0 >= world.failover_timeout
    master = sim.state.masters["mymaster"]
    assert master.failover_state == 0 and not master.promoted_slave
    fields = sim.state.sentinel_command(["master", "mymaster"], world.now).reply
    assert "failover_in_progress" not in fields["flags"]
    # no new attempt before 2 x failover-timeout from the first one (Redis's rule)
    world.run_until_event("+try-failover", timeout=10_000)
    world.run_for(5000)
    tries = events_of(sim, "+try-failover")
    assert len(tries) >= 2
    assert tries[1][0] - tries[0][0] >= 2 * world.failover_timeout


def test_no_good_replica_aborts():
    world = World()
    world.add_node(6379)
    world.add_node(6380, "slave", 6379, priority=0)
    sim = world.add_sentinel(26379, 6379, quorum=1, myid=RUNIDS[0])
    world.start()
    world.run_for(3000)
    assert sim.state.sentinel_command(["failover", "mymaster"], world.now).reply == \
        Err("NOGOODSLAVE No suitable replica to promote")
    world.kill_node(world.nodes[(HOST, 6379)])
    world.run_until_event("-failover-abort-no-good-slave", timeout=10_000)


def test_manual_failover_command():
    world = World()
    world.add_node(6379)
    world.add_node(6380, "slave", 6379, offset=10)
    world.add_node(6381, "slave", 6379, offset=99)
    sim = world.add_sentinel(26379, 6379, quorum=1, myid=RUNIDS[0])
    world.start()
    world.run_for(3000)
    result = sim.state.sentinel_command(["FAILOVER", "mymaster"], world.now)
    assert result.reply == "OK"
    assert sim.state.sentinel_command(["failover", "mymaster"], world.now).reply == \
        Err("INPROG Failover already in progress")
    sim.process(result.actions)
    world.run_until_event("+switch-master", timeout=10_000)
    assert world.nodes[(HOST, 6381)].role == "master"
    assert sim.state.masters["mymaster"].addr.port == 6381
    # The old master was alive: like Redis, it is turned into a replica once it
    # has kept reporting "master" for 4 hello periods.
    world.run_until_event("+convert-to-slave", timeout=15_000)
    world.run_for(500)
    assert world.nodes[(HOST, 6379)].master_port == 6381


def test_copied_config_sentinel_is_never_a_voter():
    world = World()
    world.add_node(6379)
    world.add_node(6380, "slave", 6379)
    a = world.add_sentinel(26379, 6379, quorum=2, myid=RUNIDS[0])
    twin = world.add_sentinel(26380, 6379, quorum=2, myid=RUNIDS[0])  # copied sentinel.conf
    world.start()
    world.run_for(6000)
    for sim in (a, twin):
        master = sim.state.masters["mymaster"]
        assert len(master.sentinels) == 0  # the twin is never counted
        assert not sim.state.to_config().masters[0].known_sentinels
    # and with quorum 2 the master cannot be failed over by the pair
    world.kill_node(world.nodes[(HOST, 6379)])
    world.run_for(5000)
    assert "+odown" not in a.types() and "+odown" not in twin.types()


@pytest.mark.parametrize("seed", range(40))
def test_failover_converges_whatever_the_timing(seed):
    """Random tick phases and latencies: always exactly one master at the end,
    and every sentinel agrees on it."""
    rng = random.Random(seed)
    world = World(seed=seed, tick_ms=rng.choice((25, 50, 100)))
    world.add_node(6379)
    world.add_node(6380, "slave", 6379, offset=rng.randrange(1000))
    world.add_node(6381, "slave", 6379, offset=rng.randrange(1000))
    for i, port in enumerate((26379, 26380, 26381)):
        sim = world.add_sentinel(port, 6379, quorum=2)
        sim.offset = rng.randrange(100)
    world.latency_fn = lambda src, dst, argv: rng.randrange(1, 30)
    world.start()
    world.run_for(7000)
    world.kill_node(world.nodes[(HOST, 6379)])
    world.run_until_event("+switch-master", timeout=60_000)
    world.run_for(5000)
    masters = world.master_nodes()
    assert len(masters) == 1
    for sim in world.sims.values():
        m = sim.state.masters["mymaster"]
        assert m.addr.port == masters[0].port


@pytest.mark.parametrize("seed", range(8))
def test_promotes_the_replica_with_the_write_confirmed_just_before_the_fault(seed):
    # 6381 received a last write (confirmed by WAIT 1) just before the master
    # died, after the sentinels' last regular INFO: choosing by the offsets read
    # before the fault would promote 6380 and lose it.
    world = three_sentinel_world(replicas=((6380, 2000), (6381, 1990)), seed=seed)
    settle(world)
    world.run_for(world.rng.randrange(1000))
    world.nodes[(HOST, 6381)].offset = 2010
    world.kill_node(world.nodes[(HOST, 6379)])
    winner = world.run_until_event("+promoted-slave", timeout=20_000)
    assert world.nodes[(HOST, 6381)].role == "master", winner.types()
    assert world.nodes[(HOST, 6380)].role == "slave"
