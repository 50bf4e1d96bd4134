"""hakv-sentinel: `hakv-sentinel sentinel.conf [--port N] [--directive value ...]`.

Like `redis-sentinel` (or `redis-server sentinel.conf --sentinel`): the
config file is required and must be writable, because the sentinel saves its
state (ID, epochs, known replicas and sentinels) into it.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from .config import REDIS_VERSION, ConfigError, check_config_writable, load_config
from .server import SentinelServer

USAGE = """\
Usage: hakv-sentinel /path/to/sentinel.conf [options]
Examples:
  hakv-sentinel sentinel.conf
  hakv-sentinel sentinel.conf --port 26380
  hakv-sentinel sentinel.conf --loglevel verbose
"""


def _log_line(text: str, mark: str = "#") -> None:
    """A log line in Redis's format, before the server (and its log) exist."""
    now = time.time()
    stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime(now))
    sys.stdout.write("%d:X %s.%03d %s %s\n" % (os.getpid(), stamp, int(now * 1000) % 1000, mark, text))
    sys.stdout.flush()


def _split_argv(argv: list[str]) -> tuple[str | None, list[str]]:
    """The config path and the `--directive value` options; a bare
    `--sentinel` (redis-server's mode switch) is accepted and dropped."""
    path = None
    if argv and not argv[0].startswith("-"):
        path, argv = argv[0], argv[1:]
    options: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--sentinel" and (i + 1 == len(argv) or argv[i + 1].startswith("--")):
            continue
        options.append(arg)
    return path, options


def build_server(argv: list[str]) -> SentinelServer:
    """Parse the command line and the config file into a ready (not started)
    sentinel; SystemExit(1) with Redis's message when that is impossible."""
    path, options = _split_argv(argv)
    if path is None:
        _log_line(check_config_writable(None) or "")
        raise SystemExit(1)
    path = os.path.abspath(path)  # `dir` below changes the working directory
    try:
        config = load_config(path, options)
    except ConfigError as exc:
        sys.stderr.write(str(exc))
        sys.stderr.flush()
        raise SystemExit(1) from None
    except OSError as exc:
        _log_line("Fatal error, can't open config file '%s': %s" % (path, exc.strerror))
        raise SystemExit(1) from None
    problem = check_config_writable(path)
    if problem is not None:
        _log_line(problem)
        raise SystemExit(1)
    if config.dir:
        os.chdir(config.dir)
    if config.pidfile:
        try:
            with open(config.pidfile, "w") as fh:
                fh.write("%d\n" % os.getpid())
        except OSError as exc:
            _log_line("Failed to write PID file: %s" % exc.strerror)
    return SentinelServer(config, path)


async def _run(server: SentinelServer) -> int:
    loop = asyncio.get_running_loop()

    def on_signal(name: str) -> None:
        server.log("warning", "Received %s scheduling shutdown..." % name)
        server.shutdown(None)

    loop.add_signal_handler(signal.SIGTERM, on_signal, "SIGTERM")
    loop.add_signal_handler(signal.SIGINT, on_signal, "SIGINT")
    return await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-v", "--version"):
        print("Redis server v=%s sha=00000000:0 malloc=pymalloc bits=64 build=hakv" % REDIS_VERSION)
        return 0
    if argv and argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    try:
        server = build_server(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return asyncio.run(_run(server))
    finally:
        pidfile = server.state.config.pidfile
        if pidfile:
            try:
                os.unlink(pidfile)
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main())
