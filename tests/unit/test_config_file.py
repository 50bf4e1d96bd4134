"""Node configuration without a server (common/config.py): the command line,
redis.conf loading and its error messages, value kinds, CONFIG REWRITE.

(Named test_config_file.py: tests/integration/test_config.py holds the
process tests, and pytest needs distinct basenames.)

The expected texts are what redis-server 7.0.15 prints; the integration test
test_config.py compares the two binaries directly.
"""

from __future__ import annotations

import os

import pytest

from hakv.common import config
from hakv.common.config import (
    BY_NAME, ConfigError, FatalConfigError, Settings, argv_to_lines, format_notify, load, quote,
)


@pytest.fixture(autouse=True)
def keep_cwd():
    # A `dir` line changes directory, as in Redis.
    cwd = os.getcwd()
    yield
    os.chdir(cwd)


def fatal(settings, path, lines) -> str:
    with pytest.raises(FatalConfigError) as info:
        load(settings, path, lines)
    return str(info.value)


def banner(line_no: int, line: str, reason: str) -> str:
    return ("\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\n"
            "Reading the configuration file, at line %d\n>>> '%s'\n%s\n"
            % (line_no, line, reason))


# ------------------------------------------------------------------ command line


@pytest.mark.parametrize("argv, path, lines", [
    (["--port", "7000"], None, ['port "7000"']),
    (["my.conf", "--port", "7000", "--save", "60", "1"], "my.conf",
     ['port "7000"', 'save "60" "1"']),
    (["--save", "--port", "1"], None, ['save ""', 'port "1"']),
    (["--port", "1", "--save"], None, ['port "1"', 'save ""']),
    (["--requirepass", "--weird"], None, ['requirepass "--weird"']),
    (["--port 5", "--hz", "3"], None, ["port 5", 'hz "3"']),
    (["--requirepass", 'a "b"\n'], None, ['requirepass "a \\"b\\"\\n"']),
    ([], None, []),
])
def test_argv_to_lines(argv, path, lines):
    assert argv_to_lines(argv) == (path, lines)


def test_quote_escapes_like_sdscatrepr():
    assert quote('a b"c\\') == '"a b\\"c\\\\"'
    assert quote("\t\r\n\x07\x08\x01\xe9") == '"\\t\\r\\n\\a\\b\\x01\\xc3\\xa9"'


# ------------------------------------------------------------------ loading


def test_options_start_at_line_two_without_a_file():
    assert fatal(Settings(), None, ['port "abc"']) == banner(
        2, 'port "abc"', "argument couldn't be parsed into an integer")


def test_options_follow_the_file_lines(tmp_path):
    conf = tmp_path / "r.conf"
    conf.write_text("port 7099\n\n# x\n")
    _, lines = argv_to_lines([str(conf), "--port", "7098", "--hz", "x"])
    assert fatal(Settings(), str(conf), lines) == banner(
        6, 'hz "x"', "argument couldn't be parsed into an integer")


@pytest.mark.parametrize("line, reason", [
    ("foo bar", "Bad directive or wrong number of arguments"),
    ("port abc", "argument couldn't be parsed into an integer"),
    ("port 99999", "argument must be between 0 and 65535 inclusive"),
    ("port 01", "argument couldn't be parsed into an integer"),
    ("protected-mode maybe", "argument must be 'yes' or 'no'"),
    ("appendfsync sometimes", "argument(s) must be one of the following: everysec, always, no"),
    ("port", "wrong number of arguments"),
    ("port 1 2", "wrong number of arguments"),
    ("save 10", "Invalid save parameters"),
    ("save 0 1", "Invalid save parameters"),
    ("maxmemory 10zb", "argument must be a memory value"),
    ("databases 0", "argument must be between 1 and 2147483647 inclusive"),
    ('requirepass "abc', "Unbalanced quotes in configuration line"),
    ("timeout -1", "argument must be between 0 and 2147483647 inclusive"),
    ("notify-keyspace-events Q", "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."),
    ("client-output-buffer-limit foo 0 0 0",
     "Invalid client class specified in buffer limit configuration."),
    ("client-output-buffer-limit normal 0 0",
     "Wrong number of arguments in buffer limit configuration."),
    ("rename-command get", "Bad directive or wrong number of arguments"),
    ("sentinel monitor m 127.0.0.1 6379 2", "sentinel directive while not in sentinel mode"),
    ("replicaof a b", "Invalid master port"),
    ("unixsocketperm 1777", "argument must be between 0 and 777 inclusive"),
    ("dbfilename a/b", "dbfilename can't be a path, just a filename"),
    ("maxmemory-clients 200%", "percentage argument must be less or equal to 100"),
    ("oom-score-adj-values 1 2", "wrong number of arguments"),
    ("latency-tracking-info-percentiles a", "Invalid latency-tracking-info-percentiles parameters"),
    ("dir /nonexistent-hakv-dir", "No such file or directory"),
    ("io-threads 0", "argument must be between 1 and 128 inclusive"),
])
def test_bad_lines(tmp_path, line, reason):
    conf = tmp_path / "bad.conf"
    conf.write_text("# comment\n" + line + "\n")
    assert fatal(Settings(), str(conf), []) == banner(2, line.strip(), reason)


