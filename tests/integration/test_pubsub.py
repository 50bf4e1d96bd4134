"""Pub/sub against a started hakv-server: SUBSCRIBE UNSUBSCRIBE PSUBSCRIBE
PUNSUBSCRIBE PUBLISH PUBSUB, RESP2 arrays and RESP3 pushes, the subscribe
context, keyspace notifications; the exact bytes are compared with a real
redis-server 7.0.

(Unsubscribing from everything lists channels in Redis's hash-table order,
which depends on a random seed; those cases use one channel at a time.)
"""

from __future__ import annotations

import socket
import time

import hiredis
import pytest

from procs import hakv_server, redis_server


class Conn:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.reader = hiredis.Reader(replyError=lambda m: ("ERR", m))

    def send(self, *argv):
        self.sock.sendall(b"*%d\r\n" % len(argv) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in (
                x if isinstance(x, bytes) else str(x).encode() for x in argv)))

    def read(self, timeout: float = 5.0):
        self.sock.settimeout(timeout)
        while True:
            reply = self.reader.gets()
            if reply is not False:
                return reply
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("closed")
            self.reader.feed(data)

    def __call__(self, *argv):
        self.send(*argv)
        return self.read()

    def raw(self, data: bytes, quiet: float = 0.15) -> bytes:
        self.sock.sendall(data)
        out = b""
        self.sock.settimeout(5)
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    break
                out += chunk
                self.sock.settimeout(quiet)
        except socket.timeout:
            pass
        return out

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("pubsub-pair")
    ours = hakv_server(str(d / "hakv")).start()
    theirs = redis_server(str(d / "redis")).start()
    yield ours, theirs
    ours.stop()
    theirs.stop()


RAW_CASES = [
    b"SUBSCRIBE a\r\nSUBSCRIBE a\r\nUNSUBSCRIBE a\r\nUNSUBSCRIBE a\r\nUNSUBSCRIBE\r\n",
    b"SUBSCRIBE a b\r\nUNSUBSCRIBE b\r\nUNSUBSCRIBE a\r\nPING\r\n",
    b"PSUBSCRIBE a* b?\r\nPUNSUBSCRIBE x\r\nPUNSUBSCRIBE b?\r\nPUNSUBSCRIBE a*\r\n"
    b"PUNSUBSCRIBE\r\n",
    b"SUBSCRIBE a\r\nPSUBSCRIBE a*\r\nUNSUBSCRIBE a\r\nPUNSUBSCRIBE\r\nPING\r\n",
    b"SUBSCRIBE\r\nPSUBSCRIBE\r\nUNSUBSCRIBE\r\nPUNSUBSCRIBE\r\n",
    b"SUBSCRIBE a\r\nPING\r\nPING hi\r\nGET x\r\nSET x 1\r\nMULTI\r\nQUIT\r\n",
    b"SUBSCRIBE a\r\nRESET\r\nGET x\r\n",
    b"PUBLISH\r\nPUBLISH a\r\nPUBLISH a b\r\nPUBLISH a b c\r\n",
    b"PUBSUB\r\nPUBSUB foo\r\nPUBSUB NUMPAT x\r\nPUBSUB CHANNELS a b\r\nPUBSUB NUMSUB\r\n",
    b"SUBSCRIBE \x00bin\xff\r\nUNSUBSCRIBE \x00bin\xff\r\n",
    b"SSUBSCRIBE a b\r\nSUNSUBSCRIBE a\r\nSUNSUBSCRIBE b\r\nSUNSUBSCRIBE\r\n",
    b"SUBSCRIBE a\r\nSSUBSCRIBE b c\r\nPSUBSCRIBE p\r\nUNSUBSCRIBE a\r\nSUNSUBSCRIBE b\r\n"
    b"GET x\r\nSUNSUBSCRIBE c\r\nPUNSUBSCRIBE\r\nGET x\r\n",
    b"SUNSUBSCRIBE\r\nSUNSUBSCRIBE x\r\nPUBSUB SHARDCHANNELS\r\nPUBSUB SHARDNUMSUB a\r\n"
    b"SSUBSCRIBE\r\nSPUBLISH a\r\nSPUBLISH a b\r\n",
    b"SSUBSCRIBE a\r\nPING\r\nRESET\r\nPUBSUB SHARDCHANNELS\r\n",
    b"PUBSUB SHARDCHANNELS a b\r\nPUBSUB channels a b\r\n",
    # a message to oneself inside EXEC lands inside EXEC's array (Redis's way)
    b"MULTI\r\nSUBSCRIBE ch\r\nPUBLISH ch x\r\nPSUBSCRIBE c*\r\nPUBLISH ch y\r\nPING\r\n"
    b"EXEC\r\nPING\r\n",
]


@pytest.mark.parametrize("data", RAW_CASES, ids=lambda d: repr(d[:40]))
@pytest.mark.parametrize("resp3", [False, True])
def test_replies_match_redis(pair, data, resp3):
    out = []
    for proc in pair:
        c = Conn(proc.port)
        if resp3:
            c("HELLO", "3")
        out.append(c.raw(data))
        c.close()
    assert out[0] == out[1], data


