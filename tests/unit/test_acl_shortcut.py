"""ACL.check's shortcut (ACL.shortcuts: per restricted user, per command, the
key index and the prefixes / exact keys that decide it), in process: a node
built but not started, clients fed RESP bytes through Client.data_received.

What is checked: the shortcut answers as the full rules do, and it forgets
them whenever they change -- ACL SETUSER, DELUSER, ACL LOAD, a restricted
default user -- including for a client that is already logged in and sends
pipelines (dispatch.run_plain checks each command)."""

from __future__ import annotations

import pytest

from hakv.common.connection import Client
from hakv.common.main import build_server
from memory_support import Transport, encode, run

NOPERM_KEY = (b"-NOPERM this user has no permissions to access one of the keys used as "
              b"arguments\r\n")


def noperm_cmd(name: str) -> bytes:
    return b"-NOPERM this user has no permissions to run the '%s' command\r\n" % name.encode()


class _Transport(Transport):
    """memory_support's, with no socket behind it (CLIENT LIST / ACL LOG fd=-1)."""

    def get_extra_info(self, name):
        return None if name == "socket" else super().get_extra_info(name)


def connect(server) -> Client:
    client = Client(server)
    client.connection_made(_Transport())
    return client


@pytest.fixture
def server():
    return build_server(["--port", "0", "--save", ""]).server


def login(server, user: str, password: str):
    client = connect(server)
    assert run(client, "AUTH", user, password) == b"+OK\r\n"
    return client


def pipeline(client, *commands) -> bytes:
    """Several commands in one read (dispatch.run_plain's batch); the replies."""
    client.transport.written.clear()
    client.data_received(b"".join(encode(*c) for c in commands))
    return b"".join(client.transport.written)


def test_shortcut_answers_as_the_rules_do(server):
    admin = connect(server)
    # The command table (and its counts) is shared by the servers one
    # process builds: start the counts afresh.
    run(admin, "CONFIG", "RESETSTAT")
    run(admin, "ACL", "SETUSER", "app", "on", ">pw", "+@all", "resetkeys", "~app:*", "~exact",
        "%R~ro:*")
    c = login(server, "app", "pw")
    # Twice each: the first fills the shortcut, the second takes it.
    for _ in range(2):
        assert run(c, "SET", "app:1", "v") == b"+OK\r\n"
        assert run(c, "GET", "app:1") == b"$1\r\nv\r\n"
        assert run(c, "GET", "exact") == b"$-1\r\n"
        assert run(c, "GET", "exactly") == NOPERM_KEY  # exact, not a prefix
        assert run(c, "GET", "ro:1") == b"$-1\r\n"
        assert run(c, "SET", "ro:1", "v") == NOPERM_KEY  # read-only pattern
        assert run(c, "GET", "other") == NOPERM_KEY
        assert run(c, "PING") == b"+PONG\r\n"
    assert "app" in server.acl.shortcuts
    assert "default" not in server.acl.shortcuts  # unrestricted: no check at all
    assert pipeline(c, ("GET", "app:1"), ("GET", "nope"), ("GET", "app:1")) == (
        b"$1\r\nv\r\n" + NOPERM_KEY + b"$1\r\nv\r\n")
    # Denials through the shortcut's fallback are logged and counted as before.
    log = run(admin, "ACL", "LOG")
    assert b"nope" in log and b"exactly" in log
    stats = run(admin, "INFO", "commandstats")
    assert b"cmdstat_get:calls=8," in stats  # 2 x 4 allowed
    assert b"rejected_calls=5," in stats  # GET: exactly, other (twice each), nope
    assert b"rejected_calls=2," in stats  # SET ro:1, twice


