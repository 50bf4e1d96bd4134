"""The SENTINEL command family's replies, checked against the texts and field
orders a real redis-sentinel 7.0 produces."""
from __future__ import annotations

from hakv.sentinel.actions import Disconnect, Event, FlushConfig, Purpose
from hakv.sentinel.replies import NULL_ARRAY, Err, Status
from test_sentinel_state import (
    MYID,
    PEER1,
    PEER2,
    Driver,
    healthy,
    hello,
    master_info,
    pump,
    replica_info,
)

MASTER_FIELDS = [
    "name", "ip", "port", "runid", "flags", "link-pending-commands", "link-refcount", "last-ping-sent",
    "last-ok-ping-reply", "last-ping-reply", "down-after-milliseconds", "info-refresh", "role-reported",
    "role-reported-time", "config-epoch", "num-slaves", "num-other-sentinels", "quorum", "failover-timeout",
    "parallel-syncs",
]
REPLICA_FIELDS = [
    "name", "ip", "port", "runid", "flags", "link-pending-commands", "link-refcount", "last-ping-sent",
    "last-ok-ping-reply", "last-ping-reply", "down-after-milliseconds", "info-refresh", "role-reported",
    "role-reported-time", "master-link-down-time", "master-link-status", "master-host", "master-port",
    "slave-priority", "slave-repl-offset", "replica-announced",
]
SENTINEL_FIELDS = [
    "name", "ip", "port", "runid", "flags", "link-pending-commands", "link-refcount", "last-ping-sent",
    "last-ok-ping-reply", "last-ping-reply", "down-after-milliseconds", "last-hello-message", "voted-leader",
    "voted-leader-epoch",
]


def cmd(d, *args):
    result = d.state.sentinel_command(list(args), d.now)
    d.feed(result.actions)
    return result.reply


def test_master_replicas_sentinels_fields_in_redis_order():
    d = Driver(quorum=2, peers=(PEER1,))
    healthy(d, replicas=[(6380, 5)])
    d.connect_everything()
    d.answer_all(6380, Purpose.INFO, replica_info("9" * 40, offset=77, priority=10))
    d.answer_all(6380, Purpose.PING, "PONG")
    m = cmd(d, "master", "mymaster")
    assert list(m) == MASTER_FIELDS
    assert m["name"] == "mymaster" and m["ip"] == "127.0.0.1" and m["port"] == "6379"
    assert m["runid"] == "f" * 40 and m["flags"] == "master"
    assert m["num-slaves"] == "1" and m["num-other-sentinels"] == "1" and m["quorum"] == "2"
    assert m["failover-timeout"] == "180000" and m["parallel-syncs"] == "1"
    assert m["down-after-milliseconds"] == "1000" and m["role-reported"] == "master"
    assert all(isinstance(v, str) for v in m.values())  # numbers go out as bulk strings, like Redis
    assert cmd(d, "masters") == [m]
    replicas = cmd(d, "replicas", "mymaster")
    assert cmd(d, "slaves", "mymaster") == replicas
    r = replicas[0]
    assert list(r) == REPLICA_FIELDS
    assert r["name"] == "127.0.0.1:6380" and r["flags"] == "slave" and r["master-link-status"] == "ok"
    assert (r["master-host"], r["master-port"], r["slave-priority"], r["slave-repl-offset"]) == \
        ("127.0.0.1", "6379", "10", "77")
    s = cmd(d, "sentinels", "mymaster")[0]
    assert list(s) == SENTINEL_FIELDS
    assert s["name"] == PEER1 and s["runid"] == PEER1 and s["voted-leader"] == "?"
    assert s["flags"] == "sentinel"
    for sub in ("master", "replicas", "sentinels", "failover", "ckquorum", "remove"):
        assert cmd(d, sub, "nope") == Err("ERR No such master with that name")


def test_flags_of_a_failing_master():
    d = Driver(quorum=1, replicas=(6380,))
    healthy(d)
    d.down(6379)
    d.tick(1100)
    m = cmd(d, "master", "mymaster")
    assert m["flags"].startswith("s_down,o_down,master,disconnected")
    assert "failover_in_progress" in m["flags"]
    fields = list(m)
    assert fields.index("failover-state") == fields.index("link-refcount") + 1
    assert "s-down-time" in m and "o-down-time" in m
    assert m["failover-state"] in ("wait_start", "select_slave")


def test_get_master_addr_by_name():
    d = Driver(quorum=1)
    assert cmd(d, "get-master-addr-by-name", "mymaster") == ["127.0.0.1", "6379"]
    assert cmd(d, "GET-MASTER-ADDR-BY-NAME", "nope") is NULL_ARRAY


