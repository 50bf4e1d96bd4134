"""Scripting commands: EVAL EVALSHA EVAL_RO EVALSHA_RO FCALL FCALL_RO, SCRIPT
and FUNCTION. The work is done by the scripting component (common/scripting.py,
`ctx.server.scripting`); this module parses arguments and shapes replies.
"""

from __future__ import annotations

from hakv.common import errors
from hakv.common.commands.table import command, container
from hakv.common.glob import compile_glob
from hakv.common.numbers import parse_int
from hakv.common.resp import ErrorReply, Raw

G = "scripting"


def script_keys(argv: list) -> list:
    """EVAL/FCALL key positions: numkeys at 2, the keys right after it."""
    n = parse_int(argv[2]) if len(argv) > 2 else None
    if n is None or n < 0 or n > len(argv) - 3:
        return []
    return list(range(3, 3 + n))


def _scripting(ctx):
    scripting = getattr(ctx.server, "scripting", None)
    if scripting is None:
        raise ErrorReply("ERR scripting is not available on this node")
    return scripting


_RUN = "noscript stale skip_monitor no_mandatory_keys"


@command("eval", -3, _RUN + " may_replicate", group=G, key_finder=script_keys)
def eval_(ctx, argv):
    return _scripting(ctx).eval(ctx, argv, by_sha=False, read_only=False)


@command("evalsha", -3, _RUN + " may_replicate", group=G, key_finder=script_keys)
def evalsha(ctx, argv):
    try:  # _scripting(), inlined: EVALSHA is the scripting command clients repeat
        scripting = ctx.server.scripting
    except AttributeError:
        scripting = _scripting(ctx)
    return scripting.evalsha(ctx, argv, False)


@command("eval_ro", -3, "readonly " + _RUN, group=G, key_finder=script_keys)
def eval_ro(ctx, argv):
    return _scripting(ctx).eval(ctx, argv, by_sha=False, read_only=True)


@command("evalsha_ro", -3, "readonly " + _RUN, group=G, key_finder=script_keys)
def evalsha_ro(ctx, argv):
    return _scripting(ctx).evalsha(ctx, argv, True)


@command("fcall", -3, _RUN + " may_replicate", group=G, key_finder=script_keys)
def fcall(ctx, argv):
    return _scripting(ctx).fcall(ctx, argv, read_only=False)


@command("fcall_ro", -3, "readonly " + _RUN, group=G, key_finder=script_keys)
def fcall_ro(ctx, argv):
    return _scripting(ctx).fcall(ctx, argv, read_only=True)


# ------------------------------------------------------------------ SCRIPT

container("script", -2, group=G)


@command("script|load", 3, "noscript stale", group=G)
def script_load(ctx, argv):
    return _scripting(ctx).load_script(argv[2]).sha


@command("script|exists", -3, "noscript", group=G)
def script_exists(ctx, argv):
    return _scripting(ctx).script_exists(argv[2:])


def _flush_mode(argv, message):
    if len(argv) > 3 or (len(argv) == 3 and argv[2].lower() not in (b"sync", b"async")):
        raise ErrorReply(message)


