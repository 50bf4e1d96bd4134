"""The append-only file of a running hakv-server: Redis 7's multi-part layout,
restart from the AOF, BGREWRITEAOF (also with writes during the rewrite),
CONFIG SET appendonly at runtime, aof-use-rdb-preamble no, automatic
rewrites, truncated and corrupt files, and the Redis < 7 single-file upgrade.

Values of every type are created with RESTORE (payloads from rdb.py); what a
server holds is read back from a dump it SAVEs.
"""

from __future__ import annotations

import os
import time
from collections import deque

import pytest
import redis

from hakv.common import rdb
from hakv.common.resp import encode_command
from persistence_support import (fill_strings, persistence_info, raw, saved_contents, wait_for,
                                 wait_rewrite_done, zset)


def typed_values() -> dict:
    return {
        b"list": deque(b"e%d" % i for i in range(300)),
        b"hash": {b"f%d" % i: b"v%d" % i for i in range(200)},
        b"set": {b"s%d" % i for i in range(150)} | {b"1", b"2"},
        b"zset": zset([(b"m%d" % i, i * 0.25) for i in range(200)] + [(b"top", float("inf"))]),
        b"small-zset": zset([(b"a", 1.0), (b"b", -1.5)]),
    }


def restore_all(client, values: dict, ttl_ms: int = 0) -> None:
    for key, value in values.items():
        assert client.restore(key, ttl_ms, rdb.dump_payload(value)) == b"OK"


def aof_dir(proc) -> str:
    return os.path.join(proc.workdir, "appendonlydir")


def manifest(proc) -> str:
    with open(os.path.join(aof_dir(proc), "appendonly.aof.manifest")) as f:
        return f.read()


# ------------------------------------------------------------------ layout and restart


def test_layout_and_restart_after_kill(make_hakv):
    proc = make_hakv("--appendonly", "yes")
    r = proc.client()
    assert manifest(proc) == ("file appendonly.aof.1.base.rdb seq 1 type b\n"
                              "file appendonly.aof.1.incr.aof seq 1 type i\n")
    r.set("a", "1")
    r.set("ttl", "x", px=3_600_000)
    r.incr("counter")
    r.incr("counter")
    restore_all(r, typed_values())
    proc.client(db=3).set("in-db-3", "yes")
    r.set("after-select", "db0")
    incr = open(os.path.join(aof_dir(proc), "appendonly.aof.1.incr.aof"), "rb").read()
    assert incr.startswith(encode_command(b"SELECT", b"0"))
    assert encode_command(b"SELECT", b"3") in incr
    assert b"PXAT" in incr  # relative TTLs are logged as absolute deadlines
    expected = saved_contents(proc, r)
    time.sleep(0.1)
    proc.kill()
    proc.start()
    r = proc.client()
    assert r.get("counter") == b"2"
    assert proc.client(db=3).get("in-db-3") == b"yes"
    assert saved_contents(proc, r) == expected
    assert persistence_info(r)["aof_enabled"] == 1


def test_bgrewriteaof_swaps_manifest_and_deletes_old_files(make_hakv):
    proc = make_hakv("--appendonly", "yes")
    r = proc.client()
    for i in range(100):
        r.set("k%d" % i, i)
    restore_all(r, typed_values())
    assert raw(proc.client()).execute_command("BGREWRITEAOF") == (
        b"Background append only file rewriting started")
    wait_rewrite_done(r, 1)
    assert manifest(proc) == ("file appendonly.aof.2.base.rdb seq 2 type b\n"
                              "file appendonly.aof.2.incr.aof seq 2 type i\n")
    assert sorted(os.listdir(aof_dir(proc))) == [
        "appendonly.aof.2.base.rdb", "appendonly.aof.2.incr.aof", "appendonly.aof.manifest"]
    base = open(os.path.join(aof_dir(proc), "appendonly.aof.2.base.rdb"), "rb").read()
    assert base.startswith(b"REDIS0010")
    aux = {e.name: e.value for e in rdb.load(open(os.path.join(aof_dir(proc),
                                                               "appendonly.aof.2.base.rdb"), "rb"))
           if isinstance(e, rdb.Aux)}
    assert aux[b"aof-base"] == b"1"
    r.set("after", "rewrite")
    expected = saved_contents(proc, r)
    proc.stop()
    proc.start()
    r = proc.client()
    assert r.get("after") == b"rewrite"
    assert saved_contents(proc, r) == expected
    stats = persistence_info(r)
    assert stats["aof_base_size"] > 0 and stats["aof_current_size"] >= stats["aof_base_size"]


