"""SORT / SORT_RO and the GEO commands on a running hakv-server: replies,
errors, the ACL rule on BY/GET patterns, scripts, keyspace events, WATCH,
propagation (AOF and a real Redis replica) and the command table entries.
Reply-for-reply equality with Redis is tests/interop/test_sort_geo_diff.py."""

from __future__ import annotations

import os

import pytest
import redis

from types_support import KeyEvents, error_of, redis_replica_of, wait_replicated
from types_support import server  # noqa: F401 (fixture)

PALERMO = (13.361389, 38.115556)
CATANIA = (15.087269, 37.502669)


@pytest.fixture
def r(server):  # noqa: F811
    """A client on an empty server, replies decoded to str."""
    client = server.client(decode_responses=True)
    client.flushall()
    yield client
    client.close()


def _plain(server):
    """RESP2 with replies as sent (no redis-py reply conversions)."""
    client = server.client(protocol=2, decode_responses=True)
    client.response_callbacks.clear()
    return client


def _sicily(r):
    return r.execute_command("GEOADD", "Sicily", *PALERMO, "Palermo", *CATANIA, "Catania")


# ------------------------------------------------------------------ GEO


def test_geoadd_stores_redis_geohash_scores(r):
    assert _sicily(r) == 2
    # The 52-bit interleaved geohashes Redis stores for these two points.
    assert r.zscore("Sicily", "Palermo") == 3479099956230698
    assert r.zscore("Sicily", "Catania") == 3479447370796909
    assert r.execute_command("GEOADD", "Sicily", "NX", *PALERMO, "Palermo") == 0
    assert r.execute_command("GEOADD", "Sicily", "XX", "CH", 13, 38, "Palermo", 1, 1, "x") == 1
    assert r.zscore("Sicily", "x") is None


def test_geopos_geohash_geodist(r):
    _sicily(r)
    raw = r.execute_command("GEOPOS", "Sicily", "Palermo", "nope")
    assert raw[1] is None
    assert [float(v) for v in raw[0]] == pytest.approx(PALERMO, abs=1e-5)
    assert r.execute_command("GEOHASH", "Sicily", "Palermo", "Catania", "nope") == [
        "sqc8b49rny0", "sqdtr74hyu0", None]
    assert r.execute_command("GEODIST", "Sicily", "Palermo", "Catania") == 166274.1516
    assert r.execute_command("GEODIST", "Sicily", "Palermo", "Catania", "km") == 166.2742
    assert r.execute_command("GEODIST", "Sicily", "Palermo", "Catania", "MI") == 103.3182
    assert r.execute_command("GEODIST", "Sicily", "Palermo", "nope") is None
    assert r.execute_command("GEODIST", "nokey", "a", "b") is None


def test_geo_errors(r):
    r.set("str", "x")
    assert error_of(r, "GEOADD", "g", 200, 10, "m") == \
        "invalid longitude,latitude pair 200.000000,10.000000"
    assert error_of(r, "GEOADD", "g", "NX", "XX", 1, 1, "m") == "syntax error"
    assert error_of(r, "GEOADD", "g", 1, 1, "m", 2) == "syntax error"
    assert error_of(r, "GEOADD", "g", "a", 1, "m") == "value is not a valid float"
    assert error_of(r, "GEOADD", "str", 1, 1, "m").startswith("WRONGTYPE")
    assert error_of(r, "GEODIST", "g", "a", "b", "parsec") == \
        "unsupported unit provided. please use M, KM, FT, MI"
    assert error_of(r, "GEOSEARCH", "g", "FROMLONLAT", 1, 1, "ASC", "WITHDIST") == \
        "exactly one of BYRADIUS and BYBOX can be specified for GEOSEARCH"
    assert error_of(r, "GEOSEARCH", "g", "BYRADIUS", 1, "km", "ASC", "WITHDIST") == \
        "exactly one of FROMMEMBER or FROMLONLAT can be specified for GEOSEARCH"
    assert error_of(r, "GEOSEARCH", "g", "FROMLONLAT", 1, 1, "BYRADIUS", -1, "km") == \
        "radius cannot be negative"
    assert error_of(r, "GEOSEARCH", "g", "FROMLONLAT", 1, 1, "BYRADIUS", 1, "km", "ANY") == \
        "the ANY argument requires COUNT argument"
    assert error_of(r, "GEORADIUS", "g", 1, 1, 1, "km", "STORE", "d", "WITHDIST") == \
        "STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD " \
        "options"
    assert error_of(r, "GEORADIUS_RO", "g", 1, 1, 1, "km", "STORE", "d") == "syntax error"
    _sicily(r)
    assert error_of(r, "GEOSEARCH", "Sicily", "FROMMEMBER", "nope", "BYBOX", 1, 1, "km") == \
        "could not decode requested zset member"


