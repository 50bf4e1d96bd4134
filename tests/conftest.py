"""Fixtures shared by every test folder: real processes on free loopback ports."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from procs import hakv_server, redis_server  # noqa: E402


@pytest.fixture
def procs():
    """A list for the Procs a test starts by hand; each is stopped at the end."""
    started = []
    yield started
    for p in started:
        p.stop()


@pytest.fixture
def hakv(tmp_path):
    """A started hakv-server; its redis-py client is hakv.client()."""
    proc = hakv_server(str(tmp_path / "hakv")).start()
    yield proc
    proc.stop()


@pytest.fixture
def r(hakv):
    client = hakv.client()
    yield client
    client.close()


@pytest.fixture
def real_redis(tmp_path):
    proc = redis_server(str(tmp_path / "redis")).start()
    yield proc
    proc.stop()


@pytest.fixture
def make_hakv(tmp_path):
    """Factory for several nodes: make_hakv('--replicaof', ...)."""
    procs = []

    def make(*args, port=None, config=None, wait=True, name=None):
        d = tmp_path / (name or "hakv%d" % len(procs))
        proc = hakv_server(str(d), port, *args, config=config)
        procs.append(proc)
        return proc.start(wait)

    yield make
    for p in procs:
        p.stop()


@pytest.fixture
def make_redis(tmp_path):
    procs = []

    def make(*args, port=None, wait=True, name=None):
        d = tmp_path / (name or "redis%d" % len(procs))
        proc = redis_server(str(d), port, *args)
        procs.append(proc)
        return proc.start(wait)

    yield make
    for p in procs:
        p.stop()
