"""ACL on hakv: users and rules, AUTH / HELLO, NOPERM for commands, keys and
channels, the ACL LOG, aclfile and `user` lines, requirepass, rename-command,
and the roles that log in with their own users: replicas (masteruser /
masterauth) and sentinels (auth-user / auth-pass)."""

from __future__ import annotations

import os
import socket

import pytest
import redis
from redis.sentinel import Sentinel

from hakv.common.resp import encode_command
from procs import free_port, hakv_server, wait_ready
from replication_support import wait_caught_up, wait_for, wait_link_up
from sentinel_support import MASTER, sentinel_conf, sentinel_proc, wait_until

# redis-py deprecates lib_name=None (used to skip CLIENT SETINFO) and the
# get_connection(command_name) form.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

NOPERM_CMD = "this user has no permissions to run the '%s' command"
NOPERM_KEY = "this user has no permissions to access one of the keys used as arguments"
NOPERM_CHANNEL = ("this user has no permissions to access one of the channels used as "
                  "arguments")

REPLICA_USER = ["repl", "on", ">replpw", "+psync", "+replconf", "+ping"]


@pytest.fixture
def r(hakv):
    """A client without redis-py's reply parsing (ACL replies compared raw)."""
    client = raw(hakv)
    yield client
    client.close()


def raw(proc, **kw):
    kw.setdefault("protocol", 2)
    kw.setdefault("lib_name", None)  # no CLIENT SETINFO (a denied command for most users)
    kw.setdefault("lib_version", None)
    client = proc.client(**kw)
    client.response_callbacks = {}
    return client


def setuser(r, *rules):
    return r.execute_command("ACL", "SETUSER", *rules)


def error_of(fn, *args, **kw):
    with pytest.raises(redis.RedisError) as exc:  # AuthenticationError is no ResponseError
        fn(*args, **kw)
    return str(exc.value)


def as_user(proc, user, password, **kw):
    return raw(proc, username=user, password=password, **kw)


def secured(make_hakv, password, *args, **kw):
    """A node whose default user needs `password` (make_hakv's readiness
    probe cannot log in)."""
    proc = make_hakv(*args, wait=False, **kw)
    proc.password = password
    wait_ready(proc.port, proc.proc, password=password)
    return proc


def write_conf(path, lines) -> str:
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return str(path)


# ------------------------------------------------------------------ users


def test_default_user_is_unrestricted(r):
    assert r.execute_command("ACL", "WHOAMI") == b"default"
    assert r.execute_command("ACL", "LIST") == [b"user default on nopass ~* &* +@all"]
    assert r.execute_command("ACL", "USERS") == [b"default"]
    r.set("k", "v")
    assert r.get("k") == b"v"


def test_setuser_getuser_list_and_deluser(r):
    assert setuser(r, "alice", "on", ">pw", "~foo*", "%R~bar*", "&ch*", "+get", "+set",
                   "+@hash", "-hdel", "(~x* +lpush)") == b"OK"
    u = r.execute_command("ACL", "GETUSER", "alice")
    fields = dict(zip(u[0::2], u[1::2]))
    assert fields[b"flags"] == [b"on"]
    assert fields[b"passwords"] == [
        b"30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"]  # sha256("pw")
    commands = fields[b"commands"].split()
    assert commands[:2] == [b"-@all", b"+@hash"]
    assert sorted(commands[2:]) == [b"+get", b"+set", b"-hdel"]
    assert fields[b"keys"] == b"~foo* %R~bar*"
    assert fields[b"channels"] == b"&ch*"
    sel = dict(zip(fields[b"selectors"][0][0::2], fields[b"selectors"][0][1::2]))
    assert sel == {b"commands": b"-@all +lpush", b"keys": b"~x*", b"channels": b""}
    assert r.execute_command("ACL", "USERS") == [b"alice", b"default"]
    line = r.execute_command("ACL", "LIST")[0].decode()
    assert line.startswith("user alice on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fe"
                           "e46e26170c4 ~foo* %R~bar* resetchannels &ch* -@all +@hash ")
    assert line.endswith(" (~x* resetchannels -@all +lpush)")
    # Rules accumulate over SETUSER calls; 'reset' starts over.
    setuser(r, "alice", "+ping")
    assert r.execute_command("ACL", "DRYRUN", "alice", "ping") == b"OK"
    setuser(r, "alice", "reset")
    assert r.execute_command("ACL", "LIST")[0] == (
        b"user alice off sanitize-payload resetchannels -@all")
    assert r.execute_command("ACL", "GETUSER", "nobody") is None
    assert r.execute_command("ACL", "DELUSER", "alice", "nobody") == 1
    assert error_of(r.execute_command, "ACL", "DELUSER", "default") == (
        "The 'default' user cannot be removed")


