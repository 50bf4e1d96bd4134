"""Lua scripting: EVAL scripts and FUNCTION libraries, as Redis 7.0 runs them.

A script runs inside its command's handler, so nothing else runs meanwhile
(atomicity). Its redis.call()s run as a script client (`ScriptClient`:
in_script=True, the caller's database and user, no transport): script_call
makes the script's checks, then dispatch.call runs the command: the
same command code, statistics, MONITOR ("[0 lua]") and propagation: what
the script changed reaches the AOF and the replicas as the commands it ran, wrapped in
MULTI/EXEC by the server when there are several, never as EVAL (effects
replication, Redis 7's only mode). Errors are counted in INFO errorstats once,
as Redis counts them: where a command (or redis.call's checks, which also
count the command's rejected_calls) answered with one, not again when it
becomes the script's reply (ErrorReply.stats_counted, read by dispatch.call).

Two interpreters (lua_engine.LuaEngine): one for EVAL scripts (the script
cache: sha1 -> compiled function; SCRIPT FLUSH replaces the interpreter), one
for function libraries (FUNCTION LOAD runs a library's code once; the
functions it registers are called by FCALL).

A script that runs longer than busy-reply-threshold makes the node "busy":
`server.busy_script` is set (the gate answers -BUSY) and the Lua hook keeps
serving the other clients through script_busy.BusyServer until the script
ends or is killed (SCRIPT KILL / FUNCTION KILL for scripts that wrote
nothing, SHUTDOWN NOSAVE for any).

Persistence. Function libraries are part of the dataset: the RDB writer asks
`server.function_codes()`, the RDB loader hands them back to
`server.load_function_codes(codes)`, and FUNCTION LOAD/DELETE/FLUSH/RESTORE
are write commands that travel through the AOF and replication. The EVAL
script cache is not persisted or replicated, as in Redis 7.0 (clients
re-send the script after NOSCRIPT).

Public API (attach(server) sets these):
    server.scripting                   this component
    server.function_codes() -> list[bytes]
    server.load_function_codes(codes)  replace all libraries by these (RDB load)
    server.flush_functions()           drop all libraries (full resync)
    server.busy_script                 the ScriptRun while busy (gate uses busy_error())
"""

from __future__ import annotations

import hashlib
import re
import time

from hakv.common import dispatch, errors
from hakv.common.connection import Block, Client
from hakv.common.crc64 import crc64
from hakv.common.lua_engine import (LuaEngine, ScriptError, error_text,
                                     lua_number_string, number_arg)
from hakv.common.numbers import parse_int
from hakv.common.resp import ErrorReply, Raw
from hakv.common.script_busy import BusyServer
from hakv.common.server import human_bytes

NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
BUSY_FUNCTION = ("BUSY Redis is busy running a script. You can only call FUNCTION KILL or "
                 "SHUTDOWN NOSAVE.")
NOTBUSY = "NOTBUSY No scripts in execution right now."
UNKILLABLE_WRITES = (
    "UNKILLABLE Sorry the script already executed write commands against the dataset. You "
    "can either wait the script termination or kill the server in a hard way using the "
    "SHUTDOWN NOSAVE command.")
UNKILLABLE_PRIMARY = ("UNKILLABLE The busy script was sent by a master instance in the "
                      "context of replication and cannot be killed.")
RO_WITH_WRITE_FLAG = "ERR Can not execute a script with write flag using *_ro command."
KILLED = "Script killed by user with SCRIPT KILL..."
KILLED_FUNCTION = "Script killed by user with FUNCTION KILL..."
LOAD_TIMEOUT_S = 0.5
NAME_RE = re.compile(rb"^[A-Za-z0-9_]+$")
BAD_NAME = ("Library names can only contain letters, numbers, or underscores(_) and must be at "
            "least one character long")

# Flags a function or a shebang script may declare, in Redis's order.
SCRIPT_FLAGS = ("no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys")

REPL_ALL = 3

RDB_OPCODE_FUNCTION2 = 0xF5
RDB_OPCODE_FUNCTION_PRE_GA = 0xF6
RDB_VERSION = 10

