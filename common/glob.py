"""Redis glob-style pattern matching (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET,
ACL key and channel patterns), byte for byte like Redis 7.0's matcher.

Semantics reproduced (all on bytes):

* ``*`` any run of bytes, ``?`` exactly one byte, ``\\x`` the byte x literally;
  a trailing lone backslash is a literal backslash.
* ``[...]`` one byte from a set, ``[^...]`` one byte not in it.  Inside, ``\\x``
  is x literally, ``a-z`` a range whose ends may be given in either order
  (``[z-a]`` == ``[a-z]``), and anything else is a literal, ``]`` ends the set.
  The range ends are compared as C ``char``, which is *signed* on the
  platforms Redis runs on: a range with one end >= 0x80 spans through the
  negative values, e.g. ``[a-\\xff]`` is -1..97, i.e. bytes 0x00-0x61 and 0xff.
  A range is recognized whenever at least three pattern bytes remain and the
  second is ``-``, so ``[a-]`` is the range a..']' and the set runs on.
  An unterminated ``[`` takes the rest of the pattern as its set; a ``[`` at
  the very end matches nothing, ``[^`` at the very end matches any byte.
* ``nocase`` folds only ASCII A-Z (the C locale), applied to literals, to
  plain set members and to both range ends and the byte -- but *not* to
  backslash-escaped bytes inside a set, which always compare exactly.
* A pattern with more than 1000 '*' runs that are followed by other pattern
  bytes matches nothing (Redis's recursion limit, CVE-2024-31228 fix).
* The empty string matches only the empty pattern, so ``*`` does not match
  b"".  KEYS and SCAN treat a lone ``*`` pattern as "everything" before ever
  calling the matcher (the empty key included): callers must special-case it.

How: the pattern is parsed once into tokens (literal byte, any byte, star,
byte set given as the explicit list of the 256 byte values it accepts,
computed by replaying Redis's decision for each byte), and the tokens become a
compiled ``re`` pattern.  Star-separated segments are emitted as atomic groups
``(?>.*?segment)``: segments have a fixed width, so committing to the leftmost
occurrence of each is exact, and no pattern can backtrack exponentially.

API:
  ``compile_glob(pattern: bytes, nocase=False) -> matcher`` where
  ``matcher(subject: bytes)`` returns a truthy value (an ``re.Match``) on a
  match and None otherwise.  Cached (LRU, 1024 patterns).
  ``glob_match(pattern: bytes, subject: bytes, nocase=False) -> bool``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import accumulate
from typing import Callable, Optional

__all__ = ["compile_glob", "glob_match"]

_STAR = "star"
_ANY = "any"

# Redis (7.0.15 with the CVE-2024-31228 fix, as Debian ships it) gives up
# past 1000 nested '*' recursions: a pattern with more than 1000 stars that
# are followed by something other than stars matches nothing.
_MAX_INNER_STARS = 1000
_NEVER = re.compile(b"(?!)").fullmatch


def _signed(c: int) -> int:
    """A byte read as a signed C char."""
    return c - 256 if c >= 128 else c


def _lower(c: int) -> int:
    """tolower() in the C locale, on a (possibly negative) char value."""
    return c + 32 if 65 <= c <= 90 else c


def _same(c: int) -> int:
    return c


def _parse_set(pattern: bytes, i: int, nocase: bool) -> tuple[frozenset, int]:
    """Parse a set whose '[' is at pattern[i-1].  Returns the accepted byte
    values and the index of the set's last pattern byte (its ']', or the
    pattern's last byte when unterminated)."""
    n = len(pattern)
    negate = i < n and pattern[i] == 0x5E  # '^'
    if negate:
        i += 1
    exact: set[int] = set()        # escaped bytes: always case-sensitive
    literal: set[int] = set()      # plain members: folded when nocase
    ranges: list[tuple[int, int]] = []
    while True:
        left = n - i
        if left >= 2 and pattern[i] == 0x5C:  # '\\'
            i += 1
            exact.add(pattern[i])
        elif left > 0 and pattern[i] == 0x5D:  # ']'
            break
        elif left == 0:
            i -= 1  # Redis backs up onto the last byte and stops
            break
        elif left >= 3 and pattern[i + 1] == 0x2D:  # '-'
            start, end = _signed(pattern[i]), _signed(pattern[i + 2])
            if start > end:
                start, end = end, start
            ranges.append((start, end))
            i += 2
        else:
            literal.add(pattern[i])
        i += 1
    # Mark the ranges on the signed char axis -128..127 with a difference
    # array, so a long set costs O(len + 256), not O(len * 256).
    fold = _lower if nocase else _same
    delta = [0] * 258
    for start, end in ranges:
        start, end = max(fold(start), -128), min(fold(end), 127)
        if start <= end:
            delta[start + 128] += 1
            delta[end + 129] -= 1
    covered = list(accumulate(delta))
    folded_literals = {fold(_signed(p)) for p in literal}
    accepted = set()
    for c in range(256):
        v = fold(_signed(c))
        hit = c in exact or v in folded_literals or (-128 <= v <= 127 and covered[v + 128] > 0)
        if hit != negate:
            accepted.add(c)
    return frozenset(accepted), i