@pytest.mark.parametrize("rules, reason", [
    (["#abc"], "The password hash must be exactly 64 characters and contain only lowercase "
               "hexadecimal characters"),
    (["<nope"], "The password you are trying to remove from the user does not exist"),
    (["+nosuch"], "Unknown command or category name in ACL"),
    (["+@nosuch"], "Unknown command or category name in ACL"),
    (["blah"], "Syntax error"),
    (["%X~a"], "Syntax error"),
    (["+config|get|x"], "Allowing first-arg of a subcommand is not supported"),
    (["allkeys", "~a"], "Adding a pattern after the * pattern (or the 'allkeys' flag) is not "
                        "valid and does not have any effect. Try 'resetkeys' to start with an "
                        "empty list of patterns"),
])
def test_setuser_errors_change_nothing(r, rules, reason):
    setuser(r, "u", "on", "+get")
    err = error_of(r.execute_command, "ACL", "SETUSER", "u", "off", *rules)
    assert err == "Error in ACL SETUSER modifier '%s': %s" % (rules[-1], reason)
    assert r.execute_command("ACL", "LIST")[1] == b"user u on resetchannels -@all +get"


def test_setuser_name_and_selector_syntax_errors(r):
    assert error_of(r.execute_command, "ACL", "SETUSER", "a b") == (
        "Usernames can't contain spaces or null characters")
    assert error_of(r.execute_command, "ACL", "SETUSER", "u", "on", "(~a", "+get") == (
        "Unmatched parenthesis in acl selector starting at '(~a'.")


# ------------------------------------------------------------------ authentication


