"""Differential tests of ACL: the same users on hakv and on a real
redis-server 7.0, and everything compared.

* ACL SETUSER replies (errors included), ACL GETUSER and ACL LIST for a
  battery of rule sets. The single-command part of a description ("+get
  -hdel ...") is compared as a set: Redis lists those in its command dict's
  hash order, which changes from one process to the next.
* ACL DRYRUN of every command both servers have, for every user: the
  allowed / denied-command / denied-key / denied-channel outcome must match.
* The same command stream sent as each user on both servers: every reply,
  then the ACL LOG entries (reason, context, object, username, count).
* COMMAND INFO's categories and ACL CAT <category> for every category, on
  the commands both servers have.

Commands hakv does not implement (GEO*, X*, PF*, SORT, CLUSTER, MODULE ...)
are left out of the comparisons that run or list commands; the ACL still
knows them by name and category (as Redis does), so rules naming them are
accepted and users are described exactly as Redis describes them.
"""

from __future__ import annotations

import socket

import hiredis
import pytest

from procs import hakv_server, redis_server

pytestmark = pytest.mark.interop


class Conn:
    """A raw RESP client: exact replies, errors as ("ERR", text)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.reader = hiredis.Reader(replyError=lambda m: ("ERR", m))

    def __call__(self, *argv):
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in argv]
        self.sock.sendall(b"*%d\r\n" % len(argv) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in argv))
        while True:
            reply = self.reader.gets()
            if reply is not False:
                return reply
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("closed")
            self.reader.feed(data)

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("acl_diff")
    procs = [hakv_server(str(root / "hakv")), redis_server(str(root / "redis"))]
    for p in procs:
        p.start()
    yield procs
    for p in procs:
        p.stop()


@pytest.fixture
def both(servers):
    """Admin connections (hakv, redis), users reset before and after."""
    conns = [Conn(p.port) for p in servers]

    def reset():
        for c in conns:
            for name in c("ACL", "USERS"):
                if name != b"default":
                    c("ACL", "DELUSER", name)
            c("ACL", "SETUSER", "default", "reset", "on", "nopass", "~*", "&*", "+@all")
            c("ACL", "LOG", "RESET")
            c("FLUSHALL")
    reset()
    yield conns
    reset()
    for c in conns:
        c.close()


def common_commands(both) -> dict:
    """fullname -> COMMAND INFO entry (of Redis) for commands both servers have."""
    tables = []
    for c in both:
        table = {}
        reply = c("COMMAND")
        assert isinstance(reply, list), reply
        for entry in reply:
            table[entry[0].decode()] = entry
            for sub in entry[9]:
                table[sub[0].decode()] = sub
        tables.append(table)
    return {name: tables[1][name] for name in tables[0].keys() & tables[1].keys()}


def normalized_rules(text: bytes) -> tuple:
    """'-@all +@hash +get -hdel' -> ('-@all', '+@hash'), {'+get', '-hdel'}: the
    leading all/category rules keep their order, single commands are a set."""
    words = text.split()
    head = [w for w in words if w[1:2] == b"@"]
    rest = {w for w in words if w[1:2] != b"@"}
    return tuple(head), rest


def normalized_user(reply) -> dict:
    fields = dict(zip(reply[0::2], reply[1::2]))
    fields[b"commands"] = normalized_rules(fields[b"commands"])
    fields[b"selectors"] = [normalized_user(s + [b"selectors", []])
                            for s in fields[b"selectors"]]
    return fields


def normalized_line(line: bytes) -> tuple:
    """An ACL LIST line with each selector's single commands as a set."""
    out = []
    for part in line.split(b" ("):
        words = part.rstrip(b")").split()
        fixed = tuple(w for w in words if w[:1] not in b"+-" or w[1:2] == b"@")
        singles = frozenset(w for w in words if w[:1] in b"+-" and w[1:2] != b"@")
        out.append((fixed, singles))
    return tuple(out)