def test_messages_and_receiver_counts_match_redis(pair):
    def run(port):
        subs = Conn(port), Conn(port), Conn(port)
        subs[0]("SUBSCRIBE", "news")
        subs[1]("PSUBSCRIBE", "n*")
        subs[2]("HELLO", "3")
        subs[2]("SUBSCRIBE", "news")
        subs[2]("PSUBSCRIBE", "new?")
        pub = Conn(port)
        counts = [pub("PUBLISH", "news", "m1"), pub("PUBLISH", "nope", "m2"),
                  pub("PUBLISH", "other", "m3")]
        got = [subs[0].read(), subs[1].read(), subs[1].read(), subs[2].read(),
               subs[2].read()]
        numsub = pub("PUBSUB", "NUMSUB", "news", "nope", "n*")
        numpat = pub("PUBSUB", "NUMPAT")
        shard = Conn(port)
        shard("SSUBSCRIBE", "news")
        counts.append(pub("SPUBLISH", "news", "s1"))
        got.append(shard.read())
        got.append(pub("PUBSUB", "SHARDNUMSUB", "news"))
        got.append(pub("PUBSUB", "SHARDCHANNELS", "n*"))
        shard.close()
        channels = sorted(pub("PUBSUB", "CHANNELS"))
        pattern = sorted(pub("PUBSUB", "CHANNELS", "ne*"))
        for c in subs + (pub,):
            c.close()
        return counts, got, numsub, numpat, channels, pattern

    ours, theirs = run(pair[0].port), run(pair[1].port)
    assert ours == theirs
    assert ours[0] == [4, 1, 0, 1]


def test_subscriber_gone_means_unsubscribed(hakv):
    sub = Conn(hakv.port)
    sub("SUBSCRIBE", "c1", "c2")
    sub("PSUBSCRIBE", "p*")
    pub = Conn(hakv.port)
    assert pub("PUBSUB", "NUMSUB", "c1", "c2") == [b"c1", 1, b"c2", 1]
    sub.close()
    time.sleep(0.2)
    assert pub("PUBSUB", "NUMSUB", "c1", "c2") == [b"c1", 0, b"c2", 0]
    assert pub("PUBSUB", "NUMPAT") == 0
    assert pub("PUBLISH", "c1", "x") == 0
    assert pub("PUBSUB", "CHANNELS") == []


def test_many_messages_arrive_in_order(hakv):
    sub = Conn(hakv.port)
    sub("SUBSCRIBE", "flow")
    pub = hakv.client()
    pipe = pub.pipeline(transaction=False)
    for i in range(3000):
        pipe.publish("flow", str(i))
    assert pipe.execute() == [1] * 3000
    for i in range(3000):
        assert sub.read() == [b"message", b"flow", str(i).encode()]


def test_redis_py_pubsub(hakv):
    r = hakv.client()
    ps = r.pubsub()
    ps.subscribe("chan")
    ps.psubscribe("pat.*")
    assert ps.get_message(timeout=2)["type"] == "subscribe"
    assert ps.get_message(timeout=2)["type"] == "psubscribe"
    assert r.publish("chan", "one") == 1
    assert r.publish("pat.x", "two") == 1
    m1 = ps.get_message(timeout=2)
    m2 = ps.get_message(timeout=2)
    assert (m1["type"], m1["channel"], m1["data"]) == ("message", b"chan", b"one")
    assert (m2["type"], m2["pattern"], m2["channel"], m2["data"]) == (
        "pmessage", b"pat.*", b"pat.x", b"two")
    ps.ping("hello")
    assert ps.get_message(timeout=2)["data"] == b"hello"
    ps.unsubscribe()
    ps.punsubscribe()
    ps.close()
    assert r.pubsub_numpat() == 0


def test_publish_inside_multi(hakv):
    sub = Conn(hakv.port)
    sub("SUBSCRIBE", "tx")
    c = Conn(hakv.port)
    c("MULTI")
    c("PUBLISH", "tx", "a")
    c("PUBLISH", "tx", "b")
    assert c("EXEC") == [1, 1]
    assert sub.read() == [b"message", b"tx", b"a"]
    assert sub.read() == [b"message", b"tx", b"b"]


# ------------------------------------------------------------------ notifications


NOTIFY_STEPS = [
    ("SET", "k", "v"), ("SET", "k", "v2", "EX", "100"), ("APPEND", "k", "x"),
    ("INCR", "n"), ("INCRBYFLOAT", "n", "1.5"), ("GETDEL", "k"), ("SETRANGE", "s", "2", "ab"),
    ("MSET", "a", "1", "b", "2"), ("SETEX", "e", "100", "v"), ("GETEX", "e", "PERSIST"),
    ("SELECT", "3"), ("SET", "in3", "v"), ("SELECT", "0"),
]


@pytest.mark.parametrize("flags", ["KEA", "K$", "Eg", "E$g", "KA"])
def test_keyspace_notifications_match_redis(pair, flags):
    def run(port):
        admin = Conn(port)
        admin("FLUSHALL")
        admin("CONFIG", "SET", "notify-keyspace-events", flags)
        sub = Conn(port)
        sub("PSUBSCRIBE", "__key*__:*")
        for step in NOTIFY_STEPS:
            admin(*step)
        admin("PING")
        admin("CONFIG", "SET", "notify-keyspace-events", "")
        events = []
        sub.sock.settimeout(0.3)
        try:
            while True:
                events.append(sub.read(timeout=0.3))
        except (socket.timeout, TimeoutError):
            pass
        sub.close()
        admin.close()
        return events

    ours, theirs = run(pair[0].port), run(pair[1].port)
    assert ours == theirs
    assert ours or flags in ()  # every flag set here produces events


def test_expired_event_from_the_active_cycle(hakv):
    r = hakv.client()
    r.config_set("notify-keyspace-events", "Ex")
    sub = Conn(hakv.port)
    sub("SUBSCRIBE", "__keyevent@0__:expired")
    r.set("short", "v", px=50)
    assert sub.read(timeout=3) == [b"message", b"__keyevent@0__:expired", b"short"]