def test_writes_during_rewrite_are_kept(make_hakv):
    proc = make_hakv("--appendonly", "yes")
    r = proc.client()
    fill_strings(r, 150_000)
    assert raw(proc.client()).execute_command("BGREWRITEAOF") == (
        b"Background append only file rewriting started")
    assert persistence_info(r)["aof_rewrite_in_progress"] == 1
    written = 0
    while persistence_info(r)["aof_rewrite_in_progress"] == 1:
        r.set("during:%d" % written, written)
        r.incr("during-counter")
        written += 1
    assert written > 0
    assert persistence_info(r)["aof_last_bgrewrite_status"] == "ok"
    time.sleep(0.1)
    proc.kill()
    proc.start()
    r = proc.client()
    assert r.get("during-counter") == b"%d" % written
    assert r.get("during:%d" % (written - 1)) == b"%d" % (written - 1)
    assert r.get("key:149999") == b"value-149999"
    assert r.dbsize() == 150_000 + written + 1


def test_bgrewriteaof_and_bgsave_one_child_at_a_time(make_hakv):
    proc = make_hakv("--appendonly", "yes")
    r = proc.client()
    c = raw(proc.client())
    fill_strings(r, 100_000)
    assert c.execute_command("BGREWRITEAOF") == b"Background append only file rewriting started"
    with pytest.raises(redis.ResponseError,
                       match="Background append only file rewriting already in progress"):
        c.execute_command("BGREWRITEAOF")
    with pytest.raises(redis.ResponseError, match="Another child process is active"):
        c.execute_command("BGSAVE")
    assert c.execute_command("BGSAVE", "SCHEDULE") == b"Background saving scheduled"
    wait_for(lambda: persistence_info(r)["rdb_saves"] >= 1, what="the scheduled BGSAVE")
    assert persistence_info(r)["aof_rewrites"] == 1
    # And the other way round: a rewrite asked for during a BGSAVE waits for it.
    assert c.execute_command("BGSAVE") == b"Background saving started"
    assert c.execute_command("BGREWRITEAOF") == (
        b"Background append only file rewriting scheduled")
    wait_for(lambda: persistence_info(r)["aof_rewrites"] >= 2, what="the scheduled rewrite")


def test_bgrewriteaof_with_appendonly_no_writes_base_only(make_hakv):
    proc = make_hakv()
    r = proc.client()
    r.set("a", "1")
    assert raw(proc.client()).execute_command("BGREWRITEAOF") == (
        b"Background append only file rewriting started")
    wait_rewrite_done(r, 1)
    assert manifest(proc) == "file appendonly.aof.1.base.rdb seq 1 type b\n"
    assert persistence_info(r)["aof_enabled"] == 0
    proc.stop()
    proc.argv = proc.argv + ["--appendonly", "yes"]
    proc.start()
    r = proc.client()
    assert r.get("a") == b"1"
    assert manifest(proc) == ("file appendonly.aof.1.base.rdb seq 1 type b\n"
                              "file appendonly.aof.1.incr.aof seq 1 type i\n")
    r.set("b", "2")
    proc.kill()
    proc.start()
    assert proc.client().get("b") == b"2"


# ------------------------------------------------------------------ runtime switch


def test_config_set_appendonly_at_runtime(make_hakv):
    proc = make_hakv()
    r = proc.client()
    for i in range(1000):
        r.set("before:%d" % i, i)
    restore_all(r, typed_values())
    assert not os.path.exists(aof_dir(proc))
    assert r.config_set("appendonly", "yes")
    wait_rewrite_done(r, 1)
    assert persistence_info(r)["aof_enabled"] == 1
    assert manifest(proc) == ("file appendonly.aof.1.base.rdb seq 1 type b\n"
                              "file appendonly.aof.1.incr.aof seq 1 type i\n")
    r.set("after", "on")
    expected = saved_contents(proc, r)
    time.sleep(0.1)
    proc.kill()
    proc.argv = proc.argv + ["--appendonly", "yes"]
    proc.start()
    r = proc.client()
    assert saved_contents(proc, r) == expected
    # Turning it off stops appending; the files stay for the next start.
    assert r.config_set("appendonly", "no")
    assert persistence_info(r)["aof_enabled"] == 0
    size = os.path.getsize(os.path.join(aof_dir(proc), "appendonly.aof.1.incr.aof"))
    r.set("while-off", "x")
    time.sleep(0.1)
    assert os.path.getsize(os.path.join(aof_dir(proc), "appendonly.aof.1.incr.aof")) == size


