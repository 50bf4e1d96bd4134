#!/usr/bin/env python3
"""Run hakv-sentinel with a real host-name resolver.

Temporary shim: sentinel/server.py builds its SentinelState without a `resolver`,
so the state falls back to IP literals only and `sentinel resolve-hostnames yes`
cannot resolve service names (every name gets the empty IP, and sentinel2:26379
and sentinel3:26379 then look like one address: "+sentinel-invalid-addr").
Until sentinel/server.py passes a resolver itself, this gives SentinelState a
default one that asks the system (Docker's embedded DNS: well under a millisecond,
an unknown name fails at once). When the server passes its own, this does nothing.
"""
import socket
import sys

import hakv.sentinel.state as state
from hakv.sentinel.main import main


def resolve_host(host: str):
    literal = state.resolve_literal(host)
    if literal is not None:
        return literal
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    # IPv4 first, like the addresses a compose network hands out.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return infos[0][4][0] if infos else None


_init = state.SentinelState.__init__


def _init_with_resolver(self, *args, **kw):
    if kw.get("resolver") is None:
        kw["resolver"] = resolve_host
    _init(self, *args, **kw)


state.SentinelState.__init__ = _init_with_resolver

if __name__ == "__main__":
    sys.exit(main())