def test_setuser_changes_apply_to_a_logged_in_client(server):
    admin = connect(server)
    run(admin, "ACL", "SETUSER", "app", "on", ">pw", "+@all", "~app:*")
    c = login(server, "app", "pw")
    assert pipeline(c, ("SET", "app:1", "v"), ("GET", "app:1")) == b"+OK\r\n$1\r\nv\r\n"
    run(admin, "ACL", "SETUSER", "app", "resetkeys", "~other:*")
    assert pipeline(c, ("GET", "app:1"), ("GET", "other:1")) == NOPERM_KEY + b"$-1\r\n"
    run(admin, "ACL", "SETUSER", "app", "-get")
    assert run(c, "GET", "other:1") == noperm_cmd("get")
    run(admin, "ACL", "SETUSER", "app", "+get", "resetkeys", "~o?her:*")  # a glob: no shortcut
    assert run(c, "GET", "other:1") == b"$-1\r\n"
    assert run(c, "GET", "app:1") == NOPERM_KEY


def test_a_user_recreated_under_the_same_name_has_only_its_new_rules(server):
    admin = connect(server)
    run(admin, "ACL", "SETUSER", "app", "on", ">pw", "+@all", "~app:*")
    old = login(server, "app", "pw")
    assert run(old, "GET", "app:1") == b"$-1\r\n"
    assert run(admin, "ACL", "DELUSER", "app") == b":1\r\n"
    assert "app" not in server.acl.shortcuts
    run(admin, "ACL", "SETUSER", "app", "on", ">pw", "+@all", "~new:*")
    c = login(server, "app", "pw")
    assert run(c, "GET", "app:1") == NOPERM_KEY
    assert run(c, "GET", "new:1") == b"$-1\r\n"


def test_acl_load_replaces_the_shortcut(tmp_path):
    aclfile = tmp_path / "users.acl"
    aclfile.write_text("user default on nopass ~* &* +@all\n"
                       "user app on >pw ~app:* &* +@all\n")
    server = build_server(["--port", "0", "--save", "", "--aclfile", str(aclfile)]).server
    c = login(server, "app", "pw")
    admin = connect(server)
    assert run(c, "GET", "app:1") == b"$-1\r\n"
    aclfile.write_text("user default on nopass ~* &* +@all\n"
                       "user app on >pw ~new:* &* +@all\n")
    assert run(admin, "ACL", "LOAD") == b"+OK\r\n"
    # ACL LOAD disconnects the replaced users' clients; a new login has the new rules.
    c = login(server, "app", "pw")
    assert run(c, "GET", "app:1") == NOPERM_KEY
    assert run(c, "GET", "new:1") == b"$-1\r\n"


def test_a_restricted_default_user_takes_the_shortcut(server):
    c = connect(server)
    assert run(c, "ACL", "SETUSER", "default", "resetkeys", "~d:*") == b"+OK\r\n"
    assert "default" in server.acl.shortcuts
    assert pipeline(c, ("SET", "d:1", "v"), ("GET", "d:1"), ("GET", "x")) == (
        b"+OK\r\n$1\r\nv\r\n" + NOPERM_KEY)
    # requirepass changes the default user in place (no copy): still its rules.
    assert run(c, "CONFIG", "SET", "requirepass", "secret") == b"+OK\r\n"
    assert run(c, "GET", "d:1") == b"$1\r\nv\r\n"
    assert run(c, "GET", "x") == NOPERM_KEY
    assert run(c, "ACL", "SETUSER", "default", "allkeys") == b"+OK\r\n"
    assert "default" not in server.acl.shortcuts
    assert run(c, "GET", "x") == b"$-1\r\n"


def test_auth_is_never_shortcut(server):
    """AUTH (no_auth) goes through the whole check, which notes the name it
    was typed as for the ACL LOG entry of a failed login."""
    admin = connect(server)
    run(admin, "ACL", "SETUSER", "app", "on", ">pw", "+@all", "~app:*")
    c = login(server, "app", "pw")
    for _ in range(2):
        assert run(c, "AuTh", "app", "wrong").startswith(b"-WRONGPASS")
    log = run(admin, "ACL", "LOG", "1")
    assert b"AuTh" in log and b"auth" in log  # the object as typed; the reason
