"""Protected mode and bind, hakv next to the real Redis.

A client that is not on the loopback interface has to come from another
address: the fixture makes a network namespace joined to this one by a veth
pair with private addresses (root is needed; without it the tests that need
it are skipped) and runs the client inside it. 127.0.0.2 is also a loopback
address to the kernel, but Redis 7.0 trusts only 127.0.0.1 and ::1, so a
client bound to 127.0.0.2 is refused too -- checked against Redis as well.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys

import pytest

DENIED_START = b"-DENIED Redis is running in protected mode because protected mode is enabled"

_CLIENT = r"""
import socket, sys, time
host, port, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode().decode("unicode_escape")
s = socket.create_connection((host, port), timeout=5)
s.sendall(payload.encode("latin-1"))
data = b""
deadline = time.time() + 3
while time.time() < deadline:
    try:
        chunk = s.recv(65536)
    except (ConnectionResetError, socket.timeout):
        break
    if not chunk:
        break
    data += chunk
    if data.endswith(b"\r\n") and data.count(b"\r\n") >= sys.argv[3].count("\\r\\n"):
        break
sys.stdout.buffer.write(data)
"""

_counter = itertools.count()


class Outside:
    """A network namespace; `ask(port, payload)` talks to this host from it."""

    def __init__(self, name: str, host_ip: str):
        self.name = name
        self.host_ip = host_ip

    def ask(self, port: int, payload: str) -> bytes:
        out = subprocess.run(["ip", "netns", "exec", self.name, sys.executable, "-c", _CLIENT,
                              self.host_ip, str(port), payload],
                             capture_output=True, timeout=20)
        assert out.returncode == 0, out.stderr.decode()
        return out.stdout


@pytest.fixture
def outside():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to create a network namespace")
    n = next(_counter)
    tag = "%d%d" % (os.getpid() % 100000, n)
    name, host_if, ns_if = "hakvns" + tag, "hk%sh" % tag, "hk%sn" % tag
    block = (os.getpid() * 8 + n * 4) % 65536
    net = "10.%d.%d." % (200 + block // 16384 % 50, block // 64 % 256)
    base = block % 64 * 4
    host_ip, ns_ip = net + str(base + 1), net + str(base + 2)
    steps = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
        ["ip", "link", "set", ns_if, "netns", name],
        ["ip", "addr", "add", host_ip + "/30", "dev", host_if],
        ["ip", "link", "set", host_if, "up"],
        ["ip", "netns", "exec", name, "ip", "addr", "add", ns_ip + "/30", "dev", ns_if],
        ["ip", "netns", "exec", name, "ip", "link", "set", ns_if, "up"],
        ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
    ]
    try:
        for step in steps:
            done = subprocess.run(step, capture_output=True, timeout=10)
            if done.returncode != 0:
                pytest.skip("cannot build a network namespace here: %s: %s"
                            % (" ".join(step), done.stderr.decode().strip()))
        yield Outside(name, host_ip)
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=10)


def ping_from(source: str, port: int) -> bytes:
    s = socket.socket()
    s.settimeout(3)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"PING\r\n")
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
        if data.endswith(b"\r\n"):
            break
    s.close()
    return data


def servers(make_hakv, make_redis, *args):
    return make_hakv(*args), make_redis(*args)


def test_outside_client_is_denied_without_a_password(make_hakv, make_redis, outside):
    hakv, real = servers(make_hakv, make_redis, "--bind", "0.0.0.0")
    replies = [outside.ask(p.port, "PING\\r\\n") for p in (hakv, real)]
    assert replies[0].startswith(DENIED_START)
    assert replies[0] == replies[1]  # Redis's text, byte for byte
    assert hakv.client().ping()  # loopback clients are served
    # A password for the default user lifts it: AUTH first, then commands.
    for p in (hakv, real):
        p.client().config_set("requirepass", "pw")
    replies = [outside.ask(p.port, "PING\\r\\nAUTH pw\\r\\nPING\\r\\n") for p in (hakv, real)]
    assert replies[0] == b"-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n"
    assert replies[0] == replies[1]


def test_protected_mode_off_serves_outside_clients(make_hakv, make_redis, outside):
    hakv, real = servers(make_hakv, make_redis, "--bind", "0.0.0.0", "--protected-mode", "no")
    for p in (hakv, real):
        assert outside.ask(p.port, "PING\\r\\n") == b"+PONG\r\n"
    # And back on at runtime, from the loopback interface.
    for p in (hakv, real):
        p.client().config_set("protected-mode", "yes")
        assert outside.ask(p.port, "PING\\r\\n").startswith(DENIED_START)


def test_bind_with_several_addresses(make_hakv, make_redis, outside):
    hakv, real = servers(make_hakv, make_redis, "--bind", "127.0.0.1", outside.host_ip,
                         "--protected-mode", "no")
    for p in (hakv, real):
        assert outside.ask(p.port, "PING\\r\\n") == b"+PONG\r\n"
        assert p.client().ping()


def test_only_127_0_0_1_and_ipv6_loopback_are_trusted(make_hakv, make_redis):
    # No namespace needed: a client bound to 127.0.0.2 is not "local" to Redis.
    hakv, real = servers(make_hakv, make_redis, "--bind", "0.0.0.0")
    for p in (hakv, real):
        assert ping_from("127.0.0.2", p.port).startswith(DENIED_START)
        assert ping_from("127.0.0.1", p.port) == b"+PONG\r\n"


def test_bind_limits_the_listening_addresses(make_hakv, make_redis):
    hakv, real = servers(make_hakv, make_redis, "--bind", "127.0.0.1", "127.0.0.3",
                         "--protected-mode", "no")
    for p in (hakv, real):
        s = socket.create_connection(("127.0.0.3", p.port), timeout=3)
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"
        s.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.4", p.port), timeout=3)