def _tokens(pattern: bytes, nocase: bool) -> list:
    """Tokens: _STAR, _ANY, an int (a literal byte) or a frozenset of bytes."""
    out: list = []
    n = len(pattern)
    i = 0
    while i < n:
        c = pattern[i]
        if c == 0x2A:  # '*'
            if not out or out[-1] is not _STAR:
                out.append(_STAR)
        elif c == 0x3F:  # '?'
            out.append(_ANY)
        elif c == 0x5B:  # '['
            accepted, i = _parse_set(pattern, i + 1, nocase)
            out.append(accepted)
        else:
            if c == 0x5C and i + 1 < n:  # '\\' escapes the next byte
                i += 1
                c = pattern[i]
            if nocase and (65 <= c <= 90 or 97 <= c <= 122):
                out.append(frozenset((c | 0x20, c & ~0x20)))
            else:
                out.append(c)
        i += 1
    return out


def _byte_class(accepted: frozenset) -> str:
    if not accepted:
        return "(?!)"
    if len(accepted) == 256:
        return "."
    parts = []
    values = sorted(accepted)
    run_start = prev = values[0]
    for v in values[1:] + [None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        if run_start == prev:
            parts.append("\\x%02x" % run_start)
        else:
            parts.append("\\x%02x-\\x%02x" % (run_start, prev))
        if v is not None:
            run_start = prev = v
    return "[" + "".join(parts) + "]"


def _token_regex(token) -> str:
    if token is _ANY:
        return "."
    if isinstance(token, int):
        return "\\x%02x" % token
    return _byte_class(token)


def _to_regex(tokens: list) -> str:
    if not tokens:
        return ""
    if all(t is _STAR for t in tokens):
        return ".+"  # '*' alone matches every non-empty string, never b""
    # Split into fixed-width segments around the stars.
    segments: list[list[str]] = [[]]
    for t in tokens:
        if t is _STAR:
            segments.append([])
        else:
            segments[-1].append(_token_regex(t))
    segments = ["".join(parts) for parts in segments]
    if len(segments) == 1:
        return segments[0]
    head, middle, tail = segments[0], segments[1:-1], segments[-1]
    body = head + "".join("(?>.*?%s)" % seg for seg in middle)
    # The last segment is anchored at the end by fullmatch; with a trailing
    # star it is empty and '.*' takes the rest.
    return body + ".*" + tail


@lru_cache(maxsize=1024)
def compile_glob(pattern: bytes, nocase: bool = False) -> Callable[[bytes], Optional[re.Match]]:
    """Compile a Redis glob pattern into a matcher (see module docstring)."""
    tokens = _tokens(bytes(pattern), nocase)
    inner_stars = tokens.count(_STAR) - (1 if tokens and tokens[-1] is _STAR else 0)
    if inner_stars > _MAX_INNER_STARS:
        return _NEVER
    regex = _to_regex(tokens)
    return re.compile(regex.encode("latin-1"), re.DOTALL).fullmatch


def glob_match(pattern: bytes, subject: bytes, nocase: bool = False) -> bool:
    """True if `subject` matches the Redis glob `pattern`."""
    return compile_glob(bytes(pattern), nocase)(subject) is not None
