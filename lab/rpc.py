"""A tiny blocking RESP client for the operator's tools (status, fault, watch).

The roles use common/client.py (asyncio); the lab's commands are short-lived
scripts where a plain socket is simpler.
"""

from __future__ import annotations

import socket

import hiredis

from hakv.common.resp import encode_command


class RpcError(Exception):
    pass


class Rpc:
    def __init__(self, host: str, port: int, timeout: float = 1.0, password: str | None = None):
        self.addr = (host, port)
        self.sock = socket.create_connection(self.addr, timeout=timeout)
        self.sock.settimeout(timeout)
        self.reader = hiredis.Reader()
        if password:
            self.call("AUTH", password)

    def call(self, *args):
        self.sock.sendall(encode_command(*args))
        while True:
            reply = self.reader.gets()
            if reply is not False:
                break
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed by %s:%d" % self.addr)
            self.reader.feed(data)
        if isinstance(reply, hiredis.ReplyError):
            raise RpcError(str(reply))
        return reply

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def call(host: str, port: int, *args, timeout: float = 1.0, password: str | None = None):
    with Rpc(host, port, timeout, password) as c:
        return c.call(*args)


def parse_info(text) -> dict:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or ":" not in line:
            continue
        k, v = line.split(":", 1)
        out[k] = v
    return out
