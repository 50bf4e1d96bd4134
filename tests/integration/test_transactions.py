"""Transactions: MULTI EXEC DISCARD WATCH UNWATCH, checked against a started
hakv-server, with the exact replies of a real redis-server 7.0 for the same
command sequences.
"""

from __future__ import annotations

import socket
import threading
import time

import hiredis
import pytest
import redis

from procs import hakv_server, redis_server


class Conn:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.reader = hiredis.Reader(replyError=lambda m: ("ERR", m))

    def send(self, *argv):
        self.sock.sendall(b"*%d\r\n" % len(argv) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in (
                x if isinstance(x, bytes) else str(x).encode() for x in argv)))

    def read(self):
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

    def close(self):
        self.sock.close()


def err(text):
    return ("ERR", text)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("tx-pair")
    ours = hakv_server(str(d / "hakv")).start()
    theirs = redis_server(str(d / "redis")).start()
    yield ours, theirs
    ours.stop()
    theirs.stop()


# Each sequence runs on one connection (plus `other:` lines on a second one).
SEQUENCES = {
    "basic": ["MULTI", "SET a 1", "INCR a", "GET a", "EXEC", "GET a"],
    "empty": ["MULTI", "EXEC"],
    "discard": ["MULTI", "SET a 1", "DISCARD", "GET a", "DISCARD", "EXEC"],
    "nested": ["MULTI", "MULTI", "SET a 1", "EXEC"],
    "exec without multi": ["EXEC", "DISCARD"],
    "unknown command aborts": ["MULTI", "SET a 1", "NOSUCH x", "SET b 2", "EXEC", "GET a"],
    "arity error aborts": ["MULTI", "SET a", "SET b 2", "EXEC", "GET b"],
    "runtime errors do not abort": [
        "SET s hello", "MULTI", "INCR s", "SET t 1", "LPUSH s x", "INCRBY t 5", "EXEC",
        "GET t"],
    "errors of every kind inside": [
        "MULTI", "SELECT 99", "INCRBY k x", "SET k v EX -1", "GET k", "EXEC"],
    "exec arity aborts": ["MULTI", "SET a 1", "EXEC x", "EXEC", "GET a"],
    "exec arity outside": ["EXEC x"],
    "discard arity": ["MULTI", "DISCARD x", "SET a 1", "EXEC", "GET a"],
    "watch inside multi": ["MULTI", "WATCH a", "SET a 1", "EXEC", "GET a"],
    "watch arity": ["WATCH"],
    "no_multi commands": ["MULTI", "SHUTDOWN", "SET a 1", "EXEC", "GET a"],
    "select inside": ["MULTI", "SELECT 2", "SET a two", "EXEC", "GET a", "SELECT 0", "GET a"],
    "pubsub inside": ["MULTI", "SUBSCRIBE c1", "PING", "UNSUBSCRIBE", "EXEC", "PING"],
    "blocking inside acts as timeout": ["MULTI", "BLPOP nolist 0", "RPUSH l x", "BLPOP l 0",
                                        "EXEC"],
    "multi in subscribe context": ["SUBSCRIBE c", "MULTI", "EXEC", "UNSUBSCRIBE c", "MULTI",
                                   "EXEC"],
    "quit inside": ["MULTI", "SET q 1", "QUIT"],
    "reset inside": ["MULTI", "SET r 1", "RESET", "EXEC", "GET r"],
    "watch then unchanged": ["SET w 1", "WATCH w", "GET w", "MULTI", "INCR w", "EXEC"],
    "watch changed by self": ["WATCH w", "SET w 1", "MULTI", "INCR w", "EXEC", "GET w"],
    "watch changed by other": ["SET w 1", "WATCH w", "other: SET w 2", "MULTI", "INCR w",
                               "EXEC", "GET w"],
    "watch missing key created": ["WATCH w", "other: SET w 2", "MULTI", "PING", "EXEC"],
    "watch missing key deleted": ["WATCH w", "other: DEL w", "MULTI", "PING", "EXEC"],
    "same value counts as change": ["SET w a", "WATCH w", "other: SET w a", "MULTI", "PING",
                                    "EXEC"],
    "expire counts as change": ["SET w a", "WATCH w", "other: EXPIRE w 100", "MULTI", "PING",
                                "EXEC"],
    "other db does not count": ["SET w a", "WATCH w", "other: SELECT 1", "other: SET w b",
                                "MULTI", "PING", "EXEC"],
    "unwatch": ["SET w 1", "WATCH w", "other: SET w 2", "UNWATCH", "MULTI", "PING", "EXEC"],
    "exec clears watches": ["SET w 1", "WATCH w", "MULTI", "EXEC", "other: SET w 2", "MULTI",
                            "PING", "EXEC"],
    "discard clears watches": ["SET w 1", "WATCH w", "MULTI", "DISCARD", "other: SET w 2",
                               "MULTI", "PING", "EXEC"],
    "aborted exec clears watches": ["SET w 1", "WATCH w", "MULTI", "NOSUCH", "EXEC",
                                    "other: SET w 2", "MULTI", "PING", "EXEC"],
    "flushall touches watched": ["SET w 1", "WATCH w", "other: FLUSHALL", "MULTI", "PING",
                                 "EXEC"],
    "flushdb of a missing key": ["WATCH nope", "other: FLUSHDB", "MULTI", "PING", "EXEC"],
    "swapdb touches watched": ["SET w 1", "WATCH w", "other: SWAPDB 0 1", "MULTI", "PING",
                               "EXEC", "other: SWAPDB 0 1"],
    "swapdb same db is no change": ["SET w 1", "WATCH w", "other: SWAPDB 0 0", "MULTI",
                                    "PING", "EXEC"],
    "swapdb of missing keys is no change": ["WATCH w", "other: SWAPDB 0 1", "MULTI", "PING",
                                            "EXEC"],
    "swapdb brings the key in": ["other: SELECT 1", "other: SET w x", "WATCH w",
                                 "other: SWAPDB 0 1", "MULTI", "PING", "EXEC",
                                 "other: FLUSHALL"],
    "watch several keys": ["WATCH a b c", "other: SET c 1", "MULTI", "PING", "EXEC"],
    "watch in two dbs": ["WATCH a", "SELECT 1", "WATCH a", "other: SELECT 1", "other: SET a 1",
                         "MULTI", "PING", "EXEC"],
    "multi state in client list": ["MULTI", "SET a 1", "SET b 2", "EXEC"],
    "incrbyfloat and getset": ["MULTI", "INCRBYFLOAT f 10.1", "INCRBYFLOAT f 0.2",
                               "GETSET f x", "EXEC"],
}