def test_appendonly_yes_at_start_writes_first_base_from_rdb(make_hakv):
    proc = make_hakv()
    r = proc.client()
    r.set("from-rdb", "1")
    restore_all(r, typed_values())
    assert r.save()
    expected = saved_contents(proc, r)
    proc.stop()
    proc.argv = proc.argv + ["--appendonly", "yes"]
    proc.start()
    r = proc.client()
    wait_rewrite_done(r, 1)
    assert saved_contents(proc, r) == expected
    os.unlink(os.path.join(proc.workdir, "dump.rdb"))
    r.set("more", "x")
    proc.kill()
    proc.start()
    r = proc.client()
    assert r.get("from-rdb") == b"1" and r.get("more") == b"x"


def require_commands(client, *names) -> None:
    """Skip when a data-type family is not written yet (replaying a
    command-form AOF needs RPUSH, HMSET, SADD, ZADD)."""
    specs = raw(client).execute_command("COMMAND", "INFO", *names)
    missing = [n for n, spec in zip(names, specs) if spec is None]
    if missing:
        pytest.skip("commands not implemented yet: %s" % ", ".join(missing))


def test_preamble_no_writes_commands(make_hakv):
    proc = make_hakv("--appendonly", "yes", "--aof-use-rdb-preamble", "no")
    require_commands(proc.client(), "rpush", "hmset", "sadd", "zadd", "pexpireat")
    r = proc.client()
    r.set("s", "v", px=3_600_000)
    restore_all(r, typed_values())
    proc.client(db=2).set("db2", "x")
    assert raw(proc.client()).execute_command("BGREWRITEAOF") == (
        b"Background append only file rewriting started")
    wait_rewrite_done(r, 1)
    names = sorted(os.listdir(aof_dir(proc)))
    assert "appendonly.aof.2.base.aof" in names
    base = open(os.path.join(aof_dir(proc), "appendonly.aof.2.base.aof"), "rb").read()
    assert base.startswith(b"*2\r\n$6\r\nSELECT\r\n")
    assert b"PEXPIREAT" in base and b"ZADD" in base and b"HMSET" in base
    expected = saved_contents(proc, r)
    proc.kill()
    proc.start()
    r = proc.client()
    assert saved_contents(proc, r) == expected


def test_auto_rewrite_on_growth(make_hakv):
    proc = make_hakv("--appendonly", "yes", "--auto-aof-rewrite-min-size", "20kb",
                     "--auto-aof-rewrite-percentage", "100")
    r = proc.client()
    written = 0
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.set("k", "%050d" % i)  # the same key over and over: a rewrite shrinks it
        written += len(encode_command(b"SET", b"k", b"%050d" % i))
    pipe.execute()
    wait_rewrite_done(r, 1)
    assert manifest(proc).startswith("file appendonly.aof.2.base.rdb seq 2 type b\n") or (
        persistence_info(r)["aof_rewrites"] > 1)
    # Whatever arrived after the rewrite started is at most the part of the
    # pipeline past the 20kb threshold.
    assert persistence_info(r)["aof_current_size"] < written - 20 * 1024 + 1024
    proc.kill()
    proc.start()
    assert proc.client().get("k") == b"%050d" % 999


def test_restore_is_logged_with_an_absolute_ttl(make_hakv):
    proc = make_hakv("--appendonly", "yes")
    r = proc.client()
    r.restore("k", 60_000, rdb.dump_payload(b"v"))
    incr = open(os.path.join(aof_dir(proc), "appendonly.aof.1.incr.aof"), "rb").read()
    assert b"ABSTTL" in incr
    deadline = read_dump_after_restart(proc)[(0, b"k")][1]
    assert abs(deadline - (time.time() * 1000 + 60_000)) < 10_000


