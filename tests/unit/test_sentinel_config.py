"""sentinel.conf parsing (Redis's syntax and error texts) and rewriting."""
from __future__ import annotations

import os

import pytest

from hakv.sentinel.config import (
    ConfigError,
    SentinelConfig,
    args_to_lines,
    load_config,
    parse_config,
    render_config,
    rewrite_config_file,
    split_args,
)
from hakv.sentinel.state import SentinelState

DEBIAN_SENTINEL_CONF = """\
# Example sentinel.conf
protected-mode no
port 26379
daemonize yes
pidfile /run/sentinel/redis-sentinel.pid
logfile /var/log/redis/redis-sentinel.log
dir /tmp
sentinel monitor mymaster 127.0.0.1 6379 2
sentinel down-after-milliseconds mymaster 30000
acllog-max-len 128
sentinel parallel-syncs mymaster 1
sentinel failover-timeout mymaster 180000
sentinel deny-scripts-reconfig yes
SENTINEL resolve-hostnames no
SENTINEL announce-hostnames no
SENTINEL master-reboot-down-after-period mymaster 0
"""


def test_parses_the_debian_default_file():
    cfg = parse_config(DEBIAN_SENTINEL_CONF)
    assert cfg.port == 26379 and cfg.daemonize and cfg.dir == "/tmp"
    assert cfg.pidfile == "/run/sentinel/redis-sentinel.pid"
    assert cfg.logfile == "/var/log/redis/redis-sentinel.log"
    assert not cfg.protected_mode and cfg.deny_scripts_reconfig and not cfg.resolve_hostnames
    (m,) = cfg.masters
    assert (m.name, m.host, m.port, m.quorum) == ("mymaster", "127.0.0.1", 6379, 2)
    assert m.down_after_ms == 30000 and m.failover_timeout_ms == 180000 and m.parallel_syncs == 1
    assert cfg.myid is None and cfg.current_epoch == 0


def test_parses_every_sentinel_directive_in_any_order():
    text = """
sentinel known-replica mymaster 10.0.0.2 6380
sentinel known-slave mymaster 10.0.0.3 6380
sentinel known-sentinel mymaster 10.0.0.4 26379 """ + "c" * 40 + """
sentinel known-sentinel mymaster 10.0.0.5 26379
sentinel config-epoch mymaster 7
sentinel leader-epoch mymaster 8
sentinel monitor mymaster 10.0.0.1 6379 2
sentinel current-epoch 9
sentinel myid """ + "a" * 40 + """
sentinel auth-pass mymaster "pa ss"
sentinel auth-user mymaster bob
sentinel notification-script mymaster /bin/true
sentinel client-reconfig-script mymaster /bin/true
sentinel announce-ip 192.168.1.1
sentinel announce-port 26999
sentinel sentinel-user admin
sentinel sentinel-pass 'se cret'
sentinel rename-command mymaster CONFIG XCONFIG
requirepass foo
bind 127.0.0.1 ::1
loglevel warning
"""
    cfg = parse_config(text)
    m = cfg.masters[0]
    assert [(r.host, r.port) for r in m.known_replicas] == [("10.0.0.2", 6380), ("10.0.0.3", 6380)]
    assert [(s.host, s.runid) for s in m.known_sentinels] == [("10.0.0.4", "c" * 40)]  # old form ignored
    assert (m.config_epoch, m.leader_epoch, cfg.current_epoch) == (7, 8, 9)
    assert cfg.myid == "a" * 40 and m.auth_pass == "pa ss" and m.auth_user == "bob"
    assert m.notification_script == "/bin/true" and m.client_reconfig_script == "/bin/true"
    assert (cfg.announce_ip, cfg.announce_port) == ("192.168.1.1", 26999)
    assert (cfg.sentinel_user, cfg.sentinel_pass) == ("admin", "se cret")
    assert m.rename_commands == {"CONFIG": "XCONFIG"}
    assert cfg.requirepass == "foo" and cfg.bind == ["127.0.0.1", "::1"] and cfg.loglevel == "warning"


