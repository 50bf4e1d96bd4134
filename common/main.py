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


def signal_shutdown_flags(text: str) -> tuple:
    """shutdown-on-sigterm / -sigint value -> server.shutdown's (save, now, force);
    save None is "default": save only when save points are configured."""
    words = text.split()
    save = True if "save" in words else False if "nosave" in words else None
    return save, "now" in words, "force" in words


async def _run(node) -> int:
    loop = asyncio.get_running_loop()
    server = node.server
    by_signal = {"deadline": None}  # the wait a signal's shutdown started, if any

    def shutdown_under_way() -> bool:
        # Still waiting for replicas, or already exiting (not cancelled / failed).
        event = server.shutdown_event
        return bool(server.shutdown_deadline) or (event is not None and event.is_set())

    def signal_shutdown_under_way() -> bool:
        # Redis's shutdown_asap: set by a signal, cleared when that shutdown is
        # aborted or fails (a later SHUTDOWN command's wait does not count).
        event = server.shutdown_event
        return (event is not None and event.is_set()) or (
            bool(server.shutdown_deadline) and server.shutdown_deadline == by_signal["deadline"])

    def on_signal(signame):
        # A second SIGINT while a signal's shutdown is still under way (Ctrl+C
        # twice): exit at once, unclean, without saving or waiting for replicas.
        if signame == "SIGINT" and signal_shutdown_under_way():
            server.log("warning", "You insist... exiting now.")
            os._exit(1)
        server.log("warning", "Received %s scheduling shutdown..." % signame)
        if shutdown_under_way():
            return  # the shutdown already started (SHUTDOWN or a signal) goes on
        directive = "shutdown-on-sigint" if signame == "SIGINT" else "shutdown-on-sigterm"
        save, now, force = signal_shutdown_flags(server.settings[directive])
        err = server.shutdown(save, now=now, force=force)
        by_signal["deadline"] = server.shutdown_deadline or None
        if err is not None:
            server.log("warning", "Errors trying to shut down the server. Check the logs "
                       "for more information.")

    loop.add_signal_handler(signal.SIGTERM, on_signal, "SIGTERM")
    loop.add_signal_handler(signal.SIGINT, on_signal, "SIGINT")
    return await node.run()


if __name__ == "__main__":
    sys.exit(main())