def read_dump_after_restart(proc) -> dict:
    time.sleep(0.1)
    proc.kill()
    proc.start()
    return saved_contents(proc, proc.client())


# ------------------------------------------------------------------ damaged files


def _write_then_stop(make_hakv, name, n=20):
    proc = make_hakv("--appendonly", "yes", name=name)
    r = proc.client()
    for i in range(n):
        r.set("k%d" % i, i)
    proc.stop()
    return proc, os.path.join(aof_dir(proc), "appendonly.aof.1.incr.aof")


def test_truncated_tail_loads_when_allowed(make_hakv):
    proc, incr = _write_then_stop(make_hakv, "cut")
    good_size = os.path.getsize(incr)
    with open(incr, "ab") as f:
        f.write(b"*3\r\n$3\r\nset\r\n$4\r\nlost\r\n$5\r\nva")
    proc.start()
    r = proc.client()
    assert r.get("k19") == b"19" and r.get("lost") is None
    assert os.path.getsize(incr) == good_size  # truncated back to the last whole command
    assert "Truncating the AOF appendonly.aof.1.incr.aof at offset %d" % good_size in proc.output()
    r.set("next", "1")  # appends cleanly after the cut
    proc.kill()
    proc.start()
    assert proc.client().get("next") == b"1"


def test_truncated_tail_refused_when_not_allowed(make_hakv):
    proc, incr = _write_then_stop(make_hakv, "strict")
    with open(incr, "ab") as f:
        f.write(b"*3\r\n$3\r\nset\r\n$4\r\nlost\r\n$5\r\nva")
    damaged = open(incr, "rb").read()
    proc.argv = proc.argv + ["--aof-load-truncated", "no"]
    proc.start(wait=False)
    assert proc.proc.wait(30) != 0
    assert ("Unexpected end of file reading the append only file appendonly.aof.1.incr.aof"
            in proc.output())
    assert open(incr, "rb").read() == damaged


def test_incomplete_transaction_is_reverted(make_hakv):
    proc, incr = _write_then_stop(make_hakv, "multi")
    with open(incr, "ab") as f:
        f.write(encode_command(b"MULTI") + encode_command(b"SET", b"half", b"done"))
    proc.start()
    r = proc.client()
    assert r.get("half") is None and r.get("k0") == b"0"
    assert "Revert incomplete MULTI/EXEC transaction" in proc.output()


def test_transactions_replay(make_hakv):
    proc = make_hakv("--appendonly", "yes")
    r = proc.client()
    pipe = r.pipeline(transaction=True)
    pipe.set("t1", "a")
    pipe.incr("t2")
    pipe.set("t3", "c")
    pipe.execute()
    incr = open(os.path.join(aof_dir(proc), "appendonly.aof.1.incr.aof"), "rb").read()
    assert encode_command(b"MULTI") in incr and encode_command(b"EXEC") in incr
    proc.kill()
    proc.start()
    r = proc.client()
    assert r.mget("t1", "t2", "t3") == [b"a", b"1", b"c"]


def test_bad_format_refused(make_hakv):
    proc, incr = _write_then_stop(make_hakv, "garbage")
    with open(incr, "ab") as f:
        f.write(b"this is not a command\r\n" + encode_command(b"SET", b"x", b"y"))
    proc.start(wait=False)
    assert proc.proc.wait(30) != 0
    assert "Bad file format reading the append only file appendonly.aof.1.incr.aof" in proc.output()


def test_missing_file_in_manifest_refused(make_hakv):
    proc, incr = _write_then_stop(make_hakv, "missing")
    os.unlink(incr)
    proc.start(wait=False)
    assert proc.proc.wait(30) != 0
    assert "appendonly.aof.1.incr.aof doesn't exist" in proc.output()


def test_legacy_single_file_aof_is_upgraded(make_hakv, tmp_path):
    workdir = tmp_path / "legacy"
    workdir.mkdir()
    (workdir / "appendonly.aof").write_bytes(
        encode_command(b"SELECT", b"0") + encode_command(b"SET", b"old", b"style"))
    proc = make_hakv("--appendonly", "yes", name="legacy")
    r = proc.client()
    assert r.get("old") == b"style"
    assert not (workdir / "appendonly.aof").exists()
    assert manifest(proc).startswith("file appendonly.aof seq 1 type b\n")
    r.set("new", "1")
    proc.kill()
    proc.start()
    assert proc.client().get("new") == b"1"


