"""hakv-server: `hakv-server [redis.conf] [--directive value ...]`, like redis-server."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from hakv.common import config
from hakv.common.config import FatalConfigError, Settings


def build_server(argv: list[str]):
    """Parse the command line and config file into a ready (not started) node."""
    from hakv.common.node import Node

    settings = Settings()
    path, lines = config.argv_to_lines(argv)
    config.load(settings, path, lines)  # changes directory at a `dir` line, as Redis
    return Node(settings)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-v", "--version"):
        print("Redis server v=%s sha=00000000:0 malloc=pymalloc bits=64 build=hakv"
              % config.REDIS_VERSION)
        return 0
    if argv and argv[0] in ("-h", "--help"):
        print("Usage: hakv-server [/path/to/redis.conf] [options]\n"
              "Examples:\n  hakv-server --port 7777\n"
              "  hakv-server --port 7777 --replicaof 127.0.0.1 8888\n"
              "  hakv-server /etc/redis/6379.conf --loglevel verbose")
        return 0
    try:
        node = build_server(argv)
    except FatalConfigError as exc:
        if exc.logged:
            # Redis logs this one, in its log line format, on stdout.
            now = time.time()
            sys.stdout.write("%d:C %s.%03d # %s\n" % (
                os.getpid(), time.strftime("%d %b %Y %H:%M:%S", time.localtime(now)),
                int(now * 1000) % 1000, exc))
            sys.stdout.flush()
        else:
            sys.stderr.write(str(exc))
        return 1
    return asyncio.run(_run(node))


async def _run(node) -> int:
    loop = asyncio.get_running_loop()
    server = node.server

    def on_term(signame):
        server.log("warning", "Received %s scheduling shutdown..." % signame)
        err = server.shutdown(None)
        if err is not None:
            server.log("warning", "SIGTERM received but errors trying to shut down the "
                       "server, check the logs for more information")

    loop.add_signal_handler(signal.SIGTERM, on_term, "SIGTERM")
    loop.add_signal_handler(signal.SIGINT, on_term, "SIGINT")
    return await node.run()


if __name__ == "__main__":
    sys.exit(main())