def test_geosearch_and_radius(r, server):
    _sicily(r)
    r.execute_command("GEOADD", "Sicily", 12.758489, 38.788135, "edge1", 17.241510, 38.788135,
                      "edge2")
    got = r.execute_command("GEOSEARCH", "Sicily", "FROMLONLAT", 15, 37, "BYRADIUS", 200, "km",
                            "ASC", "WITHDIST")
    assert got == [["Catania", "56.4413"], ["Palermo", "190.4424"]]
    got = r.execute_command("GEOSEARCH", "Sicily", "FROMLONLAT", 15, 37, "BYBOX", 400, 400,
                            "km", "ASC", "WITHCOORD", "WITHDIST", "WITHHASH")
    assert [g[0] for g in got] == ["Catania", "Palermo", "edge2", "edge1"]
    assert got[0][1] == "56.4413" and got[0][2] == 3479447370796909
    assert got[0][3] == [15.08726745843887329, 37.50266842333162032]  # RESP3 doubles
    c2 = _plain(server)
    try:  # RESP2: Redis's "human" long double texts
        assert c2.execute_command("GEOPOS", "Sicily", "Catania") == [
            ["15.08726745843887329", "37.50266842333162032"]]
    finally:
        c2.close()
    assert r.execute_command("GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYRADIUS", 200,
                             "km", "DESC", "COUNT", 1) == ["Catania"]
    # Unsorted: Redis's cell-by-cell scan order (checked against redis-server).
    assert r.execute_command("GEORADIUSBYMEMBER_RO", "Sicily", "Palermo", 100, "km") == [
        "Palermo", "edge1"]
    assert r.execute_command("GEOSEARCH", "nokey", "FROMMEMBER", "x", "BYRADIUS", 1, "m") == []


def test_geo_store_forms_and_events(r, server):
    _sicily(r)
    with KeyEvents(r, server) as events:
        assert r.execute_command("GEOSEARCHSTORE", "dst", "Sicily", "FROMLONLAT", 15, 37,
                                 "BYRADIUS", 200, "km", "STOREDIST") == 2
        assert r.execute_command("GEORADIUS", "Sicily", 15, 37, 200, "km", "STORE", "dst2") == 2
        assert r.execute_command("GEOADD", "Sicily", 1, 2, "new") == 1
        assert r.execute_command("GEOSEARCHSTORE", "dst", "nokey", "FROMLONLAT", 15, 37,
                                 "BYRADIUS", 200, "km") == 0
        assert events.take(4) == [(b"geosearchstore", b"dst"), (b"georadiusstore", b"dst2"),
                                  (b"zadd", b"Sicily"), (b"del", b"dst")]
    assert r.zscore("dst2", "Catania") == 3479447370796909
    assert r.exists("dst") == 0


# ------------------------------------------------------------------ SORT


