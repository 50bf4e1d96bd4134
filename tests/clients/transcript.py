"""The check-and-print helpers the two Python client programs share.

Every reply goes through `Transcript.check` (compare with the expected value,
print `label => rendering`) or `Transcript.seen` (print only: the driver
compares it with the same program's run against real Redis).
"""

from __future__ import annotations

import sys


def show(value) -> str:
    """A rendering that keeps the type the client handed us (bytes vs str vs int ...)."""
    if isinstance(value, BaseException):
        return "%s(%s)" % (type(value).__name__, value)
    if isinstance(value, dict):
        return "{" + ", ".join("%s: %s" % (show(k), show(v)) for k, v in value.items()) + "}"
    if isinstance(value, (set, frozenset)):
        return "set(" + ", ".join(sorted(show(v) for v in value)) + ")"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return repr(value)


class Transcript:
    def __init__(self, program: str):
        self.program = program
        self.failures = 0

    def seen(self, label: str, value) -> None:
        print("%s => %s" % (label, show(value)), flush=True)

    def check(self, label: str, got, expected) -> None:
        self.seen(label, got)
        if isinstance(expected, type) and issubclass(expected, BaseException):
            ok = isinstance(got, expected)
        elif callable(expected):
            ok = bool(expected(got))
        else:
            ok = got == expected
        if not ok:
            self.failures += 1
            print("%s: MISMATCH at %s: got %s, expected %s"
                  % (self.program, label, show(got), show(expected)), file=sys.stderr, flush=True)

    def done(self) -> int:
        if self.failures:
            print("%s: %d mismatches" % (self.program, self.failures), file=sys.stderr)
            return 1
        print("%s: all checks passed" % self.program, file=sys.stderr)
        return 0


def attempt(fn, *args, **kw):
    """The reply, or the exception the client raised (errors are replies too)."""
    try:
        return fn(*args, **kw)
    except Exception as exc:  # noqa: BLE001 - the transcript records whatever happened
        return exc


async def attempt_async(fn, *args, **kw):
    try:
        return await fn(*args, **kw)
    except Exception as exc:  # noqa: BLE001
        return exc


def get_connection(pool):
    """A raw connection from the pool (redis-py 5 wants a command name, 8 warns about it)."""
    try:
        return pool.get_connection()
    except TypeError:
        return pool.get_connection("PING")


async def get_connection_async(pool):
    try:
        return await pool.get_connection()
    except TypeError:
        return await pool.get_connection("PING")
