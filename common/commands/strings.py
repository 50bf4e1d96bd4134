"""String commands: SET GET and friends, counters, ranges.

Bit commands (SETBIT ... BITFIELD) and LCS live in commands/bits.py.
Relative expiry is propagated as absolute (SET ... PXAT), so a replica's lag
cannot stretch a TTL.
"""

from __future__ import annotations

import time

from hakv.common import errors
from hakv.common.commands.keys import note_string_encoding
from hakv.common.commands.table import command
from hakv.common.numbers import (LLONG_MAX, LLONG_MIN, format_long_double, get_int, parse_int,
                                 parse_long_double, round_long_double)
from hakv.common.resp import ErrorReply

G = "string"
K1 = (1, 1, 1)


def get_string(db, key):
    return db.get_typed(key, bytes)


def now_ms() -> int:
    return int(time.time() * 1000)


def _expire_arg(value: bytes, unit_ms: int, absolute: bool, cmdname: str) -> int:
    """An EX/PX/EXAT/PXAT argument as absolute ms, with Redis's checks."""
    n = parse_int(value)
    if n is None:
        raise ErrorReply(errors.NOT_INTEGER)
    if n <= 0:
        raise ErrorReply("ERR invalid expire time in '%s' command" % cmdname)
    if n > LLONG_MAX // unit_ms:
        raise ErrorReply("ERR invalid expire time in '%s' command" % cmdname)
    ms = n * unit_ms
    if not absolute:
        if ms > LLONG_MAX - now_ms():
            raise ErrorReply("ERR invalid expire time in '%s' command" % cmdname)
        ms += now_ms()
    return ms


def _set_with_expire(ctx, key, value, when_ms, keepttl=False):
    """Store value. A deadline already past (SET ... EXAT/PXAT) is stored as
    it is, as Redis 7.0 does: the key is invisible at once and the expiry
    cycle frees it (DBSIZE counts it until then)."""
    db = ctx.db
    db.set(key, value, keepttl=keepttl)
    if when_ms is not None:
        db.set_expire(key, when_ms)


@command("set", -3, "write denyoom", keys=K1, group=G)
def set_(ctx, argv):
    key, value = argv[1], argv[2]
    if len(argv) == 3:  # no options: the common case, without the option parsing
        db = ctx.db
        db.set(key, value)
        server = ctx.server
        server.dirty += 1
        server.keyspace.notify(db, "$", b"set", key)
        return "OK"
    nx = xx = get = keepttl = False
    when = None
    seen_expire = False
    i = 3
    n = len(argv)
    while i < n:
        opt = argv[i].lower()
        if opt == b"nx" and not xx:
            nx = True
        elif opt == b"xx" and not nx:
            xx = True
        elif opt == b"get":
            get = True
        elif opt == b"keepttl" and not seen_expire:
            keepttl = True
        elif opt in (b"ex", b"px", b"exat", b"pxat") and not keepttl and not seen_expire \
                and i + 1 < n:
            seen_expire = True
            expire = (argv[i + 1], 1000 if opt in (b"ex", b"exat") else 1,
                      opt in (b"exat", b"pxat"))
            i += 1
        else:
            raise ErrorReply(errors.SYNTAX)
        i += 1
    if seen_expire:  # the value is checked once all options parsed, as Redis does
        when = _expire_arg(expire[0], expire[1], expire[2], "set")
    db = ctx.db
    old = None
    if get:
        old = db.get_typed(key, bytes)
    if nx or xx:
        exists = db.exists(key)
        if (nx and exists) or (xx and not exists):
            return old if get else None
    _set_with_expire(ctx, key, value, when, keepttl)
    server = ctx.server
    server.dirty += 1
    server.keyspace.notify(db, "$", b"set", key)
    if when is not None:
        server.keyspace.notify(db, "g", b"expire", key)
        if not ctx.custom_propagation:
            ctx.propagate([b"SET", key, value, b"PXAT", b"%d" % when])
    return old if get else "OK"


@command("setnx", 3, "write denyoom fast", keys=K1, group=G)
def setnx(ctx, argv):
    db = ctx.db
    if db.exists(argv[1]):
        return 0
    db.set(argv[1], argv[2])
    ctx.server.dirty += 1
    ctx.server.keyspace.notify(db, "$", b"set", argv[1])
    return 1


def _setex(ctx, argv, unit):
    when = _expire_arg(argv[2], unit, False, argv[0].decode().lower())
    key, value = argv[1], argv[3]
    _set_with_expire(ctx, key, value, when)
    ctx.server.dirty += 1
    ctx.server.keyspace.notify(ctx.db, "$", b"set", key)
    ctx.server.keyspace.notify(ctx.db, "g", b"expire", key)
    if not ctx.custom_propagation:
        ctx.propagate([b"SET", key, value, b"PXAT", b"%d" % when])
    return "OK"


