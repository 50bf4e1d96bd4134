"""Hash commands: HSET HSETNX HGET HMSET HMGET HDEL HLEN HEXISTS HKEYS HVALS
HGETALL HINCRBY HINCRBYFLOAT HSTRLEN HRANDFIELD HSCAN.

A hash is a Python `dict` (bytes field -> bytes value). Dicts keep insertion
order, like Redis's listpack encoding of small hashes, so small hashes even
list their fields in Redis's order.

HINCRBYFLOAT computes in x87 80-bit long double as Redis does (strtold, the
addition, then "%.17Lf" with trailing zeros removed), with common/numbers.py's
exact emulation, the one INCRBYFLOAT uses: Python floats would print 0.1+0.2
as 0.30000000000000004 where Redis prints 0.3.
"""

from __future__ import annotations

from fractions import Fraction

from hakv.common import errors
from hakv.common.commands.table import command
from hakv.common.numbers import (LLONG_MAX, LLONG_MIN, format_long_double, get_int, parse_int,
                                 parse_long_double, parse_rand_count, round_long_double)
from hakv.common.resp import ErrorReply
from hakv.common.scan import collection_scan
from hakv.common.types.sampler import sampler

G = "hash"
K1 = (1, 1, 1)


def _apply_increment(current, delta, not_float_msg) -> bytes:
    """current (stored text, or None for 0) + delta, as Redis formats it."""
    if current is None:
        value = Fraction(0)
    else:
        value = parse_long_double(current)
        if value is None:
            raise ErrorReply(not_float_msg)
        if isinstance(value, float):  # a stored "inf": the sum is infinite
            raise ErrorReply("ERR increment would produce NaN or Infinity")
    total = round_long_double(value + delta)
    if isinstance(total, float):
        raise ErrorReply("ERR increment would produce NaN or Infinity")
    return format_long_double(total)


# ---------------------------------------------------------------- helpers


def _notify(ctx, event: bytes, key: bytes) -> None:
    ctx.server.keyspace.notify(ctx.db, "h", event, key)


def _hash_for_write(ctx, key: bytes) -> dict:
    """The hash at key, created empty (and stored) when missing."""
    h = ctx.db.get_typed(key, dict)
    if h is None:
        h = {}
        ctx.db.set(key, h)
    return h


def _is_listpack(h: dict, settings) -> bool:
    """Would Redis 7.0 keep this hash as a listpack (HSCAN returns it whole)?"""
    if len(h) > settings["hash-max-listpack-entries"]:
        return False
    limit = settings["hash-max-listpack-value"]
    for f, v in h.items():
        if len(f) > limit or len(v) > limit:
            return False
    return True


# ---------------------------------------------------------------- commands


@command("hset", -4, "write denyoom fast", keys=K1, group=G)
def hset(ctx, argv) -> int:
    """HSET (and HMSET): set the field-value pairs; returns how many are new."""
    n = len(argv)
    if n & 1:
        raise ErrorReply(errors.wrong_args(argv[0].decode("utf-8", "replace").lower()).message)
    db = ctx.db
    key = argv[1]
    h = db.get_typed(key, dict)
    if h is None:
        h = {}
        for i in range(2, n, 2):
            h[argv[i]] = argv[i + 1]
        db.set(key, h)
        created = len(h)
    else:
        before = len(h)
        if sampler.entries:
            for i in range(2, n, 2):
                if argv[i] not in h:
                    sampler.added(h, argv[i])
                h[argv[i]] = argv[i + 1]
        elif n == 4:
            h[argv[2]] = argv[3]
        else:
            for i in range(2, n, 2):
                h[argv[i]] = argv[i + 1]
        created = len(h) - before
        if db.watched:  # (modified()'s own test: no call per write)
            db.modified(key)
    server = ctx.server
    server.dirty += (n - 2) >> 1
    server.keyspace.notify(db, "h", b"hset", key)
    return created


@command("hmset", -4, "write denyoom fast", keys=K1, group=G)
def hmset(ctx, argv):
    hset(ctx, argv)
    return "OK"


@command("hsetnx", 4, "write denyoom fast", keys=K1, group=G)
def hsetnx(ctx, argv):
    db = ctx.db
    key, field = argv[1], argv[2]
    h = db.get_typed(key, dict)
    if h is not None and field in h:
        return 0
    if h is None:
        db.set(key, {field: argv[3]})
    else:
        h[field] = argv[3]
        sampler.added(h, field)
        db.modified(key)
    ctx.server.dirty += 1
    _notify(ctx, b"hset", key)
    return 1


@command("hget", 3, "readonly fast", keys=K1, group=G)
def hget(ctx, argv):
    h = ctx.db.get_typed(argv[1], dict)
    return None if h is None else h.get(argv[2])


@command("hmget", -3, "readonly fast", keys=K1, group=G)
def hmget(ctx, argv):
    h = ctx.db.get_typed(argv[1], dict)
    if h is None:
        return [None] * (len(argv) - 2)
    get = h.get
    return [get(f) for f in argv[2:]]