@pytest.mark.parametrize("text,line,reason", [
    ("port 26999\nsentinel monitor mymaster 127.0.0.1 6399 0\n", 2, "Quorum must be 1 or greater."),
    ("port 26999\nsentinel down-after-milliseconds foo 10\nsentinel monitor mymaster 127.0.0.1 6399 2\n", 2,
     "No such master with specified name."),
    ("port abc\n", 1, "argument couldn't be parsed into an integer"),
    ("port 70000\n", 1, "argument must be between 0 and 65535 inclusive"),
    ("foo bar\n", 1, "Bad directive or wrong number of arguments"),
    ("sentinel bogus x\n", 1, "Unrecognized sentinel configuration statement."),
    ("sentinel monitor m 127.0.0.1 6379\n", 1, "Unrecognized sentinel configuration statement."),
    ('port "26379\n', 1, "Unbalanced quotes in configuration line"),
    ("sentinel myid abc\n", 1, "Malformed Sentinel id in myid option."),
    ("sentinel monitor m somehost 6379 2\n", 1, "Can't resolve instance hostname."),
    ("sentinel monitor m 127.0.0.1 6379 2\nsentinel monitor m 127.0.0.1 6380 2\n", 2, "Duplicate master name."),
    ("sentinel monitor m 127.0.0.1 6379 2\nsentinel down-after-milliseconds m 0\n", 2,
     "negative or zero time parameter."),
    ("sentinel deny-scripts-reconfig maybe\n", 1,
     "Please specify yes or no for the deny-scripts-reconfig options."),
    ("sentinel monitor m 127.0.0.1 6379 2\nsentinel notification-script m /nonexistent/script\n", 2,
     "Notification script seems non existing or non executable."),
    ("daemonize maybe\n", 1, "argument must be 'yes' or 'no'"),
    ("dir /nonexistent/dir/x\n", 1, "No such file or directory"),
])
def test_bad_lines_fail_like_redis(text, line, reason):
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    err = info.value
    assert err.linenum == line and err.reason == reason
    bad_line = text.split("\n")[line - 1].strip()
    assert str(err) == (
        "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\n"
        f"Reading the configuration file, at line {line}\n"
        f">>> '{bad_line}'\n"
        f"{reason}\n"
    )
    assert err.directive.split()[0] in ("port", "foo", "sentinel", "daemonize", "dir")


def test_hostnames_accepted_when_resolve_hostnames():
    cfg = parse_config("sentinel resolve-hostnames yes\nsentinel monitor m redis-a 6379 2\n")
    assert cfg.masters[0].host == "redis-a" and cfg.resolve_hostnames


def test_split_args_like_sdssplitargs():
    assert split_args('set  "a b"  c') == ["set", "a b", "c"]
    assert split_args(r'"\x41\n\t\"q" x') == ['A\n\t"q', "x"]
    assert split_args("'it\\'s' b") == ["it's", "b"]
    assert split_args('foo"bar baz"') == ["foobar baz"]
    assert split_args('""') == [""]
    for bad in ('"abc', '"a"b', "'a'b", "'abc"):
        with pytest.raises(ValueError):
            split_args(bad)


def test_command_line_options_become_lines():
    assert args_to_lines(["--port", "26380", "--sentinel", "monitor", "m", "127.0.0.1", "6379", "2"]) == \
        "port 26380\nsentinel monitor m 127.0.0.1 6379 2"


