"""Number parsing and formatting with Redis's exact rules.

Redis is strict: "+1", " 1", "1.0" and "01" are not integers; "nan" is not a
float; "1e3" is a float but not an integer. Python's int()/float() accept much
more, so every command argument goes through these.
"""

from __future__ import annotations

import math
import re

from hakv.common import errors
from hakv.common.resp import ErrorReply

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)

_FLOAT_RE = re.compile(
    rb"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|"
    rb"0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?\d+)?)", re.IGNORECASE
)
_HEX_FLOAT_RE = re.compile(
    rb"([+-]?)0x([0-9a-f]*)\.?([0-9a-f]*)(?:p([+-]?\d+))?", re.IGNORECASE)


def parse_int(b: bytes) -> int | None:
    """Redis's string2ll: optional '-', digits without leading zeros, in the
    signed 64-bit range. None if not an integer."""
    n = len(b)
    if n == 0 or n > 20:
        return None
    if b.isdigit():
        if n > 1 and b[0] == 48:
            return None
        v = int(b)
        return v if v <= LLONG_MAX else None
    if b[0] == 45 and n > 1:
        d = b[1:]
        if not d.isdigit() or d[0] == 48:
            return None
        v = -int(d)
        return v if v >= LLONG_MIN else None
    return None


def get_int(b: bytes, message: str = errors.NOT_INTEGER) -> int:
    v = parse_int(b)
    if v is None:
        raise ErrorReply(message)
    return v


def get_positive_int(b: bytes, name: str = "") -> int:
    v = get_int(b)
    if v < 0:
        raise ErrorReply("ERR %s is out of range, must be positive" % name if name else
                         errors.NOT_INTEGER)
    return v


MUST_BE_POSITIVE = "ERR value is out of range, must be positive"
COUNT_RANGE = ("ERR value is out of range, value must between -9223372036854775807 and "
               "9223372036854775807")
# Redis builds the reply of a negative count whatever its size, and dies of
# it for absurd ones (SRANDMEMBER s -9223372036854775807 crashes 7.0); hakv
# refuses counts no reply could ever hold.
MAX_REPLY_ELEMENTS = 2**31 - 1


def get_count(b: bytes) -> int:
    """The COUNT of LPOP / RPOP / SPOP / ZPOPMIN / ZPOPMAX: 0..LLONG_MAX."""
    v = parse_int(b)
    if v is None or v < 0:
        raise ErrorReply(MUST_BE_POSITIVE)
    return v


def parse_rand_count(b: bytes) -> int:
    """SRANDMEMBER / HRANDFIELD / ZRANDMEMBER count: -LONG_MAX..LONG_MAX
    (negative: picks may repeat)."""
    count = get_int(b)
    if count == LLONG_MIN:
        raise ErrorReply(COUNT_RANGE)
    if count < -MAX_REPLY_ELEMENTS:
        raise ErrorReply("ERR value is out of range")
    return count


def parse_float(b: bytes) -> float | None:
    """Redis's strtod acceptance (getDoubleFromObject): decimal, exponent and
    C99 hex forms ("0x1.8p3"), inf/infinity; no spaces, no nan, and no
    overflow to infinity or underflow to zero (ERANGE)."""
    if not b or len(b) > 5000 or not _FLOAT_RE.fullmatch(b):
        return None
    hexa = _HEX_FLOAT_RE.fullmatch(b)
    try:
        v = float.fromhex(b.decode()) if hexa else float(b)
    except (ValueError, OverflowError):
        return None  # a hex value beyond the double range
    if math.isnan(v):
        return None
    if math.isinf(v) and b"inf" not in b.lower():
        return None  # overflow
    if v == 0 and _has_nonzero_digit(b, hexa):
        return None  # underflow
    return v


def _has_nonzero_digit(b: bytes, hexa) -> bool:
    mantissa = (hexa.group(2) + hexa.group(3)) if hexa else re.split(rb"[eE]", b)[0]
    return any(c not in b"0.+-" for c in mantissa)


def get_float(b: bytes, message: str = errors.NOT_FLOAT) -> float:
    v = parse_float(b)
    if v is None:
        raise ErrorReply(message)
    return v


# ---------------------------------------------------------------- long double
# INCRBYFLOAT and HINCRBYFLOAT compute in C long double, and the blocking
# pops read their timeouts as one: on x86-64, the x87 80-bit format (64-bit
# significand). Python floats would print 0.1 + 0.2 as 0.30000000000000004
# where Redis says 0.3, so the operands and the sum are kept exact
# (Fraction) and rounded the way the x87 format rounds.

_LD_SIGNIFICAND = 64
_LD_MIN_EXP = -16382  # exponent of the smallest normal value
_LD_OVERFLOW = 2**16384
_LD_MAX_CHARS = 5 * 1024  # Redis's MAX_LONG_DOUBLE_CHARS: string2ld's buffer
_LD_DECIMAL = re.compile(rb"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?")