@command("setex", 4, "write denyoom", keys=K1, group=G)
def setex(ctx, argv):
    return _setex(ctx, argv, 1000)


@command("psetex", 4, "write denyoom", keys=K1, group=G)
def psetex(ctx, argv):
    return _setex(ctx, argv, 1)


@command("get", 2, "readonly fast", keys=K1, group=G)
def get(ctx, argv):
    value = ctx.db.get(argv[1])  # get_typed, inline
    if value is not None and value.__class__ is not bytes:
        raise ErrorReply(errors.WRONGTYPE)
    return value


@command("getdel", 2, "write fast", keys=K1, group=G)
def getdel(ctx, argv):
    db = ctx.db
    value = db.get_typed(argv[1], bytes)
    if value is not None:
        db.delete(argv[1])
        ctx.server.dirty += 1
        ctx.server.keyspace.notify(db, "g", b"del", argv[1])
    return value


@command("getset", 3, "write denyoom fast", keys=K1, group=G)
def getset(ctx, argv):
    db = ctx.db
    old = db.get_typed(argv[1], bytes)
    db.set(argv[1], argv[2])
    ctx.server.dirty += 1
    ctx.server.keyspace.notify(db, "$", b"set", argv[1])
    return old


@command("getex", -2, "write fast", keys=K1, group=G)
def getex(ctx, argv):
    key = argv[1]
    expire = None  # (unit, absolute, raw value): checked after the lookup, as Redis does
    persist = False
    i = 2
    n = len(argv)
    while i < n:
        opt = argv[i].lower()
        if opt == b"persist" and expire is None and not persist:
            persist = True
        elif opt in (b"ex", b"px", b"exat", b"pxat") and expire is None and not persist \
                and i + 1 < n:
            unit = 1000 if opt in (b"ex", b"exat") else 1
            expire = (unit, opt in (b"exat", b"pxat"), argv[i + 1])
            i += 1
        else:
            raise ErrorReply(errors.SYNTAX)
        i += 1
    db = ctx.db
    value = db.get_typed(key, bytes)
    if value is None:
        return None
    when = None
    if expire is not None:
        when = _expire_arg(expire[2], expire[0], expire[1], "getex")
    ks = ctx.server.keyspace
    if when is not None:
        if when <= now_ms() and not ctx.is_primary:
            db.delete(key)
            ctx.propagate([b"DEL", key])
            ks.notify(db, "g", b"del", key)
        else:
            db.set_expire(key, when)
            ctx.propagate([b"PEXPIREAT", key, b"%d" % when])
            ks.notify(db, "g", b"expire", key)
        ctx.server.dirty += 1
    elif persist and db.persist(key):
        ctx.propagate([b"PERSIST", key])
        ks.notify(db, "g", b"persist", key)
        ctx.server.dirty += 1
    return value


@command("mget", -2, "readonly fast", keys=(1, -1, 1), group=G)
def mget(ctx, argv):
    db = ctx.db
    out = []
    for key in argv[1:]:
        v = db.get(key)
        out.append(v if v.__class__ is bytes else None)
    return out


def _mset_pairs(argv, name):
    if len(argv) % 2 == 0:
        raise ErrorReply(errors.wrong_args(name).message)


@command("mset", -3, "write denyoom", keys=(1, -1, 2), group=G)
def mset(ctx, argv):
    _mset_pairs(argv, "mset")
    db = ctx.db
    ks = ctx.server.keyspace
    for i in range(1, len(argv), 2):
        db.set(argv[i], argv[i + 1])
        ks.notify(db, "$", b"set", argv[i])
    ctx.server.dirty += (len(argv) - 1) // 2
    return "OK"


@command("msetnx", -3, "write denyoom", keys=(1, -1, 2), group=G)
def msetnx(ctx, argv):
    _mset_pairs(argv, "msetnx")
    db = ctx.db
    for i in range(1, len(argv), 2):
        if db.exists(argv[i]):
            return 0
    return 1 if mset(ctx, argv) == "OK" else 0


@command("append", 3, "write denyoom fast", keys=K1, group=G)
def append(ctx, argv):
    db = ctx.db
    key = argv[1]
    old = db.get_typed(key, bytes)
    new = argv[2] if old is None else old + argv[2]
    _check_size(ctx, len(new))
    db.set(key, new, keepttl=True)
    if old is not None:
        note_string_encoding(db, key, new)  # Redis appends in place: "raw"
    ctx.server.dirty += 1
    ctx.server.keyspace.notify(db, "$", b"append", key)
    return len(new)


