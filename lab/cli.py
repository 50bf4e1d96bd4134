"""`hakv`: the operator's tool. `hakv up` runs a whole local HA topology."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from hakv.lab.status import table
from hakv.lab.topology import Topology

DEFAULT_DIR = "hakv-data"


def cmd_up(args) -> int:
    topo = Topology.plan(args.dir, args.port, args.sentinel_port, replicas=args.replicas,
                         sentinels=args.sentinels, down_after_ms=args.down_after,
                         master_name=args.name, quorum=args.quorum, impl=args.impl,
                         proxied=not args.direct, node_conf=args.node_conf,
                         sentinel_conf=args.sentinel_conf)
    os.makedirs(topo.dir, exist_ok=True)
    try:
        topo.start_all()
    except RuntimeError as exc:
        print("hakv up: %s" % exc, file=sys.stderr)
        topo.stop_all()
        return 1
    # SIGTERM (and SIGINT even where a shell ignores it for background jobs)
    # stops everything like Ctrl-C does
    def interrupt(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    primary = topo.nodes[0]
    sentinels = ", ".join("('127.0.0.1', %d)" % m.port for m in topo.sentinels)
    print(CONNECT_HELP % {
        "n": len(topo.nodes), "s": len(topo.sentinels), "dir": topo.dir, "port": primary.port,
        "sport": topo.sentinels[0].port if topo.sentinels else 0, "name": topo.master_name,
        "sentinels": sentinels,
    })
    try:
        while True:
            if args.once:
                print(table(topo))
                break
            out = table(topo)
            if sys.stdout.isatty():
                sys.stdout.write("\x1b[H\x1b[J" if args.clear else "")
            print(time.strftime("%H:%M:%S"), "(Ctrl-C stops everything)")
            print(out)
            print()
            sys.stdout.flush()
            time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    finally:
        if not args.keep:
            print("stopping %d processes..." % len(topo.members))
            topo.stop_all()
            print("stopped; data and logs are in %s" % topo.dir)
    return 0


CONNECT_HELP = """\
hakv is up: %(n)d nodes and %(s)d sentinels on 127.0.0.1 (data and logs in %(dir)s)

  redis-cli -p %(port)d                      # the primary (for now)
  redis-cli -p %(sport)d sentinel get-master-addr-by-name %(name)s

  # redis-py, through the sentinels (follows failovers):
  from redis.sentinel import Sentinel
  s = Sentinel([%(sentinels)s], socket_timeout=0.5)
  s.master_for('%(name)s').set('k', 'v')

  hakv status --dir %(dir)s                  # this table, from another terminal
  hakv fault kill primary --dir %(dir)s      # and stop/cont/restart/partition/heal
  hakv watch --dir %(dir)s                   # live failover timeline and report
  hakv dashboard --dir %(dir)s               # the same in a browser
"""


def cmd_status(args) -> int:
    try:
        topo = Topology.load(args.dir)
    except FileNotFoundError:
        print("hakv status: no topology in %s (start one with hakv up)" % args.dir,
              file=sys.stderr)
        return 1
    print(table(topo))
    return 0


FAULT_HELP = """\
Inject a fault into a running topology and log it (with a wall-clock
timestamp, ms precision) to the topology's fault log, which `hakv watch`
reads to place it on its timeline.

verbs:
  kill       crash the member: SIGKILL (compose: docker kill)
  stop       freeze it: SIGSTOP; it keeps its sockets but answers nothing
             (compose: docker pause)
  cont       thaw a stopped member: SIGCONT (compose: docker unpause)
  restart    start it again with the same config (stopping it first if running)
  partition  cut it off from every node, sentinel and client, both ways:
             established connections hang (no reset), new ones get no answer
             (local: the topology's proxies; compose: docker network disconnect)
  heal       undo partition

NODE is a member name (node1, sentinel2, ...), its port, or "primary" (the
node the sentinels name as primary right now).

examples:
  hakv fault kill primary --dir hakv-data
  hakv fault partition node2 --dir hakv-data; hakv fault heal node2 --dir hakv-data
  hakv fault stop primary --compose hakv
"""


def cmd_fault(args) -> int:
    from hakv.lab.faults import FaultError, open_backend

    try:
        backend = open_backend(args.dir, args.compose)
        try:
            event = backend.apply(args.verb, args.node)
        finally:
            backend.close()
    except FaultError as exc:
        print("hakv fault: %s" % exc, file=sys.stderr)
        return 1
    print(event)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hakv", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start 1 primary, 2 replicas and 3 sentinels locally")
    up.add_argument("--dir", default=DEFAULT_DIR, help="where configs, data and logs go")
    up.add_argument("--port", type=int, default=6379, help="first node port")
    up.add_argument("--sentinel-port", type=int, default=26379, help="first sentinel port")
    up.add_argument("--replicas", type=int, default=2)
    up.add_argument("--sentinels", type=int, default=3)
    up.add_argument("--quorum", type=int, default=2)
    up.add_argument("--name", default="mymaster", help="the sentinels' master name")
    up.add_argument("--down-after", type=int, default=1000,
                    help="sentinel down-after-milliseconds")
    up.add_argument("--interval", type=float, default=1.0, help="status refresh seconds")
    up.add_argument("--once", action="store_true", help="print the table once and stop")
    up.add_argument("--keep", action="store_true", help="leave the processes running on exit")
    up.add_argument("--no-clear", dest="clear", action="store_false")
    up.add_argument("--impl", choices=("hakv", "redis"), default="hakv",
                    help="run hakv, or Debian's redis-server/redis-sentinel for comparison")
    up.add_argument("--direct", action="store_true",
                    help="no fault proxies: members listen on 127.0.0.1 (no partitions)")
    up.add_argument("--node-conf", action="append", default=[], metavar="LINE",
                    help="an extra redis.conf line for every node (repeatable), "
                         "e.g. --node-conf 'min-replicas-to-write 1'")
    up.add_argument("--sentinel-conf", action="append", default=[], metavar="LINE",
                    help="an extra sentinel.conf line for every sentinel (repeatable)")
    up.set_defaults(func=cmd_up)
    st = sub.add_parser("status", help="print the status table of a running topology")
    st.add_argument("--dir", default=DEFAULT_DIR)
    st.set_defaults(func=cmd_status)
    fault = sub.add_parser("fault", help="kill/stop/cont/restart/partition/heal a member",
                           description=FAULT_HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    fault.add_argument("verb", choices=("kill", "stop", "cont", "restart", "partition", "heal"))
    fault.add_argument("node", help='a member name, a port, or "primary"')
    where = fault.add_mutually_exclusive_group()
    where.add_argument("--dir", default=DEFAULT_DIR, help="a `hakv up` topology")
    where.add_argument("--compose", metavar="PROJECT", help="a Docker Compose project")
    fault.set_defaults(func=cmd_fault)
    from hakv.lab import dashboard, watch  # their own subcommands and options

    watch.add_parser(sub)
    dashboard.add_parser(sub)
    from hakv.lab import clients  # `hakv clients`: the client failover matrix

    clients.add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