def round_long_double(x):
    """The Fraction x rounded to the nearest 80-bit long double (ties to
    even, subnormals included); +-math.inf when it overflows."""
    from fractions import Fraction

    if x == 0:
        return Fraction(0)
    negative = x < 0
    n, d = abs(x.numerator), x.denominator
    e = n.bit_length() - d.bit_length()
    if (n << -e if e < 0 else n) < (d << e if e > 0 else d):
        e -= 1  # now 2**e <= |x| < 2**(e+1)
    shift = max(e, _LD_MIN_EXP) - (_LD_SIGNIFICAND - 1)  # weight of the last bit
    num, den = (n, d << shift) if shift >= 0 else (n << -shift, d)
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q & 1):
        q += 1
    value = Fraction(q << shift) if shift >= 0 else Fraction(q, 1 << -shift)
    if value >= _LD_OVERFLOW:
        return -math.inf if negative else math.inf
    return -value if negative else value


def parse_long_double(b: bytes):
    """An operand of INCRBYFLOAT as Redis's string2ld reads it (strtold):
    the exact long double value as a Fraction, +-math.inf for inf/infinity,
    or None if Redis refuses it (syntax, nan, overflow, underflow to zero)."""
    from fractions import Fraction

    if not b or len(b) >= _LD_MAX_CHARS or not _FLOAT_RE.fullmatch(b):
        return None
    if b.lstrip(b"+-").lower() in (b"inf", b"infinity"):
        return -math.inf if b[:1] == b"-" else math.inf
    hexa = _HEX_FLOAT_RE.fullmatch(b)
    if hexa is not None:  # strtold reads C99 hex floats too: exact binary values
        sign, whole, frac, exp = hexa.groups()
        mantissa = int((whole + frac) or b"0", 16)
        if not mantissa:
            return Fraction(0)
        exp2 = _exponent(exp) - 4 * len(frac)
        top = exp2 + mantissa.bit_length()  # 2**(top-1) <= |value| < 2**top
        if top > 16385 or top < _LD_MIN_EXP - _LD_SIGNIFICAND - 2:
            return None  # far beyond LDBL_MAX, or far below the smallest subnormal
        value = round_long_double(Fraction(mantissa) * Fraction(2) ** exp2)
        if isinstance(value, float) or value == 0:
            return None  # ERANGE
        return -value if sign == b"-" else value
    m = _LD_DECIMAL.fullmatch(b)
    if m is None:
        return None
    sign, int_part, frac_part, exp = m.groups()
    frac_part = frac_part or b""
    digits = (int_part + frac_part).lstrip(b"0")
    if not digits:
        return Fraction(0)
    e = _exponent(exp) - len(frac_part)
    magnitude = len(digits) + e  # 10**(magnitude-1) <= |value| < 10**magnitude
    if magnitude > 4933 or magnitude < -4951:
        return None  # beyond LDBL_MAX, or below half the smallest subnormal
    value = Fraction(_int_from_digits(digits)) * Fraction(10) ** e
    value = round_long_double(value)
    if value == 0 or isinstance(value, float):
        return None  # strtold reports ERANGE: Redis refuses the value
    return -value if sign == b"-" else value


def _exponent(text: bytes | None) -> int:
    """An exponent's value, clamped far beyond any long double's range
    (strtold reads "1e000...0001" with thousands of zeros as 1e1, and
    Python refuses int() of texts over 4300 digits)."""
    if not text:
        return 0
    digits = text.lstrip(b"+-").lstrip(b"0")
    if len(digits) > 7:
        return -10**7 if text[:1] == b"-" else 10**7
    value = int(digits or b"0")
    return -value if text[:1] == b"-" else value


def format_long_double(x) -> bytes:
    """Redis's ld2string(LD_STR_HUMAN): "%.17Lf" of the exact value (ties to
    even), trailing zeros and dot removed, "-0" printed as "0"."""
    a = abs(x)
    scaled = a * 10**17
    q, r = divmod(scaled.numerator, scaled.denominator)
    if 2 * r > scaled.denominator or (2 * r == scaled.denominator and q & 1):
        q += 1
    whole, frac = divmod(q, 10**17)
    text = (_digits_of_int(whole) + b".%017d" % frac).rstrip(b"0").rstrip(b".")
    if x < 0 and text != b"0":
        text = b"-" + text
    return text



# Python refuses int <-> decimal text conversions beyond 4300 digits (a guard
# against quadratic time); long doubles reach 4933 digits, so go by chunks.
_CHUNK = 1000


def _int_from_digits(digits: bytes) -> int:
    n = 0
    for i in range(0, len(digits), _CHUNK):
        part = digits[i:i + _CHUNK]
        n = n * 10 ** len(part) + int(part)
    return n


def _digits_of_int(n: int) -> bytes:
    parts = []
    while n >= 10**_CHUNK:
        n, low = divmod(n, 10**_CHUNK)
        parts.append(b"%0*d" % (_CHUNK, low))
    parts.append(b"%d" % n)
    return b"".join(reversed(parts))