def test_ckquorum_texts():
    d = Driver(quorum=2)
    assert cmd(d, "ckquorum", "mymaster") == Err(
        "NOQUORUM 1 usable Sentinels. Not enough available Sentinels to reach the specified quorum for this master")
    d = Driver(quorum=2, peers=(PEER1, PEER2))
    assert cmd(d, "ckquorum", "mymaster") == Status(
        "OK 3 usable Sentinels. Quorum and failover authorization can be reached")
    d = Driver(quorum=3, peers=(PEER1, PEER2, "c" * 40, "d" * 40))
    for si in list(d.master.sentinels.values())[:3]:
        si.flags |= si.flags.S_DOWN
    assert cmd(d, "ckquorum", "mymaster") == Err(
        "NOQUORUM 2 usable Sentinels. Not enough available Sentinels to reach the specified quorum for this "
        "master. Not enough available Sentinels to reach the majority and authorize a failover")


def test_reset_forgets_replicas_and_sentinels():
    d = Driver(quorum=1, peers=(PEER1,), replicas=(6380,))
    assert cmd(d, "reset", "nomatch") == 0
    assert cmd(d, "reset", "my*") == 1
    assert ("+reset-master", "master mymaster 127.0.0.1 6379") in d.events()
    assert not d.master.slaves and not d.master.sentinels


def test_set_options_events_and_errors():
    d = Driver(quorum=2, replicas=(6380,))
    healthy(d)
    r = d.state.sentinel_command(["set", "mymaster", "quorum", "1", "down-after-milliseconds", "2000"], d.now)
    d.feed(r.actions)
    assert r.reply == Status("OK") and r.reply_on_flush_error is not None
    assert ("+set", "master mymaster 127.0.0.1 6379 quorum 1") in d.events()
    assert ("+set", "master mymaster 127.0.0.1 6379 down-after-milliseconds 2000") in d.events()
    assert any(isinstance(a, FlushConfig) for a in r.actions)
    assert d.master.quorum == 1 and d.master.slaves["127.0.0.1:6380"].down_after_period == 2000
    r = d.state.sentinel_command(["set", "mymaster", "auth-pass", "secret"], d.now)
    d.feed(r.actions)
    assert ("+set", "master mymaster 127.0.0.1 6379 auth-pass ******") in d.events()
    assert any(isinstance(a, Disconnect) for a in r.actions)  # reconnect with the new password
    reconnects = [a for a in d.tick(1000) if a.__class__.__name__ == "Connect" and a.port == 6379]
    assert reconnects and reconnects[0].auth_pass == "secret" and reconnects[0].auth_user is None
    assert cmd(d, "set", "mymaster", "quorum", "0") == Err("ERR Invalid argument '0' for SENTINEL SET 'quorum'")
    assert cmd(d, "set", "mymaster", "foo", "1") == Err(
        "ERR Unknown option or number of arguments for SENTINEL SET 'foo'")
    assert cmd(d, "set", "mymaster", "notification-script", "/bin/true") == Err(
        "ERR Reconfiguration of scripts path is denied for security reasons. Check the deny-scripts-reconfig "
        "configuration directive in your Sentinel configuration")
    assert cmd(d, "set", "mymaster") == Err("ERR wrong number of arguments for 'sentinel|set' command")
    assert cmd(d, "set", "mymaster", "rename-command", "CONFIG", "XCONFIG") == "OK"
    assert d.master.renamed_commands == {"CONFIG": "XCONFIG"}
    assert d.state.to_config().masters[0].rename_commands == {"CONFIG": "XCONFIG"}


def test_monitor_and_remove():
    d = Driver(quorum=1)
    assert cmd(d, "monitor", "m2", "127.0.0.1", "x", "2") == Err("ERR Invalid port")
    assert cmd(d, "monitor", "m2", "127.0.0.1", "1", "x") == Err("ERR Invalid quorum")
    assert cmd(d, "monitor", "m2", "127.0.0.1", "1", "0") == Err("ERR Quorum must be 1 or greater.")
    assert cmd(d, "monitor", "m2", "notanip", "1", "2") == Err("ERR Invalid IP address or hostname specified")
    assert cmd(d, "monitor", "mymaster", "127.0.0.1", "1", "2") == Err("ERR Duplicate master name.")
    assert cmd(d, "monitor", "m2", "127.0.0.1", "99999", "2") == Err("ERR Invalid port number.")
    r = d.state.sentinel_command(["monitor", "m2", "127.0.0.1", "7000", "2"], d.now)
    d.feed(r.actions)
    assert r.reply == "OK" and any(isinstance(a, FlushConfig) for a in r.actions)
    assert ("+monitor", "master m2 127.0.0.1 7000 quorum 2") in d.events()
    assert [m.name for m in d.state.to_config().masters] == ["mymaster", "m2"]
    assert cmd(d, "remove", "m2") == "OK"
    assert ("-monitor", "master m2 127.0.0.1 7000") in d.events()
    assert list(d.state.masters) == ["mymaster"]
    assert d.state.role() == ["sentinel", ["mymaster"]]


