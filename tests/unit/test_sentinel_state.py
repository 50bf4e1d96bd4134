"""SentinelState driven by scripted event orders: one sentinel, its peers and
instances played by hand. No sockets, no sleeps."""
from __future__ import annotations

import random

import pytest

from hakv.sentinel.actions import (
    Connect,
    Disconnect,
    Event,
    FlushConfig,
    KillScript,
    LinkKind,
    Log,
    Purpose,
    RunScript,
    Send,
)
from hakv.sentinel.config import parse_config
from hakv.sentinel.instances import FailoverState, Flag
from hakv.sentinel.state import SentinelState

MYID = "0" * 40  # sorts first: elections start without stagger
PEER1 = "a" * 40
PEER2 = "b" * 40
T0 = 5_000_000


class ReplyError(Exception):
    pass


def master_info(run_id="f" * 40, replicas=()):
    lines = ["# Server", f"run_id:{run_id}", "# Replication", "role:master", f"connected_slaves:{len(replicas)}"]
    for i, (port, offset) in enumerate(replicas):
        lines.append(f"slave{i}:ip=127.0.0.1,port={port},state=online,offset={offset},lag=0")
    return "\r\n".join(lines) + "\r\n"


def replica_info(run_id, master_port=6379, link="up", offset=100, priority=100, down_since=None,
                 master_host="127.0.0.1"):
    lines = ["# Server", f"run_id:{run_id}", "# Replication", "role:slave", f"master_host:{master_host}",
             f"master_port:{master_port}", f"master_link_status:{link}", f"slave_repl_offset:{offset}",
             f"slave_priority:{priority}", "replica_announced:1"]
    if down_since is not None:
        lines.append(f"master_link_down_since_seconds:{down_since}")
    return "\r\n".join(lines) + "\r\n"


class Driver:
    """Holds one SentinelState and the clock; answers for the world by hand."""

    def __init__(self, extra="", quorum=2, down_after=1000, peers=(), myid=MYID, replicas=(), **kw):
        text = f"port 26379\nsentinel myid {myid}\nsentinel monitor mymaster 127.0.0.1 6379 {quorum}\n"
        text += f"sentinel down-after-milliseconds mymaster {down_after}\n"
        for i, runid in enumerate(peers):
            text += f"sentinel known-sentinel mymaster 127.0.0.1 {26380 + i} {runid}\n"
        for port in replicas:
            text += f"sentinel known-replica mymaster 127.0.0.1 {port}\n"
        text += extra
        self.now = T0
        self.state = SentinelState(parse_config(text), self.now, rng=random.Random(3), **kw)
        self.actions: list = []
        self.links: dict[tuple, Connect] = {}  # (host, port) -> last Connect
        self.feed(self.state.start(self.now))

    # plumbing -------------------------------------------------------------

    def feed(self, actions):
        self.actions.extend(actions)
        for a in actions:
            if isinstance(a, Connect):
                self.links[(a.host, a.port)] = a
        return actions

    def tick(self, advance=0):
        self.now += advance
        return self.feed(self.state.tick(self.now))

    def up(self, port, advance=0):
        """Report the last Connect to 127.0.0.1:port as established."""
        self.now += advance
        c = self.links[("127.0.0.1", port)]
        return self.feed(self.state.on_link_up(c.link_id, c.conn, self.now, "127.0.0.1"))

    def down(self, port, reason="Connection refused"):
        c = self.links[("127.0.0.1", port)]
        return self.feed(self.state.on_link_down(c.link_id, c.conn, self.now, reason))

    def connect_everything(self):
        acts = self.tick(0)
        for a in acts:
            if isinstance(a, Connect):
                self.up(a.port)

    def sends(self, port=None, purpose=None, since=0):
        out = []
        for a in self.actions[since:]:
            if not isinstance(a, Send):
                continue
            c = next(c for c in self.links.values() if c.link_id == a.link_id)
            if port is not None and c.port != port:
                continue
            if purpose is not None and a.purpose != purpose:
                continue
            out.append(a)
        return out

    def reply(self, send, value, advance=0):
        self.now += advance
        return self.feed(self.state.on_reply(send, value, self.now))

    def answer_all(self, port, purpose, value):
        """Answer every send of `purpose` to `port` not answered yet."""
        out = []
        for s in self.sends(port, purpose):
            if id(s) not in self._answered:
                self._answered.add(id(s))
                out += self.reply(s, value)
        return out

    _answered: set = set()

    def events(self, type_=None):
        return [(a.type, a.message) for a in self.actions if isinstance(a, Event)
                and (type_ is None or a.type == type_)]

    def hello(self, payload, port=6379):
        c = self.links[("127.0.0.1", port)]
        return self.feed(self.state.on_pubsub_message(c.link_id, c.conn, "__sentinel__:hello", payload, self.now))

    @property
    def master(self):
        return self.state.masters["mymaster"]