def test_lines_are_trimmed_in_the_message(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("  timeout   x  \n")
    assert fatal(Settings(), str(conf), []) == banner(
        1, "timeout   x", "argument couldn't be parsed into an integer")


def test_unopenable_log_file_is_reported_without_a_line():
    out = fatal(Settings(), None, ['logfile "/nonexistent-hakv-dir/x.log"'])
    assert out == ("\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\n"
                   "Can't open the log file: No such file or directory\n")


def test_missing_files_are_logged_not_banners(tmp_path):
    with pytest.raises(FatalConfigError) as info:
        load(Settings(), str(tmp_path / "none.conf"), [])
    assert info.value.logged
    assert str(info.value) == ("Fatal error, can't open config file '%s': No such file or "
                               "directory" % (tmp_path / "none.conf"))
    conf = tmp_path / "inc.conf"
    conf.write_text("include /nonexistent-hakv.conf\n")
    with pytest.raises(FatalConfigError) as info:
        load(Settings(), str(conf), [])
    assert info.value.logged and "'/nonexistent-hakv.conf'" in str(info.value)


def test_a_good_file(tmp_path):
    inc = tmp_path / "inc.conf"
    inc.write_text("hz 20\n")
    sub = tmp_path / "data"
    sub.mkdir()
    conf = tmp_path / "r.conf"
    conf.write_text(
        "# a real redis.conf has comments\n"
        "PORT 7777\n"
        "save 100 1\nsave 200 2\n"
        "slaveof 10.0.0.1 6380\n"
        "maxmemory 1gb\n"
        "notify-keyspace-events KEA\n"
        "client-output-buffer-limit replica 1mb 2mb 3\n"
        "lua-replicate-commands yes\n"  # deprecated: accepted and ignored
        "rename-command CONFIG ''\n"
        "include %s\n"
        "dir %s\n"
        "bind\n" % (inc, sub))
    s = Settings()
    load(s, str(conf), ['port "7778"'])
    assert s["port"] == 7778  # the command line comes last
    assert s["save"] == [(100, 1), (200, 2)]  # several save lines add up
    assert s["replicaof"] == ("10.0.0.1", 6380)
    assert s["maxmemory"] == 1024**3
    assert s.formatted("notify-keyspace-events") == "AKE"
    assert s.formatted("client-output-buffer-limit") == (
        "normal 0 0 0 slave 1048576 2097152 3 pubsub 33554432 8388608 60")
    assert s["hz"] == 20
    assert s["rename-command"] == ["CONFIG "]
    assert s["bind"] == []
    assert os.getcwd() == str(sub)
    assert s.formatted("dir") == str(sub)
    assert s.config_file == str(conf)


def test_save_empty_resets_and_command_line_save_replaces():
    s = Settings()
    load(s, None, ['save ""'])
    assert s["save"] == []
    s = Settings()
    assert s["save"] == [(3600, 1), (300, 100), (60, 10000)]


# ------------------------------------------------------------------ values


@pytest.mark.parametrize("name, text, value", [
    ("maxmemory", "1k", 1000), ("maxmemory", "1KB", 1024), ("maxmemory", "2gb", 2 * 1024**3),
    ("maxmemory", "05", 5), ("maxmemory", "18446744073709551615", 2**64 - 1),
    ("hz", "0", 1), ("hz", "1000", 500),  # Redis keeps hz within 1..500
    ("repl-backlog-size", "1", 16384),
    ("list-max-listpack-size", "-5", -5),
    ("loglevel", "WARNING", "warning"),
    ("protected-mode", "YES", True),
    ("maxmemory-clients", "10%", -10), ("maxmemory-clients", "5mb", 5 * 1024**2),
    ("unixsocketperm", "700", 0o700),
])
def test_parse_values(name, text, value):
    assert BY_NAME[name].parse([text]) == value


@pytest.mark.parametrize("name, text, reason", [
    ("maxmemory", "-1", "argument must be a memory value"),
    ("maxmemory", "1.5mb", "argument must be a memory value"),
    ("maxmemory", "+5", "argument must be a memory value"),
    ("proto-max-bulk-len", "1k", "argument must be between 1048576 and 9223372036854775807 "
                                 "inclusive"),
    ("timeout", "05", "argument couldn't be parsed into an integer"),
    ("timeout", "-0", "argument couldn't be parsed into an integer"),
    ("slowlog-log-slower-than", "-2", "argument must be between -1 and 9223372036854775807 "
                                      "inclusive"),
    ("maxclients", "0", "argument must be between 1 and 4294967295 inclusive"),
    ("maxmemory-policy", "lru", "argument(s) must be one of the following: volatile-lru, "
     "volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, "
     "noeviction"),
    ("maxmemory-clients", "1.5%", "argument must be a memory or percent value"),
    ("unixsocketperm", "8", "argument couldn't be parsed as an octal number"),
    ("cluster-announce-hostname", "a b", "Hostnames may only contain alphanumeric characters, "
                                         "hyphens or dots"),
])
def test_parse_errors(name, text, reason):
    with pytest.raises(ConfigError) as info:
        BY_NAME[name].parse([text])
    assert str(info.value) == reason


def test_multi_argument_values():
    cobl = BY_NAME["client-output-buffer-limit"]
    value = cobl.parse(["NORMAL", "1mb", "2mb", "3", "pubsub", "1", "1", "+1"],
                       config.COBL_DEFAULT)
    assert cobl.format(value) == "normal 1048576 2097152 3 slave 268435456 67108864 60 " \
                                 "pubsub 1 1 1"
    with pytest.raises(ConfigError, match="Error in hard, soft or soft_seconds"):
        cobl.parse(["normal", "-1", "0", "0"], config.COBL_DEFAULT)
    oom = BY_NAME["oom-score-adj-values"]
    assert oom.format(oom.parse(["+5", "05", "-2000"])) == "5 5 -2000"
    with pytest.raises(ConfigError, match="elements must be between -2000 and 2000"):
        oom.parse(["0", "0", "2001"])
    pct = BY_NAME["latency-tracking-info-percentiles"]
    assert pct.format(pct.parse(["1.123456789", "0.1", "1e2", "50.0", "1e-10"])) == \
        "1.123457 0.1 100 50 0"
    assert pct.parse([]) == []
    with pytest.raises(ConfigError, match=r"should sit between \[0.0,100.0\]"):
        pct.parse(["101"])
    save = BY_NAME["save"]
    assert save.parse(["+5", "1", "05", "0"]) == [(5, 1), (5, 0)]


@pytest.mark.parametrize("text, shown", [
    ("KEA", "AKE"), ("gn", "gn"), ("A", "A"), ("Am", "Am"), ("$lshzxetd", "$lshzxetd"),
    ("Kg$lshzxetdmn", "AKm"), ("Ex", "xE"), ("nA", "A"), ("KE", "KE"), ("", ""),
])
def test_notify_keyspace_events_canonical_form(text, shown):
    assert format_notify(text) == shown


def test_immutable_and_aliases():
    s = Settings()
    with pytest.raises(ConfigError, match="can't set immutable config"):
        s.set("databases", ["4"])
    s.set("databases", ["4"], at_startup=True)
    assert s["databases"] == 4
    s.set("slave-read-only", ["no"])
    assert s["replica-read-only"] is False
    assert ("slave-read-only", "no") in s.matching(lambda n: n.startswith(b"slave-read"))


def test_listeners_hear_config_set_but_not_startup():
    s = Settings()
    heard = []
    s.listeners.append(lambda name, value: heard.append((name, value)))
    s.set("hz", ["20"], at_startup=True)
    s.set("lua-time-limit", ["100"])
    assert heard == [("busy-reply-threshold", 100)]


# ------------------------------------------------------------------ CONFIG REWRITE


def test_rewrite_keeps_comments_and_unchanged_lines(tmp_path):
    conf = tmp_path / "r.conf"
    conf.write_text("# my comment\nport 7004\ntimeout 5\n\n# another\nhz 20\nsave 100 1\n"
                    "save 200 2\nmaxmemory 1gb\ntimeout 7\nrename-command FOO BAR\n")
    s = Settings()
    load(s, str(conf), [])
    s.set("timeout", ["10"])
    s.set("requirepass", ['a b"c'])
    s.set("maxmemory-policy", ["allkeys-lru"])
    s.set("notify-keyspace-events", ["KEA"])
    config.rewrite(s)
    assert conf.read_text() == (
        "# my comment\nport 7004\ntimeout 10\n\n# another\nhz 20\nsave 100 1\nsave 200 2\n"
        "maxmemory 1gb\nrename-command FOO BAR\n\n"
        "# Generated by CONFIG REWRITE\n"
        'requirepass "a b\\"c"\n'
        "maxmemory-policy allkeys-lru\n"
        'notify-keyspace-events "AKE"\n')
    # The rewritten file loads back to the same settings, and a second rewrite
    # with nothing changed leaves it alone.
    again = Settings()
    load(again, str(conf), [])
    for name in ("timeout", "requirepass", "maxmemory-policy", "save", "maxmemory", "hz"):
        assert again[name] == s[name]
    before = conf.read_text()
    config.rewrite(again)
    assert conf.read_text() == before
    again.set("save", [])
    config.rewrite(again)
    assert 'save ""' in conf.read_text() and "save 100 1" not in conf.read_text()


def test_rewrite_without_a_file():
    with pytest.raises(ConfigError, match="The server is running without a config file"):
        config.rewrite(Settings())