def run(port: int, steps: list) -> list:
    import shlex
    main, other = Conn(port), Conn(port)
    main("FLUSHALL")
    out = []
    for step in steps:
        if step.startswith("other: "):
            out.append(("other", other(*shlex.split(step[7:]))))
        else:
            argv = shlex.split(step)
            try:
                out.append(main(*argv))
            except ConnectionError:
                out.append("closed")
                break
    main.close()
    other.close()
    return out


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_sequence_matches_redis(pair, name):
    ours, theirs = pair
    assert run(ours.port, SEQUENCES[name]) == run(theirs.port, SEQUENCES[name])


# ------------------------------------------------------------------ races and expiry


def test_watch_race_between_two_clients(hakv):
    """Optimistic locking: of many concurrent read-modify-write loops, every
    increment lands exactly once; the losers see EXEC return nil and retry."""
    hakv.client().set("counter", 0)
    conflicts = []

    def worker():
        r = hakv.client()
        for _ in range(50):
            while True:
                with r.pipeline() as pipe:
                    try:
                        pipe.watch("counter")
                        value = int(pipe.get("counter"))
                        pipe.multi()
                        pipe.set("counter", value + 1)
                        pipe.execute()
                        break
                    except redis.WatchError:
                        conflicts.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert int(hakv.client().get("counter")) == 200
    assert conflicts  # the race did happen, and the losers were told


def test_exec_returns_null_array_when_a_watched_key_changed(hakv):
    a, b = Conn(hakv.port), Conn(hakv.port)
    a("SET", "k", "1")
    a("WATCH", "k")
    b("SET", "k", "2")
    a("MULTI")
    assert a("SET", "k", "3") == b"QUEUED"
    a.sock.sendall(b"EXEC\r\n")
    assert a.sock.recv(100) == b"*-1\r\n"  # RESP2 null array
    assert a("GET", "k") == b"2"
    a("HELLO", "3")
    a("WATCH", "k")
    b("SET", "k", "4")
    a("MULTI")
    a.sock.sendall(b"EXEC\r\n")
    assert a.sock.recv(100) == b"_\r\n"  # RESP3 null