def pump(d: Driver, ms: int, step: int = 100, ports=(6379, 26380, 26381)):
    """Let time pass with every listed instance answering its PINGs."""
    end = d.now + ms
    while d.now < end:
        d.tick(min(step, end - d.now))
        for port in ports:
            if ("127.0.0.1", port) in d.links:
                d.answer_all(port, Purpose.PING, "PONG")
                c = d.links[("127.0.0.1", port)]
                if c.kind == LinkKind.REDIS:  # pub/sub traffic (our own hellos in real life)
                    d.feed(d.state.on_pubsub_message(c.link_id, c.conn, "__sentinel__:hello", "", d.now))


def healthy(d: Driver, replicas=()):
    """Connect, answer PING/INFO once: a healthy monitored master."""
    d._answered = set()
    d.connect_everything()
    d.answer_all(6379, Purpose.PING, "PONG")
    d.answer_all(6379, Purpose.INFO, master_info(replicas=replicas))
    for port in (26380, 26381):
        if ("127.0.0.1", port) in d.links:
            d.answer_all(port, Purpose.PING, "PONG")


# --------------------------------------------------------------------------
# SDOWN
# --------------------------------------------------------------------------


def test_sdown_exactly_after_down_after_without_valid_reply():
    d = Driver(quorum=2)  # no peers: SDOWN can never become ODOWN
    healthy(d)
    last_ok = d.now
    # pings keep going out but nobody answers
    for _ in range(9):
        d.tick(100)
    assert d.sends(6379, Purpose.PING)[-1] is not None
    d.now = last_ok + 1000
    d.tick(0)
    assert not d.events("+sdown")
    d.tick(1)
    assert d.events("+sdown") == [("+sdown", "master mymaster 127.0.0.1 6379")]
    fields = d.state.sentinel_command(["master", "mymaster"], d.now).reply
    assert fields["flags"] == "s_down,master"
    assert fields["s-down-time"] == "0"
    # a valid reply brings it back
    d.answer_all(6379, Purpose.PING, "PONG")
    d.tick(10)
    assert d.events("-sdown") == [("-sdown", "master mymaster 127.0.0.1 6379")]


@pytest.mark.parametrize("reply,valid", [
    ("PONG", True), (b"PONG", True), (ReplyError("LOADING Redis is loading the dataset in memory"), True),
    (ReplyError("MASTERDOWN Link with MASTER is down"), True), (ReplyError("ERR unknown"), False),
    (ReplyError("NOAUTH Authentication required."), False),
])
def test_which_ping_replies_count_as_alive(reply, valid):
    d = Driver(quorum=1)
    d._answered = set()
    d.connect_everything()
    d.tick(600)
    d.answer_all(6379, Purpose.PING, reply)
    d.tick(700)
    assert bool(d.events("+sdown")) is not valid


def test_connection_refused_is_detected_from_last_good_reply():
    d = Driver(quorum=1)
    healthy(d)
    last_ok = d.now
    d.down(6379, "Connection reset by peer")
    d.now = last_ok + 1000
    d.tick(0)
    assert not d.events("+sdown")
    # reconnect attempts are refused
    for a in d.tick(1):
        if isinstance(a, Connect):
            d.down(a.port)
    assert d.events("+sdown")