# redis.call runs once or more per script: the dispatcher's entry points
# bound once, and numkeys values as clients send them, parsed once.
_find_command = dispatch.find_command
_call = dispatch.call
_NO_REPLY = dispatch.NO_REPLY
# How many command names (as scripts spell them) script_call remembers.
_NAMES_REMEMBERED = 256
_SMALL_NUMKEYS = {b"%d" % n: n for n in range(32)}
_STATUS_BYTES = {"OK": b"OK", "PONG": b"PONG", "QUEUED": b"QUEUED"}


def _command_arg(a):
    """A non-string redis.call argument: a Lua number as Redis formats it,
    None for anything else (tables, booleans, nil)."""
    cls = a.__class__
    if cls is int or cls is float:
        return number_arg(a)
    return None


class ScriptClient(Client):
    """The client a script's commands run as: no connection; replies a
    handler writes itself are collected instead of encoded."""

    def __init__(self, server):
        super().__init__(server)
        self.authenticated = True
        self.in_script = True
        self.addr = "lua"
        self.laddr = "lua"
        self.replies: list = []

    def reply(self, value) -> None:
        self.replies.append(value)

    def reply_raw(self, data: bytes) -> None:
        self.replies.append(Raw(data))

    def flush(self) -> None:
        self.out.clear()

    def send(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


class Script:
    __slots__ = ("sha", "name", "body", "fn", "flags", "has_shebang")

    def __init__(self, sha, body, fn, flags, has_shebang):
        self.sha = sha
        self.name = sha.decode()
        self.body = body
        self.fn = fn
        self.flags = flags
        self.has_shebang = has_shebang


class Library:
    __slots__ = ("name", "code", "functions")

    def __init__(self, name: bytes, code: bytes):
        self.name = name
        self.code = code
        self.functions: dict = {}


class Function:
    __slots__ = ("name", "library", "fn", "flags", "description")

    def __init__(self, name, library, fn, flags, description):
        self.name = name
        self.library = library
        self.fn = fn
        self.flags = flags
        self.description = description


class ScriptRun:
    """The script being run: what the hook, SCRIPT KILL and FUNCTION STATS see."""

    __slots__ = ("kind", "name", "caller", "argv", "read_only", "start", "write_dirty",
                 "killed", "timed_out", "resp3", "repl")

    def __init__(self, kind: str, name: str, caller, argv, read_only: bool):
        self.kind = kind  # "eval", "function" or "load"
        self.name = name
        self.caller = caller
        self.argv = argv
        self.read_only = read_only
        self.start = time.monotonic()
        self.write_dirty = False
        self.killed: str | None = None
        self.timed_out = False
        self.resp3 = False
        self.repl = REPL_ALL

    def busy_error(self) -> str:
        return errors.BUSY if self.kind == "eval" else BUSY_FUNCTION


def parse_shebang(body: bytes, for_function: bool):
    """(engine options {name: value}, body with the shebang line blanked),
    or (None, body) without a shebang. Errors as Redis words them."""
    if not body.startswith(b"#!"):
        return None, body
    end = body.find(b"\n")
    line = body[:end] if end >= 0 else body
    rest = body[end:] if end >= 0 else b""
    parts = line.split()
    engine = parts[0][2:] if parts else b""
    if for_function:
        if engine.lower() != b"lua":
            raise ErrorReply("ERR Engine '%s' not found" % engine.decode("utf-8", "replace"))
    elif engine != b"lua":
        raise ErrorReply("ERR Unexpected engine in script shebang: %s"
                         % parts[0].decode("utf-8", "replace"))
    options = {}
    for part in parts[1:]:
        key, eq, value = part.partition(b"=")
        if for_function:
            if key != b"name" or not eq:
                raise ErrorReply("ERR Invalid metadata value given: %s"
                                 % part.decode("utf-8", "replace"))
        elif key != b"flags" or not eq:
            raise ErrorReply("ERR Unknown lua shebang option: %s" % part.decode("utf-8", "replace"))
        options[key] = value
    return options, rest


def script_flags(options) -> tuple:
    flags = []
    raw = options.get(b"flags", b"")
    for f in raw.split(b","):
        if not f:
            continue
        name = f.decode("utf-8", "replace")
        if name not in SCRIPT_FLAGS:
            raise ErrorReply("ERR Unexpected flag in script shebang: %s" % name)
        flags.append(name)
    return tuple(flags)


class Scripting:
    def __init__(self, server):
        self.server = server
        self.scripts: dict[bytes, Script] = {}
        self.scripts_memory = 0
        self.libraries: dict[bytes, Library] = {}
        self.functions: dict[bytes, Function] = {}
        self.eval_engine = LuaEngine(self, "eval")
        self.function_engine = LuaEngine(self, "function")
        self.client = ScriptClient(server)
        self.command_entries: dict = {}  # name as scripts spell it -> Command
        self.current: ScriptRun | None = None
        self.engine: LuaEngine | None = None  # the engine running `current`
        self.busy: BusyServer | None = None
        self.registering: dict | None = None  # functions registered by a library loading
        self.threshold_s = server.settings["busy-reply-threshold"] / 1000.0
        server.settings.listeners.append(self._on_config_set)

    # ------------------------------------------------------------ EVAL

    def eval(self, ctx, argv: list, by_sha: bool, read_only: bool):
        if self.server.monitors:
            self._monitor(ctx, argv)
        if by_sha:
            script = self.scripts.get(argv[1])
            if script is None:
                script = self.scripts.get(argv[1].lower())
                if script is None:
                    raise ErrorReply(NOSCRIPT)
            nkeys = _SMALL_NUMKEYS.get(argv[2])
            if nkeys is None or nkeys > len(argv) - 3:
                nkeys = self._numkeys(argv, errors.NOT_INTEGER)
        else:
            nkeys = self._numkeys(argv, errors.NOT_INTEGER)
            script = self.load_script(argv[1])
        if script.has_shebang:
            ro = "no-writes" in script.flags
            if read_only and not ro:
                raise ErrorReply(RO_WITH_WRITE_FLAG)
            read_only = read_only or ro
        run = ScriptRun("eval", script.name, ctx, argv, read_only)
        return self._run(ctx, run, self.eval_engine, self.eval_engine.run_eval, script.fn,
                         nkeys, argv)

    def evalsha(self, ctx, argv: list, read_only: bool):
        """EVALSHA / EVALSHA_RO: eval()'s common case (a cached script
        without a shebang, a small key count, no MONITOR) without its
        branches; anything else goes through eval()."""
        script = self.scripts.get(argv[1])
        nkeys = _SMALL_NUMKEYS.get(argv[2])
        if (script is None or nkeys is None or nkeys > len(argv) - 3 or script.has_shebang
                or self.server.monitors):
            return self.eval(ctx, argv, True, read_only)
        engine = self.eval_engine
        return self._run(ctx, ScriptRun("eval", script.name, ctx, argv, read_only), engine,
                         engine.run_eval, script.fn, nkeys, argv)

    def _monitor(self, ctx, argv) -> None:
        # EVAL/FCALL are skip_monitor: they show in MONITOR when they start,
        # before the commands they run (and even when they fail).
        server = self.server
        if server.monitors and not ctx.is_replica:
            server.feed_monitors(ctx, argv)

    def _numkeys(self, argv, message):
        n = _SMALL_NUMKEYS.get(argv[2])
        if n is None:
            n = parse_int(argv[2])
            if n is None:
                raise ErrorReply(message)
        if n < 0:
            raise ErrorReply("ERR Number of keys can't be negative")
        if n > len(argv) - 3:
            raise ErrorReply("ERR Number of keys can't be greater than number of args")
        return n

    def load_script(self, body: bytes) -> Script:
        """The cached script for body, compiling and caching it if new."""
        sha = hashlib.sha1(body).hexdigest().encode()
        script = self.scripts.get(sha)
        if script is not None:
            return script
        options, code = parse_shebang(body, for_function=False)
        flags = script_flags(options) if options is not None else ()
        ok, fn = self.eval_engine.compile(code, b"@user_script")
        if not ok:
            raise ErrorReply("ERR Error compiling script (new function): %s"
                             % fn.decode("utf-8", "surrogateescape"))
        script = Script(sha, body, fn, flags, options is not None)
        self.scripts[sha] = script
        self.scripts_memory += len(body)
        self._update_info()
        return script

    def script_exists(self, shas) -> list:
        return [1 if s.lower() in self.scripts else 0 for s in shas]

    def script_flush(self) -> None:
        self.scripts = {}
        self.scripts_memory = 0
        self.eval_engine = LuaEngine(self, "eval")
        self._update_info()

    def _update_info(self) -> None:
        self.server.cached_scripts = len(self.scripts)
        self.server.scripts_memory = self.scripts_memory

    # ------------------------------------------------------------ FCALL

    def fcall(self, ctx, argv: list, read_only: bool):
        if self.server.monitors:
            self._monitor(ctx, argv)
        fn = self.functions.get(argv[1])
        if fn is None:
            raise ErrorReply("ERR Function not found")
        nkeys = self._numkeys(argv, "ERR Bad number of keys provided")
        ro = "no-writes" in fn.flags
        if read_only and not ro:
            raise ErrorReply(RO_WITH_WRITE_FLAG)
        run = ScriptRun("function", fn.name.decode("utf-8", "replace"), ctx, argv,
                        read_only or ro)
        return self._run(ctx, run, self.function_engine, self.function_engine.run_function,
                         fn.fn, nkeys, argv)

    # ------------------------------------------------------------ running

    def _run(self, ctx, run: ScriptRun, engine: LuaEngine, runner, fn, nkeys, argv):
        """Run fn with KEYS and ARGV from argv[3:] (nkeys of them keys)."""
        server = self.server
        client = self.client
        client.dbid = ctx.dbid
        client.db = ctx.db
        client.user = ctx.user
        client.resp3 = False
        client.is_primary = ctx.is_primary
        self.current = run
        self.engine = engine
        n = len(argv)
        try:
            # The usual argument counts without slicing argv into a tuple.
            if n == 5:
                result = runner(fn, nkeys, argv[3], argv[4])
            elif n == 4:
                result = runner(fn, nkeys, argv[3])
            else:
                result = runner(fn, nkeys, *argv[3:])
        finally:
            self.current = None
            self.engine = None
            if run.timed_out:
                self._leave_busy(run)
        # EVAL itself is never propagated: the commands it ran are.
        ctx.custom_propagation = True
        if run.killed and server.shutdown_event is not None and server.shutdown_event.is_set():
            server.pending_propagation = []  # SHUTDOWN NOSAVE: nothing more is written
        cls = result.__class__
        if cls is bytes:  # to_reply's commonest case
            return result
        if cls is tuple:  # (False, error table): see run_eval in lua_engine
            return self._script_error(result[1], run)
        return engine.to_reply(result, run.resp3, ctx.resp3)

    def _script_error(self, table, run: ScriptRun) -> ErrorReply:
        err = table[b"err"]
        message = err.decode("utf-8", "surrogateescape") if isinstance(err, bytes) else str(err)
        source, line = table[b"source"], table[b"line"]
        if source is not None and line is not None:
            message = "%s script: %s, on %s:%d." % (
                message, run.name, source.decode("utf-8", "replace"), int(line))
        reply = ErrorReply(message)
        if table[b"ignore_error_stats_update"]:  # counted when redis.call raised it
            reply.stats_counted = True
        return reply

    # Called from Lua.

    def script_call(self, *args):
        """redis.call: check and run one command for the script; its reply as
        a Lua value, an error reply (Redis's script-specific ones or the
        command's) raised as a ScriptError. The hot path of every redis.call:
        the script's checks in this one frame, then dispatch.call. (Running
        the command here instead of calling dispatch.call saved about 0.4 us
        of a 12 us EVALSHA in-process: not worth a second copy of call.)"""
        try:
            # Lua strings arrive as bytes (the usual case, checked without
            # converting); numbers become arguments as Redis formats them.
            argv = [*args]
            for a in argv:
                if a.__class__ is not bytes:
                    argv = [a if a.__class__ is bytes else _command_arg(a) for a in args]
                    if None in argv:
                        raise ScriptError(b"ERR Lua redis lib command arguments must be strings "
                                          b"or integers")
                    break
            if not argv:
                raise ScriptError(b"ERR Please specify at least one argument for this redis lib "
                                  b"call")
            server = self.server
            # The command as the script names it ('set', 'GET'): top-level
            # commands are remembered per name (the table does not change
            # once the server runs); subcommands and errors are looked up.
            cmd = self.command_entries.get(argv[0])
            if cmd is None:
                cmd = self._command_entry(argv)
            arity = cmd.arity
            if arity != len(argv) if arity > 0 else len(argv) < -arity:
                cmd = self._command_entry(argv)
            if cmd.no_script:
                raise self._rejected(cmd, b"ERR This Redis command is not allowed from script")
            client = self.client
            acl = server.acl
            # An unrestricted user passes the ACL check (dispatch.execute's rule).
            if acl is not None and (cmd.no_auth or client.user not in acl.unrestricted):
                denied = acl.check(client, cmd, argv)
                if denied is not None:
                    raise self._rejected(cmd, error_text(denied.message))
            run = self.current
            is_write = cmd.is_write
            if is_write or cmd.denyoom:
                if is_write and run.read_only:
                    raise self._rejected(cmd, b"ERR Write commands are not allowed from "
                                              b"read-only scripts.")
                # As in Redis, the node's state (READONLY, MISCONF, NOREPLICAS,
                # OOM) can only stop a script before its first write: after
                # that it must run to its end.
                if not run.write_dirty:
                    for check in server.write_checks:  # server.write_gate, inlined
                        denied = check(client, cmd)
                        if denied is not None:
                            raise self._rejected(cmd, error_text(denied.message))
            if server.stale_gate is not None and not cmd.allow_stale and not client.is_primary:
                denied = server.stale_gate(client, cmd)
                if denied is not None:
                    raise self._rejected(cmd, error_text(denied.message))
            if is_write:
                run.write_dirty = True
            if run.repl == 0:  # redis.set_repl(redis.REPL_NONE): nothing propagated
                propagating = server.propagating
                server.propagating = False
                try:
                    reply = _call(client, cmd, argv)
                finally:
                    server.propagating = propagating
            else:
                reply = _call(client, cmd, argv)
            if reply is _NO_REPLY or reply.__class__ is Block:
                reply = self._collected_reply(client, reply)
        except ScriptError:
            raise
        except Exception as exc:  # a bug must not escape into the interpreter
            self.server.log("warning", "Error in script call %r: %r" % (args[:1], exc))
            raise ScriptError(error_text("ERR internal error: %s" % exc)) from None
        cls = reply.__class__
        if cls is bytes or cls is int:
            return reply
        if cls is str:  # a status reply (SET's OK): {ok=...}, inline as it is common
            status = _STATUS_BYTES.get(reply)
            if status is not None:
                pool = self.engine.status_pools.get(status)  # status_table(), inlined
                return pool.pop() if pool else self.engine.status_table(status)
        elif cls is ErrorReply:  # counted by the command's call
            raise ScriptError(error_text(reply.message), counted=True)
        return self._lua_reply(reply, cls)

    def _command_entry(self, argv):
        """The Command for argv, remembered by name for top-level commands;
        Redis's script errors for unknown commands and wrong arity."""
        cmd = _find_command(self.server, argv)
        if cmd.__class__ is ErrorReply:
            if getattr(cmd, "command", None) is None:
                raise self._rejected(None, b"ERR Unknown Redis command called from script")
            raise self._rejected(cmd.command, b"ERR Wrong number of args calling Redis command "
                                              b"from script")
        if (cmd.parent is None and not cmd.subcommands
                and len(self.command_entries) < _NAMES_REMEMBERED):
            self.command_entries[argv[0]] = cmd
        return cmd

    def script_pcall(self, *args):
        """redis.pcall: the same, an error reply returned as {err=...}."""
        try:
            return self.script_call(*args)
        except ScriptError as exc:
            return self.engine.table_from({b"err": exc.message,
                                           b"ignore_error_stats_update": exc.counted})

    def _rejected(self, cmd, message: bytes) -> ScriptError:
        """A redis.call its checks refuse, counted once here as Redis's
        scriptCall does: the command's rejected_calls, INFO errorstats."""
        if cmd is not None:
            cmd.rejected_calls += 1
        self.server.count_error(ErrorReply(message.decode("utf-8", "surrogateescape")))
        return ScriptError(message, counted=True)

    def _lua_reply(self, reply, cls):
        if cls is str:
            return self.engine.table_from({b"ok": reply.encode("utf-8", "surrogateescape")})
        if reply is None:
            return None if self.client.resp3 else False
        return self.engine.to_lua(reply, self.client.resp3)[1]

    def _collected_reply(self, client, reply):
        if client.block is not None:
            block = client.block
            self.server.unblock(client, None, send=False)
            return block.on_timeout
        if reply.__class__ is Block:
            return reply.on_timeout
        replies, client.replies = client.replies, []
        if not replies:
            return None
        return replies[0] if len(replies) == 1 else replies

    def hook(self):
        """Every HOOK_COUNT Lua instructions: time limits, busy serving, kills."""
        run = self.current
        if run is None:
            return None
        if run.killed:
            return run.killed
        now = time.monotonic()
        if run.kind == "load":
            if now - run.start > LOAD_TIMEOUT_S:
                run.killed = "FUNCTION LOAD timeout"
            return run.killed
        if not run.timed_out:
            if now - run.start < self.threshold_s:
                return None
            self._enter_busy(run, now)
        self.busy.poll()
        return run.killed

    def _enter_busy(self, run: ScriptRun, now: float) -> None:
        run.timed_out = True
        server = self.server
        server.log("warning", "Slow script detected: still in execution after %d milliseconds. "
                   "You can try killing the script using the %s command. Script name is: %s."
                   % ((now - run.start) * 1000, "SCRIPT KILL" if run.kind == "eval"
                      else "FUNCTION KILL", run.name))
        self.busy = BusyServer(server, run.caller)
        server.busy_script = run

    def _leave_busy(self, run: ScriptRun) -> None:
        server = self.server
        server.busy_script = None
        busy, self.busy = self.busy, None
        if busy is not None:
            busy.close()
        server.log("warning", "Slow script finished in %d milliseconds"
                   % ((time.monotonic() - run.start) * 1000))

    def script_log(self, *args) -> None:
        if len(args) < 2:
            raise ScriptError(b"ERR redis.log() requires two arguments or more.")
        level = args[0]
        if not isinstance(level, (int, float)) or isinstance(level, bool):
            raise ScriptError(b"ERR First argument must be a number (log level).")
        if not 0 <= level <= 3:
            raise ScriptError(b"ERR Invalid debug level.")
        parts = []
        for a in args[1:]:
            if isinstance(a, bytes):
                parts.append(a)
            elif isinstance(a, (int, float)) and not isinstance(a, bool):
                parts.append(lua_number_string(a))
        name = ("debug", "verbose", "notice", "warning")[int(level)]
        self.server.log(name, b" ".join(parts).decode("utf-8", "replace"))

    def setresp(self, *args) -> None:
        if len(args) != 1:
            raise ScriptError(b"ERR redis.setresp() requires one argument.")
        if args[0] not in (2, 3) or isinstance(args[0], bool):
            raise ScriptError(b"ERR RESP version must be 2 or 3.")
        resp3 = args[0] == 3
        self.current.resp3 = resp3
        self.client.resp3 = resp3

    def set_repl(self, *args) -> None:
        if len(args) != 1:
            raise ScriptError(b"ERR redis.set_repl() requires two arguments.")
        flags = args[0]
        if (not isinstance(flags, (int, float)) or isinstance(flags, bool)
                or flags not in (0, 1, 2, 3)):
            raise ScriptError(b"ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, "
                              b"REPL_ALL or REPL_NONE.")
        # The AOF and the replicas share one stream here: any target keeps it.
        self.current.repl = int(flags)

    def acl_check(self, *args):
        argv = []
        for a in args:
            if isinstance(a, bytes):
                argv.append(a)
            elif isinstance(a, (int, float)) and not isinstance(a, bool):
                argv.append(number_arg(a))
            else:
                raise ScriptError(b"ERR Lua redis lib command arguments must be strings or "
                                  b"integers")
        if not argv:
            raise ScriptError(b"ERR Please specify at least one argument for this redis lib "
                              b"call")
        cmd = dispatch.lookup(self.server, argv)
        if cmd.__class__ is ErrorReply:
            raise ScriptError(b"ERR Invalid command passed to redis.acl_check_cmd()")
        acl = self.server.acl
        if acl is None:
            return True
        return acl.check(self.client, cmd, argv) is None

    # ------------------------------------------------------------ KILL

    def kill(self, is_eval: bool):
        run = self.current
        if run is None or run.kind == "load":
            raise ErrorReply(NOTBUSY)
        if run.caller.is_primary:
            raise ErrorReply(UNKILLABLE_PRIMARY)
        if run.write_dirty:
            raise ErrorReply(UNKILLABLE_WRITES)
        if is_eval and run.kind != "eval":
            raise ErrorReply(BUSY_FUNCTION)
        if not is_eval and run.kind == "eval":
            raise ErrorReply(errors.BUSY)
        run.killed = KILLED if is_eval else KILLED_FUNCTION
        return "OK"

    def _on_shutdown(self, save):
        run = self.current
        if run is None or not run.timed_out:
            return None
        if save is not False:
            return ErrorReply(run.busy_error())
        run.killed = KILLED  # SHUTDOWN NOSAVE: stop the script, then the node
        return None

    # ------------------------------------------------------------ functions

    def register_function(self, name, fn, flags, description):
        """redis.register_function while a library loads: None or an error."""
        pending = self.registering
        if pending is None:
            return "redis.register_function can only be called on FUNCTION LOAD command"
        if not NAME_RE.match(name):
            return BAD_NAME
        if name in pending:
            return "Function already exists in the library"
        flag_names = []
        for f in flags.values():
            text = f.decode("utf-8", "replace")
            if text not in SCRIPT_FLAGS:
                return "unknown flag given"
            if text not in flag_names:
                flag_names.append(text)
        flag_names.sort(key=SCRIPT_FLAGS.index)
        pending[name] = (fn, tuple(flag_names), description)
        return None

    def compile_library(self, code: bytes) -> Library:
        """Run a library's code; the Library with its functions (not installed)."""
        options, body = parse_shebang(code, for_function=True)
        if options is None:
            raise ErrorReply("ERR Missing library metadata")
        name = options.get(b"name")
        if name is None:
            raise ErrorReply("ERR Library name was not given")
        if not NAME_RE.match(name):
            raise ErrorReply("ERR " + BAD_NAME)
        engine = self.function_engine
        lib = Library(name, code)
        self.registering = {}
        run = ScriptRun("load", name.decode("utf-8", "replace"), None, None, True)
        self.current = run
        try:
            ok, err, compile_error = engine.load_library(body)
        finally:
            self.current = None
            registered, self.registering = self.registering, None
        if compile_error:
            raise ErrorReply("ERR Error compiling function: %s"
                             % err.decode("utf-8", "surrogateescape"))
        if not ok:
            msg = err[b"err"]
            raise ErrorReply("ERR Error registering functions: %s" % (
                msg.decode("utf-8", "surrogateescape") if isinstance(msg, bytes) else msg))
        if not registered:
            raise ErrorReply("ERR No functions registered")
        for fname, (fn, flags, description) in registered.items():
            lib.functions[fname] = Function(fname, lib, fn, flags, description)
        return lib

    def install_libraries(self, libs: list, replace: bool, flush: bool = False,
                          exists: str = "ERR Library '%s' already exists") -> None:
        """Add compiled libraries atomically, checking name clashes."""
        libraries = {} if flush else dict(self.libraries)
        for lib in libs:
            old = libraries.get(lib.name)
            if old is not None and not replace:
                raise ErrorReply(exists % lib.name.decode("utf-8", "replace"))
            libraries[lib.name] = lib
        functions = {}
        for lib in libraries.values():
            for fname, fn in lib.functions.items():
                if fname in functions:
                    raise ErrorReply("ERR Function %s already exists"
                                     % fname.decode("utf-8", "replace"))
                functions[fname] = fn
        self.libraries = libraries
        self.functions = functions

    def function_load(self, code: bytes, replace: bool) -> bytes:
        options, _ = parse_shebang(code, for_function=True)
        if options is not None:
            name = options.get(b"name")
            if name is not None and name in self.libraries and not replace:
                raise ErrorReply("ERR Library '%s' already exists"
                                 % name.decode("utf-8", "replace"))
        lib = self.compile_library(code)
        self.install_libraries([lib], replace)
        return lib.name

    def function_delete(self, name: bytes) -> None:
        lib = self.libraries.get(name)
        if lib is None:
            raise ErrorReply("ERR Library not found")
        del self.libraries[name]
        for fname in lib.functions:
            self.functions.pop(fname, None)

    def flush_functions(self) -> None:
        self.libraries = {}
        self.functions = {}
        self.function_engine = LuaEngine(self, "function")

    def function_codes(self) -> list:
        return [lib.code for lib in self.libraries.values()]

    def load_function_codes(self, codes) -> None:
        """Replace every library by those in `codes` (an RDB being loaded)."""
        self.flush_functions()
        for code in codes:
            try:
                lib = self.compile_library(bytes(code))
                self.install_libraries([lib], replace=True)
            except ErrorReply as exc:
                self.server.log("warning", "Failed loading library from the RDB: %s"
                                % exc.message)

    def dump(self) -> bytes:
        body = bytearray()
        for lib in self.libraries.values():
            body.append(RDB_OPCODE_FUNCTION2)
            body += _rdb_string(lib.code)
        body += RDB_VERSION.to_bytes(2, "little")
        return bytes(body) + crc64(bytes(body)).to_bytes(8, "little")

    def restore(self, payload: bytes, policy: bytes) -> None:
        if len(payload) < 10:
            raise ErrorReply("ERR DUMP payload version or checksum are wrong")
        body, footer = payload[:-8], payload[-8:]
        version = int.from_bytes(payload[-10:-8], "little")
        crc = int.from_bytes(footer, "little")
        if version > RDB_VERSION or (crc and crc64(body) != crc):
            raise ErrorReply("ERR DUMP payload version or checksum are wrong")
        data = payload[:-10]
        codes = []
        pos = 0
        while pos < len(data):
            opcode = data[pos]
            pos += 1
            if opcode == RDB_OPCODE_FUNCTION_PRE_GA:
                raise ErrorReply("ERR Pre-GA function format not supported")
            if opcode != RDB_OPCODE_FUNCTION2:
                raise ErrorReply("ERR given type is not a function")
            try:
                code, pos = _read_rdb_string(data, pos)
            except Exception:
                raise ErrorReply("ERR payload is not a valid functions payload") from None
            codes.append(code)
        libs = [self.compile_library(code) for code in codes]
        if policy == b"flush":
            self.install_libraries(libs, replace=True, flush=True)
        else:
            self.install_libraries(libs, replace=policy == b"replace",
                                   exists="ERR Library %s already exists")

    def stats(self, ctx):
        run = self.current
        if run is not None and run.kind == "eval":
            raise ErrorReply(errors.BUSY)
        running = None
        if run is not None and run.kind == "function":
            running = {b"name": run.name.encode(), b"command": list(run.argv),
                       b"duration_ms": int((time.monotonic() - run.start) * 1000)}
        return {b"running_script": running,
                b"engines": {b"LUA": {b"libraries_count": len(self.libraries),
                                      b"functions_count": len(self.functions)}}}

    # ------------------------------------------------------------ config / info

    def _on_config_set(self, name: str, value) -> None:
        if name == "busy-reply-threshold":
            self.threshold_s = value / 1000.0

    def memory_info(self, lines):
        """INFO memory with the scripting figures filled in."""
        values = {
            "used_memory_lua": self.eval_engine.memory(),
            "used_memory_vm_eval": self.eval_engine.memory(),
            "used_memory_scripts_eval": self.scripts_memory,
            "number_of_cached_scripts": len(self.scripts),
            "number_of_functions": len(self.functions),
            "number_of_libraries": len(self.libraries),
            "used_memory_vm_functions": self.function_engine.memory(),
            "used_memory_functions": sum(len(lib.code) for lib in self.libraries.values()),
        }
        values["used_memory_vm_total"] = (values["used_memory_vm_eval"]
                                          + values["used_memory_vm_functions"])
        values["used_memory_scripts"] = (values["used_memory_scripts_eval"]
                                         + values["used_memory_functions"])
        out = []
        for item in lines:
            if isinstance(item, tuple) and item[0] in values:
                item = (item[0], str(values[item[0]]))
            elif isinstance(item, tuple) and item[0].endswith("_human"):
                base = item[0][:-6]
                if base in values:
                    item = (item[0], human_bytes(values[base]))
            out.append(item)
        return out


def _rdb_string(s: bytes) -> bytes:
    """An RDB length-prefixed string (uncompressed; Redis reads it as is)."""
    n = len(s)
    if n < 64:
        return bytes((n,)) + s
    if n < 16384:
        return bytes((0x40 | (n >> 8), n & 0xFF)) + s
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big") + s
    return b"\x81" + n.to_bytes(8, "big") + s


def _read_rdb_string(data: bytes, pos: int):
    from hakv.common import rdb

    value, pos = rdb._read_string(data, pos, len(data))
    return bytes(value), pos


def attach(server):
    scripting = Scripting(server)
    server.scripting = scripting
    server.function_codes = scripting.function_codes
    server.load_function_codes = scripting.load_function_codes
    server.flush_functions = scripting.flush_functions
    server.shutdown_hooks.insert(0, scripting._on_shutdown)
    scripting._update_info()
    return scripting
