"""Redis glob semantics: hand-picked cases, a randomized comparison with a
straightforward interpreter, and (interop) KEYS / COMMAND LIST FILTERBY on a
real redis-server as the oracle."""

import itertools
import random
import shutil
import socket
import subprocess
import time

import pytest

from hakv.common.glob import compile_glob, glob_match


# ---------------------------------------------------------------- oracle
def interpret(pattern: bytes, s: bytes, nocase: bool = False) -> bool:
    """Walk pattern and subject together, trying every split at '*'.

    Written independently of hakv.common.glob (no tokenizer, no regex) from
    the documented rules, to cross-check the compiled matcher.
    """
    def low(v):
        return v + 32 if 65 <= v <= 90 else v

    def signed(v):
        return v - 256 if v > 127 else v

    def at(p, i):
        # Redis patterns are NUL-terminated: reading one past the end is 0.
        return pattern[i] if i < len(pattern) else 0

    def walk(pi, si):
        if si == len(s):
            return pi == len(pattern)
        while pi < len(pattern) and si < len(s):
            c = pattern[pi]
            if c == ord("*"):
                while pi + 1 < len(pattern) and pattern[pi + 1] == ord("*"):
                    pi += 1
                if pi + 1 == len(pattern):
                    return True
                return any(walk(pi + 1, k) for k in range(si, len(s)))
            if c == ord("?"):
                pass
            elif c == ord("["):
                pi += 1
                neg = at(pattern, pi) == ord("^")
                if neg:
                    pi += 1
                hit = False
                b = s[si]
                while True:
                    left = len(pattern) - pi
                    if left >= 2 and pattern[pi] == ord("\\"):
                        pi += 1
                        hit |= pattern[pi] == b
                    elif at(pattern, pi) == ord("]"):
                        break
                    elif left == 0:
                        pi -= 1
                        break
                    elif left >= 3 and pattern[pi + 1] == ord("-"):
                        lo, hi = sorted((signed(pattern[pi]), signed(pattern[pi + 2])))
                        x = signed(b)
                        if nocase:
                            lo, hi, x = low(lo), low(hi), low(x)
                        hit |= lo <= x <= hi
                        pi += 2
                    else:
                        if nocase:
                            hit |= low(signed(pattern[pi])) == low(signed(b))
                        else:
                            hit |= pattern[pi] == b
                    pi += 1
                if hit == neg:
                    return False
            else:
                if c == ord("\\") and len(pattern) - pi >= 2:
                    pi += 1
                    c = pattern[pi]
                if nocase:
                    if low(signed(c)) != low(signed(s[si])):
                        return False
                elif c != s[si]:
                    return False
            pi += 1
            si += 1
            if si == len(s):
                while pi < len(pattern) and pattern[pi] == ord("*"):
                    pi += 1
                break
        return pi == len(pattern) and si == len(s)

    return walk(0, 0)


# ----------------------------------------------------------- fixed cases
CASES = [
    (b"*", b"anything", True),
    (b"*", b"", False),             # only the empty pattern matches b""
    (b"", b"", True),
    (b"", b"a", False),
    (b"**", b"", False),
    (b"h?llo", b"hello", True),
    (b"h?llo", b"hllo", False),
    (b"h*llo", b"hllo", True),
    (b"h*llo", b"heeeello", True),
    (b"h[ae]llo", b"hallo", True),
    (b"h[ae]llo", b"hillo", False),
    (b"h[^e]llo", b"hallo", True),
    (b"h[^e]llo", b"hello", False),
    (b"h[a-b]llo", b"hbllo", True),
    (b"h[b-a]llo", b"hbllo", True),          # reversed range
    (b"h\\*llo", b"h*llo", True),
    (b"h\\*llo", b"hello", False),
    (b"a\\", b"a\\", True),                  # trailing backslash is literal
    (b"[", b"[", False),                     # '[' at the end matches nothing
    (b"a[", b"a", False),
    (b"[^", b"x", True),                     # '[^' at the end: any byte
    (b"[abc", b"c", True),                   # unterminated set
    (b"[a-]", b"]", True),                   # range a..']'
    (b"[a-]", b"-", False),
    (b"[a-\xff]", b"\xff", True),            # signed-char range -1..97
    (b"[a-\xff]", b"\x00", True),
    (b"[a-\xff]", b"b", False),
    (b"[a-\xff]", b"\x80", False),
    (b"[\\]]", b"]", True),
    (b"[]]", b"]", False),                   # empty set, then literal ']'
    (b"[]]", b"]]", False),
    (b"[]a]", b"a", False),                  # '[]' then literal "a]"
    (b"[]a]", b"xa]", False),
    (b"*a", b"a", True),
    (b"a*", b"a", True),
    (b"*a*b*", b"xxaxxbxx", True),
    (b"*a*b*", b"xxbxxaxx", False),
    (b"a\x00b", b"a\x00b", True),
    (b"?", b"\x00", True),
]


@pytest.mark.parametrize("pattern,subject,expected", CASES)
def test_cases(pattern, subject, expected):
    assert bool(glob_match(pattern, subject)) is expected
    assert interpret(pattern, subject) is expected


def test_nocase():
    assert glob_match(b"HELLO", b"hello", nocase=True)
    assert glob_match(b"h[A-C]llo", b"hbllo", nocase=True)
    assert glob_match(b"h[a-c]llo", b"hBllo", nocase=True)
    assert not glob_match(b"h[a-c]llo", b"hBllo")
    # escaped bytes inside a set compare exactly even with nocase
    assert not glob_match(b"[\\A]", b"a", nocase=True)
    assert glob_match(b"[A]", b"a", nocase=True)
    assert glob_match(b"\\A", b"a", nocase=True)
    # [Z-a] folds to 'z'..'a': nothing matches
    assert not any(glob_match(b"[Z-a]", bytes([c]), nocase=True) for c in range(256))
    assert not glob_match(b"\xc0", b"\xe0", nocase=True)  # only ASCII folds