USERS = {
    "app": ["on", ">apppw", "~app:*", "&events", "+@read", "+@write", "-@dangerous",
            "+publish"],
    "reader": ["on", ">r", "%R~*", "+@read", "+@connection", "-@dangerous"],
    "writer": ["on", ">w", "%W~out:*", "%R~in:*", "%R", "+@all", "-@admin"],
    "narrow": ["on", "nopass", "~k", "&c", "+get", "+set", "+publish", "+subscribe",
               "+config|get", "+client|id", "-set"],
    "hashes": ["on", ">h", "~h:*", "+@hash", "-hdel", "+ping", "+multi", "+exec"],
    "firstarg": ["on", ">f", "~*", "-@all", "+select|0", "+select|1", "+get"],
    "selectors": ["on", ">s", "~a:*", "+get", "(~b:* +set +get)", "(%R~c:* +@read)",
                  "(&ch:* +publish)"],
    "noadmin": ["on", ">n", "allkeys", "allchannels", "+@all", "-@admin", "-@dangerous",
                "+info"],
    "repl": ["on", ">replpw", "+psync", "+replconf", "+ping"],
    "sentinel": ["on", ">sentpw", "allchannels", "+multi", "+slaveof", "+ping", "+exec",
                 "+subscribe", "+config|rewrite", "+role", "+publish", "+info",
                 "+client|setname", "+client|kill", "+script|kill"],
    "off": ["off", ">x", "~*", "+@all", "resetpass", "nopass"],
    "pubsub": ["on", ">p", "resetchannels", "&news", "&sport:*", "+@pubsub"],
    "reset": ["on", ">x", "~*", "+@all", "reset", "+ping", "on", "nopass"],
    "passes": ["on", ">a", ">b", "<a", "allcommands", "-@admin", "nocommands", "+get",
               "allkeys", "resetkeys", "%W~x", "~y", "allchannels", "resetchannels", "&z"],
    "hashed": ["on", "#" + "ab" * 32, "!" + "ab" * 32, "#" + "cd" * 32, "+@all", "-@all",
               "+acl|whoami", "+client"],
}


def create_users(both) -> None:
    for name, rules in USERS.items():
        replies = [c("ACL", "SETUSER", name, *rules) for c in both]
        assert replies[0] == replies[1] == b"OK", (name, replies)


def test_getuser_and_list_match(both):
    create_users(both)
    for name in USERS:
        hakv, real = [normalized_user(c("ACL", "GETUSER", name)) for c in both]
        assert hakv == real, name
    lists = [c("ACL", "LIST") for c in both]
    assert [normalized_line(x) for x in lists[0]] == [normalized_line(x) for x in lists[1]]
    assert both[0]("ACL", "USERS") == both[1]("ACL", "USERS")
    assert both[0]("ACL", "GETUSER", "nobody") == both[1]("ACL", "GETUSER", "nobody") is None


BAD_RULES = [
    ["#abc"], ["<nope"], ["!" + "0" * 64], ["+nosuch"], ["-nosuch"], ["+@nosuch"], ["blah"],
    ["%X~a"], ["+config|get|x"], ["+get|"], ["allkeys", "~a"], ["allchannels", "&a"],
    ["(~a", "+get"], ["on", "(+nosuch)"], ["(badop)"],
]


@pytest.mark.parametrize("rules", BAD_RULES, ids=[" ".join(r) for r in BAD_RULES])
def test_setuser_errors_match(both, rules):
    replies = [c("ACL", "SETUSER", "u", *rules) for c in both]
    assert replies[0] == replies[1]
    assert isinstance(replies[0], tuple)
    assert [c("ACL", "USERS") for c in both] == [[b"default"], [b"default"]]


def _sample_argv(name: str, entry) -> list:
    arity = entry[1]
    words = name.split("|")
    n = arity if arity > 0 else -arity
    args = words + ["1"] * max(0, n - len(words))
    return args


