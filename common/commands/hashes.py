"""Hash commands: HSET HSETNX HGET HMSET HMGET HDEL HLEN HEXISTS HKEYS HVALS
HGETALL HINCRBY HINCRBYFLOAT HSTRLEN HRANDFIELD HSCAN.

A hash is a Python `dict` (bytes field -> bytes value). Dicts keep insertion
order, like Redis's listpack encoding of small hashes, so small hashes even
list their fields in Redis's order.

HINCRBYFLOAT computes in x87 80-bit long double as Redis does (strtold, the
addition, then "%.17Lf" with trailing zeros removed). Python floats are 64-bit
doubles and would print 0.1+0.2 as 0.30000000000000004 where Redis prints 0.3,
so the arithmetic is emulated exactly with integers (`LongDouble` below); it
is also what BLPOP & co use to read their timeouts.
"""

from __future__ import annotations

import re
from fractions import Fraction

from hakv.common import errors
from hakv.common.commands.sets import parse_rand_count, sampler, scan_command
from hakv.common.commands.table import command
from hakv.common.numbers import LLONG_MAX, LLONG_MIN, get_int, parse_int
from hakv.common.resp import ErrorReply

G = "hash"
K1 = (1, 1, 1)


# ---------------------------------------------------------------- long double


class LongDouble:
    """Exact emulation of the x87 80-bit extended type: 64-bit significand,
    exponents -16382..16383, subnormals, round half to even. Values are
    Fractions (or +/-inf as floats)."""

    MANT = 64
    EMIN = -16382
    EMAX = 16383
    _DEC = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
    _HEX = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]*)\.?([0-9a-fA-F]*)(?:[pP]([+-]?\d+))?")
    _INF = re.compile(rb"[+-]?inf(?:inity)?", re.IGNORECASE)

    @classmethod
    def round(cls, q: Fraction):
        """The long double nearest to q (inf on overflow)."""
        if q == 0:
            return Fraction(0)
        negative = q < 0
        a = -q if negative else q
        num, den = a.numerator, a.denominator
        e = num.bit_length() - den.bit_length()
        if (num << -e if e < 0 else num) < (den << e if e > 0 else den):
            e -= 1  # now 2**e <= a < 2**(e+1)
        shift = cls.MANT - 1 - max(e, cls.EMIN)
        if shift >= 0:
            m, r = divmod(num << shift, den)
            twice, unit = 2 * r, den
        else:
            m, r = divmod(num, den << -shift)
            twice, unit = 2 * r, den << -shift
        if twice > unit or (twice == unit and m & 1):
            m += 1
        if m.bit_length() - shift > cls.EMAX + 1:
            return float("-inf") if negative else float("inf")
        value = Fraction(m, 1 << shift) if shift >= 0 else Fraction(m << -shift)
        return -value if negative else value

    @classmethod
    def parse(cls, raw: bytes):
        """strtold as Redis's string2ld uses it: the whole string must be a
        number, no spaces, no nan, no overflow or underflow to zero. Returns
        a Fraction or +/-inf, or None when Redis would refuse it."""
        if not raw or len(raw) >= 5 * 1024:
            return None
        if cls._DEC.fullmatch(raw):
            mantissa, _, exp = raw.lower().partition(b"e")
            whole, _, frac = mantissa.lstrip(b"+-").partition(b".")
            digits = (whole + frac).lstrip(b"0")
            if not digits:
                return Fraction(0)
            exponent = _exponent(exp)
            # Where the first significant digit sits: about log10 of the value.
            lead = len(whole.lstrip(b"0")) or -(len(frac) - len(frac.lstrip(b"0")))
            if exponent + lead > 4940:
                return None  # overflow
            if exponent + lead < -4960:
                return None  # underflow to zero
            num = _int_of_digits(digits)
            if raw[:1] == b"-":
                num = -num
            exponent -= len(frac)
            q = Fraction(num * 10**exponent) if exponent >= 0 else Fraction(num, 10**-exponent)
            value = cls.round(q)
        elif cls._INF.fullmatch(raw):
            return float("-inf") if raw[:1] == b"-" else float("inf")
        else:
            m = cls._HEX.fullmatch(raw)
            if m is None or not (m.group(2) or m.group(3)):
                return None
            sign, whole, frac, exp = m.groups()
            exponent = _exponent(exp)
            mant = int((whole + frac) or b"0", 16)
            if mant == 0:
                return Fraction(0)
            exponent -= 4 * len(frac)
            if exponent + mant.bit_length() > cls.EMAX + 2:
                return None
            if exponent + mant.bit_length() < cls.EMIN - cls.MANT - 2:
                return None
            q = Fraction(mant << exponent) if exponent >= 0 else Fraction(mant, 1 << -exponent)
            value = cls.round(-q if sign == b"-" else q)
        if isinstance(value, float) or value == 0:
            return None  # ERANGE: overflow, or a non-zero value that underflowed
        return value

    @staticmethod
    def format_human(value: Fraction) -> bytes:
        """Redis's ld2string(..., LD_STR_HUMAN): "%.17Lf" without trailing
        zeros (and without a lone '.'; "-0" becomes "0")."""
        negative = value < 0
        a = -value if negative else value
        scaled = a * 10**17
        q, r = divmod(scaled.numerator, scaled.denominator)
        if 2 * r > scaled.denominator or (2 * r == scaled.denominator and q & 1):
            q += 1
        whole, frac = divmod(q, 10**17)
        text = _digits_of(whole)
        frac_text = (b"%017d" % frac).rstrip(b"0")
        if frac_text:
            text += b"." + frac_text
        if negative and q:
            text = b"-" + text
        return text


