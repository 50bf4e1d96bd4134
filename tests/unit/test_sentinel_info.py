"""INFO parsing, hello messages and glob matching used by the sentinel."""
from __future__ import annotations

from hakv.sentinel.hello import Hello, parse_hello
from hakv.sentinel.info import parse_info

REDIS_7_REPLICA_INFO = (
    "# Server\r\nredis_version:7.0.15\r\nrun_id:464dfde6ccb017a1c94cd79e4bfa8fe04a183599\r\ntcp_port:16402\r\n"
    "\r\n# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:16401\r\n"
    "master_link_status:down\r\nmaster_last_io_seconds_ago:-1\r\nmaster_sync_in_progress:0\r\n"
    "slave_read_repl_offset:1\r\nslave_repl_offset:1\r\nmaster_link_down_since_seconds:-1\r\n"
    "slave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\nconnected_slaves:0\r\n"
    "master_failover_state:no-failover\r\n"
)

REDIS_7_MASTER_INFO = (
    "# Server\r\nrun_id:1b30f832c0db53f2f7453d13a665e5be3e7e3445\r\n\r\n# Replication\r\nrole:master\r\n"
    "connected_slaves:2\r\nslave0:ip=127.0.0.1,port=16402,state=online,offset=1234,lag=0\r\n"
    "slave1:ip=10.0.0.9,port=7000,state=wait_bgsave,offset=0,lag=1\r\n"
    "master_failover_state:no-failover\r\nmaster_replid:ac652672ee6cfc1415ce15e3bfbcf327aa7eb4b2\r\n"
)


def test_parse_replica_info():
    info = parse_info(REDIS_7_REPLICA_INFO)
    assert info.run_id == "464dfde6ccb017a1c94cd79e4bfa8fe04a183599"
    assert info.role == "slave"
    assert (info.master_host, info.master_port, info.master_link_up) == ("127.0.0.1", 16401, False)
    assert info.master_link_down_ms == -1000  # Redis's own arithmetic on "-1"
    assert (info.slave_priority, info.slave_repl_offset, info.replica_announced) == (100, 1, 1)
    assert info.replicas == []


def test_parse_master_info_lists_replicas():
    info = parse_info(REDIS_7_MASTER_INFO.encode())
    assert info.role == "master" and info.run_id.startswith("1b30f8")
    assert [(r.ip, r.port, r.state, r.offset, r.lag) for r in info.replicas] == [
        ("127.0.0.1", 16402, "online", 1234, 0), ("10.0.0.9", 7000, "wait_bgsave", 0, 1)]
    assert info.master_link_down_ms == 0


def test_parse_old_style_replica_lines_and_garbage():
    info = parse_info("role:master\nslave0:10.0.0.1,6380,online\nslave1:nonsense\nrun_id:short\n")
    assert [(r.ip, r.port) for r in info.replicas] == [("10.0.0.1", 6380)]
    assert info.run_id is None


def test_hello_round_trip():
    h = Hello("127.0.0.1", 26379, "a" * 40, 3, "mymaster", "127.0.0.1", 6379, 2)
    text = h.encode()
    assert text == "127.0.0.1,26379," + "a" * 40 + ",3,mymaster,127.0.0.1,6379,2"
    assert parse_hello(text) == h
    assert parse_hello(text.encode()) == h
    for bad in ("", "a,b,c", text + ",9", text.replace(",3,", ",x,"), text.replace("26379", "99999")):
        assert parse_hello(bad) is None
