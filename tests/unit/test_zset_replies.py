"""The sorted-set commands' own fast paths against the generic ones they
stand in for: range replies encoded in one pass (commands/zsets._flat) must
be byte for byte what resp.encode gives for the same values, and a bulk
ZADD's scores read in one pass (_plain_scores) what parse_score reads one by
one. The double replies (ZSCORE, ZINCRBY, ZPOPMIN/MAX) likewise: RESP2 bulk text
given as bytes, on the wire what a float reply would be."""

from __future__ import annotations

import math
import random

from memory_support import connect, run

from hakv.common.commands import zsets
from hakv.common.main import build_server
from hakv.common.resp import encode


class Ctx:
    def __init__(self, resp3: bool):
        self.resp3 = resp3


def _expected(members, scores, withscores, resp3) -> bytes:
    if not withscores:
        return encode(list(members), resp3)
    if resp3:
        return encode([[m, s] for m, s in zip(members, scores)], resp3)
    flat = []
    for m, s in zip(members, scores):
        flat += [m, s]
    return encode(flat, resp3)


SPECIAL = [0.0, -0.0, 1.0, -1.0, 1.5, 0.1, 1e16, 1e17, -1e17, 2.0**60, 123456789.0,
           math.inf, -math.inf, 1e-300, 5e-324, 1.7976931348623157e308]


def test_range_replies_match_the_generic_encoder():
    rnd = random.Random(7)
    # Every length around the batch threshold, members of every header size
    # (the 255/256-byte boundary of the header table), every kind of score.
    for trial in range(1500):
        n = rnd.choice([0, 1, 2, 7, 8, 9, 15, 16, 17, 100])
        members = [bytes(rnd.randrange(256) for _ in range(
            rnd.choice([0, 1, 12, 255, 256, 300]) if rnd.random() < 0.1 else rnd.randrange(1, 24)))
            for _ in range(n)]
        if trial % 4 == 0:  # all of one length (a reply path of its own)
            width = rnd.choice([0, 1, 19, 300])
            members = [bytes(rnd.randrange(256) for _ in range(width)) for _ in range(n)]
        kind = trial % 3
        scores = [rnd.choice(SPECIAL) if kind == 0 else
                  float(rnd.randrange(-10**6, 10**6)) if kind == 1 else
                  rnd.uniform(-1e9, 1e9) for _ in range(n)]
        for resp3 in (False, True):
            for withscores in (False, True):
                got = zsets._flat(Ctx(resp3), members, scores, withscores).data
                assert got == _expected(members, scores, withscores, resp3)


def test_score_texts_are_percent_17g():
    scores = SPECIAL + [float(i) for i in range(-50, 50)] + [i / 7 for i in range(50)]
    assert zsets._score_texts(scores) == [b"%.17g" % s for s in scores]


def test_bulk_scores_read_as_one_by_one():
    texts = [b"1", b"-2", b"1.5", b"000012", b".5", b"-.5", b"5.", b"-0", b"0",
             b"12345678901234567890123", b"1" * 30, b"1e5", b"-inf", b"+1", b" 1", b"1 ",
             b"", b".", b"-", b"1-2", b"--1", b"1..2", b"0x10", b"nan", b"1_0", b"\x001"]
    rnd = random.Random(3)
    for _ in range(3000):
        raws = [rnd.choice(texts) for _ in range(rnd.randrange(2, 6))]
        one_by_one = [zsets.parse_score(r) for r in raws]
        bulk = zsets._plain_scores(raws)
        if bulk is not None:
            assert bulk == one_by_one
            assert [math.copysign(1, s) for s in bulk] == [math.copysign(1, s) for s in one_by_one]
        elif all(r and not r.translate(None, b"0123456789.-") and len(r) < 24 for r in raws):
            # Only a refused text may send plain ones to the exact pass.
            assert None in one_by_one


def test_double_replies_match_the_generic_encoder():
    """ZSCORE, ZINCRBY and ZADD INCR answer RESP2 with the bulk text as bytes
    (the encoder's fast path): the bytes on the wire are what a float reply
    gives, in both protocols, for every kind of score."""
    server = build_server(["--port", "0", "--save", ""]).server
    for resp3 in (False, True):
        c = connect(server)
        if resp3:
            run(c, "HELLO", "3")
        for i, score in enumerate(SPECIAL):
            key = "z%d%d" % (resp3, i)
            text = b"%.17g" % score
            assert run(c, "ZADD", key, text, "m") == b":1\r\n"
            # As stored (a small set keeps -0.0 as 0, as Redis's listpack does).
            expected = encode(server.keyspace[0].data[key.encode()].dict[b"m"], resp3)
            assert run(c, "ZSCORE", key, "m") == expected
            assert run(c, "ZINCRBY", key, "0", "m") == expected  # unchanged: same reply
            assert run(c, "ZADD", key, "INCR", "0", "m") == expected
            assert run(c, "ZINCRBY", key, "1", "m") == encode(score + 1, resp3)
            assert run(c, "ZINCRBY", "new" + key, text, "m") == encode(score, resp3)
        assert run(c, "ZSCORE", "z%d0" % resp3, "nomember") == encode(None, resp3)
    for resp3 in (False, True):
        c = connect(server)
        if resp3:
            run(c, "HELLO", "3")
        for use_max in (False, True):
            name = "ZPOPMAX" if use_max else "ZPOPMIN"
            key = "pop%d%d" % (resp3, use_max)
            for i, score in enumerate(SPECIAL):
                run(c, "ZADD", key, b"%.17g" % score, "m%d" % i)
            z = server.keyspace[0].data[key.encode()]
            pairs = list(z.items())
            if use_max:
                pairs.reverse()
            (m, s), rest = pairs[0], pairs[1:]
            assert run(c, name, key) == encode([m, s], resp3)
            for count in (1, 3, 100):
                got, rest = rest[:count], rest[count:]
                if resp3:
                    expected = encode([[m, s] for m, s in got], resp3)
                else:
                    expected = encode([x for pair in got for x in pair], resp3)
                assert run(c, name, key, count) == expected