def _apply_increment(current, delta, not_float_msg) -> bytes:
    """current (stored text, or None for 0) + delta, as Redis formats it."""
    if current is None:
        value = Fraction(0)
    else:
        value = LongDouble.parse(current)
        if value is None:
            raise ErrorReply(not_float_msg)
        if isinstance(value, float):  # a stored "inf": the sum is infinite
            raise ErrorReply("ERR increment would produce NaN or Infinity")
    total = LongDouble.round(value + delta)
    if isinstance(total, float):
        raise ErrorReply("ERR increment would produce NaN or Infinity")
    return LongDouble.format_human(total)


# Python refuses int <-> str conversions beyond 4300 digits (a DoS guard);
# long doubles reach 4933 digits, so convert in pieces.
_PIECE = 4000


def _exponent(text: bytes | None) -> int:
    """An exponent's value, clamped far beyond any long double's range."""
    if not text:
        return 0
    digits = text.lstrip(b"+-").lstrip(b"0")
    if len(digits) > 7:
        return -10**7 if text[:1] == b"-" else 10**7
    value = int(digits or b"0")
    return -value if text[:1] == b"-" else value


def _int_of_digits(digits: bytes) -> int:
    if len(digits) <= _PIECE:
        return int(digits or b"0")
    cut = len(digits) - _PIECE
    return _int_of_digits(digits[:cut]) * 10**_PIECE + int(digits[cut:])


def _digits_of(n: int) -> bytes:
    if n < 10**_PIECE:
        return b"%d" % n
    high, low = divmod(n, 10**_PIECE)
    return _digits_of(high) + b"%0*d" % (_PIECE, low)


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


def _hset(ctx, argv) -> int:
    """HSET / HMSET: set the field-value pairs; returns how many are new."""
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
        db.modified(key)
    server = ctx.server
    server.dirty += (n - 2) >> 1
    server.keyspace.notify(db, "h", b"hset", key)
    return created


@command("hset", -4, "write denyoom fast", keys=K1, group=G)
def hset(ctx, argv):
    return _hset(ctx, argv)


@command("hmset", -4, "write denyoom fast", keys=K1, group=G)
def hmset(ctx, argv):
    _hset(ctx, argv)
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
    delta = LongDouble.parse(argv[3])
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
    return scan_command(ctx, argv, dict, _identity, lambda h: _is_listpack(h, settings),
                        _pairs_reply)


def _identity(value):
    return value


def _pairs_reply(h, fields):
    out = []
    for f in fields:
        out.append(f)
        out.append(h[f])
    return out


__all__ = ["LongDouble"]
