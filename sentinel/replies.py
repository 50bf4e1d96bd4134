"""Reply values of the SENTINEL command family, independent of RESP.

The command methods return plain Python values that map one-to-one onto RESP:

* `str` / `bytes`  -> bulk string (numbers inside instance maps are bulk
  strings too, as in Redis: clients convert them)
* `int`            -> integer
* `list`           -> array
* `dict`           -> map (RESP3) / flat key-value array (RESP2), in order
* `None`           -> null bulk string
* `NULL_ARRAY`     -> null array (``*-1``; RESP3 ``_``)
* `Status`         -> simple string (``+OK``)
* `Err`            -> error; the text includes its code (``"ERR ..."``,
  ``"NOGOODSLAVE ..."``) and no leading ``-``
"""
from __future__ import annotations


class Status(str):
    """A simple-string reply, e.g. Status("OK")."""

    __slots__ = ()


class Err(str):
    """An error reply; the first word is the error code."""

    __slots__ = ()


class _NullArray:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"

    def __bool__(self) -> bool:
        return False


NULL_ARRAY = _NullArray()
OK = Status("OK")


def wrong_arity(subcommand: str) -> Err:
    return Err(f"ERR wrong number of arguments for 'sentinel|{subcommand.lower()}' command")


NO_SUCH_MASTER = Err("ERR No such master with that name")
NOT_AN_INTEGER = Err("ERR value is not an integer or out of range")
FLUSH_FAILED = Err("ERR Failed to save config file. Check server logs.")
