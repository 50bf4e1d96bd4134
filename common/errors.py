"""Redis's error replies, by name, so every command uses the same texts.

Clients match on these strings (redis-py maps prefixes to exception classes),
so they are copied from Redis's observable behaviour, not invented.
"""

from hakv.common.resp import ErrorReply

CommandError = ErrorReply

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
SYNTAX = "ERR syntax error"
NO_SUCH_KEY = "ERR no such key"
OVERFLOW = "ERR increment or decrement would overflow"
NAN_OR_INF = "ERR increment would produce NaN or Infinity"
OUT_OF_RANGE = "ERR index out of range"
DB_INDEX = "ERR DB index is out of range"
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
READONLY = "READONLY You can't write against a read only replica."
MASTERDOWN = (
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
)
LOADING = "LOADING Redis is loading the dataset in memory"
NOREPLICAS = "NOREPLICAS Not enough good replicas to write."
OOM = "OOM command not allowed when used memory > 'maxmemory'."
EXECABORT = "EXECABORT Transaction discarded because of previous errors."
BUSY = (
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
)
MISCONF = (
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist "
    "to disk. Commands that may modify the data set are disabled, because this instance is "
    "configured to report errors during writes if RDB snapshotting fails "
    "(stop-writes-on-bgsave-error option). Please check the Redis logs for details about "
    "the RDB error."
)


def err(message: str) -> ErrorReply:
    return ErrorReply(message)


def wrong_args(name: str) -> ErrorReply:
    return ErrorReply("ERR wrong number of arguments for '%s' command" % name)


def unknown_command(argv: list) -> ErrorReply:
    # Redis lists the arguments as 'a' 'b' , until the list reaches 128 bytes;
    # like C strings, each stops at a NUL byte.
    shown = b""
    for a in argv[1:]:
        room = 128 - len(shown)
        if room <= 0:
            break
        shown += b"'%s' " % _cstr(a)[:room]
    return ErrorReply("ERR unknown command '%s', with args beginning with: %s"
                      % (_show(_cstr(argv[0])[:128]), _show(shown)))


def unknown_subcommand(argv: list) -> ErrorReply:
    return ErrorReply("ERR unknown subcommand '%s'. Try %s HELP."
                      % (_show(_cstr(argv[1])[:128]), _show(_cstr(argv[0]).upper())))


def wrong_sub_args(container: str, sub: str) -> ErrorReply:
    return ErrorReply(
        "ERR wrong number of arguments for '%s|%s' command" % (container.lower(), sub.lower())
    )


def _cstr(b: bytes) -> bytes:
    """What C's %s prints of b: up to the first NUL byte."""
    end = b.find(b"\0")
    return b if end < 0 else b[:end]


def _show(b: bytes) -> str:
    # surrogateescape: the reply carries the client's bytes unchanged
    return b.decode("utf-8", "surrogateescape")