def test_render_keeps_user_lines_and_replaces_state():
    old = """# my comment
port 26999
daemonize no
bind 127.0.0.1
sentinel monitor mymaster 127.0.0.1 6399 2
sentinel down-after-milliseconds mymaster 1500
# another comment
sentinel parallel-syncs mymaster 3
acllog-max-len 64
sentinel known-replica mymaster 127.0.0.1 7001
sentinel known-replica mymaster 127.0.0.1 7002
"""
    cfg = parse_config(old).model_copy(update={"myid": "a" * 40, "current_epoch": 4})
    m = cfg.masters[0].model_copy(update={"config_epoch": 4, "known_replicas": cfg.masters[0].known_replicas[:1],
                                          "port": 6400})
    cfg = cfg.model_copy(update={"masters": [m]})
    new = render_config(old, cfg)
    assert new == """# my comment
port 26999
daemonize no
bind 127.0.0.1
sentinel monitor mymaster 127.0.0.1 6400 2
sentinel down-after-milliseconds mymaster 1500
# another comment
sentinel parallel-syncs mymaster 3
acllog-max-len 64
sentinel known-replica mymaster 127.0.0.1 7001

# Generated by CONFIG REWRITE
protected-mode no
sentinel myid aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
sentinel config-epoch mymaster 4
sentinel leader-epoch mymaster 0
sentinel current-epoch 4
"""
    # rewriting again is stable and the result loads back to the same state
    assert render_config(new, cfg) == new
    again = parse_config(new)
    assert again.masters[0].port == 6400 and again.current_epoch == 4 and again.myid == "a" * 40


def test_render_quotes_and_removes_deleted_masters():
    old = "sentinel monitor a 127.0.0.1 1 1\nsentinel monitor b 127.0.0.1 2 1\nsentinel config-epoch b 3\n"
    cfg = parse_config(old)
    cfg = cfg.model_copy(update={"masters": cfg.masters[:1], "logfile": "/var/log/my log.txt",
                                 "announce_ip": "10.0.0.1"})
    new = render_config(old, cfg)
    assert "sentinel monitor b" not in new and "config-epoch b" not in new
    assert 'logfile "/var/log/my log.txt"' in new and 'sentinel announce-ip "10.0.0.1"' in new
    assert parse_config(new).logfile == "/var/log/my log.txt"


def test_rewrite_file_is_atomic_and_persists_generated_id(tmp_path):
    path = tmp_path / "sentinel.conf"
    path.write_text("# keep me\nport 26380\nsentinel monitor mymaster 127.0.0.1 6379 2\n")
    cfg = load_config(str(path))
    st = SentinelState(cfg, 0)
    actions = st.start(0)
    assert any(a.__class__.__name__ == "FlushConfig" for a in actions)  # a new ID must be saved at once
    rewrite_config_file(str(path), st.to_config())
    text = path.read_text()
    assert text.startswith("# keep me\nport 26380\n")
    assert f"sentinel myid {st.myid}" in text and len(st.myid) == 40
    assert int(st.myid, 16) >= 0
    assert f'dir "{os.getcwd()}"' in text
    assert sorted(os.listdir(tmp_path)) == ["sentinel.conf"]  # no temp file left behind
    reloaded = load_config(str(path))
    assert reloaded.myid == st.myid
    st2 = SentinelState(reloaded, 0)
    assert st2.myid == st.myid and not [a for a in st2.start(0) if a.__class__.__name__ == "FlushConfig"]


def test_state_survives_a_restart_through_the_file(tmp_path):
    path = tmp_path / "s.conf"
    path.write_text("sentinel monitor mymaster 127.0.0.1 6379 2\nsentinel known-replica mymaster 127.0.0.1 6380\n"
                    "sentinel known-sentinel mymaster 127.0.0.1 26380 " + "b" * 40 + "\n")
    st = SentinelState(load_config(str(path)), 0)
    st.sentinel_command(["is-master-down-by-addr", "127.0.0.1", "6379", "12", "b" * 40], 10)
    rewrite_config_file(str(path), st.to_config())
    st2 = SentinelState(load_config(str(path)), 0)
    assert st2.current_epoch == 12
    assert st2.masters["mymaster"].leader_epoch == 12  # the vote of epoch 12 is remembered
    assert list(st2.masters["mymaster"].slaves) == ["127.0.0.1:6380"]
    assert list(st2.masters["mymaster"].sentinels) == ["b" * 40]
    # asked again in epoch 12 by someone else: the old vote stands (no second vote)
    assert st2.sentinel_command(["is-master-down-by-addr", "127.0.0.1", "6379", "12", "c" * 40],
                                20).reply[2] == 12


def test_model_validation():
    with pytest.raises(ValueError):
        SentinelConfig(port=70000)
    with pytest.raises(ValueError):
        SentinelConfig(myid="short")
