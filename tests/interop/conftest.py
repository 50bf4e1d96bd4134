"""Fixtures for tests against the real Redis from Debian's packages."""

from __future__ import annotations

import pytest

from procs import redis_server  # tests/ is on sys.path (see tests/conftest.py)


@pytest.fixture
def start_redis(tmp_path):
    """start_redis(*args, workdir=None) -> a started redis-server Proc; all are stopped after.

    A server that dies while starting (e.g. it refused an RDB file) raises
    RuntimeError carrying its log, so the failure says why.
    """
    procs = []

    def start(*args: str, workdir: str | None = None):
        proc = redis_server(workdir or str(tmp_path / f"redis{len(procs)}"), None, *args)
        procs.append(proc)
        try:
            return proc.start()
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"redis-server did not start: {exc}\n{proc.output()}") from None

    yield start
    for proc in procs:
        proc.stop()