def test_info_aof_fields(make_hakv):
    proc = make_hakv("--appendonly", "yes", "--appendfsync", "always")
    r = proc.client()
    r.set("a", "1")
    stats = persistence_info(r)
    for name in ("aof_enabled", "aof_rewrite_in_progress", "aof_rewrite_scheduled",
                 "aof_last_rewrite_time_sec", "aof_current_rewrite_time_sec",
                 "aof_last_bgrewrite_status", "aof_rewrites",
                 "aof_rewrites_consecutive_failures", "aof_last_write_status",
                 "aof_current_size", "aof_base_size", "aof_pending_rewrite",
                 "aof_buffer_length", "aof_pending_bio_fsync", "aof_delayed_fsync"):
        assert name in stats, name
    assert stats["aof_enabled"] == 1
    assert stats["aof_buffer_length"] == 0  # always: nothing waits in memory
    assert stats["aof_current_size"] == os.path.getsize(
        os.path.join(aof_dir(proc), "appendonly.aof.1.incr.aof")) + os.path.getsize(
        os.path.join(aof_dir(proc), "appendonly.aof.1.base.rdb"))
    assert r.config_get("appendfsync") == {"appendfsync": "always"}
    assert r.config_set("appendfsync", "everysec")


# ------------------------------------------------------------------ the reader, in process


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
def test_command_reader_across_chunk_boundaries(chunk, monkeypatch):
    import io

    from hakv.common import aof

    monkeypatch.setattr(aof.CommandReader, "CHUNK", chunk)
    commands = [[b"SELECT", b"0"], [b"SET", b"k", b"v" * 100], [b"RPUSH", b"l", b"", b"x\r\ny"],
                [b"SET", b"big", bytes(range(256)) * 40]]
    stream = b"".join(encode_command(*c) for c in commands[:2]) + b"#TS:1700000000\r\n" + b"".join(
        encode_command(*c) for c in commands[2:])
    def read_all(data):
        reader = aof.CommandReader(io.BytesIO(data))
        got, starts = [], []
        for commands, offsets in reader.batches():
            got += commands
            starts += offsets
        return got, starts, reader.offset

    got, starts, offset = read_all(stream)
    assert got == commands
    assert offset == len(stream)
    last_start = len(stream) - len(encode_command(*commands[-1]))
    assert starts[0] == 0 and starts[-1] == last_start
    # Cut anywhere inside the last command: a truncation where it starts.
    for cut in (last_start + 1, last_start + 10, len(stream) - 1):
        with pytest.raises(aof._Truncated) as info:
            read_all(stream[:cut])
        assert info.value.offset == last_start
    with pytest.raises(aof._BadFormat) as info:
        read_all(stream[:last_start] + b"GARBAGE\r\n")
    assert info.value.offset == last_start
    with pytest.raises(aof._BadFormat):
        read_all(b"*1\r\n$3\r\nabcd\r\n")


def test_manifest_parse_and_render():
    from hakv.common.aof import AofError, Manifest

    text = ("file appendonly.aof.2.base.rdb seq 2 type b\n"
            "file appendonly.aof.1.incr.aof seq 1 type h\n"
            "file appendonly.aof.2.incr.aof seq 2 type i\n"
            "file appendonly.aof.3.incr.aof seq 3 type i\n")
    m = Manifest.parse(text)
    assert m.base.name == "appendonly.aof.2.base.rdb" and m.base_seq == 2
    assert [i.name for i in m.incrs] == ["appendonly.aof.2.incr.aof", "appendonly.aof.3.incr.aof"]
    assert m.incr_seq == 3 and [h.seq for h in m.history] == [1]
    assert m.render() == text
    spaced = Manifest.parse('file "my aof.1.base.rdb" seq 1 type b\n')
    assert spaced.base.name == "my aof.1.base.rdb"
    assert Manifest.parse(spaced.render()).base.name == "my aof.1.base.rdb"
    for bad in ("", "file x seq 1\n", "file x seq one type b\n", "file x seq 1 type z\n",
                "file a seq 2 type i\nfile b seq 1 type i\n",
                "file a seq 1 type b\nfile b seq 2 type b\n"):
        with pytest.raises(AofError):
            Manifest.parse(bad)