def test_busy_script_gets_script_kill_once_sdown():
    d = Driver(quorum=1)
    healthy(d)
    d.tick(1100)
    assert d.events("+sdown")
    d.answer_all(6379, Purpose.PING, ReplyError("BUSY Redis is busy running a script."))
    kills = [s for s in d.sends(6379, Purpose.DISCARD) if s.argv == ("SCRIPT", "KILL")]
    assert len(kills) == 1
    d.tick(600)
    d.answer_all(6379, Purpose.PING, ReplyError("BUSY Redis is busy running a script."))
    assert len([s for s in d.sends(6379, Purpose.DISCARD) if s.argv == ("SCRIPT", "KILL")]) == 1


def test_master_reporting_replica_role_goes_sdown_after_grace():
    d = Driver(quorum=1)
    healthy(d)
    pump(d, 10_100)
    d.answer_all(6379, Purpose.INFO, replica_info("f" * 40, master_port=7000))
    assert ("-role-change", "master mymaster 127.0.0.1 6379 new reported role is slave") in d.events()
    t_role = d.now
    while d.now < t_role + 1000 + 2 * 10_000 + 100:
        pump(d, 500)
        if d.events("+sdown"):
            break
    assert d.events("+sdown")
    assert d.now - t_role > 1000 + 20_000


def test_reboot_detected_by_run_id_change():
    d = Driver(quorum=1)
    healthy(d)
    pump(d, 10_100)
    d.answer_all(6379, Purpose.INFO, master_info(run_id="e" * 40))
    assert d.events("+reboot") == [("+reboot", "master mymaster 127.0.0.1 6379")]
    assert d.master.runid == "e" * 40


# --------------------------------------------------------------------------
# ODOWN and the first election step
# --------------------------------------------------------------------------


def test_odown_needs_quorum_of_peer_replies():
    d = Driver(quorum=2, peers=(PEER1, PEER2))
    healthy(d)
    d.tick(1100)
    assert d.events("+sdown")
    asks = d.sends(26380, Purpose.IS_MASTER_DOWN) + d.sends(26381, Purpose.IS_MASTER_DOWN)
    assert len(asks) == 2
    assert asks[0].argv == ("SENTINEL", "is-master-down-by-addr", "127.0.0.1", "6379", "0", "*")
    d.reply(asks[0], [0, "*", 0])
    d.reply(asks[1], [0, "*", 0])
    d.tick(50)
    assert not d.events("+odown")
    d.tick(60)  # peers are asked again every 100 ms while SDOWN but not ODOWN
    asks = d.sends(26380, Purpose.IS_MASTER_DOWN)
    assert len(asks) == 2
    d.reply(asks[-1], [1, "*", 0])
    assert d.events("+odown") == [("+odown", "master mymaster 127.0.0.1 6379 #quorum 2/2")]
    # we have the smallest runid: the election starts at once
    assert ("+new-epoch", "1") in d.events()
    assert ("+try-failover", "master mymaster 127.0.0.1 6379") in d.events()
    assert ("+vote-for-leader", f"{MYID} 1") in d.events()
    vote_requests = [s for s in d.sends(purpose=Purpose.IS_MASTER_DOWN) if s.argv[-1] == MYID]
    assert {s.argv[4] for s in vote_requests} == {"1"} and len(vote_requests) == 2
    assert any(isinstance(a, FlushConfig) for a in d.actions)  # the vote is persisted


def test_quorum_not_reached_with_one_agreeing_peer():
    d = Driver(quorum=3, peers=(PEER1, PEER2))
    healthy(d)
    d.tick(1100)
    for s in d.sends(26380, Purpose.IS_MASTER_DOWN):
        d.reply(s, [1, "*", 0])
    for s in d.sends(26381, Purpose.IS_MASTER_DOWN):
        d.reply(s, [0, "*", 0])
    d.tick(50)
    assert not d.events("+odown")
    assert "master_down" in d.state.sentinel_command(["sentinels", "mymaster"], d.now).reply[0]["flags"]


def test_peer_opinion_expires_after_five_ask_periods():
    d = Driver(quorum=2, peers=(PEER1,))
    healthy(d)
    d.tick(1100)
    d.reply(d.sends(26380, Purpose.IS_MASTER_DOWN)[-1], [1, "*", 0])
    assert d.events("+odown")
    # the master comes back: -sdown, -odown; the peer's stale flag is dropped later
    d.answer_all(6379, Purpose.PING, "PONG")
    d.tick(10)
    assert d.events("-odown")
    pump(d, 5200)
    peer = next(iter(d.master.sentinels.values()))
    assert not peer.flags & Flag.MASTER_DOWN