def test_sort_numeric_alpha_limit(r):
    r.rpush("l", 3, 1, 10, 2, "2.5", "-1")
    assert r.execute_command("SORT", "l") == ["-1", "1", "2", "2.5", "3", "10"]
    assert r.execute_command("SORT", "l", "DESC", "LIMIT", 1, 2) == ["3", "2.5"]
    assert r.execute_command("SORT", "l", "ALPHA") == ["-1", "1", "10", "2", "2.5", "3"]
    assert r.execute_command("SORT_RO", "l", "LIMIT", 4, 100) == ["3", "10"]
    assert r.execute_command("SORT", "l", "LIMIT", 10, 1) == []
    r.rpush("w", "b", "a")
    assert error_of(r, "SORT", "w") == "One or more scores can't be converted into double"
    assert r.execute_command("SORT", "w", "ALPHA") == ["a", "b"]
    for bad in ("1e400", "1e-400", "1e-310", "nan", "1 ", "0x"):  # ERANGE, subnormal too
        r.delete("one")
        r.rpush("one", bad)
        assert error_of(r, "SORT", "one") == "One or more scores can't be converted into double"
    r.delete("one")
    r.rpush("one", " 5", "0x10", "", "-inf", "1e308")  # what strtod reads to the end
    assert r.execute_command("SORT", "one") == ["-inf", "", " 5", "0x10", "1e308"]
    assert r.execute_command("SORT", "nokey") == []
    r.set("s", "x")
    assert error_of(r, "SORT", "s").startswith("WRONGTYPE")
    assert error_of(r, "SORT", "l", "LIMIT", 1) == "syntax error"
    assert error_of(r, "SORT", "l", "LIMIT", "a", 1) == \
        "value is not an integer or out of range"
    assert error_of(r, "SORT_RO", "l", "STORE", "x") == "syntax error"


def test_sort_by_get_patterns(r):
    r.rpush("ids", 1, 2, 3)
    r.mset({"w_1": 30, "w_2": 10, "w_3": 20, "n_1": "one", "n_2": "two"})
    r.hset("h_1", mapping={"f": 3, "name": "uno"})
    r.hset("h_2", mapping={"f": 1, "name": "dos"})
    assert r.execute_command("SORT", "ids", "BY", "w_*") == ["2", "3", "1"]
    assert r.execute_command("SORT", "ids", "BY", "h_*->f") == ["3", "2", "1"]  # 3: f missing
    assert r.execute_command("SORT", "ids", "BY", "w_*", "GET", "#", "GET", "n_*",
                             "GET", "h_*->name") == ["2", "two", "dos", "3", None, None,
                                                     "1", "one", "uno"]
    assert r.execute_command("SORT", "ids", "BY", "nosort", "DESC") == ["3", "2", "1"]
    assert r.execute_command("SORT", "ids", "BY", "nosort", "GET", "fixed") == [None] * 3
    r.zadd("z", {"a": 3, "b": 1, "c": 2})
    assert r.execute_command("SORT", "z", "BY", "nosort") == ["b", "c", "a"]
    assert r.execute_command("SORT", "z", "ALPHA", "DESC") == ["c", "b", "a"]
    assert r.object("encoding", "z") == "skiplist"  # Redis converts the set when sorting it


def test_sort_store_events_watch(r, server):
    r.rpush("l", 3, 1, 2)
    with KeyEvents(r, server) as events:
        assert r.execute_command("SORT", "l", "STORE", "out") == 3
        assert r.execute_command("SORT", "l", "GET", "nope_*", "STORE", "out2") == 3
        assert r.execute_command("SORT", "nokey", "STORE", "out") == 0
        assert events.take(3) == [(b"sortstore", b"out"), (b"sortstore", b"out2"),
                                  (b"del", b"out")]
    assert r.lrange("out2", 0, -1) == ["", "", ""]
    pipe = r.pipeline()
    pipe.watch("out3")
    r.execute_command("SORT", "l", "STORE", "out3")
    pipe.multi()
    pipe.get("x")
    with pytest.raises(redis.WatchError):
        pipe.execute()


def test_sort_set_nosort_in_script_is_sorted(r):
    r.sadd("s", *"qwertyuiopasdfghjkl")
    got = r.eval("return redis.call('SORT', KEYS[1], 'BY', 'nosort')", 1, "s")
    assert got == sorted("qwertyuiopasdfghjkl")


def test_sort_acl_by_get_need_all_keys(r, server):
    r.rpush("l", 2, 1)
    r.execute_command("ACL", "SETUSER", "limited", "on", "nopass", "+@all", "~l", "~out")
    c = server.client(username="limited", password="x", decode_responses=True)
    try:
        assert c.execute_command("SORT", "l") == ["1", "2"]
        assert c.execute_command("SORT", "l", "BY", "nosort") == ["2", "1"]
        for opt in ("BY", "GET"):
            with pytest.raises(redis.ResponseError) as info:
                c.execute_command("SORT", "l", opt, "w_*")
            assert str(info.value) == \
                "%s option of SORT denied due to insufficient ACL permissions." % opt
        r.execute_command("ACL", "SETUSER", "limited", "%R~*")
        assert c.execute_command("SORT", "l", "BY", "w_*", "STORE", "out") == 2
    finally:
        c.close()