@command("script|flush", -2, "noscript", group=G)
def script_flush(ctx, argv):
    _flush_mode(argv, "ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    _scripting(ctx).script_flush()
    return "OK"


@command("script|kill", 2, "noscript allow_busy", group=G)
def script_kill(ctx, argv):
    return _scripting(ctx).kill(is_eval=True)


@command("script|debug", 3, "noscript", group=G)
def script_debug(ctx, argv):
    mode = argv[2].lower()
    if mode == b"no":
        return "OK"
    if mode in (b"yes", b"sync"):
        raise ErrorReply("ERR the Lua debugger (LDB) is not available in hakv")
    raise ErrorReply("ERR Use SCRIPT DEBUG YES/SYNC/NO")


@command("script|help", 2, "loading stale", group=G)
def script_help(ctx, argv):
    return [
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Debugging of scripts (only NO is accepted by hakv).",
        "EXISTS <sha1> [<sha1> ...]",
        "    For each sha1, 1 if the script is in the script cache, else 0.",
        "FLUSH [ASYNC|SYNC]",
        "    Empty the script cache.",
        "KILL",
        "    Stop the running script (when it has not written anything).",
        "LOAD <script>",
        "    Put a script in the cache without running it; returns its sha1.",
        "HELP",
        "    This help.",
    ]


# ------------------------------------------------------------------ FUNCTION

container("function", -2, group=G)


@command("function|load", -3, "write denyoom noscript", group=G)
def function_load(ctx, argv):
    replace = False
    for opt in argv[2:-1]:
        if opt.lower() == b"replace":
            replace = True
        else:
            raise ErrorReply("ERR Unknown option given: %s" % opt.decode("utf-8", "replace"))
    name = _scripting(ctx).function_load(argv[-1], replace)
    ctx.server.dirty += 1
    return name


@command("function|delete", 3, "write noscript", group=G)
def function_delete(ctx, argv):
    _scripting(ctx).function_delete(argv[2])
    ctx.server.dirty += 1
    return "OK"


@command("function|flush", -2, "write noscript", group=G)
def function_flush(ctx, argv):
    _flush_mode(argv, "ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
    _scripting(ctx).flush_functions()
    ctx.server.dirty += 1
    return "OK"


@command("function|dump", 2, "noscript", group=G)
def function_dump(ctx, argv):
    return _scripting(ctx).dump()


@command("function|restore", -3, "write denyoom noscript", group=G)
def function_restore(ctx, argv):
    if len(argv) > 4:
        raise ErrorReply(errors.SYNTAX)
    policy = argv[3].lower() if len(argv) == 4 else b"append"
    if policy not in (b"flush", b"append", b"replace"):
        raise ErrorReply("ERR Wrong restore policy given, value should be either FLUSH, "
                         "APPEND or REPLACE.")
    _scripting(ctx).restore(argv[2], policy)
    ctx.server.dirty += 1
    return "OK"


@command("function|list", -2, "noscript", group=G)
def function_list(ctx, argv):
    with_code = False
    pattern = None
    i = 2
    while i < len(argv):
        arg = argv[i].lower()
        if arg == b"withcode" and not with_code:
            with_code = True
        elif arg == b"libraryname" and pattern is None:
            if i + 1 >= len(argv):
                raise ErrorReply("ERR library name argument was not given")
            pattern = argv[i + 1]
            i += 1
        else:
            raise ErrorReply("ERR Unknown argument %s" % argv[i].decode("utf-8", "replace"))
        i += 1
    match = compile_glob(pattern) if pattern is not None else None
    out = []
    for lib in _scripting(ctx).libraries.values():
        if match is not None and not match(lib.name):
            continue
        functions = [{b"name": fn.name, b"description": fn.description,
                      b"flags": _status_set(fn.flags, ctx.resp3)}
                     for fn in lib.functions.values()]
        entry = {b"library_name": lib.name, b"engine": b"LUA", b"functions": functions}
        if with_code:
            entry[b"library_code"] = lib.code
        out.append(entry)
    return out


def _status_set(items, resp3: bool) -> Raw:
    """A set of status strings in a fixed order (a Python set has none)."""
    head = b"~%d\r\n" if resp3 else b"*%d\r\n"
    return Raw((head % len(items)) + b"".join(b"+%s\r\n" % s.encode() for s in items))


@command("function|stats", 2, "noscript allow_busy", group=G)
def function_stats(ctx, argv):
    return _scripting(ctx).stats(ctx)


@command("function|kill", 2, "noscript allow_busy", group=G)
def function_kill(ctx, argv):
    return _scripting(ctx).kill(is_eval=False)


@command("function|help", 2, "loading stale", group=G)
def function_help(ctx, argv):
    return [
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Load a library (its code starts with '#!lua name=<library name>').",
        "DELETE <LIBRARY NAME>",
        "    Remove a library and its functions.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    The libraries (matching the glob pattern), their engine, functions and code.",
        "STATS",
        "    The function running now, if any, and the engines' counts.",
        "KILL",
        "    Stop the running function (when it has not written anything).",
        "FLUSH [ASYNC|SYNC]",
        "    Remove all libraries.",
        "DUMP",
        "    All libraries as a payload for FUNCTION RESTORE.",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Load the libraries of a payload; FLUSH removes the others first, APPEND (the",
        "    default) fails on a name already used, REPLACE replaces those libraries.",
        "HELP",
        "    This help.",
    ]