def test_larger_runid_waits_its_turn_before_starting():
    d = Driver(quorum=2, peers=(PEER1,), myid="c" * 40)
    healthy(d)
    d.tick(1100)
    d.reply(d.sends(26380, Purpose.IS_MASTER_DOWN)[-1], [1, "*", 0])
    assert d.events("+odown")
    assert not d.events("+try-failover")  # PEER1 ("aaa...") agrees and goes first
    # PEER1 asks for our vote meanwhile: first come, first served
    result = d.state.sentinel_command(["is-master-down-by-addr", "127.0.0.1", "6379", "1", PEER1], d.now)
    d.feed(result.actions)
    assert result.reply == [1, PEER1, 1]
    d.tick(200)
    d.tick(200)
    assert not d.events("+try-failover")  # having voted, we leave it to the leader


# --------------------------------------------------------------------------
# Votes
# --------------------------------------------------------------------------


def test_one_vote_per_epoch_first_come():
    d = Driver(quorum=2, peers=(PEER1, PEER2))
    healthy(d)
    ask = lambda epoch, runid: d.state.sentinel_command(  # noqa: E731
        ["is-master-down-by-addr", "127.0.0.1", "6379", str(epoch), runid], d.now)
    r = ask(5, PEER1)
    assert r.reply == [0, PEER1, 5]
    assert ("+new-epoch", "5") in [(e.type, e.message) for e in r.actions if isinstance(e, Event)]
    assert ("+vote-for-leader", f"{PEER1} 5") in [(e.type, e.message) for e in r.actions if isinstance(e, Event)]
    assert any(isinstance(a, FlushConfig) for a in r.actions)
    assert ask(5, PEER2).reply == [0, PEER1, 5]  # already voted in epoch 5
    assert ask(4, PEER2).reply == [0, PEER1, 5]  # an older epoch does not get a vote
    assert ask(6, PEER2).reply == [0, PEER2, 6]
    assert ask(6, "*").reply == [0, "*", 0]  # not a vote request
    assert ask(7, MYID).reply == [0, PEER2, 6]  # nobody else may ask for our own ID
    assert d.state.current_epoch == 6
    assert d.state.to_config().masters[0].leader_epoch == 6
    r = d.state.sentinel_command(["is-master-down-by-addr", "127.0.0.1", "x", "1", "*"], d.now)
    assert r.reply == "ERR value is not an integer or out of range"
    r = d.state.sentinel_command(["is-master-down-by-addr", "10.0.0.9", "6379", "9", PEER1], d.now)
    assert r.reply == [0, "*", 0]  # unknown master: no vote


def test_is_master_down_reports_sdown_only_outside_tilt():
    d = Driver(quorum=1)
    healthy(d)
    d.tick(1100)
    ask = ["is-master-down-by-addr", "127.0.0.1", "6379", "0", "*"]
    assert d.state.sentinel_command(ask, d.now).reply == [1, "*", 0]
    d.tick(3000)  # clock jump: TILT
    assert d.state.sentinel_command(ask, d.now).reply[0] == 0


def test_voting_for_another_blocks_own_failover_for_twice_the_timeout():
    d = Driver(quorum=2, peers=(PEER1, PEER2), extra="sentinel failover-timeout mymaster 4000\n")
    healthy(d)
    d.feed(d.state.sentinel_command(["is-master-down-by-addr", "127.0.0.1", "6379", "1", PEER1], d.now).actions)
    voted_at = d.now
    d.tick(1100)
    for s in d.sends(purpose=Purpose.IS_MASTER_DOWN):
        d.reply(s, [1, "*", 0])
    assert d.events("+odown")
    while d.now < voted_at + 8000:
        d.tick(250)
        for s in d.sends(purpose=Purpose.IS_MASTER_DOWN)[-2:]:
            d.reply(s, [1, "*", 0])
        assert not d.events("+try-failover")
    for _ in range(8):
        d.tick(250)
        for s in d.sends(purpose=Purpose.IS_MASTER_DOWN)[-2:]:
            d.reply(s, [1, "*", 0])
    assert d.events("+try-failover")