class Wire:
    """One plain connection (redis-py drops a connection whose AUTH failed)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def __call__(self, *args):
        self.sock.sendall(encode_command(*args))
        return self._read()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return rest.decode()
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            return [self._read() for _ in range(int(rest))]
        raise AssertionError(line)

    def close(self):
        self.sock.close()


def test_auth_user_password_and_disabled_users(hakv, r):
    setuser(r, "bob", "on", ">secret", "+@all", "~*")
    send = Wire(hakv.port)
    assert send("AUTH", "bob", "secret") == b"OK"
    assert send("ACL", "WHOAMI") == b"bob"
    assert send("AUTH", "bob", "wrong") == (
        "WRONGPASS invalid username-password pair or user is disabled.")
    assert send("ACL", "WHOAMI") == b"bob"  # a failed AUTH keeps the user
    # The one-argument form is the default user's, which has no password.
    assert send("AUTH", "x").startswith(
        "ERR AUTH <password> called without any password configured for the default user.")
    setuser(r, "bob", "off")
    assert send("PING") == b"PONG"  # logged-in connections keep working
    assert send("AUTH", "bob", "secret") == (
        "WRONGPASS invalid username-password pair or user is disabled.")
    setuser(r, "carol", "on", "nopass", "+@all", "~*")
    assert send("AUTH", "carol", "anything") == b"OK"
    send.close()


def test_hello_auth(hakv, r):
    setuser(r, "bob", "on", ">secret", "+@all", "~*")
    c = raw(hakv)
    reply = c.execute_command("HELLO", "3", "AUTH", "bob", "secret")
    assert reply[b"proto"] == 3
    assert c.execute_command("ACL", "WHOAMI") == b"bob"
    with pytest.raises(redis.AuthenticationError):
        c.execute_command("HELLO", "2", "AUTH", "bob", "nope")


def test_requirepass_is_the_default_users_password(hakv, r):
    r.config_set("requirepass", "s3cret")
    fresh = hakv.client()
    with pytest.raises(redis.AuthenticationError):
        fresh.ping()
    assert hakv.client(password="s3cret").ping()
    u = r.execute_command("ACL", "GETUSER", "default")
    fields = dict(zip(u[0::2], u[1::2]))
    assert fields[b"flags"] == [b"on"]
    assert len(fields[b"passwords"]) == 1
    r.config_set("requirepass", "")
    assert hakv.client().ping()
    assert r.execute_command("ACL", "LIST") == [b"user default on nopass ~* &* +@all"]


def test_default_user_switched_off_requires_auth(hakv, r):
    setuser(r, "admin", "on", ">adm", "+@all", "~*", "&*")
    setuser(r, "default", "off")
    with pytest.raises(redis.AuthenticationError):
        hakv.client().ping()
    assert as_user(hakv, "admin", "adm").ping()


# ------------------------------------------------------------------ permissions


def test_noperm_for_commands_keys_and_channels(hakv, r):
    setuser(r, "app", "on", ">pw", "~app:*", "&news", "+get", "+set", "+publish",
            "+subscribe", "+config|get", "+multi", "+exec")
    c = as_user(hakv, "app", "pw")
    assert c.set("app:1", "v") and c.get("app:1") == b"v"
    assert error_of(c.get, "other") == NOPERM_KEY
    assert error_of(c.delete, "app:1") == NOPERM_CMD % "del"
    assert error_of(c.execute_command, "CONFIG", "SET", "maxmemory", "0") == (
        NOPERM_CMD % "config|set")
    assert c.config_get("maxmemory") == [b"maxmemory", b"0"]
    assert c.publish("news", "hi") == 0
    assert error_of(c.publish, "sport", "hi") == NOPERM_CHANNEL
    # A denial inside MULTI discards the transaction.
    p = c.pipeline(transaction=True)
    p.get("app:1")
    p.get("secret")
    with pytest.raises(redis.RedisError, match="one of the keys"):
        p.execute()


def test_read_and_write_key_patterns(hakv, r):
    setuser(r, "rw", "on", ">pw", "+@all", "%R~ro:*", "%W~wo:*", "~both:*")
    r.set("ro:1", "a")
    c = as_user(hakv, "rw", "pw")
    assert c.get("ro:1") == b"a"
    assert error_of(c.set, "ro:1", "b") == NOPERM_KEY
    assert c.set("wo:1", "b")
    assert error_of(c.get, "wo:1") == NOPERM_KEY
    assert error_of(c.execute_command, "GETSET", "wo:1", "c") == NOPERM_KEY  # reads too
    assert error_of(c.set, "wo:1", "c", get=True) == NOPERM_KEY
    assert c.copy("ro:1", "wo:2")  # COPY reads its source, writes its destination
    assert error_of(c.copy, "wo:1", "ro:2") == NOPERM_KEY
    assert c.exists("ro:1", "wo:1") == 2  # EXISTS neither reads nor writes the value
    assert c.execute_command("GETSET", "both:1", "x") is None
    assert r.execute_command("ACL", "DRYRUN", "rw", "lmove", "ro:1", "wo:1", "LEFT", "LEFT") == (
        b"This user has no permissions to access the 'ro:1' key")


def test_changed_rules_apply_to_the_next_command(hakv, r):
    """The check's shortcut (remembered per command and user) forgets what
    ACL SETUSER / ACL LOAD changed."""
    setuser(r, "app", "on", ">pw", "+@all", "~app:*", "~exact")
    c = as_user(hakv, "app", "pw")
    assert c.set("app:1", "v") and c.get("exact") is None and c.ping()
    setuser(r, "app", "resetkeys", "~other:*")
    assert error_of(c.get, "app:1") == NOPERM_KEY
    assert error_of(c.set, "exact", "v") == NOPERM_KEY
    assert c.get("other:1") is None
    setuser(r, "app", "%R~app:*")
    assert c.get("app:1") == b"v"
    assert error_of(c.set, "app:1", "w") == NOPERM_KEY  # read only now
    setuser(r, "app", "-get", "-ping")
    assert error_of(c.get, "other:1") == NOPERM_CMD % "get"
    assert error_of(c.ping) == NOPERM_CMD % "ping"
    setuser(r, "app", "+get", "allkeys")
    assert c.get("anything") is None
    setuser(r, "app", "resetkeys", "~a?c")  # a glob: no shortcut
    assert c.get("abc") is None
    assert error_of(c.get, "abd") == NOPERM_KEY


def test_selectors_allow_what_any_of_them_allows(hakv, r):
    setuser(r, "sel", "on", ">pw", "+get", "~a:*", "(+set ~b:*)", "(+lpush %W~c:*)")
    c = as_user(hakv, "sel", "pw")
    assert c.get("a:1") is None
    assert c.set("b:1", "v")
    assert error_of(c.set, "a:1", "v") == NOPERM_KEY  # SET is in a selector without a:*
    assert error_of(c.get, "b:1") == NOPERM_KEY
    assert c.lpush("c:1", "x") == 1
    assert error_of(c.hset, "a:1", "f", "v") == NOPERM_CMD % "hset"


def test_first_argument_rules(hakv, r):
    setuser(r, "fa", "on", ">pw", "~*", "-@all", "+select|0", "+get")
    c = as_user(hakv, "fa", "pw")
    assert c.execute_command("SELECT", 0) == b"OK"
    assert error_of(c.execute_command, "SELECT", 1) == NOPERM_CMD % "select"
    line = r.execute_command("ACL", "LIST")[1].split()
    assert line[:3] == [b"user", b"fa", b"on"] and line[4:7] == [b"~*", b"resetchannels", b"-@all"]
    assert sorted(line[7:]) == [b"+get", b"+select|0"]


def test_category_rules(hakv, r):
    setuser(r, "ro", "on", ">pw", "~*", "+@read", "-@dangerous")
    c = as_user(hakv, "ro", "pw")
    r.set("k", "1")
    assert c.get("k") == b"1"
    assert error_of(c.set, "k", "2") == NOPERM_CMD % "set"
    assert error_of(c.keys, "*") == NOPERM_CMD % "keys"  # @read but also @dangerous
    assert b"get" in r.execute_command("ACL", "CAT", "read")
    assert error_of(r.execute_command, "ACL", "CAT", "nope") == "Unknown category 'nope'"


def test_scripts_run_as_their_caller(hakv, r):
    setuser(r, "lua", "on", ">pw", "~k*", "+eval", "+get")
    c = as_user(hakv, "lua", "pw")
    assert c.eval("return redis.call('get', KEYS[1])", 1, "k1") is None
    err = error_of(c.eval, "return redis.call('del', 'k1')", 0)
    assert err.startswith("The user executing the script can't run this command or subcommand")
    err = error_of(c.eval, "return redis.call('get', 'x')", 0)
    assert err.startswith("The user executing the script can't access at least one of the keys")
    entry = r.execute_command("ACL", "LOG", "1")[0]
    entry = dict(zip(entry[0::2], entry[1::2]))
    assert entry[b"context"] == b"lua" and entry[b"object"] == b"x"


def test_acl_log(hakv, r):
    setuser(r, "app", "on", ">pw", "~app:*", "+get", "+multi", "+exec")
    c = as_user(hakv, "app", "pw")
    for _ in range(3):
        error_of(c.get, "secret")
    error_of(c.set, "app:1", "v")
    p = c.pipeline(transaction=True)
    p.get("other")
    with pytest.raises(redis.RedisError):
        p.execute()
    wire = Wire(hakv.port)
    assert wire("AUTH", "app", "bad").startswith("WRONGPASS")
    wire.close()
    entries = [dict(zip(e[0::2], e[1::2])) for e in r.execute_command("ACL", "LOG")]
    assert [(e[b"reason"], e[b"context"], e[b"object"], e[b"username"], e[b"count"])
            for e in entries] == [
        (b"auth", b"toplevel", b"AUTH", b"app", 1),
        (b"key", b"multi", b"other", b"app", 1),
        (b"command", b"toplevel", b"set", b"app", 1),
        (b"key", b"toplevel", b"secret", b"app", 3),
    ]
    assert set(entries[0]) == {b"count", b"reason", b"context", b"object", b"username",
                               b"age-seconds", b"client-info"}
    assert b" cmd=set user=app " in entries[2][b"client-info"]
    assert len(r.execute_command("ACL", "LOG", "2")) == 2
    assert r.execute_command("ACL", "LOG", "RESET") == b"OK"
    assert r.execute_command("ACL", "LOG") == []
    r.config_set("acllog-max-len", 2)
    for key in ("a", "b", "c"):
        error_of(c.get, key)
    assert len(r.execute_command("ACL", "LOG")) == 2


def test_subscriber_is_disconnected_when_its_channel_is_revoked(hakv, r):
    setuser(r, "sub", "on", ">pw", "+@all", "~*", "resetchannels", "&news", "&sport")
    c = as_user(hakv, "sub", "pw", socket_timeout=2)
    conn = c.connection_pool.get_connection("SUBSCRIBE")
    conn.send_command("SUBSCRIBE", "news")
    assert conn.read_response() == [b"subscribe", b"news", 1]
    setuser(r, "sub", "resetchannels", "&news")  # still allowed: kept
    assert r.publish("news", "1") == 1
    assert conn.read_response() == [b"message", b"news", b"1"]
    setuser(r, "sub", "resetchannels", "&sport")
    with pytest.raises(redis.ConnectionError):
        conn.read_response()
    assert r.execute_command("PUBSUB", "NUMSUB", "news") == [b"news", 0]


def test_deleted_user_is_disconnected(hakv, r):
    setuser(r, "tmp", "on", ">pw", "+@all", "~*")
    c = as_user(hakv, "tmp", "pw", socket_timeout=2)
    conn = c.connection_pool.get_connection("PING")
    conn.send_command("PING")
    assert conn.read_response() == b"PONG"
    assert r.execute_command("ACL", "DELUSER", "tmp") == 1
    with pytest.raises(redis.ConnectionError):
        conn.send_command("PING")
        conn.read_response()


def test_dryrun_genpass_whoami(r):
    setuser(r, "d", "on", "~k", "&c", "+get", "+publish")
    assert r.execute_command("ACL", "DRYRUN", "d", "get", "k") == b"OK"
    assert r.execute_command("ACL", "DRYRUN", "d", "get", "x") == (
        b"This user has no permissions to access the 'x' key")
    assert r.execute_command("ACL", "DRYRUN", "d", "publish", "z", "m") == (
        b"This user has no permissions to access the 'z' channel")
    assert r.execute_command("ACL", "DRYRUN", "d", "set", "k", "v") == (
        b"This user has no permissions to run the 'set' command")
    assert error_of(r.execute_command, "ACL", "DRYRUN", "nobody", "get", "k") == (
        "User 'nobody' not found")
    assert error_of(r.execute_command, "ACL", "DRYRUN", "d", "nosuch") == (
        "Command 'nosuch' not found")
    assert len(r.execute_command("ACL", "GENPASS")) == 64
    assert len(r.execute_command("ACL", "GENPASS", "5")) == 2
    assert error_of(r.execute_command, "ACL", "GENPASS", "0").startswith(
        "ACL GENPASS argument must be the number of bits")


# ------------------------------------------------------------------ files


def test_aclfile_round_trip_through_a_restart(make_hakv, tmp_path):
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("")
    node = make_hakv("--aclfile", str(aclfile))
    r = raw(node)
    setuser(r, "app", "on", ">pw", "~app:*", "&events", "+@read", "+set", "-keys",
            "(%R~shared:* +get)")
    setuser(r, "ops", "on", "#" + "a" * 64, "+@all", "-@dangerous", "~*")
    setuser(r, "default", "on", ">defpw")
    before = r.execute_command("ACL", "LIST")
    assert r.execute_command("ACL", "SAVE") == b"OK"
    assert aclfile.read_text().splitlines() == [line.decode() for line in before]
    node.password = "defpw"
    node.restart()
    r = raw(node)
    assert r.execute_command("ACL", "LIST") == before
    assert as_user(node, "app", "pw").set("app:1", "v")
    # ACL LOAD replaces the users by the file's; a broken file changes nothing.
    aclfile.write_text("user default on >defpw ~* &* +@all\nuser solo on nopass +ping\n")
    assert r.execute_command("ACL", "LOAD") == b"OK"
    assert r.execute_command("ACL", "USERS") == [b"default", b"solo"]
    aclfile.write_text("user default on nopass ~* &* +@all\nuser bad on +nosuch\nnot a user\n")
    err = error_of(r.execute_command, "ACL", "LOAD")
    assert "%s:2: Unknown command or category name in ACL. " % aclfile in err
    assert "%s:3 should start with user keyword followed by the username. " % aclfile in err
    assert err.endswith("WARNING: ACL errors detected, no change to the previously active ACL "
                        "rules was performed")
    assert r.execute_command("ACL", "USERS") == [b"default", b"solo"]


def test_acl_save_without_aclfile(r):
    assert error_of(r.execute_command, "ACL", "SAVE").startswith(
        "This Redis instance is not configured to use an ACL file.")


def test_user_lines_in_the_config_file(make_hakv, tmp_path):
    conf = write_conf(tmp_path / "node.conf", [
        "user default on >adminpw ~* &* +@all",
        "user app on >apppw ~app:* +get +set",
    ])
    node = secured(make_hakv, "adminpw", config=conf)
    r = raw(node)
    assert r.execute_command("ACL", "USERS") == [b"app", b"default"]
    app = as_user(node, "app", "apppw")
    assert app.set("app:x", "1")
    assert error_of(app.get, "y") == NOPERM_KEY
    with pytest.raises(redis.AuthenticationError):
        node.client(password="nope").ping()


def test_bad_user_line_stops_the_server(tmp_path):
    conf = write_conf(tmp_path / "bad.conf", ["user app on +nosuch"])
    proc = hakv_server(str(tmp_path / "bad"), None, config=conf)
    proc.start(wait=False)
    try:
        assert proc.proc.wait(20) == 1
    finally:
        proc.stop()
    assert "Error loading ACL rule '+nosuch' for the user named 'app'" in proc.output()


# ------------------------------------------------------------------ rename-command


def test_rename_command(make_hakv, tmp_path):
    conf = write_conf(tmp_path / "node.conf", [
        "rename-command CONFIG hidden-config",
        'rename-command FLUSHALL ""',
    ])
    node = make_hakv(config=conf)
    r = raw(node)
    assert error_of(r.execute_command, "CONFIG", "GET", "port").startswith(
        "unknown command 'CONFIG'")
    assert error_of(r.execute_command, "FLUSHALL").startswith("unknown command 'FLUSHALL'")
    assert r.execute_command("HIDDEN-CONFIG", "GET", "port") == [b"port", str(node.port).encode()]
    # ACL rules keep the original names.
    setuser(r, "u", "on", ">pw", "+config|get")
    assert as_user(node, "u", "pw").execute_command("hidden-config", "GET", "port")


# ------------------------------------------------------------------ replication and sentinels


def test_replication_with_a_dedicated_user(make_hakv):
    primary = secured(make_hakv, "adminpw", "--requirepass", "adminpw", "--user", *REPLICA_USER)
    p = primary.client()
    p.set("before", "1")
    replica = make_hakv("--replicaof", "127.0.0.1", str(primary.port),
                        "--masteruser", "repl", "--masterauth", "replpw")
    rc = replica.client()
    wait_link_up(rc)
    p.set("after", "2")
    wait_caught_up(p, rc)
    assert rc.mget("before", "after") == [b"1", b"2"]
    # Every command of the replica's link was allowed.
    assert raw(primary).execute_command("ACL", "LOG") == []


def test_replication_with_a_wrong_password_fails_clearly(make_hakv):
    primary = secured(make_hakv, "adminpw", "--requirepass", "adminpw", "--user", *REPLICA_USER)
    replica = make_hakv("--replicaof", "127.0.0.1", str(primary.port),
                        "--masteruser", "repl", "--masterauth", "wrong")
    rc = replica.client()
    wait_for(lambda: "Unable to AUTH to MASTER" in replica.output(), timeout=15,
             what="the replica to report the failed AUTH")
    assert rc.info("replication")["master_link_status"] == "down"
    log = [dict(zip(e[0::2], e[1::2])) for e in raw(primary).execute_command("ACL", "LOG")]
    assert log[0][b"reason"] == b"auth" and log[0][b"username"] == b"repl"


# The deployment of docs/security.md: one file of users for every node.
DEPLOYMENT_USERS = [
    "user default off resetchannels -@all",
    "user admin on >admin-secret ~* &* +@all",
    "user app on >app-secret ~app:* &app-events +@read +@write -@dangerous +publish +subscribe",
    "user repl on >repl-secret +psync +replconf +ping",
    "user sentinel-user on >sentinel-secret allchannels +multi +slaveof +ping +exec +subscribe "
    "+config|rewrite +role +publish +info +client|setname +client|kill +script|kill",
]
DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "security.md")


def admin(proc, **kw):
    return raw(proc, username="admin", password="admin-secret", **kw)


def admin_parsed(proc):
    """As admin, with redis-py's reply parsing (INFO as a dict)."""
    return proc.client(username="admin", password="admin-secret")