def test_compiled_matcher_is_cached_and_truthy():
    m = compile_glob(b"user:*")
    assert m is compile_glob(b"user:*")
    assert m(b"user:1")
    assert m(b"other") is None


def test_no_catastrophic_backtracking():
    pattern = b"*a" * 20 + b"b"
    subject = b"a" * 5000
    t = time.perf_counter()
    assert not glob_match(pattern, subject)
    assert glob_match(pattern, subject + b"b")
    assert time.perf_counter() - t < 2.0


ALPHABET = [b"a", b"b", b"A", b"z", b"*", b"?", b"[", b"]", b"^", b"-", b"\\",
            b"\xff", b"\x80", b"\x00", b"1"]


def random_patterns(rnd, n, max_len=7):
    out = []
    for _ in range(n):
        out.append(b"".join(rnd.choice(ALPHABET) for _ in range(rnd.randrange(0, max_len + 1))))
    return out


def subjects():
    base = [b"", b"a", b"b", b"A", b"ab", b"ba", b"aa", b"abc", b"[", b"]", b"\\",
            b"-", b"^", b"*", b"?", b"\x80", b"\xff", b"a\xff", b"z", b"Z", b"\x00",
            b"a\x00b", b"1", b"a-b", b"[a]", b"a]", b"]a", b"^a"]
    rnd = random.Random(99)
    for _ in range(150):
        base.append(b"".join(rnd.choice(ALPHABET) for _ in range(rnd.randrange(1, 6))))
    return sorted(set(base))


@pytest.mark.parametrize("nocase", [False, True])
def test_random_patterns_against_interpreter(nocase):
    rnd = random.Random(1234 + nocase)
    keys = subjects()
    for pattern in random_patterns(rnd, 1500):
        match = compile_glob(pattern, nocase)
        for key in keys:
            assert bool(match(key)) == interpret(pattern, key, nocase), (pattern, key)


def test_every_two_byte_pattern_exhaustively():
    chars = [b"a", b"*", b"?", b"[", b"]", b"^", b"-", b"\\", b"\xff"]
    keys = [b"", b"a", b"b", b"]", b"-", b"\\", b"\xff", b"aa", b"a]", b"*"]
    for combo in itertools.product(chars, repeat=3):
        pattern = b"".join(combo)
        for key in keys:
            assert bool(glob_match(pattern, key)) == interpret(pattern, key), (pattern, key)


# ----------------------------------------------------------------- interop
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def real_redis(tmp_path):
    redis = pytest.importorskip("redis")
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.interop
def test_keys_matches_real_redis(real_redis):
    keys = subjects()
    pipe = real_redis.pipeline(transaction=False)
    for k in keys:
        pipe.set(k, b"1")
    pipe.execute()
    rnd = random.Random(4321)
    patterns = random_patterns(rnd, 3000) + [c for c, _, _ in CASES]
    patterns += [b"*" + bytes([c]) for c in range(256)]
    patterns += [b"[" + bytes([a]) + b"-" + bytes([b]) + b"]"
                 for a, b in itertools.product(b"\x00\x01a]\\\x7f\x80\xfe\xff", repeat=2)]
    for start in range(0, len(patterns), 500):
        chunk = patterns[start:start + 500]
        for p in chunk:
            pipe.keys(p)
        for p, got in zip(chunk, pipe.execute()):
            if p == b"*":
                expect = set(keys)          # KEYS's own "all keys" shortcut
            else:
                m = compile_glob(p)
                expect = {k for k in keys if m(k)}
            assert set(got) == expect, p


@pytest.mark.interop
def test_nocase_matches_real_redis_command_list(real_redis):
    # COMMAND LIST FILTERBY PATTERN matches case-insensitively.
    names = real_redis.command_list()
    rnd = random.Random(77)
    alphabet = [b"C", b"c", b"O", b"o", b"N", b"*", b"?", b"[", b"]", b"^", b"-",
                b"\\", b"G", b"E", b"T", b"|", b"A", b"z", b"Z"]
    patterns = [b"".join(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 7)))
                for _ in range(1500)]
    patterns += [b"[A-Z]*", b"[z-a]*", b"[Z-a]*", b"*[\\C]*", b"C*|*", b"?ET", b"[^A-F]*"]
    pipe = real_redis.pipeline(transaction=False)
    for p in patterns:
        pipe.command_list(pattern=p)
    for p, got in zip(patterns, pipe.execute()):
        m = compile_glob(p, nocase=True)
        assert set(got) == {n for n in names if m(n)}, p


def test_more_than_1000_inner_stars_never_match():
    key = b"a" * 1002
    assert glob_match(b"*a" * 1000, key)
    assert glob_match(b"a*" * 1001, key)          # 1000 inner + 1 trailing
    assert not glob_match(b"*a" * 1001, key)
    assert not glob_match(b"a*" * 1001 + b"a", key)


@pytest.mark.interop
def test_star_recursion_limit_matches_real_redis(real_redis):
    for n in (999, 1000, 1001):
        real_redis.flushall()
        key = b"a" * (n + 1)
        real_redis.set(key, b"1")
        for pattern in (b"*a" * n, b"*a" * n + b"*", b"a*" * n, b"a*" * n + b"a", b"*?" * n):
            assert bool(real_redis.keys(pattern)) == glob_match(pattern, key), (n, pattern[:4])
