"""RDB persistence of a running hakv-server: SAVE, BGSAVE, save points,
LASTSAVE, shutdown, loading at start (and -LOADING meanwhile), corrupt dumps
refused, MISCONF, DUMP / RESTORE, INFO persistence.

Values of every type are created with RESTORE (payloads from rdb.py), so the
tests do not depend on the data-type command families; what a server holds
is read back from the dump it SAVEs.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import deque

import hiredis
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hakv.common import rdb
from persistence_support import (expected, fill_strings, norm, persistence_info, populate,
                                 raw, read_dump, saved_contents, start_refused, wait_for, zset)


# ------------------------------------------------------------------ helpers


def mixed_dataset() -> dict:
    """{(db, key): (value, expire_ms or None)} with every type, small and big."""
    future = int(time.time() * 1000) + 3_600_000
    return {
        (0, b"str"): (b"hello", None),
        (0, b"int"): (b"12345", None),
        (0, b"neg"): (b"-42", None),
        (0, b"big-compressible"): (b"persistence " * 500, None),
        (0, b"binary\x00\xff"): (bytes(range(256)), None),
        (0, b"list-small"): (deque([b"a", b"b", b"1"]), None),
        (0, b"list-big"): (deque(b"item-%d" % i for i in range(3000)), None),
        (0, b"hash-small"): ({b"f1": b"v1", b"n": b"7"}, None),
        (0, b"hash-big"): ({b"field-%d" % i: b"val-%d" % i for i in range(600)}, None),
        (0, b"set-ints"): ({b"1", b"2", b"300000", b"-5"}, None),
        (0, b"set-big"): ({b"m-%d" % i for i in range(700)}, None),
        (0, b"zset-small"): (zset([(b"a", 1.5), (b"b", -2.0), (b"inf", float("inf"))]), None),
        (0, b"zset-big"): (zset([(b"z-%d" % i, i / 7) for i in range(300)]), None),
        (0, b"ttl-str"): (b"expires later", future),
        (0, b"ttl-hash"): ({b"a": b"1"}, future + 1234),
        (5, b"other-db"): (b"in db 5", None),
        (5, b"other-list"): (deque([b"x", b"y"]), future),
    }


# ------------------------------------------------------------------ SAVE and load


def test_save_restart_round_trip_all_types(make_hakv):
    proc = make_hakv()
    r = proc.client()
    data = mixed_dataset()
    populate(r, data)
    before = r.lastsave()
    time.sleep(1.1)  # LASTSAVE has a one second resolution
    r.set("soon-gone", "x", px=500)
    assert r.save() is True
    assert r.lastsave() > before
    saved = read_dump(os.path.join(proc.workdir, "dump.rdb"))
    assert saved.pop((0, b"soon-gone"))[0] == ("string", b"x")
    assert saved == expected(data)

    time.sleep(0.6)  # soon-gone's TTL passes while the node is down
    proc.restart()
    r = proc.client()
    assert r.get("str") == b"hello"
    assert proc.client(db=5).get("other-db") == b"in db 5"
    stats = persistence_info(r)
    assert stats["rdb_last_load_keys_loaded"] == len(data)
    assert stats["rdb_last_load_keys_expired"] == 1  # dropped at load, as on a Redis primary
    assert stats["rdb_changes_since_last_save"] == 0
    assert saved_contents(proc, r) == expected(data)


def test_save_reply_and_info_fields(hakv, r):
    assert r.set("a", "1")
    assert persistence_info(r)["rdb_changes_since_last_save"] == 1
    assert raw(hakv.client()).execute_command("SAVE") == b"OK"
    fields = r.info("persistence")
    for name in ("loading", "async_loading", "rdb_changes_since_last_save",
                 "rdb_bgsave_in_progress", "rdb_last_save_time", "rdb_last_bgsave_status",
                 "rdb_last_bgsave_time_sec", "rdb_current_bgsave_time_sec", "rdb_saves",
                 "rdb_last_load_keys_expired", "rdb_last_load_keys_loaded", "aof_enabled",
                 "aof_rewrite_in_progress", "aof_rewrite_scheduled",
                 "aof_last_rewrite_time_sec", "aof_current_rewrite_time_sec",
                 "aof_last_bgrewrite_status", "aof_rewrites", "aof_last_write_status"):
        assert name in fields, name
    assert fields["rdb_changes_since_last_save"] == 0
    assert fields["rdb_saves"] == 1
    assert fields["rdb_last_bgsave_status"] == "ok"
    assert fields["aof_enabled"] == 0
    assert fields["loading"] == 0
    assert abs(fields["rdb_last_save_time"] - time.time()) < 5


def test_bgsave_keeps_serving_clients(make_hakv):
    proc = make_hakv()
    r = proc.client()
    n = 150_000
    fill_strings(r, n)
    assert raw(proc.client()).execute_command("BGSAVE") == b"Background saving started"
    with pytest.raises(redis.ResponseError, match="Background save already in progress"):
        r.execute_command("BGSAVE")
    with pytest.raises(redis.ResponseError, match="Background save already in progress"):
        r.execute_command("BGSAVE", "SCHEDULE")
    with pytest.raises(redis.ResponseError, match="Background save already in progress"):
        r.execute_command("SAVE")
    # While the child writes, the parent answers (and takes writes that are
    # not part of the snapshot).
    served = 0
    worst = 0.0
    while persistence_info(r)["rdb_bgsave_in_progress"] == 1:
        t0 = time.perf_counter()
        assert r.set("during:%d" % served, "x")
        assert r.get("key:%d" % (served % n)) == b"value-%d" % (served % n)
        worst = max(worst, time.perf_counter() - t0)
        served += 1
    assert served > 0, "the BGSAVE ended before a single request was made"
    assert worst < 1.0, "a request waited %.3fs during BGSAVE" % worst
    stats = persistence_info(r)
    assert stats["rdb_last_bgsave_status"] == "ok"
    assert stats["rdb_changes_since_last_save"] == served  # the writes made meanwhile
    dump = read_dump(os.path.join(proc.workdir, "dump.rdb"))
    assert len(dump) == n  # the snapshot is the dataset at fork time
    assert dump[(0, b"key:123")] == (("string", b"value-123"), None)
    assert not [f for f in os.listdir(proc.workdir) if f.startswith("temp-")]


def test_bgsave_syntax_and_lastsave(hakv, r):
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("BGSAVE", "NOW")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("BGSAVE", "SCHEDULE", "X")
    before = r.lastsave()
    time.sleep(1.05)
    assert raw(hakv.client()).execute_command("BGSAVE", "SCHEDULE") == (
        b"Background saving started")
    wait_for(lambda: r.lastsave() > before, what="the BGSAVE to finish")


def test_bgsave_inside_multi_is_scheduled(hakv, r):
    pipe = raw(hakv.client()).pipeline(transaction=True)
    pipe.set("a", "1")
    pipe.execute_command("BGSAVE")
    assert pipe.execute() == [b"OK", b"Background saving scheduled"]
    wait_for(lambda: persistence_info(r)["rdb_saves"] >= 1, what="the scheduled BGSAVE")


def test_save_points_trigger_bgsave(make_hakv):
    proc = make_hakv("--save", "1", "3")
    r = proc.client()
    assert r.config_get("save") == {"save": "1 3"}
    r.set("a", 1)
    r.set("b", 2)
    time.sleep(1.3)
    assert persistence_info(r)["rdb_saves"] == 0  # two changes are below the save point
    r.set("c", 3)
    wait_for(lambda: persistence_info(r)["rdb_saves"] >= 1, what="a save point BGSAVE")
    assert persistence_info(r)["rdb_changes_since_last_save"] == 0
    assert len(read_dump(os.path.join(proc.workdir, "dump.rdb"))) == 3
    r.config_set("save", "")
    assert r.config_get("save") == {"save": ""}
    for i in range(5):
        r.set("more:%d" % i, i)
    time.sleep(1.5)
    assert persistence_info(r)["rdb_saves"] == 1


def shutdown_raw(proc, *args) -> None:
    """SHUTDOWN on a plain socket (redis-py retries a closed connection for seconds)."""
    from hakv.common.resp import encode_command

    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as s:
        s.sendall(encode_command(b"SHUTDOWN", *[a.encode() for a in args]))
        while s.recv(65536):
            pass
    proc.proc.wait(10)


def test_shutdown_save_nosave_and_sigterm(make_hakv):
    proc = make_hakv("--save", "3600", "1")
    dump = os.path.join(proc.workdir, "dump.rdb")
    r = proc.client()
    r.set("k", "v1")
    shutdown_raw(proc, "NOSAVE")
    assert not os.path.exists(dump)

    proc.start()
    r = proc.client()
    assert r.get("k") is None
    r.set("k", "v2")
    proc.stop()  # SIGTERM: save points are configured, so it saves
    assert read_dump(dump) == {(0, b"k"): (("string", b"v2"), None)}

    proc.start()
    r = proc.client()
    assert r.get("k") == b"v2"
    r.config_set("save", "")
    r.set("k", "v3")
    proc.stop()  # no save points: SIGTERM does not save
    assert read_dump(dump)[(0, b"k")][0] == ("string", b"v2")

    proc.start()
    r = proc.client()
    r.set("k", "v4")
    shutdown_raw(proc, "SAVE")  # SHUTDOWN SAVE saves even without save points
    assert read_dump(dump)[(0, b"k")][0] == ("string", b"v4")


def test_crash_during_save_keeps_previous_dump(make_hakv):
    proc = make_hakv()
    r = proc.client()
    fill_strings(r, 100_000)
    assert r.save()
    dump = os.path.join(proc.workdir, "dump.rdb")
    good = open(dump, "rb").read()
    r.set("after-first-save", "1")

    def save_forever():
        client = proc.client(socket_timeout=30, retry=Retry(NoBackoff(), 0))
        try:
            while True:
                client.save()
        except (redis.ConnectionError, redis.TimeoutError):
            pass

    saver = threading.Thread(target=save_forever, daemon=True)
    saver.start()
    wait_for(lambda: [f for f in os.listdir(proc.workdir) if f.startswith("temp-")],
             what="a SAVE in progress")
    proc.kill()
    saver.join(10)
    # The dump is one complete snapshot, never a partial file.
    contents = read_dump(dump)
    assert len(contents) in (100_000, 100_001)
    if len(contents) == 100_000:
        assert open(dump, "rb").read() == good
    proc.start()
    assert proc.client().dbsize() == len(contents)


def test_loading_replies_while_loading(make_hakv, tmp_path):
    workdir = tmp_path / "big"
    workdir.mkdir()
    n = 400_000
    with open(workdir / "dump.rdb", "wb") as f:
        w = rdb.RdbWriter(f)
        w.write_header({"redis-ver": "7.0.15"})
        w.write_db(0, n, 0, ((b"key:%d" % i, b"value-%d" % i, None) for i in range(n)))
        w.finish()
    proc = make_hakv(name="big", wait=False)
    seen_loading = saw_loading_info = False
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            get_reply, info_reply = raw_requests(proc.port, [b"GET key:7", b"INFO persistence"])
        except OSError:
            time.sleep(0.01)
            continue
        if isinstance(get_reply, hiredis.ReplyError):
            assert str(get_reply) == "LOADING Redis is loading the dataset in memory"
            seen_loading = True
            saw_loading_info |= b"loading:1" in info_reply
        else:
            assert get_reply == b"value-7"
            break
        time.sleep(0.01)
    assert seen_loading, "no -LOADING reply while %d keys were loading" % n
    assert saw_loading_info
    r = proc.client()
    assert r.dbsize() == n
    assert persistence_info(r)["loading"] == 0


def raw_requests(port: int, lines: list) -> list:
    """Send inline commands on a fresh connection; the parsed replies (errors
    as hiredis.ReplyError, not raised)."""
    reader = hiredis.Reader()
    replies: list = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"".join(line + b"\r\n" for line in lines))
        while len(replies) < len(lines):
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            reader.feed(chunk)
            while True:
                reply = reader.gets()
                if reply is False:
                    break
                replies.append(reply)
    return replies


# ------------------------------------------------------------------ bad files


@pytest.mark.parametrize("damage, message", [
    ("flip", "Wrong RDB checksum"),
    ("truncate", "Unexpected EOF"),
    ("garbage", "Wrong signature"),
])
def test_corrupt_rdb_refused_and_left_untouched(make_hakv, tmp_path, damage, message):
    source = make_hakv(name="source")
    r = source.client()
    populate(r, mixed_dataset())
    assert r.save()
    good = open(os.path.join(source.workdir, "dump.rdb"), "rb").read()
    source.stop()

    bad = bytearray(good)
    if damage == "flip":
        bad[len(bad) // 2] ^= 0x55
    elif damage == "truncate":
        bad = bad[: len(bad) * 2 // 3]
    else:
        bad = bytearray(b"NOT AN RDB FILE AT ALL" * 10)
    workdir = tmp_path / "victim"
    workdir.mkdir()
    (workdir / "dump.rdb").write_bytes(bytes(bad))
    proc, code = start_refused(make_hakv, "victim", "--save", "60", "1")
    assert code != 0
    output = proc.output()
    assert "Fatal error loading the DB" in output and message in output, output
    assert (workdir / "dump.rdb").read_bytes() == bytes(bad)
    assert sorted(os.listdir(workdir)) == sorted(["dump.rdb", os.path.basename(proc.log_path)])


def test_more_databases_than_configured_refused(make_hakv, tmp_path):
    workdir = tmp_path / "dbs"
    workdir.mkdir()
    with open(workdir / "dump.rdb", "wb") as f:
        w = rdb.RdbWriter(f)
        w.write_header({"redis-ver": "7.0.15"})
        w.write_db(20, 1, 0, [(b"k", b"v", None)])
        w.finish()
    proc, code = start_refused(make_hakv, "dbs")
    assert code != 0
    assert "more than 16 databases" in proc.output()


# ------------------------------------------------------------------ MISCONF


def test_failed_bgsave_stops_writes_until_a_save_succeeds(make_hakv):
    proc = make_hakv("--save", "3600", "1")
    r = proc.client()
    r.set("a", "1")
    os.mkdir(os.path.join(proc.workdir, "blocked.rdb"))  # renaming onto a directory fails
    r.config_set("dbfilename", "blocked.rdb")
    assert raw(proc.client()).execute_command("BGSAVE") == b"Background saving started"
    wait_for(lambda: persistence_info(r)["rdb_last_bgsave_status"] == "err", what="the BGSAVE to fail")
    assert persistence_info(r)["rdb_bgsave_in_progress"] == 0
    with pytest.raises(redis.ResponseError, match="^MISCONF Redis is configured to save RDB"):
        r.set("b", "2")
    assert r.get("a") == b"1"  # reads still work
    with pytest.raises(redis.ResponseError):
        r.execute_command("SAVE")
    r.config_set("stop-writes-on-bgsave-error", "no")
    assert r.set("b", "2")
    r.config_set("stop-writes-on-bgsave-error", "yes")
    with pytest.raises(redis.ResponseError, match="^MISCONF"):
        r.set("c", "3")
    r.config_set("dbfilename", "good.rdb")
    assert r.save()
    assert r.set("c", "3")
    assert not [f for f in os.listdir(proc.workdir) if f.startswith("temp-")]


# ------------------------------------------------------------------ DUMP / RESTORE


def test_dump_restore_every_type(r):
    data = mixed_dataset()
    for (db, key), (value, _) in data.items():
        if db != 0:
            continue
        payload = rdb.dump_payload(value)
        assert r.restore(key, 0, payload) == b"OK"
        dumped = r.dump(key)
        assert norm(rdb.load_payload(dumped)) == norm(value)
        if not isinstance(value, (set, dict)):  # (unordered types may iterate differently)
            assert dumped == payload  # same encoder, same bytes
    assert r.dump("missing") is None


def raw_call(port: int, *args):
    """One command on a fresh connection; an error comes back as its full text
    (prefix included) in a hiredis.ReplyError instead of being raised."""
    from hakv.common.resp import encode_command

    reader = hiredis.Reader()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(encode_command(*[a if isinstance(a, bytes) else str(a).encode()
                                   for a in args]))
        while True:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            reader.feed(chunk)
            reply = reader.gets()
            if reply is not False:
                return reply


def error_text(port: int, *args) -> str:
    reply = raw_call(port, *args)
    assert isinstance(reply, hiredis.ReplyError), reply
    return str(reply)


def test_restore_options_and_errors(hakv, r):
    port = hakv.port
    payload = rdb.dump_payload(b"value")
    other = rdb.dump_payload(deque([b"x"]))
    assert r.restore("k", 0, payload) == b"OK"
    assert error_text(port, "RESTORE", "k", 0, payload) == "BUSYKEY Target key name already exists."
    # BUSYKEY is checked before the TTL.
    assert error_text(port, "RESTORE", "k", "notanumber", payload).startswith("BUSYKEY")
    assert r.restore("k", 0, other, replace=True) == b"OK"
    assert rdb.load_payload(r.dump("k")) == deque([b"x"])
    assert error_text(port, "RESTORE", "n1", -1, payload) == "ERR Invalid TTL value, must be >= 0"
    assert error_text(port, "RESTORE", "n1", "abc", payload) == (
        "ERR value is not an integer or out of range")
    wrong = "ERR DUMP payload version or checksum are wrong"
    assert error_text(port, "RESTORE", "n1", 0, payload[:-1] + bytes([payload[-1] ^ 1])) == wrong
    assert error_text(port, "RESTORE", "n1", 0, b"xx") == wrong
    # A payload from a newer RDB version is refused like Redis 7.0 does.
    from hakv.common.crc64 import crc64
    newer = payload[:-10] + (11).to_bytes(2, "little")
    newer += crc64(newer).to_bytes(8, "little")
    assert error_text(port, "RESTORE", "n1", 0, newer) == wrong
    # Right checksum, nonsense inside.
    body = bytes([4]) + b"\xff\xff\xff" + (10).to_bytes(2, "little")
    bad = body + crc64(body).to_bytes(8, "little")
    assert error_text(port, "RESTORE", "n1", 0, bad) == "ERR Bad data format"
    assert error_text(port, "RESTORE", "n1", 0, payload, "FOO") == "ERR syntax error"
    assert error_text(port, "RESTORE", "n1", 0, payload, "IDLETIME", 1, "FREQ", 1) == (
        "ERR syntax error")
    assert error_text(port, "RESTORE", "n1", 0, payload, "IDLETIME", -1) == (
        "ERR Invalid IDLETIME value, must be >= 0")
    assert error_text(port, "RESTORE", "n1", 0, payload, "FREQ", 256) == (
        "ERR Invalid FREQ value, must be >= 0 and <= 255")
    assert error_text(port, "RESTORE", "n1") == (
        "ERR wrong number of arguments for 'restore' command")
    assert r.execute_command("RESTORE", "n1", 0, payload, "IDLETIME", 10) == b"OK"
    assert r.execute_command("RESTORE", "n2", 0, payload, "FREQ", 5, "REPLACE") == b"OK"
    assert r.get("n1") == r.get("n2") == b"value"


def test_restore_ttl_forms(make_hakv):
    proc = make_hakv()
    r = proc.client()
    payload = rdb.dump_payload(b"v")
    now = int(time.time() * 1000)
    assert r.restore("rel", 60_000, payload) == b"OK"
    assert r.restore("abs", now + 120_000, payload, absttl=True) == b"OK"
    # Already expired: nothing is created; with REPLACE the old key goes.
    assert r.restore("gone", now - 1000, payload, absttl=True) == b"OK"
    assert r.get("gone") is None
    r.set("replaced", "old")
    assert r.restore("replaced", now - 1000, payload, absttl=True, replace=True) == b"OK"
    assert r.get("replaced") is None
    contents = saved_contents(proc, r)
    assert (0, b"gone") not in contents and (0, b"replaced") not in contents
    rel = contents[(0, b"rel")][1]
    assert now + 59_000 <= rel <= now + 65_000
    assert contents[(0, b"abs")][1] == now + 120_000


def test_debug_reload(r):
    populate(r, mixed_dataset())
    r.set("plain", "1")
    before = r.dbsize()
    assert r.execute_command("DEBUG", "RELOAD") == b"OK"
    assert r.dbsize() == before
    assert r.get("plain") == b"1"
    assert norm(rdb.load_payload(r.dump("zset-small"))) == norm(
        mixed_dataset()[(0, b"zset-small")][0])


def test_shutdown_during_bgsave_kills_the_child(make_hakv):
    proc = make_hakv("--save", "3600", "1")
    r = proc.client()
    fill_strings(r, 150_000)
    assert raw(proc.client()).execute_command("BGSAVE") == b"Background saving started"
    assert persistence_info(r)["rdb_bgsave_in_progress"] == 1
    proc.stop()  # SIGTERM: the child is killed, then the final save runs in the node
    output = proc.output()
    assert "There is a child saving an .rdb. Killing it!" in output
    assert "Saving the final RDB snapshot before exiting." in output
    assert not [f for f in os.listdir(proc.workdir) if f.startswith("temp-")]
    assert len(read_dump(os.path.join(proc.workdir, "dump.rdb"))) == 150_000