# --------------------------------------------------------------------------
# Elections
# --------------------------------------------------------------------------


def odown_and_start(d):
    healthy(d)
    d.tick(1100)
    for s in d.sends(purpose=Purpose.IS_MASTER_DOWN):
        d.reply(s, [1, "*", 0])
    assert d.events("+try-failover")


def vote_requests(d):
    return [s for s in d.sends(purpose=Purpose.IS_MASTER_DOWN) if s.argv[-1] == MYID]


def test_elected_with_majority_of_votes():
    d = Driver(quorum=2, peers=(PEER1, PEER2), replicas=(6380,))
    odown_and_start(d)
    req = vote_requests(d)
    d.reply(req[0], [1, MYID, 1])
    assert d.events("+elected-leader") == [("+elected-leader", "master mymaster 127.0.0.1 6379")]
    assert d.events("+failover-state-select-slave")


def test_split_vote_is_abandoned_at_once_and_retried_soon():
    d = Driver(quorum=2, peers=(PEER1, PEER2), replicas=(6380,),
               extra="sentinel failover-timeout mymaster 60000\n")
    odown_and_start(d)
    req = vote_requests(d)
    d.reply(req[0], [1, PEER1, 1])
    assert not d.events("-failover-abort-not-elected")  # PEER2's vote is unknown: PEER1 may win
    d.reply(req[1], [1, PEER2, 1])
    assert d.events("-failover-abort-not-elected")  # 1/1/1: provably nobody won epoch 1
    assert d.master.failover_state == FailoverState.NONE
    aborted_at = d.now
    while not len(d.events("+try-failover")) == 2:
        d.tick(25)
        assert d.now - aborted_at < 1000, "retry should come quickly, not after 2 x failover-timeout"
    assert ("+new-epoch", "2") in d.events()


def test_unknown_votes_keep_redis_timeouts():
    d = Driver(quorum=2, peers=(PEER1, PEER2), replicas=(6380,),
               extra="sentinel failover-timeout mymaster 60000\n")
    odown_and_start(d)
    start = d.now
    req = vote_requests(d)
    d.reply(req[0], [1, PEER1, 1])  # PEER1 voted for itself; PEER2 never answers
    while not d.events("-failover-abort-not-elected"):
        d.tick(500)
        for s in d.sends(26380, Purpose.IS_MASTER_DOWN)[-1:]:
            d.reply(s, [1, PEER1, 1])
    assert d.now - start >= 10_000  # election timeout (min(10 s, failover-timeout))
    aborted = d.now
    for _ in range(20):
        d.tick(500)
        for s in d.sends(26380, Purpose.IS_MASTER_DOWN)[-1:]:
            d.reply(s, [1, "*", 0])
    assert len(d.events("+try-failover")) == 1  # and no retry before 2 x failover-timeout
    assert d.now - aborted >= 9_000


# --------------------------------------------------------------------------
# Replica selection
# --------------------------------------------------------------------------


def discovered(d, replicas):
    """Master INFO lists replicas; each answers INFO with the given fields."""
    healthy(d, replicas=[(p, 0) for p in replicas])
    d.connect_everything()
    for port in replicas:
        d.answer_all(port, Purpose.PING, "PONG")
    return d


def test_replica_selection_order():
    d = discovered(Driver(quorum=1), (6380, 6381, 6382, 6383, 6384))
    d.answer_all(6380, Purpose.INFO, replica_info("5" * 40, offset=100, priority=100))
    d.answer_all(6381, Purpose.INFO, replica_info("4" * 40, offset=200, priority=100))
    d.answer_all(6382, Purpose.INFO, replica_info("3" * 40, offset=200, priority=100))
    d.answer_all(6383, Purpose.INFO, replica_info("2" * 40, offset=999, priority=0))  # never
    d.answer_all(6384, Purpose.INFO, replica_info("1" * 40, offset=1, priority=50))
    pick = lambda: d.state.select_slave(d.master, d.now)  # noqa: E731
    assert pick().addr.port == 6384  # lowest priority first
    d.master.slaves["127.0.0.1:6384"].slave_priority = 100
    assert pick().addr.port == 6382  # then largest offset, then smallest runid
    d.master.slaves["127.0.0.1:6382"].flags |= Flag.S_DOWN
    assert pick().addr.port == 6381
    d.down(6381)
    assert pick().addr.port == 6380
    d.master.slaves["127.0.0.1:6380"].info_refresh -= 31_000  # stale INFO
    assert pick() is None or pick().addr.port == 6384