def test_config_get_set():
    d = Driver(quorum=1)
    assert cmd(d, "config", "get", "*") == {
        "resolve-hostnames": "no", "announce-hostnames": "no", "announce-ip": "", "announce-port": "0",
        "sentinel-user": "", "sentinel-pass": ""}
    assert list(cmd(d, "config", "get", "announce*")) == ["announce-hostnames", "announce-ip", "announce-port"]
    assert cmd(d, "config", "set", "announce-port", "x") == Err(
        "ERR Invalid value 'x' to SENTINEL CONFIG SET 'announce-port'")
    assert cmd(d, "config", "set", "foo", "bar") == Err("ERR Invalid argument 'foo' to SENTINEL CONFIG SET")
    assert cmd(d, "config") == Err("ERR wrong number of arguments for 'sentinel|config' command")
    assert cmd(d, "config", "get") == Err(
        "ERR Only SENTINEL CONFIG GET <option> / SET <option> <value> are supported.")
    assert cmd(d, "config", "set", "x") == Err(
        "ERR Only SENTINEL CONFIG GET <option> / SET <option> <value> are supported.")
    assert cmd(d, "config", "set", "announce-ip", "10.9.9.9") == "OK"
    assert cmd(d, "config", "set", "resolve-hostnames", "yes") == "OK"
    cfg = d.state.to_config()
    assert cfg.announce_ip == "10.9.9.9" and cfg.resolve_hostnames


def test_misc_subcommands():
    d = Driver(quorum=1)
    assert cmd(d, "myid") == MYID
    assert cmd(d, "masters", "x") == Err("ERR wrong number of arguments for 'sentinel|masters' command")
    assert cmd(d, "bogus") == Err("ERR unknown subcommand 'bogus'. Try SENTINEL HELP.")
    assert cmd(d, "simulate-failure", "help") == ["crash-after-election", "crash-after-promotion"]
    assert cmd(d, "simulate-failure", "foo") == Err("ERR Unknown failure simulation specified")
    assert cmd(d, "simulate-failure", "crash-after-promotion") == "OK"
    assert "sentinel_simulate_failure_flags:2" in d.state.info_section(d.now)
    debug = cmd(d, "debug")
    assert list(debug)[:3] == ["INFO-PERIOD", "PING-PERIOD", "ASK-PERIOD"] and debug["TILT-PERIOD"] == "30000"
    assert cmd(d, "debug", "info-period", "500", "tilt-period", "100") == "OK"
    assert d.state.timings.info_period == 500
    assert cmd(d, "debug", "info-period", "0") == Err("ERR Invalid argument '0' for SENTINEL DEBUG 'info-period'")
    assert cmd(d, "debug", "nope", "1") == Err("ERR Unknown option or number of arguments for SENTINEL DEBUG 'nope'")
    help_lines = cmd(d, "help")
    assert help_lines[0] == "SENTINEL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    assert help_lines[-2:] == ["HELP", "    Prints this help."]
    assert all(isinstance(x, Status) for x in help_lines)
    assert cmd(d, "pending-scripts") == []
    assert cmd(d, "flushconfig") == "OK"


def test_info_cache():
    d = Driver(quorum=1)
    healthy(d, replicas=[(6380, 0)])
    pump(d, 300)
    reply = cmd(d, "info-cache", "mymaster", "nope")
    assert reply[0] == "mymaster" and len(reply) == 2
    entries = reply[1]
    assert entries[0][1] == master_info(replicas=[(6380, 0)]) and isinstance(entries[0][0], int)
    assert entries[1] == [0, None]  # the replica has not answered INFO yet
    assert cmd(d, "info-cache") == Err("ERR wrong number of arguments for 'sentinel|info-cache' command")


def test_publish_only_accepts_hellos():
    d = Driver(quorum=1)
    r = d.state.publish("foo", "bar", d.now)
    assert r.reply == Err("ERR Only HELLO messages are accepted by Sentinel instances.")
    r = d.state.publish("__sentinel__:hello", hello(PEER1), d.now)
    d.feed(r.actions)
    assert r.reply == 1
    assert d.events("+sentinel")


def test_info_section_text():
    d = Driver(quorum=1, peers=(PEER1,), replicas=(6380, 6381))
    text = d.state.info_section(d.now)
    assert text == "\r\n".join([
        "# Sentinel",
        "sentinel_masters:1",
        "sentinel_tilt:0",
        "sentinel_tilt_since_seconds:-1",
        "sentinel_running_scripts:0",
        "sentinel_scripts_queue_length:0",
        "sentinel_simulate_failure_flags:0",
        "master0:name=mymaster,status=ok,address=127.0.0.1:6379,slaves=2,sentinels=2",
    ])


def test_failover_command_events_are_published_with_redis_names():
    d = Driver(quorum=2, replicas=(6380,))
    healthy(d)
    d.connect_everything()
    d.answer_all(6380, Purpose.PING, "PONG")
    d.answer_all(6380, Purpose.INFO, replica_info("9" * 40))
    r = d.state.sentinel_command(["failover", "mymaster"], d.now)
    d.feed(r.actions)
    assert r.reply == "OK"
    types = [a.type for a in r.actions if isinstance(a, Event)]
    assert types[:8] == ["+new-epoch", "+try-failover", "+vote-for-leader", "+elected-leader",
                         "+failover-state-select-slave", "+selected-slave",
                         "+failover-state-send-slaveof-noone", "+failover-state-wait-promotion"]
    assert "force_failover" in cmd(d, "master", "mymaster")["flags"]
