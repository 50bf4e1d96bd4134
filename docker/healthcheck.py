#!/usr/bin/env python3
"""hakv-health node|sentinel: exit 0 when this member is really ready, else print why
and exit 1. compose.yaml runs it every second, so `docker compose up --wait` returns
only once the topology works, not when the ports are merely open.

node      answers, and as a replica: link to its primary up and the initial sync done
sentinel  monitors the primary, sees it up, and has discovered HAKV_EXPECT_REPLICAS
          connected replicas and HAKV_EXPECT_SENTINELS - 1 other sentinels
"""
import os
import sys

from hakv.lab.rpc import RpcError, call, parse_info

MASTER = os.environ.get("HAKV_MASTER_NAME", "mymaster")
REPLICAS = int(os.environ.get("HAKV_EXPECT_REPLICAS", "2"))
SENTINELS = int(os.environ.get("HAKV_EXPECT_SENTINELS", "3"))


def pairs(reply) -> dict:
    return {k.decode(): v.decode() for k, v in zip(reply[::2], reply[1::2])}


def node_problem() -> str:
    info = parse_info(call("127.0.0.1", 6379, "INFO", "replication"))
    if info.get("role") == "slave":
        if info.get("master_link_status") != "up":
            return "replica: link to %s:%s is %s" % (
                info.get("master_host"), info.get("master_port"), info.get("master_link_status"))
        if info.get("master_sync_in_progress", "0") != "0":
            return "replica: initial sync in progress"
    return ""


def sentinel_problem() -> str:
    master = pairs(call("127.0.0.1", 26379, "SENTINEL", "MASTER", MASTER))
    flags = master.get("flags", "")
    if "s_down" in flags or "o_down" in flags or "disconnected" in flags:
        return "primary %s:%s is %s" % (master.get("ip"), master.get("port"), flags)
    replicas = [pairs(r) for r in call("127.0.0.1", 26379, "SENTINEL", "REPLICAS", MASTER)]
    ready = [r for r in replicas if r.get("flags") == "slave"
             and r.get("master-link-status") == "ok"]
    if len(ready) < REPLICAS:
        return "%d/%d replicas discovered and connected: %s" % (
            len(ready), REPLICAS, ", ".join("%s:%s %s" % (r.get("ip"), r.get("port"),
                                                          r.get("flags")) for r in replicas))
    others = int(master.get("num-other-sentinels", "0"))
    if others < SENTINELS - 1:
        return "%d/%d other sentinels discovered" % (others, SENTINELS - 1)
    return ""


def main(argv) -> int:
    kind = argv[1] if len(argv) > 1 else "node"
    check = {"node": node_problem, "sentinel": sentinel_problem}.get(kind)
    if check is None:
        print("usage: hakv-health node|sentinel")
        return 2
    try:
        problem = check()
    except (OSError, RpcError) as exc:
        problem = "%s: %s" % (exc.__class__.__name__, exc)
    if problem:
        print(problem)
        return 1
    print("ready")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