def test_replica_with_long_link_down_is_excluded():
    d = discovered(Driver(quorum=1), (6380, 6381))
    d.answer_all(6380, Purpose.INFO, replica_info("5" * 40, offset=900, link="down", down_since=11))
    d.answer_all(6381, Purpose.INFO, replica_info("6" * 40, offset=10))
    # master up: limit is down-after x 10 = 10 s
    assert d.state.select_slave(d.master, d.now).addr.port == 6381
    d.master.slaves["127.0.0.1:6381"].flags |= Flag.S_DOWN
    assert d.state.select_slave(d.master, d.now) is None


# --------------------------------------------------------------------------
# Hellos, sentinels, config epochs
# --------------------------------------------------------------------------


def hello(runid, port=26380, epoch=0, master_port=6379, config_epoch=0, ip="127.0.0.1"):
    return f"{ip},{port},{runid},{epoch},mymaster,127.0.0.1,{master_port},{config_epoch}"


def test_hello_is_sent_in_redis_format():
    d = Driver(quorum=1, extra="sentinel announce-ip 10.1.2.3\nsentinel announce-port 26999\n")
    healthy(d)
    d.tick(2100)
    publish = [s for s in d.sends(6379, Purpose.HELLO)]
    assert publish[-1].argv == ("PUBLISH", "__sentinel__:hello",
                                f"10.1.2.3,26999,{MYID},0,mymaster,127.0.0.1,6379,0")
    d.reply(publish[-1], 1)
    d.tick(1000)
    assert len(d.sends(6379, Purpose.HELLO)) == 1  # next one after the 2 s period
    d.tick(1100)
    assert len(d.sends(6379, Purpose.HELLO)) == 2


def test_hello_discovers_sentinel_and_epochs():
    d = Driver(quorum=1)
    healthy(d)
    d.hello(hello(PEER1, epoch=3))
    assert d.events("+sentinel") == [("+sentinel", f"sentinel {PEER1} 127.0.0.1 26380 @ mymaster 127.0.0.1 6379")]
    assert d.events("+new-epoch") == [("+new-epoch", "3")]
    assert d.state.current_epoch == 3
    si = d.master.sentinels[PEER1]
    assert si.runid == PEER1
    assert any(isinstance(a, Connect) and a.kind == LinkKind.SENTINEL and a.port == 26380 for a in d.tick(10))
    # the same sentinel from a new address: address switch, not a second voter
    d.hello(hello(PEER1, port=26390))
    assert d.events("+sentinel-address-switch")
    assert len(d.master.sentinels) == 1
    assert d.master.sentinels[PEER1].addr.port == 26390
    # another runid at that address: the old entry is invalid
    d.hello(hello(PEER2, port=26390))
    assert d.events("+sentinel-invalid-addr")
    assert list(d.master.sentinels) == [PEER2]


def test_greater_config_epoch_switches_master():
    d = Driver(quorum=1, replicas=(6380,))
    healthy(d)
    d.hello(hello(PEER1))
    flushes = sum(isinstance(a, FlushConfig) for a in d.actions)
    d.hello(hello(PEER1, epoch=5, master_port=6390, config_epoch=5))
    assert d.events("+config-update-from") == [
        ("+config-update-from", f"sentinel {PEER1} 127.0.0.1 26380 @ mymaster 127.0.0.1 6379")]
    assert d.events("+switch-master") == [("+switch-master", "mymaster 127.0.0.1 6379 127.0.0.1 6390")]
    assert d.master.addr.port == 6390 and d.master.config_epoch == 5
    assert set(d.master.slaves) == {"127.0.0.1:6380", "127.0.0.1:6379"}  # the old master is a replica now
    assert sum(isinstance(a, FlushConfig) for a in d.actions) > flushes
    assert any(isinstance(a, Disconnect) for a in d.actions)
    # an older configuration never wins
    d.hello(hello(PEER1, epoch=5, master_port=6400, config_epoch=4))
    assert d.master.addr.port == 6390
    # the same address with a newer epoch only updates the epoch
    d.hello(hello(PEER1, epoch=6, master_port=6390, config_epoch=6))
    assert d.master.config_epoch == 6 and len(d.events("+switch-master")) == 1
    cfg = d.state.to_config().masters[0]
    assert (cfg.host, cfg.port, cfg.config_epoch) == ("127.0.0.1", 6390, 6)