@command("hdel", -3, "write fast", keys=K1, group=G)
def hdel(ctx, argv):
    db = ctx.db
    key = argv[1]
    h = db.get_typed(key, dict)
    if h is None:
        return 0
    deleted = 0
    for f in argv[2:]:
        if h.pop(f, None) is not None:
            sampler.removed(h, f)
            deleted += 1
            if not h:
                break
    if deleted:
        db.modified(key)
        ctx.server.dirty += deleted
        _notify(ctx, b"hdel", key)
        if not h:
            sampler.forget(h)
            db.delete(key)
            ctx.server.keyspace.notify(db, "g", b"del", key)
    return deleted


@command("hlen", 2, "readonly fast", keys=K1, group=G)
def hlen(ctx, argv):
    h = ctx.db.get_typed(argv[1], dict)
    return 0 if h is None else len(h)


@command("hexists", 3, "readonly fast", keys=K1, group=G)
def hexists(ctx, argv):
    h = ctx.db.get_typed(argv[1], dict)
    return 1 if h is not None and argv[2] in h else 0


@command("hstrlen", 3, "readonly fast", keys=K1, group=G)
def hstrlen(ctx, argv):
    h = ctx.db.get_typed(argv[1], dict)
    if h is None:
        return 0
    v = h.get(argv[2])
    return 0 if v is None else len(v)


@command("hkeys", 2, "readonly", keys=K1, group=G)
def hkeys(ctx, argv):
    h = ctx.db.get_typed(argv[1], dict)
    return [] if h is None else list(h)


@command("hvals", 2, "readonly", keys=K1, group=G)
def hvals(ctx, argv):
    h = ctx.db.get_typed(argv[1], dict)
    return [] if h is None else list(h.values())


@command("hgetall", 2, "readonly", keys=K1, group=G)
def hgetall(ctx, argv):
    h = ctx.db.get_typed(argv[1], dict)
    # A copy: inside MULTI a later command could change the hash before the
    # replies are encoded.
    return {} if h is None else dict(h)


@command("hincrby", 4, "write denyoom fast", keys=K1, group=G)
def hincrby(ctx, argv):
    delta = get_int(argv[3])
    key, field = argv[1], argv[2]
    db = ctx.db
    h = db.get_typed(key, dict)
    old = None if h is None else h.get(field)
    if old is None:
        cur = 0
    else:
        cur = parse_int(old)
        if cur is None:
            raise ErrorReply("ERR hash value is not an integer")
    new = cur + delta
    if new > LLONG_MAX or new < LLONG_MIN:
        raise ErrorReply(errors.OVERFLOW)
    if h is None:
        h = _hash_for_write(ctx, key)
    if old is None:
        sampler.added(h, field)
    h[field] = b"%d" % new
    db.modified(key)
    ctx.server.dirty += 1
    _notify(ctx, b"hincrby", key)
    return new


@command("hincrbyfloat", 4, "write denyoom fast", keys=K1, group=G)
def hincrbyfloat(ctx, argv):
    delta = parse_long_double(argv[3])
    if delta is None:
        raise ErrorReply(errors.NOT_FLOAT)
    if isinstance(delta, float):
        raise ErrorReply("ERR value is NaN or Infinity")
    key, field = argv[1], argv[2]
    db = ctx.db
    h = db.get_typed(key, dict)
    old = None if h is None else h.get(field)
    text = _apply_increment(old, delta, "ERR hash value is not a float")
    if h is None:
        h = _hash_for_write(ctx, key)
    if old is None:
        sampler.added(h, field)
    h[field] = text
    db.modified(key)
    ctx.server.dirty += 1
    _notify(ctx, b"hincrbyfloat", key)
    # Replicas must not redo the float math: they get the result.
    ctx.propagate([b"HSET", key, field, text])
    return text


@command("hrandfield", -2, "readonly", keys=K1, group=G)
def hrandfield(ctx, argv):
    if len(argv) == 2:
        h = ctx.db.get_typed(argv[1], dict)
        return None if not h else sampler.choice(h, (ctx, argv[1]))
    count = parse_rand_count(argv[2])
    withvalues = False
    if len(argv) == 4 and argv[3].lower() == b"withvalues":
        withvalues = True
        if abs(count) > LLONG_MAX // 2:  # Redis doubles it for the reply's length
            raise ErrorReply("ERR value is out of range")
    elif len(argv) > 3:
        raise ErrorReply(errors.SYNTAX)
    h = ctx.db.get_typed(argv[1], dict)
    if not h or count == 0:
        return []
    if count < 0:
        fields = sampler.choices(h, -count, (ctx, argv[1]))
    elif count >= len(h):
        fields = list(h)
    else:
        fields = sampler.sample(h, count, (ctx, argv[1]))
    if not withvalues:
        return fields
    if ctx.resp3:
        return [[f, h[f]] for f in fields]
    out = []
    for f in fields:
        out.append(f)
        out.append(h[f])
    return out


@command("hscan", -3, "readonly", keys=K1, group=G)
def hscan(ctx, argv):
    settings = ctx.server.settings

    def whole(h):
        # A hash Redis holds as a listpack is answered whole.
        return list(h) if _is_listpack(h, settings) else None

    return collection_scan(ctx, argv, dict, whole, _pairs_reply)


def _pairs_reply(h, fields, is_whole):
    out = []
    for f in fields:
        out.append(f)
        out.append(h[f])
    return out