def _check_size(ctx, size):
    if size > ctx.server.settings["proto-max-bulk-len"]:
        raise ErrorReply("ERR string exceeds maximum allowed size (proto-max-bulk-len)")


@command("strlen", 2, "readonly fast", keys=K1, group=G)
def strlen(ctx, argv):
    v = ctx.db.get_typed(argv[1], bytes)
    return 0 if v is None else len(v)


def _incr(ctx, key, delta):
    db = ctx.db
    old = db.get_typed(key, bytes)
    if old is None:
        cur = 0
    else:
        cur = parse_int(old)
        if cur is None:
            raise ErrorReply(errors.NOT_INTEGER)
    new = cur + delta
    if new > LLONG_MAX or new < LLONG_MIN:
        raise ErrorReply(errors.OVERFLOW)
    db.set(key, b"%d" % new, keepttl=True)
    ctx.server.dirty += 1
    ctx.server.keyspace.notify(db, "$", b"incrby", key)
    return new


@command("incr", 2, "write denyoom fast", keys=K1, group=G)
def incr(ctx, argv):
    return _incr(ctx, argv[1], 1)


@command("decr", 2, "write denyoom fast", keys=K1, group=G)
def decr(ctx, argv):
    return _incr(ctx, argv[1], -1)


@command("incrby", 3, "write denyoom fast", keys=K1, group=G)
def incrby(ctx, argv):
    return _incr(ctx, argv[1], get_int(argv[2]))


@command("decrby", 3, "write denyoom fast", keys=K1, group=G)
def decrby(ctx, argv):
    delta = get_int(argv[2])
    if delta == LLONG_MIN:
        raise ErrorReply("ERR decrement would overflow")
    return _incr(ctx, argv[1], -delta)


@command("incrbyfloat", 3, "write denyoom fast", keys=K1, group=G)
def incrbyfloat(ctx, argv):
    db = ctx.db
    key = argv[1]
    old = db.get_typed(key, bytes)
    # Redis adds in long double: exact operands, rounded as the x87 format.
    cur = 0 if old is None else parse_long_double(old)
    delta = parse_long_double(argv[2])
    if cur is None or delta is None:
        raise ErrorReply(errors.NOT_FLOAT)
    if isinstance(cur, float) or isinstance(delta, float):
        raise ErrorReply(errors.NAN_OR_INF)  # inf plus anything: inf or nan
    new = round_long_double(cur + delta)
    if isinstance(new, float):
        raise ErrorReply(errors.NAN_OR_INF)
    text = format_long_double(new)
    db.set(key, text, keepttl=True)
    note_string_encoding(db, key, text, b"embstr")  # never "int" in Redis
    ctx.server.dirty += 1
    ctx.server.keyspace.notify(db, "$", b"incrbyfloat", key)
    # Replicas must not redo float math: send the result.
    ctx.propagate([b"SET", key, text, b"KEEPTTL"])
    return text


@command("getrange", 4, "readonly", keys=K1, group=G)
def getrange(ctx, argv):
    start = get_int(argv[2])
    end = get_int(argv[3])
    v = ctx.db.get_typed(argv[1], bytes)
    if v is None:
        return b""
    n = len(v)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(0, n + start)
    if end < 0:
        end = max(0, n + end)
    end = min(end, n - 1)
    if start > end or n == 0:
        return b""
    return v[start : end + 1]


@command("substr", 4, "readonly", keys=K1, group=G)
def substr(ctx, argv):
    return getrange(ctx, argv)


@command("setrange", 4, "write denyoom", keys=K1, group=G)
def setrange(ctx, argv):
    db = ctx.db
    key = argv[1]
    offset = get_int(argv[2])
    if offset < 0:
        raise ErrorReply("ERR offset is out of range")
    value = argv[3]
    old = db.get_typed(key, bytes)
    if old is None:
        if not value:
            return 0
        _check_size(ctx, offset + len(value))
        new = b"\x00" * offset + value
    else:
        if not value:
            return len(old)
        _check_size(ctx, offset + len(value))
        if len(old) < offset:
            old = old + b"\x00" * (offset - len(old))
        new = old[:offset] + value + old[offset + len(value):]
    db.set(key, new, keepttl=True)
    note_string_encoding(db, key, new)  # Redis writes in place: "raw"
    ctx.server.dirty += 1
    ctx.server.keyspace.notify(db, "$", b"setrange", key)
    return len(new)