def test_hello_for_unknown_master_or_garbage_is_ignored():
    d = Driver(quorum=1)
    healthy(d)
    before = len(d.actions)
    d.hello("127.0.0.1,26380," + PEER1 + ",0,othermaster,127.0.0.1,6379,0")
    d.hello("not,a,hello")
    d.hello("127.0.0.1,x,y,z,mymaster,127.0.0.1,6379,0")
    assert len(d.actions) == before


def test_copied_config_duplicate_runid_is_ignored_and_reported():
    d = Driver(quorum=1)
    healthy(d)
    d.tick(2100)  # our own hello goes out ...
    own = d.sends(6379, Purpose.HELLO)[-1].argv[2]
    d.hello(own)  # ... and comes back through the master's pub/sub: silence
    assert not [a for a in d.actions if isinstance(a, Log) and "copied" in a.text]
    d.hello(hello(MYID, port=26500, ip="10.0.0.7"))  # a copy of our config, elsewhere
    warnings = [a for a in d.actions if isinstance(a, Log) and "copied" in a.text]
    assert len(warnings) == 1 and "10.0.0.7:26500" in warnings[0].text
    assert len(d.master.sentinels) == 0
    d.hello(hello(MYID, port=26500, ip="10.0.0.7"))
    assert len([a for a in d.actions if isinstance(a, Log) and "copied" in a.text]) == 1  # rate limited
    # a hand-written known-sentinel with our own ID is not loaded either
    d2 = Driver(quorum=1, peers=(MYID, PEER1))
    assert list(d2.master.sentinels) == [PEER1]


def test_sentinel_links_are_shared_between_masters():
    extra = ("sentinel monitor other 127.0.0.1 7000 1\n"
             f"sentinel known-sentinel other 127.0.0.1 26380 {PEER1}\n")
    d = Driver(quorum=1, peers=(PEER1,), extra=extra)
    a = d.master.sentinels[PEER1]
    b = d.state.masters["other"].sentinels[PEER1]
    assert a.link is b.link and a.link.refcount == 2
    acts = d.tick(0)
    assert len([x for x in acts if isinstance(x, Connect) and x.port == 26380]) == 1


# --------------------------------------------------------------------------
# TILT
# --------------------------------------------------------------------------


def test_tilt_on_forward_jump_freezes_acting_for_30s():
    d = Driver(quorum=1)
    healthy(d)
    d.tick(100)
    d.tick(2500)  # the process was stalled
    assert d.events("+tilt") == [("+tilt", "#tilt mode entered")]
    assert "sentinel_tilt:1" in d.state.info_section(d.now)
    # the master stops answering, but in TILT nothing is concluded
    while d.now < T0 + 30_000:
        d.tick(100)
        assert not d.events("+sdown")
    # monitoring continued: PINGs kept going out during TILT
    assert len(d.sends(6379, Purpose.PING)) > 10
    while not d.events("-tilt"):
        d.tick(100)
    assert d.events("-tilt") == [("-tilt", "#tilt mode exited")]
    d.tick(100)
    assert d.events("+sdown")


def test_tilt_on_backward_jump():
    d = Driver(quorum=1)
    healthy(d)
    d.tick(100)
    d.tick(-50)
    assert d.events("+tilt")
    info = d.state.info_section(d.now)
    assert "sentinel_tilt_since_seconds:0" in info