def test_command_table_entries(server):
    raw = _plain(server)
    try:
        _command_table_checks(raw)
    finally:
        raw.close()


def _command_table_checks(r):
    keys = r.execute_command("COMMAND", "GETKEYS", "SORT", "l", "LIMIT", 0, 1, "GET", "store",
                             "STORE", "a", "STORE", "b")
    assert keys == ["l", "b"]
    assert r.execute_command("COMMAND", "GETKEYS", "GEORADIUS", "g", 1, 2, 3, "km",
                             "STORE", "x", "STOREDIST", "y") == ["g", "y"]
    assert r.execute_command("COMMAND", "GETKEYS", "GEOSEARCHSTORE", "d", "s", "FROMMEMBER",
                             "m", "BYRADIUS", 1, "m") == ["d", "s"]
    info = r.execute_command("COMMAND", "INFO", "sort", "georadius_ro", "geosearchstore")
    assert info[0][:6] == ["sort", -2, ["write", "denyoom", "movablekeys"], 1, 1, 1] or (
        info[0][1] == -2 and set(info[0][2]) == {"write", "denyoom", "movablekeys"})
    assert info[1][1:6] == [-6, ["readonly"], 1, 1, 1]
    assert info[2][1] == -8 and info[2][3:6] == [1, 2, 1]


# ------------------------------------------------------------------ propagation


def test_propagation_to_aof(make_hakv):
    proc = make_hakv("--appendonly", "yes")
    c = proc.client()
    try:
        _sicily(c)
        c.rpush("l", 2, 1)
        c.execute_command("SORT", "l", "STORE", "sorted")
        c.eval("return redis.call('GEOADD', KEYS[1], 1, 2, 'in-script')", 1, "g2")
        c.execute_command("GEOADD", "Sicily", "NX", *PALERMO, "Palermo")  # no change: not written
        incr = open(os.path.join(proc.workdir, "appendonlydir", "appendonly.aof.1.incr.aof"),
                    "rb").read()
    finally:
        c.close()
    # GEOADD is written as the ZADD it ran (computed scores), SORT ... STORE as sent.
    assert b"zadd" in incr and b"3479099956230698" in incr and b"GEOADD" not in incr
    assert incr.count(b"3479099956230698") == 1
    assert b"$2\r\ng2\r\n$16\r\n3378080408407459\r\n$9\r\nin-script" in incr
    assert b"SORT\r\n$1\r\nl\r\n$5\r\nSTORE" in incr


def test_real_redis_replica_gets_the_same_data(r, server, make_redis):
    _sicily(r)  # before the replica exists: it arrives in hakv's RDB snapshot
    replica, rr = redis_replica_of(make_redis, server)
    try:
        r.execute_command("GEOADD", "Sicily", "CH", 14, 37.9, "Mid", 13.4, 38.1, "Palermo")
        r.execute_command("GEOSEARCHSTORE", "near", "Sicily", "FROMMEMBER", "Mid", "BYRADIUS",
                          150, "km", "STOREDIST")
        r.execute_command("GEORADIUS", "Sicily", 15, 37, 300, "km", "COUNT", 2, "STORE", "two")
        r.sadd("s", "b", "c", "a")
        r.execute_command("SORT", "s", "BY", "nosort", "STORE", "sorted")
        wait_replicated(r, rr)
        for key in ("Sicily", "near", "two"):
            assert rr.zrange(key, 0, -1, withscores=True) == \
                [(m.encode(), s) for m, s in r.zrange(key, 0, -1, withscores=True)]
        assert rr.lrange("sorted", 0, -1) == [b"a", b"b", b"c"]
        assert r.lrange("sorted", 0, -1) == ["a", "b", "c"]
    finally:
        rr.close()