def _deployment_nodes(make_hakv, tmp_path):
    """A primary and a replica set up as docs/security.md shows."""
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("\n".join(DEPLOYMENT_USERS) + "\n")
    args = ("--aclfile", str(aclfile), "--masteruser", "repl", "--masterauth", "repl-secret",
            "--repl-diskless-sync-delay", "0")
    primary = make_hakv(*args, wait=False)
    wait_for(lambda: admin(primary).ping(), timeout=20, what="the primary to start")
    replica = make_hakv(*args, "--replicaof", "127.0.0.1", str(primary.port), wait=False)
    wait_for(lambda: admin(replica).ping(), timeout=20, what="the replica to start")
    wait_link_up(admin_parsed(replica))
    return primary, replica


def _sentinel(tmp_path, primary, name, password, quorum=1):
    port = free_port()
    workdir = str(tmp_path / name)
    text = sentinel_conf(port, workdir, primary.port, quorum=quorum, down_after=1000,
                         failover_timeout=5000,
                         extra=(f"sentinel auth-user {MASTER} sentinel-user",
                                f"sentinel auth-pass {MASTER} {password}",
                                "requirepass sentinel-clients-secret",
                                "sentinel sentinel-pass sentinel-clients-secret"))
    proc = sentinel_proc("hakv", workdir, port, text)
    proc.password = "sentinel-clients-secret"
    return proc