def test_dryrun_matches_for_every_common_command(both):
    """Every command with arity-filling '1' arguments (so '1' is the key,
    the channel, the count ...), as every user."""
    create_users(both)
    table = common_commands(both)
    compared = 0
    for name in sorted(table):
        entry = table[name]
        if entry[9]:  # a container: its subcommands are checked
            continue
        argv = _sample_argv(name, entry)
        for user in USERS:
            replies = [c("ACL", "DRYRUN", user, *argv) for c in both]
            assert replies[0] == replies[1], (user, argv)
            compared += 1
    assert compared > 200 * len(USERS)


STREAM = [
    ["SET", "app:1", "v"], ["GET", "app:1"], ["GET", "other"], ["SET", "other", "x"],
    ["HSET", "h:1", "f", "v"], ["HGET", "h:1", "f"], ["HDEL", "h:1", "f"], ["DEL", "app:1"],
    ["PUBLISH", "events", "m"], ["PUBLISH", "news", "m"], ["PUBLISH", "sport:1", "m"],
    ["PUBLISH", "ch:1", "m"], ["CONFIG", "GET", "maxmemory"], ["CONFIG", "SET", "hz", "10"],
    ["CLIENT", "ID"], ["KEYS", "*"], ["FLUSHALL"], ["SELECT", "0"], ["SELECT", "1"],
    ["SELECT", "2"], ["SET", "out:1", "x"], ["GET", "out:1"], ["GET", "in:1"],
    ["GETSET", "out:1", "y"], ["COPY", "in:1", "out:2"], ["SET", "a:1", "x"], ["SET", "b:1", "x"],
    ["GET", "b:1"], ["GET", "c:1"], ["MGET", "a:1", "b:1"], ["INFO", "keyspace"],
    ["MULTI"], ["GET", "app:2"], ["GET", "zzz"], ["EXEC"], ["PING"], ["ROLE"],
    ["EVAL", "return 1", "0"], ["ACL", "WHOAMI"], ["ACL", "LIST"],
]


def _comparable(reply):
    if isinstance(reply, list):
        return [_comparable(r) for r in reply]
    return reply


def test_command_streams_as_each_user_match(both, servers):
    create_users(both)
    passwords = {"app": "apppw", "reader": "r", "writer": "w", "narrow": "x", "hashes": "h",
                 "firstarg": "f", "selectors": "s", "noadmin": "n", "pubsub": "p", "reset": "x"}
    for user, password in passwords.items():
        conns = [Conn(p.port) for p in servers]
        try:
            auth = [c("AUTH", user, password) for c in conns]
            assert auth[0] == auth[1] == b"OK", (user, auth)
            for argv in STREAM:
                replies = [c(*argv) for c in conns]
                if argv[0] == "INFO":
                    replies = [isinstance(r, tuple) for r in replies]
                elif argv == ["CLIENT", "ID"]:
                    replies = [isinstance(r, tuple) for r in replies]
                assert replies[0] == replies[1], (user, argv, replies)
        finally:
            for c in conns:
                c.close()
    logs = []
    for c in both:
        entries = [dict(zip(e[0::2], e[1::2])) for e in c("ACL", "LOG", "1000")]
        logs.append([(e[b"reason"], e[b"context"], e[b"object"], e[b"username"], e[b"count"])
                     for e in entries])
        assert all(set(e) == {b"count", b"reason", b"context", b"object", b"username",
                              b"age-seconds", b"client-info"} for e in entries)
    assert logs[0] == logs[1]
    assert len(logs[0]) > 20


class Subscriber:
    """A connection of user `sub` subscribed to one channel or pattern."""

    def __init__(self, port: int, command: str, name: str):
        self.conn = Conn(port)
        assert self.conn("AUTH", "sub", "p") == b"OK"
        self.conn.sock.settimeout(2)
        assert self.conn(command, name) == [command.lower().encode(), name.encode(), 1]

    def alive(self) -> bool:
        try:
            return self.conn("PING") == [b"pong", b""]
        except (ConnectionError, OSError):
            return False