def test_tilt_skips_acting_on_info():
    d = discovered(Driver(quorum=1), (6380,))
    d.answer_all(6380, Purpose.INFO, replica_info("5" * 40, master_port=6379))
    d.tick(3000)
    assert d.events("+tilt")
    # the replica claims to be a master: normally converted back after 8 s, not in TILT
    for _ in range(100):
        d.tick(100)
        d.answer_all(6380, Purpose.INFO, master_info(run_id="5" * 40))
        d.answer_all(6379, Purpose.PING, "PONG")
        d.answer_all(6380, Purpose.PING, "PONG")
    assert not d.events("+convert-to-slave")


# --------------------------------------------------------------------------
# Replica reconfiguration outside failovers
# --------------------------------------------------------------------------


def test_misconfigured_replica_is_fixed_after_failover_timeout():
    d = discovered(Driver(quorum=1, extra="sentinel failover-timeout mymaster 3000\n"), (6380,))
    d.answer_all(6380, Purpose.INFO, replica_info("5" * 40, master_port=7777))
    t = d.now
    while not d.events("+fix-slave-config"):
        d.tick(500)
        d.answer_all(6379, Purpose.PING, "PONG")
        d.answer_all(6379, Purpose.INFO, master_info(replicas=[(6380, 0)]))
        d.answer_all(6380, Purpose.PING, "PONG")
        d.answer_all(6380, Purpose.INFO, replica_info("5" * 40, master_port=7777))
        assert d.now - t < 20_000
    assert d.now - t > 3000
    slaveof = [s.argv for s in d.sends(6380, Purpose.DISCARD)]
    assert slaveof[:6] == [("MULTI",), ("SLAVEOF", "127.0.0.1", "6379"), ("CONFIG", "REWRITE"),
                           ("CLIENT", "KILL", "TYPE", "normal"), ("CLIENT", "KILL", "TYPE", "pubsub"), ("EXEC",)]


def test_renamed_commands_are_used():
    d = Driver(quorum=1, extra="sentinel rename-command mymaster CONFIG SECRETCONFIG\n"
                               "sentinel rename-command mymaster SLAVEOF hidden-slaveof\n")
    d._answered = set()
    d.connect_everything()
    assert d.links[("127.0.0.1", 6379)].command_name("config") == "SECRETCONFIG"
    d.state._send_slaveof(d.master, None)
    d.feed(d.state._drain())
    argv = [s.argv for s in d.sends(6379, Purpose.DISCARD)]
    assert ("hidden-slaveof", "NO", "ONE") in argv and ("SECRETCONFIG", "REWRITE") in argv


# --------------------------------------------------------------------------
# Scripts
# --------------------------------------------------------------------------


def test_notification_script_runs_with_retries():
    d = Driver(quorum=1, extra="sentinel notification-script mymaster /bin/true\n")
    healthy(d)
    d.tick(1100)  # +sdown is a warning: the script is queued and started
    runs = [a for a in d.actions if isinstance(a, RunScript) and a.argv[1] == "+sdown"]
    assert runs and runs[0].argv == ("/bin/true", "+sdown", "master mymaster 127.0.0.1 6379")
    job = runs[0].job_id
    d.feed(d.state.on_script_started(job, 4242, d.now))
    pending = d.state.sentinel_command(["pending-scripts"], d.now).reply
    mine = [p for p in pending if p["argv"][1] == "+sdown"][0]
    assert mine["flags"] == "running" and mine["pid"] == "4242" and mine["retry-num"] == "1"
    d.feed(d.state.on_script_exited(job, 1, 0, d.now))  # exit 1 = retry later
    assert not [a for a in d.tick(10) if isinstance(a, RunScript) and a.job_id == job]
    d.tick(30_000)
    d.answer_all(6379, Purpose.PING, "PONG")
    assert [a for a in d.actions[-20:] if isinstance(a, RunScript) and a.job_id == job]
    d.feed(d.state.on_script_started(job, 4243, d.now))
    d.tick(61_000)  # runs too long
    kills = [a for a in d.actions if isinstance(a, KillScript)]
    assert kills and kills[0].pid == 4243 and d.events("-script-timeout")
    d.feed(d.state.on_script_exited(job, 2, 0, d.now))
    assert ("-script-error", "/bin/true 0 2") in d.events()
