"""CONFIG REWRITE and ACL users: without an aclfile the live users (ACL LIST
lines) replace the file's `user` lines; with one, users are left to ACL SAVE.
Each scenario runs against hakv-server and redis-server 7.0 and compares the files."""

from __future__ import annotations

import pytest
import redis

from procs import REDIS_SERVER, Proc, free_port, hakv_server

KINDS = ["hakv", "redis"]

CONF = """# hand-written
port 0
# the old users
user zed on nopass +@all ~*
requirepass foo
user carl on >x +get
# tail
"""


def server(kind: str, conf, workdir, password=None) -> Proc:
    workdir.mkdir(exist_ok=True)
    if kind == "hakv":
        return hakv_server(str(workdir), None, config=str(conf), password=password)
    port = free_port()
    return Proc([REDIS_SERVER, str(conf), "--port", str(port), "--bind", "127.0.0.1",
                 "--save", "", "--dir", str(workdir), "--daemonize", "no"],
                port, str(workdir), "redis", password=password)


def canonical(line: str) -> str:
    """An ACL LIST / `user` line with its single-command rules sorted: Redis
    lists them in its command dict's order, which its random hash seed
    changes from one process to the next."""
    out, run = [], []
    for token in line.split(" ") + [""]:
        if token[:1] in ("+", "-") and "@" not in token:
            run.append(token)
            continue
        out += sorted(run) + [token]
        run = []
    return " ".join(out).rstrip()


def acl_lines(text: str) -> list:
    """The file's `user` lines (canonical) and the file's requirepass value."""
    lines = []
    for line in text.splitlines():
        word = line.split(" ", 1)[0]
        if word == "user":
            lines.append(canonical(line))
        elif word == "requirepass":
            lines.append("requirepass " + line.split(" ", 1)[1].strip('"'))
    return lines


def run_scenario(kind, tmp_path, procs, steps, conf_text=CONF, password="foo") -> dict:
    conf = tmp_path / (kind + ".conf")
    conf.write_text(conf_text)
    p = server(kind, conf, tmp_path / kind, password=password)
    procs.append(p.start())
    r = p.client()
    password = steps(r)
    acl_before = [canonical(line) for line in r.acl_list()]
    requirepass = r.config_get("requirepass")
    assert r.config_rewrite()
    text = conf.read_text()
    p.stop()
    # The rewritten file alone brings the same users back (Redis's startup
    # resets a declared default user first, which adds sanitize-payload).
    p.password = password
    p.start()
    acl_after = [canonical(line) for line in p.client().acl_list()]
    assert [line.replace(" sanitize-payload", "") for line in acl_after] == acl_before
    return {"file": text, "acl": acl_before, "restarted": acl_after,
            "requirepass": requirepass}


def change_users(r) -> str:
    r.acl_setuser("alice", enabled=True, passwords=["+pw"], keys=["k*"], channels=["ch*"],
                  commands=["+get", "+set"])
    r.execute_command("ACL", "SETUSER", "bob", "off", "resetchannels", "%R~ro*",
                      "(+hget ~h*)")
    r.execute_command("ACL", "DELUSER", "carl")
    r.execute_command("ACL", "SETUSER", "default", "resetpass", ">bar")
    return "bar"


def test_rewrite_writes_live_users_like_redis(tmp_path, procs):
    got = {kind: run_scenario(kind, tmp_path, procs, change_users) for kind in KINDS}
    hakv, real = got["hakv"], got["redis"]
    assert hakv["acl"] == real["acl"] and hakv["restarted"] == real["restarted"]
    assert acl_lines(hakv["file"]) == acl_lines(real["file"])
    # requirepass stays what was configured: Redis 7.0 doesn't derive it from
    # the default user, whose `user default` line carries the new password.
    assert hakv["requirepass"] == real["requirepass"] == {"requirepass": "foo"}
    users = [canonical(line) for line in hakv["file"].splitlines() if line.startswith("user ")]
    assert users == hakv["acl"]
    # The old `user` lines' places are reused in order, the rest appended.
    lines = hakv["file"].splitlines()
    assert lines[:3] == ["# hand-written", lines[1], "# the old users"]
    assert lines[3].startswith("user alice ") and lines[4].startswith("requirepass ")
    assert lines[5].startswith("user bob ") and lines[6] == "# tail"


def drop_users(r) -> None:
    r.execute_command("ACL", "DELUSER", "carl", "zed")
    return "foo"


def test_fewer_users_blank_the_old_lines_like_redis(tmp_path, procs):
    got = {kind: run_scenario(kind, tmp_path, procs, drop_users) for kind in KINDS}
    assert acl_lines(got["hakv"]["file"]) == acl_lines(got["redis"]["file"])
    assert got["hakv"]["acl"] == got["redis"]["acl"]
    lines = got["hakv"]["file"].splitlines()
    # Only the default user is left: it takes zed's line, carl's line becomes blank.
    assert lines[3].startswith("user default on #") and lines[5] == ""


def no_change(r) -> str:
    return None


def test_fresh_server_writes_its_default_user_like_redis(tmp_path, procs):
    got = {kind: run_scenario(kind, tmp_path, procs, no_change, conf_text="port 0\n",
                              password=None) for kind in KINDS}
    assert acl_lines(got["hakv"]["file"]) == acl_lines(got["redis"]["file"]) == [
        "user default on nopass ~* &* +@all"]


def test_with_an_aclfile_users_are_left_to_acl_save(tmp_path, procs):
    for kind in KINDS:
        aclfile = tmp_path / (kind + ".acl")
        aclfile.write_text("user default on nopass ~* &* +@all\n")
        conf = tmp_path / (kind + ".conf")
        conf.write_text("port 0\naclfile %s\n" % aclfile)
        p = server(kind, conf, tmp_path / kind)
        procs.append(p.start())
        r = p.client()
        r.acl_setuser("alice", enabled=True, nopass=True, commands=["+ping"])
        assert r.config_rewrite()
        text = conf.read_text()
        assert acl_lines(text) == [], kind
        assert "alice" not in aclfile.read_text()
        assert r.acl_save()
        assert "user alice on nopass" in aclfile.read_text()
        p.stop()
        p.start()
        assert "user alice on nopass resetchannels -@all +ping" in p.client().acl_list()


def test_rewrite_without_acl_changes_keeps_file_loadable(tmp_path, procs):
    # A password with spaces and quotes survives as the default user's hash.
    def steps(r):
        r.config_set("requirepass", 'pa ss"word')
        return 'pa ss"word'

    got = {kind: run_scenario(kind, tmp_path, procs, steps) for kind in KINDS}
    assert acl_lines(got["hakv"]["file"]) == acl_lines(got["redis"]["file"])
    assert 'requirepass "pa ss\\"word"' in got["hakv"]["file"].splitlines()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=procs[0].port, password="foo").ping()