def test_revoked_channels_close_subscribers_as_redis_does(both, servers):
    """ACL SETUSER that takes channels away closes the user's subscribers
    that hold one of them (a pattern subscription must be allowed literally);
    the others keep their subscriptions."""
    outcomes = []
    for c, proc in zip(both, servers):
        c("ACL", "SETUSER", "sub", "on", ">p", "+@all", "resetchannels", "&news", "&sport:*",
          "&weather")
        subs = {"news": Subscriber(proc.port, "SUBSCRIBE", "news"),
                "sport:1": Subscriber(proc.port, "SUBSCRIBE", "sport:1"),
                "sport:*": Subscriber(proc.port, "PSUBSCRIBE", "sport:*"),
                "weather": Subscriber(proc.port, "SUBSCRIBE", "weather")}
        steps = []
        for rules in (["&extra"],  # adding a channel closes nobody
                      ["resetchannels", "&sport:*", "&weather"],  # news lost
                      ["resetchannels", "&sport:1", "&sport:2", "&weather"],  # sport:* lost
                      ["allchannels"]):
            assert c("ACL", "SETUSER", "sub", *rules) == b"OK"
            steps.append({name: sub.alive() for name, sub in subs.items()})
        steps.append(c("PUBLISH", "weather", "sunny"))
        for sub in subs.values():
            sub.conn.close()
        c("ACL", "DELUSER", "sub")
        outcomes.append(steps)
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] == {"news": False, "sport:1": True, "sport:*": True, "weather": True}
    assert outcomes[0][2] == {"news": False, "sport:1": True, "sport:*": False, "weather": True}


def test_auth_replies_match(both, servers):
    both[0]("ACL", "SETUSER", "u", "on", ">pw")
    both[1]("ACL", "SETUSER", "u", "on", ">pw")
    for argv in (["AUTH", "x"], ["AUTH", "u", "bad"], ["AUTH", "nobody", "x"],
                 ["AUTH", "a", "b", "c"], ["HELLO", "2", "AUTH", "u", "bad"],
                 ["AUTH", "u", "pw"], ["ACL", "WHOAMI"]):
        conns = [Conn(p.port) for p in servers]
        replies = [c(*argv) for c in conns]
        for c in conns:
            c.close()
        assert replies[0] == replies[1], argv
    logs = [[(dict(zip(e[0::2], e[1::2]))[b"reason"], dict(zip(e[0::2], e[1::2]))[b"username"])
             for e in c("ACL", "LOG")] for c in both]
    assert logs[0] == logs[1]


def test_categories_match(both):
    table = common_commands(both)
    hakv_table = {}
    for entry in both[0]("COMMAND"):
        hakv_table[entry[0].decode()] = entry
        for sub in entry[9]:
            hakv_table[sub[0].decode()] = sub
    diffs = {name: (set(hakv_table[name][6]), set(table[name][6])) for name in table
             if set(hakv_table[name][6]) != set(table[name][6])}
    assert not diffs
    cats = [c("ACL", "CAT") for c in both]
    assert cats[0] == cats[1]
    for cat in cats[1]:
        members = [set(c("ACL", "CAT", cat)) for c in both]
        common = {n.encode() for n in table}
        assert members[0] & common == members[1] & common, cat
    assert both[0]("ACL", "CAT", "nosuch") == both[1]("ACL", "CAT", "nosuch")


def test_dryrun_and_misc_errors_match(both):
    both[0]("ACL", "SETUSER", "d", "on", "+get")
    both[1]("ACL", "SETUSER", "d", "on", "+get")
    for argv in (["ACL", "DRYRUN", "nobody", "get", "k"], ["ACL", "DRYRUN", "d", "nosuch"],
                 ["ACL", "DRYRUN", "d", "get"], ["ACL", "GENPASS", "0"],
                 ["ACL", "GENPASS", "x"], ["ACL", "LOG", "x"], ["ACL", "SAVE"], ["ACL", "LOAD"],
                 ["ACL", "DELUSER", "default"], ["ACL", "SETUSER", "a b"], ["ACL", "FOO"],
                 ["ACL", "WHOAMI", "x"]):
        replies = [c(*argv) for c in both]
        assert replies[0] == replies[1], argv
    assert [len(c("ACL", "GENPASS", "9")) for c in both] == [3, 3]
