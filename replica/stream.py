"""Parsing the replication stream: commands and the bytes each one took.

A replica must count the bytes it processed (its replication offset) exactly
as the primary counted them. The stream is parsed with hiredis (C speed),
which does not say where each message ended; but primaries (Redis and hakv)
only write the canonical multibulk form `*<n>\\r\\n` + `$<len>\\r\\n<arg>\\r\\n`...,
whose length follows from the parsed arguments, so the count is exact.
The lengths are summed per batch of commands (`batch_length`, loops in C)
rather than per command: the offset only needs the total of what was applied.
"""

from __future__ import annotations

from itertools import chain

import hiredis


class StreamError(Exception):
    pass


_DIGITS = bytes(len(str(i)) for i in range(65536))  # decimal digits of small numbers


def command_length(argv: list) -> int:
    """Bytes of argv in canonical RESP multibulk form:
    *<n>\r\n then $<len>\r\n<arg>\r\n for each argument."""
    lens = list(map(len, argv))
    try:
        digits = sum(map(_DIGITS.__getitem__, lens))
    except IndexError:  # an argument of 64 KiB or more
        digits = sum(len(str(n)) for n in lens)
    n = len(lens)
    return 3 + (_DIGITS[n] if n < 65536 else len(str(n))) + sum(lens) + 5 * n + digits


_digits = _DIGITS.__getitem__
_args = chain.from_iterable


def batch_length(commands: list) -> int:
    """Bytes of a list of commands (argv lists) in canonical form: the same as
    summing command_length over them, with no Python-level loop."""
    lens = list(map(len, _args(commands)))
    counts = list(map(len, commands))
    try:
        digits = sum(map(_digits, lens)) + sum(map(_digits, counts))
    except IndexError:  # an argument (or argument count) of 64 Ki or more
        return sum(map(command_length, commands))
    return 3 * len(counts) + 5 * len(lens) + sum(lens) + digits


class CommandStream:
    def __init__(self):
        self.reader = hiredis.Reader()

    def feed(self, data: bytes) -> list:
        """The complete commands in data, as argv lists (batch_length counts
        their bytes)."""
        reader = self.reader
        reader.feed(data)
        out = []
        append = out.append
        gets = reader.gets
        while True:
            try:
                msg = gets()
            except hiredis.ProtocolError as exc:
                raise StreamError("Protocol error in the replication stream: %s" % exc) from None
            if msg is False:
                return out
            if msg.__class__ is not list or not msg:
                raise StreamError("Unexpected message in the replication stream: %r"
                                  % (msg if not isinstance(msg, bytes) else msg[:64],))
            append(msg)
