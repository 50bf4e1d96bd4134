"""common/numbers.py's long-double reader (INCRBYFLOAT, HINCRBYFLOAT, the
timeouts of blocking pops) on the inputs where strtold's rules are easy to
get wrong. The expected values are what Redis 7.0.15 answers to
`INCRBYFLOAT k <input>` on a missing key (None: "value is not a valid
float")."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from hakv.common.numbers import format_long_double, parse_long_double, round_long_double

CASES = [
    (b"0.1", b"0.1"),
    (b"1e" + b"0" * 4400 + b"1", b"10"),            # an exponent with thousands of digits
    (b"1e-" + b"0" * 4400 + b"1", b"0.1"),
    (b"0x1p" + b"0" * 4400 + b"1", b"2"),
    (b"0" * 5118 + b"1", b"1"),                     # 5119 characters: still read
    (b"0" * 5119 + b"1", None),                     # 5120: beyond string2ld's buffer
    (b"0x0p99999999", b"0"),                        # zero, whatever the exponent
    (b"1e99999999999", None),                       # overflow
    (b"1e-99999999999", None),                      # underflow to zero
    (b"0x1p16384", None),
    (b"nan", None),
    (b" 1", None),
]


@pytest.mark.parametrize("text,expected", CASES)
def test_parse_long_double_like_redis(text, expected):
    value = parse_long_double(text)
    if expected is None:
        assert value is None
    else:
        assert value is not None and not isinstance(value, float)
        assert format_long_double(value) == expected


def test_infinities_and_rounding():
    assert parse_long_double(b"-inf") == -math.inf
    assert parse_long_double(b"Infinity") == math.inf
    # 0.1 + 0.2 in long double prints as 0.3, as Redis prints it.
    total = round_long_double(parse_long_double(b"0.1") + parse_long_double(b"0.2"))
    assert format_long_double(total) == b"0.3"
    assert round_long_double(Fraction(2) ** 16384) == math.inf