@pytest.mark.parametrize("active", [True, False])
def test_watch_of_a_key_that_expires_before_exec(hakv, active):
    """A watched key that expires between WATCH and EXEC fails the
    transaction, whether the active cycle removed it or EXEC finds it expired."""
    c = Conn(hakv.port)
    if not active:
        c("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    c("SET", "k", "v", "PX", "100")
    c("WATCH", "k")
    time.sleep(0.3)
    c("MULTI")
    c("SET", "other", "1")
    c.sock.sendall(b"EXEC\r\n")
    assert c.sock.recv(100) == b"*-1\r\n"
    assert c("GET", "other") is None
    c("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_watch_of_an_already_expired_key_does_not_fail(hakv):
    c = Conn(hakv.port)
    c("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    c("SET", "k", "v", "PX", "20")
    time.sleep(0.1)
    c("WATCH", "k")  # logically gone already: nothing can change under us
    c("MULTI")
    c("SET", "other", "1")
    assert c("EXEC") == [b"OK"]
    c("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_transaction_is_atomic_for_other_clients(hakv):
    """No other client's command runs in the middle of an EXEC."""
    writer, watcher = Conn(hakv.port), Conn(hakv.port)
    writer("MULTI")
    for i in range(2000):
        writer.send("RPUSH", "list", i)
    for _ in range(2000):
        assert writer.read() == b"QUEUED"
    writer.send("EXEC")
    seen = watcher("LLEN", "list")
    assert seen in (0, 2000)
    assert writer.read() == list(range(1, 2001))
    assert watcher("LLEN", "list") == 2000


def test_queued_commands_and_client_list(hakv):
    c = Conn(hakv.port)
    c("MULTI")
    c("SET", "a", "1")
    c("SET", "b", "2")
    info = Conn(hakv.port)("CLIENT", "LIST").decode()
    line = [ln for ln in info.splitlines() if "cmd=set" in ln or " multi=2 " in ln]
    assert line and " multi=2 " in line[0] and "flags=x" in line[0]
    assert c("EXEC") == [b"OK", b"OK"]


def test_redis_py_transaction_helpers(r):
    def incr_twice(pipe):
        value = int(pipe.get("n") or 0)
        pipe.multi()
        pipe.set("n", value + 2)

    assert r.transaction(incr_twice, "n") == [True]
    assert r.get("n") == b"2"
    with r.pipeline(transaction=True) as pipe:
        pipe.set("x", 1).incr("x").get("x")
        assert pipe.execute() == [True, 2, b"2"]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        with r.pipeline() as pipe:
            pipe.rpush("lst", "a").incr("lst").set("after", "ok")
            pipe.execute()
    assert r.get("after") == b"ok"  # the error did not abort the rest


def test_watch_and_expiry_corner_cases_match_redis(hakv, make_redis):
    """Keys already expired when WATCHed: removing them later (active cycle or
    a lazy read) is no change; setting them again is."""
    theirs = make_redis("--enable-debug-command", "yes")

    def scenario(port):
        c, o = Conn(port), Conn(port)
        out = []
        c("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        c("SET", "k", "v", "PX", "20")
        time.sleep(0.1)
        out.append(c("WATCH", "k"))
        c("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        time.sleep(0.3)  # the active cycle removes it
        out += [c("MULTI"), c("SET", "o", "1"), c("EXEC")]
        c("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        c("SET", "k", "v", "PX", "20")
        time.sleep(0.1)
        out += [c("WATCH", "k"), o("GET", "k")]  # a lazy removal
        out += [c("MULTI"), c("SET", "o", "1"), c("EXEC")]
        c("SET", "k", "v", "PX", "20")
        time.sleep(0.1)
        out += [c("WATCH", "k"), o("SET", "k", "new")]  # set again
        out += [c("MULTI"), c("SET", "o", "1"), c("EXEC")]
        c("SET", "k", "v", "PX", "100")
        out.append(c("WATCH", "k"))
        time.sleep(0.2)  # expires while watched, nobody removes it
        out += [c("MULTI"), c("SET", "o", "1"), c("EXEC")]
        c("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        return out

    assert scenario(hakv.port) == scenario(theirs.port)