def test_the_documented_users_are_the_tested_ones():
    with open(DOCS) as f:
        text = f.read()
    for line in DEPLOYMENT_USERS:
        assert line in text


def test_documented_deployment_replicates_and_fails_over(make_hakv, tmp_path):
    primary, replica = _deployment_nodes(make_hakv, tmp_path)
    with pytest.raises(redis.AuthenticationError):
        raw(primary).ping()  # the default user is off
    # Two sentinels and a quorum of 2: the failover needs both (ODOWN and the
    # leader vote), so the sentinels must log in to each other (sentinel-pass).
    sentinels = [_sentinel(tmp_path, primary, name, "sentinel-secret", quorum=2)
                 for name in ("s1", "s2")]
    try:
        for sentinel in sentinels:
            sentinel.start()
        sentinel = sentinels[0]
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=sentinel.port, socket_timeout=2).ping()
        with pytest.raises(redis.AuthenticationError, match="^invalid username-password pair"):
            redis.Redis(port=sentinel.port, password="wrong", socket_timeout=2).ping()
        clients = [x.client(socket_timeout=2) for x in sentinels]
        s = clients[0]
        wait_until(lambda: all(
            len(c.sentinel_slaves(MASTER)) == 1
            and c.sentinel_master(MASTER)["num-other-sentinels"] == 1 for c in clients), 30,
            "the sentinels to find the replica (INFO) and each other (hello messages)")
        assert "s_down" not in s.sentinel_master(MASTER)["flags"]
        # The application finds the primary through the sentinels.
        finder = Sentinel([("127.0.0.1", x.port) for x in sentinels],
                          sentinel_kwargs={"password": "sentinel-clients-secret"})
        app = finder.master_for(MASTER, username="app", password="app-secret",
                                socket_timeout=2)
        assert app.set("app:greeting", "hello")
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.flushall()
        with pytest.raises(redis.AuthenticationError, match="^invalid username-password pair"):
            admin(primary).execute_command("AUTH", "app", "wrong")
        wait_caught_up(admin_parsed(primary), admin_parsed(replica))
        assert admin(replica).get("app:greeting") == b"hello"
        # Denials were the app's only (FLUSHALL, its wrong AUTH, CLIENT SETINFO
        # from redis-py): the replica's and the sentinels' users had all they
        # needed.
        log = [dict(zip(e[0::2], e[1::2])) for e in admin(primary).execute_command("ACL", "LOG")]
        assert {e[b"username"] for e in log} == {b"app"}
        primary.kill()
        wait_until(lambda: int(s.sentinel_get_master_addr_by_name(MASTER)[1]) == replica.port,
                   30, "the sentinels to promote the replica")
        wait_until(lambda: admin_parsed(replica).info("replication")["role"] == "master",
                   20, "the replica to become a primary")
        wait_until(lambda: app.set("app:after", "failover"), 20, "the app to write again")
    finally:
        for sentinel in sentinels:
            sentinel.stop()


def test_sentinel_with_a_wrong_password_fails_clearly(make_hakv, tmp_path):
    primary, _ = _deployment_nodes(make_hakv, tmp_path)
    sentinel = _sentinel(tmp_path, primary, "s1", "wrong")
    try:
        sentinel.start()
        s = sentinel.client(socket_timeout=2)
        wait_until(lambda: "s_down" in s.sentinel_master(MASTER)["flags"], 20,
                   "the sentinel to see the primary as down (it cannot log in)")
        entries = [dict(zip(e[0::2], e[1::2]))
                   for e in admin(primary).execute_command("ACL", "LOG")]
        assert any(e[b"reason"] == b"auth" and e[b"username"] == b"sentinel-user"
                   for e in entries)
    finally:
        sentinel.stop()
